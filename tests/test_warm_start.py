"""The sampler's start from Griffin-Lim (inference.start_iterations): the audio it starts
from, where in the forward process it is put, and that inference and the sampler loss
start from the same one."""

import math

import pytest
import torch

from specgrad_plugin import diffusion, shaping
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.export import ExportError, RealSampler, unsupported_reason
from specgrad_plugin.sampler_loss import SamplerLoss
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import small_config


def harmonic(seconds: float = 0.75, f0: float = 150.0, fs: int = 22050) -> torch.Tensor:
    t = torch.arange(int(seconds * fs)) / fs
    return sum(0.1 / k * torch.sin(2 * math.pi * k * f0 * t + k) for k in range(1, 12))


def test_griffin_lim_gives_audio_with_the_mels_magnitude_and_needs_its_iterations():
    vocoder = SpecGradVocoder(SpecGradConfig())
    hop = vocoder.hop_length
    wav = harmonic()[: 64 * hop]
    mel = vocoder.features(wav[None])
    prior = vocoder.prior

    def mel_error(iterations: int) -> float:
        audio = shaping.griffin_lim(mel, prior.mel_pinv, prior.n_fft, hop, prior.window, iterations)
        assert audio.shape == (1, mel.shape[1] * hop)
        return float((vocoder.features(audio) - mel).abs().mean())

    # zero phase is the start; the iterations make the phases consistent with the magnitudes
    assert mel_error(16) < min(0.2, 0.3 * mel_error(0)), (mel_error(16), mel_error(0))
    once = prior.start(mel, 8)
    torch.testing.assert_close(prior.start(mel, 8), once)  # the same mel, the same audio
    assert prior.start(mel, 0) is None
    for frames in (1, 2):  # shorter than the STFT's reflection padding needs: still K * hop samples
        short = prior.start(mel[:, :frames], 4)
        assert short.shape == (1, frames * hop) and torch.isfinite(short).all()


def test_sample_starts_at_the_forward_marginal_around_the_estimate():
    betas = diffusion.inference_betas("WG-6")
    abar_T = float(diffusion.alpha_bars(betas)[-1])
    noise = torch.randn(2, 512)
    estimate = torch.randn(2, 512)
    seen = []

    def predict(x, level):
        seen.append(x.clone())
        return torch.zeros_like(x)

    diffusion.sample(predict, lambda: noise, betas, start=estimate)
    torch.testing.assert_close(seen[0], math.sqrt(abar_T) * estimate + math.sqrt(1 - abar_T) * noise)
    seen.clear()
    diffusion.sample(predict, lambda: noise, betas)
    torch.testing.assert_close(seen[0], noise)


@pytest.mark.parametrize("iterations", [0, 4])
def test_inference_and_the_sampler_loss_start_from_the_same_griffin_lim(iterations, monkeypatch):
    cfg = small_config("frame", inference={"start_iterations": iterations})
    vocoder = SpecGradVocoder(cfg).eval()
    # training statistics 1.0 (log10) above the input: level matching moves the mel before sampling
    vocoder.set_mel_statistics(torch.full((cfg.features.n_mels,), -1.0), torch.full((cfg.features.n_mels,), 0.5))
    mel = torch.randn(1, 12, cfg.features.n_mels) * 0.3 - 2.0
    matched, gain = vocoder.match_level(mel)
    assert float(gain) < 1.0
    starts = []
    real_sample = diffusion.sample

    def recording(*args, start=None, **kwargs):
        starts.append(start)
        return real_sample(*args, start=start, **kwargs)

    monkeypatch.setattr(diffusion, "sample", recording)
    vocoder(mel, schedule="WG-6", seed=0, chunk_frames=0)
    SamplerLoss("WG-6").sample(vocoder, matched, vocoder.prior.response(matched))  # training mels: at the level
    assert len(starts) == 2
    if iterations == 0:
        assert starts == [None, None]
        return
    expected = vocoder.prior.start(matched, iterations)
    for start in starts:
        torch.testing.assert_close(start, expected)
    assert not torch.allclose(starts[0], vocoder.prior.start(mel, iterations), atol=1e-3)  # not the unmatched mel


def test_a_griffin_lim_start_is_refused_where_it_is_not_written_and_a_negative_count_is_an_error():
    vocoder = SpecGradVocoder(small_config("frame", inference={"start_iterations": 4}))
    assert "inference.start_iterations=4" in unsupported_reason(vocoder)
    with pytest.raises(ExportError, match="start_iterations"):
        RealSampler(vocoder)
    with pytest.raises(ConfigError, match="start_iterations=-1"):
        small_config("frame", inference={"start_iterations": -1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_griffin_lim_start_samples_on_the_gpu():
    vocoder = SpecGradVocoder(small_config("frame", inference={"start_iterations": 4})).cuda().eval()
    mel = (torch.randn(1, 12, vocoder.cfg.features.n_mels) * 0.3 - 2.0).cuda()
    assert torch.isfinite(vocoder(mel, schedule="WG-6", seed=0)).all()
