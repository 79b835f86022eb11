"""The harmonic prior: SpecGrad's filter times a comb at the harmonics of the mel's F0."""

import math

import pytest
import torch

from specgrad_plugin import batched, pitch, presets
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.export import ExportError, RealSampler
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


def comb_config(depth: float = 12.0) -> SpecGradConfig:
    cfg = SpecGradConfig()
    cfg.prior.harmonic_depth_db = depth
    return cfg


def voiced_mel(f0_hz: float = 10 * BIN_HZ, seconds: float = 1.0):
    """A steady voice-like signal (harmonics falling 6 dB per octave) and its mel."""
    vocoder = SpecGradVocoder(SpecGradConfig())
    n = int(seconds * FS) // 256 * 256
    t = torch.arange(n, dtype=torch.float64) / FS
    wav = sum(torch.sin(2 * math.pi * h * f0_hz * t) / h for h in range(1, 40))
    wav = (0.3 * wav / wav.abs().max()).float()[None]
    return vocoder.features(wav)


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


def test_noise_drawn_from_the_prior_dips_between_the_harmonics():
    """The noise the sampler starts from, per bin, against the same draw without the comb:
    about -3 dB at the harmonics (the analysis window widens each lobe again), -12 dB midway
    between them, 0 dB above the band."""
    mel = voiced_mel(seconds=2.0)
    powers = []
    for cfg in (SpecGradConfig(), comb_config()):
        prior = SpecGradVocoder(cfg).prior
        gen = torch.Generator().manual_seed(0)
        noise = prior.noise(prior.response(mel), gen)
        spec = torch.stft(noise, N_FFT, 256, window=torch.hann_window(N_FFT), return_complex=True)
        powers.append(spec.abs().pow(2)[0, :, 8:-8].mean(-1))
    ratio_db = 10 * torch.log10(powers[1] / powers[0])
    assert ratio_db[[10, 20, 30]].min() > -4.0
    assert ratio_db[[15, 25, 35]].max() < -11.0
    assert ratio_db[80:].abs().max() < 0.5


def test_config_and_graph_refuse_what_the_comb_does_not_support():
    cfg = comb_config()
    cfg.prior.kind = "priorgrad"
    with pytest.raises(ConfigError, match="harmonic_depth_db=12.0 with prior.kind='priorgrad'"):
        cfg.validate()
    with pytest.raises(ConfigError, match="harmonic_depth_db=-1"):
        comb_config(-1.0).validate()
    frame = SpecGradConfig.from_yaml(presets.resolve("frame"))
    frame.prior.harmonic_depth_db = 12.0
    vocoder = SpecGradVocoder(frame)
    with pytest.raises(ExportError, match="harmonic_depth_db=12.0: the harmonic prior's F0 search"):
        RealSampler(vocoder)
    assert not batched.batchable(vocoder)  # vocode_batch runs it one by one


def test_comb_buffers_are_not_saved_with_the_model():
    """A model with the comb has the same weights as one without: loading stays strict both ways."""
    assert SpecGradVocoder(comb_config()).state_dict().keys() == SpecGradVocoder(SpecGradConfig()).state_dict().keys()
