"""Log-mel features (ESPnet's own ``LogMelFbank``) and audio <-> frame alignment.

Alignment convention used everywhere in the package: a clip of K mel frames
corresponds to exactly K * hop samples. ``LogMelFbank`` (center=True) yields
N // hop + 1 frames for N samples; we crop audio to a multiple of the hop and drop
the one extra trailing frame, so frame k is centred on sample k * hop of the clip.
"""

from __future__ import annotations

import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from specgrad_plugin.checks import SpecGradInputError, whole_clip_min_samples
from specgrad_plugin.config import FeatureConfig


def crop_to_hop(wav: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Crop (..., N) audio to (..., floor(N / hop) * hop) samples."""
    usable = (wav.shape[-1] // hop_length) * hop_length
    return wav[..., :usable]


class LogMelExtractor(torch.nn.Module):
    """(B, K * hop) audio -> (B, K, n_mels) denormalised log10 mel, as ESPnet TTS computes it."""

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fbank = LogMelFbank(
            fs=cfg.fs,
            n_fft=cfg.n_fft,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            window="hann",
            center=True,
            n_mels=cfg.n_mels,
            fmin=cfg.fmin,
            fmax=cfg.fmax,
            log_base=10.0,
        )

    @property
    def mel_basis(self) -> torch.Tensor:
        """The Slaney mel filterbank the features use, (n_mels, n_fft // 2 + 1)."""
        return self.fbank.logmel.melmat.T

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) audio, N a multiple of the hop -> (B, N / hop, n_mels) log10 mel."""
        if wav.dim() != 2:
            hint = "; one clip is wav[None]" if wav.dim() == 1 else ""
            raise SpecGradInputError(f"audio of shape {tuple(wav.shape)}: expected (batch, samples){hint}")
        if wav.shape[-1] % self.cfg.hop_length:
            raise SpecGradInputError(
                f"audio length {wav.shape[-1]} is not a multiple of hop {self.cfg.hop_length}: crop_to_hop() first"
            )
        shortest = whole_clip_min_samples(self.cfg.hop_length, self.cfg.n_fft)
        if wav.shape[-1] < shortest:  # torch's reflect padding would fail with its own words
            raise SpecGradInputError(f"audio of {wav.shape[-1]} samples: expected at least {shortest} for a mel "
                                     f"(more than n_fft / 2 = {self.cfg.n_fft // 2}, in whole hops of "
                                     f"{self.cfg.hop_length})")
        mel, _ = self.fbank(wav)
        return mel[:, :-1]
