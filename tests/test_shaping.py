"""The filter of specgrad.md section 2-3, checked against known answers."""

import math

import pytest
import torch

from specgrad_plugin import shaping
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.vocoder import SpecGradVocoder

N_FFT, HOP, FS = 1024, 256, 22050
FREQS = torch.arange(N_FFT // 2 + 1) * FS / N_FFT
IN_BAND = (FREQS >= 80) & (FREQS <= 7600)
TO_DB = 20.0 / math.log(10.0)


def known_envelope() -> torch.Tensor:
    """A smooth log envelope (natural log amplitude, 30 dB range): two formants and a tilt,
    made exactly smooth by keeping quefrencies below 12."""
    env_db = 30 * torch.exp(-(((FREQS - 700) / 400) ** 2)) + 20 * torch.exp(-(((FREQS - 2500) / 600) ** 2))
    env_db = env_db - 20 * FREQS / (FS / 2)
    return shaping.cepstral_envelope(env_db / TO_DB, N_FFT, 12)


def dynamic_range_db(log_amp: torch.Tensor) -> float:
    return float((log_amp[IN_BAND].max() - log_amp[IN_BAND].min()) * TO_DB)


def test_istft_inverts_stft():
    # Hann at 75 % overlap satisfies NOLA: G+ G = I up to float32 rounding.
    x = torch.randn(3, 4 * HOP * 10)
    w = shaping.hann_window(N_FFT)
    y = shaping.istft(shaping.stft(x, N_FFT, HOP, w), N_FFT, HOP, w, x.shape[-1])
    assert (y - x).abs().max() < 1e-5


def test_lifter_returns_known_smooth_envelope():
    env = known_envelope()
    out = shaping.cepstral_envelope(env, N_FFT, 24)
    assert ((out - env) * TO_DB)[IN_BAND].abs().max() <= 0.5


def test_lifter_keeps_full_dynamic_range_of_harmonic_spectrum():
    env = known_envelope()
    f0 = 200.0
    comb = sum(torch.exp(-0.5 * ((FREQS - k * f0) / 40) ** 2) for k in range(1, 57))
    out = shaping.cepstral_envelope(env + torch.log(comb + 1e-2), N_FFT, 24)
    ratio = dynamic_range_db(out) / dynamic_range_db(env)
    assert 0.9 <= ratio <= 1.1, f"dynamic range ratio {ratio:.2f}; a complex ifft on the one-sided bins halves it"
    # Away from the empty region below f0, the liftered harmonic spectrum follows the
    # envelope up to a constant offset (the comb's mean log level).
    above_f0 = IN_BAND & (FREQS >= f0)
    dev = (out - env)[above_f0] * TO_DB
    assert (dev - dev.mean()).pow(2).mean().sqrt() < 2.0


def test_minimum_phase_has_target_magnitude_and_is_causal():
    env = known_envelope()
    response = shaping.minimum_phase(env, N_FFT)
    assert (response.abs().log() - env).abs().max() < 1e-4
    impulse = torch.fft.irfft(response, n=N_FFT)
    negative_times = impulse[N_FFT // 2 + 1 :].pow(2).sum() / impulse.pow(2).sum()
    assert negative_times < 0.01


def test_minimum_phase_is_not_zero_phase():
    response = shaping.minimum_phase(known_envelope(), N_FFT)
    assert response.angle().abs().max() > 0.1


@pytest.fixture(scope="module")
def speech_response(speech_clip):
    vocoder = SpecGradVocoder(SpecGradConfig())
    wav = crop_to_hop(torch.from_numpy(speech_clip)[None], HOP)
    mel = vocoder.features(wav)
    return vocoder, wav, mel, vocoder.prior.response(mel)


def test_inverse_filter_undoes_filter_on_real_speech_mel(speech_response):
    vocoder, wav, mel, response = speech_response
    xi = torch.randn(4, wav.shape[-1])
    back = vocoder.prior.apply_inverse(vocoder.prior.apply(xi, response.expand(4, -1, -1)), response.expand(4, -1, -1))
    rel = float((back - xi).norm() / xi.norm())
    # Measured 0.08 on LJ001-0001 (and on the generated clip): the STFT is redundant, so
    # L^-1 is approximate; the bound leaves room for other clips.
    assert rel < 0.15, rel


def test_inverse_filter_is_bounded(speech_response):
    vocoder, _, mel, _ = speech_response
    # The floor and the white mix bound 1/|h| (the loss weight): at most 1/sqrt(white_mix).
    assert float((1.0 / vocoder.prior.shape(mel).abs()).max()) <= 1.0 / math.sqrt(0.2) + 1e-4


def test_long_term_spectrum_of_shaped_noise_follows_response(speech_response):
    vocoder, wav, _, response = speech_response
    torch.manual_seed(1)
    draws = 24
    noise = vocoder.prior.noise(response.expand(draws, -1, -1))
    window = vocoder.prior.window
    frames = response.shape[1]
    measured = shaping.stft(noise, N_FFT, HOP, window)[..., :frames].abs().pow(2).mean(dim=(0, 2))
    expected = response[0].abs().pow(2).mean(dim=0) * window.pow(2).sum()
    err_db = 10 * torch.log10(measured / expected)[IN_BAND]
    assert err_db.abs().max() < 1.0, float(err_db.abs().max())
