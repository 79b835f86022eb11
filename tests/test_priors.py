"""The three priors share one code path; the baselines are its special cases."""

import pytest
import torch

from specgrad_plugin import diffusion, shaping
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.vocoder import SpecGradVocoder


def vocoder_with(kind: str) -> SpecGradVocoder:
    cfg = SpecGradConfig()
    cfg.prior.kind = kind
    return SpecGradVocoder(cfg)


@pytest.fixture(scope="module")
def mels(speech_clips):
    extractor = SpecGradVocoder(SpecGradConfig()).features
    wavs = [crop_to_hop(torch.from_numpy(c)[None], 256) for c in speech_clips]
    return [(w, extractor(w)) for w in wavs]


def test_diffwave_prior_is_white_noise(mels):
    vocoder = vocoder_with("diffwave")
    wav, mel = mels[0]
    response = vocoder.prior.response(mel)
    assert torch.allclose(response, torch.ones_like(response))
    xi = torch.randn_like(wav)
    assert (vocoder.prior.apply(xi, response) - xi).abs().max() < 1e-5  # L = G+ G = I


def test_priorgrad_prior_is_frame_level_only(mels):
    vocoder = vocoder_with("priorgrad")
    _, mel = mels[0]
    response = vocoder.prior.response(mel)
    sigma = vocoder.prior.level(mel)
    assert torch.allclose(response.imag, torch.zeros_like(response.imag))
    assert torch.allclose(response.real, sigma.unsqueeze(-1).expand_as(response.real))
    # A mel whose frames are all equal gives L xi = sigma xi exactly.
    flat = mel[:, 100:101].expand(1, 40, -1)
    xi = torch.randn(1, 40 * 256)
    out = vocoder.prior.apply(xi, vocoder.prior.response(flat))
    assert (out - vocoder.prior.level(flat)[0, 0] * xi).abs().max() < 1e-5


def test_frame_level_follows_its_formula_and_both_clips():
    """sigma = clip((E - E_min) / (E_max - E_min), min_level, 1), E = sqrt(sum_b 10 ** c_b),
    on mels whose 80 bands all hold log10(a): E = sqrt(80 a), so sigma is known by hand."""
    prior = vocoder_with("priorgrad").prior
    prior.set_level_statistics(0.5, 2.5)
    energies = torch.tensor([0.4, 0.7, 1.5, 2.5, 4.0])  # below E_min, low, middle, top, above E_max
    mel = torch.log10(energies.pow(2) / 80).view(1, -1, 1).expand(1, -1, 80)
    expected = [0.1, 0.1, 0.5, 1.0, 1.0]  # (0.7 - 0.5) / 2 = 0.1 = min_level; 4.0 clips at 1
    assert prior.level(mel)[0].tolist() == pytest.approx(expected, abs=1e-5)
    prior.cfg.min_level = 0.05
    assert prior.level(mel)[0, 1] == pytest.approx(0.1, abs=1e-5) and prior.level(mel)[0, 0] == pytest.approx(0.05)


def test_specgrad_prior_adds_only_a_unit_power_shape(mels):
    spec, prior = vocoder_with("specgrad"), vocoder_with("priorgrad")
    _, mel = mels[0]
    h_power = spec.prior.response(mel).abs().pow(2)
    sigma = prior.prior.level(mel)
    # Same level factor: the mean power of H over frequency is sigma^2 for every frame.
    assert torch.allclose(h_power.mean(-1), sigma.pow(2), rtol=1e-4)
    # ... and a real shape: SpecGrad's noise is not flat in frequency.
    assert float((h_power / sigma.pow(2).unsqueeze(-1)).amax(-1).median()) > 3.0


@pytest.mark.parametrize("kind", ["specgrad", "priorgrad", "diffwave"])
def test_terminal_snr_meets_documented_criterion(mels, kind):
    """docs/design.md, 'Level': at the start of WG-6 (abar 0.19), per frame and mel band,
    median <= -30 dB and p99 <= 0 dB; at the lowest trained level (abar 1e-3), every
    frame and band <= -10 dB."""
    vocoder = vocoder_with(kind)
    prior = vocoder.prior
    start = float(diffusion.alpha_bars(diffusion.inference_betas("WG-6"))[-1])
    lowest = vocoder.cfg.diffusion.min_alpha_bar
    at_start, at_lowest = [], []
    for wav, mel in mels:
        response = prior.response(mel)
        args = (vocoder.features.mel_basis, prior.n_fft, prior.hop, prior.window)
        at_start.append(shaping.terminal_snr_db(wav, response, start, *args).flatten())
        at_lowest.append(shaping.terminal_snr_db(wav, response, lowest, *args).flatten())
    at_start, at_lowest = torch.cat(at_start), torch.cat(at_lowest)
    assert float(at_start.median()) <= -30.0
    assert float(at_start.quantile(0.99)) <= 0.0
    assert float(at_lowest.max()) <= -10.0


def test_level_statistics_are_the_extremes_over_the_whole_set():
    """E_min and E_max over every frame of every mel (not a mean of per-clip extremes)."""
    from specgrad_plugin.priors import level_statistics

    def mel_of(energies):  # 80 equal bands per frame: E = sqrt(80 * 10^c)
        return torch.log10(torch.tensor(energies) ** 2 / 80)[:, None].expand(-1, 80)

    low, high = level_statistics([mel_of([0.5, 2.0]), mel_of([0.1, 1.0]), mel_of([0.3, 4.0])])
    assert low == pytest.approx(0.1) and high == pytest.approx(4.0)
