"""Archives whose members would escape the target folder are refused before extraction."""

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from specgrad_plugin.packing import ArchiveError, UnsafeArchiveError, check_members, extract_all, unpack


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


def test_tar_links_are_refused(tmp_path):
    """Symbolic links, and hard links, whose target tar reads from the archive's root (a
    check that read it from the member's folder let a/b/hl -> a/../../x through, and a
    file written over the link then landed outside the folder)."""
    archive = make_tar(tmp_path / "a.tar", [("meta.yaml", None), ("exp/link", "../../../etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match="'exp/link' is a link"):
        check_members(archive)
    hard = tmp_path / "hard.tar"
    with tarfile.open(hard, "w") as t:
        info = tarfile.TarInfo("a/b/hl")
        info.type, info.linkname = tarfile.LNKTYPE, "a/../../x"
        t.addfile(info)
        over = tarfile.TarInfo("a/b/hl")
        over.size = 11
        t.addfile(over, io.BytesIO(b"OVERWRITTEN"))
    (tmp_path / "x").write_text("mine")
    with pytest.raises(UnsafeArchiveError, match="'a/b/hl' is a link"):
        unpack(hard, tmp_path / "out" / "deeper")
    assert (tmp_path / "x").read_text() == "mine"


def test_meta_yaml_paths_must_be_files_inside_the_folder(tmp_path):
    """ESPnet's unpack returns meta.yaml's paths as they are: one outside the folder, or one
    the archive does not hold, is refused by name; no meta.yaml is named as such."""
    cases = {"abs": ("files:\n  vocoder_file: /etc/hostname\nyaml_files: {}\n", "outside"),
             "gone": ("files:\n  vocoder_file: exp/model.pth\nyaml_files: {}\n", "does not hold")}
    for name, (meta, message) in cases.items():
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("meta.yaml", meta)
        with pytest.raises(UnsafeArchiveError if name == "abs" else ArchiveError, match=f"vocoder_file .*{message}"):
            unpack(archive, tmp_path / name)
    archive = make_zip(tmp_path / "nometa.zip", ["exp/model.pth"])
    with pytest.raises(ArchiveError, match="nometa.zip: not a model-zoo archive .*meta.yaml"):
        unpack(archive, tmp_path / "nometa")
    with pytest.raises(ArchiveError, match="archive not found"):
        unpack(tmp_path / "missing.zip", tmp_path / "m")
    with pytest.raises(ArchiveError, match="a tar archive; expected a .zip"):
        extract_all(make_tar(tmp_path / "t.tar", [("meta.yaml", None)]), tmp_path / "t")


def test_safe_archive_passes(tmp_path):
    archive = make_zip(tmp_path / "a.zip", ["meta.yaml", "exp/model.pth", "exp/config.yaml"])
    check_members(archive)
    extract_all(archive, tmp_path / "out")
    assert (tmp_path / "out" / "exp" / "model.pth").read_text() == "x"


def test_unpacking_twice_into_one_folder_returns_its_files(tmp_path, monkeypatch):
    """ESPnet's cache lookup beside the folder returned the packer's own files on a second
    unpack, which the inside-the-folder check then refused; a meta.yaml that is not YAML is
    named as such."""
    from espnet2.main_funcs.pack_funcs import pack

    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "model.pth").write_bytes(b"weights")
    (tmp_path / "exp" / "config.yaml").write_text("a: 1\n")
    pack(files={"vocoder_file": "exp/model.pth"}, yaml_files={"vocoder_config": "exp/config.yaml"}, option=[],
         outpath="m.zip")
    first, second = unpack("m.zip", "unpacked"), unpack("m.zip", "unpacked")
    assert first == second and (tmp_path / "unpacked").resolve() in Path(second["vocoder_file"]).resolve().parents
    with zipfile.ZipFile("bad.zip", "w") as z:
        z.writestr("meta.yaml", "files: [unclosed\n")
    with pytest.raises(ArchiveError, match="bad.zip: not a model-zoo archive"):
        unpack("bad.zip", "bad")
