"""Bad input to the core gives one readable error naming the value and the expectation."""

import numpy as np
import pytest
import soundfile as sf
import torch

from specgrad_plugin.checks import SpecGradInputError, check_audio
from specgrad_plugin.data import read_wav
from specgrad_plugin.vocoder import SpecGradVocoder


@pytest.fixture(scope="module")
def vocoder(tiny_cfg):
    return SpecGradVocoder(tiny_cfg).eval()


@pytest.mark.parametrize(
    "mel, message",
    [
        (torch.full((10, 80), float("nan")), "non-finite"),
        (torch.tensor([[0.0] * 80] * 3 + [[float("inf")] * 80]), "first at frame 3"),
        (torch.zeros(10, 64), "64 mel bands .* expected 80"),
        (torch.zeros(80, 10), "transpose"),
        (torch.zeros(0, 80), "empty mel"),
        (torch.zeros(2, 3, 4, 80), "expected \\(frames, 80\\)"),
        (torch.zeros(10, 80, dtype=torch.long), "floating-point"),
        (np.zeros((10, 80), dtype=np.float32), "expected a torch.Tensor, got ndarray"),
        (torch.zeros(0, 10, 80), "a batch of 0 mels"),
        (torch.zeros(10, 79), "79 mel bands in shape \\(10, 79\\)"),  # the shape as given, no batch added
        (torch.zeros(10, 80, device="meta"), "meta device"),
    ],
)
def test_bad_mel(vocoder, mel, message):
    with pytest.raises(SpecGradInputError, match=message):
        vocoder(mel)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "3", True])
def test_bad_seed_is_named_on_every_path(vocoder, tiny_cfg, seed):
    """A seed outside what torch's generators, numpy's default_rng and Philox keys all take
    is one error naming it, on the vocoder, a batch, a stream and the noise helper alike."""
    from specgrad_plugin.batched import vocode_batch
    from specgrad_plugin.export import draw_white_noise
    from specgrad_plugin.streaming import StreamingVocoder
    from tests.conftest import small_config

    mel = torch.full((6, 80), -3.0)
    frame = SpecGradVocoder(small_config("frame")).eval()
    calls = [lambda: vocoder(mel, seed=seed), lambda: vocode_batch(frame, [mel, mel[:4]], seed=seed),
             lambda: StreamingVocoder(frame, "WG-3", seed=seed), lambda: draw_white_noise(1, 256, 3, seed)]
    for call in calls:
        with pytest.raises(SpecGradInputError, match="seed: .*expected an integer from 0 to 2\\*\\*63 - 1"):
            call()
    assert vocoder(mel, seed=2**63 - 1).shape == (6 * 256,) and vocoder(mel, seed=np.int64(3)).shape == (6 * 256,)


def test_a_batch_item_of_several_mels_is_refused_not_cut_to_its_first(tiny_cfg):
    """vocode_batch takes one utterance per item: a (2, K, M) item used to give one wav for
    two utterances, so the list of wavs no longer matched the list of names."""
    from specgrad_plugin.batched import vocode_batch
    from tests.conftest import small_config

    frame = SpecGradVocoder(small_config("frame")).eval()
    mel = torch.full((6, 80), -3.0)
    with pytest.raises(SpecGradInputError, match="mel 1: shape \\(2, 5, 80\\), 2 mels in one item"):
        vocode_batch(frame, [mel, mel[None, :5].repeat(2, 1, 1)])
    assert len(vocode_batch(frame, [mel, mel[None, :5]], seed=0)) == 2  # a batch of one is one utterance


def test_bad_schedule_and_chunk_types_are_named(vocoder):
    mel = torch.full((6, 80), -3.0)
    for schedule in (6, ["a"]):
        with pytest.raises(ValueError, match="schedule .*expected one of .*or a list of betas"):
            vocoder(mel, schedule=schedule)
    for chunk in (1.5, "8", True):
        with pytest.raises(SpecGradInputError, match="chunk_frames: .*expected an integer"):
            vocoder(mel, chunk_frames=chunk)
    whole = vocoder(mel, seed=0, chunk_frames=0)
    for chunk in (np.int64(4), torch.tensor(4)):  # integers of other libraries are integers
        assert torch.allclose(vocoder(mel, seed=0, chunk_frames=chunk), whole, atol=1e-5)


def test_schedule_default_only_when_none_is_given(vocoder):
    """Only None means the config's schedule: an empty one is an error, not WG-6 in disguise,
    and betas as a tensor are the same betas as a list."""
    mel = torch.full((6, 80), -3.0)
    for empty in ([], ""):
        with pytest.raises(ValueError, match="expected a non-empty list of betas"):
            vocoder(mel, schedule=empty)
    betas = [0.01, 0.2, 0.5]
    assert torch.equal(vocoder(mel, schedule=torch.tensor(betas), seed=1), vocoder(mel, schedule=betas, seed=1))


def test_every_inference_path_takes_only_none_as_the_default(tiny_cfg):
    """The batched and exported samplers read the schedule as the vocoder does."""
    from specgrad_plugin.batched import vocode_batch
    from specgrad_plugin.export import RealSampler
    from tests.conftest import small_config

    frame = SpecGradVocoder(small_config("frame")).eval()
    mels = [torch.full((6, 80), -3.0), torch.full((4, 80), -3.0)]
    for empty in ([], ""):
        with pytest.raises(ValueError, match="expected a non-empty list of betas"):
            vocode_batch(frame, mels, schedule=empty)
        with pytest.raises(ValueError, match="expected a non-empty list of betas"):
            RealSampler(frame, empty)


def test_bad_audio():
    with pytest.raises(SpecGradInputError, match="100 samples, expected at least one hop \\(256"):
        check_audio(torch.zeros(100), 256, fs=22050, expected_fs=22050)
    with pytest.raises(SpecGradInputError, match="clip.wav: sample rate 16000 Hz, expected 22050 Hz"):
        check_audio(torch.zeros(22050), 256, "clip.wav", fs=16000, expected_fs=22050)
    with pytest.raises(SpecGradInputError, match="NaN"):
        check_audio(torch.full((1000,), float("nan")), 256)
    with pytest.raises(SpecGradInputError, match="utterance u1: 2 channels, expected mono"):
        check_audio(np.zeros((1000, 2)), 256, "utterance u1")
    with pytest.raises(SpecGradInputError, match="dtype int16, expected float audio"):
        check_audio(np.zeros(1000, dtype=np.int16), 256)
    assert check_audio(np.zeros((1000, 1)), 256).shape == (1000,)


def test_bad_wav_files(tmp_path):
    sf.write(tmp_path / "rate.wav", np.zeros(4000), 16000)
    sf.write(tmp_path / "short.wav", np.zeros(100), 22050)
    sf.write(tmp_path / "stereo.wav", np.zeros((4000, 2)), 22050)
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "folder.wav").mkdir()
    cases = {"rate": "16000 Hz, expected 22050", "short": "100 samples", "stereo": "2 channels, expected mono",
             "text": "not a readable audio file", "missing": ": file not found",
             "folder": ": a directory, expected an audio file"}
    for name, message in cases.items():
        with pytest.raises(SpecGradInputError, match=message) as err:
            read_wav(tmp_path / f"{name}.wav", 22050, 256)
        assert f"{name}.wav" in str(err.value)


def test_scp_with_an_id_twice_names_both_lines(tmp_path):
    """A repeated id would silently drop one of the two utterances."""
    from specgrad_plugin.data import read_scp

    scp = tmp_path / "wav.scp"
    scp.write_text("a first.wav\nb other.wav\n\na second.wav\n")
    with pytest.raises(SpecGradInputError, match=r"wav.scp:4: utterance id 'a' already given on line 1"):
        read_scp(scp)
    scp.write_text("a first.wav\nb other.wav\n")
    assert read_scp(scp) == {"a": "first.wav", "b": "other.wav"}
