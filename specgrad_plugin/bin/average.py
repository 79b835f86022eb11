"""Average the weights of fine-tunes of one model into one checkpoint:
``python -m specgrad_plugin.bin.average --out soup.pt A.pt B.pt [...]``.

The output is the built-in trainer's layout ({config, model}), loadable by
``SpecGradVocoder.from_checkpoint``, ``decode`` and ``ship_pretrained.py``; its config is the
first checkpoint's, and ``averaged_from`` lists the checkpoints averaged.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from specgrad_plugin import checkpoints
from specgrad_plugin.bin import one_line_write_errors
from specgrad_plugin.config import ConfigError, SpecGradConfig


@one_line_write_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="two or more checkpoints of the same model")
    parser.add_argument("--out", required=True, help="the averaged checkpoint to write")
    args = parser.parse_args(argv)
    from specgrad_plugin.vocoder import SpecGradVocoder

    try:
        if Path(args.out).resolve() in {Path(p).resolve() for p in args.checkpoints}:
            raise ValueError(f"--out {args.out}: one of the checkpoints averaged; expected a new path, so that "
                             "no input is overwritten")
        weights, config = checkpoints.average(args.checkpoints)
        model = SpecGradVocoder(SpecGradConfig.from_dict(config, source=f"{args.checkpoints[0]}:config"))
        checkpoints.load_state_strict(model, weights, f"average of {args.checkpoints}")
        sources = [str(Path(p).resolve()) for p in args.checkpoints]
        checkpoints.save(model, model.cfg, args.out, extra={"averaged_from": sources})
    except (checkpoints.CheckpointError, ConfigError, ValueError) as e:  # one line, no traceback (OSError: main's)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: the mean of {len(sources)} checkpoints' weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
