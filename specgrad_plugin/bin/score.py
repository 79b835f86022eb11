"""Score generated wavs against references: per utterance and mean, JSON + Markdown.

    python -m specgrad_plugin.bin.score --ref data/dev/wav.scp --gen exp/decode_dev --out exp/decode_dev/score

--gen is a wav.scp or a folder holding one (or holding wav/<utt>.wav). Time-aligned
pairs (analysis-synthesis) get PESQ-wb, STOI, MR-STFT, mel-L1 and the DTW metrics
(MCD, log-F0 RMSE, V/UV error); --aligned false (TTS output against natural speech)
keeps the DTW metrics only. DistillMOS is added when installed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from espnet2.utils.types import str2bool
from tqdm import tqdm

from specgrad_plugin.bin import one_line_write_errors
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.data import read_scp, read_wav
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.plotting import plot_spectrograms
from specgrad_plugin.scoring import distill_mos, mcd_and_f0, score, scores_to_json, unavailable_scores


def generated_scp(gen: Path) -> Dict[str, str]:
    if gen.is_file():
        return read_scp(gen)
    if (gen / "wav.scp").is_file():
        return read_scp(gen / "wav.scp")
    wavs = sorted((gen / "wav").glob("*.wav")) or sorted(gen.glob("*.wav"))
    if not wavs:
        raise SpecGradInputError(f"{gen}: no wav.scp, wav/*.wav or *.wav found")
    return {p.stem: str(p) for p in wavs}


def markdown_table(rows: Dict[str, Dict[str, float]], names: List[str]) -> str:
    lines = [f"| utterance | {' | '.join(names)} |", f"|---|{'---|' * len(names)}"]
    for uid, values in rows.items():
        cells = " | ".join(f"{values.get(n, float('nan')):.3f}" for n in names)
        lines.append(f"| {uid} | {cells} |")
    return "\n".join(lines) + "\n"


def score_pairs(uids: List[str], pair, args: argparse.Namespace, features: FeatureConfig,
                staging: Path) -> Dict[str, Dict[str, float]]:
    """Each pair's scores; with --aligned and --plot, its reference-vs-generated PNG in staging."""
    extractor = LogMelExtractor(features)
    rows: Dict[str, Dict[str, float]] = {}
    for uid in tqdm(uids, desc="scoring", unit="utt"):
        x, y = pair(uid)
        if args.aligned:
            rows[uid] = score(x, y, extractor)
            if args.plot:
                with torch.no_grad():
                    n = min(len(x), len(y)) // features.hop_length * features.hop_length
                    mels = [extractor(torch.from_numpy(w[:n])[None])[0] for w in (x, y)]
                plot_spectrograms(*mels, staging / f"{uid}.png", uid)
        else:
            rows[uid] = mcd_and_f0(x, y, args.fs, features.hop_length)
            try:
                rows[uid]["distillmos"] = distill_mos(y, args.fs)
            except ImportError:
                pass
    return rows


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True, help="reference wav.scp")
    p.add_argument("--gen", type=Path, required=True, help="generated wav.scp or folder")
    p.add_argument("--out", type=Path, required=True, help="folder for scores.json and scores.md")
    p.add_argument("--aligned", type=str2bool, default=True,
                   help="false: generated wavs are not time-aligned with the references (TTS)")
    p.add_argument("--fs", type=int, default=22050)
    p.add_argument("--plot", type=str2bool, default=True,
                   help="aligned: write <out>/<utt>.png, reference vs generated log-mel")
    return p


@one_line_write_errors
def main(argv=None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.fs <= 0:
        parser.error(f"--fs {args.fs}: expected a sampling rate in Hz, above 0")
    features = FeatureConfig(fs=args.fs)
    try:
        ref, gen = read_scp(args.ref), generated_scp(args.gen)
        missing = sorted(set(gen) - set(ref))
        if missing:
            raise SpecGradInputError(f"{args.gen}: {len(missing)} utterances have no reference in {args.ref}: "
                                     f"{missing[:5]}")
        if not gen:
            raise SpecGradInputError(f"{args.gen}: no generated utterances")
        if args.out.exists() and not args.out.is_dir():
            raise SpecGradInputError(f"--out {args.out}: a file, expected a folder for scores.json and scores.md")
    except SpecGradInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    def pair(uid: str) -> Tuple[np.ndarray, np.ndarray]:
        x, y = (read_wav(path, args.fs, features.hop_length, n_fft=features.n_fft) for path in (ref[uid], gen[uid]))
        # a vocoder's output is its mel's frames times the hop: within 2 hops of the recording
        if args.aligned and abs(len(x) - len(y)) > 2 * features.hop_length:
            raise SpecGradInputError(f"{gen[uid]}: {len(y)} samples against the reference's {len(x)} "
                                     f"({ref[uid]}); aligned scores compare the two sample by sample, so "
                                     f"expected the same length within 2 hops ({2 * features.hop_length} "
                                     "samples); for TTS output use --aligned false")
        return x, y

    # every pair is read and checked before anything is written (and read again to score, so
    # that a large set is never in memory at once): a bad file leaves --out as it was
    for uid in tqdm(sorted(gen), desc="checking", unit="utt"):
        try:
            pair(uid)
        except SpecGradInputError as e:
            print(f"error: utterance {uid}: {e}; nothing written to {args.out}", file=sys.stderr)
            return 2
    missing = unavailable_scores()
    dtw = "mcd, log_f0_rmse, vuv_error"
    if not args.aligned and dtw in missing:  # the DTW scores are all that --aligned false computes
        print(f"error: --aligned false scores {dtw} only, which need {', '.join(missing[dtw])}; pip install "
              f"'specgrad_plugin[eval]' adds them; nothing written to {args.out}", file=sys.stderr)
        return 2
    if args.aligned and missing:
        left_out = "; ".join(f"{names} (needs {', '.join(packages)})" for names, packages in missing.items())
        print(f"note: not scored: {left_out}; pip install 'specgrad_plugin[eval]' adds them", file=sys.stderr)
    # everything is written to a hidden staging folder in --out (the same file system) and moved
    # into place at the end: a run that fails or is stopped while scoring leaves --out as it was
    created = not args.out.exists()
    args.out.mkdir(parents=True, exist_ok=True)
    staging, done = Path(tempfile.mkdtemp(prefix=".partial-", dir=args.out)), False
    try:
        rows = score_pairs(sorted(gen), pair, args, features, staging)
        names = list(next(iter(rows.values())))
        mean = {n: float(np.nanmean([r[n] for r in rows.values()])) for n in names}
        (staging / "scores.json").write_text(scores_to_json({"mean": mean, "utterances": rows}))
        (staging / "scores.md").write_text(markdown_table({"**mean**": mean, **rows}, names))
        for path in sorted(staging.iterdir()):
            path.replace(args.out / path.name)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            shutil.rmtree(args.out, ignore_errors=True)  # it held nothing but the staging folder
    print(markdown_table({f"mean of {len(rows)}": mean}, names), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
