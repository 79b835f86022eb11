"""Vocode with an exported ONNX graph using numpy and onnxruntime only: no torch import.

    python -m specgrad_plugin.onnx_vocoder specgrad.onnx mel.npy out.wav [--seed 0] [--threads 2]

    from specgrad_plugin.onnx_vocoder import OnnxVocoder
    wav = OnnxVocoder("specgrad.onnx")(mel)     # (K, 80) log10 mel -> (K * hop,) float32

The graph (specgrad_plugin.bin.export) takes the mel and the sampler's white-noise draws;
this module draws them with numpy's generator from ``seed``. The same noise gives the same
audio as PyTorch, but numpy's draws for a seed are not torch's: for PyTorch's exact output
pass ``noise=`` (specgrad_plugin.export.draw_white_noise gives SpecGradVocoder's draws).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from specgrad_plugin.bin import one_line_write_errors  # stdlib only: no torch, no soundfile
from specgrad_plugin.seeds import seed_problem, whole_number


class OnnxInputError(ValueError):
    """A mel or noise array the graph cannot take; the message names it and what was expected."""


class OnnxVocoder:
    """An exported SpecGrad graph in an onnxruntime CPU session; fs, hop_length, n_mels, steps
    and schedule come from the graph's metadata."""

    def __init__(self, path, threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: ONNX model not found")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own types (InvalidProtobuf, Fail, ...) share no base but Exception
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise OnnxInputError(f"{self.path}: onnxruntime cannot load it ({type(e).__name__}: {reason}); "
                                 "expected a graph written by python -m specgrad_plugin.bin.export") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("fs", "hop_length", "n_mels", "steps") if k not in meta]
        if missing:
            raise OnnxInputError(f"{self.path}: no {missing} in the graph's metadata; expected a graph written by "
                                 "python -m specgrad_plugin.bin.export")
        self.fs, self.hop_length = int(meta["fs"]), int(meta["hop_length"])
        self.n_mels, self.steps = int(meta["n_mels"]), int(meta["steps"])
        self.schedule = meta.get("schedule", "")

    def check_mel(self, mel: np.ndarray, name: str = "mel") -> np.ndarray:
        """(K, M) or (B, K, M) -> (B, K, M) float32, or OnnxInputError naming what is wrong."""
        mel = np.asarray(mel)
        shape = mel.shape
        if mel.ndim == 2:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[-1] != self.n_mels:
            hint = " (is it (n_mels, frames)? transpose it)" if mel.ndim == 3 and mel.shape[1] == self.n_mels else ""
            raise OnnxInputError(f"{name}: shape {shape}, expected (frames, {self.n_mels}) or "
                                 f"(batch, frames, {self.n_mels}){hint}")
        if mel.shape[0] == 0:
            raise OnnxInputError(f"{name}: shape {shape}, a batch of 0 mels; expected at least one")
        if mel.shape[1] == 0:
            raise OnnxInputError(f"{name}: 0 frames, expected at least 1")
        if not np.issubdtype(mel.dtype, np.floating) or not np.isfinite(mel).all():
            raise OnnxInputError(f"{name}: expected finite floating-point log10 mel values (dtype {mel.dtype})")
        return mel.astype(np.float32, copy=False)

    def noise(self, batch: int, frames: int, seed: Optional[int] = 0) -> np.ndarray:
        """(steps, batch, frames * hop) float32 N(0, 1) draws from numpy's generator."""
        problem = seed_problem(seed)  # the seeds SpecGradVocoder takes
        if problem:
            raise OnnxInputError(problem)
        rng = np.random.default_rng(None if seed is None else whole_number(seed))
        return rng.standard_normal((self.steps, batch, frames * self.hop_length), dtype=np.float32)

    def __call__(self, mel: np.ndarray, seed: Optional[int] = 0, noise: Optional[np.ndarray] = None,
                 name: str = "mel") -> np.ndarray:
        """(K, M) or (B, K, M) log10 mel -> (K * hop,) or (B, K * hop) float32 in [-1, 1]; name:
        what an error about the mel calls it (its file, say)."""
        batched = np.asarray(mel).ndim == 3
        mel = self.check_mel(mel, name)
        shape = (self.steps, mel.shape[0], mel.shape[1] * self.hop_length)
        if noise is None:
            noise = self.noise(mel.shape[0], mel.shape[1], seed)
        noise = np.asarray(noise, dtype=np.float32)
        if noise.shape != shape:
            raise OnnxInputError(f"noise: shape {noise.shape}, expected {shape} (steps, batch, frames * hop)")
        if not np.isfinite(noise).all():
            raise OnnxInputError("noise: NaN or inf draws, expected finite N(0, 1) draws")
        wav = self.session.run(["wav"], {"mel": mel, "noise": noise})[0]
        return wav if batched else wav[0]


def load_array(path: Path) -> np.ndarray:
    """One array from an .npy file, or OnnxInputError naming the file."""
    try:
        array = np.load(path)
    except (ValueError, OSError) as e:  # numpy never unpickles here: such a file is not an array
        raise OnnxInputError(f"{path}: not an .npy array ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(array, np.ndarray):
        raise OnnxInputError(f"{path}: an archive of {len(array.files)} arrays (.npz), expected one .npy array")
    return array


@one_line_write_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="graph written by python -m specgrad_plugin.bin.export")
    p.add_argument("mel", type=Path, help=".npy of a (frames, n_mels) denormalised log10 mel")
    p.add_argument("output", type=Path, help="the .wav to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=Path, default=None, help=".npy of the (steps, 1, frames * hop) noise draws")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its own)")
    args = p.parse_args(argv)
    import soundfile as sf

    try:
        vocoder = OnnxVocoder(args.model, args.threads)
        mel, noise = (None if path is None else load_array(path) for path in (args.mel, args.noise))
        if mel.ndim != 2:
            raise OnnxInputError(f"{args.mel}: shape {mel.shape}, expected (frames, {vocoder.n_mels})")
        wav = vocoder(mel, seed=args.seed, noise=noise, name=str(args.mel))
    except (OnnxInputError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".tmp")  # a reader never sees a half-written wav
    try:
        sf.write(str(partial), wav, vocoder.fs, subtype="FLOAT", format="WAV")
        partial.replace(args.output)
    finally:
        partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
