"""Score a run's decoded sets against their references and write its RESULTS.md.

    python -m specgrad_plugin.bin.report --exp exp/train_specgrad_frame --data data \\
        --model "exp/train_specgrad_frame/valid.pesq.best.pth" --corpus LJSpeech-1.1

For each --sets name (default dev eval1) it scores ``<exp>/decode_<set>/wav.scp`` against
``<data>/<set>/wav.scp`` (specgrad_plugin.bin.score: ``<exp>/decode_<set>/score/``), then
writes ``<exp>/RESULTS.md`` (what was vocoded, by which model and versions, every
utterance's scores and their mean), prints it, and ends with one line of the last set's means.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple

from specgrad_plugin.bin import one_line_write_errors, score
from specgrad_plugin.data import read_scp
from specgrad_plugin.scoring import scores_from_json

SUMMARY_KEYS = ("pesq", "stoi", "mel_l1", "vuv_error")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", type=Path, required=True, help="the run's folder, holding decode_<set>/")
    p.add_argument("--data", type=Path, required=True, help="the folder holding <set>/wav.scp")
    p.add_argument("--sets", nargs="+", default=["dev", "eval1"])
    p.add_argument("--model", required=True, help="what vocoded them, as RESULTS.md names it")
    p.add_argument("--corpus", required=True, help="what the references are, as RESULTS.md names them")
    p.add_argument("--inference_args", default="", help="the decoding options, as RESULTS.md records them")
    return p


def versions() -> str:
    import espnet
    import torch

    import specgrad_plugin

    return f"specgrad_plugin {specgrad_plugin.__version__}, espnet {espnet.__version__}, torch {torch.__version__}"


class ScoredSet(NamedTuple):
    name: str
    table: str  # score/scores.md
    scores: Dict  # score/scores.json: "mean" and "utterances"
    total: int  # utterances in the set's reference wav.scp

    def count_text(self) -> str:
        scored = len(self.scores["utterances"])
        return f"{self.total} utterances" if scored == self.total else f"{scored} of {self.total} utterances"


def results_markdown(args: argparse.Namespace, sets: List[ScoredSet]) -> str:
    lines = [f"# {args.exp.name}: SpecGrad analysis-synthesis of {args.corpus}", "",
             "Each recording's log-mel vocoded back to audio and scored against the recording.", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; model: {args.model}; "
             f"inference_args: '{args.inference_args}'",
             f"- vocoded wavs: {args.exp}/decode_<set>/output.*/wav/; reference vs generated log-mel PNGs: "
             f"{args.exp}/decode_<set>/score/",
             f"- {versions()}"]
    for s in sets:
        lines += ["", f"## {s.name}: {s.count_text()} of {args.corpus} (mean, then each)", ""]
        if len(s.scores["utterances"]) < s.total:
            lines += [f"The others failed to vocode: {args.exp}/decode_{s.name}/output.*/failed.txt.", ""]
        lines.append(s.table.rstrip("\n"))
    return "\n".join(lines) + "\n"


@one_line_write_errors
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    sets = []
    for name in args.sets:
        out = args.exp / f"decode_{name}" / "score"
        ref = args.data / name / "wav.scp"
        rc = score.main(["--ref", str(ref), "--gen", str(args.exp / f"decode_{name}" / "wav.scp"), "--out", str(out)])
        if rc:
            return rc
        sets.append(ScoredSet(name, (out / "scores.md").read_text(encoding="utf-8"),
                              scores_from_json((out / "scores.json").read_text()), len(read_scp(ref))))
    text = results_markdown(args, sets)
    (args.exp / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text, end="")
    last = sets[-1]
    means = ", ".join(f"{k} {last.scores['mean'][k]:.3f}" for k in SUMMARY_KEYS if k in last.scores["mean"])
    print(f"Done: {last.name} ({last.count_text()}) vocoded by {args.model}: {means}. "
          f"Wavs and spectrograms: {args.exp}/decode_{last.name}/, table: {args.exp}/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
