"""Two CPU ranks (gloo) train through ESPnet's distributed options."""

import subprocess
import sys

import torch
import yaml

from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.testing import make_data_dir

from .conftest import FRAME, TINY, common_args, write_shape_file

# Runs specgrad_plugin.bin.train with every training-level draw appended to $DRAWS_FILE.
RECORDING_TRAIN = """
import os, sys
from specgrad_plugin import diffusion
from specgrad_plugin.bin import train
original = diffusion.sample_training_levels
def recording(*args, **kwargs):
    levels = original(*args, **kwargs)
    with open(os.environ["DRAWS_FILE"], "a") as f:
        f.write(" ".join(f"{v:.17g}" for v in levels.tolist()) + "\\n")
    return levels
diffusion.sample_training_levels = recording
train.main(sys.argv[1:])
"""


def two_rank_args(tmp_path, speech_clips, out, init):
    # Every batch must hold at least one utterance per rank: 4 training, 2 dev clips, batch 2.
    clips = [c[: int(1.2 * 22050)] for c in speech_clips]
    data = (make_data_dir(tmp_path / "tr", [(f"utt{i}", c) for i, c in enumerate(clips)], 22050),
            make_data_dir(tmp_path / "dev", [("dev0", clips[0]), ("dev1", clips[1])], 22050))
    return common_args(data, out) + [
        "--train_shape_file", write_shape_file(data[0], tmp_path / "train_shape"),
        "--valid_shape_file", write_shape_file(data[1], tmp_path / "valid_shape"),
        "--num_iters_per_epoch", "2", "--num_samples", "0", "--optim", "adam",
        "--optim_conf", "lr=0.001", "--seed", "0", "--dist_backend", "gloo", "--dist_world_size", "2",
        "--dist_init_method", f"file://{init}", "--multiprocessing_distributed", "false",
    ]


def run_two_ranks(args, draws=None):
    """Both ranks to completion; returns their logs. draws: a folder for per-rank draw files."""
    procs = []
    for rank in (0, 1):
        cmd = [sys.executable, "-m", "specgrad_plugin.bin.train", *args, "--dist_rank", str(rank)]
        env = None
        if draws is not None:
            cmd = [sys.executable, "-c", RECORDING_TRAIN, *args, "--dist_rank", str(rank)]
            env = {**__import__("os").environ, "DRAWS_FILE": str(draws / f"rank{rank}.txt")}
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    logs = [p.communicate(timeout=240)[0] for p in procs]
    for rank, log in enumerate(logs):  # pytest shows captured output whole on failure; assert messages get cut
        print(f"===== rank {rank} (exit {procs[rank].returncode}) =====\n{log}")
    assert [p.returncode for p in procs] == [0, 0]
    return logs


def test_two_ranks_train_identically_draw_their_own_noise_and_resume_exactly(tmp_path, speech_clips):
    """Both ranks hold identical weights after every epoch; only rank 0 writes. ESPnet seeds
    every rank alike; each rank must still draw its own levels (and with them noise and
    crops, from the same stream), or W ranks see no more samples than one. A run stopped
    after epoch 1 and resumed draws what the uninterrupted run drew, to the last bit."""
    small = ["--model_conf", "denoiser.frame_channels=32", "--model_conf", "denoiser.frame_layers=2",
             "--model_conf", "denoiser.frame_low_band_channels=16"]

    def args(out, init):
        base = two_rank_args(tmp_path, speech_clips, out, init)
        return [str(FRAME) if a == str(TINY) else a for a in base] + small

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for folder in (whole, parts):
        folder.mkdir()
    logs = run_two_ranks(args(whole / "exp", whole / "init") + ["--max_epoch", "2"], draws=whole)
    # Rank 0 compared both ranks' weights and EMA after each epoch: identical.
    assert logs[0].count("weights and EMA identical on 2 ranks") == 2
    assert sorted(p.name for p in (whole / "exp").glob("*epoch.pth")) == ["1epoch.pth", "2epoch.pth"]
    conf = yaml.safe_load((whole / "exp" / "config.yaml").read_text())["model_conf"]
    torch.manual_seed(0)
    initial = ESPnetSpecGradModel(**{k: v for k, v in conf.items() if k not in ("prior_stats_file", "mel_stats_file")})
    first = torch.load(whole / "exp" / "1epoch.pth", weights_only=True)
    key = "vocoder.denoiser.trunk.input.weight"
    assert not torch.equal(first[key], initial.state_dict()[key])
    assert int(first["ema_updates"]) == 2  # one EMA update per optimiser step, not per rank
    run_two_ranks(args(parts / "exp", parts / "init1") + ["--max_epoch", "1"], draws=parts)
    run_two_ranks(args(parts / "exp", parts / "init2") + ["--max_epoch", "2", "--resume", "true"], draws=parts)
    lines = {(f.parent.name, f.stem): f.read_text().splitlines() for f in tmp_path.glob("*/rank*.txt")}
    # per epoch: 2 training steps and 1 validation batch (one dev clip per rank)
    assert len(lines["whole", "rank0"]) == len(lines["whole", "rank1"]) == 6
    for step in range(6):
        assert lines["whole", "rank0"][step] != lines["whole", "rank1"][step]
    assert lines["parts", "rank0"] == lines["whole", "rank0"] and lines["parts", "rank1"] == lines["whole", "rank1"]
    a = torch.load(whole / "exp" / "2epoch.pth", weights_only=True)
    b = torch.load(parts / "exp" / "2epoch.pth", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
