"""Score a shipped model (or any checkpoint) on ljspeech_eval beside Griffin-Lim: the model card's table.

    python bench/eval_pretrained.py --name ljspeech --out specgrad_plugin/pretrained/ljspeech/scores.json
    python bench/eval_pretrained.py --checkpoint exp/.../valid.mel_l1.best.pth --out /tmp/scores.json
    python bench/eval_pretrained.py --checkpoint exp/.../latest.pth --split dev --out /tmp/dev.json  # to choose

Whole ljspeech_eval clips (never trained or tuned on; --split dev: the 3 held-out
ljspeech_mini clips, for choosing a checkpoint), fixed sampling seeds, every metric of
specgrad_plugin.scoring (bench/prior_study.py's evaluate), WG-3 and WG-6 by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin import diffusion  # noqa: E402
from specgrad_plugin.scoring import scores_to_json  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

COLUMNS = ("mel_l1", "mr_stft", "pesq", "stoi", "mcd", "vuv_error", "log_f0_rmse")


def table(result: dict, schedules) -> str:
    cols = [c for c in COLUMNS if any(f"{s}/{c}" in result for s in schedules)]
    lines = ["| system | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for s in schedules:
        lines.append(f"| SpecGrad {s} | " + " | ".join(f"{result.get(f'{s}/{c}', float('nan')):.3f}" for c in cols)
                     + " |")
    lines.append("| Griffin-Lim (32 it.) | " + " | ".join(
        f"{result.get(f'GL-32/{c}', float('nan')):.3f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def schedule_list(text: str) -> List[str]:
    """--schedules -> one string per schedule. Without ";", the parts between commas are named
    schedules; with one, the parts between semicolons are whole schedules, each a name or
    comma-separated betas. Raises ValueError naming the value and what was expected."""
    names = sorted(diffusion.NAMED_SCHEDULES)
    if ";" not in text:
        parts = [s.strip() for s in text.split(",") if s.strip()]
        unnamed = [s for s in parts if s not in diffusion.NAMED_SCHEDULES]
        if unnamed:
            raise ValueError(f"{text!r}: {unnamed[0]!r} is not a named schedule ({', '.join(names)}); "
                             f"to give one schedule as betas, end it with ';' ({text.strip()};)")
    else:
        parts = [s.strip() for s in text.split(";") if s.strip()]
        for part in parts:
            try:
                diffusion.inference_betas(part)
            except ValueError:
                raise ValueError(f"{text!r}: {part!r} is neither a named schedule ({', '.join(names)}) nor comma-"
                                 "separated betas in (0, 1); with ';', commas separate betas, not names") from None
    if not parts:
        raise ValueError(f"{text!r}: expected at least one schedule")
    if len(set(parts)) < len(parts):
        raise ValueError(f"{text!r}: a schedule is given twice")
    return parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="a shipped model (ljspeech)")
    which.add_argument("--checkpoint", type=Path)
    p.add_argument("--schedules", default="WG-3,WG-6",
                   help='named schedules separated by ","; or whole schedules separated by ";", each a name '
                        'or comma-separated betas ("WG-6;7e-6,1.4e-4,2.1e-3,0.028,0.35,0.45,0.4545")')
    p.add_argument("--split", choices=("eval", "dev"), default="eval",
                   help="eval: ljspeech_eval (report); dev: the held-out ljspeech_mini clips (choose)")
    p.add_argument("--seed", type=int, default=1234, help="clip i is sampled with seed + i")
    p.add_argument("--out", type=Path, required=True, help="scores JSON; the Markdown table goes beside it (.md)")
    args = p.parse_args(argv)
    try:
        schedules = schedule_list(args.schedules)
    except ValueError as e:
        raise SystemExit(f"--schedules: {e}") from None
    vocoder = (SpecGradVocoder.from_pretrained(args.name) if args.name
               else SpecGradVocoder.from_checkpoint(args.checkpoint))
    _, dev_paths, eval_paths = prior_study.split_clips(3)
    eval_paths = dev_paths if args.split == "dev" else eval_paths
    refs = prior_study.load_refs(eval_paths, 0)
    result = {"clips": [p.stem for p in eval_paths], "seed": args.seed,
              **prior_study.evaluate(vocoder, refs, schedules, heavy=True, seed=args.seed),
              **prior_study.griffin_lim_scores(refs, heavy=True)}
    args.out.write_text(scores_to_json(result))
    text = table(result, schedules)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
