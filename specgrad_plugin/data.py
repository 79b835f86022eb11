"""Audio I/O (soundfile) and the random-segment dataset of the built-in trainer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from specgrad_plugin.checks import SpecGradInputError, audio_problem, check_audio
from specgrad_plugin.features import LogMelExtractor, crop_to_hop

WORLD_F0_FLOOR, WORLD_F0_CEIL = 50.0, 600.0  # Hz: world_pitch_shift's F0 search range
DATA_ENV = "SPECGRAD_DATA"  # folder holding ljspeech_mini/ and ljspeech_eval/ (set by .ci/run)


def shared_data_dir() -> Optional[Path]:
    """The shared LJSpeech folder: $SPECGRAD_DATA when set (a folder without the clips: None, so
    that a run without the shared data can be had beside it), else ../shared/data beside the
    repo when it holds them, else None."""
    env = os.environ.get(DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if (path / "ljspeech_mini" / "metadata.csv").is_file() else None


def read_wav(path: Union[str, Path], expected_fs: int, hop_length: int, resample: bool = False,
             n_fft: int = 0) -> np.ndarray:
    """Read a mono wav (any PCM/float subtype) as float32 in [-1, 1]; errors name the file and
    what was expected (checks.check_audio; n_fft > 0: long enough for the whole clip's mel).
    Another sample rate is an error unless resample=True."""
    path = Path(path)
    if not path.exists():
        raise SpecGradInputError(f"{path}: file not found")
    if path.is_dir():
        raise SpecGradInputError(f"{path}: a directory, expected an audio file")
    try:
        wav, fs = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise SpecGradInputError(f"{path}: not a readable audio file ({e})") from None
    if fs != expected_fs and resample:
        wav, fs = resample_audio(wav, fs, expected_fs), expected_fs
    return check_audio(wav, hop_length, str(path), fs, expected_fs, n_fft)


def read_scp(path: Union[str, Path]) -> Dict[str, str]:
    """A Kaldi-style ``utt_id value`` list (wav.scp) -> {utt_id: value}, in file order; a line
    without both, or an id given twice, is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise SpecGradInputError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # an audio or .npy file given where its list belongs
        raise SpecGradInputError(f"{path}: not a text file; expected a Kaldi-style list (wav.scp, feats.scp) "
                                 "of 'utt_id path' lines") from None
    entries, first_line = {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise SpecGradInputError(f"{path}:{n}: expected 'utt_id wav_path', got {line!r}")
            if parts[0] in entries:
                raise SpecGradInputError(f"{path}:{n}: utterance id {parts[0]!r} already given on line "
                                         f"{first_line[parts[0]]}; expected each id once")
            entries[parts[0]], first_line[parts[0]] = parts[1].strip(), n
    return entries


def check_sound_scp(scp: Union[str, Path], expected_fs: int, hop_length: int, n_fft: int = 0) -> int:
    """Check every entry of a wav.scp without decoding it (header only) by check_audio's rules:
    present, readable, mono, at expected_fs, long enough (checks.audio_problem). Raises one
    error listing the bad entries."""
    entries = read_scp(scp)
    problems = []
    for uid, path in entries.items():
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            problems.append(f"{uid}: {path} not a readable audio file ({e})")
            continue
        problem = audio_problem(info.frames, info.channels, hop_length, info.samplerate, expected_fs, n_fft)
        if problem:
            problems.append(f"{uid}: {problem}")
    if problems:
        listed = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SpecGradInputError(f"{scp}: {len(problems)} of {len(entries)} utterances cannot be used: {listed}")
    if not entries:
        raise SpecGradInputError(f"{scp}: no utterances")
    return len(entries)


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


def speed_perturb(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Play (N,) audio ``factor`` times faster: resampled (torchaudio, on wav's device) to about
    N / factor samples, so pitch and formants rise by ``factor`` (Kaldi's speed perturbation,
    sox ``speed``)."""
    if factor == 1.0:
        return wav
    import torchaudio

    return torchaudio.functional.resample(wav, int(round(1000 * factor)), 1000)


def _pyworld(needed_by: str = "train.pitch_factors"):
    try:
        import pyworld
    except ImportError as err:
        raise SpecGradInputError(f"{needed_by} needs pyworld: pip install 'specgrad_plugin[eval]'") from err
    return pyworld


def world_pitch_shift(wav: np.ndarray, fs: int, factor: float) -> np.ndarray:
    """(N,) float audio with its F0 times ``factor`` and its spectral envelope and aperiodicity
    kept, so the formants stay where they are (WORLD: Harvest F0, CheapTrick, D4C, then
    synthesis; Morise et al. 2016); (N,) float32 at the input's RMS. Unlike speed_perturb this
    moves the pitch of a voice without making its vocal tract smaller or larger."""
    if factor == 1.0:
        return np.asarray(wav, dtype=np.float32)
    pyworld = _pyworld()
    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, times = pyworld.harvest(x, fs, f0_floor=WORLD_F0_FLOOR, f0_ceil=WORLD_F0_CEIL)
    envelope = pyworld.cheaptrick(x, f0, times, fs)
    aperiodicity = pyworld.d4c(x, f0, times, fs)
    y = pyworld.synthesize(f0 * factor, envelope, aperiodicity, fs)[: len(x)]
    y = np.pad(y, (0, len(x) - len(y)))
    gain = np.sqrt(np.mean(x**2) / max(np.mean(y**2), 1e-12))
    return (y * gain).astype(np.float32)


def cached_world_pitch_shift(wav: np.ndarray, fs: int, factor: float, cache: Optional[Path]) -> np.ndarray:
    """world_pitch_shift, kept in ``cache`` (a folder; None: not kept) as one .npy per clip and
    factor, named by a hash of the samples, rate, factor, pyworld's version and the F0 search
    range: a resumed or repeated run reads its copies instead of rebuilding them (about 2 s
    per clip and factor)."""
    if cache is None or factor == 1.0:
        return world_pitch_shift(wav, fs, factor)
    import hashlib

    x = np.ascontiguousarray(wav, dtype=np.float32)
    settings = f"|{fs}|{factor!r}|{_pyworld().__version__}|{WORLD_F0_FLOOR}|{WORLD_F0_CEIL}"
    key = hashlib.sha256(x.tobytes() + settings.encode()).hexdigest()[:32]
    path = Path(cache) / f"world_{key}.npy"
    if path.is_file():
        return np.load(path)
    y = world_pitch_shift(x, fs, factor)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
    np.save(partial, y)
    partial.replace(path)  # whole or absent: a run killed mid-write leaves no half a copy under its name
    return y


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


def training_crop(wav: torch.Tensor, frames: int, hop: int, context: int, any_sample: bool,
                  training: bool = True) -> torch.Tensor:
    """The one crop of both trainers: a (N,) clip cut to whole frames (zero-padded to one crop
    when shorter), a frames * hop crop placed by crop_start, returned with ``context`` frames
    of audio on each side (crop_with_context): ((frames + 2 context) * hop,). The mel of the
    result, less ``context`` frames each side, is the crop's mel."""
    clip = crop_to_hop(wav, hop)
    if clip.shape[0] < frames * hop:
        clip = torch.nn.functional.pad(clip, (0, frames * hop - clip.shape[0]))
    start = crop_start(clip.shape[0], frames, hop, any_sample, training)
    return crop_with_context(clip, start, frames, hop, context)


class SegmentDataset(torch.utils.data.Dataset):
    """Random (segment_frames * hop)-sample crops with their mel frames (training_crop).

    A crop's mel is computed from the crop and n_fft / 2 samples of real audio on each side,
    so its edge frames equal the whole clip's. With any_sample=False crops start on the clip's
    frame grid; with any_sample=True at any sample. speed_factors: every clip is also kept
    resampled by each factor (speed_perturb); [1.0] keeps the clips as they are.
    pitch_factors: every clip is also kept with its F0 times each factor and its formants
    where they are (world_pitch_shift), once, when the dataset is built; () adds none.
    world_cache: a folder that keeps those copies between runs (cached_world_pitch_shift).
    """

    def __init__(
        self,
        clips: Sequence[Union[np.ndarray, str, Path]],
        extractor: LogMelExtractor,
        segment_frames: int,
        any_sample: bool = False,
        speed_factors: Sequence[float] = (1.0,),
        pitch_factors: Sequence[float] = (),
        world_cache: Optional[Path] = None,
    ) -> None:
        cfg = extractor.cfg
        # crops need their own CPU extractor: the caller's may move to a GPU with its model
        self.extractor = LogMelExtractor(cfg)
        self.segment_frames = segment_frames
        self.any_sample = any_sample
        self.hop = cfg.hop_length
        self.context = mel_context_frames(cfg.n_fft, cfg.hop_length)
        self.items: List[Tuple[torch.Tensor, torch.Tensor]] = []
        changes = [(speed_perturb, float(f)) for f in speed_factors]
        changes += [(lambda w, f: torch.from_numpy(cached_world_pitch_shift(w.numpy(), cfg.fs, f, world_cache)),
                     float(f))
                    for f in pitch_factors]
        for clip, (change, factor) in ((c, ch) for c in clips for ch in changes):
            wav = read_wav(clip, cfg.fs, cfg.hop_length) if isinstance(clip, (str, Path)) else clip
            wav = change(torch.as_tensor(np.asarray(wav, dtype=np.float32)), factor)
            short = segment_frames * self.hop - wav.shape[-1]
            if short > 0:
                wav = torch.nn.functional.pad(wav, (0, short))
            wav = crop_to_hop(wav, self.hop)
            with torch.no_grad():
                mel = extractor(wav.unsqueeze(0))[0]
            self.items.append((wav, mel))

    @classmethod
    def for_training(cls, clips, extractor: LogMelExtractor, train,
                     world_cache: Optional[Path] = None) -> "SegmentDataset":
        """The crops a config's train section asks for (segment_frames, any_sample_crops,
        speed_factors, pitch_factors), WORLD copies kept in world_cache."""
        return cls(clips, extractor, train.segment_frames, train.any_sample_crops, train.speed_factors,
                   train.pitch_factors, world_cache)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        frames, hop, ctx = self.segment_frames, self.hop, self.context
        piece = training_crop(self.items[index][0], frames, hop, ctx, self.any_sample)
        with torch.no_grad():
            crop_mel = self.extractor(piece[None])[0, ctx : ctx + frames]
        return piece[ctx * hop : (ctx + frames) * hop], crop_mel

    def mels(self) -> List[torch.Tensor]:
        """Each clip's whole mel (at each speed), e.g. for priors.level_statistics."""
        return [mel for _, mel in self.items]
