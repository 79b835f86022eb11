"""The three noise priors behind one switch, one code path: H_k(f) = sigma_k * h_k(f).

- ``diffwave``: sigma = 1, h = 1 (white noise, L = I);
- ``priorgrad``: sigma = PriorGrad's frame level, h = 1;
- ``specgrad``: sigma = PriorGrad's frame level, h = the mel's spectral envelope; with
  ``harmonic_depth_db`` > 0, h also dips between the harmonics of the F0 read off the mel
  below ``harmonic_cutoff_hz`` (the harmonic prior: pitch.harmonic_comb_log_amp).
Noise is always drawn as eps = L xi = G+ diag(H) G xi, so the two baselines are
exactly the special cases of the same filter (tests/test_priors.py checks it).
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch

from specgrad_plugin import pitch, shaping
from specgrad_plugin.config import FeatureConfig, PriorConfig

# PriorGrad's frame energy range E_k on LJSpeech: used until a
# training set's own statistics are collected with level_statistics().
DEFAULT_ENERGY_RANGE = (0.11, 4.0)


class NoisePrior(torch.nn.Module):
    """Builds the filter response H from a log10 mel and applies L, L^-p to signals."""

    def __init__(self, prior: PriorConfig, features: FeatureConfig, mel_basis: torch.Tensor) -> None:
        super().__init__()
        self.cfg = prior
        self.n_fft = features.n_fft
        self.hop = features.hop_length
        self.fs = features.fs
        pinv, self.lo, self.hi = shaping.mel_pseudo_inverse(mel_basis)
        self.register_buffer("mel_pinv", pinv, persistent=False)
        self.register_buffer("window", shaping.hann_window(self.n_fft), persistent=False)
        # Saved with the model: the level statistics of the training data.
        self.register_buffer("energy_range", torch.tensor(DEFAULT_ENERGY_RANGE))
        if prior.harmonic_depth_db > 0:  # functions of the mel basis: not saved with the model
            candidates, templates, used = pitch.comb_templates(mel_basis, features.fs, features.n_fft)
            self.register_buffer("f0_candidates", candidates, persistent=False)
            self.register_buffer("f0_templates", templates, persistent=False)
            self.register_buffer("f0_bands_used", used, persistent=False)

    def set_level_statistics(self, energy_min: float, energy_max: float) -> None:
        if not energy_max > energy_min:
            raise ValueError(f"energy range ({energy_min}, {energy_max}): expected min < max")
        self.energy_range.copy_(torch.tensor([energy_min, energy_max]))

    def level(self, logmel: torch.Tensor) -> torch.Tensor:
        """sigma_k, (B, K, M) -> (B, K); ones for the diffwave prior."""
        if self.cfg.kind == "diffwave":
            return torch.ones(logmel.shape[:-1], dtype=logmel.dtype, device=logmel.device)
        e_min, e_max = self.energy_range.tolist()
        return shaping.frame_level(logmel, e_min, e_max, self.cfg.min_level)

    def log_shape(self, logmel: torch.Tensor) -> torch.Tensor:
        """log h_k(f), (B, K, M) -> (B, K, F) complex (unwrapped phase); zeros unless the
        prior is specgrad."""
        if self.cfg.kind != "specgrad":
            n_bins = self.n_fft // 2 + 1
            return torch.zeros(*logmel.shape[:-1], n_bins, dtype=torch.complex64, device=logmel.device)
        return shaping.shaped_log_response(
            logmel.float(), self.mel_pinv, self.lo, self.hi, self.n_fft,
            self.cfg.lifter_order, self.cfg.floor_db, self.cfg.white_mix, self.cfg.phase,
            self.harmonic_comb(logmel),
        )

    def harmonic_comb(self, logmel: torch.Tensor) -> Optional[torch.Tensor]:
        """log c_k(f) of the harmonic prior at the F0 and voicing read off the mel (pitch.mel_f0),
        (B, K, M) -> (B, K, F) real; None when the prior has no comb. The estimate is a
        function of the whole mel given (a Viterbi path): inference gives the whole utterance,
        so chunks equal whole; training gives each crop, whose edges may track differently."""
        if self.cfg.harmonic_depth_db <= 0:
            return None
        with torch.no_grad():  # an analytic estimate: nothing to train through it
            f0, voicing = pitch.mel_f0(logmel.float(), self.f0_candidates, self.f0_templates, self.f0_bands_used)
            return pitch.harmonic_comb_log_amp(f0, voicing, self.n_fft, self.fs,
                                               self.cfg.harmonic_cutoff_hz, self.cfg.harmonic_depth_db)

    def shape(self, logmel: torch.Tensor) -> torch.Tensor:
        """h_k(f), (B, K, M) -> (B, K, F) complex; ones unless the prior is specgrad."""
        return torch.exp(self.log_shape(logmel))

    def log_response(self, logmel: torch.Tensor) -> torch.Tensor:
        """log H_k(f) = log sigma_k + log h_k(f): (B, K, M) -> (B, K, F) complex, unwrapped phase."""
        return torch.log(self.level(logmel.float())).unsqueeze(-1) + self.log_shape(logmel)

    def response(self, logmel: torch.Tensor) -> torch.Tensor:
        """H_k(f) = sigma_k h_k(f): (B, K, M) log10 mel -> (B, K, F) complex."""
        return torch.exp(self.log_response(logmel))

    def apply(self, x: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """L x for (B, K * hop) signals."""
        return shaping.apply_filter(x, response, self.n_fft, self.hop, self.window)

    def apply_inverse(
        self, x: torch.Tensor, log_response: torch.Tensor, power: float = 1.0,
        band_gain: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """L^-p x ~= G+ diag(H^-p) G x (approximate: the STFT is redundant), from log H.
        band_gain: (F,) real gains per bin applied with H^-p (the square roots of loss weights)."""
        if power == 0 and band_gain is None:
            return x
        inverse = shaping.inverse_response(log_response, power)
        return self.apply(x, inverse if band_gain is None else inverse * band_gain)

    def start(self, logmel: torch.Tensor, iterations: int) -> Optional[torch.Tensor]:
        """The sampler's estimate of x_0 to start from (diffusion.sample's start): ``iterations``
        of Griffin-Lim on the mel, (B, K, M) -> (B, K * hop); None for 0 (start from noise)."""
        if iterations == 0:
            return None
        with torch.no_grad():  # a function of the mel alone: nothing to train through it
            return shaping.griffin_lim(logmel, self.mel_pinv, self.n_fft, self.hop, self.window, iterations)

    def noise(
        self, response: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """eps = L xi with xi ~ N(0, I): (B, K, F) response -> (B, K * hop) noise."""
        batch, frames, _ = response.shape
        xi = torch.randn(batch, frames * self.hop, generator=generator, device=response.device)
        return self.apply(xi, response)


def level_statistics(logmels: Iterable[torch.Tensor]) -> Tuple[float, float]:
    """E_min, E_max of the frame energy over a training set of (K, M) log10 mels."""
    lows, highs = [], []
    for mel in logmels:
        energy = shaping.frame_energy(mel.float())
        lows.append(float(energy.min()))
        highs.append(float(energy.max()))
    if not lows:
        raise ValueError("level_statistics: no mels given")
    return min(lows), max(highs)
