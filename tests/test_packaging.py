"""The package as a stranger gets it: a wheel built from this tree, its file list, and its
presets, shipped model, model card and command-line tools used from outside the checkout."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "specgrad_plugin"
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp")

# Run from a folder outside the tree, on the wheel's files only: the presets by name, the
# shipped model (vocoding a few frames), its card and the scores files the card cites, and
# bin.decode with the shipped model's tag (argv: the unpacked wheel, a wav.scp).
OUTSIDE_CHECK = r"""
import json, sys
from pathlib import Path

import torch

import specgrad_plugin
from specgrad_plugin import presets, pretrained
from specgrad_plugin.bin import decode, quickstart
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.vocoder import SpecGradVocoder

report = {"package": str(Path(specgrad_plugin.__file__).resolve().parent.parent)}
report["presets"] = {n: SpecGradConfig.from_preset(n).denoiser.kind for n in presets.names()}
report["quickstart_default"] = SpecGradConfig.from_preset(quickstart.get_parser().parse_args([]).preset).denoiser.kind
vocoder = SpecGradVocoder.from_pretrained("ljspeech")
report["samples"] = int(vocoder(torch.full((8, 80), -3.0), schedule="WG-3").numel())
folder = pretrained.resolve("ljspeech")[0].parent
report["card"] = len((folder / "README.md").read_text(encoding="utf-8"))
report["scores_json"] = len(json.loads((folder / "scores.json").read_text()))
report["scores_md"] = (folder / "scores.md").read_text().count("|")
report["decode"] = decode.main(["--model_tag", "specgrad/ljspeech", "--data_path_and_name_and_type",
                                f"{sys.argv[2]},speech,sound", "--output_dir", "out", "--schedule", "WG-3"])
print(json.dumps(report))
"""


def package_files() -> set:
    """Every file of specgrad_plugin/ a build of this tree sees, relative to the repository."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "specgrad_plugin"],
                            cwd=REPO, capture_output=True, text=True)
    if listed.returncode == 0:
        names = [n for n in listed.stdout.splitlines() if (REPO / n).is_file()]
    else:  # not a git checkout
        names = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*") if p.is_file()]
    return {n for n in names if "__pycache__" not in n and not n.endswith((".pyc", ".tmp"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (offline, by setuptools' PEP 517 backend) from a copy of the sources, so
    that the build's own folders do not land in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(PACKAGE, src / "specgrad_plugin", ignore=JUNK)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", build, str(tmp / "dist")], cwd=src, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return tmp / "dist" / done.stdout.split()[-1]


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    """The wheel's contents as pip lays them into site-packages."""
    site = tmp_path_factory.mktemp("site")
    zipfile.ZipFile(wheel).extractall(site)
    return site


def test_wheel_holds_the_package_presets_models_and_autoload(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = package_files() - names
    assert not missing, f"{wheel.name} lacks {sorted(missing)} (setup.py package_data)"
    for preset in ("frame", "base", "tiny"):
        assert f"specgrad_plugin/presets/{preset}.yaml" in names
    for folder in ("ljspeech", "ljspeech-v2", "ljspeech-v3", "ljspeech-v4", "ljspeech-v5"):
        for name in ("model.pth", "config.yaml", "README.md", "scores.json", "scores.md"):
            assert f"specgrad_plugin/pretrained/{folder}/{name}" in names
    assert zipfile.ZipFile(wheel).read("specgrad_plugin.pth").decode().strip() == "import specgrad_plugin"
    assert not [n for n in names if n.startswith(("tests/", "bench/", "egs/", "docs/"))]


@pytest.mark.parametrize("folder", ["ljspeech", "ljspeech-v2", "ljspeech-v3", "ljspeech-v4", "ljspeech-v5"])
def test_card_cites_only_files_the_wheel_holds(wheel, folder):
    """Every file name a model card mentions beside it (scores.json, ...) is shipped."""
    names = set(zipfile.ZipFile(wheel).namelist())
    card = (PACKAGE / "pretrained" / folder / "README.md").read_text(encoding="utf-8")
    beside = {m for m in re.findall(r"[\w.-]+\.(?:json|md|png|yaml|pth)", card)
              if (PACKAGE / "pretrained" / folder / m).is_file()}
    assert {"scores.json", "scores.md"} <= beside
    assert {f"specgrad_plugin/pretrained/{folder}/{m}" for m in beside} <= names


def test_autoload_file_imports_the_installed_package(unpacked, tmp_path):
    """Python runs the .pth of a site folder at start-up (-S: no other site folder)."""
    code = "import site, sys; site.addsitedir(sys.argv[1]); print(sys.modules['specgrad_plugin'].__file__)"
    done = subprocess.run([sys.executable, "-S", "-c", code, str(unpacked)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).resolve().is_relative_to(unpacked.resolve())


def test_presets_shipped_model_and_decode_work_outside_the_tree(unpacked, tmp_path):
    from specgrad_plugin.synthetic import speech_like

    wav = tmp_path / "clip.wav"
    sf.write(wav, speech_like(0.5, 22050, seed=3), 22050, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"clip {wav}\n")
    done = subprocess.run([sys.executable, "-c", OUTSIDE_CHECK, str(unpacked), "wav.scp"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(unpacked), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["package"]) == unpacked.resolve()  # the wheel's copy, not the checkout
    assert report["presets"] == {"base": "wavenet", "frame": "frame", "tiny": "wavenet"}
    assert report["quickstart_default"] == "wavenet"
    assert report["samples"] == 8 * 256
    assert report["card"] > 0 and report["scores_json"] > 0 and report["scores_md"] > 4
    assert report["decode"] == 0
    out, fs = sf.read((tmp_path / "out" / "wav.scp").read_text().split()[1])
    assert fs == 22050 and len(out) == len(sf.read(wav)[0]) // 256 * 256 and np.abs(out).max() > 0


def test_ci_runs_the_readme_test_command():
    """.ci/run's command is README's, word for word, and README shows two set-up commands."""
    ci = re.search(r'^test_command="([^"]*)"', (REPO / ".ci" / "run").read_text(), re.M)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup_commands = [b for b in re.findall(r"```sh\n(.*?)\n```", readme, re.S) if b.startswith("pip install")]
    assert ci and ci.group(1) in setup_commands and len(setup_commands) == 2


def test_the_tests_cannot_reach_the_network():
    """A process a test starts sends HTTP and HTTPS to conftest's closed local port, where the
    connection is refused at once (not a timeout, not a direct connection that a machine
    without the network would refuse too), so a library that would download at run time
    (nltk's dictionaries, under ESPnet's TTS task) fails offline instead of fetching."""
    from .conftest import OFFLINE_PROXY

    probe = ("import sys, time, urllib.error, urllib.request\n"
             "print(urllib.request.getproxies().get('http'), urllib.request.getproxies().get('https'))\n"
             "for url in ('http://example.com/', 'https://raw.githubusercontent.com/'):\n"
             "    start = time.monotonic()\n"
             "    try:\n"
             "        urllib.request.urlopen(url, timeout=30)\n"
             "        print('fetched')\n"
             "    except urllib.error.URLError as e:\n"
             "        print(type(e.reason).__name__, round(time.monotonic() - start))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=90)
    out = result.stdout.split("\n")
    assert out[0] == f"{OFFLINE_PROXY} {OFFLINE_PROXY}", result
    for line in out[1:3]:
        assert line.split()[0] == "ConnectionRefusedError" and int(line.split()[1]) < 5, result
    assert os.environ["HF_HUB_OFFLINE"] == "1"
