"""bin.report: the count RESULTS.md gives is that of the utterances its mean covers."""

import argparse
import json
from pathlib import Path

from specgrad_plugin.bin.report import ScoredSet, results_markdown


def test_count_is_of_the_scored_utterances():
    args = argparse.Namespace(exp=Path("exp/run"), corpus="LJSpeech", model="m.pth", inference_args="")
    whole = ScoredSet("dev", "| mean |\n", {"mean": {}, "utterances": {"a": {}, "b": {}}}, total=2)
    short = ScoredSet("eval1", "| mean |\n", {"mean": {}, "utterances": {"a": {}}}, total=2)
    assert whole.count_text() == "2 utterances" and short.count_text() == "1 of 2 utterances"
    text = results_markdown(args, [whole, short])
    assert "## dev: 2 utterances of LJSpeech" in text and "## eval1: 1 of 2 utterances of LJSpeech" in text
    assert text.count("failed to vocode") == 1 and "decode_eval1/output.*/failed.txt" in text


def test_main_counts_against_the_reference_list(tmp_path, monkeypatch, capsys):
    """main: the total is the reference wav.scp's, not the decoded one's (which lacks what
    failed to vocode), and the last line gives the last set's means and count; a score
    bin.score wrote as null (not defined on any clip) reads as nan."""
    from specgrad_plugin.bin import report

    for name, scored in (("dev", ["a", "b"]), ("eval1", ["a"])):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "wav.scp").write_text("a a.wav\nb b.wav\n")
        out = tmp_path / "exp" / f"decode_{name}" / "score"
        out.mkdir(parents=True)
        (out / "scores.md").write_text(f"| {name} table |\n")
        (out / "scores.json").write_text(json.dumps({"mean": {"pesq": 3.5, "stoi": 0.9 if name == "dev" else None},
                                                     "utterances": {u: {} for u in scored}}))
    monkeypatch.setattr(report.score, "main", lambda argv: 0)
    assert report.main(["--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"),
                        "--model", "m.pth", "--corpus", "LJ"]) == 0
    text = (tmp_path / "exp" / "RESULTS.md").read_text()
    assert "## dev: 2 utterances of LJ" in text and "## eval1: 1 of 2 utterances of LJ" in text
    assert "| eval1 table |" in text
    assert capsys.readouterr().out.splitlines()[-1].startswith("Done: eval1 (1 of 2 utterances) vocoded by m.pth: "
                                                              "pesq 3.500, stoi nan.")
