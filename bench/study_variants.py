"""The variants of bench/prior_study.py: each one's overrides on the study's preset (or on
a shipped model's config, when fine-tuning it), and what each is compared with.

    cfg = variant_config("frame_any_sample_melloss_low")          # a study run's config
    cfg = variant_config("finetune_sampler_low", vocoder.cfg)     # a fine-tune of a shipped model
"""

from __future__ import annotations

from typing import Dict, Optional

from specgrad_plugin import presets
from specgrad_plugin.config import SpecGradConfig

PRESET = presets.resolve("tiny")
FRAME_PRESET = presets.resolve("frame")
# Each variant differs from the preset (specgrad, -40 dB floor, white mix 0.2, minimum
# phase, full L^-1 loss weighting) in one setting. Variants named frame* start from the
# frame-rate preset instead (denoiser study, docs/denoisers.md).
# The frame variants' diffusion settings: the WaveNet presets' training levels (5 equal-beta
# steps down to abar 1e-3) and the paper's flat loss weighting, whatever the preset says now.
STUDY_DIFFUSION = {"extra_steps": 5, "min_alpha_bar": 1.0e-3, "below_share": 0.0, "loss_band_weighting": "flat"}
# ... and one trunk: the frame preset's low-band trunk only where a variant names it.
STUDY_FRAME_DENOISER = {"frame_low_band_hz": 0.0}
# every parameter of the frame model but the low-band trunk's
FROZEN_BUT_LOW_TRUNK = ["denoiser.trunk", "denoiser.level_embedding", "denoiser.gain_bias"]
SAMPLER_LOW = {"train": {"lr": 2.0e-4, "batch_size": 8, "freeze": FROZEN_BUT_LOW_TRUNK},
               "diffusion": {"sampler_loss_weight": 1.0, "sampler_loss_schedule": "WG-6"}}
SAMPLER_LOW_PITCH_DOWN = {**SAMPLER_LOW, "train": {**SAMPLER_LOW["train"], "speed_factors": [0.6, 0.8, 1.0]}}
# ... with every weight trained (the paper's loss beside the sampler loss)
SAMPLER_PITCH_DOWN = {**SAMPLER_LOW_PITCH_DOWN, "train": {**SAMPLER_LOW_PITCH_DOWN["train"], "freeze": []}}
# the shipped family: crops at any sample, the mel-weighted loss, the low-band trunk
SHIPPED_FAMILY = {"diffusion": {**STUDY_DIFFUSION, "loss_band_weighting": "mel"}, "train": {"any_sample_crops": True},
                  "denoiser": {"frame_low_band_hz": 1000.0}}
VARIANTS: Dict[str, Dict[str, Dict[str, object]]] = {
    # the denoiser study ran with STUDY_DIFFUSION; the levels below the schedule (now the
    # frame preset's) are frame_levels
    "frame": {"diffusion": STUDY_DIFFUSION, "train": {"any_sample_crops": False}},
    "frame_levels": {"diffusion": {**STUDY_DIFFUSION, "extra_steps": 0, "min_alpha_bar": 0.05, "below_share": 0.1},
                     "train": {"any_sample_crops": False}},
    # FreGrad's auxiliary MR-STFT loss (0.1 x, on x0_hat) on the study's frame variant
    "frame_aux_stft": {"diffusion": {**STUDY_DIFFUSION, "aux_stft_weight": 0.1}, "train": {"any_sample_crops": False}},
    # crops at any sample with their own mel, not on the clips' frame grid
    "frame_any_sample": {"diffusion": STUDY_DIFFUSION, "train": {"any_sample_crops": True}},
    # and wider: 352 channels is the widest frame model under the 25 MB shipping cap (float16)
    "frame_any_sample_352": {"diffusion": STUDY_DIFFUSION, "train": {"any_sample_crops": True},
                             "denoiser": {"frame_channels": 352}},
    # and Kaldi-style speed perturbation (x0.9, x1.1 copies of every training clip): more F0s
    "frame_any_sample_speed": {"diffusion": STUDY_DIFFUSION,
                               "train": {"any_sample_crops": True, "speed_factors": [0.9, 1.0, 1.1]}},
    # and the loss weighted over frequency by the mel scale's density (the dev errors that
    # cost PESQ and V/UV are below 1 kHz: docs/low_band.md)
    "frame_any_sample_melloss": {"diffusion": {**STUDY_DIFFUSION, "loss_band_weighting": "mel"},
                                 "train": {"any_sample_crops": True}},
    # ... by the ERB-rate scale's density instead: twice the mel weights below 500 Hz
    "frame_any_sample_erbloss": {"diffusion": {**STUDY_DIFFUSION, "loss_band_weighting": "erb"},
                                 "train": {"any_sample_crops": True}},
    # melloss plus a second, narrower trunk (128 channels) of its own for the bins below 1 kHz
    "frame_any_sample_melloss_low": SHIPPED_FAMILY,
    # and the low trunk also sees a harmonic excitation at the F0 read off the mel (pitch.py)
    "frame_any_sample_melloss_low_exc": {**SHIPPED_FAMILY,
        "denoiser": {**SHIPPED_FAMILY["denoiser"], "frame_excitation": True}},
    # and the harmonic prior: SpecGrad's filter dips 12 dB between the harmonics of the mel's F0 below 1 kHz
    "frame_any_sample_melloss_low_comb": {**SHIPPED_FAMILY, "prior": {"harmonic_depth_db": 12.0}},
    # and its STFT demodulated by each bin's own phase advance per frame (no frame-rate privilege)
    "frame_any_sample_melloss_low_demod": {**SHIPPED_FAMILY,
        "denoiser": {**SHIPPED_FAMILY["denoiser"], "frame_phase_demodulation": True}},
    # the same model (the shipped family) with PriorGrad's and DiffWave's noise instead of SpecGrad's
    "frame_any_sample_melloss_low_priorgrad": {**SHIPPED_FAMILY, "prior": {"kind": "priorgrad"}},
    "frame_any_sample_melloss_low_diffwave": {**SHIPPED_FAMILY, "prior": {"kind": "diffwave"}},
    # and the frame model's STFT demodulated by each bin's own phase advance per frame
    "frame_any_sample_demod": {"diffusion": STUDY_DIFFUSION, "train": {"any_sample_crops": True},
                               "denoiser": {"frame_phase_demodulation": True}},
    # fine-tuning a shipped model (train --init ljspeech-v1): its own config, these train keys changed;
    # pitch_down adds copies of every clip slowed to x0.8 and x0.6 (F0 and formants that much lower)
    "finetune": {"train": {"lr": 2.0e-4}},
    "finetune_pitch_down": {"train": {"lr": 2.0e-4, "speed_factors": [0.6, 0.8, 1.0]}},
    # only the low-band trunk, with the sampler loss (WG-6 unrolled, the low band's MR-STFT)
    "finetune_sampler_low": SAMPLER_LOW,
    # ... and copies of every clip slowed to x0.8 and x0.6, as finetune_pitch_down
    "finetune_sampler_low_pitch_down": SAMPLER_LOW_PITCH_DOWN,
    # ... and the low trunk also sees the harmonic excitation at the mel's F0 (grown on the model)
    "finetune_sampler_low_pitch_down_exc": {**SAMPLER_LOW_PITCH_DOWN, "denoiser": {"frame_excitation": True}},
    # ... or the sampler loss also compares each bin's phase advance per hop (sampler_loss.py)
    "finetune_sampler_low_pitch_down_phase": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_phase_weight": 1.0}},
    # ... or WaveFit's GAN term on the sampler's low band: a period discriminator (critic.py)
    "finetune_sampler_low_pitch_down_adv": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_adversarial_weight": 0.2}},
    # ... at five times that weight: the adversarial loss about half the MR-STFT distance
    "finetune_sampler_low_pitch_down_adv1": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_adversarial_weight": 1.0}},
    # ... and WORLD copies of every clip at F0 x0.5 and x0.7, formants kept: lower voices
    "finetune_sampler_low_pitch_down_world": {
        **SAMPLER_LOW_PITCH_DOWN, "train": {**SAMPLER_LOW_PITCH_DOWN["train"], "pitch_factors": [0.5, 0.7]}},
    # ... and both: the WORLD copies with the phase-advance term
    "finetune_sampler_low_pitch_down_world_phase": {
        **SAMPLER_LOW_PITCH_DOWN, "train": {**SAMPLER_LOW_PITCH_DOWN["train"], "pitch_factors": [0.5, 0.7]},
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_phase_weight": 1.0}},
    # ... or the sampler starts from Griffin-Lim's audio on the mel, noised to its first level
    "finetune_sampler_low_pitch_down_glstart": {**SAMPLER_LOW_PITCH_DOWN, "inference": {"start_iterations": 16}},
    # ... or a distance between what repeats every hop in the output and in the reference
    "finetune_sampler_low_pitch_down_frameper": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_frame_periodic_weight": 0.5}},
    # ... or the sampler loss also compares the band below 1.5 F0 of the reference (sampler_loss.py)
    "finetune_sampler_low_pitch_down_fund": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_fundamental_weight": 1.0}},
    # ... or the sampler loss also compares the normalised autocorrelation at the reference's
    # period, every voiced frame and its unvoiced neighbours alike (periodicity.py)
    "finetune_sampler_low_pitch_down_periodicity": {
        **SAMPLER_LOW_PITCH_DOWN,
        "diffusion": {**SAMPLER_LOW_PITCH_DOWN["diffusion"], "sampler_loss_periodicity_weight": 5.0}},
    # ... every parameter trained (the paper's loss beside the sampler loss)
    "finetune_sampler_pitch_down": SAMPLER_PITCH_DOWN,
    # ... every parameter trained (the paper's loss beside the sampler loss) with PriorGrad's frame
    # level clipped at 0.01 instead of 0.1, so quiet voiced frames do not start under louder noise
    "finetune_sampler_pitch_down_level001": {**SAMPLER_PITCH_DOWN, "prior": {"min_level": 0.01}},
    # ... or with the harmonic prior (12 dB between the harmonics below 1 kHz), the low-band trunk alone
    "finetune_sampler_low_pitch_down_comb": {**SAMPLER_LOW_PITCH_DOWN, "prior": {"harmonic_depth_db": 12.0}},
    "specgrad": {},
    "priorgrad": {"prior": {"kind": "priorgrad"}},
    "diffwave": {"prior": {"kind": "diffwave"}},
    "sg_zero_phase": {"prior": {"phase": "zero"}},
    "sg_no_white": {"prior": {"white_mix": 0.0}},
    "sg_floor_60": {"prior": {"floor_db": -60.0}},
    "sg_half_weight": {"diffusion": {"loss_inverse_power": 0.5}},
}
# What a variant is compared with, where it is not "frame" (frame*) or "specgrad" (the rest).
REFERENCES = {"frame_any_sample_352": "frame_any_sample", "frame_any_sample_speed": "frame_any_sample",
              "frame_any_sample_melloss": "frame_any_sample", "frame_any_sample_demod": "frame_any_sample",
              "frame_any_sample_erbloss": "frame_any_sample",
              "frame_any_sample_melloss_low": "frame_any_sample_melloss",
              "frame_any_sample_melloss_low_exc": "frame_any_sample_melloss_low",
              "frame_any_sample_melloss_low_demod": "frame_any_sample_melloss_low",
              "frame_any_sample_melloss_low_comb": "frame_any_sample_melloss_low",
              "frame_any_sample_melloss_low_priorgrad": "frame_any_sample_melloss_low",
              "frame_any_sample_melloss_low_diffwave": "frame_any_sample_melloss_low",
              "finetune": "finetune", "finetune_pitch_down": "finetune",
              "finetune_sampler_low": "finetune",
              "finetune_sampler_low_pitch_down": "finetune_sampler_low",
              "finetune_sampler_low_pitch_down_exc": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_phase": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_adv": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_adv1": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_world": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_world_phase": "finetune_sampler_low_pitch_down_world",
              "finetune_sampler_low_pitch_down_glstart": "finetune_sampler_low_pitch_down",
              # the fine-tunes: on the model they fine-tune
              "finetune_sampler_low_pitch_down_frameper": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_fund": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_periodicity": "finetune_sampler_low_pitch_down",
              "finetune_sampler_pitch_down": "finetune_sampler_low_pitch_down",
              "finetune_sampler_pitch_down_level001": "finetune_sampler_low_pitch_down",
              "finetune_sampler_low_pitch_down_comb": "finetune_sampler_low_pitch_down"}
# Variants whose one choice is set in two sections: the sampler loss (diffusion) is trained
# on the low-band trunk alone, at the batch that fits its unrolled sampler (train); a lower
# level floor (prior) reaches every weight, so none is frozen (train).
CHOICES_OVER_TWO_SECTIONS = {"finetune_sampler_low", "finetune_sampler_pitch_down_level001"}


def variant_config(name: str, base: Optional[SpecGradConfig] = None) -> SpecGradConfig:
    """The variant's config: its overrides on the study's preset, or on ``base`` (a model's own
    config, when fine-tuning it)."""
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; expected one of {sorted(VARIANTS)}")
    if base is not None:
        data = base.to_dict()
    else:
        data = SpecGradConfig.from_yaml(FRAME_PRESET if name.startswith(("frame", "finetune")) else PRESET).to_dict()
    if base is None and name.startswith("frame"):
        data["denoiser"].update(STUDY_FRAME_DENOISER)
    for section, values in VARIANTS[name].items():
        data[section].update(values)
    return SpecGradConfig.from_dict(data, source=f"variant {name}")
