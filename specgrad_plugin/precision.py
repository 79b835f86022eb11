"""Numeric precision on accelerators: which autocast dtype, and TF32.

The denoiser is the only part that runs in reduced precision; the prior's filter, the STFT
pair, the loss and the sampler always run in float32 (autocast is switched off around them
in loss.py and the frame denoiser), because L^-1 divides by the envelope and a bf16
mantissa (8 bits) would put ~0.4 % of noise into every weighted residual.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the device computes it natively (CPU, Ampere and newer), else float16
    (older GPUs; ESPnet's --use_amp then scales the loss with its GradScaler)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions (no effect on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """set_tf32(enabled) for the block only: the previous flags are back after it, so a library
    call does not switch other models in the process. Flags that a caller set through torch's
    newer fp32_precision API cannot be read as allow_tf32 (torch raises); they are left alone."""
    wanted = bool(enabled)
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    try:
        before = [f.allow_tf32 for f in flags]
    except RuntimeError:
        before = [wanted] * len(flags)
    # only the flags that differ are written: a write mixes torch's two APIs (see above)
    changed = [f for f, value in zip(flags, before, strict=True) if value != wanted]
    for f in changed:
        f.allow_tf32 = wanted
    try:
        yield
    finally:
        for f in changed:
            f.allow_tf32 = not wanted


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """torch.autocast for ``dtype`` on ``device``; a disabled one when dtype is None."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def float32_only(device: torch.device):
    """A region that runs in float32 even inside an autocast region (ESPnet's own, say)."""
    return torch.autocast(device.type, enabled=False)
