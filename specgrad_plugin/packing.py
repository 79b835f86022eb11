"""Model-zoo archives: members are checked before anything is extracted.

ESPnet's ``pack_funcs.unpack`` (behind ``ModelDownloader.download_and_unpack``) writes
each member at ``outpath / name`` without checking the name, so a crafted archive could
write outside the target folder. ``unpack`` here refuses such archives first, then
lets ESPnet's own code unpack (and rewrite the YAML paths) as usual, and checks that every
path it returns is a file inside the folder.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, List, Tuple, Union

import yaml


class ArchiveError(ValueError):
    """An archive that is not a usable model-zoo archive; the message names it and the member."""


class UnsafeArchiveError(ArchiveError):
    """An archive member that would land outside the target folder, or a link."""


def _members(archive: Path) -> List[Tuple[str, bool]]:
    """(name, whether it is a plain file or folder) for each member."""
    if not archive.is_file():
        raise ArchiveError(f"{archive}: archive not found")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return [(info.filename, True) for info in z.infolist()]
    try:
        with tarfile.open(archive) as t:
            return [(m.name, m.isfile() or m.isdir()) for m in t.getmembers()]
    except tarfile.TarError as e:
        raise ArchiveError(f"{archive}: neither a zip nor a tar archive ({e})") from None


def _escapes(path: PurePosixPath) -> bool:
    """True if the path is absolute or climbs above its starting folder."""
    if path.is_absolute():
        return True
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def check_members(archive: Union[str, Path]) -> None:
    """Raise UnsafeArchiveError naming the first member with an absolute path or a path that
    climbs out of the target folder, or one that is not a plain file or folder: a model
    archive needs no links, and a tar link's target is read from places (the archive's root
    for hard links, the member's folder for symbolic ones) that a check can easily get wrong."""
    archive = Path(archive)
    for name, plain in _members(archive):
        if _escapes(PurePosixPath(name.replace("\\", "/"))):
            raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the target folder")
        if not plain:
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a link or a device; expected only files "
                                     "and folders in a model archive")


def unpack(archive: Union[str, Path], outpath: Union[str, Path]) -> Dict[str, str]:
    """Check, then ESPnet's unpack: returns e.g. {"vocoder_file": ..., "vocoder_config": ...},
    each a file inside ``outpath``."""
    from espnet2.main_funcs.pack_funcs import unpack as espnet_unpack

    check_members(archive)
    try:
        # no cache: ESPnet looks for it beside outpath and would return the packer's own files
        paths = espnet_unpack(archive, outpath, use_cache=False)
    except (RuntimeError, AssertionError, KeyError, TypeError, yaml.YAMLError) as e:  # ESPnet's reading of meta.yaml
        raise ArchiveError(f"{archive}: not a model-zoo archive ({type(e).__name__}: {e}); expected a "
                           "meta.yaml naming its files") from None
    root = Path(outpath).resolve()
    for key, path in paths.items():
        where = Path(path).resolve()
        if root not in where.parents:
            raise UnsafeArchiveError(f"{archive}: meta.yaml's {key} is {path}, outside {outpath}")
        if not where.is_file():
            raise ArchiveError(f"{archive}: meta.yaml's {key} names {path}, which the archive does not hold")
    return paths


def extract_all(archive: Union[str, Path], outpath: Union[str, Path]) -> None:
    """Check, then extract every member of a zip as it is (no YAML rewriting)."""
    check_members(archive)
    if not zipfile.is_zipfile(archive):
        raise ArchiveError(f"{archive}: a tar archive; expected a .zip (a tar unpacks with unpack())")
    with zipfile.ZipFile(archive) as z:
        z.extractall(outpath)


if __name__ == "__main__":  # python -m specgrad_plugin.packing ARCHIVE OUTDIR
    if len(sys.argv) != 3:
        sys.exit("usage: python -m specgrad_plugin.packing ARCHIVE.zip OUTDIR")
    try:
        extract_all(sys.argv[1], sys.argv[2])
    except (ArchiveError, OSError) as e:
        sys.exit(f"error: {e}")
