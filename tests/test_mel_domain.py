"""mel_domain: an input mel's departures from the training mels, and the vocoder's one-time warnings."""

import warnings

import pytest
import torch

from specgrad_plugin import mel_domain
from specgrad_plugin.vocoder import SpecGradVocoder

from .test_pitch import voiced

CENTRES = [100.0 * (b + 1) for b in range(80)]  # band b centred at (b + 1) * 100 Hz


def test_level_and_band_limit_are_read_against_the_training_shape():
    train = torch.linspace(-1.0, -4.0, 80)  # a falling spectrum
    assert mel_domain.describe(train.clone(), train, CENTRES) == {}
    quiet = train - 1.0  # 20 dB down, same shape: a level, not a band limit
    notes = mel_domain.describe(quiet, train, CENTRES, level_db=-20.0)
    assert set(notes) == {"level"} and "20 dB below" in notes["level"]
    cut = train.clone()
    cut[40:] -= 2.5  # bands 40.. empty: band-limited at band 40's centre, 4.1 kHz
    notes = mel_domain.describe(cut, train, CENTRES)
    assert set(notes) == {"band_limit"} and "4.1 kHz" in notes["band_limit"]
    dip = train.clone()
    dip[40:60] -= 2.5  # a hole, not a limit: the top band is there
    assert mel_domain.band_limit(dip, train) is None


def test_pitch_outside_the_training_voice_is_named():
    train = torch.zeros(80)
    assert mel_domain.describe(train, train, CENTRES, 220.0, [150.0, 336.0]) == {}
    notes = mel_domain.describe(train, train, CENTRES, 110.0, [150.0, 336.0])
    assert set(notes) == {"pitch"} and "110 Hz" in notes["pitch"] and "150-336 Hz" in notes["pitch"]
    assert mel_domain.describe(train, train, CENTRES, 110.0, []) == {}  # range unknown: no claim
    f0, voicing = torch.full((20,), 200.0), torch.zeros(20)
    assert mel_domain.median_voiced_f0(f0, voicing) is None  # nothing voiced
    voicing[:12] = 1.0
    assert mel_domain.median_voiced_f0(f0, voicing) == 200.0


def test_shipped_vocoder_warns_once_per_kind_on_a_low_voice():
    """A voice an octave below LJSpeech's: one pitch warning, however many utterances."""
    vocoder = SpecGradVocoder.from_pretrained("ljspeech")
    low = vocoder.features(voiced(lambda t: torch.full_like(t, 100.0), seconds=1.5)[None])
    mid = vocoder.features(voiced(lambda t: torch.full_like(t, 220.0), seconds=1.5)[None])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vocoder.warn_on_mel_range(mid)
        assert not [w for w in caught if "pitch" in str(w.message)]
        vocoder.warn_on_mel_range(low)
        vocoder.warn_on_mel_range(low)
    pitch_warnings = [str(w.message) for w in caught if "pitch" in str(w.message)]
    assert len(pitch_warnings) == 1 and "median F0 10" in pitch_warnings[0]


def test_level_is_read_on_loud_frames_and_low_bands():
    torch.manual_seed(0)
    mean, std = torch.linspace(-1.0, -4.0, 80), torch.full((80,), 0.5)
    speech = mean + std * torch.randn(4000, 80)  # frames like the training mels
    assert abs(float(mel_domain.level_offset(speech[None], mean, std)[0])) < 0.02
    quiet = mel_domain.level_offset((speech - 1.0)[None], mean, std)[0]  # 20 dB down
    assert abs(float(quiet) + 1.0) < 0.02
    paused = speech.clone()
    paused[::2] = -6.0  # half the frames silent: the level drops 4.4 dB (q80 read as q90), not 20+
    assert -0.3 < float(mel_domain.level_offset(paused[None], mean, std)[0]) < -0.15
    cut = speech.clone()
    cut[:, 50:] -= 3.0  # a band limit above the low bands: no level change
    assert abs(float(mel_domain.level_offset(cut[None], mean, std)[0])) < 0.02


def test_level_offset_takes_the_lower_median_of_an_even_count_of_bands():
    """10 bands, the lowest 4 read (LEVEL_BANDS 0.4): offsets 0.1, 0.2, 0.3, 0.4 give 0.2, the
    lower middle one (as torch.median), in a mel constant over frames (its quantile is itself)."""
    mean, std = torch.zeros(10), torch.zeros(10)
    mel = torch.tensor([0.4, 0.1, 0.3, 0.2, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]).expand(1, 20, 10)
    assert float(mel_domain.level_offset(mel, mean, std)[0]) == pytest.approx(0.2)


def test_level_match_shift_moves_only_what_is_beyond_the_tolerance():
    offsets = torch.tensor([-1.0, -0.3, 0.0, 0.15, 0.5])  # -20, -6, 0, +3, +10 dB
    shift = mel_domain.level_match_shift(offsets, tolerance_db=6.0)
    # -20 dB comes up 14 dB to the -6 dB edge; within +-6 dB nothing moves; +10 dB goes down 4 dB
    assert torch.allclose(shift, torch.tensor([0.7, 0.0, 0.0, 0.0, -0.2]), atol=1e-6)


def test_vocoder_samples_a_quiet_mel_at_the_tolerance_edge_and_scales_it_back():
    from .test_batched import frame_vocoder

    vocoder = frame_vocoder()
    torch.manual_seed(0)
    mel = -2.0 + 0.3 * torch.randn(12, vocoder.cfg.features.n_mels)
    std = torch.full((mel.shape[1],), 0.3)  # statistics that read this mel's level as exactly 0
    vocoder.set_mel_statistics(mel.quantile(mel_domain.LEVEL_QUANTILE, dim=0) - mel_domain.LEVEL_Z * std, std)
    edge = vocoder(mel - 0.3, schedule="WG-3", seed=3)  # -6 dB: as given
    quiet = vocoder(mel - 1.0, schedule="WG-3", seed=3)  # -20 dB: vocoded at -6 dB, scaled by 10^-0.7
    assert torch.allclose(quiet, edge * 10 ** -0.7, rtol=1e-4, atol=1e-7)
    vocoder.cfg.inference.level_match_db = 0.0  # off: the quiet mel is vocoded as given
    assert not torch.allclose(vocoder(mel - 1.0, schedule="WG-3", seed=3), quiet, rtol=1e-2, atol=1e-5)


def test_quantile_over_frames_is_torch_quantile_at_any_length():
    # the sort-based quantile the ONNX graph holds: linear between the nearest ranks, as torch's
    torch.manual_seed(0)
    for frames in (1, 2, 11, 40):
        mel = torch.randn(3, frames, 8)
        for q in (0.0, 0.35, mel_domain.LEVEL_QUANTILE, 1.0):
            assert torch.allclose(mel_domain.quantile_over_frames(mel, q), mel.quantile(q, dim=1), atol=1e-6)
