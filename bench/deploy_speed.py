"""Deployment speed on this machine: the shipped model through PyTorch and through its ONNX
graph in onnxruntime and streamed, against HiFi-GAN V1, multi-band MelGAN and Vocos (random
weights: speed only; Vocos when its package is installed) on the same 5-s mel; then batched
decoding against one by one. Prints Markdown tables; --out appends them to a file. The Vocos
row needs its package, which the project does not depend on:
``pip install --no-deps vocos encodec einops``.

    python bench/deploy_speed.py --threads 2 --repeats 3
    python bench/deploy_speed.py --threads 1 --schedules WG-6 --skip_batch
    python bench/deploy_speed.py --threads 1 --skip_rtf --batch_lengths 1 2 3 4 --repeats 2

Systems are timed round-robin (bench/speed.py's time_round_robin: every repeat visits each
system once, the median is reported), so a busy neighbour slows all of them alike: compare
ratios within one run. onnxruntime runs in this process with the same thread count as torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import hifigan, mb_melgan, test_mel, time_round_robin, vocos_mel  # noqa: E402


def onnx_session(vocoder, schedule: str, folder: Path, threads: int):
    import onnxruntime as ort

    from specgrad_plugin.export import export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(vocoder, schedule, folder / f"{schedule}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rtf_table(vocoder, schedules: List[str], seconds: float, threads: int, repeats: int) -> List[str]:
    from specgrad_plugin.export import draw_white_noise

    mel = test_mel(seconds)
    audio = mel.shape[0] * vocoder.hop_length / vocoder.fs
    systems: Dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for schedule in schedules:
            session = onnx_session(vocoder, schedule, Path(tmp), threads)
            steps = int(session.get_modelmeta().custom_metadata_map["steps"])
            noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, steps, seed=0).numpy()
            feeds = {"mel": mel[None].numpy(), "noise": noise}
            systems[f"PyTorch {schedule}"] = lambda s=schedule: vocoder(mel, schedule=s, seed=0)
            systems[f"onnxruntime {schedule}"] = lambda sess=session, f=feeds: sess.run(["wav"], f)
        from specgrad_plugin.streaming import StreamingVocoder, stream_utterance

        schedule = schedules[0]  # streamed in 64-frame pushes (0.74 s), as decode --streaming does
        systems[f"streaming {schedule}"] = lambda: stream_utterance(StreamingVocoder(vocoder, schedule), mel, 64)
        peers = {"HiFi-GAN V1": hifigan(), "multi-band MelGAN": mb_melgan(), "Vocos (mel)": vocos_mel()}
        systems.update({name: (lambda v=vocode: v(mel)) for name, vocode in peers.items() if vocode is not None})
        seconds_per = time_round_robin(systems, repeats)
    base = seconds_per["HiFi-GAN V1"]
    lines = [f"Inference, {threads} thread(s), {audio:.2f} s of mel, median of {repeats} round-robin runs", "",
             "| system | RTF | x HiFi-GAN V1 |", "|---|---|---|"]
    lines += [f"| {name} | {t / audio:.3f} | {t / base:.2f} |" for name, t in seconds_per.items()]
    return lines


def batch_table(vocoder, schedule: str, lengths: List[float], threads: int, repeats: int) -> List[str]:
    from specgrad_plugin.batched import vocode_batch

    mels = [test_mel(s) for s in lengths]
    audio = sum(m.shape[0] for m in mels) * vocoder.hop_length / vocoder.fs
    seconds_per = time_round_robin({
        "one by one": lambda: [vocoder(m, schedule=schedule, seed=0) for m in mels],
        f"one batch of {len(mels)}": lambda: vocode_batch(vocoder, mels, schedule=schedule, seed=0),
    }, repeats)
    lines = [f"Batched decoding, {schedule}, {threads} thread(s), {len(mels)} utterances of "
             f"{', '.join(f'{s:g}' for s in lengths)} s ({audio:.1f} s of audio), median of {repeats}", "",
             "| how | seconds | audio-s per s |", "|---|---|---|"]
    lines += [f"| {name} | {t:.2f} | {audio / t:.2f} |" for name, t in seconds_per.items()]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_tag", default="specgrad/ljspeech")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--schedules", nargs="+", default=["WG-6", "WG-3"])
    p.add_argument("--batch_lengths", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0])
    p.add_argument("--skip_batch", action="store_true")
    p.add_argument("--skip_rtf", action="store_true", help="only the batched-decoding table")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from specgrad_plugin import runtime
    from specgrad_plugin.vocoder import SpecGradVocoder

    runtime.tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    vocoder = SpecGradVocoder.from_pretrained(args.model_tag)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    lines = [] if args.skip_rtf else rtf_table(vocoder, args.schedules, args.seconds, args.threads, args.repeats)
    if not args.skip_batch:
        lines += [""] + batch_table(vocoder, args.schedules[0], args.batch_lengths, args.threads, args.repeats)
    lines += ["", f"Load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
              f"{os.cpu_count()} cores; {time.perf_counter() - start:.0f} s wall; torch {torch.__version__}, "
              f"onnxruntime {__import__('onnxruntime').__version__}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
