"""The one interface every denoiser family implements, so that the vocoder, the losses,
the sampler, ESPnet's task and the recipe cannot tell the families apart.

    cond = denoiser.condition(mel, response)   # once per utterance (or training batch)
    eps_hat = denoiser(x_t, cond, log_snr)     # once per diffusion step

mel: (B, K, M) log10 mel; response: (B, K, F) the prior's filter H = sigma * h;
x_t: (B, K * hop) noisy audio; log_snr: (B,); eps_hat: (B, K * hop) predicted noise.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn


class Denoiser(nn.Module):
    """eps_theta(x_t, c, level). Subclasses define condition(), forward(), context_frames()."""

    def condition(
        self, mel: torch.Tensor, response: torch.Tensor, cache_bytes: int = 0, source: Optional[torch.Tensor] = None
    ) -> Any:
        """What forward() takes as ``cond``: a function of the mel and the prior's response
        only, so inference computes it once per utterance. cache_bytes: memory the family
        may spend on precomputing per-step work (used only without autograd). source: this
        stretch of periodic_source() of the whole utterance (None: computed from ``mel``)."""
        raise NotImplementedError

    def periodic_source(self, mel: torch.Tensor) -> Optional[torch.Tensor]:
        """A (B, K * hop) signal the family derives from the whole (B, K, M) mel, such as an
        excitation at its F0 (None: the family uses none). Chunks cut it like x_t, so that
        chunked inference sees the same signal as the whole utterance."""
        return None

    def forward(self, x: torch.Tensor, cond: Any, log_snr: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def context_frames(self) -> int:
        """Mel frames on each side of a frame that can change its output (receptive field)."""
        raise NotImplementedError

    def silent_at_start(self) -> Tuple[str, ...]:
        """Names of submodules whose output starts at zero: a trained model may grow by them
        (init_from lacks their weights) and still start as the same function."""
        return ()

    def upgrade_state_dict(self, state: Dict[str, torch.Tensor], prefix: str = "") -> Dict[str, torch.Tensor]:
        """Rename, in place, the keys under ``prefix`` that older checkpoints of this family
        name otherwise; the same renaming runs inside load_state_dict."""
        return state

    def chunk_alignment(self) -> int:
        """forward_chunked starts every chunk's context on a multiple of this many frames."""
        return 1

    def forward_chunked(
        self, x: torch.Tensor, mel: torch.Tensor, response: torch.Tensor, log_snr: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        """forward(x, condition(mel, response), log_snr) computed over chunks of ``chunk`` frames
        with context_frames() of context on both sides: memory bounded by the chunk, same output."""
        hop = x.shape[-1] // mel.shape[1]
        context, frames, align = self.context_frames(), mel.shape[1], self.chunk_alignment()
        out = torch.empty_like(x)
        source = self.periodic_source(mel)
        for start in range(0, frames, chunk):
            stop = min(frames, start + chunk)
            lo, hi = max(0, start - context) // align * align, min(frames, stop + context)
            piece = None if source is None else source[:, lo * hop : hi * hop]
            cond = self.condition(mel[:, lo:hi], response[:, lo:hi], source=piece)
            y = self.forward(x[:, lo * hop : hi * hop], cond, log_snr)
            out[:, start * hop : stop * hop] = y[:, (start - lo) * hop : (stop - lo) * hop]
        return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
