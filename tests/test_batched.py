"""Batched vocoding of utterances of different lengths equals vocoding each alone."""

import numpy as np
import soundfile as sf
import torch

from specgrad_plugin.batched import batchable, vocode_batch
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.testing import make_data_dir
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import SMALL_FAMILIES, small_config

LENGTHS_S = (0.35, 0.9, 0.6)  # different lengths, the longest not first


def frame_vocoder(**inference) -> SpecGradVocoder:
    cfg = small_config("frame", denoiser={**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0,
                                          "frame_low_band_channels": 8}, inference=inference)
    torch.manual_seed(2)
    vocoder = SpecGradVocoder(cfg).eval()
    for p in vocoder.denoiser.parameters():  # no zero-initialised layer: the network matters
        torch.nn.init.normal_(p, std=0.05)
    return vocoder


def mels_of(vocoder, clips):
    mels = []
    for clip, seconds in zip(clips, LENGTHS_S, strict=False):
        wav = torch.from_numpy(clip[: int(seconds * vocoder.fs)])
        with torch.no_grad():
            mels.append(vocoder.features(crop_to_hop(wav, vocoder.hop_length)[None])[0])
    return mels


def assert_close(a, b, rtol=1e-4):
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= rtol * float(b.abs().max())


def test_batch_equals_one_by_one(speech_clips):
    vocoder = frame_vocoder()
    assert batchable(vocoder)
    mels = mels_of(vocoder, speech_clips)
    batched = vocode_batch(vocoder, mels, schedule="WG-6", seed=7)
    for mel, wav in zip(mels, batched, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-6", seed=7))
    # What the mask and the per-item noise are for: plain padding changes the shorter items.
    frames = max(m.shape[0] for m in mels)
    padded = torch.stack([torch.nn.functional.pad(m, (0, 0, 0, frames - m.shape[0]), value=float(m.min()))
                          for m in mels])
    plain = vocoder(padded, schedule="WG-6", seed=7)
    short = mels[0].shape[0] * vocoder.hop_length
    alone = vocoder(mels[0], schedule="WG-6", seed=7)
    assert float((plain[0, :short] - alone).abs().max()) > 1e-2 * float(alone.abs().max())


def test_batch_with_the_mel_gain_equals_one_by_one(speech_clips):
    """The gain after the sampler sees each item's own frames (its last frame's mel included)."""
    vocoder = frame_vocoder(mel_gain_iterations=2)
    mels = mels_of(vocoder, speech_clips)
    for mel, wav in zip(mels, vocode_batch(vocoder, mels, schedule="WG-3", seed=7), strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=7))


def test_batch_matches_each_items_level_alone(speech_clips):
    """One item 20 dB quieter than the training mels: its level is matched on its own frames.
    The training statistics are that item's own before the drop, so it reads 20 dB quiet on
    any clips (the generated ones, without LJSpeech, differ in level from one another)."""
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    vocoder.set_mel_statistics(mels[0].mean(0), mels[0].std(0))
    mels[0] = mels[0] - 1.0
    assert float(vocoder.match_level(mels[0][None])[1][0]) < 0.5  # matched: a gain below 1
    batched = vocode_batch(vocoder, mels, schedule="WG-3", seed=7)
    for mel, wav in zip(mels, batched, strict=True):
        assert_close(wav, vocoder(mel, schedule="WG-3", seed=7))


def test_families_without_a_masked_sampler_loop(speech_clips):
    vocoder = SpecGradVocoder(small_config("wavenet")).eval()
    assert not batchable(vocoder)
    mels = mels_of(vocoder, speech_clips)[:2]
    for mel, wav in zip(mels, vocode_batch(vocoder, mels, schedule="WG-3", seed=1), strict=True):
        assert torch.equal(wav, vocoder(mel, schedule="WG-3", seed=1))


def test_decode_batch_size_writes_the_same_wavs(tmp_path, speech_clips):
    from specgrad_plugin.bin import decode

    vocoder = frame_vocoder()
    vocoder.save(tmp_path / "c.pt")
    clips = [(f"u{i}", speech_clips[i][: int(s * vocoder.fs)]) for i, s in enumerate(LENGTHS_S)]
    scp = make_data_dir(tmp_path / "d", clips, vocoder.fs)
    outputs = {}
    for batch in (1, 3):
        out = tmp_path / f"b{batch}"
        assert decode.main(["--model_file", str(tmp_path / "c.pt"), "--schedule", "WG-3", "--batch_size", str(batch),
                            "--output_dir", str(out), "--data_path_and_name_and_type", f"{scp},speech,sound"]) == 0
        outputs[batch] = {uid: sf.read(out / "wav" / f"{uid}.wav", dtype="int16")[0] for uid, _ in clips}
    for uid, wav in outputs[1].items():
        assert len(wav) == len(clips[int(uid[1:])][1]) // 256 * 256
        assert np.abs(outputs[3][uid].astype(int) - wav).max() <= 1  # 16-bit rounding at most
        assert np.abs(wav).max() > 100  # not silence


def test_unseeded_batch_draws_from_the_global_rng(speech_clips):
    vocoder = frame_vocoder()
    mels = mels_of(vocoder, speech_clips)
    first, second = (vocode_batch(vocoder, mels, schedule="WG-3", seed=None) for _ in range(2))
    assert [w.shape[0] for w in first] == [m.shape[0] * 256 for m in mels]
    assert not torch.equal(first[1], second[1])
