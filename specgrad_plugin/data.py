"""Audio I/O (soundfile) and the random-segment dataset of the built-in trainer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.features import LogMelExtractor, crop_to_hop

DATA_ENV = "SPECGRAD_DATA"  # folder holding ljspeech_mini/ and ljspeech_eval/ (set by .ci/run)


def shared_data_dir() -> Optional[Path]:
    """The shared LJSpeech folder: $SPECGRAD_DATA when set (a folder without the clips: None, so
    that a run without the shared data can be had beside it), else ../shared/data beside the
    repo when it holds them, else None."""
    env = os.environ.get(DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if (path / "ljspeech_mini" / "metadata.csv").is_file() else None


def read_wav(path: Union[str, Path], expected_fs: int, hop_length: int, resample: bool = False) -> np.ndarray:
    """Read a mono wav (any PCM/float subtype) as float32 in [-1, 1]; errors name the file and
    what was expected. Another sample rate is an error unless resample=True."""
    path = Path(path)
    try:
        wav, fs = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise SpecGradInputError(f"{path}: not a readable audio file ({e})") from None
    if fs != expected_fs:
        if not resample:
            raise SpecGradInputError(f"{path}: sample rate {fs} Hz, expected {expected_fs} Hz (or ask to resample)")
        wav = resample_audio(wav, fs, expected_fs)
    if wav.shape[1] != 1:
        raise SpecGradInputError(f"{path}: {wav.shape[1]} channels, expected mono")
    if wav.shape[0] < hop_length:
        raise SpecGradInputError(f"{path}: {wav.shape[0]} samples, expected at least one hop ({hop_length})")
    if not np.isfinite(wav).all():
        raise SpecGradInputError(f"{path}: NaN/inf samples, expected finite audio")
    return wav[:, 0]


def check_sound_scp(scp: Union[str, Path], expected_fs: int, hop_length: int) -> int:
    """Check every entry of a wav.scp without decoding it (header only): present, readable,
    mono, at expected_fs, at least one hop long. Raises one error listing the bad entries."""
    scp = Path(scp)
    problems, count = [], 0
    for n, line in enumerate(scp.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        count += 1
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            problems.append(f"line {n}: expected 'utt_id path', got {line!r}")
            continue
        uid, path = parts[0], parts[1].strip()
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            problems.append(f"{uid}: {path} unreadable ({e})")
            continue
        if info.samplerate != expected_fs or info.channels != 1:
            problems.append(f"{uid}: {info.samplerate} Hz, {info.channels} channel(s); expected {expected_fs} Hz mono")
        elif info.frames < hop_length:
            problems.append(f"{uid}: {info.frames} samples, expected at least one hop ({hop_length})")
    if problems:
        listed = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SpecGradInputError(f"{scp}: {len(problems)} of {count} utterances cannot be used: {listed}")
    if count == 0:
        raise SpecGradInputError(f"{scp}: no utterances")
    return count


def write_wav(path: Union[str, Path], wav: Union[np.ndarray, torch.Tensor], fs: int) -> None:
    """Write 16-bit PCM atomically: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    tmp = path.with_name(path.name + ".tmp")
    sf.write(str(tmp), np.clip(wav, -1.0, 1.0), fs, subtype="PCM_16", format="WAV")
    tmp.replace(path)


def corpus_wavs(root: Union[str, Path]) -> List[Path]:
    """The wavs of an LJSpeech-layout folder (metadata.csv ids), sorted by id."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise SpecGradInputError(f"{root}: no metadata.csv, expected an LJSpeech-layout folder")
    ids = sorted(line.split("|", 1)[0] for line in meta.read_text(encoding="utf-8").splitlines() if line.strip())
    paths = [root / "wavs" / f"{i}.wav" for i in ids]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SpecGradInputError(f"{root}: {len(missing)} wavs listed in metadata.csv are missing: {missing[:5]}")
    return paths


def speed_perturb(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play (N,) audio ``factor`` times faster: resampled to about N / factor samples, so
    pitch and formants rise by ``factor`` (Kaldi's speed perturbation, sox ``speed``)."""
    if factor == 1.0:
        return wav
    return resample_audio(wav, int(round(1000 * factor)), 1000)


def resample_audio(wav: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Polyphase resampling of (N,) or (N, C) audio from rate ``orig`` to ``new``, float32."""
    g = np.gcd(orig, new)
    return resample_poly(wav, new // g, orig // g, axis=0).astype(np.float32)


def mel_context_frames(n_fft: int, hop_length: int) -> int:
    """Frames of audio a crop needs on each side so that its mel frames see no padding (n_fft / 2 samples)."""
    return -(-(n_fft // 2) // hop_length)


def crop_start(samples: int, frames: int, hop: int, any_sample: bool, training: bool = True) -> int:
    """Where a frames * hop crop of a clip of ``samples`` (>= frames * hop) starts: uniformly at
    any sample or on the frame grid in training, the middle frame-grid position otherwise."""
    span = samples - frames * hop
    if not training:
        return (span // hop // 2) * hop
    if any_sample:
        return int(torch.randint(0, span + 1, ()))
    return int(torch.randint(0, span // hop + 1, ())) * hop


def crop_with_context(clip: torch.Tensor, start: int, frames: int, hop: int, context: int) -> torch.Tensor:
    """clip[start - context * hop : start + (frames + context) * hop], reflect-padded at the clip's
    ends as a centred STFT pads them: (N,) -> ((frames + 2 context) * hop,). The mel of this
    piece, less ``context`` frames each side, is the crop's mel, wherever the crop starts."""
    pad = context * hop
    lo, hi = start - pad, start + (frames + context) * hop
    if lo >= 0 and hi <= clip.shape[-1]:  # inside the clip: a slice, no copy of the whole clip
        return clip[lo:hi]
    padded = torch.nn.functional.pad(clip[None, None], (pad, pad), mode="reflect")[0, 0]
    return padded[start : start + (frames + 2 * context) * hop]


class SegmentDataset(torch.utils.data.Dataset):
    """Random (segment_frames * hop)-sample crops with their mel frames.

    The mel of a crop is the whole clip's (edge frames see real context rather than
    padding). With any_sample=False crops start on the clip's frame grid and take its
    mel frames; with any_sample=True they start at any sample and their mel is computed
    from the crop and its context. speed_factors: every clip is also kept resampled by
    each factor (speed_perturb); [1.0] keeps the clips as they are.
    """

    def __init__(
        self,
        clips: Sequence[Union[np.ndarray, str, Path]],
        extractor: LogMelExtractor,
        segment_frames: int,
        any_sample: bool = False,
        speed_factors: Sequence[float] = (1.0,),
    ) -> None:
        cfg = extractor.cfg
        # any-sample crops need their own CPU extractor (the caller's may move to a GPU with
        # the model it belongs to); grid crops take the clip's mel frames
        self.extractor = LogMelExtractor(cfg) if any_sample else None
        self.segment_frames = segment_frames
        self.any_sample = any_sample
        self.hop = cfg.hop_length
        self.context = mel_context_frames(cfg.n_fft, cfg.hop_length)
        self.items: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for clip, factor in ((c, f) for c in clips for f in speed_factors):
            wav = read_wav(clip, cfg.fs, cfg.hop_length) if isinstance(clip, (str, Path)) else clip
            wav = torch.as_tensor(speed_perturb(np.asarray(wav, dtype=np.float32), float(factor)))
            short = segment_frames * self.hop - wav.shape[-1]
            if short > 0:
                wav = torch.nn.functional.pad(wav, (0, short))
            wav = crop_to_hop(wav, self.hop)
            with torch.no_grad():
                mel = extractor(wav.unsqueeze(0))[0]
            self.items.append((wav, mel))

    @classmethod
    def for_training(cls, clips, extractor: LogMelExtractor, train) -> "SegmentDataset":
        """The crops a config's train section asks for (segment_frames, any_sample_crops, speed_factors)."""
        return cls(clips, extractor, train.segment_frames, train.any_sample_crops, train.speed_factors)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        wav, mel = self.items[index]
        frames, hop, ctx = self.segment_frames, self.hop, self.context
        start = crop_start(wav.shape[0], frames, hop, self.any_sample)
        if not self.any_sample:
            return wav[start : start + frames * hop], mel[start // hop : start // hop + frames]
        piece = crop_with_context(wav, start, frames, hop, ctx)
        with torch.no_grad():
            crop_mel = self.extractor(piece[None])[0, ctx : ctx + frames]
        return piece[ctx * hop : (ctx + frames) * hop], crop_mel

    def mels(self) -> List[torch.Tensor]:
        return [mel for _, mel in self.items]
