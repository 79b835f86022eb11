"""The filter's STFT pair and the prior's response in real arithmetic only, for graphs
without complex numbers or FFTs (ONNX), and with a per-item length for padded batches.

A complex tensor is carried as a pair (real, imaginary). The STFT is a convolution with a
fixed windowed-DFT basis; its inverse a transposed convolution with the synthesis basis,
divided by the sum of the squared windows of the frames present (torch.istft's
normalisation). Both equal shaping.stft / shaping.istft up to float rounding.

The prior's envelope steps that use FFTs (cepstral liftering, minimum-phase folding) are
linear maps of the log amplitude over bins, so they become fixed (F, F) matrices.

Shapes: B batch, K mel frames, M mel bands, F = n_fft // 2 + 1 bins, T = K + 1 STFT frames,
N = K * hop samples.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from specgrad_plugin import shaping
from specgrad_plugin.priors import NoisePrior

Pair = Tuple[torch.Tensor, torch.Tensor]


def complex_mul(a: Pair, b: Pair) -> Pair:
    """(ar + i ai)(br + i bi) on pairs of real tensors."""
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def complex_reciprocal(a: Pair) -> Pair:
    """1 / (ar + i ai) = (ar - i ai) / (ar^2 + ai^2)."""
    power = a[0] * a[0] + a[1] * a[1]
    return a[0] / power, -a[1] / power


def _factor(n: int) -> Tuple[int, int]:
    """n = P * Q with Q the largest divisor of n not above sqrt(n)."""
    q = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return n // q, q


class FactoredRealDFT(nn.Module):
    """rfft and irfft of length n = P * Q as two small matrix products and a twiddle
    (Cooley-Tukey): about (P + Q) / n of a dense DFT matrix's work (1/8 at n = 1024).

    With n = Q n1 + n2 and k = k1 + P k2: X[k] = sum_n2 W_Q^(n2 k2) W_n^(n2 k1) sum_n1 x[n] W_P^(n1 k1).
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.bins = n, n // 2 + 1
        self.p, self.q = _factor(n)
        p, q = self.p, self.q
        self.k2 = -(-self.bins // p)  # the k2 needed to reach bin n / 2

        def angles(rows: int, cols: int, period: int) -> torch.Tensor:
            r = torch.arange(rows, dtype=torch.float64)[:, None]
            c = torch.arange(cols, dtype=torch.float64)[None, :]
            return 2 * math.pi * torch.remainder(r * c, period) / period

        a = angles(p, p, p)  # (n1, k1)
        self.register_buffer("first", torch.cat([a.cos(), -a.sin()], dim=1).float(), persistent=False)
        t = angles(q, p, n)  # (n2, k1)
        self.register_buffer("twiddle", torch.stack([t.cos(), -t.sin()]).float(), persistent=False)
        b = angles(q, self.k2, q)  # (n2, k2)
        second = torch.cat([torch.cat([b.cos(), -b.sin()], 1), torch.cat([b.sin(), b.cos()], 1)])
        self.register_buffer("second", second.float(), persistent=False)  # (2Q, 2 K2)
        # inverse: the same three steps with the conjugate kernels, in reverse order
        bt = b.T
        inverse_second = torch.cat([torch.cat([bt.cos(), bt.sin()], 1), torch.cat([-bt.sin(), bt.cos()], 1)])
        self.register_buffer("inverse_second", inverse_second.float(), persistent=False)  # (2 K2, 2Q)
        self.register_buffer("inverse_first", torch.cat([a.cos(), -a.sin()]).float() / n, persistent=False)
        weight = torch.full((self.bins,), 2.0, dtype=torch.float64)  # irfft: the mirrored bins
        weight[0] = 1.0
        if n % 2 == 0:  # the Nyquist bin has no mirror image
            weight[-1] = 1.0
        self.register_buffer("bin_weight", weight.float(), persistent=False)

    def rfft(self, x: torch.Tensor) -> Pair:
        """(..., n) real -> real and imaginary parts (..., n // 2 + 1)."""
        p, q, lead = self.p, self.q, x.shape[:-1]
        a = x.reshape(*lead, p, q).transpose(-1, -2) @ self.first  # (..., n2, 2 k1)
        a = complex_mul(a.chunk(2, dim=-1), (self.twiddle[0], self.twiddle[1]))
        b = torch.cat(a, dim=-1).transpose(-1, -2)  # (..., 2 k1, n2) -> (k1 | k1, n2)
        b = torch.cat([b[..., :p, :], b[..., p:, :]], dim=-1) @ self.second  # (..., k1, 2 K2)
        re, im = (part.transpose(-1, -2).reshape(*lead, self.k2 * p)[..., : self.bins] for part in b.chunk(2, dim=-1))
        return re, im

    def irfft(self, spec: Pair) -> torch.Tensor:
        """Real and imaginary parts (..., n // 2 + 1) -> (..., n) real, as torch.fft.irfft (the
        imaginary parts of DC and Nyquist are ignored)."""
        p = self.p
        lead = spec[0].shape[:-1]
        pad = self.k2 * p - self.bins
        y = [F.pad(part * self.bin_weight, (0, pad)).reshape(*lead, self.k2, p).transpose(-1, -2) for part in spec]
        z = torch.cat(y, dim=-1) @ self.inverse_second  # (..., k1, 2Q)
        z = complex_mul(z.chunk(2, dim=-1), (self.twiddle[0].T, -self.twiddle[1].T))  # (k1, n2)
        z = torch.cat(z, dim=-2).transpose(-1, -2) @ self.inverse_first  # (..., n2, n1)
        return z.transpose(-1, -2).reshape(*lead, self.n)


class RealSTFT(nn.Module):
    """shaping.stft and shaping.istft (Hann window, centred frames, zero padding) in real
    arithmetic: frames cut by reshaping into hops (n_fft a multiple of hop), FactoredRealDFT,
    overlap-add by shifted sums. With use_fft, torch.stft / torch.istft instead (faster in
    PyTorch, not exportable), with the same per-item normalisation."""

    def __init__(self, n_fft: int, hop: int, window: torch.Tensor, use_fft: bool = False) -> None:
        super().__init__()
        if n_fft % hop:
            raise ValueError(f"n_fft {n_fft} is not a multiple of hop {hop}: expected hop = n_fft / 2, / 4, ...")
        self.n_fft, self.hop, self.use_fft = n_fft, hop, use_fft
        self.overlap = n_fft // hop
        self.dft = FactoredRealDFT(n_fft)
        self.register_buffer("window", window.detach().float().clone(), persistent=False)
        self.register_buffer("window_power", window.detach().double().pow(2).float().view(1, 1, n_fft),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> Pair:
        """G: (B, N) with N a multiple of hop -> real and imaginary parts, each (B, F, N // hop + 1)."""
        if self.use_fft:
            spec = shaping.stft(x, self.n_fft, self.hop, self.window)
            return spec.real, spec.imag
        half, r = self.n_fft // 2, self.overlap
        blocks = F.pad(x, (half, half)).reshape(x.shape[0], -1, self.hop)  # (B, K + r, hop)
        frames = torch.cat([blocks[:, j : j - r + 1 if j < r - 1 else None] for j in range(r)], dim=-1)
        re, im = self.dft.rfft(frames * self.window)  # (B, T, F)
        return re.transpose(1, 2), im.transpose(1, 2)

    def _window_sum(self, frame_mask: torch.Tensor, length: int) -> torch.Tensor:
        power = F.conv_transpose1d(frame_mask, self.window_power, stride=self.hop)
        half = self.n_fft // 2
        return power[:, 0, half : half + length]

    def normaliser(self, frame_mask: torch.Tensor, length: int) -> torch.Tensor:
        """What :meth:`inverse` multiplies by, from a (B or 1, 1, T) 0/1 mask of the frames each
        item has: 1 / (the sum of the squared windows of those frames), (B or 1, length); with
        use_fft, the ratio of torch.istft's all-frame sum to it. The sum is floored so that samples
        no frame covers (past an item's end) stay finite: the floor is torch.istft's own limit."""
        present = self._window_sum(frame_mask, length).clamp_min(1e-11)
        if not self.use_fft:
            return 1.0 / present
        return self._window_sum(torch.ones_like(frame_mask[:1]), length) / present

    def inverse(self, spec: Pair, normaliser: torch.Tensor, length: int) -> torch.Tensor:
        """G+: real and imaginary parts (B, F, T), the :meth:`normaliser` -> (B, length).
        Frames that an item lacks must be zero in ``spec``."""
        if self.use_fft:
            wav = shaping.istft(torch.complex(*spec), self.n_fft, self.hop, self.window, length)
            return wav * normaliser
        frames = self.dft.irfft((spec[0].transpose(1, 2), spec[1].transpose(1, 2))) * self.window  # (B, T, n_fft)
        r = self.overlap
        parts = frames.reshape(frames.shape[0], frames.shape[1], r, self.hop)
        summed = sum(F.pad(parts[:, :, j], (0, 0, j, r - 1 - j)) for j in range(r))  # (B, T + r - 1, hop)
        half = self.n_fft // 2
        return summed.reshape(frames.shape[0], -1)[:, half : half + length] * normaliser


def _linear_map(fn, bins: int) -> torch.Tensor:
    """The (F, F) matrix A with fn(v) = v @ A.T for a linear map fn of (..., F) vectors."""
    return fn(torch.eye(bins, dtype=torch.float64)).T.contiguous()


class RealPrior(nn.Module):
    """NoisePrior.response in real arithmetic: (B, K, M) log10 mel -> H as a pair (B, K, F)."""

    def __init__(self, prior: NoisePrior) -> None:
        super().__init__()
        if prior.cfg.harmonic_depth_db > 0:  # its F0 is a Viterbi path over the whole mel
            raise ValueError(f"prior.harmonic_depth_db={prior.cfg.harmonic_depth_db}: the harmonic prior has no "
                             "real-arithmetic form; expected 0")
        self.kind = prior.cfg.kind
        self.cfg = prior.cfg
        self.register_buffer("energy_range", prior.energy_range.detach().clone(), persistent=False)
        n_fft, bins = prior.n_fft, prior.n_fft // 2 + 1
        # linear_amplitude holds the bins outside [lo, hi] at the edge bins' values: the same
        # as repeating those columns of the pseudo-inverse
        source = torch.arange(bins).clamp(prior.lo, prior.hi)
        self.register_buffer("mel_to_linear", prior.mel_pinv.T[:, source].contiguous(), persistent=False)
        order = prior.cfg.lifter_order
        lifter = _linear_map(lambda v: shaping.cepstral_envelope(v, n_fft, order), bins)
        self.register_buffer("lifter", lifter.float(), persistent=False)
        fold_real = _linear_map(lambda v: shaping.minimum_phase_log(v, n_fft).real, bins)
        fold_imag = _linear_map(lambda v: shaping.minimum_phase_log(v, n_fft).imag, bins)
        self.register_buffer("fold_real", fold_real.float(), persistent=False)
        self.register_buffer("fold_imag", fold_imag.float(), persistent=False)

    def level(self, logmel: torch.Tensor) -> torch.Tensor:
        """sigma_k: (B, K, M) -> (B, K, 1), as NoisePrior.level."""
        if self.kind == "diffwave":
            return torch.ones_like(logmel[..., :1])
        e_min, e_max = self.energy_range[0], self.energy_range[1]
        energy = torch.pow(10.0, logmel).sum(dim=-1, keepdim=True).sqrt()
        return ((energy - e_min) / (e_max - e_min)).clamp(self.cfg.min_level, 1.0)

    def forward(self, logmel: torch.Tensor) -> Pair:
        level = self.level(logmel)
        if self.kind != "specgrad":
            bins = self.lifter.shape[0]
            real = level.expand(*logmel.shape[:-1], bins)
            return real, torch.zeros_like(real)
        floor_db, white_mix = self.cfg.floor_db, self.cfg.white_mix
        amp = torch.pow(10.0, logmel) @ self.mel_to_linear
        peak = amp.amax(dim=-1, keepdim=True).clamp_min(1e-10)
        amp = torch.maximum(amp, peak * 10.0 ** (floor_db / 20.0))
        power = torch.exp(2.0 * (torch.log(amp) @ self.lifter.T))
        peak = power.amax(dim=-1, keepdim=True)
        power = torch.maximum(power, peak * 10.0 ** (floor_db / 10.0))
        power = power / power.mean(dim=-1, keepdim=True)
        log_h = 0.5 * torch.log((1.0 - white_mix) * power + white_mix)
        if self.cfg.phase == "minimum":
            magnitude = level * torch.exp(log_h @ self.fold_real.T)
            phase = log_h @ self.fold_imag.T
            return magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        magnitude = level * torch.exp(log_h)
        return magnitude, torch.zeros_like(magnitude)


def frame_mask(lengths: Optional[torch.Tensor], frames: int, batch: int, device) -> torch.Tensor:
    """(B, 1, frames) float mask of the STFT frames each item has (K_i + 1 of them for K_i mel
    frames); ones of shape (1, 1, frames) when lengths is None."""
    if lengths is None:
        return torch.ones(1, 1, frames, device=device)
    t = torch.arange(frames, device=device)
    return (t[None, :] <= lengths.to(device)[:, None]).float().unsqueeze(1)
