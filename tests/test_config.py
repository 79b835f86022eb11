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
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        SpecGradConfig.from_yaml(path)
    assert "bad.yaml" in str(err.value)
