"""The denoiser section of a SpecGrad config: one dataclass per family, chosen by ``kind``
(PWG's generator_type / generator_params), and how sections written before the families had
classes of their own are read."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

if TYPE_CHECKING:
    from specgrad_plugin.config import FeatureConfig

# Width of the crossover below frame_low_band_hz where a low trunk predicting in a longer STFT
# and the main trunk share the band (denoisers/long_window.py).
CROSSOVER_HZ = 200.0


def _config_error():
    from specgrad_plugin.config import ConfigError  # config imports this module

    return ConfigError


@dataclass
class WaveNetConfig:
    """The sample-rate WaveNet denoiser (``kind: wavenet``; denoisers/wavenet.py).

    Args:
        level_embed_dim: size of the sinusoidal embedding of the noise level (log-SNR).
        level_hidden_dim: width of the level MLP, fed to every residual layer.
        residual_layers: gated dilated-convolution layers.
        residual_channels: channels of each residual layer.
        dilation_cycle: layer i has dilation 2 ** (i mod dilation_cycle).
        kernel_size: taps of the dilated convolutions.
        upsample_scales: the mel upsampler's strides; their product must equal hop_length.
    """

    kind: str = "wavenet"
    level_embed_dim: int = 128
    level_hidden_dim: int = 512
    residual_layers: int = 30
    residual_channels: int = 64
    dilation_cycle: int = 10
    kernel_size: int = 3
    upsample_scales: List[int] = field(default_factory=lambda: [16, 16])

    def checks(self, feat: FeatureConfig) -> List[Tuple[bool, str]]:
        """(holds, message) for each constraint: SpecGradConfig.validate reports the first that fails."""
        return level_checks(self) + [
            (math.prod(self.upsample_scales) == feat.hop_length,
             f"denoiser.upsample_scales={self.upsample_scales} multiply to {math.prod(self.upsample_scales)}, "
             f"expected hop_length={feat.hop_length}"),
            (min(self.residual_layers, self.residual_channels, self.dilation_cycle) > 0,
             f"denoiser residual_layers={self.residual_layers}, residual_channels={self.residual_channels}, "
             f"dilation_cycle={self.dilation_cycle}, expected positive"),
            (self.kernel_size % 2 == 1 and self.kernel_size > 0,
             f"denoiser.kernel_size={self.kernel_size}, expected an odd number of taps"),
        ]


def level_checks(cfg) -> List[Tuple[bool, str]]:
    """The noise-level embedding both families share (denoisers/level.py): sines and cosines in
    equal number, and a hidden layer."""
    return [(cfg.level_embed_dim > 0 and cfg.level_embed_dim % 2 == 0 and cfg.level_hidden_dim > 0,
             f"denoiser level_embed_dim={cfg.level_embed_dim}, level_hidden_dim={cfg.level_hidden_dim}, expected an "
             "even embedding size and a positive hidden size")]


@dataclass
class FrameConfig:
    """The frame-rate ConvNeXt denoiser over STFT frames of the whitened x_t (``kind: frame``;
    denoisers/frame.py).

    Args:
        level_embed_dim: size of the sinusoidal embedding of the noise level (log-SNR).
        level_hidden_dim: width of the level MLP, fed to every block's AdaLN.
        frame_channels: ConvNeXt width per STFT frame.
        frame_layers: ConvNeXt blocks of the main trunk (and of the low-band trunk unless
            frame_low_band_layers is set).
        frame_kernel: taps over frames of every convolution (odd).
        frame_mlp_ratio: the pointwise MLP is this many times frame_channels wide.
        frame_phase_demodulation: each bin's STFT is seen and predicted with its own frequency's
            phase advance removed (exp(-2 pi i k t hop / n_fft)): a steady harmonic turns slowly.
        frame_low_band_hz: > 0: a second trunk for the bins below this frequency (docs/low_band.md).
        frame_low_band_channels: width of the low-band trunk.
        frame_low_band_layers: ConvNeXt blocks of the low-band trunk; 0: frame_layers.
        frame_excitation: the low-band trunk also sees the STFT of a harmonic excitation at the
            mel's F0 (pitch.mel_f0), a phase reference for each harmonic; needs frame_low_band_hz.
        frame_low_band_n_fft: > 0: the low-band trunk sees and predicts its band in an STFT of
            this many points (more than the features' n_fft, same hop), joined to the main trunk's
            estimate in the waveform (denoisers/long_window.py); 0: the features' STFT.
        frame_low_band_long_mode: with frame_low_band_n_fft, ``predict`` (as above) or ``see``:
            the low trunk sees the longer STFT's low bins beside the features' and predicts in
            the features' STFT.
        frame_time_head_channels: > 0: a time-domain head of this many channels refines the
            low band's noise estimate as a waveform at fs / frame_time_head_decimation
            (denoisers/time_head.py); needs frame_low_band_hz. 0: none.
        frame_time_head_layers: gated dilated-convolution layers of the head.
        frame_time_head_dilation_cycle: head layer i has dilation 2 ** (i mod this).
        frame_time_head_decimation: the head's rate is fs divided by this (it must divide
            hop_length, and fs / this / 2 must lie above frame_low_band_hz).
    """

    kind: str = "frame"
    level_embed_dim: int = 128
    level_hidden_dim: int = 512
    frame_channels: int = 256
    frame_layers: int = 8
    frame_kernel: int = 7
    frame_mlp_ratio: int = 3
    frame_phase_demodulation: bool = False
    frame_low_band_hz: float = 0.0
    frame_low_band_channels: int = 128
    frame_low_band_layers: int = 0
    frame_excitation: bool = False
    frame_low_band_n_fft: int = 0
    frame_low_band_long_mode: str = "predict"
    frame_time_head_channels: int = 0
    frame_time_head_layers: int = 8
    frame_time_head_dilation_cycle: int = 4
    frame_time_head_decimation: int = 8

    def checks(self, feat: FeatureConfig) -> List[Tuple[bool, str]]:
        """(holds, message) for each constraint: SpecGradConfig.validate reports the first that fails."""
        return level_checks(self) + [
            (self.frame_kernel % 2 == 1 and self.frame_kernel > 0,
             f"denoiser.frame_kernel={self.frame_kernel}, expected an odd number of taps"),
            (min(self.frame_channels, self.frame_layers, self.frame_mlp_ratio) > 0,
             f"denoiser frame_channels={self.frame_channels}, frame_layers={self.frame_layers}, "
             f"frame_mlp_ratio={self.frame_mlp_ratio}, expected positive"),
            (0 <= self.frame_low_band_hz <= feat.fs / 2 and self.frame_low_band_channels > 0,
             f"denoiser frame_low_band_hz={self.frame_low_band_hz}, frame_low_band_channels="
             f"{self.frame_low_band_channels}, expected 0..fs/2 Hz and positive channels"),
            (self.frame_low_band_layers >= 0,
             f"denoiser.frame_low_band_layers={self.frame_low_band_layers}, expected 0 (frame_layers) or more"),
            (not self.frame_low_band_layers or self.frame_low_band_hz > 0,
             f"denoiser.frame_low_band_layers={self.frame_low_band_layers} needs a low-band trunk "
             "(frame_low_band_hz > 0)"),
            (not self.frame_excitation or self.frame_low_band_hz > 0,
             "denoiser.frame_excitation=true needs a low-band trunk (frame_low_band_hz > 0)"),
            (not self.frame_low_band_n_fft
             or (self.frame_low_band_n_fft > feat.n_fft and self.frame_low_band_n_fft % 2 == 0),
             f"denoiser.frame_low_band_n_fft={self.frame_low_band_n_fft}, expected 0 or an even number of points "
             f"above features.n_fft={feat.n_fft}"),
            (not self.frame_low_band_n_fft or self.frame_low_band_hz > 0,
             f"denoiser.frame_low_band_hz={self.frame_low_band_hz} with frame_low_band_n_fft="
             f"{self.frame_low_band_n_fft}: expected a low-band trunk (frame_low_band_hz > 0) to see the longer STFT"),
            (not self.frame_low_band_n_fft or self.frame_low_band_long_mode != "predict"
             or self.frame_low_band_hz > CROSSOVER_HZ,
             f"denoiser.frame_low_band_hz={self.frame_low_band_hz} with frame_low_band_long_mode=predict: expected "
             f"a low-band trunk reaching above the {CROSSOVER_HZ:g} Hz crossover where its estimate and the main "
             "trunk's are joined (denoisers/long_window.py)"),
            (self.frame_low_band_long_mode in ("predict", "see"),
             f"denoiser.frame_low_band_long_mode={self.frame_low_band_long_mode!r}, expected 'predict' or 'see'"),
            (not self.frame_low_band_n_fft
             or not (self.frame_excitation or self.frame_time_head_channels or self.frame_phase_demodulation),
             f"denoiser.frame_low_band_n_fft={self.frame_low_band_n_fft} works on the features' STFT alone: "
             "expected frame_excitation, frame_time_head_channels and frame_phase_demodulation off"),
            (self.frame_time_head_channels >= 0,
             f"denoiser.frame_time_head_channels={self.frame_time_head_channels}, expected 0 (no head) or more"),
            (not self.frame_time_head_channels or self.frame_low_band_hz > 0,
             f"denoiser.frame_time_head_channels={self.frame_time_head_channels} needs a low-band trunk "
             "(frame_low_band_hz > 0)"),
            (not self.frame_time_head_channels
             or (self.frame_time_head_layers > 0 and self.frame_time_head_dilation_cycle > 0
                 and self.frame_time_head_decimation > 0
                 and feat.hop_length % self.frame_time_head_decimation == 0
                 and feat.n_fft % self.frame_time_head_decimation == 0
                 and feat.fs / self.frame_time_head_decimation / 2 > self.frame_low_band_hz),
             f"denoiser.frame_time_head_layers={self.frame_time_head_layers}, .frame_time_head_dilation_cycle="
             f"{self.frame_time_head_dilation_cycle}, .frame_time_head_decimation={self.frame_time_head_decimation}: "
             f"expected positive, a decimation dividing hop_length={feat.hop_length} and n_fft={feat.n_fft}, and "
             f"fs / decimation / 2 above frame_low_band_hz={self.frame_low_band_hz}"),
        ]


# The denoiser section's class, chosen by its ``kind`` (wavenet when it names none).
DENOISER_CONFIGS = {"wavenet": WaveNetConfig, "frame": FrameConfig}
DenoiserConfig = Union[WaveNetConfig, FrameConfig]
# Each family's keys that every flat section holding both families' keys has (a dump of the
# one DenoiserConfig of package 0.2.0): how such a section is told from a family's own.
FLAT_LAYOUT_KEYS = {"wavenet": {"residual_layers", "residual_channels", "dilation_cycle", "kernel_size",
                                "upsample_scales"},
                    "frame": {"frame_channels", "frame_layers", "frame_kernel", "frame_mlp_ratio"}}


def denoiser_section(value: Dict[str, Any], source: str) -> Dict[str, Any]:
    """The keys of a ``denoiser`` mapping that its family reads. Configs written before each
    family had a class of its own (package 0.2.0 and earlier, to commit 14e7f04; e.g. the
    shipped ljspeech-v1 config.yaml) hold both families' keys in one flat mapping: the other
    family's keys are dropped there. Anywhere else another family's key is an error."""
    kind = value.get("kind", "wavenet")
    if kind not in DENOISER_CONFIGS:
        raise _config_error()(f"{source}: denoiser.kind={kind!r}, expected {'|'.join(DENOISER_CONFIGS)}")
    own = {f.name for f in dataclasses.fields(DENOISER_CONFIGS[kind])}
    others = {f.name for cls in DENOISER_CONFIGS.values() for f in dataclasses.fields(cls)} - own
    foreign = sorted(set(value) & others)
    if not foreign:
        return dict(value)
    other = next(k for k in DENOISER_CONFIGS if k != kind)
    if not FLAT_LAYOUT_KEYS[other] | FLAT_LAYOUT_KEYS[kind] <= set(value):  # a flat dump holds both families
        raise _config_error()(f"{source}: key '{foreign[0]}' is not a setting of denoiser.kind={kind!r}; "
                          f"expected one of {sorted(own)}")
    return {k: v for k, v in value.items() if k not in others}
