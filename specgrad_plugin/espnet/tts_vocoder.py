"""SpecGrad as the vocoder of ESPnet's Text2Speech / tts_inference.

ESPnet has no vocoder registry: ``TTSTask.build_vocoder_from_file`` knows
Griffin-Lim and ParallelWaveGAN ``.pkl`` files only. ``register()`` wraps it so
that SpecGrad checkpoints load and every other file falls through to ESPnet's
own code unchanged, and adds the ``specgrad/<name>`` vocoder tags of the models
shipped in the package (ESPnet itself accepts only ``parallel_wavegan/`` tags).
``specgrad_plugin.autoload`` calls it when ``espnet2.tasks.tts`` or
``espnet2.bin.tts_inference`` is first imported, so the unmodified
``python -m espnet2.bin.tts_inference --vocoder_file <ours>`` (or ``--vocoder_tag
specgrad/ljspeech``) works after install.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from specgrad_plugin import pretrained
from specgrad_plugin.checkpoints import is_specgrad_file
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.vocoder import SpecGradVocoder

# ESPnet's feats_extract.get_parameters() names -> ours
_TTS_KEYS = {"fs": "fs", "n_fft": "n_fft", "n_shift": "hop_length", "win_length": "win_length", "n_mels": "n_mels",
             "fmin": "fmin", "fmax": "fmax"}


class SpecGradTTSVocoder(torch.nn.Module):
    """The vocoder contract of Text2Speech: (T, n_mels) denormalised log10 mel -> (T * hop,) at ``fs``."""

    def __init__(self, vocoder: SpecGradVocoder, schedule: Optional[str] = None, seed: Optional[int] = 0) -> None:
        super().__init__()
        self.vocoder = vocoder.eval()
        self.schedule = schedule
        self.seed = seed

    @property
    def fs(self) -> int:
        return self.vocoder.fs

    @torch.no_grad()
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() != 2:
            raise SpecGradInputError(f"TTS features of shape {tuple(feats.shape)}, expected (frames, n_mels)")
        return self.vocoder(feats, schedule=self.schedule, seed=self.seed)


def resolved_tts_features(tts_params: Dict[str, Any]) -> Dict[str, Any]:
    """The mel settings ESPnet's LogMelFbank computes with: a null win_length is n_fft, a null
    fmin 0 Hz and a null fmax fs / 2 (espnet2.layers.stft, espnet2.layers.log_mel). Keys the
    feature extractor does not report stay absent."""
    params = dict(tts_params)
    if "win_length" in params and params["win_length"] is None and params.get("n_fft") is not None:
        params["win_length"] = params["n_fft"]
    if "fmin" in params and params["fmin"] is None:
        params["fmin"] = 0
    if "fmax" in params and params["fmax"] is None and params.get("fs") is not None:
        params["fmax"] = float(params["fs"]) / 2
    return params


def check_tts_features(tts_params: Dict[str, Any], ours: FeatureConfig, source: str = "vocoder") -> None:
    """Fail, naming both values, when the TTS model's mel settings (as ESPnet resolves them:
    resolved_tts_features) differ from the vocoder's, its window included (ours is Hann)."""
    params = resolved_tts_features(tts_params)
    mismatches = []
    for tts_key, our_key in _TTS_KEYS.items():
        theirs = params.get(tts_key)
        mine = getattr(ours, our_key)
        if theirs is not None and float(theirs) != float(mine):
            mismatches.append(f"{tts_key}: TTS model {theirs} vs vocoder {mine}")
    if params.get("window", "hann") != "hann":
        window = "null (rectangular)" if params["window"] is None else params["window"]
        mismatches.append(f"window: TTS model {window} vs vocoder hann")
    if mismatches:
        raise SpecGradInputError(
            f"{source}: the TTS model's features do not match the vocoder's ({'; '.join(mismatches)}); "
            "use a vocoder trained on the same feature settings"
        )


def load_tts_vocoder(
    vocoder_file: Union[str, Path],
    vocoder_config_file: Optional[Union[str, Path]] = None,
    tts_model: Optional[torch.nn.Module] = None,
    device: str = "cpu",
) -> SpecGradTTSVocoder:
    vocoder = SpecGradVocoder.from_checkpoint(vocoder_file, config=vocoder_config_file, device=device)
    feats_extract = getattr(tts_model, "feats_extract", None)
    if feats_extract is not None:
        check_tts_features(feats_extract.get_parameters(), vocoder.cfg.features, source=str(vocoder_file))
    logging.info("SpecGrad vocoder from %s (schedule %s)", vocoder_file, vocoder.cfg.inference.schedule)
    return SpecGradTTSVocoder(vocoder).to(device)


def register(module=None) -> None:
    """Hook SpecGrad into an ESPnet module (idempotent): espnet2.tasks.tts (the default) gets
    a vocoder loader that knows our checkpoints; espnet2.bin.tts_inference gets the
    ``specgrad/<name>`` vocoder tags of the shipped models."""
    if module is None:
        import espnet2.tasks.tts as module
    if hasattr(module, "TTSTask"):
        register_loader(module.TTSTask)
        main = sys.modules.get("__main__")
        if getattr(getattr(main, "__spec__", None), "name", None) == "espnet2.bin.tts_inference":
            # `python -m espnet2.bin.tts_inference` runs the module as __main__, which no import
            # hook reaches (and whose Text2Speech is not defined yet): its parser turns the tag
            # into the shipped files instead, from the command line or from a --config YAML.
            from espnet2.utils import config_argparse

            register_parser(config_argparse.ArgumentParser)
    if hasattr(module, "Text2Speech"):
        register_tags(module.Text2Speech)


def _loader_arguments(vocoder_config_file=None, vocoder_file=None, model=None, device="cpu", *_, **__):
    """The arguments of ESPnet's build_vocoder_from_file that we read; others pass through."""
    return vocoder_config_file, vocoder_file, model, device


def register_loader(tts_task) -> None:
    """Wrap ``TTSTask.build_vocoder_from_file`` (idempotent)."""
    original = tts_task.build_vocoder_from_file
    if getattr(original, "_specgrad", False):
        return

    def build_vocoder_from_file(cls, *args, **kwargs):
        try:
            config_file, vocoder_file, model, device = _loader_arguments(*args, **kwargs)
        except TypeError:  # arguments ESPnet's own loader will report
            vocoder_file = None
        if vocoder_file is not None and is_specgrad_file(vocoder_file, config_file):
            return load_tts_vocoder(vocoder_file, config_file, model, device)
        return original.__func__(cls, *args, **kwargs)

    build_vocoder_from_file._specgrad = True
    tts_task.build_vocoder_from_file = classmethod(build_vocoder_from_file)


def register_tags(text2speech) -> None:
    """Wrap ``Text2Speech.from_pretrained`` so that vocoder_tag="specgrad/<name>" loads a shipped
    model; every other tag goes to ESPnet unchanged (idempotent)."""
    original = text2speech.from_pretrained
    if getattr(original, "_specgrad", False):
        return

    def from_pretrained(*args, **kwargs):
        args = list(args)
        positional = len(args) > 1  # ESPnet's order: model_tag, vocoder_tag, **kwargs
        vocoder_tag = args[1] if positional else kwargs.get("vocoder_tag")
        if isinstance(vocoder_tag, str) and pretrained.is_tag(vocoder_tag):
            weights, config = pretrained.resolve(vocoder_tag)
            if positional:
                args[1] = None
            else:
                kwargs["vocoder_tag"] = None
            kwargs.update(vocoder_file=weights, vocoder_config=config)
        return original(*args, **kwargs)

    from_pretrained._specgrad = True
    text2speech.from_pretrained = staticmethod(from_pretrained)


def register_parser(parser_class) -> None:
    """Wrap ``parse_known_args`` of ESPnet's config_argparse.ArgumentParser (idempotent): a parsed
    vocoder_tag specgrad/<name>, given on the command line or in the --config YAML, becomes
    vocoder_file and vocoder_config of the shipped model; an unknown name is a one-line error."""
    original = parser_class.parse_known_args
    if getattr(original, "_specgrad", False):
        return

    def parse_known_args(self, *args, **kwargs):
        namespace, rest = original(self, *args, **kwargs)
        vocoder_tag = getattr(namespace, "vocoder_tag", None)
        if isinstance(vocoder_tag, str) and pretrained.is_tag(vocoder_tag):
            try:
                weights, config = pretrained.resolve(vocoder_tag)
            except pretrained.UnknownModelError as e:  # the command line's error: one line, no traceback
                print(f"error: --vocoder_tag: {e}", file=sys.stderr)
                raise SystemExit(2) from None
            namespace.vocoder_file, namespace.vocoder_config = str(weights), str(config)
            namespace.vocoder_tag = None
        return namespace, rest

    parse_known_args._specgrad = True
    parser_class.parse_known_args = parse_known_args
