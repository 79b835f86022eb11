#!/usr/bin/env python3
"""ship_pretrained.py CHECKPOINT NAME [BASE [--int8]]: put a trained model's EMA weights in the package.

Writes specgrad_plugin/pretrained/NAME/ (a new version's folder, e.g. ljspeech-v6; a
released model's folder or name is refused, its weights never change): model.pth (config and
EMA weights, the denoiser in float16) and config.yaml; the model card (README.md there)
is written by hand from bench/eval_pretrained.py's table. With BASE (a shipped versioned
name, e.g. ljspeech-v1), model.pth holds only the weights that differ from BASE's; with
--int8 too, the changed denoiser weights as int8 steps from BASE's (half the size; each
weight within half a step of the trained one: pretrained.quantised_change). Refuses to take
the package's shipped weights over 25 MB in all.
"""

import os
import sys
import tempfile
from pathlib import Path

from specgrad_plugin import pretrained
from specgrad_plugin.vocoder import SpecGradVocoder

LIMIT_MB = 25


def main(checkpoint: str, name: str, base: str = "", int8: bool = False, root: Path = pretrained.ROOT) -> int:
    folder = Path(root) / name
    # a released model's folder, versioned name or unversioned alias (ljspeech-v1's folder is ljspeech)
    frozen = {model.folder for model in pretrained.MODELS.values()} | set(pretrained.MODELS) | set(pretrained.LATEST)
    if Path(root) == pretrained.ROOT and name in frozen:
        print(f"error: {name} names a released model, whose weights never change; ship a new version under "
              f"a name not in {sorted(frozen)} and add it to pretrained.MODELS", file=sys.stderr)
        return 1
    vocoder = SpecGradVocoder.from_checkpoint(checkpoint)  # EMA weights, config.yaml beside an ESPnet .pth
    with tempfile.TemporaryDirectory(dir=root) as scratch:  # the shipped files change only if all is well
        path = pretrained.export(vocoder, Path(scratch), base=base, quantise_changes=int8)
        size = path.stat().st_size / 2**20
        shipped = [p for p in Path(root).glob("*/model.pth") if p.parent not in (folder, path.parent)]
        others = sum(p.stat().st_size for p in shipped) / 2**20
        if size + others > LIMIT_MB:
            print(f"error: {checkpoint}: exports to {size:.1f} MB, which with the {others:.1f} MB shipped "
                  f"already is over the {LIMIT_MB} MB the package ships; {folder} left as it was", file=sys.stderr)
            return 1
        folder.mkdir(parents=True, exist_ok=True)
        for written in ("config.yaml", "model.pth"):  # model.pth last: it is what loaders look for
            os.replace(Path(scratch) / written, folder / written)
    print(f"{folder / 'model.pth'}: {size:.1f} MB from {Path(checkpoint).resolve()}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    int8 = args[3:] == ["--int8"]
    if len(args) - int8 not in (2, 3) or (int8 and len(args) != 4) or "--int8" in args[:3]:
        print(__doc__, file=sys.stderr)  # --int8 only after a BASE: it stores changes to one
        sys.exit(2)
    sys.exit(main(*args[:3], int8=int8))
