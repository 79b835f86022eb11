"""LowBandCritic: an adversarial critic of the sampler's low band, WaveFit's GAN term.

WaveFit (Koizumi et al. 2022, by SpecGrad's authors) trains a fixed number of refinement
steps on their output with an MR-STFT distance plus a GAN's adversarial and feature-matching
losses. The sampler loss (sampler_loss.py) has the first; this module adds the other two,
on the same decimated low band, where the model's voicing and pitch errors are
(docs/voicing_floor.md). A magnitude distance is blind to whether a band is periodic; a
period discriminator (HiFi-GAN's MPD) looks at the signal folded at several periods, and
is what GAN vocoders credit for their periodicity.

The discriminator and the losses are ESPnet's (espnet2.gan_tts.hifigan) with their defaults:
least-squares adversarial losses averaged over the sub-discriminators, feature matching (L1)
averaged over every layer but the last, at twice the adversarial weight (the PWG toolkit's
lambda_feat_match 2 : lambda_adv 1). The critic's optimiser is Adam 2e-4, betas (0.5, 0.9).

    critic = LowBandCritic()
    critic.update(fake_low, real_low)            # one discriminator step on detached audio
    loss = critic.generator_loss(fake_low, real_low)   # adversarial + 2 x feature matching

The critic is not part of the vocoder: it is never saved with the model, only with the
trainer's state (training.fit), and ESPnet's task rejects it (its optimiser would step it).
Shapes: (B, N) low-band signals.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch

from specgrad_plugin.config import ConfigError, DiffusionConfig

FEATURE_MATCH_WEIGHT = 2.0  # PWG's hifigan config: lambda_feat_match 2 x lambda_adv
PERIODS = (2, 3, 5, 7, 11)  # HiFi-GAN's, on the decimated band
# HiFi-GAN's layers at a quarter of its width (32 -> 1024 channels there): the band has an
# eighth of the samples, and the full width would double a training step's CPU time
CHANNELS, MAX_CHANNELS = 16, 256


def refuse_critic(diffusion: DiffusionConfig, where: str) -> None:
    """ConfigError when the config asks for a critic and ``where`` cannot keep one: the critic
    is trainer state, which only training.fit saves and restores."""
    if diffusion.sampler_loss_adversarial_weight > 0:
        raise ConfigError(f"{where}: diffusion.sampler_loss_adversarial_weight="
                          f"{diffusion.sampler_loss_adversarial_weight}, expected 0 here; the critic trains with "
                          "specgrad_plugin.training.fit only (bench/prior_study.py train)")


class LowBandCritic(torch.nn.Module):
    """HiFi-GAN's multi-period discriminator with its own Adam, on (B, N) low-band signals.

    Args:
        periods: the discriminator's periods in samples of the low band's rate.
        lr: the discriminator's learning rate.
    """

    def __init__(self, periods: Sequence[int] = PERIODS, lr: float = 2.0e-4) -> None:
        super().__init__()
        from espnet2.gan_tts.hifigan import HiFiGANMultiPeriodDiscriminator
        from espnet2.gan_tts.hifigan.loss import (
            DiscriminatorAdversarialLoss,
            FeatureMatchLoss,
            GeneratorAdversarialLoss,
        )

        params = {"in_channels": 1, "out_channels": 1, "kernel_sizes": [5, 3], "channels": CHANNELS,
                  "downsample_scales": [3, 3, 3, 3, 1], "max_downsample_channels": MAX_CHANNELS, "bias": True,
                  "nonlinear_activation": "LeakyReLU", "nonlinear_activation_params": {"negative_slope": 0.1},
                  "use_weight_norm": True, "use_spectral_norm": False}
        self.discriminator = HiFiGANMultiPeriodDiscriminator(periods=[int(p) for p in periods],
                                                             discriminator_params=params)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))
        self.discriminator_loss = DiscriminatorAdversarialLoss(loss_type="mse")
        self.adversarial_loss = GeneratorAdversarialLoss(loss_type="mse")
        self.feature_match_loss = FeatureMatchLoss()

    def update(self, fake: torch.Tensor, real: torch.Tensor) -> Dict[str, float]:
        """One discriminator step: least squares, real -> 1 and fake -> 0, on detached audio."""
        with torch.enable_grad():
            real_loss, fake_loss = self.discriminator_loss(self.discriminator(fake.detach().unsqueeze(1)),
                                                           self.discriminator(real.detach().unsqueeze(1)))
            self.optimizer.zero_grad(set_to_none=True)
            total = real_loss + fake_loss
            if torch.isfinite(total):
                total.backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return {"critic_real": float(real_loss.detach()), "critic_fake": float(fake_loss.detach())}

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(1 - D(fake))^2 averaged over discriminators, plus FEATURE_MATCH_WEIGHT times the L1
        distance of their hidden features to the real audio's: a scalar with gradients to fake.
        The discriminator's own weights get no gradient from it."""
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        try:
            fake_out = self.discriminator(fake.unsqueeze(1))
            with torch.no_grad():
                real_out = self.discriminator(real.detach().unsqueeze(1))
        finally:
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
        return self.adversarial_loss(fake_out) + FEATURE_MATCH_WEIGHT * self.feature_match_loss(fake_out, real_out)

    def training_state(self) -> Dict[str, dict]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_training_state(self, state: Dict[str, dict]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
