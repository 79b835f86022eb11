"""Model-zoo archives: members are checked before anything is extracted.

ESPnet's ``pack_funcs.unpack`` (behind ``ModelDownloader.download_and_unpack``) writes
each member at ``outpath / name`` without checking the name, so a crafted archive could
write outside the target folder. ``unpack`` here refuses such archives first, then
lets ESPnet's own code unpack (and rewrite the YAML paths) as usual.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, List, Union


class UnsafeArchiveError(ValueError):
    """An archive member that would land outside the target folder."""


def _members(archive: Path) -> List[tuple]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return [(info.filename, None) for info in z.infolist()]
    try:
        with tarfile.open(archive) as t:
            return [(m.name, m.linkname if (m.issym() or m.islnk()) else None) for m in t.getmembers()]
    except tarfile.TarError as e:
        raise UnsafeArchiveError(f"{archive}: neither a zip nor a tar archive ({e})") from None


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
    climbs out of the target folder, or a link whose target does."""
    archive = Path(archive)
    for name, link in _members(archive):
        member = PurePosixPath(name.replace("\\", "/"))
        if _escapes(member):
            raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the target folder")
        if link is not None and _escapes(member.parent / link):
            raise UnsafeArchiveError(f"{archive}: link target {link!r} of {name!r} points outside the target folder")


def unpack(archive: Union[str, Path], outpath: Union[str, Path]) -> Dict[str, str]:
    """Check, then ESPnet's unpack: returns e.g. {"vocoder_file": ..., "vocoder_config": ...}."""
    from espnet2.main_funcs.pack_funcs import unpack as espnet_unpack

    check_members(archive)
    return espnet_unpack(archive, outpath)


def extract_all(archive: Union[str, Path], outpath: Union[str, Path]) -> None:
    """Check, then extract every member of a zip as it is (no YAML rewriting)."""
    check_members(archive)
    with zipfile.ZipFile(archive) as z:
        z.extractall(outpath)


if __name__ == "__main__":  # python -m specgrad_plugin.packing ARCHIVE OUTDIR
    if len(sys.argv) != 3:
        sys.exit("usage: python -m specgrad_plugin.packing ARCHIVE.zip OUTDIR")
    try:
        extract_all(sys.argv[1], sys.argv[2])
    except UnsafeArchiveError as e:
        sys.exit(f"error: {e}")
