"""One prepared GPU check: what our users' GPUs do with SpecGrad, in one short run.

    python bench/gpu_check.py --out docs/gpu_check          # on one GPU: under 8 minutes
    python bench/gpu_check.py --device cpu --minutes 0.2 --presets frame --train_preset frame \\
        --timing_steps 1 --eval_clips 1 --eval_seconds 1 --rtf_seconds 1 --out /tmp/gc   # the test

1. Training speed per preset (the presets' own batch and segment), float32 (TF32 matmuls)
   and with AMP (bf16 autocast where the device has it, else fp16 with a grad scaler):
   steps/s and audio-seconds/s, median over --timing_steps after warm-up.
2. A fixed-time training run of --train_preset (--minutes of wall time, AMP, EMA) on the
   ljspeech_mini training clips, its EMA scored on ljspeech_eval at WG-6 beside Griffin-Lim.
3. Inference RTF at WG-3 / WG-6 per preset against ESPnet's HiFi-GAN V1 (weight norm
   removed), same device, same 5 s mel.
Writes <out>.json and <out>.md (one table per part, the device named).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from espnet2.utils.types import str2bool

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from specgrad_plugin import precision  # noqa: E402
from specgrad_plugin.config import SpecGradConfig  # noqa: E402
from specgrad_plugin.data import SegmentDataset, corpus_wavs, read_wav, shared_data_dir  # noqa: E402
from specgrad_plugin.features import LogMelExtractor, crop_to_hop  # noqa: E402
from specgrad_plugin.priors import level_statistics  # noqa: E402
from specgrad_plugin.scoring import griffin_lim, score, scores_to_json  # noqa: E402
from specgrad_plugin.synthetic import speech_like  # noqa: E402
from specgrad_plugin.training import ema_update, make_ema  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402


def clips(split: str, n: int, seconds: float = 0.0) -> List[np.ndarray]:
    """ljspeech_mini's first 29 clips (train) or ljspeech_eval (eval); generated without the data."""
    root = shared_data_dir()
    if root is None:
        return [speech_like(seconds or 4.0, 22050, seed=i + (100 if split == "eval" else 0)) for i in range(n)]
    paths = corpus_wavs(root / "ljspeech_mini")[:29] if split == "train" else corpus_wavs(root / "ljspeech_eval")
    out = [read_wav(p, 22050, 256) for p in paths[:n]]
    return [c[: int(seconds * 22050)] if seconds else c for c in out]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Trainer:
    """One preset's optimiser step, float32 or AMP, on crops of the training clips."""

    def __init__(self, preset: str, device: torch.device, amp: bool, train_clips: List[np.ndarray]) -> None:
        cfg = SpecGradConfig.from_preset(preset)
        self.vocoder = SpecGradVocoder(cfg)
        data = SegmentDataset.for_training(train_clips, self.vocoder.features, cfg.train)
        self.vocoder.prior.set_level_statistics(*level_statistics(data.mels()))
        self.vocoder.to(device).train()
        self.loader = iter(torch.utils.data.DataLoader(
            data, batch_size=cfg.train.batch_size,
            sampler=torch.utils.data.RandomSampler(data, replacement=True, num_samples=10**8)))
        self.device, self.cfg = device, cfg
        self.dtype = precision.amp_dtype(device) if amp else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.optimizer = torch.optim.Adam(self.vocoder.parameters(), lr=cfg.train.lr)
        self.ema = make_ema(self.vocoder)
        self.steps = 0

    @property
    def audio_per_step(self) -> float:
        return self.cfg.train.batch_size * self.cfg.train.segment_frames * 256 / 22050

    def step(self) -> float:
        wav, mel = (t.to(self.device) for t in next(self.loader))
        loss, _ = self.vocoder.training_loss(wav, mel, self.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.vocoder.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        ema_update(self.ema, self.vocoder, self.cfg.train.ema_decay, self.steps)
        self.steps += 1
        return float(loss.detach())


def training_speed(presets: List[str], device: torch.device, steps: int, train_clips, use_amp: bool) -> List[Dict]:
    rows = []
    for preset in presets:
        for amp in (False, True):
            if amp and not use_amp:
                continue
            trainer = Trainer(preset, device, amp, train_clips)
            times = []
            for i in range(steps + 2):  # two warm-up steps (allocator, autotuning) are not counted
                sync(device)
                start = time.perf_counter()
                trainer.step()
                sync(device)
                if i >= 2:
                    times.append(time.perf_counter() - start)
            per_step = statistics.median(times)
            rows.append({"preset": preset, "amp": str(trainer.dtype).replace("torch.", "") if amp else "fp32/tf32",
                         "steps_per_s": 1 / per_step, "audio_s_per_s": trainer.audio_per_step / per_step})
            del trainer
    return rows


def fixed_time_run(preset: str, device: torch.device, minutes: float, train_clips, eval_clips, amp: bool) -> Dict:
    trainer = Trainer(preset, device, amp, train_clips)
    deadline = time.perf_counter() + 60 * minutes
    losses = []
    while time.perf_counter() < deadline or trainer.steps == 0:
        losses.append(trainer.step())
    model = trainer.ema.eval()
    scorer = LogMelExtractor(model.cfg.features)  # scores are computed on the CPU
    rows, floor = [], []
    with torch.no_grad():
        for clip in eval_clips:
            ref = crop_to_hop(torch.from_numpy(clip), 256)
            mel = model.features(ref[None].to(device))[0]
            wav = model(mel, schedule="WG-6", seed=0).cpu().numpy()
            rows.append(score(ref.numpy(), wav, scorer, heavy=False))
            floor.append(score(ref.numpy(), griffin_lim(mel.cpu(), model.cfg.features), scorer, heavy=False))
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    gl = {k: float(np.nanmean([r[k] for r in floor])) for k in floor[0]}
    return {"preset": preset, "minutes": minutes, "amp": amp, "steps": trainer.steps,
            "last_loss": float(np.mean(losses[-20:])), "WG-6": mean, "griffin_lim": gl}


def eval_clip_of(seconds: float) -> torch.Tensor:
    """The first eval clip repeated or cut to ``seconds`` (whole hops)."""
    clip = crop_to_hop(torch.from_numpy(clips("eval", 1)[0]), 256)
    n = int(seconds * 22050) // 256 * 256
    return clip.repeat(n // clip.numel() + 1)[:n]


def time_systems(systems: Dict[str, Callable[[], object]], device: torch.device, repeats: int) -> Dict[str, float]:
    """Median seconds per call of each system, round-robin after one warm-up call each."""
    times: Dict[str, List[float]] = {name: [] for name in systems}
    with torch.inference_mode():
        for run in systems.values():
            run()  # warm-up: allocation, kernel choice, a graph's capture
        for _ in range(repeats):
            for name, run in systems.items():
                sync(device)
                start = time.perf_counter()
                run()
                sync(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def inference_rtf(presets: List[str], device: torch.device, seconds: float, repeats: int) -> List[Dict]:
    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    clip = eval_clip_of(seconds)
    systems = {}
    for preset in presets:
        model = SpecGradVocoder(SpecGradConfig.from_preset(preset)).to(device).eval()
        mel = model.features(clip[None].to(device))[0]
        for schedule in ("WG-3", "WG-6"):
            systems[f"{preset} {schedule}"] = lambda m=model, s=schedule, x=mel: m(x, schedule=s)
    hifigan = HiFiGANGenerator().to(device).eval()
    hifigan.remove_weight_norm()
    systems["HiFi-GAN V1"] = lambda x=mel: hifigan.inference(x)
    seconds_per = time_systems(systems, device, repeats)
    audio = clip.numel() / 22050
    return [{"system": name, "rtf": t / audio, "x_hifigan": t / seconds_per["HiFi-GAN V1"]}
            for name, t in seconds_per.items()]


def graphed_rtf(device: torch.device, seconds: float, repeats: int, batches: List[int]) -> List[Dict]:
    """The shipped model at WG-6 eager, batched and CUDA-graphed (graphed.GraphedVocoder), at
    each of ``batches``, against HiFi-GAN V1 at the same batch: seconds per batch and the ratio.
    max_diff: the largest difference of a graphed item from the same item vocoded eagerly."""
    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    from specgrad_plugin.batched import vocode_batch
    from specgrad_plugin.graphed import GraphedVocoder

    clip = eval_clip_of(seconds)
    model = SpecGradVocoder.from_pretrained("ljspeech", device=device)
    mel = model.features(clip[None].to(device))[0]
    graphed = GraphedVocoder(model, "WG-6")
    hifigan = HiFiGANGenerator().to(device).eval()
    hifigan.remove_weight_norm()
    rows = []
    for batch in batches:
        mels = [mel] * batch
        seconds_per = time_systems({
            "eager, one by one": lambda m=mels: [model(x, schedule="WG-6") for x in m],
            "batched (masked)": lambda m=mels: vocode_batch(model, m, "WG-6"),
            "CUDA graph": lambda m=mels: graphed(m),
            "HiFi-GAN V1": lambda m=mels: hifigan(torch.stack(m).transpose(1, 2)),
        }, device, repeats)
        with torch.inference_mode():
            alone = model(mel, schedule="WG-6")
            diff = max(float((wav - alone).abs().max()) for wav in graphed(mels))
        rows += [{"system": name, "batch": batch, "s_per_batch": t, "x_hifigan": t / seconds_per["HiFi-GAN V1"],
                  "max_diff": diff if name == "CUDA graph" else None} for name, t in seconds_per.items()]
    return rows


def markdown(result: Dict) -> str:
    """The parts finished so far, one table each."""
    lines = [f"# GPU check: {result['device']}", "", f"torch {result['torch']}, {result['date']}; "
             f"TF32 {'on' if result['tf32'] else 'off'} for float32.", ""]
    if "training_speed" in result:
        lines += ["| preset | precision | steps/s | audio-s/s |", "|---|---|---|---|"]
        lines += [f"| {r['preset']} | {r['amp']} | {r['steps_per_s']:.2f} | {r['audio_s_per_s']:.1f} |"
                  for r in result["training_speed"]]
    if "fixed_time_run" in result:
        run = result["fixed_time_run"]
        keys = [k for k in ("mel_l1", "mr_stft", "pesq", "stoi") if k in run["WG-6"]]
        lines += ["", f"Fixed-time run: {run['preset']}, {run['minutes']:g} min "
                  f"{'with AMP' if run.get('amp', True) else 'in float32'}, {run['steps']} steps, "
                  f"EMA scored on {result['eval_clips']} ljspeech_eval clips", "",
                  "| system | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
                  f"| {run['preset']} WG-6 | " + " | ".join(f"{run['WG-6'][k]:.3f}" for k in keys) + " |",
                  "| Griffin-Lim (32 it.) | " + " | ".join(f"{run['griffin_lim'][k]:.3f}" for k in keys) + " |"]
    if "inference" in result:
        lines += ["", f"Inference, {result['rtf_seconds']:g} s input", "",
                  "| system | RTF | x HiFi-GAN V1 |", "|---|---|---|"]
        lines += [f"| {r['system']} | {r['rtf']:.4f} | {r['x_hifigan']:.2f} |" for r in result["inference"]]
    if "graphed" in result:
        lines += ["", f"Shipped model at WG-6 against HiFi-GAN V1 at the same batch, {result['rtf_seconds']:g} s "
                  "per item", "", "| system | batch | s per batch | x HiFi-GAN V1 | max diff from eager |",
                  "|---|---|---|---|---|"]
        for r in result["graphed"]:
            diff = "" if r["max_diff"] is None else f"{r['max_diff']:.1e}"
            lines.append(f"| {r['system']} | {r['batch']} | {r['s_per_batch']:.4f} | {r['x_hifigan']:.2f} | {diff} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--minutes", type=float, default=4.0, help="wall time of the fixed-time training run")
    p.add_argument("--presets", default="base,frame", help="presets for the speed tables")
    p.add_argument("--train_preset", default="base", help="preset of the fixed-time run")
    p.add_argument("--timing_steps", type=int, default=10)
    p.add_argument("--eval_clips", type=int, default=5)
    p.add_argument("--eval_seconds", type=float, default=0.0, help="crop eval clips (0: whole)")
    p.add_argument("--rtf_seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per system in the inference tables")
    p.add_argument("--amp", type=str2bool, default=True,
                   help="time AMP beside float32 and train the fixed-time run with it")
    p.add_argument("--graphed_batches", default="1,16", help="batch sizes of the CUDA-graph table")
    p.add_argument("--tf32", type=str2bool, default=True)
    p.add_argument("--out", type=Path, default=Path("docs/gpu_check"), help="writes <out>.json and <out>.md")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible; use --device cpu", file=sys.stderr)
        return 2
    precision.set_tf32(args.tf32)
    torch.manual_seed(0)
    presets = args.presets.split(",")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'}, " \
        f"{torch.get_num_threads()} threads)"
    train_clips = clips("train", 29)
    eval_clips = clips("eval", args.eval_clips, args.eval_seconds)
    result = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "tf32": args.tf32,
              "eval_clips": len(eval_clips), "rtf_seconds": args.rtf_seconds}
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts = (("training_speed", lambda: training_speed(presets, device, args.timing_steps, train_clips, args.amp)),
             ("inference", lambda: inference_rtf(presets, device, args.rtf_seconds, args.repeats)),
             ("graphed", lambda: graphed_rtf(device, args.rtf_seconds, args.repeats,
                                             [int(b) for b in args.graphed_batches.split(",")])),
             ("fixed_time_run", lambda: fixed_time_run(args.train_preset, device, args.minutes, train_clips,
                                                       eval_clips, args.amp)))
    for key, part in parts:
        result[key] = part()
        result["wall_s"] = time.perf_counter() - started
        # written after every part: a run stopped by its time limit keeps the parts it finished
        Path(f"{args.out}.json").write_text(scores_to_json(result))
        Path(f"{args.out}.md").write_text(markdown(result))
        print(f"[{result['wall_s']:.0f} s] {key} done", flush=True)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
