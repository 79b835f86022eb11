"""What the frames a vocoder gets wrong look like: its low band against the recording's,
frame by frame, in the reference's voiced frames split by what the output's F0 track does.

    python bench/voicing_frames.py --name ljspeech-v4 --split dev --out docs/voicing_floor/frames_dev_v4.json

Both F0 tracks are scoring.world_f0 (WORLD DIO with StoneMask) on the mel's own frame grid: a
vocoder keeps the timing, so no DTW. The reference's voiced frames at or above the mel's fmin
(below it DIO finds mains hum, not the voice) fall into three kinds:

- ``right``: the output voiced there too, its F0 within GROSS_RATIO of the reference's;
- ``gross``: voiced, but further off (a gross pitch error);
- ``lost``: the output unvoiced there (a V->UV error).

For each kind, the median over its frames of (power spectra of a Hann-windowed STFT, 1024 /
hop, the features' frame grid; f0 the reference's F0):

- ``fundamental_db``: the output's energy over the recording's in [0.75, 1.25] f0;
- ``second_harmonic_db``: the same in [1.75, 2.25] f0;
- ``between_db`` / ``ref_between_db``: energy in [1.3, 1.7] f0 (between the first two
  harmonics) over energy in [0.75, 1.25] f0, in the output / in the recording: how
  periodic the frame is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin.scoring import scores_to_json, world_f0  # noqa: E402

GROSS_RATIO = 0.2  # |F0_gen / F0_ref - 1| above this: a gross pitch error (as bench/voicing_floor.py)
BANDS = {"fundamental": (0.75, 1.25), "second_harmonic": (1.75, 2.25), "between": (1.3, 1.7)}
KINDS = ("right", "gross", "lost")
COLUMNS = ("frames", "fundamental_db", "second_harmonic_db", "between_db", "ref_between_db")


def power_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 of (N,) x (shaping.stft: Hann window, centred frames, zero-padded ends):
    (N // hop + 1, n_fft // 2 + 1)."""
    import torch

    from specgrad_plugin import shaping

    spec = shaping.stft(torch.from_numpy(x.astype(np.float64))[None], n_fft, hop,
                        shaping.hann_window(n_fft).double())
    return spec[0].abs().pow(2).T.numpy()


def band_energy(power: np.ndarray, f0: np.ndarray, band, fs: int, n_fft: int) -> np.ndarray:
    """Energy of each frame k of (K, F) power in [band[0] f0_k, band[1] f0_k] Hz: (K,)."""
    bins = np.arange(power.shape[1]) * fs / n_fft
    inside = (bins[None, :] >= band[0] * f0[:, None]) & (bins[None, :] <= band[1] * f0[:, None])
    return np.maximum((power * inside).sum(axis=1), 1e-20)


def frame_kinds(ref: np.ndarray, gen: np.ndarray, fs: int, hop: int, n_fft: int, fmin: float) -> Dict[str, list]:
    """Per kind, one (fundamental_db, second_harmonic_db, between_db, ref_between_db) per frame."""
    rf, gf = world_f0(ref, fs, hop), world_f0(gen, fs, hop)
    k = min(len(rf), len(gf))
    rf, gf = rf[:k], gf[:k]
    pr, pg = power_frames(ref, n_fft, hop)[:k], power_frames(gen, n_fft, hop)[:k]
    f0 = np.where(rf > 0, rf, 1.0)
    e = {(name, who): band_energy(p, f0, band, fs, n_fft)
         for name, band in BANDS.items() for who, p in (("gen", pg), ("ref", pr))}
    db = {
        "fundamental_db": 10 * np.log10(e["fundamental", "gen"] / e["fundamental", "ref"]),
        "second_harmonic_db": 10 * np.log10(e["second_harmonic", "gen"] / e["second_harmonic", "ref"]),
        "between_db": 10 * np.log10(e["between", "gen"] / e["fundamental", "gen"]),
        "ref_between_db": 10 * np.log10(e["between", "ref"] / e["fundamental", "ref"]),
    }
    voiced = rf >= fmin
    off = np.abs(np.where(gf > 0, gf, 1.0) / f0 - 1.0) > GROSS_RATIO
    masks = {"right": voiced & (gf > 0) & ~off, "gross": voiced & (gf > 0) & off, "lost": voiced & (gf == 0)}
    return {kind: np.stack([db[c] for c in COLUMNS[1:]], axis=1)[m].tolist() for kind, m in masks.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="a shipped model (ljspeech, ljspeech-v4, ...)")
    p.add_argument("--split", choices=("train", "dev", "eval"), default="dev")
    p.add_argument("--schedule", default="WG-6")
    p.add_argument("--seeds", default="1234,2234", help="sampling seeds; clip i uses seed + i")
    p.add_argument("--out", type=Path, required=True, help="JSON; the Markdown table goes beside it (.md)")
    args = p.parse_args(argv)
    import torch

    from specgrad_plugin.vocoder import SpecGradVocoder

    vocoder = SpecGradVocoder.from_pretrained(args.name).eval()
    train, dev, evaluation = prior_study.split_clips(3)
    paths = {"train": train, "dev": dev, "eval": evaluation}[args.split]
    refs = prior_study.load_refs(paths, 0)
    feat = vocoder.cfg.features
    frames: Dict[str, List] = {kind: [] for kind in KINDS}
    for seed in (int(s) for s in args.seeds.split(",")):
        for i, ref in enumerate(refs):
            with torch.no_grad():
                wav = vocoder(vocoder.features(ref[None])[0], schedule=args.schedule, seed=seed + i, chunk_frames=0)
            for kind, rows in frame_kinds(ref.numpy(), wav.numpy(), feat.fs, feat.hop_length, feat.n_fft,
                                          feat.fmin).items():
                frames[kind].extend(rows)
    table = {kind: {"frames": len(rows), **({c: float(np.median(np.array(rows)[:, j]))
                                               for j, c in enumerate(COLUMNS[1:])} if rows else {})}
             for kind, rows in frames.items()}
    result = {"model": args.name, "split": args.split, "clips": [q.stem for q in paths], "schedule": args.schedule,
              "seeds": args.seeds, "kinds": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(scores_to_json(result))
    lines = ["| kind | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {kind} | " + " | ".join(f"{table[kind].get(c, float('nan')):.1f}" if c != "frames"
                                          else str(table[kind]["frames"]) for c in COLUMNS) + " |" for kind in KINDS]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
