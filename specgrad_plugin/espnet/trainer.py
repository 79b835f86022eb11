"""DiffusionTrainer: ESPnet's Trainer plus what a diffusion vocoder needs.

- EMA of the weights, updated after every optimiser step that ESPnet actually takes
  (a post-step hook: steps skipped for a non-finite gradient norm never reach it);
  it lives in the model, so every ESPnet checkpoint carries it.
- Gradient clipping and the skip of non-finite steps are ESPnet's own (--grad_clip);
  the model counts non-finite losses and reports their fraction as ``nonfinite``.
- Every rank draws its own noise, levels and crops: ESPnet seeds every rank alike
  (seed + epoch), so rank r > 0 is reseeded with seed + epoch + r * RANK_SEED_STRIDE at the
  start of each epoch; rank 0 keeps ESPnet's stream, so one process trains as before, and
  a resumed run redraws exactly what the uninterrupted one drew.
- --use_amp: the denoiser runs under autocast (bf16 where the device has it, else fp16
  with ESPnet's grad scaler); the filter, STFT pair, loss and sampler stay float32
  (loss.DiffusionLoss). --allow_tf32 (default true) lets CUDA matmuls use TF32.
- Every --sample_interval epochs, the EMA model vocodes the first --num_samples dev
  clips with a fast schedule: wavs and spectrogram PNGs under
  ``<output_dir>/samples/epoch<N>/``, mel-L1 and MR-STFT reported as validation
  statistics (TensorBoard, logs, and usable as --best_model_criterion).
- --best_model_criterion ranks only the epochs that report the key (epochs skipped by
  --sample_interval, or trained before a criterion was added, have none).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set, Tuple

import numpy as np
import torch
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.reporter import Reporter
from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass
from espnet2.utils.types import str2bool

from specgrad_plugin import precision
from specgrad_plugin.checkpoints import CheckpointError, resume_change
from specgrad_plugin.checks import whole_clip_min_samples
from specgrad_plugin.config import ConfigError
from specgrad_plugin.data import write_wav
from specgrad_plugin.diffusion import inference_betas
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.plotting import plot_spectrograms
from specgrad_plugin.scoring import score


@dataclass
class DiffusionTrainerOptions(TrainerOptions):
    ema_decay: float
    num_samples: int
    sample_interval: int
    sample_schedule: str
    sample_seconds: float
    allow_tf32: bool


# Rank r > 0 trains epoch e with seed + e + r * RANK_SEED_STRIDE: no two (rank, epoch) pairs
# share a seed for runs shorter than the stride.
RANK_SEED_STRIDE = 1_000_003


class DiffusionTrainer(Trainer):
    """ESPnet's Trainer for SpecGradTask: EMA after every optimiser step taken, per-rank noise
    seeds, autocast of the denoiser only (--use_amp), TF32 (--allow_tf32) for the run, and
    validation samples vocoded by the EMA model (the module docstring lists each).

    Its options, beside ESPnet's (DiffusionTrainerOptions): --ema_decay, --num_samples,
    --sample_interval, --sample_schedule, --sample_seconds, --allow_tf32.
    """

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> DiffusionTrainerOptions:
        return build_dataclass(DiffusionTrainerOptions, args)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("Diffusion trainer related")
        group.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay of the weights, per update")
        group.add_argument("--num_samples", type=int, default=2, help="dev clips vocoded at validation (0: none)")
        group.add_argument("--sample_interval", type=int, default=1, help="vocode dev clips every N epochs")
        group.add_argument("--sample_schedule", type=str, default="WG-6", help="schedule of the validation samples")
        group.add_argument("--sample_seconds", type=float, default=3.0, help="vocode at most this much of each clip")
        group.add_argument("--allow_tf32", type=str2bool, default=True,
                           help="CUDA: TF32 matmuls and convolutions (false: full float32)")

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        check_options(trainer_options)
        is_main = not distributed_option.distributed or distributed_option.dist_rank == 0
        record_identity(Path(trainer_options.output_dir), model.cfg, bool(trainer_options.resume), is_main)
        decay = trainer_options.ema_decay
        device = next(model.parameters()).device
        model.amp_dtype = precision.amp_dtype(device) if trainer_options.use_amp else None
        handle = optimizers[0].register_step_post_hook(lambda *_: model.update_ema(decay))
        try:
            # TF32 for the run only: the process' flags are back afterwards
            with precision.tf32(trainer_options.allow_tf32), ranking_only_reported_epochs():
                super().run(model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
                            plot_attention_iter_factory, trainer_options, distributed_option)
        finally:
            handle.remove()
        if distributed_option.distributed and torch.distributed.is_initialized():
            # ESPnet never tears its process group down. Left to interpreter exit, gloo's
            # worker threads can still hold tensors while Python finalises, and a rank then
            # dies with SIGABRT after training succeeded (seen once in tests/test_distributed.py).
            # The barrier keeps a fast rank from closing its connections under a slow one.
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    @staticmethod
    def resume(checkpoint, model, *args, **kwargs) -> None:
        """ESPnet's resume, with an error that names the differing weights and the likely
        cause when the model built now does not match the run's checkpoint."""
        try:
            Trainer.resume(checkpoint, model, *args, **kwargs)
        except RuntimeError as e:
            if "state_dict" not in str(e):
                raise
            saved = set(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"])
            raise CheckpointError(architecture_mismatch(checkpoint, saved, set(model.state_dict()))) from None

    @classmethod
    def train_one_epoch(cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer,
                        options, distributed_option) -> bool:
        if distributed_option.distributed and distributed_option.dist_rank > 0:
            set_all_random_seed(rank_seed(options.seed, reporter.get_epoch(), distributed_option.dist_rank))
        return super().train_one_epoch(model, iterator, optimizers, schedulers, scaler, reporter,
                                       summary_writer, options, distributed_option)

    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option) -> None:
        captured: List[Tuple[str, torch.Tensor]] = []

        def keep_first(batches):
            for utt_ids, batch in batches:
                for uid, wav, length in zip(utt_ids, batch["speech"], batch["speech_lengths"], strict=True):
                    if len(captured) < options.num_samples:
                        captured.append((uid, wav[: int(length)].detach().cpu()))
                yield utt_ids, batch

        super().validate_one_epoch(model, keep_first(iterator), reporter, options, distributed_option)
        epoch = reporter.get_epoch()
        if distributed_option.distributed:
            check_ranks_agree(getattr(model, "module", model), epoch)
        is_main = not distributed_option.distributed or distributed_option.dist_rank == 0
        if not captured or not is_main or epoch % max(options.sample_interval, 1):
            return
        core = getattr(model, "module", model)
        out_dir = Path(options.output_dir) / "samples" / f"epoch{epoch}"
        scores = vocode_samples(core.ema, captured, out_dir, options.sample_schedule, options.sample_seconds)
        # ESPnet's reporter wants every key in every step: old keys get NaN (skipped in averages).
        row = {key: np.nan for key in reporter.stats if key not in scores}
        reporter.register({**row, **scores}, weight=1)
        reporter.next()
        logging.info("epoch %d samples in %s: %s", epoch, out_dir, scores)


@contextlib.contextmanager
def ranking_only_reported_epochs():
    """While training, ESPnet ranks epochs for --best_model_criterion (best links, n-best
    pruning, averaging) over the epochs that report the key, not over all: those with a
    finite value by value, then those with NaN or inf in epoch order.

    ESPnet checks only the current epoch for the key, then reads it from every epoch, and
    raises KeyError where one lacks it. Epochs lack the sample keys when --sample_interval
    skips them, when PESQ is undefined on every sample clip, or when a run is resumed after
    a criterion (valid.pesq) was added; ESPnet's own ranking stops such a run after saving.
    Non-finite epochs stay in the ranking, last: ESPnet takes the best epoch as the
    ranking's first entry, which must exist when the current epoch reports the key.
    """
    original = Reporter.sort_epochs_and_values

    def sort_reported(self: Reporter, key: str, key2: str, mode: str) -> List[Tuple[int, float]]:
        if mode not in ("min", "max"):
            raise ValueError(f"best_model_criterion mode must be min or max, got {mode!r}")
        values = [(epoch, float(stats[key][key2])) for epoch, stats in self.stats.items()
                  if key2 in stats.get(key, {})]
        finite = [pair for pair in values if math.isfinite(pair[1])]
        ranked = sorted(finite, key=lambda pair: pair[1], reverse=mode == "max")  # stable: ties keep epoch order
        return ranked + [pair for pair in values if not math.isfinite(pair[1])]

    Reporter.sort_epochs_and_values = sort_reported
    try:
        yield
    finally:
        Reporter.sort_epochs_and_values = original


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of rank ``rank`` in ``epoch``: ESPnet's seed + epoch, offset per rank."""
    return seed + epoch + rank * RANK_SEED_STRIDE


@torch.no_grad()
def check_ranks_agree(model: torch.nn.Module, epoch: int) -> None:
    """Every rank must hold the same weights and EMA (DDP averages gradients; the EMA is
    updated from identical weights). Compares position-sensitive checksums across ranks
    once per epoch, and stops training if they differ rather than save a diverged model."""
    flat = torch.cat([t.detach().double().flatten() for t in model.state_dict().values() if t.is_floating_point()])
    phase = torch.arange(flat.numel(), dtype=torch.float64, device=flat.device)
    digest = torch.stack([flat.sum(), (flat * torch.sin(phase)).sum()])
    gathered = [torch.zeros_like(digest) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, digest)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"epoch {epoch}: weights differ across ranks (checksums {[g.tolist() for g in gathered]})")
    logging.info("epoch %d: weights and EMA identical on %d ranks (checksum %.9e)", epoch, len(gathered),
                 float(gathered[0][1]))


@torch.no_grad()
def vocode_samples(
    vocoder, clips: List[Tuple[str, torch.Tensor]], out_dir: Path, schedule: str, seconds: float
) -> Dict[str, float]:
    """Vocode each clip's mel with ``vocoder``; write wav + PNG; return mean mel-L1, MR-STFT,
    and PESQ and STOI where their packages are installed (the checkpoint criteria: mel-L1
    can rise while PESQ and voicing improve, docs/low_band.md)."""
    vocoder.eval()
    hop, fs = vocoder.hop_length, vocoder.fs
    device = next(vocoder.parameters()).device
    rows = []
    for uid, wav in clips:
        ref = crop_to_hop(wav[: int(seconds * fs)].float(), hop)
        if ref.numel() < whole_clip_min_samples(hop, vocoder.cfg.features.n_fft):
            continue
        mel = vocoder.features(ref[None].to(device))[0]
        gen = vocoder(mel, schedule=schedule, seed=0).cpu()
        write_wav(out_dir / f"{uid}.wav", gen, fs)
        rows.append(score(ref.numpy(), gen.numpy(), vocoder.features, heavy=False))
        plot_spectrograms(mel.cpu(), vocoder.features(gen[None].to(device))[0].cpu(), out_dir / f"{uid}.png", uid,
                          "SpecGrad (EMA)")
    # NaN: PESQ undefined on that clip (too short, or silent)
    finite = {key: [row[key] for row in rows if np.isfinite(row[key])] for key in rows[0]} if rows else {}
    return {key: float(np.mean(values)) for key, values in finite.items() if values}


def check_options(options: DiffusionTrainerOptions) -> None:
    """The diffusion trainer's own options, before the first update rather than at the first
    validation: ConfigError naming the flag, the value and what was expected."""
    if not 0.0 <= options.ema_decay <= 1.0:
        raise ConfigError(f"--ema_decay {options.ema_decay}: expected a decay in [0, 1]")
    try:
        inference_betas(options.sample_schedule)
    except ValueError as e:
        raise ConfigError(f"--sample_schedule: {e}") from None
    if options.num_samples < 0:
        raise ConfigError(f"--num_samples {options.num_samples}: expected 0 (none) or more dev clips")
    if options.sample_interval < 1:
        raise ConfigError(f"--sample_interval {options.sample_interval}: expected at least 1 epoch")
    if not options.sample_seconds > 0:
        raise ConfigError(f"--sample_seconds {options.sample_seconds}: expected more than 0 seconds")


EARLIER_CHECKPOINT = "checkpoint.pth.earlier"  # not *.pth: nothing loads it by accident
RUN_IDENTITY = "model_identity.json"  # the config a run starts with, to compare a resume's with


def refuse_changed_resume(output_dir: Path, cfg, resume: bool) -> None:
    """ConfigError naming each change when a resume's config trains another model than the one
    the run recorded at its start (RUN_IDENTITY): called before ESPnet rewrites config.yaml.
    Runs started before the record resume unchecked but for the weights' names and shapes.
    A checkpoint.pth that is not a torch file is refused here too."""
    record, checkpoint = output_dir / RUN_IDENTITY, output_dir / "checkpoint.pth"
    # torch's files are zip archives: a truncated or foreign one would fail deep in ESPnet's resume
    if resume and checkpoint.is_file() and not zipfile.is_zipfile(checkpoint):
        raise ConfigError(f"{checkpoint}: not a readable training state (truncated, or not a file torch "
                          "wrote); move it aside to start afresh (--resume false moves it for you)")
    if not (resume and checkpoint.is_file() and record.is_file()):
        return
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{record}: not readable ({e}); remove it to resume without the check") from None
    summary = resume_change(recorded, cfg, str(record))
    if summary:
        raise ConfigError(f"{output_dir}: cannot resume: this config trains another model than the run's "
                          f"({summary}). Resume with the settings the run started with, or train into another "
                          "--output_dir; config.yaml and the checkpoints are as they were.")


def record_identity(output_dir: Path, cfg, resume: bool, is_main: bool) -> None:
    """Write RUN_IDENTITY when a run starts afresh (rank 0; atomically). A fresh start over an
    earlier run moves that run's checkpoint.pth aside first (EARLIER_CHECKPOINT): ESPnet would
    replace it only when the first epoch ends, and a restart killed before then would resume
    it under the new record. Aside, not deleted: --resume false is bin.train's default, so a
    user who forgot --resume true can still move it back."""
    stale = output_dir / "checkpoint.pth"
    if not is_main or (resume and stale.is_file()):
        return
    if stale.is_file():
        logging.warning("%s: an earlier run's, moved to %s (this run starts afresh: --resume false; "
                        "move it back and pass --resume true to continue that run)", stale, EARLIER_CHECKPOINT)
        stale.replace(output_dir / EARLIER_CHECKPOINT)
    output_dir.mkdir(parents=True, exist_ok=True)
    record = output_dir / RUN_IDENTITY
    tmp = record.with_name(record.name + ".tmp")
    # the whole config, so that it reads back as a valid one; the comparison takes the trained model from it
    tmp.write_text(json.dumps(cfg.to_dict(), indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(record)


def architecture_mismatch(checkpoint, saved: Set[str], own: Set[str]) -> str:
    """The resume error: the checkpoint, the differing weights, and the flag when the frame
    preset's low-band trunk (the one architecture change a preset has made) is the cause."""
    hint = ""
    if not any(".low_band." in key for key in saved) and any(".low_band." in key for key in own):
        hint = "; frame runs started before the preset's low-band trunk need --model_conf denoiser.frame_low_band_hz=0"
    return (f"{checkpoint}: cannot resume: the model built from this run's config and --model_conf is not the "
            f"checkpoint's (missing {sorted(saved - own)[:3]}, new {sorted(own - saved)[:3]}). Resume with the "
            f"settings the run started with{hint}. ESPnet has already rewritten config.yaml beside it with this "
            f"config: a resume with the run's own settings writes it back.")
