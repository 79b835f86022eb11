#!/usr/bin/env python3
"""pack.py EXPDIR MODEL OUT.zip [EXTRA ...]: a model-zoo zip of a SpecGrad vocoder.

Keys are Text2Speech's argument names (vocoder_file, vocoder_config), so
ModelDownloader().download_and_unpack(zip) gives keyword arguments Text2Speech accepts.
EXTRA files (stats, RESULTS.md, images) travel along under their relative paths. The model
is loaded with its config first, so that a training state or a broken file is not packed.
"""

import sys
from pathlib import Path

from espnet2.main_funcs.pack_funcs import pack

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")


def relative(path: str) -> str:
    """path relative to the working folder: the archive stores it, and meta.yaml names it, as
    given, so an absolute path would point the unpacked model back at this machine's files."""
    here = Path.cwd().resolve()
    where = Path(path).resolve()  # what ESPnet's pack stores: it follows links itself
    if here not in where.parents:
        raise ValueError(f"{path}: resolves to {where}, outside the working folder {here} (a linked exp/?); "
                         "meta.yaml would name it by its absolute path. Pack from a folder above both")
    return str(where.relative_to(here))


def main(expdir: str, model: str, outpath: str, *extra: str) -> int:
    from specgrad_plugin.checkpoints import CheckpointError
    from specgrad_plugin.config import ConfigError
    from specgrad_plugin.vocoder import SpecGradVocoder

    config = Path(expdir) / "config.yaml"
    try:
        for path in (config, Path(model), *map(Path, extra)):
            if not path.exists():
                raise ValueError(f"{path} not found")
        if not outpath.endswith(ARCHIVE_SUFFIXES):
            raise ValueError(f"{outpath}: expected an archive name ending in one of {', '.join(ARCHIVE_SUFFIXES)}")
        SpecGradVocoder.from_checkpoint(model, config)
        model, config, extra = relative(model), relative(str(config)), [relative(e) for e in extra]
    except (ValueError, ConfigError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    Path(outpath).parent.mkdir(parents=True, exist_ok=True)  # only now: a refused model leaves no folder
    pack(files={"vocoder_file": model}, yaml_files={"vocoder_config": config}, option=extra, outpath=outpath)
    print(f"packed {outpath}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
