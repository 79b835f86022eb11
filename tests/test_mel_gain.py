"""The gain per mel band after the sampler (mel_gain): its formula, and the vocoder's use of it."""

import pytest
import torch

from specgrad_plugin import mel_gain, shaping
from specgrad_plugin.config import ConfigError, FeatureConfig
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import small_config

FEAT = FeatureConfig()


@pytest.fixture(scope="module")
def basis():
    return LogMelExtractor(FEAT).mel_basis.float()


def test_band_shares_sum_to_one_under_the_bands_and_zero_outside(basis):
    shares = mel_gain.band_shares(basis)
    total = shares.sum(0)
    covered = basis.sum(0) > 0
    assert torch.allclose(total[covered], torch.ones(int(covered.sum())), atol=1e-6)
    assert (total[~covered] == 0).all() and (~covered).any()  # below fmin and above fmax


def test_band_gain_is_the_band_ratio_weighted_by_each_bins_shares(basis):
    torch.manual_seed(0)
    mag = torch.rand(1, basis.shape[1], 5) + 0.1
    measured = torch.log10(torch.einsum("mf,bft->bmt", basis, mag))
    offset = torch.linspace(-0.5, 0.5, basis.shape[0])  # log10 units: -10..+10 dB over the bands
    gain = mel_gain.band_gain(mag, (measured + offset[None, :, None]).transpose(1, 2), basis, max_db=40.0)
    expected = torch.pow(10.0, mel_gain.band_shares(basis).T @ offset)
    assert torch.allclose(gain[0], expected[:, None].expand(-1, 5), rtol=1e-4)
    covered = basis.sum(0) > 0
    assert torch.equal(gain[0, ~covered], torch.ones_like(gain[0, ~covered]))
    # one band 30 dB short is raised by max_db only, one 30 dB over lowered by max_db only
    peak, share = int(basis[40].argmax()), float(mel_gain.band_shares(basis)[40, int(basis[40].argmax())])
    for sign in (1.0, -1.0):
        big = torch.zeros(basis.shape[0])
        big[40] = 1.5 * sign
        capped = mel_gain.band_gain(mag, (measured + big[None, :, None]).transpose(1, 2), basis, max_db=20.0)
        assert capped[0, peak, 0] == pytest.approx(10 ** (sign * share), rel=1e-4)


def test_band_gain_reads_a_quiet_band_as_it_is_down_to_the_log_mels_floor(basis):
    """Bands at 1e-7 and 1e-9 of amplitude, asked for just that: gain 1, since the measured
    log mel is floored where ESPnet floors the input's (1e-10), not higher; a silent band asked
    for the floor gets gain 1 too."""
    for level in (1e-7, 1e-9):
        mag = torch.full((1, basis.shape[1], 3), level) / basis.sum(0).clamp_min(1e-12)[None, :, None]
        target = torch.log10(torch.einsum("mf,bft->bmt", basis, mag)).transpose(1, 2)
        gain = mel_gain.band_gain(mag, target, basis, max_db=20.0)
        assert torch.allclose(gain, torch.ones_like(gain), atol=1e-4), level
    silent = torch.zeros(1, basis.shape[1], 3)
    gain = mel_gain.band_gain(silent, torch.full((1, 3, basis.shape[0]), -10.0), basis, max_db=20.0)
    assert torch.allclose(gain, torch.ones_like(gain))


def mel_of(wav, basis):
    spec = shaping.stft(wav, FEAT.n_fft, FEAT.hop_length, shaping.hann_window(FEAT.n_fft))
    return torch.log10(torch.einsum("mf,bft->bmt", basis, spec.abs()).clamp_min(1e-10)).transpose(1, 2)[:, :-1]


def test_match_mel_leaves_a_matching_signal_and_pulls_a_coloured_one_to_its_mel(basis):
    torch.manual_seed(1)
    wav = 0.1 * torch.randn(1, 40 * FEAT.hop_length)
    window = shaping.hann_window(FEAT.n_fft)
    own = mel_of(wav, basis)  # measured as the gain measures it (zero-padded ends, not the features')
    same = mel_gain.match_mel(wav, own, basis, FEAT.n_fft, FEAT.hop_length, window, 2, 20.0)
    # the last STFT frame has no mel frame of its own (it takes the last one's): its change
    # reaches n_fft / 2 back in the first step and n_fft further in the second
    assert torch.allclose(same[:, : -2 * FEAT.n_fft], wav[:, : -2 * FEAT.n_fft], atol=1e-5)
    # ask for 6 dB more in the upper half of the bands: two steps get most of the way there
    target = own.clone()
    target[..., 40:] += 0.3
    before = (own - target)[:, 2:-2].abs().mean()
    after = [(mel_of(mel_gain.match_mel(wav, target, basis, FEAT.n_fft, FEAT.hop_length, window, steps, 20.0),
                     basis) - target)[:, 2:-2].abs().mean() for steps in (1, 2)]
    assert after[1] < after[0] < before and after[1] < 0.2 * before  # each step gets nearer
    assert torch.equal(mel_gain.match_mel(wav, target, basis, FEAT.n_fft, FEAT.hop_length, window, 0, 20.0), wav)


def test_vocoder_applies_it_after_the_sampler_when_configured():
    torch.manual_seed(0)
    off = SpecGradVocoder(small_config("frame")).eval()
    on = SpecGradVocoder(small_config("frame", inference={"mel_gain_iterations": 2})).eval()
    on.load_state_dict(off.state_dict())
    wav = 0.1 * torch.randn(1, 24 * FEAT.hop_length)
    mel = off.features(wav)[0]
    plain, matched = off(mel, seed=3), on(mel, seed=3)
    assert not torch.allclose(plain, matched)
    basis = off.features.mel_basis
    error = [(mel_of(x[None], basis)[0] - mel)[2:-2].abs().mean() for x in (plain, matched)]
    assert error[1] < 0.5 * error[0]
    on.cfg.inference.mel_gain_iterations = 0
    assert torch.equal(on(mel, seed=3), plain)


def test_a_level_matched_mel_is_brought_to_its_own_level():
    """A mel far below the training level is sampled nearer it and scaled back: the gain works
    at the level it was sampled at, so the output's mel meets the input mel, not 14 dB off."""
    torch.manual_seed(0)
    vocoder = SpecGradVocoder(small_config("frame", inference={"mel_gain_iterations": 2})).eval()
    wav = 0.1 * torch.randn(1, 24 * FEAT.hop_length)
    loud = vocoder.features(wav)[0]
    vocoder.set_mel_statistics(loud.mean(0), loud.std(0))
    quiet = loud - 1.0  # 20 dB down: sampled 6 dB down, 14 dB scaled back
    basis = vocoder.features.mel_basis
    error = {name: (mel_of(vocoder(mel, seed=3)[None], basis)[0] - mel)[2:-2].abs().mean()
             for name, mel in (("loud", loud), ("quiet", quiet))}
    assert abs(error["quiet"] - error["loud"]) < 0.1, error


def test_one_sample_with_each_gain_setting_is_the_vocoder_at_that_setting():
    """sample() then apply_gain() is forward(), for any gain setting made after sampling, on a
    quiet (level-matched) mel: the sweep samples once and applies each setting. (That the split
    left forward() as it was: docs/voicing_floor/floor_eval_v5.json's model rows, made before
    and after it, are equal.)"""
    torch.manual_seed(0)
    vocoder = SpecGradVocoder(small_config("frame")).eval()
    wav = 0.1 * torch.randn(1, 24 * FEAT.hop_length)
    loud = vocoder.features(wav)[0]
    vocoder.set_mel_statistics(loud.mean(0), loud.std(0))
    quiet = loud - 1.0
    sampled = vocoder.sample(quiet, schedule="WG-6", seed=3)
    assert sampled[0].shape == (1, 24 * FEAT.hop_length) and sampled[2].item() < 0.9  # the level's gain is left out
    outputs = []
    for steps, max_db in ((0, 20.0), (2, 20.0), (4, 6.0)):
        vocoder.cfg.inference.mel_gain_iterations, vocoder.cfg.inference.mel_gain_max_db = steps, max_db
        outputs.append(vocoder.apply_gain(*sampled)[0])
        torch.testing.assert_close(outputs[-1], vocoder(quiet, schedule="WG-6", seed=3), rtol=0, atol=0)
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3 and (outputs[1] - outputs[2]).abs().max() > 1e-4

@pytest.mark.parametrize("key, value, message", [
    ("mel_gain_iterations", -1, r"inference.mel_gain_iterations=-1, expected a whole number >= 0"),
    ("mel_gain_iterations", 1.5, r"'mel_gain_iterations' = 1.5 has type float, expected int"),
    ("mel_gain_iterations", True, r"'mel_gain_iterations' = True has type bool, expected int"),
    ("mel_gain_max_db", 0.0, r"inference.mel_gain_max_db=0.0, expected > 0 dB")])
def test_bad_settings_are_refused_by_name(key, value, message):
    with pytest.raises(ConfigError, match=message):
        SpecGradVocoder(small_config("frame", inference={key: value}))


def test_a_window_the_gain_does_not_measure_with_is_refused():
    with pytest.raises(ConfigError, match=r"features.win_length=800 != n_fft=1024"):
        SpecGradVocoder(small_config("frame", features={"win_length": 800}, inference={"mel_gain_iterations": 2}))
    SpecGradVocoder(small_config("frame", features={"win_length": 800}))  # the gain off: accepted
