"""A time-domain head for the frame family's low band: the bins below frame_low_band_hz,
brought back to samples at fs / decimation, refined by a small WaveNet, and added back.

The frame trunks see the band below 1 kHz as a few complex bins per 11.6 ms frame; a
harmonic's phase has to be carried from frame to frame by the convolutions over frames.
This head sees the same band as a waveform at 2.76 kHz (fs 22050, decimation 8), where a
period of the fundamental is 14-28 samples and a dilated convolution follows it directly.

    y  = G_d+(Y_low),  n = G_d+(Xi_hat_low)           whitened signal and noise estimate
    Xi_hat_low <- Xi_hat_low + G_d(WaveNet(y, n | mel, level))

G_d is the STFT at the decimated rate with n_fft / decimation points and hop / decimation:
its frames are the frame trunks' frames and its bins up to the low band are theirs (the
same 21.5 Hz spacing), so no resampling filter is needed. The output layer starts at zero:
a model with the head starts as the same function as without it.
Shapes: B batch, T STFT frames, F_low low bins, N_d = (T - 1) * hop / decimation samples.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from specgrad_plugin import shaping
from specgrad_plugin.denoisers.base import tensor_bytes
from specgrad_plugin.denoisers.wavenet import ResidualLayer, residual_stack


class HeadCondition(NamedTuple):
    """TimeDomainLowBandHead.condition(): each layer's conditioner output, held at fs / decimation
    ((B, 2C, N_d) each), or at the frame rate ((B, 2C, T) each, held in forward()) where the
    held ones would not fit the cache budget."""

    per_layer: List[torch.Tensor]
    held: bool


class TimeDomainLowBandHead(nn.Module):
    """(Y_low, Xi_hat_low) (B, F_low, T) complex, condition(mel (B, M, T)), level (B, L) -> a
    correction to Xi_hat_low (B, F_low, T) complex.

    Args:
        low_bins: F_low, the bins of the low band (at most n_fft / decimation / 2 + 1).
        n_mels: mel bands of the conditioning.
        level_dim: width of the level embedding.
        channels: residual channels of the WaveNet.
        layers: gated dilated-convolution layers; layer i has dilation 2 ** (i mod cycle).
        dilation_cycle: see layers.
        n_fft: the frame trunks' FFT size; the head's is n_fft / decimation.
        hop: the frame trunks' hop; the head's is hop / decimation.
        decimation: the head runs at fs / decimation.
    """

    KERNEL = 3

    def __init__(self, low_bins: int, n_mels: int, level_dim: int, channels: int, layers: int,
                 dilation_cycle: int, n_fft: int, hop: int, decimation: int) -> None:
        super().__init__()
        if n_fft % decimation or hop % decimation or not 0 < low_bins <= n_fft // decimation // 2 + 1:
            raise ValueError(f"time-domain head: decimation {decimation} must divide n_fft {n_fft} and hop {hop}, "
                             f"and low_bins {low_bins} must lie in 1 .. {n_fft // decimation // 2 + 1} "
                             "(the decimated STFT's bins)")
        self.n_fft, self.hop, self.low_bins = n_fft // decimation, hop // decimation, low_bins
        self.register_buffer("window", shaping.hann_window(self.n_fft), persistent=False)
        # The scale that gives G_d+ of low_bins independent unit-variance bins unit variance
        # (4 low_bins / (3 n^2) before it, Hann at 75 % overlap). The whitened STFT of a real
        # signal has overlapping frames that agree, and comes back with variance about 4: the
        # first layer is learned, and the trained runs (docs/time_head.md) used this scale.
        self.input_scale = math.sqrt(3.0 * self.n_fft ** 2 / (4.0 * low_bins))
        self.input = nn.Conv1d(2, channels, 1)
        self.layers = nn.ModuleList(
            ResidualLayer(channels, n_mels, level_dim, self.KERNEL, 2 ** (i % dilation_cycle)) for i in range(layers)
        )
        self.skip = nn.Conv1d(channels, channels, 1)
        self.out = nn.Conv1d(channels, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def reach(self) -> int:
        """Samples at fs / decimation on each side that can change one output sample."""
        return sum(layer.dilated.dilation[0] for layer in self.layers) * (self.KERNEL // 2)

    def context_frames(self) -> int:
        """Frames on each side that reach one output frame: the inverse STFT's half window, the
        WaveNet's reach, and the forward STFT's half window, at the decimated hop."""
        return -(-(self.reach() + self.n_fft) // self.hop)

    def to_signal(self, band: torch.Tensor) -> torch.Tensor:
        """(B, F_low, T) complex -> (B, N_d) real: G_d+ of the band, the bins above it zero."""
        length = (band.shape[-1] - 1) * self.hop
        return shaping.istft_of_band(band, self.n_fft, self.hop, self.window, length) * self.input_scale

    def from_signal(self, signal: torch.Tensor) -> torch.Tensor:
        """(B, N_d) real -> (B, F_low, T) complex: G_d of the signal's low bins, to_signal's inverse
        for a band-limited signal."""
        return shaping.stft(signal, self.n_fft, self.hop, self.window)[:, : self.low_bins] / self.input_scale

    def held(self, per_frame: torch.Tensor, samples: int) -> torch.Tensor:
        """(B, C, T) per STFT frame -> (B, C, samples): frame t held over the hop centred on
        its sample t * hop (a repeat: cheaper to train through than an interpolation)."""
        b, c, t = per_frame.shape
        held = per_frame.unsqueeze(-1).expand(b, c, t, self.hop).reshape(b, c, t * self.hop)
        return held[..., self.hop // 2: self.hop // 2 + samples]

    def condition(self, mel: torch.Tensor, cache_bytes: int = 0) -> HeadCondition:
        """(B, M, T) normalised mel -> each layer's conditioner output, held at fs / decimation
        when that fits in cache_bytes, else at the frame rate. The denoiser's condition() calls
        it, so the conditioners run once per utterance (or chunk) rather than at every sampler
        step; the hold, done here within the budget, is about a sixth of the head's time."""
        per_frame = [layer.conditioner(mel) for layer in self.layers]
        samples = (mel.shape[-1] - 1) * self.hop
        # sized by held() itself on meta tensors (shapes, no data), so the two cannot disagree;
        # not at all without a budget (training)
        if cache_bytes <= 0 or sum(tensor_bytes(self.held(c.to("meta"), samples)) for c in per_frame) > cache_bytes:
            return HeadCondition(per_frame, held=False)
        return HeadCondition([self.held(c, samples) for c in per_frame], held=True)

    def forward(self, whitened_low: torch.Tensor, noise_low: torch.Tensor, cond: HeadCondition,
                level: torch.Tensor) -> torch.Tensor:
        """cond: condition(mel)."""
        per_layer = cond.per_layer
        if not cond.held:
            per_layer = [self.held(c, (whitened_low.shape[-1] - 1) * self.hop) for c in per_layer]
        signals = torch.stack([self.to_signal(whitened_low), self.to_signal(noise_low)], dim=1)
        skips = residual_stack(self.layers, self.input(signals), per_layer, level, projected=True)
        return self.from_signal(self.out(F.relu(self.skip(F.relu(skips)))).squeeze(1))
