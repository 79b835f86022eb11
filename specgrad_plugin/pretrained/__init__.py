"""Trained models shipped inside the package, loaded by name and offline.

    SpecGradVocoder.from_pretrained("ljspeech")            # or "specgrad/ljspeech"
    Text2Speech.from_pretrained(..., vocoder_tag="specgrad/ljspeech")   # after import specgrad_plugin
    python -m espnet2.bin.tts_inference ... --vocoder_tag specgrad/ljspeech

Each model is a folder here: ``model.pth`` (config + EMA weights, the denoiser stored in
float16 to stay small; loaded as float32), ``config.yaml`` (the same config, for
``--vocoder_config``) and ``README.md``, its model card (data, command, steps, scores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import torch

ROOT = Path(__file__).resolve().parent
TAG_PREFIX = "specgrad/"
# name -> one line for listings
MODELS: Dict[str, str] = {
    "ljspeech": "LJSpeech (22.05 kHz, 80-band log10 mel of ESPnet's LJSpeech TTS recipes), frame-rate denoiser",
}


class UnknownModelError(ValueError):
    """A pretrained name that is not shipped."""


def names() -> List[str]:
    return sorted(MODELS)


def is_tag(tag: str) -> bool:
    return isinstance(tag, str) and tag.startswith(TAG_PREFIX)


def resolve(name: str) -> Tuple[Path, Path]:
    """'ljspeech' or 'specgrad/ljspeech' -> (model.pth, config.yaml) of the shipped model."""
    key = name[len(TAG_PREFIX):] if is_tag(name) else name
    if key not in MODELS:
        raise UnknownModelError(
            f"pretrained SpecGrad model {name!r} is not shipped; available: "
            + ", ".join(f"{n} ({TAG_PREFIX}{n})" for n in names())
        )
    folder = ROOT / key
    weights, config = folder / "model.pth", folder / "config.yaml"
    if not weights.is_file() or not config.is_file():
        raise UnknownModelError(f"{folder}: the package lacks this model's files (model.pth, config.yaml)")
    return weights, config


def export(vocoder, folder: Path) -> Path:
    """Write ``vocoder`` (EMA weights) as a shippable folder: model.pth with the denoiser in
    float16 and everything else (level and mel statistics) in float32, and config.yaml."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if k.startswith("denoiser.") and v.is_floating_point() else v).clone()
        for k, v in vocoder.state_dict().items()
    }
    tmp = folder / "model.pth.tmp"
    torch.save({"config": vocoder.cfg.to_dict(), "model": state}, tmp)
    tmp.replace(folder / "model.pth")
    vocoder.cfg.to_yaml(folder / "config.yaml")
    return folder / "model.pth"
