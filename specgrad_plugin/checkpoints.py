"""Every checkpoint layout a SpecGradVocoder is saved in or loaded from, in one place.

- the built-in trainer's and ``save()``'s: ``{config, model, [ema], ...}``, config inside;
- ESPnet's ``*.pth``: a state dict of ``vocoder.*`` and ``ema.*`` keys (an
  ESPnetSpecGradModel's), or ESPnet's ``checkpoint.pth`` with it under ``model``; the config
  is the run's ``config.yaml`` beside it, or one passed in;
- the shipped models (``specgrad_plugin/pretrained``): the trainer's layout, with its
  config.yaml beside it; a later version may hold only the weights it changed in an earlier
  one, named by ``base`` (``{config, model, base}``), some of them as int8 steps from the
  base's weights (``changes``: pretrained.quantised_change).

Loading is strict: ``weights_only=True``, and missing, unexpected or mis-shaped weights are
one error naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import yaml

from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.denoisers import Denoiser


class CheckpointError(ValueError):
    """A checkpoint that does not match the model it is loaded into."""


def save(model: torch.nn.Module, cfg: SpecGradConfig, path: Union[str, Path],
         extra: Optional[Dict[str, Any]] = None) -> None:
    """Write {config, model, **extra} atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": cfg.to_dict(), "model": model.state_dict(), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:  # an unwritable path is the OSError that names it, not torch's
            torch.save(payload, f)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind


def load_payload(path: Path) -> Dict[str, Any]:
    """A checkpoint file's payload (weights_only), or CheckpointError naming what is wrong."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        hint = " (ESPnet's training state: load latest.pth or *.best.pth)" if path.name == "checkpoint.pth" else ""
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        # torch's advice here is weights_only=False: never for a file from elsewhere
        if "Unsupported global" in str(e):
            first_line = "it holds Python objects other than weights, which are never unpickled here"
        elif "weights_only" in str(e):
            first_line = "not a file of weights that torch wrote"
        raise CheckpointError(
            f"{path}: not a readable SpecGrad checkpoint{hint} ({type(e).__name__}: {first_line})"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict of weights, got {type(payload).__name__}")
    return payload


def _has_ema(payload: Dict[str, Any]) -> bool:
    """Whether a loaded checkpoint (either layout) holds EMA weights beside the raw ones."""
    if "config" in payload and "model" in payload:
        return "ema" in payload
    state = payload.get("model", payload)
    return isinstance(state, dict) and any(str(k).startswith("ema.") for k in state)


def _weights(payload: Dict[str, Any], path: Path,
             use_ema: bool) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, Any]]]:
    """read()'s result from a payload load_payload() returned (path: for messages and a base's lookup)."""
    if "config" in payload and "model" in payload:  # built-in trainer: {config, model, ema, ...}
        weights = payload["ema"] if use_ema and "ema" in payload else payload["model"]
        if payload.get("changes") and not payload.get("base"):
            raise CheckpointError(f"{path}: holds int8 changes to a base model but names none; expected 'base'")
        if payload.get("base"):  # a shipped model kept as the weights it changed in another
            base = base_weights(str(payload["base"]), path)
            weights = {**base, **weights, **apply_changes(payload.get("changes", {}), base, path)}
        return check_finite(weights, path), payload["config"]
    state = payload.get("model", payload)  # ESPnet: a state dict, or checkpoint.pth's {"model": ...}
    prefix = "ema." if use_ema and any(k.startswith("ema.") for k in state) else "vocoder."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f"{path}: no SpecGrad weights (expected 'config'+'model', or 'vocoder.*' keys)")
    return check_finite(weights, path), None


def check_finite(weights: Dict[str, torch.Tensor], path: Path) -> Dict[str, torch.Tensor]:
    """weights, or CheckpointError naming the first tensor that holds NaN or inf (a training
    run that diverged): such weights vocode silence or full-scale noise without a word."""
    for key, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{path}: weight {key} holds {bad} NaN/inf values of {value.numel()}; expected "
                                  "finite weights (did the training diverge?)")
    return weights


def read(path: Union[str, Path], use_ema: bool = True) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, Any]]]:
    """(the vocoder's weights, the config saved inside or None) from a checkpoint of either
    layout; the EMA weights when it has them, unless use_ema=False."""
    path = Path(path)
    return _weights(load_payload(path), path, use_ema)


def apply_changes(changes: Dict[str, Dict[str, torch.Tensor]], base: Dict[str, torch.Tensor],
                  path: Path) -> Dict[str, torch.Tensor]:
    """The weights that int8 changes (pretrained.quantised_change) make of base's: w = base + step * steps."""
    out = {}
    for key, change in changes.items():
        if not (isinstance(change, dict) and set(change) == {"step", "steps"}
                and isinstance(change["steps"], torch.Tensor) and change["steps"].dtype == torch.int8
                and isinstance(change["step"], torch.Tensor) and change["step"].numel() == 1):
            found = sorted(change) if isinstance(change, dict) else type(change).__name__
            raise CheckpointError(f"{path}: change to {key!r} is {found}, expected a scalar 'step' and "
                                  "int8 'steps' (pretrained.quantised_change)")
        if key not in base or base[key].shape != change["steps"].shape:
            found = tuple(base[key].shape) if key in base else "no such weight"
            raise CheckpointError(f"{path}: change to {key!r} of shape {tuple(change['steps'].shape)}, "
                                  f"base has {found}")
        out[key] = base[key].float() + change["step"].float() * change["steps"].float()
    return out


def base_weights(base: str, path: Path) -> Dict[str, torch.Tensor]:
    """The weights of the shipped model ``base`` (a versioned name), which the checkpoint at
    ``path`` holds only the changes to (pretrained.export with base=)."""
    from specgrad_plugin import pretrained
    from specgrad_plugin.vocoder import SpecGradVocoder

    try:  # through the model: its state dict has today's key names, whatever layout base is stored in
        return SpecGradVocoder.from_pretrained(base).state_dict()
    except pretrained.UnknownModelError as e:
        raise CheckpointError(f"{path}: its weights are changes to the shipped model {base!r}, which this "
                              f"package cannot load ({e})") from None


def config_for(path: Union[str, Path], saved: Optional[Dict[str, Any]],
               config: Optional[Union[str, Path, SpecGradConfig]] = None) -> SpecGradConfig:
    """The config to build a checkpoint's model from: ``config`` when given (a SpecGradConfig or a
    YAML file), else the one saved inside, else the config.yaml beside the checkpoint."""
    path = Path(path)
    if isinstance(config, SpecGradConfig):
        return config
    if config is not None:
        return SpecGradConfig.from_yaml(config)
    if saved is not None:
        return SpecGradConfig.from_dict(saved, source=f"{path}:config")
    if (path.parent / "config.yaml").is_file():
        return SpecGradConfig.from_yaml(path.parent / "config.yaml")
    raise CheckpointError(f"{path}: no config inside the checkpoint nor config.yaml beside it; pass config=")


def is_specgrad_file(vocoder_file: Union[str, Path], vocoder_config_file: Optional[Union[str, Path]]) -> bool:
    """True for SpecGrad checkpoints: by their config (ESPnet run or preset), or by their content."""
    path = Path(vocoder_file)
    if path.suffix == ".pkl" or not path.is_file():
        return False
    config = Path(vocoder_config_file) if vocoder_config_file else path.parent / "config.yaml"
    if config.is_file():
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            return False
        sections = data.get("model_conf", data) if isinstance(data, dict) else {}
        return isinstance(sections, dict) and "denoiser" in sections and "prior" in sections
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(payload, dict) and isinstance(payload.get("config"), dict) and "prior" in payload["config"]


def load_state_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict that names missing/unexpected/mis-shaped keys in one error. Keys of
    older layouts are renamed first (Denoiser.upgrade_state_dict)."""
    state = dict(state)
    for name, module in model.named_modules():
        if isinstance(module, Denoiser):
            module.upgrade_state_dict(state, f"{name}." if name else "")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shaped = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shaped:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shaped:
            k = shaped[0]
            parts.append(f"shape mismatch for {k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise CheckpointError(f"{source}: weights do not match the config ({'; '.join(parts)})")
    model.load_state_dict(state)


def load_grown(vocoder: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> List[str]:
    """load_state_strict into a SpecGradVocoder whose config may add modules that ``state``
    lacks, if their output starts at zero (Denoiser.silent_at_start): they keep their initial
    weights, so the grown model starts as the same function. Returns the added modules' names.
    Only a module that ``state`` lacks entirely grows: new blocks inside one it holds (a deeper
    low-band trunk) would change the function, so they are missing keys."""
    prefixes = [f"denoiser.{name}." for name in vocoder.denoiser.silent_at_start()]
    growable = tuple(p for p in prefixes if not any(key.startswith(p) for key in state))
    own = vocoder.state_dict()
    grown = {key: value for key, value in own.items() if key not in state and key.startswith(growable)}
    try:
        load_state_strict(vocoder, {**state, **grown}, source)
    except CheckpointError as error:
        held = [p for p in prefixes if p not in growable and any(k.startswith(p) and k not in state for k in own)]
        if not held:
            raise
        raise CheckpointError(
            f"{error} -- {source} holds {', '.join(p[:-1] for p in held)} at another size than the config "
            "(for example more blocks: denoiser.frame_low_band_layers, or channels): init_from grows only a "
            "module the checkpoint lacks entirely; give that module the checkpoint's size, or train from "
            "scratch") from None
    return sorted({key.split(".")[1] for key in grown})


# What the weights compute: checkpoints averaged together must agree on these config
# sections (and the noise schedule's keys); the training sections may differ.
_SAME_SECTIONS = ("features", "prior", "denoiser", "inference")
_SAME_SCHEDULE = ("beta_start", "beta_end", "steps", "extra_steps", "min_alpha_bar")


def model_identity(config: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The config keys that fix the function the weights compute: {section: {key: value}}."""
    diffusion = config.get("diffusion", {})
    return {**{section: dict(config.get(section) or {}) for section in _SAME_SECTIONS},
            "diffusion": {key: diffusion.get(key) for key in _SAME_SCHEDULE}}


def saved_identity(config: Optional[Dict[str, Any]], source: str) -> Dict[str, Dict[str, Any]]:
    """model_identity of a config as an earlier version saved it (whole or in part): read
    through today's dataclasses first, so that a key added since counts at its default, not as
    a change. CheckpointError naming ``source`` when it no longer reads."""
    try:
        return model_identity(SpecGradConfig.from_dict(config or {}, source).to_dict())
    except ConfigError as e:
        raise CheckpointError(f"{source}: its saved config does not read ({e})") from None


def change_summary(before: Dict[str, Dict[str, Any]], after: Dict[str, Dict[str, Any]], most: int = 5,
                   labels: Tuple[str, str] = ("then", "now")) -> str:
    """identity_changes with their values, "section.key: A then, B now; ...", at most ``most``
    of them and how many more; "" when there are none."""
    changed = [name.split(".", 1) for name in identity_changes(before, after)]
    shown = "; ".join(f"{section}.{key}: {(before.get(section) or {}).get(key)!r} {labels[0]}, "
                      f"{(after.get(section) or {}).get(key)!r} {labels[1]}" for section, key in changed[:most])
    return shown + (f"; and {len(changed) - most} more" if len(changed) > most else "")


def resume_change(saved: Optional[Dict[str, Any]], cfg: SpecGradConfig, source: str) -> str:
    """What resuming a run saved with config ``saved`` (as written then; saved_identity) under
    ``cfg`` would change in the model it trains: change_summary of model_identity without the
    inference section (features, prior, denoiser, the noise schedule's keys), "" when nothing.
    Both trainers (training.fit, the ESPnet DiffusionTrainer) refuse a resume on anything else."""
    before, after = saved_identity(saved, source), model_identity(cfg.to_dict())
    return change_summary(*({k: v for k, v in identity.items() if k != "inference"} for identity in (before, after)))


def identity_changes(before: Dict[str, Dict[str, Any]], after: Dict[str, Dict[str, Any]]) -> List[str]:
    """The "section.key" names whose values differ between two model_identity() dicts, sorted,
    a section's ``kind`` first (another family explains its other keys)."""
    names = [f"{section}.{key}" for section in set(before) | set(after)
             for key in set(before.get(section) or {}) | set(after.get(section) or {})
             if (before.get(section) or {}).get(key) != (after.get(section) or {}).get(key)]
    return sorted(names, key=lambda name: (not name.endswith(".kind"), name))


def average(paths: List[Union[str, Path]]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Uniform weight average of several checkpoints of one model (a "model soup"):
    w = (1/N) sum_i w_i, key by key, over the checkpoints' EMA weights (or all their raw
    weights when none has EMA).

    Meant for runs that started from the same weights (fine-tunes of one model with other seeds
    or losses); runs trained apart from scratch do not average into a working model.
    Returns (weights, the first checkpoint's config as a dict). Raises CheckpointError naming
    the file when a path repeats, only some checkpoints have EMA weights, or keys, shapes,
    integer buffers or the config keys that fix the model (model_identity) disagree.
    Shapes: every tensor keeps its shape; the sum runs in float64 and the result is float32
    (float64 where a checkpoint holds float64).
    """
    if len(paths) < 2:
        raise CheckpointError(f"average: expected at least 2 checkpoints, got {len(paths)}")
    seen: Dict[Path, Union[str, Path]] = {}
    for path in paths:
        if Path(path).resolve() in seen:
            raise CheckpointError(f"{path}: given twice (as {seen[Path(path).resolve()]} too); each "
                                  f"checkpoint counts once in an average")
        seen[Path(path).resolve()] = path
    first_payload = load_payload(Path(paths[0]))
    first_has_ema = _has_ema(first_payload)
    first_weights, first_saved = _weights(first_payload, Path(paths[0]), use_ema=True)
    del first_payload  # its optimiser state and raw weights are not needed
    first_config = config_for(paths[0], first_saved).to_dict()
    identity = model_identity(first_config)
    sums = {key: value.double() if value.is_floating_point() else value for key, value in first_weights.items()}
    # float16 storage (the shipped models) is widened: a mean kept in float16 would round again
    dtypes = {key: torch.promote_types(value.dtype, torch.float32) if value.is_floating_point() else value.dtype
              for key, value in first_weights.items()}
    for path in paths[1:]:
        payload = load_payload(Path(path))
        if _has_ema(payload) != first_has_ema:  # each file is loaded once
            raw, with_ema = (path, paths[0]) if first_has_ema else (paths[0], path)
            raise CheckpointError(f"{raw}: has no EMA weights, while {with_ema} has; average checkpoints that "
                                  f"all have EMA weights or none")
        weights, saved = _weights(payload, Path(path), use_ema=True)
        other = model_identity(config_for(path, saved).to_dict())
        differing = identity_changes(identity, other)
        if differing:
            section, k = differing[0].split(".", 1)
            raise CheckpointError(f"{path}: {section}.{k} = {other[section].get(k)!r} where {paths[0]} has "
                                  f"{identity[section].get(k)!r} (differing keys: {differing}); only "
                                  f"checkpoints of one model average")
        if set(weights) != set(sums):
            lacks, extra = sorted(set(sums) - set(weights)), sorted(set(weights) - set(sums))
            raise CheckpointError(f"{path}: not the weights of {paths[0]}'s model: it lacks {lacks[:5]} "
                                  f"and has {extra[:5]} that the other does not")
        for key, value in weights.items():
            if tuple(value.shape) != tuple(sums[key].shape):
                raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, "
                                      f"{paths[0]} {tuple(sums[key].shape)}")
            if value.is_floating_point() != sums[key].is_floating_point():
                raise CheckpointError(f"{path}: {key} is {value.dtype}, {paths[0]}'s {dtypes[key]}")
            if not value.is_floating_point():
                if not torch.equal(value, sums[key]):  # counters and indices: no mean of them means anything
                    raise CheckpointError(f"{path}: the integer buffer {key} is {value.flatten()[:4].tolist()}"
                                          f"..., {paths[0]}'s {sums[key].flatten()[:4].tolist()}...; "
                                          f"expected equal")
                continue
            sums[key] = sums[key] + value.double()
            dtypes[key] = torch.promote_types(dtypes[key], value.dtype)
    count = len(paths)
    weights = {key: (value / count).to(dtypes[key]) if value.is_floating_point() else value
               for key, value in sums.items()}
    return weights, first_config
