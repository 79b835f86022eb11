"""Trained models shipped inside the package, loaded by name and offline.

    SpecGradVocoder.from_pretrained("ljspeech")            # or "specgrad/ljspeech"
    Text2Speech.from_pretrained(..., vocoder_tag="specgrad/ljspeech")   # after import specgrad_plugin
    python -m espnet2.bin.tts_inference ... --vocoder_tag specgrad/ljspeech
    python -m specgrad_plugin.pretrained                   # lists the shipped names

Every model has a versioned name (``ljspeech-v1``) whose weights never change once
shipped; the unversioned name (``ljspeech``) is the latest version. Pin the versioned
name to keep the same vocoder across package upgrades. CHANGELOG.md lists the versions.

Each model is a folder here: ``model.pth`` (config + EMA weights, the denoiser stored in
float16 to stay small; loaded as float32), ``config.yaml`` (the same config, for
``--vocoder_config``) and ``README.md``, its model card (data, command, steps, scores).
A version that changes only part of an earlier one holds only the weights it changed, and
names the earlier version as its ``base`` (``export(..., base=)``; checkpoints.read); it
may hold those changes as int8 steps from the base's weights (``quantise_changes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import torch

ROOT = Path(__file__).resolve().parent
TAG_PREFIX = "specgrad/"


@dataclass(frozen=True)
class ShippedModel:
    folder: str  # the model's folder in this package
    released: str  # YYYY-MM-DD
    summary: str  # one line for listings


# versioned name -> model. A version's weights never change: a new version gets its own
# name and folder (ljspeech-v2/), and LATEST points its unversioned name at it.
MODELS: Dict[str, ShippedModel] = {
    "ljspeech-v1": ShippedModel(
        "ljspeech", "2026-11-28",
        "LJSpeech (22.05 kHz, 80-band log10 mel of ESPnet's LJSpeech TTS recipes), frame-rate denoiser"),
    # ljspeech-v1 with its low-band trunk fine-tuned by the sampler loss; its model.pth holds
    # only those weights and loads on top of ljspeech-v1's
    "ljspeech-v2": ShippedModel(
        "ljspeech-v2", "2026-12-04",
        "ljspeech-v1 with its low-band trunk fine-tuned on WG-6's output (the sampler loss), "
        "on LJSpeech and slowed copies of it"),
    # the mean of four fine-tunes of ljspeech-v2's low-band trunk (checkpoints.average); like
    # ljspeech-v2, its model.pth holds only that trunk and loads on top of ljspeech-v1's
    "ljspeech-v3": ShippedModel(
        "ljspeech-v3", "2026-12-04",
        "the weight average of four fine-tunes of ljspeech-v2's low-band trunk (two with WORLD "
        "copies at lower F0 and a phase term)"),
    # ljspeech-v3's weights with the gain per mel band after the sampler
    # (inference.mel_gain_iterations: 2); its model.pth holds the config alone, on top of ljspeech-v3's
    "ljspeech-v4": ShippedModel(
        "ljspeech-v4", "2026-12-05",
        "ljspeech-v3's weights, its output brought to the input mel by two gain steps per mel band"),
    # ljspeech-v4 with four gain steps instead of two (inference.mel_gain_iterations: 4); its
    # model.pth holds the config alone, on top of ljspeech-v3's
    "ljspeech-v5": ShippedModel(
        "ljspeech-v5", "2026-12-06",
        "ljspeech-v3's weights, its output brought to the input mel by four gain steps per mel band"),
}
# unversioned name -> its latest version
LATEST: Dict[str, str] = {"ljspeech": "ljspeech-v5"}


class UnknownModelError(ValueError):
    """A pretrained name that is not shipped."""


def available() -> List[str]:
    """Every name ``resolve`` takes (also with the ``specgrad/`` prefix): unversioned and versioned."""
    return sorted([*LATEST, *MODELS])


def describe() -> List[str]:
    """One line per shipped name, for listings."""
    latest = [f"{TAG_PREFIX}{name}: the latest version, {TAG_PREFIX}{version}"
              for name, version in sorted(LATEST.items())]
    return latest + [f"{TAG_PREFIX}{name}: {model.summary}, released {model.released}"
                     for name, model in sorted(MODELS.items())]


def is_tag(tag: str) -> bool:
    return isinstance(tag, str) and tag.startswith(TAG_PREFIX)


def version_of(name: str) -> str:
    """'ljspeech', 'specgrad/ljspeech', 'ljspeech-v1' ... -> the versioned name ('ljspeech-v1')."""
    key = name[len(TAG_PREFIX):] if is_tag(name) else name
    key = LATEST.get(key, key)
    if key not in MODELS:
        raise UnknownModelError(
            f"pretrained SpecGrad model {name!r} is not shipped; available: {', '.join(available())} "
            f"(each also as {TAG_PREFIX}<name>; unversioned names are the latest version)"
        )
    return key


def resolve(name: str) -> Tuple[Path, Path]:
    """A shipped name ('ljspeech', 'ljspeech-v1', with or without 'specgrad/') ->
    (model.pth, config.yaml) of that model."""
    folder = ROOT / MODELS[version_of(name)].folder
    weights, config = folder / "model.pth", folder / "config.yaml"
    if not weights.is_file() or not config.is_file():
        raise UnknownModelError(f"{folder}: the package lacks this model's files (model.pth, config.yaml)")
    return weights, config


def shipped_state(vocoder) -> Dict[str, torch.Tensor]:
    """The weights as shipped: the denoiser's in float16, the rest (statistics) as they are."""
    return {k: (v.half() if k.startswith("denoiser.") and v.is_floating_point() else v).clone()
            for k, v in vocoder.state_dict().items()}


def quantised_change(after: torch.Tensor, before: torch.Tensor) -> Dict[str, torch.Tensor]:
    """A weight's change from ``before`` as int8 steps: {"step": () float32, "steps": int8 like
    after} with after ~ before + step * steps, step = max |after - before| / 127, so that each
    weight is within step / 2 of ``after``."""
    change = after.float() - before.float()
    step = (change.abs().amax() / 127.0).clamp_min(torch.finfo(torch.float32).tiny)
    return {"step": step, "steps": torch.round(change / step).clamp(-127, 127).to(torch.int8)}


def export(vocoder, folder: Path, base: str = "", quantise_changes: bool = False) -> Path:
    """Write ``vocoder`` (EMA weights) as a shippable folder: model.pth with the denoiser in
    float16 and everything else (level and mel statistics) in float32, and config.yaml.
    base: a shipped versioned name; model.pth then holds only the weights that differ from
    that model's (a fine-tune of part of it ships at the size of that part).
    quantise_changes (with base): each changed denoiser tensor is stored as its change from
    base's in int8 steps (quantised_change, under "changes"), half the size of float16; the
    shipped model is base plus those steps."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = shipped_state(vocoder)
    payload = {"config": vocoder.cfg.to_dict(), "model": state}
    if quantise_changes and not base:
        raise ValueError("export: quantise_changes stores changes to a base model; expected base= a shipped name")
    if base:
        from specgrad_plugin.vocoder import SpecGradVocoder

        base_model = SpecGradVocoder.from_pretrained(base)
        before = shipped_state(base_model)
        changed = {k: v for k, v in state.items()
                   if k not in before or before[k].shape != v.shape or not torch.equal(before[k], v)}
        if quantise_changes:
            # from the trained float32 weights to the base's as the loader will add them (a base
            # with int8 changes of its own is not float16-exact), so each weight lands within step / 2
            full, loaded = vocoder.state_dict(), base_model.state_dict()
            steps = {k for k, v in changed.items() if k in before and before[k].shape == v.shape
                     and k.startswith("denoiser.") and v.is_floating_point()}
            payload["changes"] = {k: quantised_change(full[k], loaded[k]) for k in sorted(steps)}
            changed = {k: v for k, v in changed.items() if k not in steps}
        payload["model"] = changed
        payload["base"] = version_of(base)
    tmp = folder / "model.pth.tmp"
    torch.save(payload, tmp)
    tmp.replace(folder / "model.pth")
    vocoder.cfg.to_yaml(folder / "config.yaml")
    return folder / "model.pth"
