"""The gain per mel band after the sampler (inference.mel_gain_iterations) on the dev or the
training clips: how many steps, and how far one step may move a band.

    OMP_NUM_THREADS=1 python bench/mel_gain_sweep.py --model_tag ljspeech-v3 --out docs/mel_gain/dev_sweep.json
    OMP_NUM_THREADS=1 python bench/mel_gain_sweep.py --model_tag ljspeech-v4 --split train \
        --settings 0:20,1:20,2:20,3:20,4:20 --out docs/mel_gain/train_sweep.json

Each clip (dev: the 3 held-out ljspeech_mini clips; train: the other 29, whose audio the
sampler was trained on, though never the gain, which has nothing to train), whole, is
sampled once at each sampling seed (seed + clip index, SpecGradVocoder.sample) and brought to
its mel with every setting (SpecGradVocoder.apply_gain), so the settings differ by the gain
alone. Every metric of
specgrad_plugin.scoring, the mean over clips and seeds; OUT (.json) and the Markdown table
beside it (.md). Never run it on ljspeech_eval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin.scoring import score, scores_to_json  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

COLUMNS = ("pesq", "stoi", "vuv_error", "log_f0_rmse", "mcd", "mel_l1", "mr_stft")
# (steps, max_db): steps 0 is the gain off
SETTINGS: Tuple[Tuple[int, float], ...] = ((0, 20.0), (1, 20.0), (2, 20.0), (3, 20.0), (4, 20.0), (8, 20.0),
                                           (2, 10.0), (2, 40.0))
Setting = Tuple[int, float]


def parse_settings(text: str) -> Tuple[Setting, ...]:
    """--settings "S:D,S:D" -> ((S, D), ...): S gain steps (0: off), each at most D dB."""
    settings = []
    for part in text.split(","):
        try:
            steps, max_db = part.split(":")
            setting = (int(steps), float(max_db))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not STEPS:MAX_DB (for example 2:20)") from None
        if setting[0] < 0 or not setting[1] > 0:
            raise argparse.ArgumentTypeError(f"{part!r}: expected steps >= 0 and max_db > 0")
        settings.append(setting)
    if len(set(settings)) != len(settings):
        raise argparse.ArgumentTypeError(f"{text!r}: a setting is named twice")
    return tuple(settings)


def sweep(vocoder: SpecGradVocoder, refs: List[torch.Tensor], seeds: List[int], schedule: str,
          settings: Tuple[Setting, ...] = SETTINGS) -> Tuple[Dict[str, Dict[str, float]], List[Dict[str, object]]]:
    """({"steps=S max_db=D": {metric: mean over clips and seeds}}, one row per clip, seed and
    setting: {"clip": i, "seed": s, "setting": "steps=S max_db=D", metric: value}), so that
    settings can be compared clip by clip on the same noise."""
    inference = vocoder.cfg.inference
    rows: List[Dict[str, object]] = []
    for seed in seeds:
        for i, ref in enumerate(refs):
            with torch.no_grad():
                mel = vocoder.features(ref[None])[0]
            sampled = vocoder.sample(mel, schedule=schedule, seed=seed + i, chunk_frames=0)  # once for all settings
            for steps, max_db in settings:
                inference.mel_gain_iterations, inference.mel_gain_max_db = steps, max_db
                wav = vocoder.apply_gain(*sampled)[0].numpy()
                rows.append({"clip": i, "seed": seed, "setting": f"steps={steps} max_db={max_db:g}",
                             **score(ref.numpy(), wav, vocoder.features, heavy=True)})
    means: Dict[str, Dict[str, float]] = {}
    for setting in dict.fromkeys(str(r["setting"]) for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        metrics = [k for k in mine[0] if k not in ("clip", "seed", "setting")]
        means[setting] = {m: float(np.nanmean([float(r[m]) for r in mine])) for m in metrics}
    return means, rows


def table(result: Dict[str, Dict[str, float]]) -> str:
    lines = ["| setting | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {k} | " + " | ".join(f"{v.get(c, float('nan')):.3f}" for c in COLUMNS) + " |"
              for k, v in result.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_tag", default="ljspeech-v3", help="a shipped model's name or a checkpoint path")
    p.add_argument("--schedule", default="WG-6")
    p.add_argument("--seeds", default="1234,2234", help="clip i is sampled with seed + i, for each seed")
    p.add_argument("--split", choices=("dev", "train"), default="dev", help="which ljspeech_mini clips")
    p.add_argument("--settings", type=parse_settings, default=SETTINGS,
                   help="STEPS:MAX_DB pairs separated by commas (default: the dev sweep's eight)")
    p.add_argument("--out", type=Path, required=True, help="results JSON; the Markdown table goes beside it (.md)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tag = str(args.model_tag)
    vocoder = (SpecGradVocoder.from_checkpoint(tag) if Path(tag).is_file()
               else SpecGradVocoder.from_pretrained(tag)).eval()
    train_paths, dev_paths, _ = prior_study.split_clips(3)
    paths = dev_paths if args.split == "dev" else train_paths
    seeds = [int(s) for s in args.seeds.split(",")]
    result, rows = sweep(vocoder, prior_study.load_refs(paths, 0), seeds, args.schedule, args.settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(scores_to_json({"model_tag": tag, "schedule": args.schedule, "seeds": seeds,
                                        "split": args.split, "clips": [p.stem for p in paths],
                                        "results": result, "clip_rows": rows}))
    args.out.with_suffix(".md").write_text(table(result))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
