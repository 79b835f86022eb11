"""Schedules, forward process and sampler."""

import math

import pytest
import torch

from specgrad_plugin import diffusion, shaping
from specgrad_plugin.config import ConfigError, DiffusionConfig, SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.vocoder import SpecGradVocoder

SCHEDULES = ["WG-3", "WG-6", "PG-6", "WG-50", [1e-4, 0.02, 0.4, 0.8]]


def test_named_schedules_have_published_lengths():
    assert [len(diffusion.inference_betas(s)) for s in ("WG-3", "WG-6", "PG-6", "WG-50")] == [3, 6, 6, 50]
    assert torch.allclose(diffusion.inference_betas("0.1, 0.5"), torch.tensor([0.1, 0.5], dtype=torch.float64))


@pytest.mark.parametrize("schedule, model, start", [("LJ-3", "ljspeech-v1", 0.48), ("LJ2-3", "ljspeech-v2", 0.088)])
def test_searched_schedules_start_where_their_model_trained(schedule, model, start):
    """A searched schedule's first level (abar_S, where L xi enters) is the one its search
    reported, and one its model was trained on."""
    from specgrad_plugin import pretrained

    cfg = SpecGradConfig.from_yaml(pretrained.resolve(model)[1])
    betas = diffusion.inference_betas(schedule)
    assert len(betas) == 3 and abs(float(diffusion.alpha_bars(betas)[-1]) - start) < 0.005
    assert diffusion.untrained_start(betas, cfg.diffusion) is None


@pytest.mark.parametrize("bad", ["WG-7", "0.5,1.5", "", [0.0, 0.1]])
def test_bad_schedule_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="schedule"):
        diffusion.inference_betas(bad)


def test_training_levels_cover_short_schedules():
    """Default: PriorGrad's T = 50 schedule ends at abar 0.28; 5 equal-beta steps reach 1e-3."""
    cfg = DiffusionConfig()
    betas = diffusion.training_betas(cfg)
    abar = diffusion.alpha_bars(betas)
    assert abs(float(abar[cfg.steps - 1]) - 0.28) < 0.01  # the T = 50 PriorGrad schedule
    assert abs(float(abar[-1]) - cfg.min_alpha_bar) < 1e-9
    levels = diffusion.sample_training_levels(20000, betas, generator=torch.Generator().manual_seed(0))
    for name in ("WG-3", "WG-6"):
        lowest = float(diffusion.alpha_bars(diffusion.inference_betas(name))[-1])
        assert float(levels.min()) < lowest  # the schedule's first level was trained on
    assert float(levels.min()) >= cfg.min_alpha_bar and float(levels.max()) <= 1.0


def test_each_training_step_gets_its_share_with_sqrt_abar_uniform_inside():
    """WaveGrad's draw: t ~ U{1..S} (the last step included), then sqrt(abar) uniform between
    sqrt(abar_t) and sqrt(abar_{t-1})."""
    betas = torch.tensor([0.75, 0.5, 0.5], dtype=torch.float64)  # abar: 0.25, 0.125, 0.0625
    levels = diffusion.sample_training_levels(60000, betas, generator=torch.Generator().manual_seed(0))
    edges = torch.cat([torch.ones(1, dtype=torch.float64), diffusion.alpha_bars(betas).sqrt()])
    for t in (1, 2, 3):
        inside = (levels.sqrt() <= edges[t - 1]) & (levels.sqrt() > edges[t])
        assert float(inside.double().mean()) == pytest.approx(1 / 3, abs=0.01), t
        position = (levels[inside].sqrt() - edges[t]) / (edges[t - 1] - edges[t])  # U(0, 1)
        assert float(position.mean()) == pytest.approx(0.5, abs=0.01), t
        assert float(position.quantile(0.25)) == pytest.approx(0.25, abs=0.01), t


def test_levels_below_the_schedule_are_log_snr_uniform():
    """below_share of the draws have log-SNR uniform between min_alpha_bar and the last step:
    the share of draws in an abar interval there follows from the interval's log-SNR width."""
    cfg = DiffusionConfig(extra_steps=0, min_alpha_bar=0.05, below_share=0.1)
    betas = diffusion.training_betas(cfg)
    end = float(diffusion.alpha_bars(betas)[-1])
    levels = diffusion.sample_training_levels(400000, betas, cfg.below_share, cfg.min_alpha_bar,
                                              torch.Generator().manual_seed(0))

    def lam(a):
        return math.log(a / (1 - a))

    assert float(levels.min()) >= 0.05 - 1e-9 and diffusion.trained_min_alpha_bar(cfg) == 0.05
    for lo, hi in ((0.09, 0.2), (0.05, 0.07)):  # near the bottom, log-SNR and abar widths part most
        inside = float(((levels > lo) & (levels < hi)).double().mean())
        assert inside == pytest.approx(0.1 * (lam(hi) - lam(lo)) / (lam(end) - lam(0.05)), abs=0.003)
    above = float((levels >= end).double().mean())
    assert above == pytest.approx(0.9, abs=0.003)


@pytest.mark.parametrize("min_alpha_bar, extra_steps", [(1e-3, 5), (2e-3, 1), (1e-3, 8), (0.05, 3)])
def test_extra_steps_ending_at_min_alpha_bar_leave_no_below_draws(min_alpha_bar, extra_steps):
    """The extra steps end at min_alpha_bar up to rounding (here a few 1e-19 above it): that
    must not turn a share of the draws into one level, min_alpha_bar itself."""
    cfg = DiffusionConfig(extra_steps=extra_steps, min_alpha_bar=min_alpha_bar)
    betas = diffusion.training_betas(cfg)
    assert float(diffusion.alpha_bars(betas)[-1]) == pytest.approx(min_alpha_bar, rel=1e-12)
    plain = diffusion.sample_training_levels(5000, betas, 0.0, min_alpha_bar, torch.Generator().manual_seed(0))
    with_share = diffusion.sample_training_levels(5000, betas, 0.1, min_alpha_bar, torch.Generator().manual_seed(0))
    assert torch.equal(with_share, plain)


@pytest.mark.parametrize("section, message", [
    ({"extra_steps": 5, "min_alpha_bar": 1e-3, "below_share": 0.1},
     "below_share=0.1 with extra_steps=5: the extra steps reach min_alpha_bar=0.001"),
    ({"extra_steps": 0, "min_alpha_bar": 0.5, "below_share": 0.1},
     "below_share=0.1: min_alpha_bar=0.5 is not below the schedule's last level 0.2797"),
])
def test_below_share_without_a_range_below_the_schedule_is_a_config_error(section, message):
    with pytest.raises(ConfigError, match=message):
        SpecGradConfig.from_dict({"diffusion": section, "inference": {"schedule": "WG-50"}})
    SpecGradConfig.from_dict({"diffusion": {**section, "below_share": 0.0}, "inference": {"schedule": "WG-50"}})


def test_schedule_below_the_trained_levels_is_refused_or_warned(tiny_cfg):
    with pytest.raises(ValueError, match="starts at abar 0.09.*below the lowest trained level 0.2"):
        SpecGradConfig.from_dict({"diffusion": {"extra_steps": 0, "below_share": 0.0},
                                  "inference": {"schedule": "WG-3"}})
    cfg = SpecGradConfig.from_dict({"diffusion": {"extra_steps": 0, "below_share": 0.0},
                                    "inference": {"schedule": "PG-6"}})
    vocoder = SpecGradVocoder(cfg).eval()
    with pytest.warns(UserWarning, match="schedule WG-3 starts at abar 0.09.*below the lowest trained level 0.2"):
        vocoder(torch.randn(4, 80) - 3, schedule="WG-3")


@pytest.mark.parametrize("schedule", ["WG-6", "PG-6", [1e-4, 0.02, 0.4, 0.8]], ids=str)
def test_sampler_chain_has_the_forward_marginals(speech_clip, schedule):
    """With the exact noise as eps_theta (an oracle knowing x0), each ancestral step samples
    q(x_{t-1} | x_t, x0); started from the forward marginal at T, every x_t the network sees is
    then distributed as the forward process: x_t - sqrt(abar_t) x0 has the power
    (1 - abar_t) E|L z|^2 in every band. A wrong sigma_t, sigma_t = 0, white instead of shaped
    noise or a scaled start all break this at some t."""
    vocoder = SpecGradVocoder(SpecGradConfig())
    x0 = crop_to_hop(torch.from_numpy(speech_clip[: 22050])[None], 256).double()
    draws = 48
    x0 = x0.expand(draws, -1)
    response = vocoder.prior.response(vocoder.features(x0[:1].float())).expand(draws, -1, -1)
    gen = torch.Generator().manual_seed(0)
    window = vocoder.prior.window.double()
    bands = [(1, 24), (24, 93), (93, 372)]  # 20-500 Hz, 0.5-2 kHz, 2-8 kHz

    def band_power(x):
        power = shaping.stft(x, 1024, 256, window).abs().pow(2).mean(dim=(0, 2))
        return torch.stack([power[a:b].mean() for a, b in bands])

    reference = band_power(vocoder.prior.noise(response, gen).double())  # E|G L z|^2 per band
    seen = []

    def oracle(x, log_snr):
        abar = torch.sigmoid(log_snr.double()).unsqueeze(-1)
        seen.append((float(abar[0]), band_power(x - abar.sqrt() * x0)))
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    betas = diffusion.inference_betas(schedule)
    abar_end = float(diffusion.alpha_bars(betas)[-1])
    starts = []

    def draw():  # the sampler's first draw is x_T: make it the forward marginal at abar_T
        noise = vocoder.prior.noise(response, gen).double()
        if not starts:
            starts.append(True)
            return math.sqrt(abar_end) * x0 + math.sqrt(1 - abar_end) * noise
        return noise

    out = diffusion.sample(oracle, draw, betas)
    assert len(seen) == len(betas)
    assert float((out - x0).abs().max()) < 1e-4 * float(x0.abs().max())  # and it ends at x0
    for abar, power in seen:
        ratio = power / ((1 - abar) * reference)
        assert ((ratio - 1).abs() < 0.1).all(), (abar, ratio.tolist())


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_any_schedule_yields_k_times_hop_samples(tiny_cfg, schedule):
    vocoder = SpecGradVocoder(tiny_cfg).eval()
    for frames in (1, 2, 37):  # a TTS model can emit a single frame
        mel = torch.randn(frames, 80) - 3
        assert vocoder(mel, schedule=schedule).shape == (frames * 256,)
    assert vocoder(torch.randn(2, 5, 80) - 3, schedule=schedule).shape == (2, 5 * 256)


def test_sampling_is_deterministic_for_a_seed(tiny_cfg):
    vocoder = SpecGradVocoder(tiny_cfg).eval()
    torch.nn.init.normal_(vocoder.denoiser.out.weight, std=0.1)  # a non-trivial denoiser
    mel = torch.randn(20, 80) - 3
    a, b, c = vocoder(mel, seed=7), vocoder(mel, seed=7), vocoder(mel, seed=8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_forward_process_matches_definition():
    x0, eps = torch.randn(2, 512), torch.randn(2, 512)
    abar = torch.tensor([0.9, 0.2], dtype=torch.float64)
    xt = diffusion.add_noise(x0, eps, abar)
    expected = abar.float().sqrt()[:, None] * x0 + (1 - abar.float()).sqrt()[:, None] * eps
    assert torch.allclose(xt, expected, atol=1e-6)


def test_predicted_clean_inverts_the_forward_process():
    x0, eps = torch.randn(3, 1000), torch.randn(3, 1000)
    abar = torch.tensor([0.99, 0.3, 1e-3], dtype=torch.float64)
    assert torch.allclose(diffusion.predicted_clean(diffusion.add_noise(x0, eps, abar), eps, abar), x0, atol=1e-3)
    wrong = diffusion.predicted_clean(diffusion.add_noise(x0, eps, abar), 0.9 * eps, abar)
    assert not torch.allclose(wrong[1:], x0[1:], atol=1e-2)
