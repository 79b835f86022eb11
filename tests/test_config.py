"""Presets load, have the documented sizes, and unknown keys are errors."""

import pytest

from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.denoisers import count_parameters
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import BASE, FRAME, TINY


def test_presets_sizes():
    base = count_parameters(SpecGradVocoder(SpecGradConfig.from_yaml(BASE)).denoiser)
    tiny = count_parameters(SpecGradVocoder(SpecGradConfig.from_yaml(TINY)).denoiser)
    assert 2.5e6 < base < 2.75e6  # DiffWave/PriorGrad base: ~2.62 M
    assert 0.35e6 < tiny < 0.45e6
    frame = SpecGradVocoder(SpecGradConfig.from_yaml(FRAME)).denoiser
    low_band = count_parameters(frame.low_band)
    assert 6.5e6 < count_parameters(frame) - low_band < 7.0e6  # docs/speed.md's figures are for this trunk
    assert 1.5e6 < low_band < 1.65e6  # the low-band trunk (docs/low_band.md: +18 % CPU per step)


def test_yaml_round_trip(tmp_path):
    cfg = SpecGradConfig.from_yaml(TINY)
    cfg.to_yaml(tmp_path / "c.yaml")
    assert SpecGradConfig.from_yaml(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize(
    "text, message",
    [
        ("prior:\n  kindd: specgrad\n", "unknown key 'kindd'"),
        ("priors:\n  kind: specgrad\n", "unknown section 'priors'"),
        ("prior:\n  kind: wavegrad\n", "prior.kind='wavegrad'"),
        ("prior:\n  white_mix: high\n", "white_mix' = 'high' has type str, expected float"),
        ("denoiser:\n  upsample_scales: [16, 8]\n", "expected hop_length=256"),
        ("features: [1, 2]\n", "expected a mapping"),
        ("denoiser:\n  kind: transformer\n", "denoiser.kind='transformer', expected wavenet\\|frame"),
        ("denoiser:\n  kind: frame\n  frame_kernel: 4\n", "frame_kernel=4, expected an odd number"),
        ("diffusion:\n  loss_band_weighting: bark\n", "loss_band_weighting='bark', expected flat\\|mel\\|erb"),
        ("denoiser:\n  residual_layers: 0\n", "residual_layers=0, .*expected positive"),
        ("denoiser:\n  dilation_cycle: 0\n", "dilation_cycle=0, expected positive"),
        ("denoiser:\n  kernel_size: 2\n", "kernel_size=2, expected an odd number"),
        ("denoiser:\n  level_embed_dim: 7\n", "level_embed_dim=7, .*expected an even embedding size"),
        ("denoiser:\n  kind: frame\n  level_hidden_dim: 0\n", "level_hidden_dim=0, expected an even"),
        ("features:\n  win_length: 2048\n", "win_length=2048, n_fft=1024, .*0 < win_length <= n_fft"),
        ("features:\n  n_mels: 0\n", "n_mels=0, .*expected n_mels > 0"),
        ("train:\n  segment_frames: 2584\n", "segment_frames=2584, expected .* from 1 to 2583 \\(30 s at hop 256"),
        ("train:\n  segment_frames: 0\n", "segment_frames=0, expected .* from 1 to"),
        ("denoiser:\n  kind: frame\n  residual_layers: 30\n  residual_channels: 64\n  dilation_cycle: 10\n"
         "  kernel_size: 3\n  upsample_scales: [16, 16]\n",  # a WaveNet section with its kind switched
         "key 'dilation_cycle' is not a setting of denoiser.kind='frame'"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        SpecGradConfig.from_yaml(path)
    assert "bad.yaml" in str(err.value)


def test_presets_by_name_tag_or_path(tmp_path, monkeypatch):
    """Names are the package's preset files; a shipped model's tag is its config; an existing
    file wins over a name; anything else is one error listing what is accepted."""
    from specgrad_plugin import pretrained

    for name, path in (("frame", FRAME), ("base", BASE), ("tiny", TINY)):
        assert SpecGradConfig.from_preset(name) == SpecGradConfig.from_yaml(path)
    shipped = SpecGradConfig.from_yaml(pretrained.resolve("ljspeech")[1])
    assert SpecGradConfig.from_preset("specgrad/ljspeech") == shipped
    (tmp_path / "frame").write_text("denoiser:\n  residual_layers: 4\n")
    monkeypatch.chdir(tmp_path)
    assert SpecGradConfig.from_preset("frame").denoiser.residual_layers == 4
    with pytest.raises(ConfigError, match="preset .framex.: no such file.*base, frame, tiny.*specgrad/ljspeech"):
        SpecGradConfig.from_preset("framex")
    with pytest.raises(ConfigError, match="'specgrad/nope' is not shipped"):
        SpecGradConfig.from_preset("specgrad/nope")


def test_training_and_quickstart_take_preset_names():
    import argparse

    from specgrad_plugin.bin import quickstart
    from specgrad_plugin.espnet import task

    conf = task._model_conf(argparse.Namespace(preset="frame", model_conf={"denoiser": {"frame_layers": 3}}))
    frame = SpecGradConfig.from_preset("frame")
    assert conf["denoiser"] == {**frame.to_dict()["denoiser"], "frame_layers": 3}
    assert conf["diffusion"] == frame.to_dict()["diffusion"]
    assert quickstart.get_parser().parse_args([]).preset == "tiny"
    assert quickstart.get_parser().parse_args(["--preset", "frame"]).preset == "frame"


def test_denoiser_section_holds_one_family_and_old_flat_configs_load(tmp_path):
    """A saved config holds only its family's keys; the flat layout that held both families'
    keys (the shipped ljspeech-v1 config.yaml) loads, keeping the chosen family's."""
    from specgrad_plugin import pretrained

    shipped = SpecGradConfig.from_yaml(pretrained.resolve("ljspeech")[1])
    saved = shipped.to_dict()["denoiser"]
    assert saved["kind"] == "frame" and saved["frame_low_band_hz"] == 1000.0
    assert not any(k in saved for k in ("residual_layers", "upsample_scales"))
    tiny = SpecGradConfig.from_preset("tiny").to_dict()["denoiser"]
    assert tiny["kind"] == "wavenet" and not any(k.startswith("frame_") for k in tiny)
    legacy = {**tiny, **saved, "kind": "wavenet", "residual_layers": 3}  # an old wavenet dump
    assert SpecGradConfig.from_dict({"denoiser": legacy}).to_dict()["denoiser"] == {**tiny, "residual_layers": 3}
    for stray in ({"kind": "frame", "residual_layers": 3}, {"kind": "frame", "frame_layers": 3, "residual_layers": 3}):
        with pytest.raises(ConfigError, match="x.yaml:denoiser: key 'residual_layers' is not a setting of "
                                              "denoiser.kind='frame'"):
            SpecGradConfig.from_dict({"denoiser": stray}, source="x.yaml")


def test_model_conf_naming_another_family_replaces_the_denoiser_section():
    import argparse

    from specgrad_plugin.espnet import task

    conf = task._model_conf(argparse.Namespace(preset="tiny", model_conf={"denoiser": {"kind": "frame"}}))
    assert conf["denoiser"] == {"kind": "frame"}  # no WaveNet key of the preset's left over


def test_checkpoint_with_an_old_flat_config_inside_loads_and_saves_one_family(tmp_path):
    """A built-in trainer's checkpoint whose embedded config is the flat layout loads; saving it
    again writes only the frame family's keys."""
    import torch

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame"))
    vocoder.save(tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    wavenet = {"residual_layers": 30, "residual_channels": 64, "dilation_cycle": 10, "kernel_size": 3,
               "upsample_scales": [16, 16]}  # what nothing read in a frame model's flat config
    payload["config"]["denoiser"].update(wavenet)
    torch.save(payload, tmp_path / "old.pt")
    loaded = SpecGradVocoder.from_checkpoint(tmp_path / "old.pt")
    assert loaded.cfg == vocoder.cfg
    loaded.save(tmp_path / "again.pt")
    saved = torch.load(tmp_path / "again.pt", weights_only=True)["config"]["denoiser"]
    assert saved["kind"] == "frame" and "residual_layers" not in saved


def test_the_longest_segment_allowed_is_accepted(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("train:\n  segment_frames: 2583\n")  # 30 s at 22.05 kHz, hop 256, rounded down
    assert SpecGradConfig.from_yaml(path).train.segment_frames == 2583
