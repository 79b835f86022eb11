"""Two CPU ranks (gloo) train the tiny preset through ESPnet's distributed options."""

import subprocess
import sys

import pytest
import torch
import yaml

from specgrad_plugin.espnet.model import ESPnetSpecGradModel
from specgrad_plugin.testing import make_data_dir

from .conftest import FRAME, common_args, write_shape_file


@pytest.mark.parametrize("family", ["wavenet", "frame"])
def test_two_gloo_ranks_train_identically(tmp_path, speech_clips, family):
    out = tmp_path / "exp"
    # Every batch must hold at least one utterance per rank: 4 training, 2 dev clips, batch 2.
    clips = [c[: int(1.2 * 22050)] for c in speech_clips]
    data = (make_data_dir(tmp_path / "tr", [(f"utt{i}", c) for i, c in enumerate(clips)], 22050),
            make_data_dir(tmp_path / "dev", [("dev0", clips[0]), ("dev1", clips[1])], 22050))
    args = common_args(data, out) + [
        "--train_shape_file", write_shape_file(data[0], tmp_path / "train_shape"),
        "--valid_shape_file", write_shape_file(data[1], tmp_path / "valid_shape"),
        "--max_epoch", "1", "--num_iters_per_epoch", "2", "--num_samples", "0", "--optim", "adam",
        "--optim_conf", "lr=0.001", "--seed", "0", "--dist_backend", "gloo", "--dist_world_size", "2",
        "--dist_init_method", f"file://{tmp_path}/init", "--multiprocessing_distributed", "false",
    ]
    if family == "frame":
        args = [str(FRAME) if a.endswith("specgrad_tiny.yaml") else a for a in args] + [
            "--model_conf", "denoiser.frame_channels=32", "--model_conf", "denoiser.frame_layers=2"]
    procs = [subprocess.Popen([sys.executable, "-m", "specgrad_plugin.bin.train", *args, "--dist_rank", str(rank)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    for rank, log in enumerate(logs):  # pytest shows captured output whole on failure; assert messages get cut
        print(f"===== rank {rank} (exit {procs[rank].returncode}) =====\n{log}")
    assert [p.returncode for p in procs] == [0, 0]
    # Rank 0 compared both ranks' weights and EMA after the step: identical.
    assert "weights and EMA identical on 2 ranks" in logs[0]
    # Only rank 0 writes: one checkpoint per epoch, whose weights moved away from the initial ones.
    assert sorted(p.name for p in out.glob("*epoch.pth")) == ["1epoch.pth"]
    conf = yaml.safe_load((out / "config.yaml").read_text())["model_conf"]
    torch.manual_seed(0)
    initial = ESPnetSpecGradModel(**{k: v for k, v in conf.items() if k not in ("prior_stats_file", "mel_stats_file")})
    trained = torch.load(out / "1epoch.pth", weights_only=True)
    key = "vocoder.denoiser.input.weight"
    assert not torch.equal(trained[key], initial.state_dict()[key])
    assert int(trained["ema_updates"]) == 2  # one EMA update per optimiser step, not per rank
