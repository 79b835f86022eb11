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


def test_a_bad_schedule_stops_the_script_by_its_flag(script):
    with pytest.raises(ValueError, match="WG-7"):
        script.schedule_list("WG-6,WG-7")
    with pytest.raises(ValueError, match="at least one"):
        script.schedule_list(" ; ")
    with pytest.raises(SystemExit, match="--schedules:.*1.5"):
        script.main(["--name", "ljspeech", "--schedules", "WG-6;0.1,1.5", "--out", "unused.json"])
