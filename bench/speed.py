"""Speed on this machine: SpecGrad RTF per preset, prior and schedule, against ESPnet's
HiFiGANGenerator (V1 sizes, random weights: speed only) on the same mel; peak memory
by input length; training steps per second. Prints Markdown tables; --out writes them.

    python bench/speed.py --quick            # under a minute: tiny only, short input
    python bench/speed.py --out docs/speed.md
    python bench/speed.py --families         # denoiser families: frame vs tiny WaveNet vs HiFi-GAN
    python bench/speed.py --shipped ljspeech-v4,ljspeech-v5 --seconds 5 --repeats 9 --threads 2

Systems are timed round-robin (every repeat visits each system once) and the median
is reported, so a busy neighbour slows all systems alike; compare ratios, and only
within one run. Peak memory is measured in a fresh child process per input length.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from specgrad_plugin.config import FeatureConfig

REPO = Path(__file__).resolve().parents[1]
SCHEDULES = ["WG-3", "WG-6", "PG-6", "WG-50"]
# Every system here is timed on mels of the presets' features (ESPnet's LJSpeech settings).
FEATURES = FeatureConfig()


def audio_seconds(mel: torch.Tensor) -> float:
    """Seconds of audio that a (K, n_mels) mel of FEATURES stands for."""
    return mel.shape[0] * FEATURES.hop_length / FEATURES.fs


def test_mel(seconds: float) -> torch.Tensor:
    """(K, 80) log10 mel of real speech when the shared sample is present, else generated."""
    from specgrad_plugin.data import corpus_wavs, read_wav, shared_data_dir
    from specgrad_plugin.features import LogMelExtractor, crop_to_hop
    from specgrad_plugin.synthetic import speech_like

    n = int(seconds * FEATURES.fs)
    root = shared_data_dir()
    wav = (read_wav(corpus_wavs(root / "ljspeech_mini")[0], FEATURES.fs, FEATURES.hop_length)[:n] if root
           else speech_like(seconds))
    wav = torch.from_numpy(wav)
    if wav.numel() < n:
        wav = wav.repeat(n // wav.numel() + 1)[:n]
    with torch.no_grad():
        return LogMelExtractor(FEATURES)(crop_to_hop(wav, FEATURES.hop_length)[None])[0]


def specgrad(preset: str, prior: str):
    from specgrad_plugin import runtime
    from specgrad_plugin.config import SpecGradConfig
    from specgrad_plugin.vocoder import SpecGradVocoder

    runtime.tune_cpu_allocator()  # as the command-line tools do; $SPECGRAD_MALLOC=default opts out
    cfg = SpecGradConfig.from_preset(preset)
    cfg.prior.kind = prior
    return SpecGradVocoder(cfg).eval()


def hifigan() -> Callable[[torch.Tensor], torch.Tensor]:
    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    generator = HiFiGANGenerator().eval()  # ESPnet's defaults are the V1 sizes
    generator.remove_weight_norm()
    return lambda mel: generator.inference(mel)


def mb_melgan() -> Callable[[torch.Tensor], torch.Tensor]:
    """Multi-band MelGAN: ESPnet's MelGANGenerator and PQMF with the sizes of the PWG toolkit's
    LJSpeech multi_band_melgan.v2 config (4 bands, 384 channels, upsampling 8 x 4 x 2)."""
    from espnet2.gan_tts.melgan import MelGANGenerator
    from espnet2.gan_tts.melgan.pqmf import PQMF

    generator = MelGANGenerator(in_channels=80, out_channels=4, kernel_size=7, channels=384,
                                upsample_scales=[8, 4, 2], stack_kernel_size=3, stacks=4).eval()
    generator.remove_weight_norm()
    pqmf = PQMF(subbands=4).eval()
    return lambda mel: pqmf.synthesis(generator(mel.T[None]))[0, 0]


def vocos_mel() -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """Vocos's mel variant (ConvNeXt backbone 512 x 8 layers, 1536 inner, iSTFT head n_fft 1024,
    hop 256; 13.5 M parameters) on our 80 bands; None when the vocos package is missing."""
    try:
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone
    except ImportError:
        return None
    backbone = VocosBackbone(input_channels=80, dim=512, intermediate_dim=1536, num_layers=8).eval()
    head = ISTFTHead(dim=512, n_fft=1024, hop_length=256, padding="same").eval()
    return lambda mel: head(backbone(mel.T[None]))[0]


def time_round_robin(systems: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, float]:
    samples: Dict[str, List[float]] = {name: [] for name in systems}
    with torch.inference_mode():
        for run in systems.values():  # warm-up: first calls pay one-off allocation and dispatch costs
            run()
    for _ in range(repeats):
        for name, run in systems.items():
            start = time.perf_counter()
            with torch.inference_mode():
                run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_memory_child(seconds: float, preset: str) -> float:
    """Peak RSS (MB) of a fresh process vocoding `seconds` of mel with WG-3."""
    code = (f"import sys, resource, torch; sys.path.insert(0, {str(REPO / 'bench')!r}); import speed; "
            f"v = speed.specgrad({preset!r}, 'specgrad'); mel = speed.test_mel({seconds}); "
            "torch.inference_mode()(v)(mel, schedule='WG-3'); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def filter_seconds(model, mel: torch.Tensor, steps: int, repeats: int) -> float:
    """Seconds a sampling run spends in the prior: building H once, then drawing L z per step."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            response = model.prior.response(mel[None])
            for _ in range(steps):
                model.prior.noise(response)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rtf_child(preset: str, seconds: float, threads: int, cache_mb: int, allocator: str) -> float:
    """RTF of one WG-6 run (after a warm-up run) in a fresh process: process-wide settings
    (allocator, threads) cannot be undone inside one process."""
    code = (f"import sys, time, torch; sys.path.insert(0, {str(REPO / 'bench')!r}); import speed; "
            f"torch.set_num_threads({threads}); v = speed.specgrad({preset!r}, 'specgrad'); "
            f"v.cfg.inference.conditioning_cache_mb = {cache_mb}; mel = speed.test_mel({seconds}); "
            "v(mel, schedule='WG-6'); t = time.perf_counter(); v(mel, schedule='WG-6'); "
            "print((time.perf_counter() - t) / speed.audio_seconds(mel))")
    env = {**os.environ, "SPECGRAD_MALLOC": allocator}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def inference_settings_table(preset: str, seconds: float, repeats: int, threads: int) -> List[str]:
    """WG-6 RTF with each inference speed-up switched off in turn (fresh processes, round-robin)."""
    settings = {
        "all on (default)": (threads, 1024, "tuned"),
        "conditioner recomputed every step": (threads, 0, "tuned"),
        "glibc malloc defaults": (threads, 1024, "default"),
        "both off": (threads, 0, "default"),
        "1 thread": (1, 1024, "tuned"),
    }
    samples: Dict[str, List[float]] = {name: [] for name in settings}
    for _ in range(repeats):
        for name, (n_threads, cache_mb, allocator) in settings.items():
            samples[name].append(rtf_child(preset, seconds, n_threads, cache_mb, allocator))
    base = statistics.median(samples["all on (default)"])
    lines = [f"| {preset}, WG-6, {seconds:g} s input | RTF | x all on |", "|---|---|---|"]
    for name, values in samples.items():
        rtf = statistics.median(values)
        lines.append(f"| {name} | {rtf:.3f} | {rtf / base:.2f} |")
    return lines + [""]


def training_step_seconds(preset: str, steps: int, clock=time.perf_counter) -> float:
    """Median seconds per optimiser step of ``preset`` (its batch and segment) by ``clock``;
    the first step warms up and is not counted."""
    vocoder = specgrad(preset, "specgrad").train()
    cfg = vocoder.cfg.train
    wav = torch.randn(cfg.batch_size, cfg.segment_frames * vocoder.cfg.features.hop_length) * 0.1
    mel = vocoder.features(wav)
    optimizer = torch.optim.Adam(vocoder.parameters(), lr=cfg.lr)
    times = []
    for _ in range(steps + 1):
        start = clock()
        loss, _ = vocoder.training_loss(wav, mel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(clock() - start)
    return statistics.median(times[1:])


def training_steps_per_second(preset: str, steps: int) -> float:
    return 1.0 / training_step_seconds(preset, steps)


def families_tables(presets: List[str], lengths: List[float], repeats: int, threads: int,
                    train_steps: int) -> List[str]:
    """Denoiser families: RTF at WG-3 / WG-6 against HiFi-GAN V1 (weight norm
    removed, as deployed) on each input length, round-robin in one process; then training
    throughput in audio-seconds per CPU-second (one thread, process time, each preset's own
    batch and segment)."""
    from specgrad_plugin.denoisers import count_parameters

    models = {preset: specgrad(preset, "specgrad") for preset in presets}
    vocode = hifigan()
    lines = [f"Inference, {threads} threads, median of {repeats} round-robin runs (RTF = seconds per audio-second)",
             "", "| input | system | RTF | x HiFi-GAN V1 |", "|---|---|---|---|"]
    for length in lengths:
        mel = test_mel(length)
        audio = audio_seconds(mel)
        systems = {f"{preset} WG-{n}": (lambda m=model, s=f"WG-{n}", x=mel: m(x, schedule=s))
                   for preset, model in models.items() for n in (3, 6)}
        systems["HiFi-GAN V1"] = lambda x=mel: vocode(x)
        taken = time_round_robin(systems, repeats)
        for name, value in taken.items():
            lines.append(f"| {audio:.2f} s | {name} | {value / audio:.3f} | {value / taken['HiFi-GAN V1']:.2f} |")
    lines += ["", "Training, 1 thread: audio-seconds of crops per CPU-second (median of "
              f"{train_steps} steps after one warm-up)", "",
              "| preset | denoiser parameters | batch x segment | CPU-s per step | audio-s per CPU-s |",
              "|---|---|---|---|---|"]
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    for preset in presets:
        cfg = models[preset].cfg
        step = training_step_seconds(preset, train_steps, time.process_time)
        hop, fs = cfg.features.hop_length, cfg.features.fs
        audio = cfg.train.batch_size * cfg.train.segment_frames * hop / fs
        parameters = count_parameters(models[preset].denoiser)
        lines.append(f"| {preset} | {parameters / 1e6:.2f} M | {cfg.train.batch_size} x "
                     f"{cfg.train.segment_frames * hop} | {step:.3f} | {audio / step:.1f} |")
    torch.set_num_threads(threads_before)
    return lines + [""]


def shipped_tables(names: List[str], seconds: float, repeats: int, threads: int) -> List[str]:
    """Shipped models (versioned names) at WG-3 and WG-6 and HiFi-GAN V1, round-robin in this
    process on one mel: a Markdown table of RTF and the ratio to HiFi-GAN V1's time. An
    unknown name stops the run before anything is timed."""
    from specgrad_plugin.pretrained import UnknownModelError
    from specgrad_plugin.vocoder import SpecGradVocoder

    models = {}
    for name in names:
        try:
            models[name] = SpecGradVocoder.from_pretrained(name).eval()
        except UnknownModelError as error:
            raise SystemExit(f"--shipped: {error}") from None
        if models[name].cfg.features != FEATURES:
            raise SystemExit(f"--shipped: {name}'s features ({models[name].cfg.features}) are not the ones this "
                             f"bench times every system on ({FEATURES}); time it on its own mels instead")
    mel = test_mel(seconds)
    audio = audio_seconds(mel)
    systems = {f"{name} {schedule}": (lambda m=model, s=schedule: m(mel, schedule=s, seed=0))
               for name, model in models.items() for schedule in ("WG-3", "WG-6")}
    vocode = hifigan()
    systems["HiFi-GAN V1"] = lambda: vocode(mel)
    taken = time_round_robin(systems, repeats)
    lines = [f"# Shipped models on this machine ({threads} threads, torch {torch.__version__}, "
             f"{audio:.2f} s input, median of {repeats})", "",
             "| system | RTF | x HiFi-GAN V1 |", "|---|---|---|"]
    lines += [f"| {name} | {value / audio:.4f} | {value / taken['HiFi-GAN V1']:.3f} |" for name, value in taken.items()]
    return lines + [""]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny preset, 1 s input, WG-3/WG-6, 1 repeat")
    p.add_argument("--seconds", type=float, default=2.0, help="input length for the RTF tables")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", type=Path, default=None, help="also write the tables here (Markdown)")
    p.add_argument("--train_presets", default=None,
                   help="presets to time training for (default: those benchmarked; a base step needs ~7 GB)")
    p.add_argument("--families", action="store_true",
                   help="only the denoiser-family tables: frame vs tiny WaveNet vs HiFi-GAN, 1 s and 5 s inputs")
    p.add_argument("--shipped", default=None,
                   help="only: these shipped models (comma-separated versioned names) at WG-3 and WG-6 beside "
                        "HiFi-GAN V1, on --seconds of mel")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.shipped:
        text = "\n".join(shipped_tables(args.shipped.split(","), args.seconds, args.repeats, args.threads)) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text)
        return 0
    if args.families:
        text = "\n".join([f"# Denoiser families on this machine (torch {torch.__version__})", ""]
                         + families_tables(["frame", "tiny"], [1.0, 5.0], args.repeats, args.threads, 5)) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text)
        return 0
    presets = ["tiny"] if args.quick else ["tiny", "base"]
    schedules = ["WG-3", "WG-6"] if args.quick else SCHEDULES
    seconds, repeats = (1.0, 1) if args.quick else (args.seconds, args.repeats)
    mel = test_mel(seconds)
    audio = audio_seconds(mel)
    lines = [f"# Speed on this machine ({args.threads} threads, torch {torch.__version__}, "
             f"{audio:.2f} s input, median of {repeats})", ""]

    models = {(preset, prior): specgrad(preset, prior) for preset in presets for prior in ("specgrad", "priorgrad")}
    systems = {f"{preset} {prior} {schedule}": (lambda m=model, s=schedule: m(mel, schedule=s))
               for (preset, prior), model in models.items() for schedule in schedules}
    vocode = hifigan()
    systems["HiFi-GAN V1"] = lambda: vocode(mel)
    seconds_taken = time_round_robin(systems, repeats)
    rtf = {name: value / audio for name, value in seconds_taken.items()}
    lines += ["| preset | schedule | RTF specgrad | RTF priorgrad | filter overhead | x HiFi-GAN V1 |",
              "|---|---|---|---|---|---|"]
    for preset in presets:
        for schedule in schedules:
            spec, prior = rtf[f"{preset} specgrad {schedule}"], rtf[f"{preset} priorgrad {schedule}"]
            lines.append(f"| {preset} | {schedule} | {spec:.3f} | {prior:.3f} | {100 * (spec / prior - 1):+.1f} % "
                         f"| {spec / rtf['HiFi-GAN V1']:.1f} |")
    lines += ["", f"HiFi-GAN V1 (ESPnet HiFiGANGenerator defaults): RTF {rtf['HiFi-GAN V1']:.3f}", ""]
    # The end-to-end columns above differ by run-to-run noise; the prior's own cost, timed
    # directly (median of 5), is the filter's overhead.
    lines += ["| preset | prior time per WG-6 run, specgrad | priorgrad | filter overhead vs priorgrad run |",
              "|---|---|---|---|"]
    for preset in presets:
        spec = filter_seconds(models[(preset, "specgrad")], mel, 6, 5)
        prior = filter_seconds(models[(preset, "priorgrad")], mel, 6, 5)
        total = seconds_taken[f"{preset} priorgrad WG-6"]
        overhead = 100 * (spec - prior) / total
        lines.append(f"| {preset} | {1e3 * spec:.1f} ms | {1e3 * prior:.1f} ms | {overhead:+.2f} % |")
    lines.append("")

    if not args.quick:
        for preset in presets:
            lines += inference_settings_table(preset, seconds, repeats, args.threads)
        lines += ["| input | peak RSS, tiny, WG-3 (fresh process) |", "|---|---|"]
        for length in (5.0, 30.0, 120.0):
            lines.append(f"| {length:.0f} s | {peak_memory_child(length, 'tiny'):.0f} MB |")
        lines.append("")
    lines += ["| preset | training steps / s (its batch and segment) |", "|---|---|"]
    for preset in args.train_presets.split(",") if args.train_presets else presets:
        steps = 1 if preset == "base" else (2 if args.quick else 3)  # a base step takes ~1.5 min on 2 cores
        lines.append(f"| {preset} | {training_steps_per_second(preset, steps):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
