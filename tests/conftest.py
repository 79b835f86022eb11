"""Shared fixtures. Real LJSpeech clips are used when $SPECGRAD_DATA (or ../shared/data)
holds them; otherwise tests that need speech fall back to generated speech-like signals."""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.data import read_wav, shared_data_dir
from specgrad_plugin.synthetic import speech_like
from specgrad_plugin.testing import make_data_dir

# Under pytest-xdist (README's test command runs 2 workers) the workers share the cores
# instead of each taking all of them; child processes inherit the share.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)

# Tests never use the network: HTTP(S) from this process and every process it starts goes to
# a closed local port and is refused, and the Hugging Face hub client does not try. What would
# download is ESPnet's TTS task, whose g2p_en import fetches nltk's dictionaries when they are
# missing (the tests tokenise characters).
OFFLINE_PROXY = "http://127.0.0.1:9"
for _name in ("http_proxy", "https_proxy", "all_proxy"):
    os.environ[_name] = os.environ[_name.upper()] = OFFLINE_PROXY
for _name in ("no_proxy", "NO_PROXY"):
    os.environ.pop(_name, None)
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "specgrad_plugin" / "presets"
TINY = PRESETS / "tiny.yaml"
BASE = PRESETS / "base.yaml"
FRAME = PRESETS / "frame.yaml"
# Small members of each denoiser family, for tests that run both through the same code.
SMALL_FAMILIES = {
    "wavenet": {"residual_layers": 6, "residual_channels": 8, "dilation_cycle": 6,
                "level_embed_dim": 16, "level_hidden_dim": 16},
    "frame": {"kind": "frame", "frame_channels": 16, "frame_layers": 2, "frame_kernel": 3,
              "level_embed_dim": 16, "level_hidden_dim": 16},
}


def frames_reaching_one_output_frame(vocoder, frames: int = 81, hop: int = 256) -> int:
    """How many frames away from the middle output frame of an x of ``frames`` frames the
    frame denoiser's input still changes it (nonzero gradient): what context_frames() must cover."""
    denoiser, centre = vocoder.denoiser, frames // 2
    mel = torch.randn(1, frames, 80) * 0.5 - 3
    x = torch.randn(1, frames * hop, requires_grad=True)
    cond = denoiser.condition(mel, vocoder.prior.response(mel))
    denoiser(x, cond, torch.tensor([0.5]))[0, centre * hop: (centre + 1) * hop].abs().sum().backward()
    touched = (x.grad[0].view(frames, hop).abs().sum(1) > 0).nonzero().flatten()
    return int((touched - centre).abs().max())


def assert_refused_and_vocoded_one_by_one(vocoder, key: str) -> None:
    """export.unsupported_reason names ``key``, streaming refuses the vocoder with it, and
    vocode_batch falls back to one utterance at a time: the same audio as vocoder(mel)."""
    from specgrad_plugin.batched import vocode_batch
    from specgrad_plugin.export import ExportError, unsupported_reason
    from specgrad_plugin.streaming import StreamingVocoder

    assert key in unsupported_reason(vocoder)
    with pytest.raises(ExportError, match=key.split("=")[0]):
        StreamingVocoder(vocoder, seed=0)
    mels = [torch.randn(n, 80) * 0.5 - 3 for n in (30, 45)]
    batch = vocode_batch(vocoder, mels, schedule="WG-3", seed=3)
    alone = [vocoder(m, schedule="WG-3", seed=3) for m in mels]
    for a, b in zip(batch, alone, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def load_script(path: Path):
    """A script (bench/, a recipe's local/) imported as a module under its file's stem."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def small_config(family: str, **sections) -> SpecGradConfig:
    return SpecGradConfig.from_dict({"denoiser": SMALL_FAMILIES[family], **sections})


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_cfg() -> SpecGradConfig:
    return SpecGradConfig.from_yaml(TINY)


def _clips(n: int, seconds: float):
    root = shared_data_dir()
    if root is not None:
        wavs = sorted((root / "ljspeech_mini" / "wavs").glob("*.wav"))[:n]
        return [read_wav(p, 22050, 256)[: int(seconds * 22050)] for p in wavs], "ljspeech"
    return [speech_like(seconds, 22050, seed=i) for i in range(n)], "synthetic"


@pytest.fixture(scope="session")
def speech_clip():
    """(samples,) float32 at 22.05 kHz, 4 s: a real LJSpeech clip when available."""
    clips, _ = _clips(1, 4.0)
    return clips[0]


@pytest.fixture(scope="session")
def speech_clips():
    """Four 4-s clips, real when available."""
    clips, _ = _clips(4, 4.0)
    return clips


@pytest.fixture(scope="module")
def data(tmp_path_factory, speech_clips):
    """Kaldi wav.scp for 3 training and 1 dev clip of 1.2 s."""
    root = tmp_path_factory.mktemp("data")
    clips = [c[: int(1.2 * 22050)] for c in speech_clips]
    train_scp = make_data_dir(root / "tr", [(f"utt{i}", c) for i, c in enumerate(clips[:3])], 22050)
    dev_scp = make_data_dir(root / "dev", [("dev0", clips[3])], 22050)
    return train_scp, dev_scp


def common_args(data, out):
    """specgrad_plugin.bin.train options shared by the ESPnet tests."""
    train_scp, dev_scp = data
    return [
        "--preset", str(TINY), "--ngpu", "0", "--batch_size", "2", "--num_workers", "0",
        "--train_data_path_and_name_and_type", f"{train_scp},speech,sound",
        "--valid_data_path_and_name_and_type", f"{dev_scp},speech,sound",
        "--model_conf", "segment_frames=16", "--output_dir", str(out),
    ]


def run_args(data, out, stats):
    """common_args plus the shape files and statistics that collect-stats wrote to stats."""
    return common_args(data, out) + [
        "--train_shape_file", str(stats / "train" / "speech_shape"),
        "--valid_shape_file", str(stats / "valid" / "speech_shape"),
        "--model_conf", f"prior_stats_file={stats / 'train' / 'energy_hist_stats.npz'}",
        "--model_conf", f"mel_stats_file={stats / 'train' / 'feats_stats.npz'}",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """collect-stats, then one epoch, then --resume to a second one (ESPnet's
    trainer, the tiny preset): (stats folder, run folder, epoch 1's weights)."""
    root = tmp_path_factory.mktemp("exp")
    stats = root / "stats"
    from specgrad_plugin.bin import train

    train.main(common_args(data, stats) + ["--collect_stats", "true"])
    out = root / "train"
    args = run_args(data, out, stats) + [
        "--optim", "adam", "--optim_conf", "lr=0.001", "--grad_clip", "1.0", "--num_iters_per_epoch", "2",
        "--num_samples", "1", "--sample_seconds", "0.5", "--sample_schedule", "WG-3", "--num_att_plot", "0",
        "--best_model_criterion", "valid,pesq,max", "valid,mel_l1,min", "--seed", "0",
    ]
    train.main(args + ["--max_epoch", "1"])
    first = torch.load(out / "1epoch.pth", weights_only=True)
    train.main(args + ["--max_epoch", "2", "--resume", "true"])
    return stats, out, first


def write_shape_file(scp, path):
    """ESPnet's speech_shape ('utt_id samples'), which collect-stats would write."""
    lines = [f"{u} {sf.info(p).frames}\n" for u, p in (line.split() for line in scp.read_text().splitlines())]
    path.write_text("".join(lines))
    return str(path)


@pytest.fixture(scope="session")
def trained_vocoder(tmp_path_factory):
    """A tiny-preset checkpoint (built-in format, random but non-zero output layer)."""
    from specgrad_plugin.vocoder import SpecGradVocoder

    torch.manual_seed(0)
    vocoder = SpecGradVocoder(SpecGradConfig.from_yaml(TINY))
    torch.nn.init.normal_(vocoder.denoiser.out.weight, std=0.05)
    path = tmp_path_factory.mktemp("vocoder") / "checkpoint.pt"
    vocoder.save(path)
    return path
