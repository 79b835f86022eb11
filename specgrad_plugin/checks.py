"""Input validation: every bad input becomes one readable error naming the value, and every
doubtful one a warning that points at the caller's line."""

from __future__ import annotations

import sys
import warnings
from typing import Optional

import numpy as np
import torch

from specgrad_plugin.seeds import seed_problem, whole_number


class SpecGradInputError(ValueError):
    """Input that the vocoder cannot use; the message names it and what was expected."""


def _is_internal(frame) -> bool:
    """Whether a frame is work a call asked for (torch's, ESPnet's, or this package's outside its
    command-line tools), not the line that asked for it: under Text2Speech, the user's line
    that called it."""
    name = frame.f_globals.get("__name__", "")
    if name.startswith("specgrad_plugin.bin."):
        return False
    return name.split(".")[0] in ("specgrad_plugin", "torch", "espnet2")


class InputMelWarning(UserWarning):
    """An input mel unlike the training mels (mel_domain.InputWarnings): a category of its own,
    so that a caller can filter it, or name the utterance it came from (decode does)."""


def warn_caller(message: str, category: type = UserWarning) -> None:
    """warnings.warn(message, category), attributed to the nearest frame outside torch, ESPnet
    and this package (its command-line tools count as callers): the line that called the vocoder,
    whichever path led here (a module's __call__ and torch's no_grad wrapper sit between, at
    depths that differ between paths)."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn_caller's caller
    while frame.f_back is not None and _is_internal(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def check_mel(mel: torch.Tensor, n_mels: int, name: str = "mel") -> torch.Tensor:
    """Validate a log10 mel of shape (K, n_mels) or (B, K, n_mels); return it as (B, K, n_mels)."""
    if not isinstance(mel, torch.Tensor):
        raise SpecGradInputError(f"{name}: expected a torch.Tensor, got {type(mel).__name__}")
    shape = tuple(mel.shape)  # as given, for the messages
    if mel.dim() == 2:
        mel = mel.unsqueeze(0)
    if mel.dim() != 3:
        raise SpecGradInputError(f"{name}: shape {shape}, expected (frames, {n_mels}) or (batch, frames, {n_mels})")
    if mel.shape[-1] != n_mels:
        hint = " (is it (n_mels, frames)? transpose it)" if mel.shape[-2] == n_mels else ""
        raise SpecGradInputError(f"{name}: {mel.shape[-1]} mel bands in shape {shape}, expected {n_mels}{hint}")
    if mel.shape[0] == 0:
        raise SpecGradInputError(f"{name}: shape {shape}, a batch of 0 mels; expected at least one")
    if mel.shape[-2] == 0:
        raise SpecGradInputError(f"{name}: empty mel (0 frames), expected at least 1 frame")
    if mel.device.type == "meta":
        raise SpecGradInputError(f"{name}: on the meta device (no values), expected a CPU or CUDA tensor")
    if not mel.is_floating_point():
        raise SpecGradInputError(f"{name}: dtype {mel.dtype}, expected a floating-point mel")
    bad = ~torch.isfinite(mel)
    if bad.any():
        frame = int(bad.nonzero()[0][-2])
        raise SpecGradInputError(
            f"{name}: {int(bad.sum())} non-finite values (NaN/inf), first at frame {frame}; expected finite log10 mel"
        )
    return mel


def check_one_mel(mel: torch.Tensor, n_mels: int, name: str = "mel") -> torch.Tensor:
    """check_mel for one utterance: (K, n_mels) or (1, K, n_mels) -> (K, n_mels). A batch of
    several is refused, where taking its first item would drop the others without a word."""
    checked = check_mel(mel, n_mels, name)
    if checked.shape[0] != 1:
        raise SpecGradInputError(f"{name}: shape {tuple(mel.shape)}, {checked.shape[0]} mels in one item; "
                                 f"expected one utterance's (frames, {n_mels}) mel")
    return checked[0]


def check_whole_number(value, name: str, expected: str) -> int:
    """seeds.whole_number, or SpecGradInputError naming the value and what was expected."""
    number = whole_number(value)
    if number is None:
        raise SpecGradInputError(f"{name}: {value!r}, expected {expected}")
    return number


def check_seed(seed, name: str = "seed") -> Optional[int]:
    """None (the global RNG) or an integer in [0, seeds.MAX_SEED] as an int; anything else is
    refused by name (seeds.seed_problem)."""
    problem = seed_problem(seed, name)
    if problem:
        raise SpecGradInputError(problem)
    return None if seed is None else whole_number(seed)


def whole_clip_min_samples(hop_length: int, n_fft: int) -> int:
    """The shortest audio whose whole-clip mel can be taken: the clip is cut to whole hops, and
    the centred STFT's reflect padding (n_fft // 2 samples each side) needs more samples than it
    pads. 768 at n_fft 1024, hop 256."""
    return (n_fft // 2 // hop_length + 1) * hop_length


def audio_problem(samples: int, channels: int, hop_length: int, fs: Optional[int] = None,
                  expected_fs: Optional[int] = None, n_fft: int = 0) -> Optional[str]:
    """What makes audio of this many samples, channels and rate unusable, in words (None: usable).
    The one set of rules for arrays (check_audio) and for file headers (data.check_sound_scp).
    n_fft > 0: the whole clip's mel will be taken (decoding, scoring, ESPnet training's
    statistics), so it must be at least whole_clip_min_samples long; n_fft = 0 (the built-in
    trainer's crops, which pad a short clip): one hop."""
    if fs is not None and expected_fs is not None and int(fs) != int(expected_fs):
        return f"sample rate {fs} Hz, expected {expected_fs} Hz (or resample it)"
    if channels != 1:
        return f"{channels} channels, expected mono"
    if samples < hop_length:
        return f"{samples} samples, expected at least one hop ({hop_length} samples)"
    if n_fft and samples < whole_clip_min_samples(hop_length, n_fft):
        return (f"{samples} samples, expected at least {whole_clip_min_samples(hop_length, n_fft)} (the mel's "
                f"{n_fft}-point window needs more than {n_fft // 2} samples, in whole hops of {hop_length})")
    return None


def check_audio(wav, hop_length: int, name: str = "audio", fs: Optional[int] = None,
                expected_fs: Optional[int] = None, n_fft: int = 0) -> np.ndarray:
    """Validate (N,) or (N, C) float audio (a numpy array or a CPU tensor), at ``fs`` when given;
    return it as (N,) float32, or raise one SpecGradInputError naming ``name``. n_fft: as in
    audio_problem."""
    wav = np.asarray(wav)
    if wav.ndim not in (1, 2):
        raise SpecGradInputError(f"{name}: audio of shape {wav.shape}, expected (samples,) mono")
    problem = audio_problem(wav.shape[0], 1 if wav.ndim == 1 else wav.shape[1], hop_length, fs, expected_fs,
                            n_fft)
    if problem:
        raise SpecGradInputError(f"{name}: {problem}")
    if not np.issubdtype(wav.dtype, np.floating):
        raise SpecGradInputError(f"{name}: dtype {wav.dtype}, expected float audio in [-1, 1]")
    if not np.isfinite(wav).all():
        raise SpecGradInputError(f"{name}: NaN/inf samples, expected finite audio")
    return wav.reshape(-1).astype(np.float32, copy=False)
