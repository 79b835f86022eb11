"""The bucketed, graph-captured sampler: every item equals its one-by-one vocoding, on the
bucket path (replayed eagerly here: no CUDA) and on the eager fallback."""

import logging

import torch

from specgrad_plugin import graphed as graphed_module
from specgrad_plugin.graphed import GraphedVocoder
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import small_config
from tests.test_batched import assert_close, frame_vocoder, mels_of


def test_bucket_path_equals_one_by_one(speech_clips):
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(32, 128), batch_buckets=(1, 4), replay_eagerly=True)
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
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(32,), batch_buckets=(1,), replay_eagerly=True)
    wavs = graphed(mels, seed=3)  # 3 items, 77 frames: no bucket holds them
    assert graphed.captured == {}
    for mel, wav in zip(mels, wavs, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=3))


def test_families_without_a_masked_sampler_run_eagerly(speech_clips):
    vocoder = SpecGradVocoder(small_config("wavenet")).eval()
    mels = mels_of(vocoder, speech_clips)[:2]
    graphed = GraphedVocoder(vocoder, "WG-3", frame_buckets=(128,), batch_buckets=(2,), replay_eagerly=True)
    wavs = graphed(mels, seed=1)
    assert graphed.sampler is None and graphed.captured == {}
    for mel, wav in zip(mels, wavs, strict=True):
        assert torch.equal(wav, vocoder(mel, schedule="WG-3", seed=1))


def test_a_cpu_device_and_a_failed_capture_run_eagerly(speech_clips, monkeypatch, caplog):
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    on_cpu = GraphedVocoder(vocoder, "WG-3", frame_buckets=(128,), batch_buckets=(4,))
    assert on_cpu.sampler is None  # no bucket padding where no graph would be captured
    for mel, wav in zip(mels, on_cpu(mels, seed=2), strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=2))
    assert on_cpu.captured == {}

    def failing_capture(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphed_module, "CapturedCall", failing_capture)
    failing = GraphedVocoder(vocoder, "WG-3", frame_buckets=(128,), batch_buckets=(4,), replay_eagerly=True)
    with caplog.at_level(logging.WARNING, logger="specgrad_plugin.graphed"):
        for _ in range(2):  # the failure is remembered: one warning per bucket
            wavs = failing(mels, seed=2)
    assert failing.captured == {(4, 128): None}
    assert sum("capture" in r.message for r in caplog.records) == 1
    for mel, wav in zip(mels, wavs, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=2))
