"""Objective scores of a generated waveform against its reference (thin wrappers).

mel-L1 uses our own features; MR-STFT is auraloss's; PESQ (wide band, at 16 kHz)
and STOI are the pesq and pystoi packages; MCD, log-F0 RMSE and V/UV error follow
ESPnet's evaluate_mcd / evaluate_f0 definitions (SPTK mel-cepstrum of order 34 with
alpha 0.45 at 22.05 kHz, WORLD F0, frames aligned by DTW on the mel-cepstra) with
pysptk, pyworld and fastdtw. All are in the ``eval`` extra; a score whose package is
missing is left out. Griffin-Lim from the same mel, ESPnet's own implementation, is
the floor any trained vocoder must beat.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from scipy.signal import resample_poly

from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.features import LogMelExtractor


def _map_leaves(value, leaf):
    """value with every item that is not a dict, list or tuple replaced by leaf(item)."""
    if isinstance(value, dict):
        return {k: _map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_leaves(v, leaf) for v in value]
    return leaf(value)


def scores_to_json(scores: Dict, indent: Optional[int] = 2) -> str:
    """Scores as strict JSON: a score that is not defined for a clip (NaN) is written as
    null, since bare NaN is not JSON and strict parsers (jq, JavaScript, Go) refuse it.
    indent None: one line (a JSON Lines row), still ending in a newline."""
    finite = _map_leaves(scores, lambda v: None if isinstance(v, float) and not math.isfinite(v) else v)
    return json.dumps(finite, indent=indent, allow_nan=False) + "\n"


def scores_from_json(text: str) -> Dict:
    """The inverse of :func:`scores_to_json`: null scores read back as NaN."""
    return _map_leaves(json.loads(text), lambda v: float("nan") if v is None else v)


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
    """auraloss's multi-resolution STFT distance (spectral convergence + log magnitude); NaN
    for clips no longer than half its largest FFT (its reflect padding needs more)."""
    import auraloss

    ref, gen = _pair(ref, gen, 1)
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    if len(ref) <= max(loss.fft_sizes) // 2:
        return float("nan")
    with torch.no_grad():
        return float(loss(torch.from_numpy(gen)[None, None], torch.from_numpy(ref)[None, None]))


def pesq_wb(ref: np.ndarray, gen: np.ndarray, fs: int) -> float:
    """PESQ wide-band at 16 kHz; NaN where PESQ is undefined (under 1/4 s, or no speech
    detected in the reference), so a short or silent clip does not stop a run. A silent
    (all-zero) output gets a white dither at -140 dBFS: pesq's level alignment divides by its
    power, and the dither makes it score as the near-silence it is (about 1.03, PESQ's floor)
    instead of crashing or leaving the worst output out of a mean."""
    from pesq import PesqError, pesq

    ref, gen = _pair(ref, gen, 1)
    ref16, gen16 = (resample_poly(x, 16000, fs).astype(np.float32) for x in (ref, gen))
    if np.any(ref16) and not np.any(gen16):
        gen16 = (1e-7 * np.random.default_rng(0).standard_normal(len(gen16))).astype(np.float32)
    try:
        return float(pesq(16000, ref16, gen16, "wb"))
    except PesqError:
        return float("nan")


def stoi(ref: np.ndarray, gen: np.ndarray, fs: int) -> float:
    """STOI; NaN where it is undefined, as pesq_wb, since a mean over clips must not count a
    placeholder as a score: a silent (all-zero) reference, where pystoi returns 0, and one
    with too few frames (under about 0.4 s), where it returns 1e-5 with a warning."""
    from pystoi import stoi as _stoi

    ref, gen = _pair(ref, gen, 1)
    if not np.any(ref):
        return float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref, gen, fs, extended=False))
    undefined = False
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            undefined = True
        else:  # pass on what is not the case handled here
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float("nan") if undefined else value


# SPTK mel-cepstrum settings by sampling rate, as ESPnet's evaluate_mcd.py picks them.
MCEP_PARAMS = {16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 44100: (39, 0.53), 48000: (39, 0.55)}


def mel_cepstra(x: np.ndarray, fs: int, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """(frames, order + 1) SPTK mel-cepstra of Hann-windowed frames."""
    import pysptk

    order, alpha = MCEP_PARAMS[fs]
    x = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    return np.stack([pysptk.sptk.mcep(f, order=order, alpha=alpha, etype=1, eps=1e-6,
                                      ) for f in frames])


def _dtw_path(ref_mcep: np.ndarray, gen_mcep: np.ndarray):
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    _, path = fastdtw(gen_mcep, ref_mcep, dist=euclidean)
    return np.array(path).T  # (2, L): gen index, ref index


def world_f0(x: np.ndarray, fs: float, hop: int = 256) -> np.ndarray:
    """WORLD F0 of (N,) x at fs Hz, one value every hop samples (DIO 40-800 Hz refined by
    StoneMask; 0 where unvoiced): (N,) -> (N // hop + 1,)."""
    import pyworld

    x = x.astype(np.float64)
    coarse, times = pyworld.dio(x, fs, f0_floor=40.0, f0_ceil=800.0, frame_period=1000.0 * hop / fs)
    return pyworld.stonemask(x, coarse, times, fs)


def harvest_f0(x: np.ndarray, fs: float, hop: int = 256) -> np.ndarray:
    """WORLD Harvest F0 of (N,) x at fs Hz, 40-800 Hz, one value every hop samples (0 where
    unvoiced): (N,) -> (N // hop + 1,), on world_f0's frames. Slower than DIO, and its voicing
    looks at several periods at once; ESPnet's metrics use DIO (world_f0)."""
    import pyworld

    f0, _ = pyworld.harvest(x.astype(np.float64), fs, f0_floor=40.0, f0_ceil=800.0, frame_period=1000.0 * hop / fs)
    return f0


def aligned_f0(ref: np.ndarray, gen: np.ndarray, fs: int, hop: int = 256,
               tracks: Optional[Tuple[np.ndarray, np.ndarray]] = None,
               ref_mcep: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, float]:
    """WORLD F0 (DIO 40-800 Hz refined by StoneMask; 0 where unvoiced) of both signals on their
    frames aligned by DTW on the mel-cepstra, and the MCD (dB) along that path:
    (ref_f0 (L,), gen_f0 (L,), mcd), as ESPnet's evaluate_mcd / evaluate_f0. tracks: the two
    signals' world_f0 at this hop, and ref_mcep: mel_cepstra(ref, fs, hop=hop), when the caller
    has them already (scoring several outputs against one reference)."""
    ref_mcep = mel_cepstra(ref, fs, hop=hop) if ref_mcep is None else ref_mcep
    gen_mcep = mel_cepstra(gen, fs, hop=hop)
    gi, ri = _dtw_path(ref_mcep, gen_mcep)
    diff2 = np.sum((gen_mcep[gi] - ref_mcep[ri]) ** 2, axis=1)
    mcd = float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * diff2)))
    f0 = list(tracks) if tracks is not None else [world_f0(ref, fs, hop), world_f0(gen, fs, hop)]
    n = min(len(f0[0]), len(ref_mcep)), min(len(f0[1]), len(gen_mcep))
    keep = (ri < n[0]) & (gi < n[1])
    return f0[0][ri[keep]], f0[1][gi[keep]], mcd


def f0_errors(ref_f0: np.ndarray, gen_f0: np.ndarray) -> Dict[str, float]:
    """log-F0 RMSE (natural log, on frames voiced in both; nan if none) and V/UV error (the
    share of frames whose voicing differs) of two aligned (L,) F0 tracks, 0 where unvoiced."""
    voiced = (ref_f0 > 0) & (gen_f0 > 0)
    rmse = float(np.sqrt(np.mean((np.log(ref_f0[voiced]) - np.log(gen_f0[voiced])) ** 2))) \
        if voiced.any() else float("nan")
    return {"log_f0_rmse": rmse, "vuv_error": float(np.mean((ref_f0 > 0) != (gen_f0 > 0)))}


FRAME_BLOCK = 43  # frames per block of frame_synchronous_share: half a second at 22.05 kHz, hop 256


def frame_synchronous_share(x: np.ndarray, hop: int, block: int = FRAME_BLOCK) -> float:
    """The share of (N,) x's energy that repeats every ``hop`` samples: x cut into blocks of
    ``block`` frames, each block replaced by the average of its frames,

        s = sum_b block |mean_k x_{b,k}|^2 / sum_b |x_b|^2     (x_{b,k}: frame k of block b)

    About 1 / block for a signal unrelated to the frame grid (speech), 1 for one that repeats
    every hop: a buzz at multiples of fs / hop, what a frame-rate vocoder makes when it outputs
    the same thing in every frame. Samples past the last whole block are left out."""
    usable = len(x) // (hop * block) * hop * block
    if usable == 0:
        raise ValueError(f"frame_synchronous_share: {len(x)} samples, expected at least one block of "
                         f"{block} x {hop}")
    blocks = np.asarray(x[:usable], dtype=np.float64).reshape(-1, block, hop)
    return float(block * np.sum(blocks.mean(axis=1) ** 2) / max(np.sum(blocks**2), 1e-20))


def mcd_and_f0(ref: np.ndarray, gen: np.ndarray, fs: int, hop: int = 256) -> Dict[str, float]:
    """MCD (dB), log-F0 RMSE and V/UV error (f0_errors) on DTW-aligned frames (ESPnet's definitions)."""
    ref_f0, gen_f0, mcd = aligned_f0(ref, gen, fs, hop)
    return {"mcd": mcd, **f0_errors(ref_f0, gen_f0)}


def distill_mos(gen: np.ndarray, fs: int) -> float:
    """No-reference MOS from DistillMOS (weights inside its wheel); ImportError when not installed."""
    import distillmos

    model = _cached("distillmos", distillmos.ConvTransformerSQAModel)
    wav = torch.from_numpy(resample_poly(gen, 16000, fs).astype(np.float32))[None]
    with torch.no_grad():
        return float(model(wav))


_MODELS: Dict[str, torch.nn.Module] = {}


def _cached(name: str, factory) -> torch.nn.Module:
    if name not in _MODELS:
        _MODELS[name] = factory().eval()
    return _MODELS[name]


# the scores of the eval extra and the packages each needs (DistillMOS is an optional extra of its own)
EVAL_PACKAGES = {"pesq": ("pesq",), "stoi": ("pystoi",), "mr_stft": ("auraloss",),
                 "mcd, log_f0_rmse, vuv_error": ("pysptk", "pyworld", "fastdtw")}


def unavailable_scores() -> Dict[str, List[str]]:
    """{scores: [missing packages]} for the eval extra's scores that score() will leave out."""
    missing = {}
    for names, packages in EVAL_PACKAGES.items():
        absent = [p for p in packages if importlib.util.find_spec(p) is None]
        if absent:
            missing[names] = absent
    return missing


def score(ref: np.ndarray, gen: np.ndarray, extractor: LogMelExtractor, heavy: bool = True) -> Dict[str, float]:
    """All scores whose packages are installed; heavy=False skips MCD/F0 and DistillMOS."""
    fs = extractor.cfg.fs
    out = {"mel_l1": mel_l1(ref, gen, extractor)}
    metrics = [("mr_stft", lambda: mr_stft(ref, gen)), ("pesq", lambda: pesq_wb(ref, gen, fs)),
               ("stoi", lambda: stoi(ref, gen, fs))]
    if heavy:
        metrics += [("mcd_f0", lambda: mcd_and_f0(ref, gen, fs, extractor.cfg.hop_length)),
                    ("distillmos", lambda: distill_mos(gen, fs))]
    for name, fn in metrics:
        try:
            value = fn()
        except ImportError:
            continue
        out.update(value if isinstance(value, dict) else {name: value})
    return out


def griffin_lim(mel: torch.Tensor, features: FeatureConfig, iterations: int = 32, seed: int = 0) -> np.ndarray:
    """ESPnet's Griffin-Lim on a (K, M) log10 mel -> K * hop samples: its mel-to-linear inverse
    (``espnet2.utils.griffin_lim.logmel2linear``) and librosa's fast Griffin-Lim with ESPnet's
    settings. The start phases are random; they come from ``seed``, so the same mel gives the
    same waveform (ESPnet's own wrapper draws them afresh on every call)."""
    import librosa
    from espnet2.utils.griffin_lim import logmel2linear

    linear = logmel2linear(mel.float().cpu().numpy(), fs=features.fs, n_fft=features.n_fft,
                           n_mels=features.n_mels, fmin=features.fmin, fmax=features.fmax)
    wav = librosa.griffinlim(np.abs(linear.T), n_iter=iterations, hop_length=features.hop_length,
                             win_length=features.win_length, window="hann", center=linear.shape[0] > 1,
                             random_state=seed).astype(np.float32)
    target = mel.shape[0] * features.hop_length
    return np.pad(wav, (0, max(0, target - len(wav))))[:target]

