"""Training crops: where they start, and that their mel is the mel of the audio they hold."""

import argparse

import numpy as np
import pytest
import torch

from specgrad_plugin import data as data_module
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import ConfigError, FeatureConfig, SpecGradConfig
from specgrad_plugin.data import (
    SegmentDataset,
    crop_start,
    crop_with_context,
    mel_context_frames,
    speed_perturb,
    world_pitch_shift,
)
from specgrad_plugin.espnet import task as task_module
from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.espnet_conf import espnet_train_section
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.training import trainable_parameters
from specgrad_plugin.vocoder import SpecGradVocoder

HOP, FRAMES = 256, 16


def locate(crop: torch.Tensor, clip: torch.Tensor) -> int:
    """The sample offset of crop inside clip (crops are exact slices)."""
    windows = clip.unfold(0, crop.shape[0], 1)
    hits = torch.nonzero((windows == crop).all(dim=1)).flatten()
    assert hits.numel() == 1
    return int(hits[0])


def test_context_crop_mel_equals_the_whole_clip_mel_at_every_grid_start(speech_clip):
    """At the clip's edges as well: the reflect padding is the one a centred STFT uses."""
    extractor = LogMelExtractor(FeatureConfig())
    clip = torch.as_tensor(speech_clip[: 40 * HOP])
    whole = extractor(clip[None])[0]
    ctx = mel_context_frames(1024, HOP)
    assert ctx == 2
    for frame in (0, 1, 11, 40 - FRAMES):
        piece = crop_with_context(clip, frame * HOP, FRAMES, HOP, ctx)
        assert piece.shape == ((FRAMES + 2 * ctx) * HOP,)
        mel = extractor(piece[None])[0, ctx : ctx + FRAMES]
        torch.testing.assert_close(mel, whole[frame : frame + FRAMES], atol=1e-4, rtol=0)


def test_crop_start_grid_any_sample_and_centre():
    torch.manual_seed(0)
    samples = 40 * HOP + 100
    grid = {crop_start(samples, FRAMES, HOP, any_sample=False) for _ in range(300)}
    anywhere = {crop_start(samples, FRAMES, HOP, any_sample=True) for _ in range(300)}
    assert all(s % HOP == 0 for s in grid) and len(grid) > 20 and max(grid) <= samples - FRAMES * HOP
    assert sum(s % HOP != 0 for s in anywhere) > 250
    assert min(anywhere) >= 0 and max(anywhere) <= samples - FRAMES * HOP
    assert max(anywhere) > samples - FRAMES * HOP - 60  # the tail past the last grid start is reachable
    assert crop_start(samples, FRAMES, HOP, any_sample=True, training=False) == 12 * HOP


def test_any_sample_crops_hold_audio_off_the_grid_and_its_own_mel(speech_clip):
    extractor = LogMelExtractor(FeatureConfig())
    clip = torch.as_tensor(speech_clip[: 2 * 22050])
    torch.manual_seed(1)
    for any_sample in (False, True):
        data = SegmentDataset([clip.numpy()], extractor, FRAMES, any_sample=any_sample)
        offsets = []
        for _ in range(12):
            wav, mel = data[0]
            start = locate(wav, clip)
            offsets.append(start % HOP)
            # the mel of this crop is the mel a clip starting at this sample would have
            shifted = clip[start - 2 * HOP : start + (FRAMES + 2) * HOP] if start >= 2 * HOP else None
            if shifted is not None and shifted.shape[0] == (FRAMES + 4) * HOP:
                expected = extractor(shifted[None])[0, 2 : 2 + FRAMES]
                torch.testing.assert_close(mel, expected, atol=1e-4, rtol=0)
        assert (max(offsets) > 0) == any_sample


def test_any_sample_crops_do_not_follow_the_model_to_another_device(speech_clip):
    """gpu_check builds the dataset from vocoder.features, then moves the vocoder to the GPU
    (here: to float64, which a CPU machine can check: the crops stay float32 CPU tensors)."""
    extractor = LogMelExtractor(FeatureConfig())
    data = SegmentDataset([speech_clip[: 22050]], extractor, FRAMES, any_sample=True)
    extractor.double()
    wav, mel = data[0]
    assert wav.dtype == mel.dtype == torch.float32 and mel.device.type == "cpu" and mel.shape == (FRAMES, 80)


def test_espnet_model_any_sample_crops_from_preset_to_crops_and_back(tmp_path, tiny_cfg, speech_clip):
    """The switch travels --preset -> model_conf -> the model's crops -> the exported train section."""
    assert task_module._model_conf(argparse.Namespace(preset=None, model_conf={}))["any_sample_crops"] is False
    preset = SpecGradConfig.from_dict({**tiny_cfg.to_dict(), "train": {"any_sample_crops": True}})
    preset.to_yaml(tmp_path / "preset.yaml")
    conf = task_module._model_conf(argparse.Namespace(preset=tmp_path / "preset.yaml", model_conf={}))
    assert conf["any_sample_crops"] is True
    model = ESPnetSpecGradModel(**{k: v for k, v in conf.items() if v is not None}).train()
    model.segment_frames = FRAMES
    clip = torch.as_tensor(speech_clip[: 2 * 22050])
    torch.manual_seed(2)
    wav, mel = model.segments(clip.expand(6, -1), torch.full((6,), clip.shape[0]))
    starts = [locate(w, clip) for w in wav]
    assert any(s % HOP for s in starts)
    for m, s in zip(mel, starts, strict=True):
        if s >= 2 * HOP and s + (FRAMES + 2) * HOP <= clip.shape[0]:
            expected = model.vocoder.features(clip[None, s - 2 * HOP : s + (FRAMES + 2) * HOP])[0, 2 : 2 + FRAMES]
            torch.testing.assert_close(m, expected, atol=1e-4, rtol=0)
    run = {"model_conf": {"segment_frames": FRAMES, "any_sample_crops": True}, "batch_size": 4}
    assert espnet_train_section(run)["any_sample_crops"] is True


def test_speed_perturbation_moves_pitch_and_length_by_the_factor():
    fs = 22050
    t = torch.arange(fs) / fs
    tone = torch.sin(2 * torch.pi * 200.0 * t)
    for factor in (0.9, 1.1):
        faster = speed_perturb(tone, factor).numpy()
        assert abs(len(faster) - fs / factor) <= 1
        spectrum = np.abs(np.fft.rfft(faster * np.hanning(len(faster))))
        peak_hz = np.argmax(spectrum) * fs / len(faster)
        assert abs(peak_hz - 200.0 * factor) < 2.0, (factor, peak_hz)
    assert speed_perturb(tone, 1.0) is tone


def test_dataset_keeps_every_clip_at_every_speed(speech_clip):
    extractor = LogMelExtractor(FeatureConfig())
    clip = speech_clip[: 22050]
    train = SpecGradConfig.from_dict({"train": {"segment_frames": FRAMES, "speed_factors": [0.9, 1.0, 1.1]}}).train
    data = SegmentDataset.for_training([clip], extractor, train)
    lengths = [wav.shape[0] for wav, _ in data.items]
    assert len(data) == 3
    assert lengths[1] == len(clip) // HOP * HOP
    assert lengths[0] > lengths[1] > lengths[2]  # slower is longer


def vowel(f0: float, formant_hz: float, fs: int = 22050, seconds: float = 1.0) -> np.ndarray:
    """A steady vowel: harmonics of f0 under one resonance at formant_hz (100 Hz wide)."""
    t = np.arange(int(fs * seconds)) / fs
    harmonics = np.arange(1, int(5000 // f0) + 1) * f0
    gain = 1.0 / (1.0 + ((harmonics - formant_hz) / 100.0) ** 2)
    return 0.1 * np.sum(gain[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t), axis=0)


def envelope_peak_hz(x: np.ndarray, fs: int = 22050) -> float:
    """Where the log spectrum, averaged over 400 Hz (more than a harmonic spacing), peaks."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    width = int(400 * len(x) / fs)
    smooth = np.convolve(spectrum, np.ones(width) / width, mode="same")
    return float(np.argmax(smooth) * fs / len(x))


def test_world_pitch_shift_moves_the_pitch_and_keeps_the_formant_and_level():
    pyworld = pytest.importorskip("pyworld", reason="WORLD pitch shift needs the eval extra")
    fs = 22050
    x = vowel(200.0, 1000.0)
    for factor in (0.6, 1.5):
        y = world_pitch_shift(x, fs, factor)
        assert y.shape == x.shape and y.dtype == np.float32
        f0, times = pyworld.dio(y.astype(np.float64), fs)
        f0 = pyworld.stonemask(y.astype(np.float64), f0, times, fs)
        middle = f0[len(f0) // 4: 3 * len(f0) // 4]
        assert np.all(middle > 0) and abs(np.median(middle) / (200.0 * factor) - 1) < 0.02, (factor, np.median(middle))
        # speed_perturb would move the resonance to 600 / 1500 Hz; WORLD keeps it
        assert abs(envelope_peak_hz(y) - 1000.0) < 150.0, (factor, envelope_peak_hz(y))
        assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    assert np.array_equal(world_pitch_shift(x, fs, 1.0), x.astype(np.float32))


def test_dataset_adds_one_world_copy_per_pitch_factor(speech_clip):
    pytest.importorskip("pyworld", reason="WORLD pitch shift needs the eval extra")
    extractor = LogMelExtractor(FeatureConfig())
    clip = speech_clip[: 22050]
    train = SpecGradConfig.from_dict({"train": {"segment_frames": FRAMES, "speed_factors": [0.9, 1.0],
                                                "pitch_factors": [0.7]}}).train
    data = SegmentDataset.for_training([clip], extractor, train)
    assert len(data) == 3
    (slow, _), (same, _), (lower, lower_mel) = data.items
    assert lower.shape == same.shape  # the pitch moves, the length does not
    expected = world_pitch_shift(np.asarray(clip, dtype=np.float32), 22050, 0.7)[: lower.shape[0]]
    torch.testing.assert_close(lower, torch.from_numpy(expected))
    assert not torch.equal(lower, same)
    torch.testing.assert_close(lower_mel, extractor(lower[None])[0])


def test_world_copies_are_built_once_and_kept_per_clip_and_factor(speech_clip, tmp_path, monkeypatch):
    pytest.importorskip("pyworld", reason="WORLD pitch shift needs the eval extra")
    extractor = LogMelExtractor(FeatureConfig())
    clip = np.asarray(speech_clip[: 11025], dtype=np.float32)
    built = []

    def counting(wav, fs, factor):
        built.append(factor)
        return world_pitch_shift(wav, fs, factor)

    monkeypatch.setattr(data_module, "world_pitch_shift", counting)
    cache = tmp_path / "world_copies"
    first = SegmentDataset([clip], extractor, FRAMES, pitch_factors=[0.7], world_cache=cache)
    assert built == [0.7] and len(list(cache.glob("world_*.npy"))) == 1
    assert not list(cache.glob("*partial*"))
    again = SegmentDataset([clip], extractor, FRAMES, pitch_factors=[0.7], world_cache=cache)
    assert built == [0.7]  # read back, not rebuilt
    torch.testing.assert_close(again.items[1][0], first.items[1][0])
    # another factor or other samples are other copies, never the kept one
    other = SegmentDataset([clip], extractor, FRAMES, pitch_factors=[0.5], world_cache=cache)
    louder = SegmentDataset([2 * clip], extractor, FRAMES, pitch_factors=[0.7], world_cache=cache)
    assert built == [0.7, 0.5, 0.7] and len(list(cache.glob("world_*.npy"))) == 3
    assert not torch.allclose(other.items[1][0], first.items[1][0])
    level = louder.items[1][0].square().mean().sqrt() / first.items[1][0].square().mean().sqrt()
    assert float(level) == pytest.approx(2.0, rel=1e-3)  # the louder clip's own copy, at its own level


def test_world_copies_without_pyworld_name_the_extra_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_pyworld(name, *args, **kwargs):
        if name == "pyworld":
            raise ImportError("no pyworld")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyworld)
    for cache in (None, tmp_path):
        with pytest.raises(SpecGradInputError, match=r"pip install 'specgrad_plugin\[eval\]'"):
            data_module.cached_world_pitch_shift(np.zeros(2048, dtype=np.float32), 22050, 0.7, cache)


def test_a_preset_asking_espnet_for_world_copies_is_told_they_are_not_made(tmp_path, tiny_cfg, caplog):
    preset = SpecGradConfig.from_dict({**tiny_cfg.to_dict(), "train": {"pitch_factors": [0.7]}})
    preset.to_yaml(tmp_path / "preset.yaml")
    with caplog.at_level("WARNING"):
        conf = task_module._model_conf(argparse.Namespace(preset=tmp_path / "preset.yaml", model_conf={}))
    assert "pitch_factors" not in conf
    assert "train.pitch_factors=[0.7] is not used by ESPnet training" in caplog.text


def test_speed_factors_out_of_range_are_a_config_error():
    with pytest.raises(ConfigError, match="speed_factors"):
        SpecGradConfig.from_dict({"train": {"speed_factors": [0.1]}})
    with pytest.raises(ConfigError, match="speed_factors"):
        SpecGradConfig.from_dict({"train": {"speed_factors": []}})
    with pytest.raises(ConfigError, match="pitch_factors"):
        SpecGradConfig.from_dict({"train": {"pitch_factors": [0.1]}})


def test_train_section_records_the_warm_up_of_each_espnet_scheduler():
    for scheduler_conf, expected in (({"warmup_steps": 100, "steps_per_epoch": 500}, 100),
                                     ({"warmup_steps_list": [0, 250], "warmup_lr_list": [0.0, 1e-3]}, 250)):
        run = {"model_conf": {"segment_frames": FRAMES}, "scheduler_conf": scheduler_conf}
        assert espnet_train_section(run)["warmup_steps"] == expected
    assert "warmup_steps" not in espnet_train_section({"model_conf": {}})


def test_train_section_names_frozen_parameters_as_the_vocoder_does(tiny_cfg):
    """ESPnet freezes ``vocoder.<name>`` of its model; the exported config's train.freeze must
    name what the vocoder itself has, or training from that config refuses it."""
    run = {"model_conf": {}, "freeze_param": ["vocoder.denoiser.level_embedding"]}
    freeze = espnet_train_section(run)["freeze"]
    assert freeze == ["denoiser.level_embedding"]
    trainable = trainable_parameters(SpecGradVocoder(tiny_cfg), freeze)
    assert 0 < len(trainable) < len(list(SpecGradVocoder(tiny_cfg).parameters()))
    assert "freeze" not in espnet_train_section({"model_conf": {}})


def test_espnet_model_crops_speed_perturbed_clips_from_the_preset(tmp_path, tiny_cfg, speech_clip):
    """speed_factors travel --preset -> model_conf -> the model: training crops are slices of
    the clip played at a drawn speed, with that audio's mel; eval crops are not perturbed."""
    train = {"speed_factors": [1.1], "any_sample_crops": True}
    preset = SpecGradConfig.from_dict({**tiny_cfg.to_dict(), "train": train})
    preset.to_yaml(tmp_path / "preset.yaml")
    conf = task_module._model_conf(argparse.Namespace(preset=tmp_path / "preset.yaml", model_conf={}))
    assert conf["speed_factors"] == [1.1]
    model = ESPnetSpecGradModel(**{k: v for k, v in conf.items() if v is not None}).train()
    model.segment_frames = FRAMES
    clip = torch.as_tensor(speech_clip[: 2 * 22050])
    faster = speed_perturb(clip, 1.1)
    wav, mel = model.segments(clip.expand(3, -1), torch.full((3,), clip.shape[0]))
    for w, m in zip(wav, mel, strict=True):
        s = locate(w, faster)
        if s >= 2 * HOP and s + (FRAMES + 2) * HOP <= faster.shape[0]:
            expected = model.vocoder.features(faster[None, s - 2 * HOP : s + (FRAMES + 2) * HOP])[0, 2 : 2 + FRAMES]
            torch.testing.assert_close(m, expected, atol=1e-4, rtol=0)
    model.eval()
    wav, _ = model.segments(clip[None], torch.tensor([clip.shape[0]]))
    locate(wav[0], clip)
    model.speed_factors = [0.9, 1.0, 1.1]
    assert {model.draw_speed() for _ in range(60)} == {0.9, 1.0, 1.1}


def test_shared_data_variable_alone_decides_when_set(tmp_path, monkeypatch):
    """$SPECGRAD_DATA naming a folder without the clips means no shared data, even where
    ../shared/data holds them: how a run without them is had on a machine that has them."""
    from specgrad_plugin.data import shared_data_dir

    monkeypatch.setenv("SPECGRAD_DATA", str(tmp_path))
    assert shared_data_dir() is None
    (tmp_path / "ljspeech_mini").mkdir()
    (tmp_path / "ljspeech_mini" / "metadata.csv").write_text("LJ001-0001|a|a\n")
    assert shared_data_dir() == tmp_path
