"""Denoiser families behind one interface (base.Denoiser), chosen by ``denoiser.kind``:

- ``wavenet``: the sample-rate WaveNet of DiffWave / PriorGrad / the paper (wavenet.py);
- ``frame``: a ConvNeXt over STFT frames in the prior's whitened domain (frame.py).
"""

from __future__ import annotations

from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.denoisers.base import Denoiser, count_parameters
from specgrad_plugin.denoisers.frame import FrameDenoiser
from specgrad_plugin.denoisers.wavenet import WaveNetDenoiser


def build_denoiser(cfg: SpecGradConfig) -> Denoiser:
    """The denoiser that ``cfg.denoiser.kind`` names (the config is validated beforehand)."""
    if cfg.denoiser.kind == "frame":
        return FrameDenoiser(cfg.denoiser, cfg.features)
    return WaveNetDenoiser(cfg.denoiser, cfg.features.n_mels)


__all__ = ["Denoiser", "FrameDenoiser", "WaveNetDenoiser", "build_denoiser", "count_parameters"]
