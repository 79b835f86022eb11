"""DiffusionLoss: the paper's training loss, apart from the inference model it trains.

    loss_fn = DiffusionLoss(cfg)                       # no weights but an optional critic's
    loss, stats = loss_fn(vocoder, wav, mel)           # || L^-p (eps - eps_theta) ||^2 (+ FreGrad's,
                                                       # + the sampler loss: sampler_loss.py)
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from specgrad_plugin import diffusion, precision, shaping
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.sampler_loss import SamplerLoss


class DiffusionLoss(torch.nn.Module):
    """``|| L^-p (eps - eps_theta(x_t, c, abar)) ||^2`` on one batch, optionally plus FreGrad's
    MR-STFT loss on the predicted x0 and the sampler loss (sampler_loss.py); its buffers are
    not saved. The sampler loss's critic, if any, is training state: training_state() holds it.

    Args:
        cfg: the model's config; its ``diffusion`` section sets the noise levels drawn
            (below_share, min_alpha_bar), L^-p's power, the weights over frequency and the
            weights of the auxiliary and sampler losses (and the sampler loss's schedule).
    """

    def __init__(self, cfg: SpecGradConfig) -> None:
        super().__init__()
        self.cfg = cfg.diffusion
        # sqrt of the loss's weights over frequency (diffusion.loss_band_weighting); None: flat
        band_gain, scale = None, cfg.diffusion.loss_band_weighting
        if scale != "flat":
            band_gain = shaping.scale_density_weights(cfg.features.n_fft, cfg.features.fs, scale).sqrt()
        self.register_buffer("band_gain", band_gain, persistent=False)
        self.mr_stft = None
        if cfg.diffusion.aux_stft_weight > 0:
            import auraloss

            self.mr_stft = auraloss.freq.MultiResolutionSTFTLoss()
        self.sampler_loss = None
        if cfg.diffusion.sampler_loss_weight > 0:
            d = cfg.diffusion
            self.sampler_loss = SamplerLoss(d.sampler_loss_schedule, d.sampler_loss_phase_weight,
                                            d.sampler_loss_adversarial_weight, d.sampler_loss_frame_periodic_weight,
                                            cfg.features.hop_length, d.sampler_loss_fundamental_weight,
                                            cfg.features.fs, d.sampler_loss_periodicity_weight)

    @property
    def critic(self) -> Optional[torch.nn.Module]:
        """The sampler loss's critic (critic.LowBandCritic), or None."""
        return self.sampler_loss.critic if self.sampler_loss is not None else None

    def training_state(self) -> Dict[str, dict]:
        """What training must save beside the model to resume: the sampler loss's critic, if any."""
        return {"critic": self.critic.training_state()} if self.critic is not None else {}

    def load_training_state(self, state: Dict[str, dict], source: str) -> None:
        critic = self.critic
        if (critic is None) != ("critic" not in state):
            raise ValueError(f"{source}: the checkpoint {'has' if 'critic' in state else 'lacks'} a critic's "
                             f"state and the config {'has no' if critic is None else 'has a'} critic "
                             "(diffusion.sampler_loss_adversarial_weight); expected both or neither")
        if critic is not None:
            critic.load_training_state(state["critic"])

    def forward(
        self, vocoder: torch.nn.Module, wav: torch.Tensor, mel: torch.Tensor, amp_dtype: Optional[torch.dtype] = None
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """vocoder: a SpecGradVocoder (its prior, denoiser and train_betas); wav: (B, K * hop) clean
        segments; mel: (B, K, M) their log10 mels (computed with context, so that edge frames see
        real audio). amp_dtype: run the denoiser under autocast to this dtype; the filter, the
        noise, the loss and everything else stay float32 (precision.py)."""
        device, d, prior, denoiser = wav.device, self.cfg, vocoder.prior, vocoder.denoiser
        with precision.float32_only(device):
            wav, mel = wav.float(), mel.float()
            log_response = prior.log_response(mel)
            response = torch.exp(log_response)
            eps = prior.noise(response)
            abar = diffusion.sample_training_levels(wav.shape[0], vocoder.train_betas.cpu(), d.below_share,
                                                    d.min_alpha_bar)
            abar = abar.to(device)
            x_t = diffusion.add_noise(wav, eps, abar)
        with precision.autocast(device, amp_dtype):
            eps_hat = denoiser(x_t, denoiser.condition(mel, response), diffusion.log_snr(abar))
        with precision.float32_only(device):
            error = eps - eps_hat.float()
            residual = prior.apply_inverse(error, log_response, d.loss_inverse_power, self.band_gain)
            loss = diffusion.weighted_loss(residual)
            stats = {}
            if d.aux_stft_weight > 0:
                x0_hat = diffusion.predicted_clean(x_t, eps_hat.float(), abar)
                aux = self.aux_stft_loss(wav, x0_hat, abar, vocoder.train_betas)
                stats["aux_stft"] = float(aux.detach())
                loss = loss + d.aux_stft_weight * aux
            if self.sampler_loss is not None:
                unrolled = self.sampler_loss(vocoder, wav, mel, log_response)
                stats["sampler_stft"] = float(unrolled.detach())
                stats.update(self.sampler_loss.stats)
                loss = loss + d.sampler_loss_weight * unrolled
        with torch.no_grad():
            plain = error.pow(2).mean()
        return loss, {"loss": float(loss.detach()), "mse": float(plain), **stats}

    def aux_stft_loss(self, wav: torch.Tensor, x0_hat: torch.Tensor, abar: torch.Tensor,
                      train_betas: torch.Tensor) -> torch.Tensor:
        """auraloss's MR-STFT distance between x0_hat and the clean crops, on the draws at or
        above the linear schedule's last level (below it x0_hat is mostly amplified noise:
        x_t / sqrt(abar) at abar = 1e-3 is 31x the input); zero when the batch has none."""
        keep = abar >= float(diffusion.alpha_bars(train_betas[: self.cfg.steps])[-1])
        if not bool(keep.any()):
            return x0_hat.sum() * 0.0
        return self.mr_stft(x0_hat[keep].unsqueeze(1), wav[keep].unsqueeze(1))
