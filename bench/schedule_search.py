"""Search a short inference schedule for a trained model on the dev clips.

    python bench/schedule_search.py --model ljspeech --start WG-6 --out exp/schedule_search/wg6.json
    python bench/schedule_search.py --model ljspeech --start WG-3 --out exp/schedule_search/wg3.json

Greedy coordinate search over log10(beta), from --start's betas: each beta in turn is
multiplied and divided by 10**step; a change is kept when it raises the objective, the
mean PESQ-wb over the dev clips (ljspeech_mini's last 3, never trained on, cropped to
--dev_seconds) and --seeds sampling seeds, by more than --min_gain. Passes repeat until
none keeps a change, then the step halves (--steps_log10). A candidate must keep its betas
increasing and in (0, 0.99), and must not start below the lowest noise level the model
was trained on (diffusion.untrained_start). The start and the winner are then scored
again with other seeds (--check_seeds) and every metric of specgrad_plugin.scoring, on
whole dev clips: the search's own seeds flatter the winner by its fit to their noise.
Writes the JSON (every evaluated schedule, the check) and prints the winner.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin import diffusion  # noqa: E402
from specgrad_plugin.scoring import score  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

log = logging.getLogger("schedule_search")


def valid(betas: Sequence[float], vocoder) -> bool:
    if any(not 0.0 < b < 0.99 for b in betas) or any(a >= b for a, b in zip(betas, betas[1:], strict=False)):
        return False
    return diffusion.untrained_start(torch.tensor(betas, dtype=torch.float64), vocoder.cfg.diffusion) is None


def scores(vocoder, refs: List[torch.Tensor], betas: Sequence[float], seeds: Sequence[int],
           heavy: bool = False) -> Dict[str, float]:
    """Mean over clips and seeds of specgrad_plugin.scoring's metrics; clip i gets seed + i."""
    totals: Dict[str, List[float]] = {}
    with torch.no_grad():
        for seed in seeds:
            for i, ref in enumerate(refs):
                mel = vocoder.features(ref[None])[0]
                wav = vocoder(mel, schedule=list(betas), seed=seed + i, chunk_frames=0).numpy()
                for name, value in score(ref.numpy(), wav, vocoder.features, heavy=heavy).items():
                    totals.setdefault(name, []).append(value)
    return {k: float(np.nanmean(v)) for k, v in totals.items()}


def search(vocoder, refs, start: List[float], seeds, steps_log10, min_gain) -> Tuple[List[float], List[dict]]:
    seen: Dict[Tuple[float, ...], float] = {}
    history: List[dict] = []

    def objective(betas: List[float]) -> float:
        key = tuple(round(b, 12) for b in betas)
        if key not in seen:
            result = scores(vocoder, refs, betas, seeds)
            seen[key] = result["pesq"]
            history.append({"betas": list(betas), **result})
            log.info("pesq %.3f  betas %s", result["pesq"], ", ".join(f"{b:.3g}" for b in betas))
        return seen[key]

    best, best_value = list(start), objective(start)
    for step in steps_log10:
        improved = True
        while improved:
            improved = False
            for i in range(len(best)):
                for sign in (1.0, -1.0):
                    candidate = list(best)
                    candidate[i] = best[i] * 10 ** (sign * step)
                    if not valid(candidate, vocoder):
                        continue
                    value = objective(candidate)
                    if value > best_value + min_gain:
                        best, best_value, improved = candidate, value, True
    return best, history


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ljspeech", help="a shipped model's name, or a checkpoint path")
    p.add_argument("--start", default="WG-6", help="the schedule the search starts from (name or betas)")
    p.add_argument("--seeds", default="0,1", help="sampling seeds of the search's objective")
    p.add_argument("--check_seeds", default="100,101", help="seeds of the check on whole dev clips")
    p.add_argument("--dev_seconds", type=float, default=4.0)
    p.add_argument("--steps_log10", default="0.3,0.15", help="log10 step sizes, in order")
    p.add_argument("--min_gain", type=float, default=0.005, help="PESQ a change must add to be kept")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON of the search")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    vocoder = (SpecGradVocoder.from_checkpoint(args.model) if Path(args.model).is_file()
               else SpecGradVocoder.from_pretrained(args.model))
    _, dev_paths, _ = prior_study.split_clips(3)
    start = diffusion.inference_betas(args.start).tolist()
    if not valid(start, vocoder):
        raise SystemExit(f"--start {args.start}: not a valid start for this model (increasing betas in (0, 0.99), "
                         "starting at a trained level)")
    seeds = [int(s) for s in args.seeds.split(",")]
    best, history = search(vocoder, prior_study.load_refs(dev_paths, args.dev_seconds), start, seeds,
                           [float(s) for s in args.steps_log10.split(",")], args.min_gain)
    whole = prior_study.load_refs(dev_paths, 0)
    check_seeds = [int(s) for s in args.check_seeds.split(",")]
    check = {name: scores(vocoder, whole, betas, check_seeds, heavy=True)
             for name, betas in (("start", start), ("best", best))}
    result = {"model": args.model, "start": args.start, "start_betas": start, "best_betas": best,
              "seeds": seeds, "check_seeds": check_seeds, "dev_clips": [p.stem for p in dev_paths],
              "dev_seconds": args.dev_seconds, "evaluated": history, "check_whole_dev": check,
              "abar_start_of_best": float(diffusion.alpha_bars(torch.tensor(best, dtype=torch.float64))[-1])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"best betas: {', '.join(f'{b:.4g}' for b in best)}")
    for name, row in check.items():
        print(name, {k: round(v, 3) for k, v in row.items() if not math.isnan(v)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
