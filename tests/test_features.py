"""Features are ESPnet's LogMelFbank; K frames <-> K * 256 samples."""

import pytest
import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.features import LogMelExtractor, crop_to_hop


def test_features_equal_espnet_logmelfbank_frames():
    cfg = FeatureConfig()
    wav = torch.randn(2, 50 * 256) * 0.1
    ours = LogMelExtractor(cfg)(wav)
    espnet, _ = LogMelFbank(fs=22050, n_fft=1024, hop_length=256, n_mels=80, fmin=80, fmax=7600)(wav)
    assert ours.shape == (2, 50, 80)
    assert torch.equal(ours, espnet[:, :50])  # same class, same frames; the trailing one dropped


def test_crop_to_hop_and_frame_count():
    wav = torch.randn(1, 1000)
    cropped = crop_to_hop(wav, 256)
    assert cropped.shape[-1] == 768
    assert LogMelExtractor(FeatureConfig())(cropped).shape[1] == 3


def test_unaligned_or_unbatched_audio_is_rejected_by_name():
    extractor = LogMelExtractor(FeatureConfig())
    with pytest.raises(ValueError, match="multiple of hop"):
        extractor(torch.randn(1, 1000))
    with pytest.raises(ValueError, match=r"shape \(1024,\): expected \(batch, samples\); one clip is wav\[None\]"):
        extractor(torch.randn(1024))
    with pytest.raises(ValueError, match=r"audio of shape \(1, 1, 1024\): expected \(batch, samples\)$"):
        extractor(torch.randn(1, 1, 1024))


def test_mel_basis_is_the_slaney_basis_espnet_uses():
    extractor = LogMelExtractor(FeatureConfig())
    basis = extractor.mel_basis
    assert basis.shape == (80, 513)
    freqs = torch.arange(513) * 22050 / 1024
    support = basis.sum(0) > 0
    assert float(freqs[support].min()) >= 80 and float(freqs[support].max()) <= 7600


@pytest.mark.parametrize("hop, n_fft", [(256, 1024), (300, 1024), (128, 1024), (256, 512), (200, 800)])
def test_whole_clip_min_samples_is_the_shortest_clip_a_mel_takes(hop, n_fft):
    """The shortest whole-hop clip ESPnet's centred STFT pads without failing, at other
    settings too; one hop less is refused with the package's error, not torch's."""
    from specgrad_plugin.checks import SpecGradInputError, whole_clip_min_samples

    extractor = LogMelExtractor(FeatureConfig(hop_length=hop, n_fft=n_fft, win_length=n_fft))
    shortest = whole_clip_min_samples(hop, n_fft)
    assert shortest % hop == 0 and extractor(torch.randn(1, shortest)).shape[1] == shortest // hop
    with pytest.raises(RuntimeError):
        extractor.fbank(torch.randn(1, shortest - hop))
    with pytest.raises(SpecGradInputError, match=f"audio of {shortest - hop} samples: expected at least {shortest}"):
        extractor(torch.randn(1, shortest - hop))
