"""Quick start: train a preset (tiny by default) briefly, vocode a held-out clip, write it and score it.

    python -m specgrad_plugin.bin.quickstart [--preset tiny] [--data DIR] [--steps 200] [--out exp/quickstart]

Uses real LJSpeech clips when found ($SPECGRAD_DATA/ljspeech_mini or --data, an
LJSpeech-layout folder), else generated speech-like signals. The last clip is held
out; Griffin-Lim from the same mel is scored beside it as the floor. A few hundred
CPU steps give shaped noise, not speech: this shows the pipeline end to end.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from specgrad_plugin import runtime
from specgrad_plugin.bin import one_line_write_errors
from specgrad_plugin.checkpoints import CheckpointError, load_payload
from specgrad_plugin.checks import SpecGradInputError, check_seed
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.data import SegmentDataset, corpus_wavs, read_wav, shared_data_dir, write_wav
from specgrad_plugin.diffusion import inference_betas
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.priors import level_statistics
from specgrad_plugin.scoring import griffin_lim, score, scores_to_json
from specgrad_plugin.synthetic import speech_like
from specgrad_plugin.training import fit
from specgrad_plugin.vocoder import SpecGradVocoder


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", "--conf", dest="preset", default="tiny",
                   help="model preset: frame, base, tiny (specgrad_plugin/presets) or a YAML file")
    p.add_argument("--data", type=Path, default=None, help="LJSpeech-layout folder (default: shared ljspeech_mini)")
    p.add_argument("--max_clips", type=int, default=16, help="clips to load (the last is held out)")
    p.add_argument("--steps", type=int, default=200, help="optimiser updates")
    p.add_argument("--schedule", default=None, help="inference schedule (default: the preset's)")
    p.add_argument("--out", type=Path, default=Path("exp/quickstart"),
                   help="output folder; a rerun into it resumes its checkpoint (same preset), to --steps in all")
    p.add_argument("--seed", type=int, default=0)
    return p


def load_clips(args, cfg: SpecGradConfig):
    root = args.data
    if root is None and shared_data_dir() is not None:
        root = shared_data_dir() / "ljspeech_mini"
    if root is not None:
        paths = corpus_wavs(root)[: args.max_clips]
        clips = [read_wav(p, cfg.features.fs, cfg.features.hop_length) for p in paths]
        return clips, f"{len(clips)} LJSpeech clips from {root}"
    clips = [speech_like(3.0, cfg.features.fs, seed=i) for i in range(min(args.max_clips, 8))]
    return clips, f"{len(clips)} generated speech-like clips (no LJSpeech folder found)"


@one_line_write_errors
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not os.environ.get("OMP_NUM_THREADS"):  # the user's setting wins
        torch.set_num_threads(os.cpu_count() or 1)
    runtime.tune_cpu_allocator()  # docs/speed.md; $SPECGRAD_MALLOC=default opts out
    try:
        torch.manual_seed(check_seed(args.seed, "--seed"))  # before training, not after it
        cfg = SpecGradConfig.from_preset(args.preset)
        if args.schedule is not None:  # before training, not after it
            inference_betas(args.schedule)
        if args.steps < 1:
            raise ValueError(f"--steps {args.steps}: expected at least 1 update")
        clips, origin = load_clips(args, cfg)
    except (ConfigError, SpecGradInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(clips) < 2:
        print("error: need at least 2 clips (one is held out)", file=sys.stderr)
        return 2
    logging.info("data: %s; training on %d, holding out 1", origin, len(clips) - 1)

    vocoder = SpecGradVocoder(cfg)
    train_set = SegmentDataset.for_training(clips[:-1], vocoder.features, cfg.train)
    vocoder.prior.set_level_statistics(*level_statistics(train_set.mels()))
    # Sampling with replacement fills every batch even from a handful of clips.
    sampler = torch.utils.data.RandomSampler(train_set, replacement=True, num_samples=cfg.train.batch_size * args.steps)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.train.batch_size, sampler=sampler)
    try:  # a folder from an earlier run resumes, if it holds this model
        fit(vocoder, loader, args.steps, args.out, log_every=max(1, args.steps // 20), save_every=100)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    trained = SpecGradVocoder.from_checkpoint(args.out / "checkpoint.pt")
    # what the checkpoint holds: a folder from an earlier, longer run resumes past --steps
    steps_done = int(load_payload(args.out / "checkpoint.pt").get("step", args.steps))
    ref = crop_to_hop(torch.from_numpy(clips[-1]), cfg.features.hop_length)
    mel = trained.features(ref[None])[0]
    wav = trained(mel, schedule=args.schedule, seed=args.seed).numpy()
    baseline = griffin_lim(mel, cfg.features)
    write_wav(args.out / "heldout_specgrad.wav", wav, trained.fs)
    write_wav(args.out / "heldout_griffin_lim.wav", baseline, trained.fs)
    scores = {
        "specgrad": score(ref.numpy(), wav, trained.features, heavy=False),
        "griffin_lim": score(ref.numpy(), baseline, trained.features, heavy=False),
    }
    (args.out / "scores.json").write_text(scores_to_json(scores))
    names = list(scores["specgrad"])
    print(f"\nheld-out clip, {steps_done} steps, schedule {trained.chosen_schedule(args.schedule)}")
    print(f"| system | {' | '.join(names)} |\n|---|{'---|' * len(names)}")
    for system, values in scores.items():
        print(f"| {system} | {' | '.join(f'{values[n]:.3f}' for n in names)} |")
    print(f"\nwrote {args.out / 'heldout_specgrad.wav'} and {args.out / 'scores.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
