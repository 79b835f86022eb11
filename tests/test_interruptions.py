"""Interrupted runs: SIGKILL mid-training then --resume; decode killed mid-way then rerun."""

import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
import torch

from .conftest import common_args
from .test_distributed import write_shape_file


def train_cmd(data, out, tmp_path):
    return [sys.executable, "-m", "specgrad_plugin.bin.train", *common_args(data, out),
            "--train_shape_file", write_shape_file(data[0], tmp_path / "train_shape"),
            "--valid_shape_file", write_shape_file(data[1], tmp_path / "valid_shape"),
            "--max_epoch", "2", "--num_iters_per_epoch", "3", "--num_samples", "0", "--optim", "adam",
            "--optim_conf", "lr=0.001", "--seed", "3", "--keep_nbest_models", "5"]


def test_sigkill_then_resume_reaches_the_uninterrupted_state(tmp_path, data):
    straight = subprocess.run(train_cmd(data, tmp_path / "a", tmp_path), capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    # Same run, killed once epoch 1 is saved and epoch 2 is under way.
    proc = subprocess.Popen(train_cmd(data, tmp_path / "b", tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (tmp_path / "b" / "1epoch.pth").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "2epoch.pth").exists(), "the run finished before it could be killed"
    resumed = subprocess.run(train_cmd(data, tmp_path / "b", tmp_path) + ["--resume", "true"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(tmp_path / "a" / "2epoch.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "2epoch.pth", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:  # model, EMA, EMA step count, level statistics
        assert torch.equal(a[key], b[key]), key
    state_a = torch.load(tmp_path / "a" / "checkpoint.pth", weights_only=False)["optimizers"][0]["state"]
    state_b = torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=False)["optimizers"][0]["state"]
    for index in state_a:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state_a[index][name], state_b[index][name]), (index, name)


def test_decode_killed_midway_leaves_only_complete_wavs_and_resumes(tmp_path, trained_vocoder):
    feats = tmp_path / "f"
    feats.mkdir()
    ids = [f"u{i}" for i in range(6)]
    for uid in ids:
        np.save(feats / f"{uid}.npy", np.random.randn(400, 80).astype(np.float32) * 0.3 - 3)
    (feats / "feats.scp").write_text("".join(f"{u} {feats}/{u}.npy\n" for u in ids))
    cmd = [sys.executable, "-m", "specgrad_plugin.bin.decode", "--model_file", str(trained_vocoder),
           "--data_path_and_name_and_type", f"{feats}/feats.scp,feats,npy", "--output_dir", str(tmp_path / "o"),
           "--schedule", "WG-3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wav_dir = tmp_path / "o" / "wav"
    deadline = time.time() + 240
    while len(list(wav_dir.glob("*.wav"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(wav_dir.glob("*.wav"))
    assert 0 < len(done) < len(ids)
    for path in done:  # every wav present is whole: 400 frames * 256 samples
        assert sf.info(path).frames == 400 * 256
    before = {p.name: p.stat().st_mtime_ns for p in done}
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"skipping {len(done)} utterances already vocoded" in rerun.stderr
    assert sorted(p.name for p in wav_dir.glob("*.wav")) == [f"{u}.wav" for u in ids]
    assert all((wav_dir / name).stat().st_mtime_ns == mtime for name, mtime in before.items())
    assert not list(wav_dir.glob("*.tmp"))
