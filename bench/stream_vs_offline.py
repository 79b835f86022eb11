"""Streaming against offline vocoding of the same clips with the same noise: which clips
differ, and by how much (docs/deploy.md, "Level").

    OMP_NUM_THREADS=1 python bench/stream_vs_offline.py --name ljspeech \
        --wavs "$SPECGRAD_DATA/ljspeech_mini/wavs/*.wav" "$SPECGRAD_DATA/ljspeech_eval/**/*.wav" \
        --out docs/deploy/stream_vs_offline_v5.json

Each clip's mel is vocoded whole (``vocoder(mel, seed)``) and streamed in pushes of
--push frames with the same draws (``draw_white_noise``), so the two differ only where the
stream reads the mel's level on a part of it and calls for another loudness shift than the
whole does. Per clip: the largest sample difference, the SNR of the stream against the
offline output, and PESQ-wb of each against the recording.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from specgrad_plugin.data import read_wav  # noqa: E402
from specgrad_plugin.export import draw_white_noise  # noqa: E402
from specgrad_plugin.features import crop_to_hop  # noqa: E402
from specgrad_plugin.scoring import pesq_wb, scores_to_json  # noqa: E402
from specgrad_plugin.streaming import StreamingVocoder  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

EQUAL = 1e-4  # the largest sample difference, over the offline peak, tests/test_streaming.py allows


def compare(vocoder: SpecGradVocoder, wav: torch.Tensor, schedule: str, seed: int, push: int) -> dict:
    mel = vocoder.features(crop_to_hop(wav, vocoder.hop_length)[None])[0]
    steps = len(vocoder.schedule_betas(schedule))
    noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, steps, seed)
    with torch.no_grad():
        offline = vocoder(mel, schedule=schedule, seed=seed).reshape(-1)
        stream = StreamingVocoder(vocoder, schedule=schedule, noise=noise[:, 0])
        parts = [stream.push(mel[i : i + push]) for i in range(0, mel.shape[0], push)] + [stream.finish()]
    streamed = torch.cat([p.reshape(-1) for p in parts])
    diff = streamed - offline
    ref = crop_to_hop(wav, vocoder.hop_length).numpy()
    row = {"frames": int(mel.shape[0]), "max_abs_difference": float(diff.abs().max())}
    row["equal"] = row["max_abs_difference"] <= EQUAL * float(offline.abs().max())  # rounding aside
    if not row["equal"]:
        row["snr_db"] = float(10 * torch.log10(offline.pow(2).sum() / diff.pow(2).sum()))
        row["pesq_offline"] = pesq_wb(ref, offline.numpy(), vocoder.fs)
        row["pesq_stream"] = pesq_wb(ref, streamed.numpy(), vocoder.fs)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="ljspeech", help="a shipped model's name")
    p.add_argument("--wavs", nargs="+", required=True, help="wav files or glob patterns (** allowed)")
    p.add_argument("--schedule", default="WG-6")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--push", type=int, default=50, help="frames per push")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    vocoder = SpecGradVocoder.from_pretrained(args.name).eval()
    paths = sorted({Path(f) for pattern in args.wavs for f in glob.glob(pattern, recursive=True)})
    if not paths:
        raise SystemExit(f"--wavs {args.wavs}: no files")
    clips = {}
    for path in paths:
        wav = torch.from_numpy(read_wav(str(path), vocoder.fs, vocoder.hop_length))
        clips[path.stem] = compare(vocoder, wav, args.schedule, args.seed, args.push)
        print(path.stem, clips[path.stem], flush=True)
    differ = {k: v for k, v in clips.items() if not v["equal"]}
    summary = {"clips": len(clips), "differ": sorted(differ)}
    if differ:
        for key in ("snr_db", "max_abs_difference"):
            summary[key] = [min(v[key] for v in differ.values()), max(v[key] for v in differ.values())]
        summary["pesq_change"] = [float(np.min([abs(v["pesq_stream"] - v["pesq_offline"]) for v in differ.values()])),
                                  float(np.max([abs(v["pesq_stream"] - v["pesq_offline"]) for v in differ.values()]))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(scores_to_json({"model": args.name, "schedule": args.schedule, "seed": args.seed,
                                        "push_frames": args.push, "summary": summary, "clips": clips}))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
