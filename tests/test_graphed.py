"""The bucketed, graph-captured sampler: every item equals its one-by-one vocoding, on the
bucket path (replayed eagerly here: no CUDA) and on the eager fallback."""

import torch

from specgrad_plugin.graphed import GraphedVocoder
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import small_config
from tests.test_batched import assert_close, frame_vocoder, mels_of


def test_bucket_path_equals_one_by_one(speech_clips):
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(32, 128), batch_buckets=(1, 4))
    assert graphed.replay_eagerly  # CPU: the bucket path without a CUDA graph
    wavs = graphed(mels, seed=3)
    assert list(graphed.captured) == [(4, 128)]  # 3 items padded to 4, up to 77 frames to 128
    for mel, wav in zip(mels, wavs, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=3))
    # A second batch in the same bucket replays the same capture with its own inputs.
    again = graphed(mels[::-1][:2], seed=5)
    assert list(graphed.captured) == [(4, 128)]
    for mel, wav in zip(mels[::-1][:2], again, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=5))


def test_fallback_outside_the_buckets(speech_clips):
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(32,), batch_buckets=(1,))
    wavs = graphed(mels, seed=3)  # 3 items, 77 frames: no bucket holds them
    assert graphed.captured == {}
    for mel, wav in zip(mels, wavs, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=3))


def test_families_without_a_masked_sampler_run_eagerly(speech_clips):
    vocoder = SpecGradVocoder(small_config("wavenet")).eval()
    mels = mels_of(vocoder, speech_clips)[:2]
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(128,), batch_buckets=(2,))
    wavs = graphed(mels, seed=1)
    assert graphed.sampler is None and graphed.captured == {}
    for mel, wav in zip(mels, wavs, strict=True):
        assert torch.equal(wav, vocoder(mel, schedule="WG-3", seed=1))
