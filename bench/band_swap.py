"""Where a vocoder's error is: put the reference's STFT back in one band (or only its
magnitude, or only its phase) and score again. A band whose swap lifts PESQ / V/UV the
most is where the model loses them. ljspeech_mini's last 3 clips (dev), or its first 3
(training clips: is the error a generalisation gap or one the model makes on its own data?).

    python bench/band_swap.py                              # the shipped model, WG-6
    python bench/band_swap.py --model exp/<tag>/21epoch.pth --table docs/band_swap.md
    python bench/band_swap.py --f0_bands --table docs/band_swap_f0.md     # bands that follow the voice

With --f0_bands the bands follow the reference's F0 frame by frame (WORLD, on the frames it
calls voiced): the fundamental and what lies under it. An oracle, since a vocoder has no
reference: it says which part of the voice the model gets wrong, not a method.

Prints a markdown table and writes it to --table (default: none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from prior_study import load_refs, split_clips  # noqa: E402

from specgrad_plugin import shaping  # noqa: E402
from specgrad_plugin.sampler_loss import fundamental_mask, reference_f0  # noqa: E402
from specgrad_plugin.scoring import score, scores_to_json  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

METRICS = ("pesq", "stoi", "vuv_error", "log_f0_rmse", "mel_l1", "mr_stft")
N_FFT, HOP = 1024, 256
Swap = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (gen, ref, band) -> spec


def band(freqs: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(F, 1) mask of the bins in [low, high) Hz."""
    return ((freqs >= low) & (freqs < high)).float()[:, None]


def whole(mask: torch.Tensor) -> Swap:
    return lambda g, r: r * mask + g * (1 - mask)


def magnitude(mask: torch.Tensor) -> Swap:
    return lambda g, r: (r.abs() * mask + g.abs() * (1 - mask)) * torch.exp(1j * g.angle())


def phase(mask: torch.Tensor) -> Swap:
    return lambda g, r: g.abs() * torch.exp(1j * (r.angle() * mask + g.angle() * (1 - mask)))


def swaps(freqs: torch.Tensor) -> Dict[str, Swap]:
    """Named ways to mix a generated and a reference STFT, (F, T) complex each."""
    out = {"generated as is": lambda g, r: g}
    for low, high in ((0, 500), (0, 1000), (500, 1000), (1000, 2000), (2000, 5000), (5000, 11025)):
        out[f"reference {low}-{high} Hz"] = whole(band(freqs, low, high))
    out["reference magnitude 0-1000 Hz"] = magnitude(band(freqs, 0, 1000))
    out["reference phase 0-1000 Hz"] = phase(band(freqs, 0, 1000))
    return out


def f0_swaps(f0: torch.Tensor, fs: float, n_fft: int) -> Dict[str, Swap]:
    """Named mixes over bands that follow the reference's F0 (T,) (0: unvoiced) frame by frame."""
    fundamental, under = (fundamental_mask(f0[None], fs, n_fft, ratio)[0] for ratio in (1.5, 0.75))
    freqs = torch.arange(n_fft // 2 + 1) * fs / n_fft
    return {"generated as is": lambda g, r: g,
            "generated, nothing under 0.75 F0": lambda g, r: g * (1 - under),
            "reference under 0.75 F0": whole(under),
            "reference below 1.5 F0": whole(fundamental),
            "reference magnitude below 1.5 F0": magnitude(fundamental),
            "reference phase below 1.5 F0": phase(fundamental),
            "reference 0-1000 Hz": whole(band(freqs, 0, 1000))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ljspeech", help="a shipped name or a checkpoint path")
    p.add_argument("--schedule", default="WG-6")
    p.add_argument("--clips", choices=("dev", "train"), default="dev", help="dev: the last 3 clips; train: the first 3")
    p.add_argument("--seed", type=int, default=1234, help="sampling seed of the first clip (+i for clip i)")
    p.add_argument("--table", type=Path, default=None, help="also write the table here (.md; .json beside it)")
    p.add_argument("--f0_bands", action="store_true", help="bands that follow the reference's F0 (an oracle)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if Path(args.model).exists():
        vocoder = SpecGradVocoder.from_checkpoint(args.model)
    else:
        vocoder = SpecGradVocoder.from_pretrained(args.model)
    vocoder.eval()
    train_paths, dev_paths, _ = split_clips(3)
    paths = dev_paths if args.clips == "dev" else train_paths[:3]
    fs = vocoder.fs
    window = shaping.hann_window(N_FFT)
    freqs = torch.arange(N_FFT // 2 + 1) * fs / N_FFT
    totals: Dict[str, Dict[str, list]] = {}
    for i, ref in enumerate(load_refs(paths, 0, fs, vocoder.hop_length)):
        gen = vocoder(vocoder.features(ref[None])[0], args.schedule, seed=args.seed + i)
        n = min(len(gen), len(ref))
        g_spec, r_spec = (shaping.stft(x[:n][None], N_FFT, HOP, window)[0] for x in (gen, ref))
        if args.f0_bands:  # WORLD's frames are the centred STFT's: one per hop from sample 0
            f0 = reference_f0(ref[:n][None], fs, HOP)[0]
        for name, mix in (f0_swaps(f0, fs, N_FFT) if args.f0_bands else swaps(freqs)).items():
            wav = shaping.istft(mix(g_spec, r_spec)[None], N_FFT, HOP, window, n)[0].clamp(-1, 1)
            scores = score(ref[:n].numpy(), wav.numpy(), vocoder.features)
            for metric in METRICS:
                totals.setdefault(name, {}).setdefault(metric, []).append(scores[metric])
    means = {name: {m: float(np.nanmean(v)) for m, v in by.items()} for name, by in totals.items()}
    lines = [f"Model {args.model}, {args.schedule}, seeds {args.seed}+i, clips "
             f"{', '.join(p.stem for p in paths)} ({args.clips}, whole); STFT {N_FFT}/{HOP}.", "",
             "| output | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    lines += [f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |" for name, row in means.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.table:
        args.table.write_text(text)
        args.table.with_suffix(".json").write_text(scores_to_json(means))


if __name__ == "__main__":
    main()
