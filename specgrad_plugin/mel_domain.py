"""How far an input mel is from the mels a model was trained on, in words a user can act on.

A vocoder trained on one voice degrades on mels unlike its training mels. Three departures
are common in TTS use and each costs quality in its own way (docs/unseen_voices.md):

- level: the whole mel lower or higher, read on its loud frames so that pauses do not count:
  d = median_b (q_b - train_mean_b - Z * train_std_b) over the lowest LEVEL_BANDS of the
  bands (where speech has its energy and no band limit reaches), q_b the band's
  LEVEL_QUANTILE over frames and Z that quantile of a normal distribution, in log10 units
  (20 d dB);
- band limit: the bands above some frequency far below the training spectrum's shape
  (mean_b - train_mean_b - o < -1, 20 dB, from there up, o the median of mean_b -
  train_mean_b over the same low bands: the shape, not the level), as from audio recorded at a
  lower sample rate and upsampled;
- pitch: the voice's median F0 (pitch.mel_f0) outside the training voice's range.

Shapes: K frames, M mel bands.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch

from specgrad_plugin import pitch
from specgrad_plugin.checks import InputMelWarning, warn_caller
from specgrad_plugin.config import FeatureConfig

LEVEL_DB = 15.0  # a level this far from the training mels' is named
LEVEL_BANDS = 0.4  # the share of bands, from the lowest, that the level is read on
LEVEL_QUANTILE, LEVEL_Z = 0.9, 1.2816  # the level is read on each band's 90th percentile over frames
BAND_DROP = 1.0  # a band limit: every band above it this far (log10) below the training shape
VOICED = 0.5  # frames with pitch.mel_f0's voicing above this count for the median F0


def _offset(band_means: torch.Tensor, train_mean: torch.Tensor) -> torch.Tensor:
    bands = max(1, int(LEVEL_BANDS * band_means.shape[0]))
    return (band_means - train_mean)[:bands].median()


def quantile_over_frames(mel: torch.Tensor, q: float) -> torch.Tensor:
    """torch.quantile(mel, q, dim=1) (linear interpolation between the two nearest ranks)
    written with a sort, which an ONNX graph can hold: (B, K, M) -> (B, M). K stays dynamic
    in a traced graph: the rank is computed from a tensor, not from a Python int."""
    ordered = mel.sort(dim=1).values
    last = torch.ones_like(mel[0, :, 0]).sum() - 1.0  # K - 1
    rank = q * last
    below = rank.floor()
    lo = below.long().reshape(1)
    hi = torch.minimum(lo + 1, last.long().reshape(1))
    low, high = ordered.index_select(1, lo)[:, 0], ordered.index_select(1, hi)[:, 0]
    return low + (rank - below) * (high - low)


def level_offset(mel: torch.Tensor, train_mean: torch.Tensor, train_std: torch.Tensor) -> torch.Tensor:
    """Each item's level d against the training mels' (the module docstring), in log10 units:
    a mel 20 dB quieter reads -1. (B, K, M), (M,), (M,) -> (B,). The median over bands is the
    lower one for an even count, as torch.median's."""
    bands = max(1, int(LEVEL_BANDS * mel.shape[-1]))
    loud = quantile_over_frames(mel.float(), LEVEL_QUANTILE)  # (B, M)
    return (loud - train_mean - LEVEL_Z * train_std)[:, :bands].sort(dim=-1).values[:, (bands - 1) // 2]


def level_match_shift(offset: torch.Tensor, tolerance_db: float) -> torch.Tensor:
    """The log10 shift that brings a level offset d (level_offset) to within tolerance_db of
    the training mels': s = -sign(d) max(0, |d| - tolerance_db / 20). Adding s to a log10
    amplitude mel scales its audio by 10^s, so the output is scaled back by 10^-s. Zero
    within the tolerance, continuous in d. (B,) -> (B,)."""
    return -torch.sign(offset) * (offset.abs() - tolerance_db / 20.0).clamp_min(0.0)


def level_shift(mel: torch.Tensor, train_mean: torch.Tensor, train_std: torch.Tensor,
                tolerance_db: float) -> torch.Tensor:
    """(B, K, M) mel -> (B,) s = level_match_shift(level_offset(mel)), the log10 shift to sample at."""
    return level_match_shift(level_offset(mel, train_mean, train_std), tolerance_db)


def match_level(mel: torch.Tensor, train_mean: torch.Tensor, train_std: torch.Tensor,
                tolerance_db: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, K, M) mel -> (mel + s, to sample from; (B,) the gain 10^-s that takes the output
    back to the input's level), s = level_shift(mel)."""
    shift = level_shift(mel, train_mean, train_std, tolerance_db)
    return mel + shift[:, None, None], torch.pow(10.0, -shift)


def band_limit(band_means: torch.Tensor, train_mean: torch.Tensor) -> Optional[int]:
    """The first band from which every band up is more than BAND_DROP below the training
    shape (the level taken out), or None: (M,), (M,) -> band index."""
    low = band_means - train_mean - _offset(band_means, train_mean) < -BAND_DROP
    if not bool(low[-1]):
        return None
    first = low.shape[0] - 1
    while first > 0 and bool(low[first - 1]):
        first -= 1
    return first if first > low.shape[0] // 4 else None  # most bands missing: not a band limit


def median_voiced_f0(f0: torch.Tensor, voicing: torch.Tensor) -> Optional[float]:
    """Median F0 (Hz) of the frames voiced above VOICED, or None when under 10 frames are: (K,), (K,)."""
    voiced = f0[voicing > VOICED]
    return float(voiced.median()) if voiced.numel() >= 10 else None


def describe(
    band_means: torch.Tensor,
    train_mean: torch.Tensor,
    band_centres_hz: Sequence[float],
    median_f0: Optional[float] = None,
    voice_f0_hz: Sequence[float] = (),
    level_db: float = 0.0,
    level_matched: bool = False,
) -> Dict[str, str]:
    """{"level" | "band_limit" | "pitch": one sentence} for each departure from the training
    mels; empty when the input is like them. level_db: 20 level_offset; level_matched: the
    vocoder shifts the level."""
    notes = {}
    if abs(level_db) > LEVEL_DB:
        remedy = ("it is vocoded nearer the training level and scaled back: inference.level_match_db"
                  if level_matched else "quality drops with it; scale the audio the mel came from")
        notes["level"] = (f"its level is {abs(level_db):.0f} dB {'below' if level_db < 0 else 'above'} the training "
                          f"mels' ({remedy})")
    first = band_limit(band_means, train_mean)
    if first is not None:
        notes["band_limit"] = (f"it is band-limited near {band_centres_hz[first] / 1000:.1f} kHz (the bands "
                               "above are empty; was the audio recorded at a lower sample rate?)")
    if median_f0 is not None and len(voice_f0_hz) == 2:
        low, high = voice_f0_hz
        if not low <= median_f0 <= high:
            notes["pitch"] = (f"its pitch (median F0 {median_f0:.0f} Hz) is outside the training voice's "
                              f"{low:.0f}-{high:.0f} Hz (the model was trained on one voice)")
    return notes


class InputWarnings:
    """The one-time warnings of one vocoder about input mels unlike its training mels.

    Args:
        features: the model's feature settings.
        mel_basis: its (M, F) mel filterbank (LogMelExtractor.mel_basis).
        voice_f0_hz: the training voice's [low, high] F0 range ([]: pitch is not checked).
        level_matched: whether the vocoder shifts an input's level (said in the level warning).
    """

    def __init__(self, features: FeatureConfig, mel_basis: torch.Tensor, voice_f0_hz: Sequence[float],
                 level_matched: bool = False) -> None:
        self.features, self.voice_f0_hz, self.level_matched = features, list(voice_f0_hz), level_matched
        self.mel_basis = mel_basis
        self.warned: set = set()  # the kinds of departure already warned about
        self.templates = None  # pitch.comb_templates, built when a pitch warning needs them

    def pitch_templates(self, device: torch.device):
        """pitch.comb_templates for these features, built on first use."""
        if self.templates is None:
            self.templates = pitch.comb_templates(self.mel_basis.detach().cpu(), self.features.fs, self.features.n_fft)
        return tuple(t.to(device) for t in self.templates)

    def check(self, mel: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Warn when a (B, K, M) mel is far from the training mels (per-band mean and std; std
        all zero: not collected, nothing checked): mean |z| over bands > 2 (a normalised or
        natural-log mel: noise out), else once per kind of departure that describe() names."""
        if not bool((std > 0).all()):
            return
        z = float(((mel.mean(dim=(0, 1)) - mean) / std).abs().mean())
        if z > 2.0:
            warn_caller(
                f"input mel mean {float(mel.mean()):.2f} is {z:.1f} std from the training mels "
                f"(mean {float(mean.mean()):.2f}): expected a denormalised log10 mel with the model's "
                "feature settings; the output will likely be noise", InputMelWarning,
            )
            return
        median_f0 = None
        if self.voice_f0_hz and "pitch" not in self.warned:  # once said, not re-estimated
            f0, voicing = pitch.mel_f0(mel[:1].float(), *self.pitch_templates(mel.device))
            median_f0 = median_voiced_f0(f0[0], voicing[0])
        centres = pitch.band_centres_hz(self.mel_basis, self.features.fs, self.features.n_fft)
        level_db = 20.0 * float(level_offset(mel.reshape(1, -1, mel.shape[-1]), mean, std)[0])
        notes = describe(mel.float().mean(dim=(0, 1)), mean, centres.tolist(), median_f0, self.voice_f0_hz,
                         level_db, self.level_matched)
        for kind, note in notes.items():
            if kind not in self.warned:  # once per vocoder and kind, not once per utterance
                self.warned.add(kind)
                warn_caller(f"input mel unlike the training mels: {note}", InputMelWarning)
