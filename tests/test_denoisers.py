"""The denoiser families: one interface, and the frame family's whitening and starting point."""

import math

import pytest
import torch

from specgrad_plugin import diffusion
from specgrad_plugin.denoisers import FrameDenoiser, WaveNetDenoiser
from specgrad_plugin.vocoder import CheckpointError, SpecGradVocoder

from .conftest import SMALL_FAMILIES, small_config


@pytest.mark.parametrize("family", sorted(SMALL_FAMILIES))
def test_every_family_trains_through_the_same_loss(family):
    """The vocoder's loss, backward and sampler run the same way for each family, and every
    denoiser weight gets a gradient (a branch left out of the graph would get none)."""
    vocoder = SpecGradVocoder(small_config(family))
    assert isinstance(vocoder.denoiser, {"wavenet": WaveNetDenoiser, "frame": FrameDenoiser}[family])
    for p in vocoder.denoiser.parameters():  # past the zero initialisation of the output layers
        torch.nn.init.normal_(p, std=0.05)
    wav = torch.randn(2, 24 * 256) * 0.1
    loss, stats = vocoder.training_loss(wav, vocoder.features(wav))
    loss.backward()
    assert math.isfinite(stats["loss"]) and stats["loss"] > 0
    silent = [n for n, p in vocoder.denoiser.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent
    out = vocoder.eval()(vocoder.features(wav[:1])[0], schedule="WG-3")
    assert out.shape == (24 * 256,) and torch.isfinite(out).all()


def _frame_vocoder(speech_clip):
    vocoder = SpecGradVocoder(small_config("frame")).eval()
    ref = torch.from_numpy(speech_clip[: 256 * 120])
    mel = vocoder.features(ref[None])
    response = vocoder.prior.response(mel)
    return vocoder, mel, response


def test_frame_family_sees_the_prior_noise_as_unit_white_noise(speech_clip):
    """Y = G x / (c H) for x = L xi has variance ~1 in every bin: the whitening that makes the
    network's task the same in every band. The shaped noise itself spans ~15 dB over bins."""
    vocoder, mel, response = _frame_vocoder(speech_clip)
    den = vocoder.denoiser
    cond = den.condition(mel, response)
    xi = torch.randn(64, mel.shape[1] * 256, generator=torch.Generator().manual_seed(0))
    eps = vocoder.prior.apply(xi, response.expand(64, -1, -1))
    plain = den.whiten(eps, torch.ones_like(cond.response)).abs().pow(2)[..., 3:-3].mean(dim=(0, 2))
    power = den.whiten(eps, cond.response).abs().pow(2)[..., 3:-3].mean(dim=(0, 2))  # per bin, interior frames
    assert 10 * math.log10(float(plain.max() / plain.min())) > 10  # the shaped noise is far from white
    # 1 up to the STFT's redundancy (G L xi = H G xi only where H varies slowly over frames)
    assert 0.95 < float(power.median()) < 1.1
    assert 0.8 < float(power.min()) and float(power.max()) < 1.4


def test_untrained_frame_denoiser_is_the_wiener_estimate(speech_clip):
    """With a zero output layer the prediction is g Z with g = sigmoid(b - log_snr):
    G+(c H g G x_t / (c H sqrt(1 - abar))) = sigmoid(b - log_snr) x_t / sqrt(1 - abar),
    i.e. sqrt(1 - abar) x_t at b = 0 (the Wiener estimate for unit speech variance)."""
    vocoder, mel, response = _frame_vocoder(speech_clip)
    den = vocoder.denoiser
    x = torch.randn(1, mel.shape[1] * 256)
    abar = torch.tensor([0.3])
    level = diffusion.log_snr(abar)
    with torch.no_grad():
        eps_hat = den(x, den.condition(mel, response), level)
        assert torch.allclose(eps_hat, math.sqrt(0.7) * x, atol=1e-4)
        den.gain_bias.fill_(2.0)
        eps_hat = den(x, den.condition(mel, response), level)
    gain = 1.0 / (1.0 + math.exp(-(2.0 - float(level))))
    assert torch.allclose(eps_hat, gain / math.sqrt(0.7) * x, atol=1e-4)


def test_frame_checkpoint_round_trip_and_family_mismatch(tmp_path):
    frame = SpecGradVocoder(small_config("frame"))
    torch.nn.init.normal_(frame.denoiser.trunk.out.weight, std=0.05)
    frame.save(tmp_path / "frame.pt")
    loaded = SpecGradVocoder.from_checkpoint(tmp_path / "frame.pt")
    assert loaded.cfg.denoiser.kind == "frame"
    assert torch.equal(loaded.denoiser.trunk.out.weight, frame.denoiser.trunk.out.weight)
    # checkpoints from before the trunk was a module hold its weights under denoiser.* directly
    legacy = {k.replace("denoiser.trunk.", "denoiser."): v for k, v in frame.state_dict().items()}
    assert "denoiser.out.weight" in legacy
    torch.save({"config": frame.cfg.to_dict(), "model": legacy}, tmp_path / "legacy.pt")
    old = SpecGradVocoder.from_checkpoint(tmp_path / "legacy.pt")
    assert torch.equal(old.denoiser.trunk.out.weight, frame.denoiser.trunk.out.weight)
    fresh = SpecGradVocoder(small_config("frame"))
    fresh.load_state_dict(legacy)  # ESPnet's resume loads this way
    assert torch.equal(fresh.denoiser.trunk.out.weight, frame.denoiser.trunk.out.weight)
    with pytest.raises(CheckpointError, match="frame.pt: weights do not match the config"):
        SpecGradVocoder.from_checkpoint(tmp_path / "frame.pt", config=small_config("wavenet"))
