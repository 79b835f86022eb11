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
def test_bad_settings_are_refused_naming_the_flag(script, text, message):
    with pytest.raises(SystemExit, match=message):
        script.parse_settings(text)


def test_bad_flags_stop_before_a_model_loads(script, monkeypatch, tmp_path):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(script.SpecGradVocoder, "from_pretrained", no_model)
    with pytest.raises(SystemExit):
        script.main(["--settings", "2:20,2:20", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        script.main(["--split", "eval", "--out", str(tmp_path / "x.json")])  # never the eval clips
    assert not (tmp_path / "x.json").exists()
