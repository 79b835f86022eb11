"""Speech-like test signals for runs without real recordings.

A voiced source (harmonics of a gliding f0) through three gliding formant
resonators, alternating with noise bursts and pauses: enough spectral structure
for the filter and the trainer to have something to follow.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def _resonator(freq: float, bandwidth: float, fs: int):
    r = np.exp(-np.pi * bandwidth / fs)
    theta = 2 * np.pi * freq / fs
    return [1.0 - r], [1.0, -2 * r * np.cos(theta), r * r]


def speech_like(seconds: float, fs: int = 22050, seed: int = 0) -> np.ndarray:
    """(round(seconds * fs),) float32 signal, peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(n - pos, int(fs * rng.uniform(0.08, 0.3)))
        kind = rng.choice(["voiced", "voiced", "noise", "pause"])
        t = np.arange(length) / fs
        if kind == "voiced":
            f0 = rng.uniform(140, 260) * (1 + 0.2 * t / max(t[-1], 1e-3) * rng.uniform(-1, 1))
            phase = 2 * np.pi * np.cumsum(f0) / fs
            src = sum(np.sin(k * phase) / k for k in range(1, int(4000 / f0.max())))
            seg = np.zeros(length)
            for formant, bw in zip(rng.uniform([300, 900, 2200], [800, 2000, 3200]), [80, 120, 200], strict=True):
                b, a = _resonator(formant, bw, fs)
                seg += lfilter(b, a, src)
        elif kind == "noise":
            b, a = _resonator(rng.uniform(3000, 7000), 1500, fs)
            seg = lfilter(b, a, rng.standard_normal(length)) * 0.5
        else:
            seg = 1e-4 * rng.standard_normal(length)
        ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.01 * fs))
        out[pos : pos + length] = seg * ramp
        pos += length
    return (0.5 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)
