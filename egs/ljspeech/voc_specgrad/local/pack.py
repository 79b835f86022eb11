#!/usr/bin/env python3
"""pack.py EXPDIR MODEL OUT.zip [EXTRA ...]: a model-zoo zip of a SpecGrad vocoder.

Keys are Text2Speech's argument names (vocoder_file, vocoder_config), so
ModelDownloader().download_and_unpack(zip) gives keyword arguments Text2Speech accepts.
EXTRA files (stats, RESULTS.md, images) travel along under their relative paths.
"""

import sys
from pathlib import Path

from espnet2.main_funcs.pack_funcs import pack


def main(expdir: str, model: str, outpath: str, *extra: str) -> int:
    config = Path(expdir) / "config.yaml"
    for path in (config, Path(model), *map(Path, extra)):
        if not path.exists():
            print(f"error: {path} not found", file=sys.stderr)
            return 1
    pack(files={"vocoder_file": model}, yaml_files={"vocoder_config": str(config)}, option=list(extra),
         outpath=outpath)
    print(f"packed {outpath}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
