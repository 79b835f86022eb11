"""The low band seen through a longer analysis window (docs/long_window.md).

The frame family's trunks work on the features' STFT (1024 points at 22.05 kHz: 21.5 Hz per
bin, 46 ms). With ``denoiser.frame_low_band_n_fft`` the low-band trunk works on an STFT of its
own with a longer window and the same hop instead (2048 points: 10.8 Hz per bin, 93 ms), so
that the harmonics of a low voice fall in bins of their own. With
``frame_low_band_long_mode: predict`` it predicts its noise there too, and the two estimates
of the noise are joined in the waveform by complementary weights over frequency:

    eps_hat = G+(c H Xi_main (1 - w)) + G_l+(c_l H_l Xi_low w_l),

w(f) = 1 below cutoff - CROSSOVER_HZ, falling as cos^2 to 0 at the cutoff; w is read at the
features' bins, w_l at the long STFT's. A weight that is smooth over many bins passes through
an STFT and its inverse as a filter, so two perfect estimates give back eps (to the ripple
the test measures). H_l is the prior's response (an envelope, smooth in frequency) read at the
long STFT's bins by linear interpolation; it only whitens, and the same H_l un-whitens.
With ``frame_low_band_long_mode: see`` the trunk sees the long STFT's low bins beside the
features' and predicts in the features' STFT, as without this option: the finer frequency
resolution in its input, the features' time resolution in its output.

Shapes: B batch, N samples, T = N / hop + 1 frames (both STFTs are centred on the same hops),
F = n_fft // 2 + 1 features' bins, L low bins of the long STFT (those below the cutoff).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from specgrad_plugin import precision, shaping
from specgrad_plugin.denoiser_config import CROSSOVER_HZ


def crossover_weight(freqs: torch.Tensor, cutoff_hz: float, width_hz: float = CROSSOVER_HZ) -> torch.Tensor:
    """w(f): 1 below cutoff - width, cos^2 down to 0 at the cutoff, 0 above: (F,) -> (F,)."""
    ramp = ((cutoff_hz - freqs) / width_hz).clamp(0.0, 1.0)
    return torch.sin(0.5 * math.pi * ramp) ** 2


class LongWindowLowBand(nn.Module):
    """The long STFT's low bins: whiten x_t there, and turn a noise estimate there back into samples.

    Args:
        n_fft: the features' STFT size (the main trunk's).
        long_n_fft: the low band's STFT size (> n_fft).
        hop: the hop both STFTs share.
        fs: sample rate.
        cutoff_hz: the low band's upper edge (frame_low_band_hz).
        predicts: the low trunk predicts its noise in the long STFT (``see``: it only sees the
            long STFT, beside the features', and predicts in the features' STFT).
    """

    def __init__(self, n_fft: int, long_n_fft: int, hop: int, fs: int, cutoff_hz: float,
                 predicts: bool = True) -> None:
        super().__init__()
        self.predicts = predicts
        self.long_n_fft, self.hop = long_n_fft, hop
        self.low_bins = shaping.bins_below(cutoff_hz, long_n_fft, fs)
        window = shaping.hann_window(long_n_fft)
        self.register_buffer("window", window, persistent=False)
        # c_l / c, c = sqrt(sum(window^2)) of each STFT's window
        self.scale_ratio = float(window.pow(2).sum().sqrt() / shaping.hann_window(n_fft).pow(2).sum().sqrt())
        if predicts:
            main_freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float32) * fs / n_fft
            low_freqs = torch.arange(self.low_bins, dtype=torch.float32) * fs / long_n_fft
            # the main trunk keeps 1 - w, the low trunk w_l
            self.register_buffer("main_weight", 1.0 - crossover_weight(main_freqs, cutoff_hz), persistent=False)
            self.register_buffer("low_weight", crossover_weight(low_freqs, cutoff_hz), persistent=False)
        # long bin k lies at main bin k * n_fft / long_n_fft: interpolate the response there
        position = torch.arange(self.low_bins, dtype=torch.float64) * n_fft / long_n_fft
        below = position.floor().long().clamp(max=n_fft // 2 - 1)
        self.register_buffer("below", below, persistent=False)
        self.register_buffer("fraction", (position - below).float(), persistent=False)
        # b_f of the low trunk's gain, as FrameDenoiser.gain_bias for the main trunk's
        self.gain_bias = nn.Parameter(torch.zeros(self.low_bins)) if predicts else None

    def response(self, scaled_response: torch.Tensor) -> torch.Tensor:
        """c H at the features' bins (B, F, T) -> c_l H_l at the long STFT's low bins (B, L, T)."""
        lower = scaled_response[:, self.below]
        upper = scaled_response[:, self.below + 1]
        fraction = self.fraction[:, None]
        return (lower * (1.0 - fraction) + upper * fraction) * self.scale_ratio

    def whiten(self, x: torch.Tensor, low_response: torch.Tensor) -> torch.Tensor:
        """Y_l = G_l x / (c_l H_l) at the low bins: (B, N) -> (B, L, T) complex, float32."""
        with precision.float32_only(x.device):
            spectrum = shaping.stft(x.float(), self.long_n_fft, self.hop, self.window)[:, : self.low_bins]
            return spectrum / low_response

    def synthesize(self, noise: torch.Tensor, low_response: torch.Tensor, length: int) -> torch.Tensor:
        """G_l+(c_l H_l Xi_low w_l): (B, L, T) complex -> (B, length) real."""
        with precision.float32_only(noise.device):
            spectrum = noise * low_response * self.low_weight[:, None]
            return shaping.istft_of_band(spectrum, self.long_n_fft, self.hop, self.window, length)
