"""The noise level as the denoisers see it: a continuous log-SNR, embedded by sinusoids."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LevelEmbedding(nn.Module):
    """Continuous noise level (log-SNR) (B,) -> (B, hidden): sinusoids, then two SiLU layers."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        half = embed_dim // 2
        # Frequencies 1 .. 1e-4 per unit of 100 * log-SNR: resolves 0.01 in log-SNR
        # at the top, stays monotone over the whole [-20, 28] range at the bottom.
        self.register_buffer("freqs", 10.0 ** (-4.0 * torch.arange(half) / max(half - 1, 1)), persistent=False)
        self.proj1 = nn.Linear(embed_dim, hidden_dim)
        self.proj2 = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, log_snr: torch.Tensor) -> torch.Tensor:
        phase = 100.0 * log_snr.float().unsqueeze(-1) * self.freqs
        x = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
        return F.silu(self.proj2(F.silu(self.proj1(x))))
