"""Archives whose members would escape the target folder are refused before extraction."""

import io
import tarfile
import zipfile

import pytest

from specgrad_plugin.packing import UnsafeArchiveError, check_members, extract_all, unpack


def make_zip(path, names):
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, "x")
    return path


def make_tar(path, members):
    with tarfile.open(path, "w") as t:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                t.addfile(info)
            else:
                info.size = 1
                t.addfile(info, io.BytesIO(b"x"))
    return path


@pytest.mark.parametrize("names", [["meta.yaml", "../evil.txt"], ["meta.yaml", "/tmp/evil.txt"],
                                   ["meta.yaml", "exp/../../evil.txt"]])
def test_zip_members_escaping_are_refused(tmp_path, names):
    archive = make_zip(tmp_path / "a.zip", names)
    with pytest.raises(UnsafeArchiveError, match="would be written outside the target folder"):
        unpack(archive, tmp_path / "out")
    with pytest.raises(UnsafeArchiveError):
        extract_all(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_tar_links_escaping_are_refused(tmp_path):
    archive = make_tar(tmp_path / "a.tar", [("meta.yaml", None), ("exp/link", "../../../etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match="link target"):
        check_members(archive)


def test_safe_archive_passes(tmp_path):
    archive = make_zip(tmp_path / "a.zip", ["meta.yaml", "exp/model.pth", "exp/config.yaml"])
    check_members(archive)
    extract_all(archive, tmp_path / "out")
    assert (tmp_path / "out" / "exp" / "model.pth").read_text() == "x"
