"""The built-in trainer: Adam with warm-up, gradient clipping, EMA, non-finite steps skipped.

ESPnet's task and trainer are the way to train on a corpus; this small loop serves
the quick-start and the tests, and holds the pieces any trainer here reuses.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch

from specgrad_plugin.checkpoints import CheckpointError, load_payload, load_state_strict, resume_change
from specgrad_plugin.loss import DiffusionLoss
from specgrad_plugin.vocoder import SpecGradVocoder

log = logging.getLogger("specgrad_plugin")


def make_ema(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``model`` to hold the exponential moving average of its weights."""
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int, warmup: bool = True) -> None:
    """w_ema <- d * w_ema + (1 - d) * w for parameters, buffers copied, with the usual warm-up
    d = min(decay, (1 + step) / (10 + step)): early on the average follows the model instead of
    staying near the initial weights (0.999 ** 200 would still be 82 % initial weights).
    warmup=False: d = decay from the first step, for an average that starts from trained
    weights (fine-tuning), which are worth staying near."""
    d = min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - d)
    for target, source in zip(ema.buffers(), model.buffers(), strict=True):
        target.copy_(source)


def trainable_parameters(model: torch.nn.Module, freeze: List[str]) -> List[torch.nn.Parameter]:
    """Freeze the parameters that ``freeze`` names (ESPnet's --freeze_param rule: the name itself
    or a prefix of it ending at a dot) and return the others. A name that matches no parameter
    raises ValueError naming it: a typo must not train the whole model."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in freeze:
        if not any(name == prefix or name.startswith(prefix + ".") for name in names):
            raise ValueError(f"train.freeze: {prefix!r} names no parameter; expected a name or a prefix "
                             f"of one up to a dot, e.g. {sorted({n.rsplit('.', 2)[0] for n in names})[:6]}")
    kept = []
    for name, param in model.named_parameters():
        frozen = any(name == prefix or name.startswith(prefix + ".") for prefix in freeze)
        param.requires_grad_(not frozen)
        if not frozen:
            kept.append(param)
    return kept


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(warmup_steps, 1)))


def optimisation_step(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    grad_clip: float,
) -> Optional[float]:
    """Backward, clip, step. Returns the gradient norm, or None when loss or gradients are
    non-finite: then nothing is updated (the caller counts the skip)."""
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return None
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else math.inf)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return None
    optimizer.step()
    return float(norm)


def _batches(loader: torch.utils.data.DataLoader) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def fit(
    vocoder: SpecGradVocoder,
    loader: torch.utils.data.DataLoader,
    steps: int,
    out_dir: Path,
    log_every: int = 10,
    save_every: int = 100,
    on_log: Optional[Callable[[Dict[str, float]], None]] = None,
    stop_when: Optional[Callable[[int], bool]] = None,
) -> List[Dict[str, float]]:
    """Train to ``steps`` optimiser updates, resuming from out_dir/checkpoint.pt if present.

    stop_when(step) -> True ends training early (e.g. a CPU-time budget); the state is saved.

    Writes out_dir/config.yaml (the exact config) and out_dir/checkpoint.pt
    (model, EMA, optimiser, scheduler, step) every save_every steps and at the end.
    Returns the logged statistics.
    """
    cfg = vocoder.cfg
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "checkpoint.pt"
    state = load_payload(ckpt) if ckpt.is_file() else None
    if state is not None:  # config.yaml must keep describing the checkpoint until this run can resume it
        summary = resume_change(state.get("config"), cfg, str(ckpt))
        if summary:
            raise CheckpointError(f"{ckpt}: cannot resume: it holds another model ({summary}); train into "
                                  f"another output folder, or remove {ckpt} to start over")
    optimizer = torch.optim.Adam(trainable_parameters(vocoder, cfg.train.freeze), lr=cfg.train.lr)
    scheduler = warmup_schedule(optimizer, cfg.train.warmup_steps)
    ema = make_ema(vocoder)
    device = next(vocoder.parameters()).device
    loss_fn = DiffusionLoss(cfg).to(device)  # with any state of its own (the sampler loss's critic)
    step, skipped = 0, 0
    if state is not None:
        load_state_strict(vocoder, state["model"], str(ckpt))
        load_state_strict(ema, state["ema"], f"{ckpt} (EMA)")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loss_fn.load_training_state(state.get("loss", {}), str(ckpt))
        step, skipped = state["step"], state.get("skipped", 0)
        log.info("resumed from %s at step %d", ckpt, step)
    cfg.to_yaml(out_dir / "config.yaml")

    def save() -> None:
        loss_state = loss_fn.training_state()
        vocoder.save(ckpt, {
            "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "step": step, "skipped": skipped,
            **({"loss": loss_state} if loss_state else {}),
        })

    history: List[Dict[str, float]] = []
    vocoder.train()
    start, first_step = time.time(), step
    for wav, mel in _batches(loader):
        if step >= steps or (stop_when is not None and stop_when(step)):
            break
        loss, stats = loss_fn(vocoder, wav.to(device), mel.to(device))
        norm = optimisation_step(loss, vocoder, optimizer, cfg.train.grad_clip)
        if norm is None:
            skipped += 1
            log.warning("step %d: non-finite loss or gradient, update skipped (%d so far)", step, skipped)
            continue
        scheduler.step()
        ema_update(ema, vocoder, cfg.train.ema_decay, step)
        step += 1
        if step % log_every == 0 or step == steps:
            stats.update(step=step, grad_norm=norm, skipped=skipped, seconds=time.time() - start)
            history.append(stats)
            log.info("step %d loss %.4f grad %.2f (%.2f s/step)", step, stats["loss"], norm,
                     stats["seconds"] / (step - first_step))
            if on_log:
                on_log(stats)
        if step % save_every == 0:
            save()
    save()
    vocoder.eval()
    return history
