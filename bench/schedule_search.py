"""Search a short inference schedule for a trained model.

    python bench/schedule_search.py --model ljspeech --start WG-6 --out exp/schedule_search/wg6.json
    python bench/schedule_search.py --model ljspeech --start WG-3 --out exp/schedule_search/wg3.json
    python bench/schedule_search.py --model ljspeech --start WG-6 --objective voicing --clips train \
        --min_gain 0.002 --out exp/schedule_search/wg6_voicing.json

Greedy coordinate search over log10(beta), from --start's betas: each beta in turn is
multiplied and divided by 10**step; a change is kept when it improves the objective by more
than --min_gain. The objective is a mean over --clips (dev: ljspeech_mini's last 3, never
trained on; train: the other 29, for a schedule chosen like an inference setting, the way
the gain steps were) cropped to --seconds, and --seeds sampling seeds:
- pesq: PESQ-wb, raised;
- voicing: V/UV error + log-F0 RMSE (scoring.mcd_and_f0), lowered; a candidate whose PESQ
  falls more than --max_pesq_drop below the start's is not kept.
Passes repeat until none keeps a change, then the step halves (--steps_log10). A candidate must keep its betas
increasing and in (0, 0.99), and must not start below the lowest noise level the model
was trained on (diffusion.untrained_start). The start and the winner are then scored
again with other seeds (--check_seeds): on whole dev clips with every metric of
specgrad_plugin.scoring, and on the search's own clips: the search's seeds flatter the
winner by its fit to their noise.
Writes the JSON (every evaluated schedule, the check) and prints the winner.
"""

from __future__ import annotations

import argparse
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
from specgrad_plugin.scoring import mcd_and_f0, score, scores_to_json  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

log = logging.getLogger("schedule_search")


def valid(betas: Sequence[float], vocoder) -> bool:
    if any(not 0.0 < b < 0.99 for b in betas) or any(a >= b for a, b in zip(betas, betas[1:], strict=False)):
        return False
    return diffusion.untrained_start(torch.tensor(betas, dtype=torch.float64), vocoder.cfg.diffusion) is None


def scores(vocoder, refs: List[torch.Tensor], betas: Sequence[float], seeds: Sequence[int],
           heavy: bool = False, voicing: bool = False) -> Dict[str, float]:
    """Mean over clips and seeds of specgrad_plugin.scoring's metrics; clip i gets seed + i.
    voicing: MCD, V/UV error and log-F0 RMSE too, without heavy's other metrics."""
    totals: Dict[str, List[float]] = {}
    hop = vocoder.features.cfg.hop_length
    with torch.no_grad():
        mels = [vocoder.features(ref[None])[0] for ref in refs]
        for seed in seeds:
            for i, (ref, mel) in enumerate(zip(refs, mels, strict=True)):
                wav = vocoder(mel, schedule=list(betas), seed=seed + i, chunk_frames=0).numpy()
                result = score(ref.numpy(), wav, vocoder.features, heavy=heavy)
                if voicing and not heavy:
                    result.update(mcd_and_f0(ref.numpy(), wav, vocoder.features.cfg.fs, hop))
                for name, value in result.items():
                    totals.setdefault(name, []).append(value)
    return {k: float(np.nanmean(v)) for k, v in totals.items()}


def objective_value(result: Dict[str, float], objective: str) -> float:
    """What the search raises: PESQ, or minus (V/UV error + log-F0 RMSE)."""
    return result["pesq"] if objective == "pesq" else -(result["vuv_error"] + result["log_f0_rmse"])


def search(vocoder, refs, start: List[float], seeds, steps_log10, min_gain, objective: str = "pesq",
           max_pesq_drop: float = math.inf) -> Tuple[List[float], List[dict]]:
    seen: Dict[Tuple[float, ...], Tuple[float, float]] = {}
    history: List[dict] = []

    def evaluate(betas: List[float]) -> Tuple[float, float]:
        key = tuple(round(b, 12) for b in betas)
        if key not in seen:
            result = scores(vocoder, refs, betas, seeds, voicing=objective == "voicing")
            seen[key] = objective_value(result, objective), result["pesq"]
            history.append({"betas": list(betas), **result})
            log.info("%s %.4f pesq %.3f  betas %s", objective, seen[key][0], result["pesq"],
                     ", ".join(f"{b:.3g}" for b in betas))
        return seen[key]

    best = list(start)
    best_value, start_pesq = evaluate(start)
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
                    value, pesq = evaluate(candidate)
                    if value > best_value + min_gain and pesq >= start_pesq - max_pesq_drop:
                        best, best_value, improved = candidate, value, True
    return best, history


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ljspeech", help="a shipped model's name, or a checkpoint path")
    p.add_argument("--start", default="WG-6", help="the schedule the search starts from (name or betas)")
    p.add_argument("--seeds", default="0,1", help="sampling seeds of the search's objective")
    p.add_argument("--check_seeds", default="100,101", help="seeds of the checks (whole dev clips, the search's clips)")
    p.add_argument("--objective", choices=("pesq", "voicing"), default="pesq", help="what the search improves")
    p.add_argument("--clips", choices=("dev", "train"), default="dev", help="the clips the search scores")
    p.add_argument("--seconds", type=float, default=4.0, help="the search's clips cropped to this many seconds")
    p.add_argument("--max_pesq_drop", type=float, default=math.inf,
                   help="voicing: keep no change whose PESQ falls this far below the start's")
    p.add_argument("--steps_log10", default="0.3,0.15", help="log10 step sizes, in order")
    p.add_argument("--min_gain", type=float, default=0.005, help="how much a change must improve the objective")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON of the search")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    vocoder = (SpecGradVocoder.from_checkpoint(args.model) if Path(args.model).is_file()
               else SpecGradVocoder.from_pretrained(args.model))
    train_paths, dev_paths, _ = prior_study.split_clips(3)
    search_paths = dev_paths if args.clips == "dev" else train_paths
    start = diffusion.inference_betas(args.start).tolist()
    if not valid(start, vocoder):
        raise SystemExit(f"--start {args.start}: not a valid start for this model (increasing betas in (0, 0.99), "
                         "starting at a trained level)")
    seeds = [int(s) for s in args.seeds.split(",")]
    search_refs = prior_study.load_refs(search_paths, args.seconds)
    best, history = search(vocoder, search_refs, start, seeds,
                           [float(s) for s in args.steps_log10.split(",")], args.min_gain, args.objective,
                           args.max_pesq_drop)
    whole = prior_study.load_refs(dev_paths, 0)
    check_seeds = [int(s) for s in args.check_seeds.split(",")]
    check = {name: scores(vocoder, whole, betas, check_seeds, heavy=True)
             for name, betas in (("start", start), ("best", best))}
    # the search's clips with the check's seeds: how much of the gain was the search's own noise
    check_search = {name: scores(vocoder, search_refs, betas, check_seeds, voicing=args.objective == "voicing")
                    for name, betas in (("start", start), ("best", best))}
    result = {"model": args.model, "start": args.start, "start_betas": start, "best_betas": best,
              "seeds": seeds, "check_seeds": check_seeds, "objective": args.objective,
              "search_clips": [p.stem for p in search_paths], "seconds": args.seconds, "evaluated": history,
              "check_whole_dev": check, "check_search_clips": check_search,
              "abar_start_of_best": float(diffusion.alpha_bars(torch.tensor(best, dtype=torch.float64))[-1])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(scores_to_json(result))
    print(f"best betas: {', '.join(f'{b:.4g}' for b in best)}")
    for where, rows in (("whole dev", check), ("search clips", check_search)):
        for name, row in rows.items():
            print(where, name, {k: round(v, 3) for k, v in row.items() if not math.isnan(v)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
