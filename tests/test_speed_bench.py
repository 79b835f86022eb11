"""bench/speed.py --shipped: shipped models beside HiFi-GAN V1 in one round-robin, the ratio
taken to HiFi-GAN's time; an unknown name stops it before anything is timed."""

from pathlib import Path

import pytest

from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "speed.py"


@pytest.fixture(scope="module")
def script():
    return load_script(SCRIPT)


def test_unknown_shipped_name_is_refused_before_timing(script, monkeypatch):
    monkeypatch.setattr(script, "time_round_robin", lambda *a: pytest.fail("timed"))
    with pytest.raises(SystemExit, match="--shipped: pretrained SpecGrad model 'ljspeech-v99' is not shipped"):
        script.shipped_tables(["ljspeech-v99"], 0.5, 1, 1)


def test_shipped_table_divides_by_hifigans_time(script, monkeypatch):
    """Stand-in timings: each row's ratio is its time over HiFi-GAN's, its RTF its time over
    the mel's length in seconds; each system runs its own model at its own schedule."""
    ran = {}

    class Model:
        def __init__(self, name):
            self.name = name
            self.cfg = SpecGradConfig()

        def eval(self):
            return self

        def __call__(self, mel, schedule, seed):
            return (self.name, schedule)

    def fake_round_robin(systems, repeats):
        ran.update({name: run() for name, run in systems.items()})
        return {name: (2.0 if name == "HiFi-GAN V1" else 0.5) for name in systems}

    monkeypatch.setattr(SpecGradVocoder, "from_pretrained", Model)
    monkeypatch.setattr(script, "time_round_robin", fake_round_robin)
    monkeypatch.setattr(script, "hifigan", lambda: (lambda mel: "hifigan"))
    lines = script.shipped_tables(["ljspeech-v1", "ljspeech-v2"], 1.0, 1, 1)
    assert ran == {"ljspeech-v1 WG-3": ("ljspeech-v1", "WG-3"), "ljspeech-v1 WG-6": ("ljspeech-v1", "WG-6"),
                   "ljspeech-v2 WG-3": ("ljspeech-v2", "WG-3"), "ljspeech-v2 WG-6": ("ljspeech-v2", "WG-6"),
                   "HiFi-GAN V1": "hifigan"}
    row = next(line for line in lines if line.startswith("| ljspeech-v1 WG-6 |"))
    seconds = script.test_mel(1.0).shape[0] * 256 / 22050
    assert row == f"| ljspeech-v1 WG-6 | {0.5 / seconds:.4f} | 0.250 |"


def test_shipped_model_with_other_features_is_refused_before_timing(script, monkeypatch):
    """Every system is timed on one mel of the bench's features: a model of another hop
    would be timed on the wrong length of audio, so it stops the run instead."""

    class Model:
        def __init__(self, name):
            self.cfg = SpecGradConfig()
            self.cfg.features.hop_length = 300

        def eval(self):
            return self

    monkeypatch.setattr(SpecGradVocoder, "from_pretrained", Model)
    monkeypatch.setattr(script, "time_round_robin", lambda *a: pytest.fail("timed"))
    with pytest.raises(SystemExit, match="--shipped: ljspeech-v9's features .*hop_length=300"):
        script.shipped_tables(["ljspeech-v9"], 0.5, 1, 1)
