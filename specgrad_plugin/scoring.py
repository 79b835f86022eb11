"""Objective scores of a generated waveform against its reference (thin wrappers).

mel-L1 uses our own features; MR-STFT is auraloss's; PESQ (wide band, at 16 kHz)
and STOI are the pesq and pystoi packages, used when installed (extra ``eval``).
Griffin-Lim from the same mel, ESPnet's own implementation, is the floor any
trained vocoder must beat.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from scipy.signal import resample_poly

from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.features import LogMelExtractor


def _pair(ref: np.ndarray, gen: np.ndarray, hop: int):
    n = min(len(ref), len(gen))
    n -= n % hop
    return ref[:n].astype(np.float32), gen[:n].astype(np.float32)


def mel_l1(ref: np.ndarray, gen: np.ndarray, extractor: LogMelExtractor) -> float:
    """Mean |log10 mel(ref) - log10 mel(gen)| over frames and bands."""
    ref, gen = _pair(ref, gen, extractor.cfg.hop_length)
    with torch.no_grad():
        mels = extractor(torch.from_numpy(np.stack([ref, gen])).to(extractor.mel_basis.device))
    return float((mels[0] - mels[1]).abs().mean())


def mr_stft(ref: np.ndarray, gen: np.ndarray) -> float:
    """auraloss's multi-resolution STFT distance (spectral convergence + log magnitude)."""
    import auraloss

    ref, gen = _pair(ref, gen, 1)
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    with torch.no_grad():
        return float(loss(torch.from_numpy(gen)[None, None], torch.from_numpy(ref)[None, None]))


def pesq_wb(ref: np.ndarray, gen: np.ndarray, fs: int) -> float:
    from pesq import pesq

    ref, gen = _pair(ref, gen, 1)
    ref16, gen16 = (resample_poly(x, 16000, fs).astype(np.float32) for x in (ref, gen))
    return float(pesq(16000, ref16, gen16, "wb"))


def stoi(ref: np.ndarray, gen: np.ndarray, fs: int) -> float:
    from pystoi import stoi as _stoi

    ref, gen = _pair(ref, gen, 1)
    return float(_stoi(ref, gen, fs, extended=False))


def score(ref: np.ndarray, gen: np.ndarray, extractor: LogMelExtractor) -> Dict[str, float]:
    """All scores whose packages are installed."""
    fs = extractor.cfg.fs
    out = {"mel_l1": mel_l1(ref, gen, extractor)}
    for name, fn in (("mr_stft", lambda: mr_stft(ref, gen)), ("pesq", lambda: pesq_wb(ref, gen, fs)),
                     ("stoi", lambda: stoi(ref, gen, fs))):
        try:
            out[name] = fn()
        except ImportError:
            pass
    return out


def griffin_lim(mel: torch.Tensor, features: FeatureConfig, iterations: int = 32) -> np.ndarray:
    """ESPnet's Griffin-Lim vocoder on a (K, M) log10 mel -> K * hop samples."""
    from espnet2.utils.griffin_lim import Spectrogram2Waveform

    vocoder = Spectrogram2Waveform(
        n_fft=features.n_fft, n_shift=features.hop_length, fs=features.fs, n_mels=features.n_mels,
        win_length=features.win_length, fmin=features.fmin, fmax=features.fmax,
        griffin_lim_iters=iterations,
    )
    wav = vocoder(mel.float().cpu()).numpy()
    target = mel.shape[0] * features.hop_length
    return np.pad(wav, (0, max(0, target - len(wav))))[:target]

