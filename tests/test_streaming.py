"""Streaming synthesis equals offline vocoding with the same noise, with the stated look-ahead."""

import pytest
import torch

from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.export import RealSampler, draw_white_noise
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.streaming import BlockNoise, StreamingVocoder, stream_utterance
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import SMALL_FAMILIES, small_config

CHUNKS = [1, 5, 13, 2, 40, 7, 300]  # irregular, some shorter than the look-ahead


def frame_vocoder(inference=None, **denoiser) -> SpecGradVocoder:
    cfg = small_config("frame", denoiser={**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0,
                                          "frame_low_band_channels": 8, **denoiser}, inference=inference or {})
    torch.manual_seed(3)
    vocoder = SpecGradVocoder(cfg).eval()
    for p in vocoder.denoiser.parameters():  # no zero-initialised layer: the network matters
        torch.nn.init.normal_(p, std=0.05)
    return vocoder


def speech_mel(vocoder, clip, seconds=1.2):
    wav = torch.from_numpy(clip[: int(seconds * vocoder.fs)])
    with torch.no_grad():
        return vocoder.features(crop_to_hop(wav, vocoder.hop_length)[None])[0]


def push_irregularly(stream, mel):
    pieces, start = [], 0
    for size in CHUNKS:
        pieces.append(stream.push(mel[start : start + size]))
        start += size
        if start >= mel.shape[0]:
            break
    return pieces + [stream.finish()]


def assert_close(a, b, rtol=1e-4):
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= rtol * float(b.abs().max())


@pytest.mark.parametrize("denoiser,reach", [({}, 3), ({"frame_phase_demodulation": True}, 3),
                                            ({"frame_low_band_layers": 6}, 7)])
def test_stream_with_the_offline_noise_equals_the_vocoder(denoiser, reach, speech_clip):
    """Each sampler step's margin is the farther-reaching trunk's reach (its input convolution
    and every block: 1 frame each with kernel 3) plus an STFT pair (3 frames): with a low-band
    trunk of 6 blocks against the main one's 2, the low band's. The equality alone would not
    see a margin a frame short: the far edge of a random trunk's reach is too faint."""
    vocoder = frame_vocoder(**denoiser)
    mel = speech_mel(vocoder, speech_clip)
    noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, 3, seed=6)
    stream = StreamingVocoder(vocoder, "WG-3", noise=noise)
    assert stream.lookahead_frames == 3 + 3 * (reach + 3)
    assert_close(torch.cat(push_irregularly(stream, mel)), vocoder(mel, schedule="WG-3", seed=6))


def test_stream_with_the_mel_gain_equals_the_vocoder_one_stft_pair_later(speech_clip):
    vocoder = frame_vocoder({"mel_gain_iterations": 2})
    mel = speech_mel(vocoder, speech_clip)
    noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, 3, seed=6)
    stream = StreamingVocoder(vocoder, "WG-3", noise=noise)
    assert stream.lookahead_frames == 3 + 3 * (3 + 3) + 2 * 3  # each gain step: one STFT pair's reach
    assert_close(torch.cat(push_irregularly(stream, mel)), vocoder(mel, schedule="WG-3", seed=6))


@pytest.mark.filterwarnings("ignore:input mel")  # a mel 20 dB off the statistics: the warning is meant
def quiet_vocoder_and_mel(speech_clip):
    """A small vocoder whose statistics read the clip's mel at level 0, and that mel 20 dB down."""
    from specgrad_plugin import mel_domain

    vocoder = frame_vocoder({"mel_gain_iterations": 1})
    mel = speech_mel(vocoder, speech_clip)
    std = torch.full((mel.shape[-1],), 0.3)
    vocoder.set_mel_statistics(mel.quantile(mel_domain.LEVEL_QUANTILE, dim=0) - mel_domain.LEVEL_Z * std, std)
    return vocoder, mel - 1.0  # 20 dB down: sampled 6 dB down, the output scaled back


@pytest.mark.filterwarnings("ignore:input mel")  # a mel 20 dB off the statistics: the warning is meant
@pytest.mark.parametrize("window", [1024, 40, 20, 8])  # the default, shorter than the clip, than the look-ahead
def test_stream_matches_the_loudness_causally_block_by_block(window, speech_clip, monkeypatch):
    from specgrad_plugin import streaming
    from specgrad_plugin.streaming import LOUDNESS_BLOCK

    monkeypatch.setattr(streaming, "LOUDNESS_WINDOW", window)
    vocoder, quiet = quiet_vocoder_and_mel(speech_clip)
    due = StreamingVocoder(vocoder, "WG-3").lookahead_frames + 1
    assert quiet.shape[0] > due + 2 * LOUDNESS_BLOCK
    # utterances no longer than the frames the first output waits for: read whole, as offline
    for frames in (due, due - 5):
        short = quiet[:frames]
        noise = draw_white_noise(1, frames * vocoder.hop_length, 3, seed=6)
        stream = StreamingVocoder(vocoder, "WG-3", noise=noise)
        assert_close(torch.cat(push_irregularly(stream, short)), vocoder(short, schedule="WG-3", seed=6))
        assert float(vocoder.level_shift(short[None]).abs()) > 0.3  # it was moved
    # a longer one: the blocks starting within the first `due` frames read those, each later
    # block the `window` frames before it, whatever the push sizes
    noise = draw_white_noise(1, quiet.shape[0] * vocoder.hop_length, 3, seed=6)
    stream = StreamingVocoder(vocoder, "WG-3", noise=noise)
    pieces = push_irregularly(stream, quiet)
    spans = [(0, due) if b * LOUDNESS_BLOCK < due else (max(0, b * LOUDNESS_BLOCK - window), b * LOUDNESS_BLOCK)
             for b in range((quiet.shape[0] - 1) // LOUDNESS_BLOCK + 1)]
    reads = torch.cat([vocoder.level_shift(quiet[None, a:b]) for a, b in spans])
    shift = reads[torch.arange(quiet.shape[0]) // LOUDNESS_BLOCK]
    assert len(set(shift.tolist())) > 1  # the readings differ along this clip: blocks are told apart
    with torch.no_grad():
        moved = RealSampler(vocoder, "WG-3", clamp=False)(quiet[None] + shift[None, :, None], noise[:, :1])[0]
    gain = torch.pow(10.0, -shift).repeat_interleave(vocoder.hop_length)
    assert_close(torch.cat(pieces), (moved * gain).clamp(-1.0, 1.0))
    other = StreamingVocoder(vocoder, "WG-3", noise=noise)
    assert_close(torch.cat(stream_utterance(other, quiet, 64)), torch.cat(pieces), rtol=1e-6)
    # what later blocks cannot read is let go
    assert stream.mel.shape[0] <= max(window, due) + LOUDNESS_BLOCK + stream.lookahead_frames
    assert len(stream.block_shifts) <= (max(window, due) + stream.lookahead_frames) // LOUDNESS_BLOCK + 2


@pytest.mark.filterwarnings("ignore:input mel")
def test_speech_after_a_long_quiet_stretch_is_not_clipped_by_its_gain(speech_clip, monkeypatch):
    from specgrad_plugin import streaming
    from specgrad_plugin.streaming import LOUDNESS_BLOCK

    window = 24
    monkeypatch.setattr(streaming, "LOUDNESS_WINDOW", window)
    vocoder, quiet = quiet_vocoder_and_mel(speech_clip)
    due = StreamingVocoder(vocoder, "WG-3").lookahead_frames + 1
    onset = due + LOUDNESS_BLOCK
    mel = torch.cat([quiet[:onset] - 2.0, quiet + 1.0])  # 60 dB down for a while, then speech at the training level
    wav = torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-3", seed=1), mel, 16))
    size = LOUDNESS_BLOCK * vocoder.hop_length
    after = wav[onset * vocoder.hop_length :]
    blocks = after[: after.shape[0] // size * size].reshape(-1, size)
    # the first blocks of speech get the quiet stretch's large shift: the gain comes before the
    # one clamp, so they are not pinned at the gain (clamped, then scaled down)
    peaks = blocks.abs().max(dim=1, keepdim=True).values
    assert float((blocks.abs() >= 0.999 * peaks).float().mean(dim=1).max()) < 0.01
    assert float(vocoder.level_shift(mel[None, :due])) > 1.0  # the first speech block's shift is large


def test_stream_emits_each_block_once_the_lookahead_has_arrived(speech_clip):
    vocoder = frame_vocoder()
    mel = speech_mel(vocoder, speech_clip)
    stream = StreamingVocoder(vocoder, "WG-6", seed=2)
    # 2 layers of 3 taps and the input convolution reach 3 frames; + 3 for the STFT pair, per step
    assert stream.lookahead_frames == 3 + 6 * (3 + 3)
    assert stream.lookahead_ms == pytest.approx(1000 * stream.lookahead_frames * 256 / 22050)
    emitted, pushed, pieces = 0, 0, []
    for size in CHUNKS:
        piece = stream.push(mel[pushed : pushed + size])
        pushed = min(mel.shape[0], pushed + size)
        emitted += piece.numel() // vocoder.hop_length
        assert emitted == max(0, pushed - stream.lookahead_frames)
        pieces.append(piece)
    pieces.append(stream.finish())
    assert emitted + pieces[-1].numel() // vocoder.hop_length == mel.shape[0]
    offline = RealSampler(vocoder, "WG-6")(mel[None], BlockNoise(2, vocoder.hop_length).full(6, mel.shape[0]))[0]
    assert_close(torch.cat(pieces), offline.detach())
    chunked_otherwise = torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-6", seed=2), mel, 25))
    assert_close(chunked_otherwise, offline.detach())


def test_block_noise_is_the_same_whatever_the_stretch():
    noise = BlockNoise(seed=4, hop=8)
    whole = noise(1, 0, 10)
    assert torch.equal(torch.cat([noise(1, 0, 3), noise(1, 3, 10)]), whole)
    assert not torch.equal(noise(2, 0, 10), whole) and not torch.equal(BlockNoise(5, 8)(1, 0, 10), whole)
    assert abs(float(noise(0, 0, 2000).std()) - 1.0) < 0.05


def test_stream_errors_name_the_problem(speech_clip):
    vocoder = frame_vocoder()
    mel = speech_mel(vocoder, speech_clip, 0.3)
    stream = StreamingVocoder(vocoder, "WG-3", noise=torch.zeros(3, 10 * vocoder.hop_length))
    with pytest.raises(ValueError, match="noise: 2560 samples per draw, but the stream reached"):
        stream.push(mel)
        stream.finish()
    done = StreamingVocoder(vocoder, "WG-3")
    done.push(mel)
    done.finish()
    with pytest.raises(RuntimeError, match="push\\(\\) after finish\\(\\)"):
        done.push(mel)
    fresh = StreamingVocoder(vocoder, "WG-3")
    with pytest.raises(SpecGradInputError, match="streamed mel: expected a torch.Tensor, got ndarray"):
        fresh.push(mel.numpy())
    with pytest.raises(SpecGradInputError, match=r"streamed mel: shape \(2, \d+, 80\), 2 mels in one item"):
        fresh.push(torch.stack([mel, mel]))  # a batch would lose all but its first utterance
    with pytest.raises(SpecGradInputError, match=r"streamed mel: 0 mel bands in shape \(3, 0\), expected 80"):
        fresh.push(torch.empty(3, 0))  # empty, but not an empty push of frames
    assert fresh.frames == 0
    fresh.push(torch.empty(0, 80))
    fresh.push(mel[None])  # a batch of one is one utterance
    assert fresh.frames == mel.shape[0]
    for chunk in (0, -1, 1.5):
        with pytest.raises(SpecGradInputError, match="chunk_frames: .*at least 1"):
            stream_utterance(StreamingVocoder(vocoder, "WG-3"), mel, chunk)
    # noise for another schedule's steps is refused, not reshaped into other draws
    with pytest.raises(SpecGradInputError, match=r"noise: shape \(6, 1, \d+\), expected \(3, 1, frames \* hop\)"):
        StreamingVocoder(vocoder, "WG-3", noise=draw_white_noise(1, mel.shape[0] * vocoder.hop_length, 6, 0))
    with pytest.raises(SpecGradInputError, match="noise: expected finite"):
        StreamingVocoder(vocoder, "WG-3", noise=torch.full((3, 1, 2560), float("nan")))
    with pytest.raises(SpecGradInputError, match="noise: a str, expected"):
        StreamingVocoder(vocoder, "WG-3", noise="zeros")


def test_stream_noise_as_numpy_and_a_seed_of_none(speech_clip):
    """A numpy array of draws is the same noise as the tensor; seed None keys the stream from
    torch's global RNG, so a manual_seed before it reproduces the stream."""
    vocoder = frame_vocoder()
    mel = speech_mel(vocoder, speech_clip, 0.3)
    noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, 3, 5)
    as_tensor = torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-3", noise=noise), mel, 7))
    as_numpy = torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-3", noise=noise.numpy()), mel, 7))
    assert torch.equal(as_tensor, as_numpy)
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append(torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-3", seed=None), mel, 7)))
    other = torch.cat(stream_utterance(StreamingVocoder(vocoder, "WG-3", seed=None), mel, 7))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], other)


def test_decode_streaming_writes_the_offline_wavs(tmp_path, speech_clips, capsys):
    import numpy as np
    import soundfile as sf

    from specgrad_plugin.bin import decode
    from specgrad_plugin.testing import make_data_dir

    vocoder = frame_vocoder()
    vocoder.save(tmp_path / "c.pt")
    scp = make_data_dir(tmp_path / "d", [(f"u{i}", clip[: int(s * vocoder.fs)]) for i, (clip, s)
                                         in enumerate(zip(speech_clips[:2], (0.5, 0.8), strict=True))], vocoder.fs)
    common = ["--model_file", str(tmp_path / "c.pt"), "--schedule", "WG-3",
              "--data_path_and_name_and_type", f"{scp},speech,sound"]
    assert decode.main(common + ["--output_dir", str(tmp_path / "offline")]) == 0
    assert decode.main(common + ["--output_dir", str(tmp_path / "stream"), "--streaming",
                                 "--stream_chunk_frames", "9"]) == 0
    assert "streaming: look-ahead 21 frames (244 ms); chunks of 9 frames" in capsys.readouterr().out
    for uid in ("u0", "u1"):
        offline = sf.read(tmp_path / "offline" / "wav" / f"{uid}.wav", dtype="int16")[0].astype(int)
        streamed = sf.read(tmp_path / "stream" / "wav" / f"{uid}.wav", dtype="int16")[0].astype(int)
        assert len(streamed) == len(offline) and np.abs(streamed - offline).max() <= 1
        assert np.abs(offline).max() > 100
    assert decode.main(common + ["--output_dir", str(tmp_path / "x"), "--streaming", "--batch_size", "2"]) == 2
    assert "expected 1" in capsys.readouterr().err


def test_stream_bench_tells_a_clip_read_alike_from_one_read_apart(speech_clip):
    """bench/stream_vs_offline.py: without level matching a clip streams equal to offline;
    with it, the clip with its second half 30 dB down reads another level in its later blocks
    than whole, and the bench reports the difference."""
    from pathlib import Path

    from .conftest import load_script, small_config

    bench = load_script(Path(__file__).resolve().parents[1] / "bench" / "stream_vs_offline.py")
    vocoder = SpecGradVocoder(small_config("frame")).eval()
    wav = torch.from_numpy(speech_clip[: 300 * 256].copy())
    alike = bench.compare(vocoder, wav, "WG-3", 0, 40)  # no mel statistics: no level matching
    assert alike["equal"] and "snr_db" not in alike
    mel = vocoder.features(wav[None])[0]
    vocoder.set_mel_statistics(mel.mean(0), mel.std(0))
    wav[150 * 256 :] *= 10 ** (-30 / 20)
    apart = bench.compare(vocoder, wav, "WG-3", 0, 40)
    assert not apart["equal"] and apart["snr_db"] < 60 and {"pesq_offline", "pesq_stream"} <= set(apart)
