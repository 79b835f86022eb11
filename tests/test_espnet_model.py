"""The ESPnet model's construction: crop keys checked as the train section, a trained model
grown by a silent module through init_from, the resume error's wording; its training mels."""

import pytest
import torch

from specgrad_plugin.config import ConfigError, TrainConfig
from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.espnet.trainer import EARLIER_CHECKPOINT, RUN_IDENTITY, architecture_mismatch, record_identity
from specgrad_plugin.vocoder import CheckpointError, SpecGradVocoder

from .conftest import SMALL_FAMILIES, small_config


def test_init_from_grows_a_trained_frame_model_by_a_silent_low_band_trunk(tmp_path):
    """model_conf init_from may lack only the low-band trunk's weights: the grown model starts
    as the checkpoint's function. Any other missing weight is still an error naming it."""
    source = SpecGradVocoder(small_config("frame"))
    for p in source.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    source.save(tmp_path / "start.pt")
    sections = source.cfg.to_dict()
    sections.pop("train")
    grown = ESPnetSpecGradModel(**{**sections, "denoiser": {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0,
                                                            "frame_low_band_channels": 8}},
                                init_from=str(tmp_path / "start.pt"))
    assert grown.vocoder.denoiser.low_band is not None
    mel = torch.randn(30, 80) * 0.5 - 3
    with torch.no_grad():
        expected = source.eval()(mel, schedule="WG-3", seed=0)
        assert torch.allclose(grown.vocoder.eval()(mel, schedule="WG-3", seed=0), expected, atol=1e-5)
    deeper = {**SMALL_FAMILIES["frame"], "frame_layers": 3}
    with pytest.raises(CheckpointError, match="missing keys"):
        ESPnetSpecGradModel(**{**sections, "denoiser": deeper}, init_from=str(tmp_path / "start.pt"))
    # another family: named by kind, not by the two lists of weights
    with pytest.raises(CheckpointError, match="start.pt: a frame denoiser, this config's is wavenet; expected"):
        ESPnetSpecGradModel(**{**sections, "denoiser": {"kind": "wavenet"}}, init_from=str(tmp_path / "start.pt"))


def test_init_from_warns_where_the_runs_config_differs_from_the_sources(tmp_path, caplog):
    """init_from loads weights into the model the run's config builds: where that config differs
    from the source's in what the weights compute (v5's gain steps, say), the log says so."""
    source = SpecGradVocoder(small_config("frame", inference={"mel_gain_iterations": 4}))
    source.save(tmp_path / "start.pt")
    sections = source.cfg.to_dict()
    sections.pop("train")
    with caplog.at_level("WARNING"):
        ESPnetSpecGradModel(**sections, init_from=str(tmp_path / "start.pt"))
    assert "differs from the source's" not in caplog.text
    with caplog.at_level("WARNING"):
        ESPnetSpecGradModel(**{**sections, "inference": {}}, init_from=str(tmp_path / "start.pt"))
    assert "differs from the source's in 1 keys (inference.mel_gain_iterations: 4 there, 0 here)" in caplog.text


def test_init_from_does_not_grow_new_blocks_inside_a_trunk_it_holds(tmp_path):
    """A deeper low-band trunk than the checkpoint's would add blocks that are not silent
    (the trained output layer reads them): they are missing keys, not a grown module."""
    low = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8}
    source = SpecGradVocoder(small_config("frame", denoiser=low))
    source.save(tmp_path / "start.pt")
    sections = source.cfg.to_dict()
    sections.pop("train")
    with pytest.raises(CheckpointError, match=r"missing keys \['denoiser.low_band.blocks.2") as error:
        ESPnetSpecGradModel(**{**sections, "denoiser": {**low, "frame_low_band_layers": 3}},
                            init_from=str(tmp_path / "start.pt"))
    assert "holds denoiser.low_band at another size" in str(error.value)
    assert "frame_low_band_layers" in str(error.value)
    # a deeper main trunk with the low band as saved: missing keys, no word of the low band
    with pytest.raises(CheckpointError, match=r"missing keys \['denoiser.trunk.blocks.2") as error:
        ESPnetSpecGradModel(**{**sections, "denoiser": {**low, "frame_layers": 3, "frame_low_band_layers": 2}},
                            init_from=str(tmp_path / "start.pt"))
    assert "low_band" not in str(error.value)


def test_resume_error_names_the_low_band_flag_only_when_that_trunk_differs():
    saved = {"vocoder.denoiser.input.weight", "vocoder.gain_bias"}
    grown = architecture_mismatch("c.pth", saved, saved | {"vocoder.denoiser.low_band.out.weight"})
    assert "new ['vocoder.denoiser.low_band.out.weight']" in grown and "frame_low_band_hz=0" in grown
    deeper = architecture_mismatch("c.pth", saved, saved | {"vocoder.denoiser.blocks.8.dw.weight"})
    assert "blocks.8" in deeper and "frame_low_band_hz" not in deeper
    low = saved | {"vocoder.denoiser.low_band.out.weight"}
    deeper_low = architecture_mismatch("c.pth", low, low | {"vocoder.denoiser.low_band.blocks.8.dw.weight"})
    assert "low_band.blocks.8" in deeper_low and "frame_low_band_hz" not in deeper_low


def test_a_fresh_start_moves_the_earlier_runs_checkpoint_aside(tmp_path):
    """--resume false over an earlier run: its checkpoint.pth is moved aside (kept, since
    false is bin.train's default) when the new record is written, so a restart killed before
    its first epoch cannot resume the old weights under the new record. A resume, and ranks
    other than 0, leave both as they are."""
    cfg = small_config("frame")
    (tmp_path / "checkpoint.pth").write_bytes(b"earlier run")
    record_identity(tmp_path, cfg, resume=True, is_main=True)
    record_identity(tmp_path, cfg, resume=False, is_main=False)
    assert (tmp_path / "checkpoint.pth").is_file() and not (tmp_path / RUN_IDENTITY).exists()
    record_identity(tmp_path, cfg, resume=False, is_main=True)
    assert not (tmp_path / "checkpoint.pth").exists() and (tmp_path / RUN_IDENTITY).is_file()
    assert (tmp_path / EARLIER_CHECKPOINT).read_bytes() == b"earlier run"


@pytest.mark.parametrize("crops, message", [
    ({"speed_factors": [3.0]}, r"model_conf: train.speed_factors=\[3.0\], expected a list of factors in 0.5..2"),
    ({"segment_frames": 0}, r"model_conf: train.segment_frames=0, expected a whole number of frames from 1 to 2583"),
    ({"segment_frames": 10**9}, r"model_conf: train.segment_frames=1000000000, expected .* from 1 to 2583 \(30 s"),
])
def test_model_conf_crop_keys_are_checked_as_the_train_section(crops, message):
    """The crop keys of model_conf take the train section's defaults and checks (one place):
    a bad value stops the run before training, naming model_conf and the key."""
    model = ESPnetSpecGradModel(denoiser=SMALL_FAMILIES["frame"])
    assert (model.segment_frames, model.any_sample_crops, model.speed_factors) == (
        TrainConfig.segment_frames, TrainConfig.any_sample_crops, TrainConfig().speed_factors)
    with pytest.raises(ConfigError, match=message):
        ESPnetSpecGradModel(denoiser=SMALL_FAMILIES["frame"], **crops)


@pytest.mark.parametrize("from_trained", [True, False])
def test_ema_continues_from_init_from_weights_without_warm_up(tmp_path, from_trained):
    """Fine-tuning from trained weights: the EMA's first update keeps decay 0.999 of them (the
    warm-up's 0.1 would make the average of a 50-step fine-tuning its last few raw steps).
    From scratch the warm-up stays: the first update keeps 0.1 of the initial weights."""
    source = SpecGradVocoder(small_config("frame"))
    source.save(tmp_path / "start.pt")
    sections = source.cfg.to_dict()
    sections.pop("train")
    model = ESPnetSpecGradModel(**sections, init_from=str(tmp_path / "start.pt") if from_trained else None)
    start = [p.detach().clone() for p in model.vocoder.parameters()]
    with torch.no_grad():
        for p in model.vocoder.parameters():
            p.add_(1.0)  # one "update" that moves every weight by 1
    model.update_ema(0.999)
    kept = 0.999 if from_trained else 0.1
    for old, averaged in zip(start, model.ema.parameters(), strict=True):
        assert torch.allclose(averaged, old + (1.0 - kept), atol=1e-5)


def test_training_mels_are_float32_inside_espnet_autocast(speech_clip):
    """ESPnet's --use_amp runs forward and collect_feats under autocast (bf16 on CPU here, as on
    recent GPUs): the mels must equal the float32 ones, not be rounded; one clip is padded."""
    model = ESPnetSpecGradModel(denoiser=SMALL_FAMILIES["frame"], segment_frames=16).eval()
    speech = torch.from_numpy(speech_clip[: 2 * 40 * 256]).view(2, -1).clone()
    speech[1, 20 * 256 :] = 0.0
    lengths = torch.tensor([40 * 256, 20 * 256])
    feats, (_, segment_mel) = model.collect_feats(speech, lengths)["feats"], model.segments(speech, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats_amp, (_, segment_mel_amp) = model.collect_feats(speech, lengths)["feats"], model.segments(speech, lengths)
    assert feats_amp.dtype == segment_mel_amp.dtype == torch.float32
    assert torch.equal(feats_amp, feats) and torch.equal(segment_mel_amp, segment_mel)


def test_stats_files_of_another_shape_or_with_nan_are_refused_by_name(tmp_path):
    """feats_stats.npz of another n_mels, the energy histogram given as mel statistics (200
    sums against 80 bands), a histogram of another bin count (read against the 200 built-in
    bins it set a wrong noise range without a word), and NaN sums: each refused at the start
    by file, not a shape error inside torch or a model that cannot be loaded afterwards."""
    import numpy as np

    from specgrad_plugin.checks import SpecGradInputError
    from specgrad_plugin.espnet.model import energy_range_from_stats, mel_mean_std_from_stats

    def stats(name, size, value=1.0, count=10):
        path = tmp_path / f"{name}.npz"
        np.savez(path, count=np.array(count), sum=np.full(size, value, np.float32),
                 sum_square=np.full(size, value * value, np.float32))
        return str(path)

    mean, std = mel_mean_std_from_stats(stats("good", 80, -3.0), 80)
    assert mean.shape == (80,) and torch.allclose(mean.float(), torch.full((80,), -0.3))
    from specgrad_plugin.espnet.model import ENERGY_BINS

    # every bin occupied: the range spans the built-in bins' outer edges
    assert energy_range_from_stats(stats("hist", 200)) == pytest.approx((float(ENERGY_BINS[0]), float(ENERGY_BINS[-1])))
    for path, n, message in ((stats("mel64", 64), 80, r"shape \(64,\), expected \(80,\)"),
                             (stats("hist_as_mel", 200), 80, r"shape \(200,\), expected \(80,\)"),
                             (stats("nan", 80, float("nan")), 80, "NaN/inf or no frames"),
                             (stats("none", 80, count=0), 80, "NaN/inf or no frames")):
        with pytest.raises(SpecGradInputError, match=message):
            mel_mean_std_from_stats(path, n)
    with pytest.raises(SpecGradInputError, match=r"hist7.npz: sums of shape \(7,\), expected \(200,\)"):
        energy_range_from_stats(stats("hist7", 7))


def test_crops_longer_than_every_clip_are_warned_about_once(caplog):
    """segment_frames past every clip of a batch trains on zero padding: one warning naming
    the setting and the clips' length, not one per step; none when a clip is long enough."""
    import logging

    sections = {k: v for k, v in small_config("frame").to_dict().items() if k != "train"}
    model = ESPnetSpecGradModel(**sections, segment_frames=40).train()
    short = torch.randn(2, 20 * 256) * 0.1
    with caplog.at_level(logging.WARNING):
        model.segments(short, torch.tensor([20 * 256, 15 * 256]))
        model.segments(short, torch.tensor([20 * 256, 15 * 256]))
    warned = [r for r in caplog.records if "segment_frames=40" in r.getMessage()]
    assert len(warned) == 1 and "longest 0.23 s" in warned[0].getMessage()
    caplog.clear()
    other = ESPnetSpecGradModel(**sections, segment_frames=16).train()
    with caplog.at_level(logging.WARNING):
        other.segments(short, torch.tensor([20 * 256, 15 * 256]))
    assert not [r for r in caplog.records if "segment_frames" in r.getMessage()]
