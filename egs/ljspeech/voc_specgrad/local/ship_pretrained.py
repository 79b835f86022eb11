#!/usr/bin/env python3
"""ship_pretrained.py CHECKPOINT [NAME]: put a trained model's EMA weights in the package.

Writes specgrad_plugin/pretrained/NAME/ (default NAME: ljspeech): model.pth (config and
EMA weights, the denoiser in float16) and config.yaml; the model card (README.md there)
is written by hand from bench/eval_pretrained.py's table. Refuses files over 25 MB.
"""

import sys
from pathlib import Path

from specgrad_plugin import pretrained
from specgrad_plugin.vocoder import SpecGradVocoder

LIMIT_MB = 25


def main(checkpoint: str, name: str = "ljspeech") -> int:
    vocoder = SpecGradVocoder.from_checkpoint(checkpoint)  # EMA weights, config.yaml beside an ESPnet .pth
    path = pretrained.export(vocoder, pretrained.ROOT / name)
    size = path.stat().st_size / 2**20
    if size > LIMIT_MB:
        path.unlink()
        print(f"error: {path}: {size:.1f} MB, over the {LIMIT_MB} MB the package ships", file=sys.stderr)
        return 1
    print(f"{path}: {size:.1f} MB from {Path(checkpoint).resolve()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
