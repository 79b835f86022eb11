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
import json
import sys
import time
from pathlib import Path
from typing import List, Tuple

from specgrad_plugin.bin import score
from specgrad_plugin.data import read_scp

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


def results_markdown(args: argparse.Namespace, tables: List[str]) -> str:
    lines = [f"# {args.exp.name}: SpecGrad analysis-synthesis of {args.corpus}", "",
             "Each recording's log-mel vocoded back to audio and scored against the recording.", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; model: {args.model}; "
             f"inference_args: '{args.inference_args}'",
             f"- vocoded wavs: {args.exp}/decode_<set>/output.*/wav/; reference vs generated log-mel PNGs: "
             f"{args.exp}/decode_<set>/score/",
             f"- {versions()}"]
    for name, table in zip(args.sets, tables, strict=True):
        scored, total = scored_counts(args, name)
        lines += ["", f"## {name}: {count_text(scored, total)} of {args.corpus} (mean, then each)", ""]
        if scored < total:
            lines += [f"The others failed to vocode: {args.exp}/decode_{name}/output.*/failed.txt.", ""]
        lines.append(table.rstrip("\n"))
    return "\n".join(lines) + "\n"


def scored_counts(args: argparse.Namespace, name: str) -> Tuple[int, int]:
    """(utterances the set's mean covers, utterances in the set)."""
    scored = len(json.loads((args.exp / f"decode_{name}" / "score" / "scores.json").read_text())["utterances"])
    return scored, len(read_scp(args.data / name / "wav.scp"))


def count_text(scored: int, total: int) -> str:
    return f"{total} utterances" if scored == total else f"{scored} of {total} utterances"


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    tables = []
    for name in args.sets:
        out = args.exp / f"decode_{name}" / "score"
        rc = score.main(["--ref", str(args.data / name / "wav.scp"),
                         "--gen", str(args.exp / f"decode_{name}" / "wav.scp"), "--out", str(out)])
        if rc:
            return rc
        tables.append((out / "scores.md").read_text(encoding="utf-8"))
    text = results_markdown(args, tables)
    (args.exp / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text, end="")
    last = args.sets[-1]
    mean = json.loads((args.exp / f"decode_{last}" / "score" / "scores.json").read_text())["mean"]
    means = ", ".join(f"{k} {mean[k]:.3f}" for k in SUMMARY_KEYS if k in mean)
    print(f"Done: {last} ({count_text(*scored_counts(args, last))}) vocoded by {args.model}: {means}. "
          f"Wavs and spectrograms: {args.exp}/decode_{last}/, table: {args.exp}/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
