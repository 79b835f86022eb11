"""Audio helpers of the unseen-voice bench (bench/unseen_voices.py): reading package sources,
joining words into one clip, level and F0 measures, WORLD resynthesis. Mono float arrays."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
import soundfile as sf

FS = 22050
JOIN_FADE_S = 0.01  # raised-cosine fade at the edges of words joined into one clip


def read_source(path: Path, raw_fs: int) -> Tuple[np.ndarray, int]:
    """(N,) float64 mono audio and its rate from a wav/ogg file, or a headerless 16-bit .raw."""
    if path.suffix == ".raw":
        return np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0, raw_fs
    wav, fs = sf.read(str(path), dtype="float64", always_2d=True)
    return wav.mean(axis=1), fs


def join_words(pieces: List[np.ndarray], fs: int, max_seconds: float) -> Tuple[np.ndarray, int]:
    """(joined audio, pieces used): the leading pieces that fit in max_seconds, each with
    short raised-cosine fades at its edges (the first one cut if it alone is longer)."""
    fade = int(JOIN_FADE_S * fs)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade)) if fade > 1 else np.ones(0)
    limit = int(max_seconds * fs)
    out: List[np.ndarray] = []
    for piece in pieces:
        if out and sum(map(len, out)) + len(piece) > limit:
            break
        piece = piece[:limit].copy()
        if len(pieces) > 1 and len(piece) > 2 * fade:
            piece[:fade] *= ramp
            piece[-fade:] *= ramp[::-1]
        out.append(piece)
    return np.concatenate(out), len(out)


def frame_power(wav: np.ndarray, fs: int) -> Tuple[np.ndarray, int]:
    """((frames,) mean power of the whole 20 ms frames of wav, the frame length in samples)."""
    n = int(0.02 * fs)
    return (wav[: len(wav) // n * n].reshape(-1, n) ** 2).mean(axis=1), n


def active_rms(wav: np.ndarray, fs: int, floor_db: float = 40.0) -> float:
    """RMS over the 20 ms frames within floor_db of the loudest one (speech, not pauses)."""
    power, _ = frame_power(wav, fs)
    keep = power >= power.max() * 10 ** (-floor_db / 10)
    return float(np.sqrt(power[keep].mean()))


def trim_silence(wav: np.ndarray, fs: int, floor_db: float, pad_s: float = 0.05) -> np.ndarray:
    """wav without its leading and trailing 20 ms frames more than floor_db below the loudest
    one, keeping pad_s of what was cut on each side (a word's onset and decay)."""
    power, n = frame_power(wav, fs)
    if not len(power) or power.max() <= 0:
        return wav
    loud = np.flatnonzero(power >= power.max() * 10 ** (-floor_db / 10))
    pad = int(pad_s * fs)
    return wav[max(0, loud[0] * n - pad): min(len(wav), (loud[-1] + 1) * n + pad)]


def level_gain(wav: np.ndarray, target_rms: float) -> float:
    """The gain that brings wav's active RMS to target_rms, lowered if the peak would pass 0.97."""
    return float(min(target_rms / active_rms(wav, FS), 0.97 / np.abs(wav).max()))


def median_f0(wav: np.ndarray, fs: int) -> float:
    import pyworld

    x = wav.astype(np.float64)
    coarse, times = pyworld.dio(x, fs, f0_floor=50.0, f0_ceil=600.0, frame_period=10.0)
    f0 = pyworld.stonemask(x, coarse, times, fs)
    return float(np.median(f0[f0 > 0])) if (f0 > 0).any() else float("nan")


def world_resynthesis(wav: np.ndarray, fs: int, f0_scale: float) -> np.ndarray:
    import pyworld

    x = wav.astype(np.float64)
    f0, times = pyworld.harvest(x, fs)
    sp, ap = pyworld.cheaptrick(x, f0, times, fs), pyworld.d4c(x, f0, times, fs)
    y = pyworld.synthesize(f0 * f0_scale, sp, ap, fs)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
