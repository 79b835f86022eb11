"""The filter of specgrad.md section 2-3, checked against known answers."""

import math

import numpy as np
import pytest
import torch

from specgrad_plugin import shaping
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.loss import DiffusionLoss
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


def test_lifter_keeps_exactly_the_low_quefrencies():
    """The liftered log spectrum of sum_n a_n cos(2 pi n f / n_fft) is the part with n < r,
    written out here as a cosine series (not through the code under test): terms at
    quefrencies r .. n_fft / 2 are removed, all lower ones kept whole. A lifter keeping
    every quefrency (513 points), or one too many or too few, fails."""
    bins = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    order = 24
    low = dict(enumerate(torch.randn(order, generator=gen, dtype=torch.float64).tolist()))
    high = {n: 0.3 for n in (order, order + 1, 60, 200, N_FFT // 2)}

    def series(terms):
        return sum(a * torch.cos(2 * math.pi * n * bins / N_FFT) for n, a in terms.items())

    out = shaping.cepstral_envelope(series({**low, **high}), N_FFT, order)
    assert (out - series(low)).abs().max() < 1e-9
    for wrong in (order - 1, order + 1, N_FFT // 2 + 1):
        assert (shaping.cepstral_envelope(series({**low, **high}), N_FFT, wrong) - series(low)).abs().max() > 0.1


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
    response = torch.exp(shaping.minimum_phase_log(env, N_FFT))
    assert (response.abs().log() - env).abs().max() < 1e-4
    impulse = torch.fft.irfft(response, n=N_FFT)
    negative_times = impulse[N_FFT // 2 + 1 :].pow(2).sum() / impulse.pow(2).sum()
    assert negative_times < 0.01


def test_minimum_phase_is_not_zero_phase():
    response = torch.exp(shaping.minimum_phase_log(known_envelope(), N_FFT))
    assert response.angle().abs().max() > 0.1


def test_fractional_inverse_follows_the_unwrapped_phase(speech_clip):
    """H^-p for p = 1/2 (prior study's half weighting): its phase is -p times the continuous
    (unwrapped) phase of H. With white_mix 0 and a -60 dB floor the minimum phase goes
    beyond +-pi, where the wrapped angle would flip the sign of H^-1/2."""
    cfg = SpecGradConfig.from_dict({"prior": {"white_mix": 0.0, "floor_db": -60.0}})
    vocoder = SpecGradVocoder(cfg)
    mel = vocoder.features(crop_to_hop(torch.from_numpy(speech_clip)[None], HOP))
    log_h = vocoder.prior.log_response(mel)[0].to(torch.complex128)
    unwrapped = torch.from_numpy(np.unwrap(torch.exp(log_h).angle().numpy(), axis=-1))
    assert int((unwrapped.abs() > math.pi).sum()) > 100  # the case the wrapped angle gets wrong
    half = shaping.inverse_response(log_h, 0.5)
    expected = torch.polar(torch.exp(log_h).abs().pow(-0.5), -0.5 * unwrapped)
    assert float(((half - expected).abs() / expected.abs()).max()) < 1e-6
    assert torch.allclose(shaping.inverse_response(log_h, 1.0) * torch.exp(log_h), torch.ones_like(half))


def test_filter_acts_frame_by_frame_where_the_stft_frames_lie():
    """Response row k acts on STFT frame k, centred on sample k * hop (ESPnet's mel frame k)
    and n_fft samples long. With H = 1 on frames < k0 and 0 from k0 on, L x equals x wherever
    only frames < k0 reach (n <= k0 * hop - n_fft / 2) and is 0 wherever only frames >= k0
    reach (n >= (k0 - 1) * hop + n_fft / 2). A response shifted by one frame fails both."""
    frames, k0 = 40, 20
    x = torch.randn(1, frames * HOP, dtype=torch.float64)
    response = torch.zeros(1, frames, N_FFT // 2 + 1, dtype=torch.complex128)
    response[:, :k0] = 1.0
    y = shaping.apply_filter(x, response, N_FFT, HOP, shaping.hann_window(N_FFT, dtype=torch.float64))
    kept, zeroed = k0 * HOP - N_FFT // 2, (k0 - 1) * HOP + N_FFT // 2
    assert (y[0, :kept + 1] - x[0, :kept + 1]).abs().max() < 1e-9
    assert y[0, zeroed:].abs().max() < 1e-9


@pytest.fixture(scope="module")
def speech_response(speech_clip):
    vocoder = SpecGradVocoder(SpecGradConfig())
    wav = crop_to_hop(torch.from_numpy(speech_clip)[None], HOP)
    mel = vocoder.features(wav)
    return vocoder, wav, mel, vocoder.prior.response(mel)


def test_inverse_filter_undoes_filter_on_real_speech_mel(speech_response):
    vocoder, wav, mel, response = speech_response
    xi = torch.randn(4, wav.shape[-1])
    log_response = vocoder.prior.log_response(mel).expand(4, -1, -1)
    back = vocoder.prior.apply_inverse(vocoder.prior.apply(xi, response.expand(4, -1, -1)), log_response)
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


@pytest.mark.parametrize("scale, corner", [("mel", 700.0), ("erb", 228.8)])
def test_loss_weights_follow_the_auditory_scale_density(scale, corner):
    weights = shaping.scale_density_weights(N_FFT, FS, scale)
    assert weights.shape == FREQS.shape
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)
    assert bool((weights[1:] < weights[:-1]).all())
    # d scale / df ~ 1 / (corner + f): DC against Nyquist
    assert float(weights[0] / weights[-1]) == pytest.approx((corner + FS / 2) / corner, rel=1e-3)


@pytest.mark.parametrize("freq", [172.265625, 689.0625, 5512.5])  # on STFT bins 8, 32, 256
def test_band_weighted_inverse_scales_a_tone_by_its_bin_weight(speech_response, freq):
    vocoder, wav, mel, _ = speech_response
    t = torch.arange(wav.shape[-1]) / FS
    tone = torch.sin(2 * math.pi * freq * t)[None]
    log_response = vocoder.prior.log_response(mel)
    weights = shaping.scale_density_weights(N_FFT, FS, "mel")
    flat = vocoder.prior.apply_inverse(tone, log_response)
    weighted = vocoder.prior.apply_inverse(tone, log_response, band_gain=weights.sqrt())
    # the loss (squared residual) of an error that is one tone grows by that bin's weight
    ratio = float(weighted.pow(2).mean() / flat.pow(2).mean())
    assert ratio == pytest.approx(float(weights[int(round(freq * N_FFT / FS))]), rel=0.02)
    # and power 0 with a band gain still weights (it is not the identity)
    plain = vocoder.prior.apply_inverse(tone, log_response, power=0.0, band_gain=weights.sqrt())
    assert float(plain.pow(2).mean() / tone.pow(2).mean()) == pytest.approx(ratio, rel=0.02)


def test_training_loss_uses_the_configured_band_weighting(speech_response):
    _, wav, mel, _ = speech_response
    losses = {}
    for weighting in ("flat", "mel", "erb"):
        cfg = SpecGradConfig()
        cfg.diffusion.loss_band_weighting = weighting
        torch.manual_seed(0)
        vocoder = SpecGradVocoder(cfg)
        # the profile that reaches the loss is the named scale's (the tone test checks its use)
        band_gain = DiffusionLoss(cfg).band_gain
        if weighting == "flat":
            assert band_gain is None
        else:
            assert torch.equal(band_gain, shaping.scale_density_weights(N_FFT, FS, weighting).sqrt())
        segment = wav[:, : 32 * HOP]
        torch.manual_seed(1)
        losses[weighting] = vocoder.training_loss(segment, vocoder.features(segment)[:, :32])[1]
    # same draws (the plain noise MSE is equal), different weighting of the same error
    for weighting in ("mel", "erb"):
        assert losses[weighting]["mse"] == pytest.approx(losses["flat"]["mse"], rel=1e-6)
        assert losses[weighting]["loss"] != pytest.approx(losses["flat"]["loss"], rel=1e-3)
    assert losses["mel"]["loss"] != pytest.approx(losses["erb"]["loss"], rel=1e-3)


def test_bin_phase_advance_makes_a_steady_bin_centred_tone_constant():
    k = 37
    t = torch.arange(40 * HOP, dtype=torch.float64) / FS
    tone = torch.cos(2 * math.pi * (k * FS / N_FFT) * t + 0.3).float()[None]
    spec = shaping.stft(tone, N_FFT, HOP, shaping.hann_window(N_FFT))[0, k, 4:-4]  # frames away from the ends
    advance = shaping.bin_phase_advance(N_FFT // 2 + 1, 41, N_FFT, HOP)[k, 4:-4]
    assert float(spec.angle().diff().abs().max()) > 1.0  # turns by k * 90 degrees a frame
    demodulated = spec * advance.conj()
    assert float((demodulated - demodulated[0]).abs().max()) < 1e-3 * float(demodulated.abs().max())


def test_floors_and_white_mix_follow_their_formulas():
    """linear_amplitude floors an amplitude at the frame peak times 10^(floor_db / 20) (floor_db
    is a power ratio); normalised_power floors the power at the peak times 10^(floor_db / 10),
    normalises to mean 1, then mixes white in: h^2 = (1 - w) p + w."""
    identity = torch.eye(4)
    logmel = torch.log10(torch.tensor([[[1.0, 1e-4, 0.5, 1e-1]]]))
    amp = shaping.linear_amplitude(logmel, identity, 0, 3, floor_db=-40.0)
    torch.testing.assert_close(amp, torch.tensor([[[1.0, 1e-2, 0.5, 1e-1]]]))
    # bins outside the bands' [lo, hi] take the edge bins' values before the floor
    held = shaping.linear_amplitude(logmel, identity, 1, 2, floor_db=-40.0)
    torch.testing.assert_close(held, torch.tensor([[[5e-3, 5e-3, 0.5, 0.5]]]))
    log_env = torch.log(torch.tensor([1.0, 1e-3, 1.0, 1.0]))  # power 1e-6, under the floor's 1e-4
    floored = torch.tensor([1.0, 1e-4, 1.0, 1.0])
    expected = 0.75 * floored / floored.mean() + 0.25
    torch.testing.assert_close(shaping.normalised_power(log_env, -40.0, 0.25), expected)


@pytest.mark.parametrize("abar", [0.5, 0.9])
def test_terminal_snr_of_white_noise_through_a_flat_response_is_abar_over_its_complement(abar):
    """x0 = white N(0, 1) noise and H = 1: E |G x0|^2 = sum(w^2) in every bin, which is what
    the noise term holds, so the mean of 10^(SNR / 10) over frames and bands is abar / (1 - abar)."""
    torch.manual_seed(0)
    frames = 400
    x0 = torch.randn(1, frames * HOP)
    response = torch.ones(1, frames, N_FFT // 2 + 1, dtype=torch.complex64)
    basis = SpecGradVocoder(SpecGradConfig()).features.mel_basis
    snr = shaping.terminal_snr_db(x0, response, abar, basis, N_FFT, HOP, shaping.hann_window(N_FFT))
    ratio = torch.pow(10.0, snr[:, 2:-2] / 10.0).mean()  # the edge frames see the STFT's padding
    assert float(ratio) == pytest.approx(abar / (1 - abar), rel=0.03)
