"""The sample-rate family: a DiffWave/PriorGrad-style WaveNet eps_theta(x_t, c, level).

Residual layers of gated dilated convolutions, a 1x1 conditioner per layer fed by
the mel upsampled to the sample rate, a noise-level embedding added before each
dilated convolution, skip connections summed and scaled by 1/sqrt(layers), and a
zero-initialised output projection (the untrained model predicts eps = 0).
"""

from __future__ import annotations

import math
from typing import Iterable, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from specgrad_plugin.config import WaveNetConfig
from specgrad_plugin.denoisers.base import Denoiser
from specgrad_plugin.denoisers.level import LevelEmbedding


class MelUpsampler(nn.Module):
    """(B, K, M) mel -> (B, M, K * prod(scales)) by 2-D transposed convolutions over time."""

    def __init__(self, scales: List[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, kernel_size=(3, 2 * s), stride=(1, s), padding=(1, s // 2)) for s in scales
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(1, 2).unsqueeze(1)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.4)
        return x.squeeze(1)


class ResidualLayer(nn.Module):
    def __init__(self, channels: int, n_mels: int, hidden_dim: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(
            channels, 2 * channels, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation
        )
        self.level = nn.Linear(hidden_dim, channels)
        self.conditioner = nn.Conv1d(n_mels, 2 * channels, 1)
        self.output = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, level: torch.Tensor, projected: bool = False):
        """x: (B, C, N); cond: the upsampled mel (B, M, N), or (projected) this layer's
        conditioner output (B, 2C, N); level: (B, hidden) -> (x', skip)."""
        y = self.dilated(x + self.level(level).unsqueeze(-1))
        y = y + (cond if projected else self.conditioner(cond))
        gate, filt = y.chunk(2, dim=1)
        y = self.output(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


def residual_stack(layers: nn.ModuleList, h: torch.Tensor, per_layer: Iterable[torch.Tensor], level: torch.Tensor,
                   projected: bool) -> torch.Tensor:
    """Run h (B, C, N) through the residual layers, layer i with per_layer's i-th conditioning
    (ResidualLayer.forward's cond): (B, C, N) -> the skips' sum scaled by 1 / sqrt(layers)."""
    skips = torch.zeros_like(h)
    for layer, layer_cond in zip(layers, per_layer, strict=True):
        h, skip = layer(h, layer_cond, level, projected)
        skips = skips + skip
    return skips / math.sqrt(len(layers))


class WaveNetDenoiser(Denoiser):
    """eps_theta: x_t (B, N), upsampled mel (B, M, N), log-SNR (B,) -> predicted noise (B, N)."""

    def __init__(self, cfg: WaveNetConfig, n_mels: int) -> None:
        super().__init__()
        c = cfg.residual_channels
        self.upsampler = MelUpsampler(cfg.upsample_scales)
        self.level_embedding = LevelEmbedding(cfg.level_embed_dim, cfg.level_hidden_dim)
        self.input = nn.Conv1d(1, c, 1)
        self.layers = nn.ModuleList(
            ResidualLayer(c, n_mels, cfg.level_hidden_dim, cfg.kernel_size, 2 ** (i % cfg.dilation_cycle))
            for i in range(cfg.residual_layers)
        )
        self.skip = nn.Conv1d(c, c, 1)
        self.out = nn.Conv1d(c, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def context_frames(self) -> int:
        """Frames on each side that reach one output frame: the dilated stack's one-sided
        extent, plus one frame for each upsampling layer."""
        extent = sum(layer.dilated.dilation[0] * (layer.dilated.kernel_size[0] - 1) // 2 for layer in self.layers)
        hop = math.prod(layer.stride[1] for layer in self.upsampler.layers)
        return -(-extent // hop) + len(self.upsampler.layers)

    def upsample(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, K, M) log10 mel -> (B, M, K * hop): computed once per utterance, reused every step."""
        return self.upsampler(mel)

    def condition(
        self, mel: torch.Tensor, response: Optional[torch.Tensor] = None, cache_bytes: int = 0,
        source: Optional[torch.Tensor] = None,
    ) -> Union[torch.Tensor, List[torch.Tensor]]:
        """What forward() takes as cond, computed once per utterance: (B, K, M) mel -> each
        layer's conditioner output (a list of (B, 2C, N)) when they fit in cache_bytes (the
        sampler passes inference.conditioning_cache_mb: the conditioner then runs once, not
        at every step), else the upsampled mel (B, M, N). The prior's response is not used:
        this family sees x_t as it is."""
        cond = self.upsample(mel)
        per_sample = sum(2 * layer.dilated.in_channels for layer in self.layers) * cond.element_size()
        if per_sample * cond[:, :1].numel() > cache_bytes:
            return cond
        return [layer.conditioner(cond) for layer in self.layers]

    def forward(
        self, x: torch.Tensor, cond: Union[torch.Tensor, List[torch.Tensor]], log_snr: torch.Tensor
    ) -> torch.Tensor:
        """cond: condition(mel, ...): the upsampled mel, or each layer's conditioner output."""
        h = F.relu(self.input(x.unsqueeze(1)))
        level = self.level_embedding(log_snr)
        projected = isinstance(cond, list)
        per_layer = cond if projected else [cond] * len(self.layers)
        h = F.relu(self.skip(residual_stack(self.layers, h, per_layer, level, projected)))
        return self.out(h).squeeze(1)
