"""Equal-budget prior study: the tiny preset trained with each noise prior and filter choice.

    # one training run per variant, budget in CPU core-minutes of the training loop itself
    nice python bench/prior_study.py train --variant specgrad --marks 4,8,12,20,30,45 --out exp/prior_study
    # fine-tuning a shipped model instead, with its own config and the variant's train keys
    nice python bench/prior_study.py train --init ljspeech-v1 --variant finetune_pitch_down \
        --marks 10,20 --out exp/finetune
    # final table on ljspeech_eval (never trained or tuned on) from each variant's last snapshot
    python bench/prior_study.py final --out exp/prior_study --variants specgrad,priorgrad,diffwave
    # Markdown tables + learning-curve plot from what the runs wrote
    python bench/prior_study.py report --out exp/prior_study --plot docs/prior_study_curves.png

The variants and what each is compared with: bench/study_variants.py.

Budget: every variant trains on one thread with the same seed until its training loop
has used each mark's CPU time (time.process_time, evaluation excluded), so runs that
share the machine stay comparable. At each mark the EMA weights are evaluated on the
dev clips (the last --dev_clips of ljspeech_mini, never trained on): one-step
denoising SNR at fixed training steps t (the network's x0 estimate from x_t, in dB,
comparable across priors unlike their losses) and samples at WG-3 / WG-6 scored
with specgrad_plugin.scoring. A stopped run resumes from its last mark; raising the
marks continues it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from study_plots import plot_curves  # noqa: E402
from study_variants import VARIANTS, variant_config  # noqa: E402

from specgrad_plugin import diffusion  # noqa: E402
from specgrad_plugin.checkpoints import load_grown  # noqa: E402
from specgrad_plugin.data import SegmentDataset, corpus_wavs, read_scp, read_wav, shared_data_dir  # noqa: E402
from specgrad_plugin.features import crop_to_hop  # noqa: E402
from specgrad_plugin.priors import level_statistics  # noqa: E402
from specgrad_plugin.scoring import griffin_lim, score, scores_from_json, scores_to_json  # noqa: E402
from specgrad_plugin.training import fit  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

SNR_STEPS = (5, 10, 20, 35, 50)
log = logging.getLogger("prior_study")


def split_clips(dev_clips: int):
    root = shared_data_dir()
    if root is None:
        raise SystemExit("no shared LJSpeech folder: set SPECGRAD_DATA to the folder holding ljspeech_mini/")
    paths = corpus_wavs(root / "ljspeech_mini")
    return paths[:-dev_clips], paths[-dev_clips:], corpus_wavs(root / "ljspeech_eval")


def extra_training_clips(scp: Optional[Path], held_out: Sequence[Path]) -> List[Path]:
    """The clips of a wav.scp to train on beside LJSpeech's (none without one); an empty list,
    or a clip named as a dev or eval clip, is an error naming the file."""
    if scp is None:
        return []
    paths = [Path(p) for p in read_scp(scp).values()]
    if not paths:
        raise SystemExit(f"--extra_clips {scp}: no clip listed; expected 'utt_id wav_path' lines")
    named = sorted({p.stem for p in paths} & {p.stem for p in held_out})
    if named:
        raise SystemExit(f"--extra_clips {scp}: {named[:3]} are dev or eval clips; expected other speech")
    return paths


def load_refs(paths: Sequence[Path], seconds: float, fs: int = 22050, hop: int = 256) -> List[torch.Tensor]:
    """Clips (cropped to their first ``seconds``; 0 = whole) as hop-aligned tensors."""
    refs = []
    for p in paths:
        wav = torch.from_numpy(read_wav(p, fs, hop))
        if seconds > 0:
            wav = wav[: int(seconds * fs)]
        refs.append(crop_to_hop(wav, hop))
    return refs


def snr_db(x0: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(x0.pow(2).sum() / (x0 - estimate).pow(2).sum().clamp_min(1e-12)))


def noisy_input(vocoder: SpecGradVocoder, ref: torch.Tensor, mel: torch.Tensor, t: int, seed: int):
    """(x0, x_t, abar_t) for one clip at training step t, with this prior's noise and a fixed seed."""
    abar = diffusion.alpha_bars(vocoder.train_betas.cpu())[t - 1].reshape(1)
    generator = torch.Generator().manual_seed(seed + t)
    x0 = ref[None]
    eps = vocoder.prior.noise(vocoder.prior.response(mel[None]), generator)
    return x0, diffusion.add_noise(x0, eps, abar), abar


@torch.inference_mode()
def one_step_snr(vocoder: SpecGradVocoder, ref: torch.Tensor, mel: torch.Tensor, t: int, seed: int,
                 cond: Optional[torch.Tensor] = None) -> Tuple[float, float]:
    """(input, output) SNR in dB at training step t, from one noise draw: x_t / sqrt(abar_t),
    and x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t), each against x0.
    cond: the denoiser's condition(mel, response), when the caller already has it."""
    x0, x_t, abar = noisy_input(vocoder, ref, mel, t, seed)
    cond = vocoder.denoiser.condition(mel[None], vocoder.prior.response(mel[None])) if cond is None else cond
    eps_hat = vocoder.denoiser(x_t, cond, diffusion.log_snr(abar))
    a = float(abar)
    return snr_db(x0, x_t / math.sqrt(a)), snr_db(x0, diffusion.predicted_clean(x_t, eps_hat, abar))


@torch.inference_mode()
def input_snr(vocoder: SpecGradVocoder, ref: torch.Tensor, mel: torch.Tensor, t: int, seed: int) -> float:
    """one_step_snr's input SNR without running the network: what the network starts from
    (it differs between priors, which shape and scale the noise)."""
    x0, x_t, abar = noisy_input(vocoder, ref, mel, t, seed)
    return snr_db(x0, x_t / math.sqrt(float(abar)))


def evaluate(vocoder: SpecGradVocoder, refs: List[torch.Tensor], schedules: Sequence[str],
             heavy: bool, seed: int = 1234) -> Dict[str, float]:
    """Mean over clips of the one-step SNR at SNR_STEPS and of the scores of sampled audio."""
    vocoder.eval()
    totals: Dict[str, List[float]] = {}
    for i, ref in enumerate(refs):
        with torch.no_grad():
            mel = vocoder.features(ref[None])[0]
            cond = vocoder.denoiser.condition(mel[None], vocoder.prior.response(mel[None]))
        for t in SNR_STEPS:
            snr_in, snr_out = one_step_snr(vocoder, ref, mel, t, seed + 100 * i, cond)
            totals.setdefault(f"snr_t{t}", []).append(snr_out)
            totals.setdefault(f"snr_in_t{t}", []).append(snr_in)
        for schedule in schedules:
            wav = vocoder(mel, schedule=schedule, seed=seed + i, chunk_frames=0).numpy()
            for name, value in score(ref.numpy(), wav, vocoder.features, heavy=heavy).items():
                totals.setdefault(f"{schedule}/{name}", []).append(value)
    return {k: float(np.nanmean(v)) for k, v in totals.items()}


def refuse_other_clips(state: dict, extra_clips: Optional[Path], state_file: Path) -> None:
    """A run that reached a mark resumes only with the extra clips it trained with."""
    if state["marks"] and state.get("extra_clips", "") != str(extra_clips or ""):
        raise SystemExit(f"{state_file}: trained with extra_clips={state.get('extra_clips', '')!r}, resumed with "
                         f"{str(extra_clips or '')!r}; expected the same")


def init_vocoder(init: str) -> SpecGradVocoder:
    """--init: a checkpoint file, or else a shipped model's name; SystemExit naming the flag."""
    from specgrad_plugin.pretrained import UnknownModelError

    path = Path(init)
    if path.is_file():
        return SpecGradVocoder.from_checkpoint(path)
    if path.exists() or path.suffix in (".pt", ".pth"):
        raise SystemExit(f"--init {init}: no such checkpoint file; "
                         "expected a checkpoint file or a shipped model's name")
    try:
        return SpecGradVocoder.from_pretrained(init)
    except UnknownModelError as e:
        raise SystemExit(f"--init {init}: {e}") from None


def file_sha256(path: Path) -> str:
    """A file's SHA-256, 64 hex digits."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_record(args, train_paths: Sequence[Path], dev_paths: Sequence[Path]) -> dict:
    """What state.json records of a run besides its progress: the variant, its overrides, the
    seed, the start (--init, and the SHA-256 of its file; "" for a shipped model's name or no
    start) and the clips."""
    init_file = Path(args.init) if args.init else None
    return dict(variant=args.variant, overrides=VARIANTS[args.variant], seed=args.seed, init=args.init,
                init_sha256=file_sha256(init_file) if init_file and init_file.is_file() else "",
                extra_clips=str(args.extra_clips or ""),
                train_clips=[p.stem for p in train_paths], dev_clips=[p.stem for p in dev_paths])


def train(args) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out / (args.name or args.variant)
    start = init_vocoder(args.init) if args.init else None  # a bad --init stops before any output
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    train_paths, dev_paths, eval_paths = split_clips(args.dev_clips)
    train_paths = list(train_paths) + extra_training_clips(args.extra_clips, dev_paths + eval_paths)
    if args.init:  # its EMA weights, prior statistics and mel statistics are kept as they are
        cfg = variant_config(args.variant, start.cfg)
        vocoder = SpecGradVocoder(cfg)  # with any module the variant adds, silent at the start
        log.info("grown by %s", load_grown(vocoder, start.state_dict(), f"--init {args.init}") or "nothing")
    else:
        cfg = variant_config(args.variant)
        vocoder = SpecGradVocoder(cfg)
    train_set = SegmentDataset.for_training(train_paths, vocoder.features, cfg.train, out / "world_copies")
    if not args.init:
        vocoder.prior.set_level_statistics(*level_statistics(train_set.mels()))
    sampler = torch.utils.data.RandomSampler(
        train_set, replacement=True, num_samples=10**8, generator=torch.Generator().manual_seed(args.seed))
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.train.batch_size, sampler=sampler)
    dev = load_refs(dev_paths, args.dev_seconds)
    state_file = out / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"cpu_s": 0.0, "marks": []}
    refuse_other_clips(state, args.extra_clips, state_file)
    state.update(name=out.name, **run_record(args, train_paths, dev_paths))
    for mark in sorted(float(m) for m in args.marks.split(",")):
        if mark in state["marks"]:
            continue
        start, used = time.process_time(), state["cpu_s"]
        limit = mark * 60 - used + start  # process_time() at which this mark's budget is spent
        fit(vocoder, loader, steps=10**9, out_dir=out, log_every=50, save_every=10**9,
            stop_when=lambda step, limit=limit: time.process_time() >= limit)
        state["cpu_s"] = used + time.process_time() - start
        ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
        shutil.copyfile(out / "checkpoint.pt", out / "snapshots" / f"cpu{mark:g}min.pt")
        ema = SpecGradVocoder.from_checkpoint(out / "checkpoint.pt")
        eval_start = time.time()
        row = {"core_min": state["cpu_s"] / 60, "step": ckpt["step"], "skipped": ckpt["skipped"],
               **evaluate(ema, dev, ["WG-3", "WG-6"], heavy=False)}
        row["eval_s"] = time.time() - eval_start
        with open(out / "curve.jsonl", "a") as f:
            f.write(scores_to_json(row, indent=None))
        state["marks"].append(mark)
        state_file.write_text(json.dumps(state, indent=1))
        log.info("%s mark %g core-min: step %d, %s", args.variant, mark, row["step"],
                 {k: round(v, 3) for k, v in row.items() if k.startswith(("snr_t", "WG-6/mel"))})
    return 0


def final(args) -> int:
    torch.set_num_threads(args.threads)
    _, _, eval_paths = split_clips(args.dev_clips)
    refs = load_refs(eval_paths, 0)
    results = {}
    result_file = args.out / f"final_{args.tag}.json"
    if result_file.is_file():
        results = scores_from_json(result_file.read_text())
    for name in args.variants.split(","):
        if name in results:
            continue
        ckpt = args.out / name / "checkpoint.pt"
        if args.snapshot:
            ckpt = args.out / name / "snapshots" / f"cpu{args.snapshot:g}min.pt"
        vocoder = SpecGradVocoder.from_checkpoint(ckpt)
        state = json.loads((args.out / name / "state.json").read_text())
        row = {"core_min": args.snapshot or state["cpu_s"] / 60,
               "step": torch.load(ckpt, map_location="cpu", weights_only=True)["step"],
               **evaluate(vocoder, refs, args.schedules.split(","), heavy=True)}
        results[name] = row
        result_file.write_text(scores_to_json(results))
        log.info("final %s: %s", name, row)
    if "griffin_lim" not in results:
        results["griffin_lim"] = griffin_lim_scores(refs, heavy=True)
        result_file.write_text(scores_to_json(results))
    return 0


def griffin_lim_scores(refs: List[torch.Tensor], heavy: bool) -> Dict[str, float]:
    """ESPnet's Griffin-Lim (32 iterations) from each clip's own mel: the floor, as GL-32/<metric>."""
    vocoder = SpecGradVocoder(variant_config("specgrad"))
    scores = [score(r.numpy(), griffin_lim(vocoder.features(r[None])[0], vocoder.cfg.features),
                    vocoder.features, heavy=heavy) for r in refs]
    return {f"GL-32/{k}": float(np.nanmean([s[k] for s in scores])) for k in scores[0]}


def report(args) -> int:
    curves = {}
    for path in sorted(args.out.glob("*/curve.jsonl"), key=lambda p: (p.parent.name not in VARIANTS, p.parent.name)):
        if args.runs and path.parent.name not in args.runs.split(","):
            continue
        curves[path.parent.name] = [scores_from_json(line) for line in path.read_text().splitlines() if line.strip()]
    for spec in args.extra_curve or []:  # NAME=PATH:SCALE, a stored curve with its core-minutes scaled
        name, rest = spec.split("=", 1)
        path, scale = rest.rsplit(":", 1)
        rows = [scores_from_json(line) for line in Path(path).read_text().splitlines() if line.strip()]
        curves[name] = [{**r, "core_min": r["core_min"] * float(scale)} for r in rows]
    keys = [f"snr_t{t}" for t in SNR_STEPS] + ["WG-6/mel_l1", "WG-6/mr_stft", "WG-3/mel_l1"]
    print("| variant | core-min | step | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for variant, rows in curves.items():
        for r in rows:
            print(f"| {variant} | {r['core_min']:.1f} | {r['step']} | "
                  + " | ".join(f"{r.get(k, float('nan')):.3f}" for k in keys) + " |")
    print("\nInput SNR (dB) of x_t / sqrt(abar_t) on the dev clips, the same draws (no network involved):\n")
    print("| variant | " + " | ".join(f"t = {t}" for t in SNR_STEPS) + " |")
    print("|---|" + "---|" * len(SNR_STEPS))
    _, dev_paths, _ = split_clips(args.dev_clips)
    refs = load_refs(dev_paths, args.dev_seconds)
    for name in curves:
        if not (args.out / name / "checkpoint.pt").is_file():
            continue  # a stored curve without its run
        vocoder = SpecGradVocoder.from_checkpoint(args.out / name / "checkpoint.pt")
        values = []
        for t in SNR_STEPS:
            per_clip = []
            for i, ref in enumerate(refs):
                with torch.no_grad():
                    mel = vocoder.features(ref[None])[0]
                per_clip.append(input_snr(vocoder, ref, mel, t, 1234 + 100 * i))
            values.append(float(np.mean(per_clip)))
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    results = {}
    for result_file in sorted(args.out.glob("final_*.json")):
        results.update(scores_from_json(result_file.read_text()))
    if results:
        cols = sorted({k for row in results.values() for k in row if "/" in k})
        print("\nFinal, on ljspeech_eval\n\n| system | core-min | step | " + " | ".join(cols) + " |")
        print("|---|---|---|" + "---|" * len(cols))
        for name, row in results.items():
            print(f"| {name} | {row.get('core_min', 0):.1f} | {row.get('step', '-')} | "
                  + " | ".join(f"{row[c]:.3f}" if c in row else "-" for c in cols) + " |")
    if args.plot and curves:
        plot_curves(curves, args.plot, griffin_lim_scores(refs, heavy=False),
                    args.panels.split(",") if args.panels else None)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "final", "report"])
    p.add_argument("--out", type=Path, default=Path("exp/prior_study"))
    p.add_argument("--variant", default="specgrad", help=f"train: one of {sorted(VARIANTS)}")
    p.add_argument("--name", default=None, help="train: run folder name (default: the variant's)")
    p.add_argument("--variants", default="specgrad,priorgrad,diffwave", help="final: comma-separated")
    p.add_argument("--marks", default="4,8,12,20,30,45", help="train: CPU core-minute marks to evaluate at")
    p.add_argument("--schedules", default="WG-3,WG-6,WG-50", help="final: sampling schedules")
    p.add_argument("--tag", default="eval", help="final: results go to final_<tag>.json")
    p.add_argument("--snapshot", type=float, default=0,
                   help="final: score each run's snapshot at this core-minute mark (0: its last checkpoint)")
    p.add_argument("--init", default="",
                   help="train: fine-tune this shipped model (e.g. ljspeech-v1) or checkpoint file "
                        "(an ESPnet .pth with config.yaml beside it, or a checkpoint.pt)")
    p.add_argument("--extra_clips", type=Path, default=None,
                   help="train: a wav.scp of clips trained on beside LJSpeech's (bench/train_voices.py)")
    p.add_argument("--dev_clips", type=int, default=3, help="last clips of ljspeech_mini held out as dev")
    p.add_argument("--dev_seconds", type=float, default=3.0, help="dev clips cropped to this many seconds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=None, help="report: learning-curve PNG")
    p.add_argument("--panels", default=None, help="report: the plot's six metrics (comma-separated)")
    p.add_argument("--runs", default=None, help="report: only these runs of --out (comma-separated)")
    p.add_argument("--extra_curve", action="append",
                   help="report: NAME=PATH:SCALE, a stored curve.jsonl with its core-minutes multiplied by SCALE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return {"train": train, "final": final, "report": report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
