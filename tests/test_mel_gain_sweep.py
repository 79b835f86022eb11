"""bench/mel_gain_sweep.py's --settings and --split: read, or refused before a model loads."""

from pathlib import Path

import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "mel_gain_sweep.py"


@pytest.fixture(scope="module")
def script():
    return load_script(SCRIPT)


def test_settings_are_steps_and_max_db_pairs(script):
    assert script.parse_settings("0:20,2:20,2:10") == ((0, 20.0), (2, 20.0), (2, 10.0))
    assert script.parse_settings("3:7.5") == ((3, 7.5),)


@pytest.mark.parametrize("text, message", [
    ("2", "is not STEPS:MAX_DB"),
    ("2:20,x:20", "'x:20' is not STEPS:MAX_DB"),
    ("-1:20", "expected steps >= 0"),
    ("2:0", "max_db > 0"),
    ("2:20,2:20", "named twice"),
])
def test_bad_settings_are_refused_naming_the_flag(script, text, message, capsys):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=message):
        script.parse_settings(text)
    with pytest.raises(SystemExit) as stop:  # through argparse: its usage line, the flag named, exit 2
        script.main(["--settings", text, "--out", "x.json"])
    assert stop.value.code == 2 and "argument --settings" in capsys.readouterr().err


def test_split_picks_the_clips(script, monkeypatch, tmp_path):
    """--split train sweeps the 29 training clips, --split dev the 3 held out."""
    picked = []
    train, dev = [Path("t1.wav"), Path("t2.wav")], [Path("d1.wav")]
    monkeypatch.setattr(script.prior_study, "split_clips", lambda n: (train, dev, [Path("e1.wav")]))
    monkeypatch.setattr(script.prior_study, "load_refs", lambda paths, seconds: list(paths))
    monkeypatch.setattr(script.SpecGradVocoder, "from_pretrained", lambda tag: type("V", (), {"eval": lambda s: s})())
    monkeypatch.setattr(script, "sweep", lambda v, refs, seeds, schedule, settings: (picked.append(refs) or ({}, [])))
    for split in ("train", "dev"):
        script.main(["--split", split, "--settings", "2:20", "--out", str(tmp_path / f"{split}.json")])
    assert picked == [train, dev]


def test_bad_flags_stop_before_a_model_loads(script, monkeypatch, tmp_path):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(script.SpecGradVocoder, "from_pretrained", no_model)
    with pytest.raises(SystemExit):
        script.main(["--settings", "2:20,2:20", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        script.main(["--split", "eval", "--out", str(tmp_path / "x.json")])  # never the eval clips
    assert not (tmp_path / "x.json").exists()


def test_sweep_keeps_each_clip_seed_and_setting_and_averages_per_setting(script, monkeypatch):
    """A stand-in vocoder whose 'PESQ' is its gain steps plus max_db / 1000 plus the clip's
    index: each row keeps its own, each mean is its setting's alone (both keys set), and clip i
    is sampled once with seed + i for all the settings, which only apply their gains to it."""
    import types

    import torch

    calls = []

    class Vocoder:
        cfg = types.SimpleNamespace(inference=types.SimpleNamespace(mel_gain_iterations=0, mel_gain_max_db=20.0))

        def features(self, wav):
            return wav[:, None, :4]

        def sample(self, mel, schedule, seed, chunk_frames):
            calls.append(seed)
            return torch.zeros(1, 8), mel[None], torch.ones(1)

        def apply_gain(self, wav, mel, gain):
            inference = self.cfg.inference
            return wav + inference.mel_gain_iterations + inference.mel_gain_max_db / 1000

    def fake_score(ref, wav, features, heavy):
        return {"pesq": float(wav[0]) + float(ref[0]), "vuv_error": float(wav[0]) * 0.01}

    monkeypatch.setattr(script, "score", fake_score)
    refs = [torch.full((8,), float(i)) for i in range(3)]
    means, rows = script.sweep(Vocoder(), refs, [10, 20], "WG-6", ((0, 20.0), (2, 10.0)))
    assert sorted(calls) == sorted(seed + i for seed in (10, 20) for i in range(3))  # sampled once per clip and seed
    assert len(rows) == 12 and {r["setting"] for r in rows} == {"steps=0 max_db=20", "steps=2 max_db=10"}
    assert means["steps=0 max_db=20"]["pesq"] == pytest.approx(1.02)  # clips 0, 1, 2 at 0 steps, 20 dB
    assert means["steps=2 max_db=10"] == pytest.approx({"pesq": 3.01, "vuv_error": 0.0201})
    row = next(r for r in rows if r["clip"] == 2 and r["seed"] == 20 and r["setting"] == "steps=2 max_db=10")
    assert row["pesq"] == pytest.approx(4.01)
