"""What an ESPnet run's config.yaml says about the vocoder it trains: the model's own sections
(in ``model_conf``) and the ``train`` section the run implies. Read by SpecGradConfig.from_yaml,
so that a model exported from a run records how it was trained; ESPnet itself is not imported.
"""

from __future__ import annotations

from typing import Any, Dict

# The train keys an ESPnet run carries in its model_conf (the model cuts the crops), and the
# model_conf keys that are training-only, left out when a run's config.yaml is read as a model's.
ESPNET_CROP_KEYS = ("segment_frames", "any_sample_crops", "speed_factors")
ESPNET_TRAINING_ONLY_KEYS = ESPNET_CROP_KEYS + ("prior_stats_file", "mel_stats_file", "init_from")


def espnet_train_section(run: Dict[str, Any]) -> Dict[str, Any]:
    """The ``train`` section an ESPnet run's config.yaml implies (--freeze_param in the vocoder's
    names), so that a model exported from the run records how it was trained."""
    conf = run.get("model_conf") or {}
    scheduler = run.get("scheduler_conf") or {}
    # warmuplr / warmupsteplr name it; piecewiselinearwarmuplr's last point ends it
    warmup = scheduler.get("warmup_steps", (scheduler.get("warmup_steps_list") or [None])[-1])
    values = {**{k: conf.get(k) for k in ESPNET_CROP_KEYS}, "batch_size": run.get("batch_size"),
              "lr": (run.get("optim_conf") or {}).get("lr"), "warmup_steps": warmup,
              "grad_clip": run.get("grad_clip"), "ema_decay": run.get("ema_decay"), "seed": run.get("seed"),
              "freeze": [p.removeprefix("vocoder.") for p in run.get("freeze_param") or []] or None}
    return {k: v for k, v in values.items() if v is not None}


def model_section(run: Dict[str, Any]) -> Dict[str, Any]:
    """A run's config.yaml -> the model config's sections: model_conf without its training-only
    keys, and the train section the run implies."""
    model = {k: v for k, v in (run.get("model_conf") or {}).items() if k not in ESPNET_TRAINING_ONLY_KEYS}
    model["train"] = espnet_train_section(run)
    return model
