"""Diffusion: noise schedules, forward noising, the weighted loss, the sampler.

How short schedules meet the trained network (docs/design.md, schedules):
the denoiser is conditioned on the *continuous* noise level, as in WaveGrad, not on
a step index. Training draws sqrt(abar) uniformly inside a random step interval of
the training schedule (PriorGrad's linspace(1e-4, 0.05, 50), optionally extended by a
few steps of equal beta down to abar = min_alpha_bar), and a share of draws with
log-SNR uniform below its last step (sample_training_levels). Any inference schedule - WG-3,
WG-6, PG-6, WG-50 or a user list - is then used as it is: each step passes its own
abar to the network, no mapping to fractional training steps is needed, and levels
below the T = 50 range (WG-3 ends at abar 0.094, WG-6 at 0.19) are trained ones.
The network sees the level as log-SNR = log(abar / (1 - abar)).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Union

import torch

if TYPE_CHECKING:  # annotations only: config imports this module to check schedules
    from specgrad_plugin.config import DiffusionConfig

NAMED_SCHEDULES = {
    "WG-3": [3e-4, 6e-2, 9e-1],
    "WG-6": [7e-6, 1.4e-4, 2.1e-3, 2.8e-2, 3.5e-1, 7e-1],
    "PG-6": [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5],
    "WG-50": torch.linspace(1e-4, 0.05, 50, dtype=torch.float64).tolist(),
    # WG-3 searched for specgrad/ljspeech-v1 on its dev clips (bench/schedule_search.py);
    # it starts at abar 0.48 (WG-3 at 0.094), a level every preset trains on
    "LJ-3": [1.194e-3, 1.197e-1, 4.511e-1],
    # WG-3 searched for specgrad/ljspeech-v2 the same way; it starts at abar 0.088
    "LJ2-3": [2.383e-3, 1.197e-1, 9e-1],
}


def inference_betas(schedule: Union[str, Sequence[float]]) -> torch.Tensor:
    """A named schedule (NAMED_SCHEDULES), "b1,b2,..." or a list -> (S,) float64 betas."""
    if isinstance(schedule, str):
        if schedule in NAMED_SCHEDULES:
            values: List[float] = NAMED_SCHEDULES[schedule]
        else:
            try:
                values = [float(v) for v in schedule.split(",") if v.strip()]
            except ValueError:
                raise ValueError(
                    f"schedule {schedule!r}: expected one of {sorted(NAMED_SCHEDULES)} or comma-separated betas"
                ) from None
    else:
        try:
            values = [float(v) for v in schedule]
        except (TypeError, ValueError):
            raise ValueError(f"schedule {schedule!r}: expected one of {sorted(NAMED_SCHEDULES)}, comma-separated "
                             "betas or a list of betas") from None
    betas = torch.tensor(values, dtype=torch.float64)
    if betas.numel() == 0 or not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(f"schedule {schedule!r}: expected a non-empty list of betas in (0, 1)")
    return betas


def training_betas(cfg: DiffusionConfig) -> torch.Tensor:
    """linspace(beta_start, beta_end, steps) + extra_steps equal betas reaching min_alpha_bar.

    Returns (steps + extra_steps,) float64.
    """
    base = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.steps, dtype=torch.float64)
    abar_end = float(torch.prod(1.0 - base))
    if cfg.extra_steps == 0 or abar_end <= cfg.min_alpha_bar:
        return base
    beta_extra = 1.0 - (cfg.min_alpha_bar / abar_end) ** (1.0 / cfg.extra_steps)
    return torch.cat([base, torch.full((cfg.extra_steps,), beta_extra, dtype=torch.float64)])


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s): (S,) -> (S,)."""
    return torch.cumprod(1.0 - betas, dim=0)


def log_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """The network's level input log(abar / (1 - abar)), float32, safe at abar -> 1."""
    abar = alpha_bar.double().clamp(1e-12, 1.0 - 1e-12)
    return (torch.log(abar) - torch.log1p(-abar)).float()


# Relative margin by which the last training level must exceed min_alpha_bar for below_share
# draws: extra steps end at min_alpha_bar up to rounding, which must not decide it.
BELOW_RANGE_RTOL = 1e-6


def below_share_problem(cfg: DiffusionConfig) -> Optional[str]:
    """Why cfg.below_share has no range to draw from, or None. Its draws lie between
    min_alpha_bar and the training schedule's last level, which extra steps bring down to
    min_alpha_bar itself."""
    if cfg.below_share == 0:
        return None
    if cfg.extra_steps > 0:
        return (f"diffusion.below_share={cfg.below_share} with extra_steps={cfg.extra_steps}: the extra steps "
                f"reach min_alpha_bar={cfg.min_alpha_bar}, which leaves no levels below them to draw; expected "
                "extra_steps: 0 (below_share's levels) or below_share: 0 (the extra steps')")
    end = float(alpha_bars(training_betas(cfg))[-1])
    if end <= cfg.min_alpha_bar * (1.0 + BELOW_RANGE_RTOL):
        return (f"diffusion.below_share={cfg.below_share}: min_alpha_bar={cfg.min_alpha_bar} is not below the "
                f"schedule's last level {end:.4g}; expected min_alpha_bar < {end:.4g}")
    return None


def sample_training_levels(
    batch: int,
    betas: torch.Tensor,
    below_share: float = 0.0,
    min_alpha_bar: float = 0.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Continuous training levels, (batch,) float64 abar values.

    With probability 1 - below_share, WaveGrad's draw over the steps of ``betas``:
    t ~ U{1..S}, sqrt(abar) ~ U(sqrt(abar_t), sqrt(abar_{t-1})). With probability
    below_share, a level below the last step: log-SNR ~ U(log_snr(min_alpha_bar),
    log_snr(abar_S)), so the loud first steps of short schedules (WG-3 starts at abar
    0.094, WG-6 at 0.19; the T = 50 schedule ends at 0.28) get draws of their own
    instead of one step interval among many. No such draws unless abar_S exceeds
    min_alpha_bar by more than rounding (below_share_problem: a config error).
    """
    abar = alpha_bars(betas)
    scale = torch.cat([torch.ones(1, dtype=torch.float64), abar.sqrt()])
    t = torch.randint(1, len(betas) + 1, (batch,), generator=generator)
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    levels = (scale[t] + u * (scale[t - 1] - scale[t])).pow(2)
    if below_share > 0 and float(abar[-1]) > min_alpha_bar * (1.0 + BELOW_RANGE_RTOL):
        pick = torch.rand(batch, generator=generator, dtype=torch.float64) < below_share
        v = torch.rand(batch, generator=generator, dtype=torch.float64)
        lo, hi = log_snr(torch.tensor([min_alpha_bar, float(abar[-1])])).double().tolist()
        below = torch.sigmoid(lo + v * (hi - lo))  # abar = sigmoid(log-SNR)
        levels = torch.where(pick, below, levels)
    return levels


def trained_min_alpha_bar(cfg: DiffusionConfig) -> float:
    """The lowest abar that training draws (what an inference schedule should not go below)."""
    end = float(alpha_bars(training_betas(cfg))[-1])
    return min(end, cfg.min_alpha_bar) if cfg.below_share > 0 else end


def untrained_start(betas: torch.Tensor, cfg: DiffusionConfig) -> Optional[str]:
    """Why a schedule's first level (abar_S) is below the lowest trained one, or None if it is not."""
    end, trained = float(alpha_bars(betas)[-1]), trained_min_alpha_bar(cfg)
    if end >= trained * 0.999:  # tolerance: WG-3 ends within rounding of a trained level
        return None
    return f"starts at abar {end:.4g}, below the lowest trained level {trained:.4g}"


def add_noise(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Forward process x_t = sqrt(abar) x0 + sqrt(1 - abar) eps. x0, eps: (B, N); abar: (B,)."""
    abar = alpha_bar.to(x0.dtype).unsqueeze(-1)
    return abar.sqrt() * x0 + (1.0 - abar).clamp_min(0).sqrt() * eps


def predicted_clean(x_t: torch.Tensor, eps_hat: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The x0 that a noise estimate implies, add_noise solved for x0:
    x0_hat = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar). x_t, eps_hat: (B, N); abar: (B,)."""
    abar = alpha_bar.to(x_t.dtype).unsqueeze(-1)
    return (x_t - (1.0 - abar).clamp_min(0).sqrt() * eps_hat) / abar.sqrt()


def weighted_loss(residual_whitened: torch.Tensor) -> torch.Tensor:
    """|| L^-1 (eps - eps_theta) ||^2 averaged over samples; the input is already L^-p applied."""
    return residual_whitened.pow(2).mean()


def sample(
    predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    draw_noise: Callable[[], torch.Tensor],
    betas: torch.Tensor,
    progress: Optional[Callable[[int], None]] = None,
    start: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Ancestral sampler, from x_T = L xi down to x_0.

    start: an estimate s of x_0 (B, N): then x_T = sqrt(abar_T) s + sqrt(1 - abar_T) L xi, the
    forward process's marginal at the first level with s in place of x_0 (SDEdit's start, Meng
    et al. 2022). Short schedules start where x_t still holds x_0 at sqrt(abar_T) of its
    amplitude (0.44 at WG-6), which pure noise leaves out.

    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, abar_t)) / sqrt(alpha_t)
              + sigma_t L z,   sigma_t^2 = beta_t (1 - abar_{t-1}) / (1 - abar_t),
    with no noise at the last step. predict_noise(x_t, log_snr) -> eps_theta;
    draw_noise() -> a fresh L z of x's shape. Deterministic given draw_noise.
    """
    abar = alpha_bars(betas)
    levels = log_snr(abar)
    x = draw_noise() if start is None else add_noise(start, draw_noise(), abar[-1:].to(start.device).expand(len(start)))
    for t in range(len(betas) - 1, -1, -1):
        beta = float(betas[t])
        one_minus = 1.0 - float(abar[t])
        eps = predict_noise(x, levels[t].expand(x.shape[0]).to(x.device))
        x = (x - (beta / one_minus**0.5) * eps) / (1.0 - beta) ** 0.5
        if t > 0:
            sigma = (beta * (1.0 - float(abar[t - 1])) / one_minus) ** 0.5
            x = x + sigma * draw_noise()
        if progress is not None:
            progress(len(betas) - t)
    return x
