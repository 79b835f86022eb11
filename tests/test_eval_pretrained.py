"""bench/eval_pretrained.py's --schedules: names split on ",", whole schedules on ";" (so one
may be written as its betas), anything else refused before a model loads."""

from pathlib import Path

import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "eval_pretrained.py"


@pytest.fixture(scope="module")
def script():
    return load_script(SCRIPT)


def test_names_split_on_commas_and_schedules_on_semicolons(script):
    assert script.schedule_list("WG-3,WG-6") == ["WG-3", "WG-6"]
    assert script.schedule_list("WG-6; 7e-6,1.4e-4,0.35,0.7") == ["WG-6", "7e-6,1.4e-4,0.35,0.7"]
    assert script.schedule_list("1e-4,0.1,0.9;") == ["1e-4,0.1,0.9"]


@pytest.mark.parametrize("text, message", [
    ("WG-6,WG-7", "'WG-7' is not a named schedule"),
    ("7e-6,1.4e-4,0.35,0.7", "end it with ';'"),  # betas without ';' are not six one-step schedules
    ("WG-6;WG-3,WG-50", "commas separate betas, not names"),
    ("WG-6;0.1,1.5", "'0.1,1.5' is neither"),
    (" ; ", "at least one"),
    ("WG-6;WG-6", "twice"),
])
def test_a_bad_schedule_is_refused_naming_it(script, text, message):
    with pytest.raises(ValueError, match=message):
        script.schedule_list(text)


def test_the_script_stops_on_its_flag_before_loading_a_model(script, monkeypatch):
    def no_model(*args, **kwargs):
        pytest.fail("a model was loaded before --schedules was checked")

    monkeypatch.setattr(script.SpecGradVocoder, "from_pretrained", no_model)
    with pytest.raises(SystemExit, match="--schedules:.*neither"):
        script.main(["--name", "ljspeech", "--schedules", "WG-6;0.1,1.5", "--out", "unused.json"])
