"""The recipe end to end: ./run.sh --stage -1 --stop_stage 8 on a tiny LJSpeech-format folder
(real clips, cut short, when the shared data is present; else generated), tiny preset, a
random-weight local TTS exp for stages 5-6. Also its refusals of bad input."""

import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from specgrad_plugin.testing import make_tts_exp

from .test_espnet import FEATS

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "ljspeech" / "voc_specgrad"
TEXTS = [
    "printing, in the only sense.",
    "with which we are at present concerned.",
    "differs from most arts.",
    "and crafts represented.",
    "in the exhibition.",
    "in being comparatively modern.",
    "for although the chinese.",
    "took impressions from wood blocks.",
]


def make_db(root: Path, clips, fs: int = 22050) -> Path:
    (root / "wavs").mkdir(parents=True)
    lines = []
    for i, (clip, text) in enumerate(zip(clips, TEXTS, strict=False)):
        uid = f"LJ001-{i + 1:04d}"
        sf.write(root / "wavs" / f"{uid}.wav", clip, fs, subtype="PCM_16")
        lines.append(f"{uid}|{text}|{text}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, speech_clips):
    """A copy of the recipe away from the repository: it needs only the installed package."""
    root = tmp_path_factory.mktemp("recipe")
    # the recipe's own files only: a working copy's outputs (.gitignore) must not leak in
    outputs = shutil.ignore_patterns("data", "dump", "exp", "downloads", ".python_shim")
    shutil.copytree(RECIPE, root / "egs" / "ljspeech" / "voc_specgrad", symlinks=True, ignore=outputs)
    clips = [c[: int(1.0 * 22050)] for c in speech_clips] * 2
    db = make_db(root / "db" / "LJSpeech-1.1", clips)
    return root / "egs" / "ljspeech" / "voc_specgrad", db


def with_this_python(env: dict, where: Path) -> dict:
    """run.sh calls `python3`: make that the interpreter running the tests (a venv's python
    run by path, without an activated venv, would otherwise not be the one on PATH). A script
    that execs it by its own path, not a symlink: a venv's interpreter finds its pyvenv.cfg
    beside the path it was started by, so a link in another folder would start the base Python."""
    shim = where / ".python_shim"
    shim.mkdir(exist_ok=True)
    script = shim / "python3"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    script.chmod(0o755)
    return {**env, "PATH": f"{shim}{os.pathsep}{env.get('PATH', '')}"}


def run(recipe: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = with_this_python({**os.environ, "OMP_NUM_THREADS": "1"}, recipe)
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=timeout, env=env)


SMALL = [
    "--conf",
    "conf/train_specgrad_tiny.yaml",  # run.sh's default is the frame preset; the tiny one is faster
    "--num_dev",
    "1",
    "--num_eval",
    "1",
    "--nj",
    "2",
    "--inference_nj",
    "2",
    "--train_args",
    "--max_epoch 1 --num_iters_per_epoch 2 --batch_size 2 --num_samples 1 --sample_seconds 0.5 "
    "--sample_schedule WG-3 --model_conf segment_frames=16",
    "--inference_args",
    "--schedule WG-3",
]


@pytest.fixture(scope="module")
def full_run(workdir):
    recipe, db = workdir
    tts_config, _ = make_tts_exp(recipe / "tts_exp", FEATS)
    result = run(
        recipe,
        "--stage",
        "-1",
        "--stop_stage",
        "8",
        "--db_root",
        str(db),
        "--tts_exp",
        str(tts_config.parent),
        "--tts_inference_args",
        "--minlenratio 2 --maxlenratio 2",
        "--hf_repo",
        "someone/specgrad_tiny",
        *SMALL,
    )
    return recipe, db, result


def test_recipe_runs_all_stages(full_run):
    recipe, db, result = full_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "already holds LJSpeech" in out  # stage -1 skipped offline
    exp = recipe / "exp" / "train_specgrad_tiny"
    assert (recipe / "data" / "tr_no_dev" / "wav.scp").read_text().count("\n") == 6
    assert (recipe / "exp" / "train_specgrad_tiny_stats" / "train" / "energy_hist_stats.npz").is_file()
    assert (exp / "run_train.sh").is_file() and (exp / "valid.mel_l1.best.pth").exists()
    assert (exp / "valid.pesq.best.pth").exists()  # what stages 3-4 decode with by default
    for set_ in ("dev", "eval1"):
        wavs = (exp / f"decode_{set_}" / "wav.scp").read_text().splitlines()
        assert len(wavs) == 1 and sf.info(wavs[0].split()[1]).samplerate == 22050
    results = (exp / "RESULTS.md").read_text()
    assert "model: exp/train_specgrad_tiny/valid.pesq.best.pth" in results
    for metric in ("mcd", "log_f0_rmse", "pesq", "stoi", "mr_stft"):
        assert metric in results
    assert "TTS eval1" in results
    assert (exp / "tts_eval1" / "specgrad" / "score" / "scores.json").is_file()


def test_pack_unpacks_into_text2speech_arguments(full_run, tmp_path):
    recipe, _, result = full_run
    assert result.returncode == 0
    from espnet_model_zoo.downloader import ModelDownloader

    packed = recipe / "exp" / "train_specgrad_tiny" / "packed" / "train_specgrad_tiny.zip"
    unpacked = ModelDownloader(tmp_path / "zoo").download_and_unpack(str(packed))
    assert set(unpacked) == {"vocoder_file", "vocoder_config"}
    from espnet2.tasks.tts import TTSTask

    import specgrad_plugin  # noqa: F401

    vocoder = TTSTask.build_vocoder_from_file(unpacked["vocoder_config"], unpacked["vocoder_file"], None, "cpu")
    wav = vocoder(torch.zeros(5, 80) - 3)
    assert vocoder.fs == 22050 and wav.shape == (5 * 256,)
    names = zipfile.ZipFile(packed).namelist()
    assert any(n.endswith("RESULTS.md") for n in names) and any(n.endswith("feats_stats.npz") for n in names)
    hf = recipe / "exp" / "train_specgrad_tiny" / "hf_train_specgrad_tiny"
    card = (hf / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert card.startswith("---\n") and front["tags"][0] == "espnet"
    assert front["license"] == "apache-2.0" and "datasets" not in front  # the run named no dataset
    assert "Training data: 6 utterances" in card and "of LJSpeech-1.1" in card and "github.com" not in card
    assert (hf / "meta.yaml").is_file()


def test_rerun_of_a_stage_is_safe(full_run):
    recipe, db, _ = full_run
    again = run(recipe, "--stage", "0", "--stop_stage", "0", "--db_root", str(db), *SMALL)
    assert again.returncode == 0, again.stderr[-2000:]


def test_bad_db_root_stops_before_work(workdir, tmp_path):
    """Stage 0 on a folder without the corpus, and stage -1 on a path whose folder is missing
    too (a typo): each one line, no download started and no folder made."""
    recipe, _ = workdir
    result = run(recipe, "--stage", "0", "--stop_stage", "0", "--db_root", str(tmp_path / "nothing"), *SMALL)
    assert result.returncode != 0 and "metadata.csv not found" in result.stderr
    typo = tmp_path / "missing" / "LJSpeech-1.1"
    result = run(recipe, "--stage", "-1", "--stop_stage", "-1", "--db_root", str(typo), *SMALL)
    assert result.returncode != 0 and f"{typo}: not found, and neither is {typo.parent}" in result.stderr
    assert "downloading" not in result.stdout + result.stderr and not typo.parent.exists()


def test_stage_1_without_data_names_stage_0(workdir, tmp_path):
    """A fresh checkout started at stage 1 (data/ is not in the repository) stops with one
    line naming the missing list and the stage that writes it, not bash's own errors."""
    recipe, _ = workdir
    fresh = tmp_path / "egs" / "ljspeech" / "voc_specgrad"
    shutil.copytree(recipe, fresh, symlinks=True, ignore=shutil.ignore_patterns("data", "dump", "exp", ".python_shim"))
    result = run(fresh, "--stage", "1", "--stop_stage", "1", *SMALL)
    assert result.returncode != 0
    assert "data/tr_no_dev/wav.scp is missing or empty: stage 0 writes it" in result.stderr
    assert "unbound variable" not in result.stderr and "No such file" not in result.stderr
    typo = run(fresh, "--stage", "seven")  # compared as a number, it ran no stage and said it had finished
    assert typo.returncode != 0 and "--stage seven: expected an integer" in typo.stdout + typo.stderr
    assert "Successfully finished" not in typo.stdout + typo.stderr


def test_missing_and_wrong_rate_wavs_are_listed(workdir, tmp_path, speech_clips):
    recipe, _ = workdir
    db = make_db(tmp_path / "db", [c[:22050] for c in speech_clips] * 2)
    (db / "wavs" / "LJ001-0003.wav").unlink()
    sf.write(db / "wavs" / "LJ001-0005.wav", np.zeros(16000), 16000)
    result = run(recipe, "--stage", "0", "--stop_stage", "0", "--db_root", str(db), *SMALL)
    assert result.returncode != 0
    assert "LJ001-0003" in result.stderr and "missing" in result.stderr
    assert "LJ001-0005" in result.stderr and "16000 Hz" in result.stderr


def test_tts_model_with_other_mel_settings_is_refused(full_run, tmp_path):
    recipe, db, result = full_run
    assert result.returncode == 0
    make_tts_exp(tmp_path / "tts", {**FEATS, "hop_length": 300})
    bad = run(
        recipe, "--stage", "5", "--stop_stage", "6", "--db_root", str(db), "--tts_exp", str(tmp_path / "tts"), *SMALL
    )
    assert bad.returncode != 0
    assert "n_shift: TTS model 300 vs vocoder 256" in bad.stderr


def test_multi_node_training_goes_through_the_scheduler(full_run, tmp_path):
    recipe, db, _ = full_run
    local = run(recipe, "--stage", "2", "--stop_stage", "2", "--db_root", str(db), "--num_nodes", "2", "--tag", "mn")
    assert local.returncode != 0 and "needs a scheduler backend" in local.stderr + local.stdout
    # A stand-in srun records how the slurm backend launches training.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/srun_args\n')
    (fake / "srun").chmod(0o755)
    env = with_this_python({**os.environ, "SPECGRAD_BACKEND": "slurm", "PATH": f"{fake}:{os.environ['PATH']}"}, recipe)
    result = subprocess.run(["./run.sh", "--stage", "2", "--stop_stage", "2", "--db_root", str(db), "--ngpu", "4",
                             "--num_nodes", "2", "--tag", "mn"], cwd=recipe, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    launched = (tmp_path / "srun_args").read_text()
    for expected in ("--gres=gpu:4", "--nodes=2", "--ntasks-per-node=1", "--export=ALL", "--ngpu 4",
                     "--dist_launcher slurm", "--multiprocessing_distributed true", "specgrad_plugin.bin.train"):
        assert expected in launched, expected
    assert "srun" not in launched.split("specgrad_plugin.bin.train")[1]  # launched once, not nested


def test_stage_3_with_the_shipped_model_prepares_its_data_or_names_the_stage(workdir, tmp_path):
    """--pretrained ljspeech --stage 3 on a fresh checkout: no data/ and no corpus stops
    naming stage -1; with --db_root it prepares data/ itself and scores the shipped model;
    a data/ split other than the one asked for stops instead of being scored."""
    recipe, db = workdir
    fresh = tmp_path / "egs" / "ljspeech" / "voc_specgrad"
    shutil.copytree(recipe, fresh, symlinks=True, ignore=shutil.ignore_patterns("data", "dump", "exp", ".python_shim"))
    shipped = ["--stage", "3", "--stop_stage", "4", "--pretrained", "ljspeech", "--tag", "shipped"]
    nothing = run(fresh, *shipped, "--db_root", str(tmp_path / "nothing"))
    assert nothing.returncode != 0 and "run stage -1" in nothing.stdout + nothing.stderr
    assert not (fresh / "exp" / "shipped" / "decode_dev").exists()
    scored = run(fresh, *shipped, "--db_root", str(db), *SMALL)
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-2000:]
    assert "preparing it from" in scored.stdout + scored.stderr
    assert len((fresh / "data" / "eval1" / "wav.scp").read_text().splitlines()) == 1
    assert "model: specgrad/ljspeech (shipped)" in (fresh / "exp" / "shipped" / "RESULTS.md").read_text()
    other = run(fresh, *shipped, "--db_root", str(db), "--num_dev", "2", "--num_eval", "2")
    assert other.returncode != 0 and "rerun stage 0" in other.stdout + other.stderr
