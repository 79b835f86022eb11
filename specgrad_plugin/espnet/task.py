"""SpecGradTask: an ESPnet AbsTask for training the vocoder on ``speech`` (wav.scp).

    python -m specgrad_plugin.bin.train --collect_stats true ...   # feats + energy histograms
    python -m specgrad_plugin.bin.train --config conf/train.yaml \\
        --model_conf prior_stats_file=exp/stats/train/energy_hist_stats.npz ...

``model_conf`` holds the sections of SpecGradConfig (features, prior, diffusion,
denoiser, inference) plus the crop keys (``segment_frames``, ``any_sample_crops``,
``speed_factors``), the statistics files and ``init_from`` (fine-tuning: a shipped
model's tag, specgrad/<name>, or a checkpoint).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none

from specgrad_plugin.checkpoints import CheckpointError
from specgrad_plugin.checks import SpecGradInputError, check_audio
from specgrad_plugin.config import ConfigError, SpecGradConfig, merge_sections
from specgrad_plugin.data import check_sound_scp, read_scp
from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.espnet.trainer import DiffusionTrainer, check_options, refuse_changed_resume
from specgrad_plugin.espnet_conf import ESPNET_CROP_KEYS


def default_model_conf() -> Dict:
    conf = SpecGradConfig().to_dict()
    # ESPnet's own options (optim, batch, grad_clip, seed) take the train section's place, but its crops
    conf.update(crop_conf(conf.pop("train")), prior_stats_file=None, mel_stats_file=None, init_from=None)
    return conf


def crop_conf(train: Dict) -> Dict:
    """The keys of a train section that go to model_conf: the model cuts the crops. WORLD
    copies (pitch_factors) are built once with training.fit's dataset; ESPnet's per-utterance
    crops have none, so a section asking for them is told so, not silently obeyed."""
    if train.get("pitch_factors"):
        logging.warning("train.pitch_factors=%s is not used by ESPnet training (training.fit only: "
                        "bench/prior_study.py train)", train["pitch_factors"])
    return {k: train[k] for k in ESPNET_CROP_KEYS}


class AudioChecker:
    """ESPnet preprocess_fn: one readable error per bad utterance (checks.check_audio), before
    any model code."""

    def __init__(self, hop_length: int, n_fft: int, sources: Optional[Dict[str, str]] = None) -> None:
        """sources: utterance id -> where it comes from ("<file> in <wav.scp>"), for the messages."""
        self.hop_length, self.n_fft, self.sources = hop_length, n_fft, sources or {}

    def __call__(self, uid: str, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        # n_fft: --collect_stats takes the mel of the whole utterance
        name = f"utterance {uid}" + (f" ({self.sources[uid]})" if uid in self.sources else "")
        data["speech"] = check_audio(data["speech"], self.hop_length, name=name, n_fft=self.n_fft)
        return data


# Bad data, config or checkpoint: the user's to mend, so one line and this exit status, no traceback
USER_ERRORS = (SpecGradInputError, ConfigError, CheckpointError)
USER_ERROR_EXIT = 2


class SpecGradTask(AbsTask):
    num_optimizers: int = 1
    class_choices_list = []
    trainer = DiffusionTrainer

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        """ESPnet's worker, with USER_ERRORS as one line on stderr and exit status 2. Here and not
        in bin.train: under --multiprocessing_distributed each rank runs this in a spawned process."""
        try:
            super().main_worker(args)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT)

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default={},
            help="SpecGrad model, overriding --preset and the defaults key by key (e.g. prior.kind=priorgrad): "
            "features/prior/diffusion/denoiser/inference sections, segment_frames, any_sample_crops, "
            "prior_stats_file (energy_hist_stats.npz), mel_stats_file (feats_stats.npz). "
            f"Defaults: {default_model_conf()}",
        )
        group.add_argument(
            "--preset",
            type=str_or_none,
            default=None,
            help="a model preset: a name (frame, base, tiny: specgrad_plugin/presets), a shipped model's "
            "tag (specgrad/ljspeech) or a YAML file; its model sections, train.segment_frames and "
            "train.any_sample_crops become "
            "the defaults of --model_conf; the complete model_conf is written to config.yaml",
        )
        group.add_argument("--use_preprocessor", type=str2bool, default=True, help="check each utterance")
        # Vocoder batches are fixed-length crops: no length folding, and no attention to plot.
        parser.set_defaults(batch_type="unsorted", num_att_plot=0)

    @classmethod
    def build_collate_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Callable[[Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]]:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Optional[Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]]:
        if not args.use_preprocessor:
            return None
        features = _model_conf(args)["features"]
        sources = {}  # both lists (collect-stats reads the training list with train=False too); the
        # training list last, so that an id in both names its training file
        for path, _, kind in list(getattr(args, "valid_data_path_and_name_and_type", None) or []) + list(
            getattr(args, "train_data_path_and_name_and_type", None) or []
        ):
            if kind == "sound":  # build_model's header checks have parsed these lists already
                sources.update({uid: f"{wav} in {path}" for uid, wav in read_scp(path).items()})
        return AudioChecker(features["hop_length"], features["n_fft"], sources)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetSpecGradModel:
        conf = _model_conf(args)
        for path, _, kind in list(getattr(args, "train_data_path_and_name_and_type", None) or []) + list(
            getattr(args, "valid_data_path_and_name_and_type", None) or []
        ):
            if kind == "sound":  # every file, header only: one error listing the bad ones
                check_sound_scp(path, conf["features"]["fs"], conf["features"]["hop_length"],
                                conf["features"]["n_fft"])
        known = set(inspect.signature(ESPnetSpecGradModel.__init__).parameters) - {"self"}
        unknown = sorted(set(conf) - known)
        if unknown:
            raise ConfigError(f"model_conf (--config / --model_conf): unknown keys {unknown}; expected some of "
                              f"{sorted(known)}")
        model = ESPnetSpecGradModel(**conf)
        # config.yaml then holds the complete model, preset resolved, only the chosen family's keys
        args.model_conf = {**conf, **{k: v for k, v in model.cfg.to_dict().items() if k in conf}}
        return model

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: ESPnetSpecGradModel) -> List[torch.optim.Optimizer]:
        """Only the trained vocoder's parameters: the EMA copy is not optimised. Training only
        (ESPnet builds optimisers after the model and before it rewrites config.yaml): a resume
        whose config trains another model is refused here (trainer.refuse_changed_resume)."""
        if not args.collect_stats:
            check_options(args)  # the trainer's flags: a bad one leaves no config.yaml behind
            refuse_changed_resume(Path(args.output_dir), model.cfg, bool(getattr(args, "resume", False)))
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"--optim {args.optim}: expected one of {sorted(optim_classes)}")
        return [optim_class(model.vocoder.parameters(), **args.optim_conf)]

    @classmethod
    def build_sequence_iter_factory(cls, args: argparse.Namespace, iter_options, mode: str):
        factory = super().build_sequence_iter_factory(args, iter_options, mode)
        if mode == "train" and iter_options.batch_type in ("unsorted", "sorted", "folded"):
            warn_on_merged_batches([len(b) for b in factory.sampler.generate(0)], iter_options.batch_size)
        return factory


def warn_on_merged_batches(sizes: List[int], batch_size: int) -> Optional[str]:
    """ESPnet's samplers spread a corpus' remainder over len // batch_size batches, so a
    corpus of fewer than 2 * batch_size utterances becomes one batch of all of them; the
    model cuts one crop per utterance, so each update then has that many crops, not
    batch_size. Returns the warning, if any."""
    largest = max(sizes, default=0)
    if largest <= 1.25 * batch_size:
        return None
    message = (f"--batch_size {batch_size}: ESPnet's sampler made {len(sizes)} batch(es) of up to {largest} "
               f"utterances (one crop each per update); a corpus this small gets batch_size crops only with "
               f"a batch_size that divides it into batches of about that size")
    logging.warning(message)
    return message


def _model_conf(args: argparse.Namespace) -> Dict:
    """defaults <- --preset <- --model_conf, merged section by section (a partial section keeps
    the rest; a denoiser section naming another kind replaces the section)."""
    conf = default_model_conf()
    layers = []
    if getattr(args, "preset", None):
        preset = SpecGradConfig.from_preset(args.preset).to_dict()
        preset.update(crop_conf(preset.pop("train")))
        layers.append(preset)
    layers.append(args.model_conf or {})
    for layer in layers:
        conf = merge_sections(conf, layer)
    return conf
