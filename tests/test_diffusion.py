"""Schedules, forward process and sampler."""

import pytest
import torch

from specgrad_plugin import diffusion
from specgrad_plugin.config import DiffusionConfig, SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.vocoder import SpecGradVocoder

SCHEDULES = ["WG-3", "WG-6", "PG-6", "WG-50", [1e-4, 0.02, 0.4, 0.8]]


def test_named_schedules_have_published_lengths():
    assert [len(diffusion.inference_betas(s)) for s in ("WG-3", "WG-6", "PG-6", "WG-50")] == [3, 6, 6, 50]
    assert torch.allclose(diffusion.inference_betas("0.1, 0.5"), torch.tensor([0.1, 0.5], dtype=torch.float64))


@pytest.mark.parametrize("bad", ["WG-7", "0.5,1.5", "", [0.0, 0.1]])
def test_bad_schedule_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="schedule"):
        diffusion.inference_betas(bad)


def test_training_levels_cover_short_schedules():
    cfg = DiffusionConfig()
    betas = diffusion.training_betas(cfg)
    abar = diffusion.alpha_bars(betas)
    assert abs(float(abar[cfg.steps - 1]) - 0.28) < 0.01  # the T = 50 PriorGrad schedule
    assert abs(float(abar[-1]) - cfg.min_alpha_bar) < 1e-9
    levels = diffusion.sample_training_levels(20000, betas, torch.Generator().manual_seed(0))
    for name in ("WG-3", "WG-6"):
        lowest = float(diffusion.alpha_bars(diffusion.inference_betas(name))[-1])
        assert float(levels.min()) < lowest  # the schedule's first level was trained on
    assert float(levels.min()) >= cfg.min_alpha_bar and float(levels.max()) <= 1.0


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_sampler_with_oracle_denoiser_recovers_x0(speech_clip, schedule):
    vocoder = SpecGradVocoder(SpecGradConfig())
    x0 = crop_to_hop(torch.from_numpy(speech_clip[: 22050])[None], 256).double()
    response = vocoder.prior.response(vocoder.features(x0.float()))
    gen = torch.Generator().manual_seed(0)

    def oracle(x, log_snr):  # the true noise of x_t given the known x0
        abar = torch.sigmoid(log_snr.double()).unsqueeze(-1)
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    betas = diffusion.inference_betas(schedule)
    out = diffusion.sample(oracle, lambda: vocoder.prior.noise(response, gen).double(), betas)
    assert out.shape == x0.shape
    assert float((out - x0).abs().max()) < 1e-4 * float(x0.abs().max())


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
