"""The harmonic prior: SpecGrad's filter times a comb at the harmonics of the mel's F0."""

import math

import pytest
import torch

from specgrad_plugin import batched, pitch, presets, shaping
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.export import ExportError, RealSampler
from specgrad_plugin.realops import RealPrior
from specgrad_plugin.vocoder import SpecGradVocoder

FS, N_FFT = 22050, 1024
BIN_HZ = FS / N_FFT


def test_comb_follows_its_formula_by_hand():
    """F0 on bin 10: harmonics on bins 10, 20, ... (c = 1); bin 15 is 5 bins from the nearest,
    where a Hann lobe is 0 (c^2 = g); voicing scales the log; the band above cutoff + taper is
    untouched and the taper halves the log at its middle."""
    depth, cutoff = 12.0, 1000.0
    f0 = torch.full((1, 3), 10 * BIN_HZ, dtype=torch.float64)
    voicing = torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64)
    log_c = pitch.harmonic_comb_log_amp(f0, voicing, N_FFT, FS, cutoff, depth)
    assert log_c.shape == (1, 3, N_FFT // 2 + 1)
    g_log = 0.5 * math.log(10 ** (-depth / 10))
    assert log_c[0, 0, [10, 20, 30, 40]].abs().max() < 1e-9
    assert torch.allclose(log_c[0, 0, [5, 15, 25, 35, 45]], torch.tensor(g_log, dtype=torch.float64))
    # one bin off a harmonic: the Hann lobe there is 1/2, so c^2 = g + (1 - g) / 4
    assert math.isclose(float(log_c[0, 0, 11]), 0.5 * math.log(10 ** (-depth / 10) * 0.75 + 0.25), rel_tol=1e-9)
    assert torch.allclose(log_c[0, 1], 0.5 * log_c[0, 0])
    assert log_c[0, 2].abs().max() == 0
    top = cutoff + pitch.COMB_TAPER_HZ
    assert log_c[0, 0, int(top / BIN_HZ) + 1:].abs().max() == 0
    # bin 55 (1184 Hz) lies 5 bins from harmonic 50 and 60: weight (1200 - 1184) / 200 of the floor
    assert math.isclose(float(log_c[0, 0, 55]), (top - 55 * BIN_HZ) / pitch.COMB_TAPER_HZ * g_log, rel_tol=1e-9)


@pytest.mark.parametrize("f0_hz", [55.3, 97.7, 301.9])
def test_comb_is_the_max_over_every_harmonic_for_low_and_off_bin_pitches(f0_hz):
    """Against a brute-force max over all harmonics up to fs / 2: a low F0 packs the lobes
    together (a sum would pass 1), and its harmonics reach the top of the taper band."""
    depth, cutoff, top = 12.0, 1000.0, 1000.0 + pitch.COMB_TAPER_HZ
    log_c = pitch.harmonic_comb_log_amp(torch.full((1, 1), f0_hz, dtype=torch.float64),
                                        torch.ones(1, 1, dtype=torch.float64), N_FFT, FS, cutoff, depth)[0, 0]
    freqs = torch.arange(N_FFT // 2 + 1, dtype=torch.float64) * BIN_HZ
    harmonics = torch.arange(1, int(FS / 2 / f0_hz) + 1, dtype=torch.float64) * f0_hz
    lobe = pitch.hann_magnitude((freqs[None] - harmonics[:, None]) / BIN_HZ).pow(2).amax(0)
    g = 10 ** (-depth / 10)
    expected = (top - freqs).div(pitch.COMB_TAPER_HZ).clamp(0, 1) * 0.5 * torch.log(g + (1 - g) * lobe)
    assert log_c.max() <= 1e-12
    assert (log_c - expected).abs().max() < 1e-3


def comb_config(depth: float = 12.0) -> SpecGradConfig:
    cfg = SpecGradConfig()
    cfg.prior.harmonic_depth_db = depth
    return cfg


def voiced_wav(seconds: float = 1.0, f0_hz: float = 10 * BIN_HZ) -> torch.Tensor:
    """A steady voice-like signal (harmonics falling 6 dB per octave), (1, N), hop-aligned."""
    n = int(seconds * FS) // 256 * 256
    t = torch.arange(n, dtype=torch.float64) / FS
    wav = sum(torch.sin(2 * math.pi * h * f0_hz * t) / h for h in range(1, 40))
    return (0.3 * wav / wav.abs().max()).float()[None]


def voiced_mel(f0_hz: float = 10 * BIN_HZ, seconds: float = 1.0):
    return SpecGradVocoder(SpecGradConfig()).features(voiced_wav(seconds, f0_hz))


def test_prior_adds_the_comb_to_the_log_amplitude_only_where_voiced():
    """log |H| with the comb = log |H| without it + the comb of pitch.mel_f0's track, to float
    precision (the minimum-phase fold keeps the real part); silence gets no comb."""
    mel = voiced_mel()
    plain = SpecGradVocoder(SpecGradConfig()).prior
    comb = SpecGradVocoder(comb_config()).prior
    diff = comb.log_response(mel).real - plain.log_response(mel).real
    f0, voicing = pitch.mel_f0(mel, comb.f0_candidates, comb.f0_templates, comb.f0_bands_used)
    assert voicing[0, 5:-5].min() > 0.9 and (f0[0, 5:-5] / (10 * BIN_HZ)).log2().abs().max() < 0.05
    expected = pitch.harmonic_comb_log_amp(f0, voicing, N_FFT, FS, 1000.0, 12.0)
    assert (diff - expected).abs().max() < 1e-4
    assert diff[0, 10:-10, 15].max() < -1.0  # between harmonics 1 and 2: 12 dB down
    silent = torch.full_like(mel, -5.0)
    assert torch.allclose(comb.log_response(silent), plain.log_response(silent))
    # the phase is the minimum phase of the combed amplitude, not the paper's filter's
    plain_log_h = plain.log_shape(mel).real
    folded = shaping.minimum_phase_log(plain_log_h + expected.float(), N_FFT).imag
    assert (comb.log_shape(mel).imag - folded).abs().max() < 1e-3
    assert (comb.log_shape(mel).imag - plain.log_shape(mel).imag).abs().max() > 0.1


def test_training_loss_runs_through_the_comb():
    """The paper's loss, L^-1-weighted by the combed prior, on a voiced crop: finite, with
    gradients; and for a predictor with a fixed error (eps_hat = 0.1) it weighs that error
    by the comb, so it is not the loss the paper's prior gives for the same draws."""
    fixed = []
    for depth in (0.0, 12.0):
        cfg = SpecGradConfig.from_yaml(presets.resolve("tiny"))
        cfg.prior.harmonic_depth_db = depth
        torch.manual_seed(0)
        vocoder = SpecGradVocoder(cfg)
        wav = voiced_wav(0.5)
        mel = vocoder.features(wav)
        loss, _ = vocoder.training_loss(wav, mel)
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad is not None for p in vocoder.denoiser.parameters())
        vocoder.denoiser.forward = lambda x, cond, level: torch.full_like(x, 0.1)
        torch.manual_seed(1)
        fixed.append(float(vocoder.training_loss(wav, mel)[0].detach()))
    assert fixed[1] > 1.05 * fixed[0]  # its DC sits under the comb's floor below F0, weighed up


def test_config_and_graph_refuse_what_the_comb_does_not_support():
    cfg = comb_config()
    cfg.prior.kind = "priorgrad"
    with pytest.raises(ConfigError, match="harmonic_depth_db=12.0 with prior.kind='priorgrad'"):
        cfg.validate()
    for depth in (-1.0, 31.0):
        with pytest.raises(ConfigError, match=f"harmonic_depth_db={depth}, expected 0 .off. to 30.0 dB"):
            comb_config(depth).validate()
    high = comb_config()
    high.prior.harmonic_cutoff_hz = 12000.0
    with pytest.raises(ConfigError, match="harmonic_cutoff_hz=12000.0, expected 0 < cutoff < 11025 Hz"):
        high.validate()
    frame = SpecGradConfig.from_yaml(presets.resolve("frame"))
    frame.prior.harmonic_depth_db = 12.0
    vocoder = SpecGradVocoder(frame)
    with pytest.raises(ExportError, match="harmonic_depth_db=12.0: the harmonic prior's F0 search"):
        RealSampler(vocoder)
    assert not batched.batchable(vocoder)  # vocode_batch runs it one by one
    with pytest.raises(ValueError, match="harmonic prior has no real-arithmetic form"):
        RealPrior(vocoder.prior)


def test_comb_buffers_are_not_saved_with_the_model():
    """A model with the comb has the same weights as one without: loading stays strict both ways."""
    assert SpecGradVocoder(comb_config()).state_dict().keys() == SpecGradVocoder(SpecGradConfig()).state_dict().keys()
