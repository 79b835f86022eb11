"""bin.report: the count RESULTS.md gives is that of the utterances its mean covers."""

import argparse
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
