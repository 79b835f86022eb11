"""Export the whole sampler (prior filter, denoiser, every step of one schedule) as one graph.

    python -m specgrad_plugin.bin.export --model_tag specgrad/ljspeech --format onnx \\
        --schedule WG-6 --output specgrad_wg6.onnx
    python -m specgrad_plugin.bin.export --model_file exp/train/valid.pesq.best.pth \\
        --train_config exp/train/config.yaml --format torchscript --output specgrad.pt

The graph takes mel (batch, frames, n_mels), a denormalised log10 mel, and noise
(steps, batch, frames * hop), the sampler's N(0, 1) draws, and gives wav (batch, frames * hop)
in [-1, 1]. Run an ONNX graph without torch: python -m specgrad_plugin.onnx_vocoder.
--check vocodes a test mel, and the same mel 20 dB quieter, with the graph and with PyTorch
(same noise) and prints the largest difference relative to the peak.
Only the frame family without frame_excitation, the harmonic prior, the time-domain head or
the long-window low band exports (an error says so for others).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from espnet2.utils.types import str2bool

from specgrad_plugin.bin import one_line_write_errors
from specgrad_plugin.checkpoints import CheckpointError
from specgrad_plugin.config import ConfigError
from specgrad_plugin.diffusion import inference_betas
from specgrad_plugin.export import ExportError, draw_white_noise, export_onnx, export_torchscript
from specgrad_plugin.vocoder import SpecGradVocoder

FORMATS = {"onnx": export_onnx, "torchscript": export_torchscript}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", type=Path, default=None, help="config.yaml of the run (or a preset)")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model_file", type=Path, help="checkpoint (*.pth of ESPnet, or checkpoint.pt)")
    model.add_argument("--model_tag", help="a model shipped with the package, e.g. specgrad/ljspeech")
    p.add_argument("--use_ema", type=str2bool, default=True)
    p.add_argument("--format", choices=sorted(FORMATS), default="onnx")
    p.add_argument("--schedule", default=None,
                   help="WG-3 | WG-6 | PG-6 | WG-50 | LJ-3 | LJ2-3 | b1,b2,... (default: config's)")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--check", action="store_true",
                   help="compare the graph with PyTorch on a 2-s test mel, as is and 20 dB quieter")
    return p


CHECK_TOLERANCE = 1e-4  # relative to the PyTorch output's peak


def check_graph(vocoder: SpecGradVocoder, fmt: str, path: Path, schedule) -> float:
    """max |graph - PyTorch| / max |PyTorch| on the mel of a 2-s speech-like signal and on the
    same mel 20 dB quieter (level matching, where the model has it), one batch, same noise;
    the larger of the two."""
    from specgrad_plugin.features import crop_to_hop
    from specgrad_plugin.synthetic import speech_like

    signal = torch.from_numpy(speech_like(2.0, vocoder.fs, seed=0))
    with torch.no_grad():
        mel = vocoder.features(crop_to_hop(signal, vocoder.hop_length)[None])
    mel = torch.cat([mel, mel - 1.0])
    steps = len(vocoder.schedule_betas(schedule))
    noise = draw_white_noise(2, mel.shape[1] * vocoder.hop_length, steps, seed=0)
    with warnings.catch_warnings():  # the input-range warnings would be about this made-up mel, not the user's
        warnings.simplefilter("ignore")
        reference = vocoder(mel, schedule=schedule, seed=0).numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = session.run(["wav"], {"mel": mel.numpy(), "noise": noise.numpy()})[0]
    else:
        with torch.no_grad():
            out = torch.jit.load(str(path))(mel, noise).numpy()
    return float((abs(out - reference).max(axis=1) / abs(reference).max(axis=1)).max())


@one_line_write_errors
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    output = Path(args.output)
    # written beside --output and moved there only once whole (and checked, with --check): a
    # failed export leaves no graph there, and an earlier good one stays
    partial = output.with_name(f"{output.stem}.partial{output.suffix}")
    try:
        if args.model_tag:
            vocoder = SpecGradVocoder.from_pretrained(args.model_tag)
        else:
            vocoder = SpecGradVocoder.from_checkpoint(args.model_file, args.train_config, use_ema=args.use_ema)
        if args.schedule is not None:
            inference_betas(args.schedule)
        with warnings.catch_warnings():  # the tracer's notes on shapes it records as constants
            warnings.simplefilter("ignore")
            written = FORMATS[args.format](vocoder, args.schedule, partial)
        if args.check:
            difference = check_graph(vocoder, args.format, written, args.schedule)
            print(f"check: max |graph - PyTorch| / max |PyTorch| on a 2-s speech-like mel, as is and 20 dB "
                  f"quieter: {difference:.2e}")
            if not difference <= CHECK_TOLERANCE:
                print(f"error: {output}: the graph differs from PyTorch by {difference:.2e}, expected <= "
                      f"{CHECK_TOLERANCE:.0e}; not written", file=sys.stderr)
                return 1
        written.replace(output)
    except (ConfigError, CheckpointError, ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        partial.unlink(missing_ok=True)
    schedule = vocoder.chosen_schedule(args.schedule)
    print(f"wrote {output} ({args.format}, schedule {schedule}, {output.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
