"""The peer at equal CPU budget: ESPnet's HiFi-GAN V1 trained from scratch on our clips and mels.

    # one thread, until the training loop has used each mark's CPU time (evaluation excluded)
    nice python bench/hifigan_peer.py train --out exp/hifigan_peer --marks 15,30,45,60
    # whole dev and ljspeech_eval clips from the last checkpoint, every metric of specgrad_plugin.scoring
    python bench/hifigan_peer.py final --out exp/hifigan_peer

Generator and discriminators are espnet2.gan_tts's HiFiGANGenerator (V1 sizes, its
defaults) and HiFiGANMultiScaleMultiPeriodDiscriminator; the losses and their weights,
optimisers and batch follow the ParallelWaveGAN toolkit's hifigan config for LJSpeech
(mel loss x45 on a natural-log 0-11025 Hz mel, feature matching x2 summed over layers
and discriminators, least-squares adversarial losses, Adam 2e-4 with betas 0.5/0.9,
16 crops of 8192 samples, the discriminator updated from the generator re-run after
its own update). The input is the same log-mel our vocoder reads (frame preset's
features), normalised per bin by the training clips' mean and deviation as that toolkit
does. Data are bench/prior_study.py's: ljspeech_mini without its last 3 clips for
training, those 3 as dev. A stopped run resumes exactly from its last checkpoint
(written every --checkpoint_minutes core-minutes and at every mark).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin import presets  # noqa: E402
from specgrad_plugin.config import SpecGradConfig  # noqa: E402
from specgrad_plugin.data import SegmentDataset  # noqa: E402
from specgrad_plugin.features import LogMelExtractor  # noqa: E402
from specgrad_plugin.scoring import score, scores_to_json  # noqa: E402

# ParallelWaveGAN's egs/ljspeech/voc1/conf/hifigan.v1.yaml, the values that matter at this budget
LAMBDA_MEL, LAMBDA_ADV, LAMBDA_FM = 45.0, 1.0, 2.0
BATCH, SEGMENT_FRAMES = 16, 32  # 32 frames x hop 256 = 8192 samples
ADAM = {"lr": 2.0e-4, "betas": (0.5, 0.9), "weight_decay": 0.0}
log = logging.getLogger("hifigan_peer")


def build(features):
    from espnet2.gan_tts.hifigan import HiFiGANGenerator, HiFiGANMultiScaleMultiPeriodDiscriminator
    from espnet2.gan_tts.hifigan.loss import (
        DiscriminatorAdversarialLoss,
        FeatureMatchLoss,
        GeneratorAdversarialLoss,
        MelSpectrogramLoss,
    )

    generator = HiFiGANGenerator(in_channels=features.n_mels)
    discriminator = HiFiGANMultiScaleMultiPeriodDiscriminator()
    losses = {
        "mel": MelSpectrogramLoss(fs=features.fs, n_fft=1024, hop_length=256, win_length=1024, n_mels=80,
                                  fmin=0, fmax=features.fs // 2, log_base=None),
        "gen_adv": GeneratorAdversarialLoss(average_by_discriminators=False, loss_type="mse"),
        "dis_adv": DiscriminatorAdversarialLoss(average_by_discriminators=False, loss_type="mse"),
        "fm": FeatureMatchLoss(average_by_layers=False, average_by_discriminators=False,
                               include_final_outputs=False),
    }
    return generator, discriminator, losses


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class Normalised(torch.nn.Module):
    """The generator behind the per-bin input normalisation: (B, K, n_mels) log-mel -> (B, K * hop) audio."""

    def __init__(self, generator: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(((mel - self.mean) / self.std).transpose(1, 2))[:, 0]


def vocode_all(model: Normalised, extractor, refs: List[torch.Tensor], heavy: bool) -> Dict[str, float]:
    model.eval()
    totals: Dict[str, List[float]] = {}
    for ref in refs:
        with torch.no_grad():
            wav = model(extractor(ref[None]))[0].numpy()
        for name, value in score(ref.numpy(), wav, extractor, heavy=heavy).items():
            totals.setdefault(name, []).append(value)
    model.train()
    return {k: float(np.nanmean(v)) for k, v in totals.items()}


def train(args) -> int:
    torch.set_num_threads(args.threads)
    features = SpecGradConfig.from_yaml(presets.resolve("frame")).features
    extractor = LogMelExtractor(features)
    train_paths, dev_paths, _ = prior_study.split_clips(3)
    data = SegmentDataset(train_paths, extractor, SEGMENT_FRAMES)
    mels = torch.cat(data.mels())
    generator, discriminator, losses = build(features)
    model = Normalised(generator, mels.mean(0), mels.std(0))
    g_opt = torch.optim.Adam(generator.parameters(), **ADAM)
    d_opt = torch.optim.Adam(discriminator.parameters(), **ADAM)
    dev = prior_study.load_refs(dev_paths, args.dev_seconds)
    out = args.out
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    state = {"cpu_s": 0.0, "step": 0, "marks": [], "seed": args.seed}
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    if ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        discriminator.load_state_dict(saved["discriminator"])
        g_opt.load_state_dict(saved["g_opt"])
        d_opt.load_state_dict(saved["d_opt"])
        state = saved["state"]
        set_rng_state(saved["rng"])
        log.info("resumed at step %d, %.1f core-minutes", state["step"], state["cpu_s"] / 60)
    (out / "run.json").write_text(json.dumps({
        "generator": "espnet2 HiFiGANGenerator defaults (V1)",
        "discriminator": "HiFiGANMultiScaleMultiPeriodDiscriminator",
        "lambda_mel": LAMBDA_MEL, "lambda_adv": LAMBDA_ADV, "lambda_fm": LAMBDA_FM, "batch": BATCH,
        "segment_frames": SEGMENT_FRAMES, "adam": {**ADAM, "betas": list(ADAM["betas"])}, "features": features.__dict__,
        "threads": args.threads, "seed": args.seed, "train_clips": [p.stem for p in train_paths],
        "dev_clips": [p.stem for p in dev_paths]}, indent=1))
    model.train()
    discriminator.train()
    last_ckpt = state["cpu_s"]
    for mark in sorted(float(m) for m in args.marks.split(",")):
        if mark in state["marks"]:
            continue
        while state["cpu_s"] < mark * 60:
            t0 = time.process_time()
            items = [data[random.randrange(len(data))] for _ in range(BATCH)]
            y = torch.stack([w for w, _ in items])[:, None]
            mel = torch.stack([m for _, m in items])
            y_hat = model(mel)[:, None]
            p_hat = discriminator(y_hat)
            with torch.no_grad():
                p = discriminator(y)
            mel_loss = losses["mel"](y_hat, y)
            g_loss = (LAMBDA_MEL * mel_loss + LAMBDA_ADV * losses["gen_adv"](p_hat)
                      + LAMBDA_FM * losses["fm"](p_hat, p))
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            with torch.no_grad():
                y_hat = model(mel)[:, None]
            real, fake = losses["dis_adv"](discriminator(y_hat), discriminator(y))
            d_opt.zero_grad()
            (real + fake).backward()
            d_opt.step()
            state["step"] += 1
            state["cpu_s"] += time.process_time() - t0
            if state["step"] % 10 == 0:
                log.info("step %d  %.1f core-min  mel %.3f  gen %.3f  dis %.3f", state["step"],
                         state["cpu_s"] / 60, mel_loss.item(), g_loss.item(), (real + fake).item())
            if state["cpu_s"] - last_ckpt > args.checkpoint_minutes * 60:
                save_atomic({"model": model.state_dict(), "discriminator": discriminator.state_dict(),
                             "g_opt": g_opt.state_dict(), "d_opt": d_opt.state_dict(), "state": state,
                             "rng": rng_state()}, ckpt)
                last_ckpt = state["cpu_s"]
        scores = vocode_all(model, extractor, dev, heavy=False)
        state["marks"].append(mark)
        entry = {"core_min": state["cpu_s"] / 60, "step": state["step"], **scores}
        with open(out / "curve.jsonl", "a") as f:
            f.write(scores_to_json(entry, indent=None))
        log.info("mark %g core-min: %s", mark, {k: round(v, 3) for k, v in entry.items()})
        save_atomic(model.state_dict(), out / "snapshots" / f"cpu{mark:g}min.pt")
        save_atomic({"model": model.state_dict(), "discriminator": discriminator.state_dict(),
                     "g_opt": g_opt.state_dict(), "d_opt": d_opt.state_dict(), "state": state,
                     "rng": rng_state()}, ckpt)
        last_ckpt = state["cpu_s"]
    return 0


def final(args) -> int:
    torch.set_num_threads(args.threads)
    features = SpecGradConfig.from_yaml(presets.resolve("frame")).features
    extractor = LogMelExtractor(features)
    generator, _, _ = build(features)
    model = Normalised(generator, torch.zeros(features.n_mels), torch.ones(features.n_mels))
    saved = torch.load(args.out / "checkpoint.pt", weights_only=False)
    model.load_state_dict(saved["model"])
    generator.remove_weight_norm()
    _, dev_paths, eval_paths = prior_study.split_clips(3)
    result = {"core_min": saved["state"]["cpu_s"] / 60, "step": saved["state"]["step"]}
    for split, paths in (("dev", dev_paths), ("eval", eval_paths)):
        result[split] = {"clips": [p.stem for p in paths],
                         **vocode_all(model, extractor, prior_study.load_refs(paths, 0), heavy=True)}
    (args.out / "final.json").write_text(scores_to_json(result))
    print(json.dumps(result, indent=1))
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "final"])
    p.add_argument("--out", type=Path, default=Path("exp/hifigan_peer"))
    p.add_argument("--marks", default="15,30,45,60", help="train: CPU core-minute marks to evaluate at")
    p.add_argument("--checkpoint_minutes", type=float, default=5.0, help="train: core-minutes between checkpoints")
    p.add_argument("--dev_seconds", type=float, default=3.0, help="dev clips cropped to this many seconds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return train(args) if args.command == "train" else final(args)


if __name__ == "__main__":
    sys.exit(main())
