"""Shared fixtures. Real LJSpeech clips are used when $SPECGRAD_DATA (or ../shared/data)
holds them; otherwise tests that need speech fall back to generated speech-like signals."""

from pathlib import Path

import numpy as np
import pytest
import torch

from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.data import read_wav, shared_data_dir
from specgrad_plugin.synthetic import speech_like

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "conf" / "specgrad_tiny.yaml"
BASE = REPO / "conf" / "specgrad_base.yaml"


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
