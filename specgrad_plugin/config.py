"""One config object for a SpecGrad model, saved with every checkpoint.

The YAML presets in ``specgrad_plugin/presets/`` are this structure written out; loading is strict:
an unknown key is an error naming the key and the file, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from specgrad_plugin import diffusion, espnet_conf, sampler_loss

# the denoiser section's classes, one per family (re-exported: they are part of this module's API)
from specgrad_plugin.denoiser_config import (  # noqa: F401
    DENOISER_CONFIGS,
    DenoiserConfig,
    FrameConfig,
    WaveNetConfig,
    denoiser_section,
)


class ConfigError(ValueError):
    """A config file or dict that does not match :class:`SpecGradConfig`."""


@dataclass
class FeatureConfig:
    """Log-mel settings; defaults equal ESPnet's LJSpeech TTS recipes."""

    fs: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: int = 80
    fmax: int = 7600


# train.segment_frames: crops past this are a typo (they would exhaust memory), not a setting
MAX_SEGMENT_SECONDS = 30
MAX_HARMONIC_DEPTH_DB = 30.0  # prior.harmonic_depth_db: the Hann window's first sidelobe is 31 dB down


@dataclass
class PriorConfig:
    """The noise prior: ``H_k(f) = sigma_k * h_k(f)`` (docs/design.md, the filter)."""

    kind: str = "specgrad"  # specgrad | priorgrad | diffwave
    lifter_order: int = 24  # keep quefrencies |n| < r of the log amplitude
    floor_db: float = -40.0  # envelope floor relative to each frame's maximum power
    white_mix: float = 0.2  # h^2 <- (1 - w) h^2 + w, after unit-mean-power normalisation
    phase: str = "minimum"  # minimum | zero
    min_level: float = 0.1  # PriorGrad's lower clip of the frame level sigma_k
    # The harmonic prior (specgrad only): dB by which h dips between the harmonics of the F0
    # read off the mel (pitch.py), in voiced frames, below harmonic_cutoff_hz (0: off, the paper;
    # at most MAX_HARMONIC_DEPTH_DB). It lowers h below the white mix's floor there.
    harmonic_depth_db: float = 0.0
    harmonic_cutoff_hz: float = 1000.0


@dataclass
class DiffusionConfig:
    """Training noise levels and loss weighting (docs/design.md, schedules and loss)."""

    beta_start: float = 1.0e-4  # PriorGrad/DiffWave training schedule: linspace(start, end, steps)
    beta_end: float = 0.05
    steps: int = 50
    # Extra steps of equal beta after the linear schedule, down to min_alpha_bar (WG-3, WG-6 go below T = 50)
    extra_steps: int = 5
    min_alpha_bar: float = 1.0e-3
    # Share of draws with log-SNR uniform from min_alpha_bar to the last step's (diffusion.py)
    below_share: float = 0.0
    loss_inverse_power: float = 1.0  # loss weight L^-p: 1 = the paper, 0 = plain MSE
    # Weights over frequency on top of L^-p: flat (the paper: every bin alike), mel (the mel
    # scale's density, 1 / (700 + f), unit mean: ~5x below 500 Hz, ~0.4x above 8 kHz) or erb
    # (the ERB-rate scale's, 1 / (229 + f): ~9x below 500 Hz, ~0.2x above 8 kHz).
    loss_band_weighting: str = "flat"
    # Weight of FreGrad's auxiliary MR-STFT loss (auraloss; FreGrad: 0.1) on the predicted x0,
    # on draws at or above the linear schedule's last level, as FreGrad (0: off, the paper).
    aux_stft_weight: float = 0.0
    # Weight of the sampler loss: the low band of sampler_loss_schedule's output (sampler_loss.py)
    sampler_loss_weight: float = 0.0
    sampler_loss_schedule: str = "WG-6"
    # Weight, inside the sampler loss, of its phase-advance distance (0: magnitudes only)
    sampler_loss_phase_weight: float = 0.0
    # ... of the distance between what repeats every hop in its output and the reference's (0: off)
    sampler_loss_frame_periodic_weight: float = 0.0
    # ... of its log-magnitude and phase-advance distances below 1.5 times the reference's F0 (0: off)
    sampler_loss_fundamental_weight: float = 0.0
    # ... of the distance between its and the reference's normalised autocorrelation at the
    # reference's pitch period, every voiced frame and its unvoiced neighbours alike (periodicity.py; 0: off)
    sampler_loss_periodicity_weight: float = 0.0
    # Weight, inside the sampler loss, of a period discriminator's adversarial and feature-matching
    # losses on its low band (critic.py, WaveFit's GAN term; training.fit only; 0: off)
    sampler_loss_adversarial_weight: float = 0.0


@dataclass
class TrainConfig:
    """Optimiser and data settings of the built-in trainer."""

    segment_frames: int = 32  # random crops of this many mel frames (x hop samples)
    # true: a crop starts at any sample and its mel is computed from it (as Vocos does); false:
    # crops start on the clip's mel frame grid, so each frame is seen in one position only
    any_sample_crops: bool = False
    # Kaldi-style speed perturbation: each training clip is also resampled by these factors
    # (1.1: 10 % faster and higher), which moves F0 and formants; [1.0]: the clips as they are
    speed_factors: List[float] = field(default_factory=lambda: [1.0])
    # WORLD copies of each clip with F0 times these factors, envelope kept (0.6: a lower voice)
    pitch_factors: List[float] = field(default_factory=list)
    batch_size: int = 8
    lr: float = 2.0e-4
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    # parameters left as they are: names or prefixes up to a dot, as ESPnet's --freeze_param
    freeze: List[str] = field(default_factory=list)


@dataclass
class InferenceConfig:
    schedule: str = "WG-6"  # WG-3 | WG-6 | PG-6 | WG-50 | LJ-3 | LJ2-3 | comma-separated betas
    # Longer inputs run the denoiser in chunks of this many frames (plus context): same output
    chunk_frames: int = 1000
    # MB of conditioning kept for all sampler steps (the utterance's, or the chunks' together); past it, per step
    conditioning_cache_mb: int = 1024
    # CUDA: TF32 matmuls and convolutions in inference (false: full float32)
    allow_tf32: bool = True
    # the training voice's [5th, 95th] percentile F0 (Hz, pitch.mel_f0): outside it, a warning
    voice_f0_hz: List[float] = field(default_factory=list)
    # a mel further than this from the training level is vocoded at it, scaled back (0: off)
    level_match_db: float = 6.0
    # start the sampler from this many Griffin-Lim iterations on the mel, noised (0: noise only)
    start_iterations: int = 0
    # after the sampler, this many steps of a gain per mel band on the output's STFT that bring
    # its mel to the input mel, phase kept (mel_gain.match_mel; 0: off)
    mel_gain_iterations: int = 0
    # the most one step may raise or lower a band (dB)
    mel_gain_max_db: float = 20.0


@dataclass
class SpecGradConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    denoiser: DenoiserConfig = field(default_factory=WaveNetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]], source: str = "<dict>") -> "SpecGradConfig":
        """Build from a (possibly partial) nested dict; unknown keys raise ConfigError."""
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        kwargs = {}
        sections = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in data.items():
            if name not in sections:
                raise ConfigError(f"{source}: unknown section '{name}'; expected one of {sorted(sections)}")
            factory = sections[name].default_factory
            if name == "denoiser" and isinstance(value, dict):
                value = denoiser_section(value, f"{source}:{name}")
                factory = DENOISER_CONFIGS[value.get("kind", "wavenet")]
            kwargs[name] = _build_section(factory, value, f"{source}:{name}")
        config = cls(**kwargs)
        config.validate(source)
        return config

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "SpecGradConfig":
        """A preset (sections at the top) or the config.yaml of an ESPnet run (sections in model_conf)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        with open(path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f)
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML ({e})") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{path}: not a text file (not UTF-8), expected a YAML config") from None
        if isinstance(data, dict) and "model_conf" in data:
            return cls.from_dict(espnet_conf.model_section(data), source=f"{path}:model_conf")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_preset(cls, preset: Union[str, Path]) -> "SpecGradConfig":
        """A shipped preset by name ('frame', 'base', 'tiny'), a shipped model's config by tag
        ('specgrad/ljspeech') or a YAML file (:meth:`from_yaml`)."""
        from specgrad_plugin import presets

        try:
            return cls.from_yaml(presets.resolve(preset))
        except presets.UnknownPresetError as e:
            raise ConfigError(str(e)) from None

    def to_yaml(self, path: Union[str, Path]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
        tmp.replace(path)

    def validate(self, source: str = "<config>") -> None:
        p, d, feat = self.prior, self.diffusion, self.features
        kind = getattr(self.denoiser, "kind", None)
        if not isinstance(self.denoiser, DENOISER_CONFIGS.get(kind, ())):
            raise ConfigError(f"{source}: denoiser.kind={kind!r} in a {type(self.denoiser).__name__}, expected "
                              + " or ".join(f"{k} in a {c.__name__}" for k, c in DENOISER_CONFIGS.items()))
        # 0 where the features are wrong themselves: their own check below says so
        hop_ok = type(feat.hop_length) is int and feat.hop_length > 0 and feat.fs > 0
        max_segment = int(MAX_SEGMENT_SECONDS * feat.fs) // feat.hop_length if hop_ok else 0
        checks = self.denoiser.checks(feat) + [
            (p.kind in ("specgrad", "priorgrad", "diffwave"),
             f"prior.kind={p.kind!r}, expected specgrad|priorgrad|diffwave"),
            (p.phase in ("minimum", "zero"), f"prior.phase={p.phase!r}, expected minimum|zero"),
            (0 <= p.white_mix <= 1, f"prior.white_mix={p.white_mix}, expected 0..1"),
            (0 < p.lifter_order <= feat.n_fft // 2, f"prior.lifter_order={p.lifter_order}, expected 1..n_fft/2"),
            (p.floor_db < 0, f"prior.floor_db={p.floor_db}, expected < 0 dB"),
            (0 <= p.harmonic_depth_db <= MAX_HARMONIC_DEPTH_DB,
             f"prior.harmonic_depth_db={p.harmonic_depth_db}, expected 0 (off) to {MAX_HARMONIC_DEPTH_DB} dB "
             f"(the Hann window's sidelobes: a deeper comb is not what its STFT can draw)"),
            (p.harmonic_depth_db == 0 or p.kind == "specgrad",
             f"prior.harmonic_depth_db={p.harmonic_depth_db} with prior.kind={p.kind!r}: the comb shapes "
             f"SpecGrad's filter; expected kind specgrad or depth 0"),
            (0 < p.harmonic_cutoff_hz < feat.fs / 2,
             f"prior.harmonic_cutoff_hz={p.harmonic_cutoff_hz}, expected 0 < cutoff < {feat.fs / 2:g} Hz (fs / 2)"),
            (0 < d.beta_start < d.beta_end < 1,
             f"diffusion betas {d.beta_start}..{d.beta_end}, expected 0 < start < end < 1"),
            (d.steps >= 2 and d.extra_steps >= 0,
             f"diffusion.steps={d.steps}, extra_steps={d.extra_steps}; expected steps >= 2, extra_steps >= 0"),
            (0 < d.min_alpha_bar < 1, f"diffusion.min_alpha_bar={d.min_alpha_bar}, expected 0..1"),
            (0 <= d.below_share < 1, f"diffusion.below_share={d.below_share}, expected 0 <= share < 1"),
            (d.aux_stft_weight >= 0, f"diffusion.aux_stft_weight={d.aux_stft_weight}, expected >= 0"),
            (min(d.sampler_loss_weight, d.sampler_loss_phase_weight, d.sampler_loss_adversarial_weight,
                 d.sampler_loss_frame_periodic_weight, d.sampler_loss_fundamental_weight,
                 d.sampler_loss_periodicity_weight) >= 0,
             f"diffusion.sampler_loss_weight={d.sampler_loss_weight}, "
             f"sampler_loss_phase_weight={d.sampler_loss_phase_weight}, "
             f"sampler_loss_frame_periodic_weight={d.sampler_loss_frame_periodic_weight}, "
             f"sampler_loss_fundamental_weight={d.sampler_loss_fundamental_weight}, "
             f"sampler_loss_periodicity_weight={d.sampler_loss_periodicity_weight}, "
             f"sampler_loss_adversarial_weight={d.sampler_loss_adversarial_weight}, expected >= 0"),
            (d.sampler_loss_adversarial_weight == 0 or d.sampler_loss_weight > 0,
             f"diffusion.sampler_loss_adversarial_weight={d.sampler_loss_adversarial_weight} with "
             f"sampler_loss_weight=0: the critic judges the sampler loss's output; expected sampler_loss_weight > 0"),
            (feat.hop_length % sampler_loss.DECIMATION == 0 or d.sampler_loss_frame_periodic_weight == 0,
             f"features.hop_length={feat.hop_length} with sampler_loss_frame_periodic_weight, expected a "
             f"multiple of the sampler loss's decimation, {sampler_loss.DECIMATION}"),
            (d.loss_band_weighting in ("flat", "mel", "erb"),
             f"diffusion.loss_band_weighting={d.loss_band_weighting!r}, expected flat|mel|erb"),
            (self.inference.level_match_db >= 0,
             f"inference.level_match_db={self.inference.level_match_db}, expected >= 0 dB (0: off)"),
            (self.inference.start_iterations >= 0,
             f"inference.start_iterations={self.inference.start_iterations}, expected >= 0 (0: off)"),
            (type(self.inference.mel_gain_iterations) is int and self.inference.mel_gain_iterations >= 0,  # not bool
             f"inference.mel_gain_iterations={self.inference.mel_gain_iterations}, expected a whole number >= 0 "
             f"(0: off)"),
            (self.inference.mel_gain_iterations == 0 or feat.win_length == feat.n_fft,
             f"inference.mel_gain_iterations={self.inference.mel_gain_iterations} with features.win_length="
             f"{feat.win_length} != n_fft={feat.n_fft}: the gain measures the mel with an n_fft Hann window; "
             f"expected win_length == n_fft, or 0 steps"),
            (self.inference.mel_gain_max_db > 0,
             f"inference.mel_gain_max_db={self.inference.mel_gain_max_db}, expected > 0 dB"),
            (_is_range(self.inference.voice_f0_hz),
             f"inference.voice_f0_hz={self.inference.voice_f0_hz}, expected [] or [low, high] Hz"),
            (type(self.train.segment_frames) is int  # not bool
             and self.train.segment_frames >= 1 and (max_segment == 0 or self.train.segment_frames <= max_segment),
             f"train.segment_frames={self.train.segment_frames}, expected a whole number of frames from 1 to "
             f"{max_segment} ({MAX_SEGMENT_SECONDS} s at hop {feat.hop_length}, {feat.fs} Hz; a vocoder trains "
             "on crops of about a second)"),
            (len(self.train.speed_factors) > 0
             and all(isinstance(f, (int, float)) and 0.5 <= f <= 2.0 for f in self.train.speed_factors),
             f"train.speed_factors={self.train.speed_factors}, expected a list of factors in 0.5..2"),
            (all(isinstance(f, (int, float)) and 0.25 <= f <= 4.0 for f in self.train.pitch_factors),
             f"train.pitch_factors={self.train.pitch_factors}, expected a list of F0 factors in 0.25..4"),
            (feat.fmax <= feat.fs / 2 and 0 <= feat.fmin < feat.fmax,
             f"features fmin={feat.fmin}, fmax={feat.fmax}, expected 0 <= fmin < fmax <= fs/2"),
            (feat.n_mels > 0 and 0 < feat.win_length <= feat.n_fft and feat.hop_length > 0,
             f"features n_mels={feat.n_mels}, win_length={feat.win_length}, n_fft={feat.n_fft}, hop_length="
             f"{feat.hop_length}, expected n_mels > 0, 0 < win_length <= n_fft and hop_length > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{source}: {message}")
        problem = diffusion.below_share_problem(d)
        if problem:
            raise ConfigError(f"{source}: {problem}")
        try:
            diffusion.inference_betas(d.sampler_loss_schedule)
        except ValueError as e:
            raise ConfigError(f"{source}: diffusion.sampler_loss_{e}") from None
        try:
            betas = diffusion.inference_betas(self.inference.schedule)
        except ValueError as e:
            raise ConfigError(f"{source}: inference.{e}") from None
        problem = diffusion.untrained_start(betas, d)
        if problem:
            raise ConfigError(f"{source}: inference.schedule={self.inference.schedule!r} {problem} "
                              "(diffusion.min_alpha_bar)")


def merge_sections(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """``override`` over ``base``, section by section: a partial section keeps the rest of
    base's, but a denoiser section naming another kind than base's replaces it whole."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if key == "denoiser" and isinstance(old, dict) and isinstance(value, dict) \
                and value.get("kind", old.get("kind", "wavenet")) != old.get("kind", "wavenet"):
            merged[key] = dict(value)
        elif isinstance(value, dict) and isinstance(old, dict):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


def _is_range(values: List[float]) -> bool:
    """[] or [low, high] with 0 < low < high."""
    return values == [] or (len(values) == 2 and 0 < values[0] < values[1])


def _build_section(factory, value: Any, source: str):
    default = factory()
    if value is None:
        return default
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: expected a mapping, got {value!r}")
    names = {f.name for f in dataclasses.fields(default)}
    for key, item in value.items():
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{key}'; expected one of {sorted(names)}")
        expected = type(getattr(default, key))
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise ConfigError(
                f"{source}: key '{key}' = {item!r} has type {type(item).__name__}, expected {expected.__name__}"
            )
        setattr(default, key, item)
    return default
