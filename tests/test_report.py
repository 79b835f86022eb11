"""bin.report: the count it prints is that of the utterances its mean covers."""

import argparse
import json

from specgrad_plugin.bin.report import count_text, scored_counts


def test_count_is_of_the_scored_utterances(tmp_path):
    (tmp_path / "data" / "eval1").mkdir(parents=True)
    (tmp_path / "data" / "eval1" / "wav.scp").write_text("a a.wav\nb b.wav\n")
    score = tmp_path / "exp" / "decode_eval1" / "score"
    score.mkdir(parents=True)
    args = argparse.Namespace(exp=tmp_path / "exp", data=tmp_path / "data")
    (score / "scores.json").write_text(json.dumps({"mean": {}, "utterances": {"a": {}, "b": {}}}))
    assert count_text(*scored_counts(args, "eval1")) == "2 utterances"
    (score / "scores.json").write_text(json.dumps({"mean": {}, "utterances": {"a": {}}}))
    assert count_text(*scored_counts(args, "eval1")) == "1 of 2 utterances"
