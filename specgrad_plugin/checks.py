"""Input validation: every bad input becomes one readable error naming the value."""

from __future__ import annotations

from typing import Optional

import torch


class SpecGradInputError(ValueError):
    """Input that the vocoder cannot use; the message names it and what was expected."""


def check_mel(mel: torch.Tensor, n_mels: int, name: str = "mel") -> torch.Tensor:
    """Validate a log10 mel of shape (K, n_mels) or (B, K, n_mels); return it as (B, K, n_mels)."""
    if not isinstance(mel, torch.Tensor):
        raise SpecGradInputError(f"{name}: expected a torch.Tensor, got {type(mel).__name__}")
    if mel.dim() == 2:
        mel = mel.unsqueeze(0)
    if mel.dim() != 3:
        raise SpecGradInputError(
            f"{name}: shape {tuple(mel.shape)}, expected (frames, {n_mels}) or (batch, frames, {n_mels})"
        )
    if mel.shape[-1] != n_mels:
        hint = " (is it (n_mels, frames)? transpose it)" if mel.shape[-2] == n_mels else ""
        raise SpecGradInputError(
            f"{name}: {mel.shape[-1]} mel bands in shape {tuple(mel.shape)}, expected {n_mels}{hint}"
        )
    if mel.shape[-2] == 0:
        raise SpecGradInputError(f"{name}: empty mel (0 frames), expected at least 1 frame")
    if not mel.is_floating_point():
        raise SpecGradInputError(f"{name}: dtype {mel.dtype}, expected a floating-point mel")
    bad = ~torch.isfinite(mel)
    if bad.any():
        frame = int(bad.nonzero()[0][-2])
        raise SpecGradInputError(
            f"{name}: {int(bad.sum())} non-finite values (NaN/inf), first at frame {frame}; expected finite log10 mel"
        )
    return mel


def check_audio(
    wav: torch.Tensor,
    fs: Optional[int],
    expected_fs: int,
    hop_length: int,
    name: str = "audio",
) -> torch.Tensor:
    """Validate a waveform of shape (N,) or (B, N) at ``expected_fs``; return it as (B, N)."""
    if not isinstance(wav, torch.Tensor):
        raise SpecGradInputError(f"{name}: expected a torch.Tensor, got {type(wav).__name__}")
    if fs is not None and int(fs) != int(expected_fs):
        raise SpecGradInputError(f"{name}: sample rate {fs} Hz, expected {expected_fs} Hz")
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2:
        raise SpecGradInputError(f"{name}: shape {tuple(wav.shape)}, expected (samples,) or (batch, samples) mono")
    if wav.shape[-1] < hop_length:
        raise SpecGradInputError(
            f"{name}: {wav.shape[-1]} samples, expected at least one hop ({hop_length} samples)"
        )
    if not wav.is_floating_point():
        raise SpecGradInputError(f"{name}: dtype {wav.dtype}, expected float audio in [-1, 1]")
    if not torch.isfinite(wav).all():
        raise SpecGradInputError(f"{name}: contains NaN/inf samples, expected finite audio")
    return wav
