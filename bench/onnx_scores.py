"""The shipped model's ONNX graph against PyTorch on ljspeech_eval: PESQ and mel-L1.

    python -m specgrad_plugin.bin.export --model_tag specgrad/ljspeech --schedule WG-6 --output wg6.onnx
    python bench/onnx_scores.py wg6.onnx --schedule WG-6

onnxruntime runs in a child process that imports only numpy, onnxruntime and
specgrad_plugin.onnx_vocoder (it reports whether torch got imported). Four rows: PyTorch
with seed i for clip i, PyTorch with seed i + 100 (how much the noise draws alone move the
scores), the graph with numpy's draws for seed i, and the graph with PyTorch's draws for
seed i (same noise: the same audio up to float rounding).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

RUNNER = """
import sys
import numpy as np
from specgrad_plugin.onnx_vocoder import OnnxVocoder
model, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vocoder = OnnxVocoder(model, threads=1)
for i in range(count):
    mel = np.load(f"{folder}/mel{i}.npy")
    np.save(f"{folder}/numpy{i}.npy", vocoder(mel, seed=i))
    np.save(f"{folder}/torch{i}.npy", vocoder(mel[None], noise=np.load(f"{folder}/noise{i}.npy"))[0])
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the exported graph")
    p.add_argument("--model_tag", default="specgrad/ljspeech")
    p.add_argument("--schedule", default="WG-6", help="the graph's schedule")
    args = p.parse_args()
    from specgrad_plugin.data import corpus_wavs, read_wav, shared_data_dir
    from specgrad_plugin.diffusion import inference_betas
    from specgrad_plugin.export import draw_white_noise
    from specgrad_plugin.features import crop_to_hop
    from specgrad_plugin.scoring import mel_l1, pesq_wb
    from specgrad_plugin.vocoder import SpecGradVocoder

    root = shared_data_dir()
    if root is None:
        print("error: no shared data ($SPECGRAD_DATA) with ljspeech_eval/", file=sys.stderr)
        return 2
    vocoder = SpecGradVocoder.from_pretrained(args.model_tag)
    steps = len(inference_betas(args.schedule))
    folder = Path(tempfile.mkdtemp())
    refs, mels = [], []
    for i, path in enumerate(corpus_wavs(root / "ljspeech_eval")):
        wav = crop_to_hop(torch.from_numpy(read_wav(path, vocoder.fs, vocoder.hop_length)), vocoder.hop_length)
        with torch.no_grad():
            mel = vocoder.features(wav[None])[0]
        refs.append(wav.numpy())
        mels.append(mel)
        np.save(folder / f"mel{i}.npy", mel.numpy())
        np.save(folder / f"noise{i}.npy", draw_white_noise(1, wav.numel(), steps, seed=i).numpy())
    child = subprocess.run([sys.executable, "-c", RUNNER, str(args.model), str(folder), str(len(mels))],
                           capture_output=True, text=True)
    if child.returncode:
        print(child.stderr, file=sys.stderr)
        return 1
    rows = {"PyTorch, seed i": [], "PyTorch, seed i + 100": [], "onnxruntime, numpy's draws for seed i": [],
            "onnxruntime, PyTorch's draws for seed i": []}
    largest = 0.0
    for i, (ref, mel) in enumerate(zip(refs, mels, strict=True)):
        torch_wav = vocoder(mel, schedule=args.schedule, seed=i).numpy()
        same_noise = np.load(folder / f"torch{i}.npy")
        largest = max(largest, float(np.abs(same_noise - torch_wav).max() / np.abs(torch_wav).max()))
        outputs = (torch_wav, vocoder(mel, schedule=args.schedule, seed=i + 100).numpy(),
                   np.load(folder / f"numpy{i}.npy"), same_noise)
        for values, gen in zip(rows.values(), outputs, strict=True):
            values.append((pesq_wb(ref, gen, vocoder.fs), mel_l1(ref, gen, vocoder.features)))
    print(f"{len(mels)} ljspeech_eval clips, {args.schedule}; the onnxruntime child: {child.stdout.strip()}")
    print(f"largest |graph - PyTorch| / peak with the same noise: {largest:.1e}\n")
    print("| system | PESQ | mel-L1 |\n|---|---|---|")
    for name, values in rows.items():
        pesq, mel_error = np.mean(values, axis=0)
        print(f"| {name} | {pesq:.3f} | {mel_error:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
