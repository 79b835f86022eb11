"""SpecGrad as the vocoder of ESPnet's Text2Speech / tts_inference.

ESPnet has no vocoder registry: ``TTSTask.build_vocoder_from_file`` knows
Griffin-Lim and ParallelWaveGAN ``.pkl`` files only. ``register()`` wraps it so
that SpecGrad checkpoints load and every other file falls through to ESPnet's
own code unchanged. ``specgrad_plugin.autoload`` calls it when
``espnet2.tasks.tts`` is first imported, so the unmodified
``python -m espnet2.bin.tts_inference --vocoder_file <ours>`` works after install.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
import yaml

from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.vocoder import SpecGradVocoder

# ESPnet's feats_extract.get_parameters() names -> ours
_TTS_KEYS = {"fs": "fs", "n_fft": "n_fft", "n_shift": "hop_length", "n_mels": "n_mels", "fmin": "fmin", "fmax": "fmax"}


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


def check_tts_features(tts_params: Dict[str, Any], ours: FeatureConfig, source: str = "vocoder") -> None:
    """Fail, naming both values, when the TTS model's mel settings differ from the vocoder's."""
    mismatches = []
    for tts_key, our_key in _TTS_KEYS.items():
        theirs = tts_params.get(tts_key)
        mine = getattr(ours, our_key)
        if theirs is not None and float(theirs) != float(mine):
            mismatches.append(f"{tts_key}: TTS model {theirs} vs vocoder {mine}")
    if mismatches:
        raise SpecGradInputError(
            f"{source}: the TTS model's features do not match the vocoder's ({'; '.join(mismatches)}); "
            "use a vocoder trained on the same feature settings"
        )


def is_specgrad_file(vocoder_file: Union[str, Path], vocoder_config_file: Optional[Union[str, Path]]) -> bool:
    """True for our checkpoints: by their config (ESPnet run or preset), or by their content."""
    path = Path(vocoder_file)
    if path.suffix == ".pkl" or not path.is_file():
        return False
    config = Path(vocoder_config_file) if vocoder_config_file else path.parent / "config.yaml"
    if config.is_file():
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            return False
        sections = data.get("model_conf", data) if isinstance(data, dict) else {}
        return isinstance(sections, dict) and "denoiser" in sections and "prior" in sections
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(payload, dict) and isinstance(payload.get("config"), dict) and "prior" in payload["config"]


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


def register(tts_task=None) -> None:
    """Wrap ``TTSTask.build_vocoder_from_file`` (idempotent)."""
    if tts_task is None:
        from espnet2.tasks.tts import TTSTask as tts_task
    original = tts_task.build_vocoder_from_file
    if getattr(original, "_specgrad", False):
        return

    def build_vocoder_from_file(cls, vocoder_config_file=None, vocoder_file=None, model=None, device="cpu"):
        if vocoder_file is not None and is_specgrad_file(vocoder_file, vocoder_config_file):
            return load_tts_vocoder(vocoder_file, vocoder_config_file, model, device)
        return original.__func__(cls, vocoder_config_file, vocoder_file, model, device)

    build_vocoder_from_file._specgrad = True
    tts_task.build_vocoder_from_file = classmethod(build_vocoder_from_file)
