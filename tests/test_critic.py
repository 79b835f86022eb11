"""The sampler loss's critic (WaveFit's GAN term): it learns to tell a periodic band from
noise, its generator loss moves the audio and not itself, training saves and restores it
beside the model, and the configs that cannot train it say so."""

import math

import pytest
import torch

from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.critic import LowBandCritic
from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.sampler_loss import SamplerLoss
from specgrad_plugin.training import fit
from tests.conftest import SMALL_FAMILIES

LOW_RATE = 22050 / 8  # the sampler loss's decimated band
LOW_TRUNK = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8}


def voiced_band(batch: int, n: int = 512, seed: int = 0) -> torch.Tensor:
    """Harmonic signals at random F0s (100-300 Hz), unit power: a voiced low band."""
    g = torch.Generator().manual_seed(seed)
    f0 = 100 + 200 * torch.rand(batch, 1, generator=g)
    t = torch.arange(n) / LOW_RATE
    x = sum(torch.sin(2 * math.pi * k * f0 * t + 6.3 * torch.rand(batch, 1, generator=g)) / k for k in (1, 2, 3))
    return x / x.pow(2).mean(dim=1, keepdim=True).sqrt()


def test_critic_learns_to_tell_a_voiced_band_from_noise():
    torch.manual_seed(0)
    critic = LowBandCritic(lr=1e-3)
    real = voiced_band(4)
    first = critic.update(torch.randn(4, 512), real)
    for step in range(1, 40):
        last = critic.update(torch.randn(4, 512), voiced_band(4, seed=step))
    assert last["critic_real"] + last["critic_fake"] < 0.5 * (first["critic_real"] + first["critic_fake"])
    # unseen draws: the voiced band is judged real (1), noise fake (0); swapped labels fail
    with torch.no_grad():
        voiced, noise = judged(critic, voiced_band(4, seed=99)), judged(critic, torch.randn(4, 512))
    assert voiced > noise + 0.3, (voiced, noise)


def judged(critic: LowBandCritic, x: torch.Tensor) -> float:
    """The critic's verdict, its sub-discriminators' final outputs averaged."""
    return float(torch.stack([out[-1].mean() for out in critic.discriminator(x.unsqueeze(1))]).mean())


def test_generator_loss_moves_the_audio_and_leaves_the_critic_as_it_was():
    critic = LowBandCritic()
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    fake = torch.randn(4, 512, requires_grad=True)
    critic.generator_loss(fake, voiced_band(4)).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert all(p.grad is None and p.requires_grad for p in critic.parameters())
    assert all(torch.equal(before[k], v) for k, v in critic.state_dict().items())


def test_sampler_loss_adds_the_critics_term_with_its_gradient_and_only_in_training(speech_clip):
    clean = torch.from_numpy(speech_clip[:8192]).float()[None].repeat(2, 1)
    estimate = (clean + 0.1 * torch.randn(2, 8192)).requires_grad_(True)
    plain, judged_loss = SamplerLoss("WG-6"), SamplerLoss("WG-6", adversarial_weight=0.5)
    torch.manual_seed(1)
    critic_before = {k: v.clone() for k, v in judged_loss.critic.state_dict().items()}
    (g_plain,) = torch.autograd.grad(plain.low_band_distance(estimate, clean), estimate)
    value = judged_loss.low_band_distance(estimate, clean)
    (g_judged,) = torch.autograd.grad(value, estimate)
    stats = judged_loss.stats
    expected = float(plain.low_band_distance(estimate, clean).detach()) + 0.5 * stats["critic_generator"]
    assert abs(float(value) - expected) < 1e-5 and {"critic_real", "critic_fake"} <= set(stats)
    assert not torch.allclose(g_plain, g_judged, atol=1e-7)  # the term reaches the audio
    stepped = {k: v.clone() for k, v in judged_loss.critic.state_dict().items()}
    assert any(not torch.equal(critic_before[k], v) for k, v in stepped.items())  # the critic took its step
    # no step and no term outside a training step: under no_grad (a validation loss) or in eval mode
    with torch.no_grad():
        assert abs(float(judged_loss.low_band_distance(estimate, clean))
                   - float(plain.low_band_distance(estimate, clean))) < 1e-6
    assert judged_loss.stats == {}
    judged_loss.eval()
    assert abs(float(judged_loss.low_band_distance(estimate, clean))
               - float(plain.low_band_distance(estimate, clean))) < 1e-6
    assert all(torch.equal(stepped[k], v) for k, v in judged_loss.critic.state_dict().items())


def adversarial_config(weight: float = 0.2, **train) -> SpecGradConfig:
    return SpecGradConfig.from_dict({
        "denoiser": LOW_TRUNK,
        "diffusion": {"sampler_loss_weight": 1.0, "sampler_loss_adversarial_weight": weight},
        "train": {"batch_size": 2, "segment_frames": 16, "warmup_steps": 1, **train}})


def test_fit_saves_the_critic_beside_the_model_and_restores_it(tmp_path, speech_clip):
    from specgrad_plugin.data import SegmentDataset
    from specgrad_plugin.vocoder import SpecGradVocoder

    cfg = adversarial_config()
    vocoder = SpecGradVocoder(cfg)
    loader = torch.utils.data.DataLoader(
        SegmentDataset([speech_clip[:22050]], vocoder.features, segment_frames=16), batch_size=2)
    history = fit(vocoder, loader, steps=2, out_dir=tmp_path, log_every=1)
    assert {"critic_real", "critic_fake", "critic_generator"} <= set(history[-1])
    saved = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    critic = saved["loss"]["critic"]
    assert critic["optimizer"]["state"], "the critic's Adam moments are saved"
    # the model's own state dict stays the vocoder's: shipped and loadable without a critic
    assert not any("discriminator" in k for k in saved["model"])
    # resuming at the last step trains nothing and saves again: the critic must be the one saved
    fit(SpecGradVocoder(cfg), loader, steps=2, out_dir=tmp_path)
    again = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)["loss"]["critic"]
    assert all(torch.equal(critic["discriminator"][k], v) for k, v in again["discriminator"].items())
    moments = [s["exp_avg"] for s in critic["optimizer"]["state"].values()]
    assert all(torch.equal(a, b["exp_avg"]) for a, b in zip(moments, again["optimizer"]["state"].values(), strict=True))
    # a config without the critic cannot silently drop it on resume
    plain = SpecGradConfig.from_dict({**cfg.to_dict(), "diffusion": {**cfg.to_dict()["diffusion"],
                                                                      "sampler_loss_adversarial_weight": 0.0}})
    with pytest.raises(ValueError, match="checkpoint.pt: the checkpoint has a critic"):
        fit(SpecGradVocoder(plain), loader, steps=3, out_dir=tmp_path)
    # ... nor start one from scratch against a checkpoint trained without
    fit(SpecGradVocoder(plain), loader, steps=1, out_dir=tmp_path / "without")
    with pytest.raises(ValueError, match="checkpoint.pt: the checkpoint lacks a critic"):
        fit(SpecGradVocoder(cfg), loader, steps=2, out_dir=tmp_path / "without")


def test_configs_that_cannot_train_the_critic_say_so():
    with pytest.raises(ConfigError, match="sampler_loss_adversarial_weight=-1"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_weight": 1.0, "sampler_loss_adversarial_weight": -1.0}})
    with pytest.raises(ConfigError, match="sampler_loss_weight=0: the critic judges the sampler loss's output"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_adversarial_weight": 0.2}})
    sections = adversarial_config().to_dict()
    sections.pop("train")
    with pytest.raises(ConfigError, match="model_conf: .* the critic trains with specgrad_plugin.training.fit only"):
        ESPnetSpecGradModel(**sections)
    from specgrad_plugin.vocoder import SpecGradVocoder

    with pytest.raises(ConfigError, match="SpecGradVocoder.training_loss: .*expected 0 here"):
        SpecGradVocoder(adversarial_config()).training_loss(torch.zeros(2, 4096), torch.zeros(2, 16, 80))
