"""Streaming synthesis: mel frames in as they arrive, audio out with a fixed look-ahead,
equal to offline vocoding with the same noise (but where the level read on part of the mel
and on the whole differ in whether they call for a shift: see Loudness below).

    stream = StreamingVocoder(vocoder, schedule="WG-6", seed=0)
    for frames in tts_output:               # (k, M) log10 mel frames, any k >= 0
        play(stream.push(frames))           # the samples that are final now (maybe none)
    play(stream.finish())                   # the rest

Why the look-ahead is what it is: one sampler step changes an output sample through the
inverse STFT (frames up to 2 hops ahead at 75 % overlap), the farther-reaching ConvNeXt trunk (R frames)
and the STFT of the step's input (1 more hop), so each step needs ``step_margin`` = R + 3
frames of the previous step's output beyond a block, and the first, L xi, 3 frames of mel.
Each of the G gain steps after the sampler (inference.mel_gain_iterations) is an STFT pair
alone: 3 frames. The steps chain, so block k of the output is final once frames up to
k + 3 + S (R + 3) + 3 G have arrived: ``lookahead_frames`` (195 frames, 2.3 s, for the
shipped model, ljspeech-v5, at WG-6; 105 at WG-3). Each step is computed on windows of its input with its
margin of context on both sides; a window reaching the utterance's start or end sees the
same borders as the offline sampler, so the stream equals it.

Loudness: a mel far from the training level is moved toward it, as ``vocoder(mel)`` moves
it (SpecGradVocoder.level_shift), and the output scaled back. Offline reads the whole
utterance; a stream cannot, so it reads causally: the blocks of LOUDNESS_BLOCK frames that
start within the first ``lookahead_frames + 1`` frames (which the first output waits for
anyway) get the shift read on those frames, each later block the one read on the
LOUDNESS_WINDOW frames before it. A quiet opening therefore sets the shift of the first
blocks of speech after it, not of the whole rest; the sampler's output follows its shifted
mel and the gain (before the one clamp, as offline) takes the shift back out, so for a
trained model those blocks come out near offline's level. The stream equals
offline when every one of these readings and the whole utterance's are within
inference.level_match_db (no shift anywhere), and for an utterance no longer than
``lookahead_frames + 1`` frames (read whole).

Noise: a stream does not know its length, and SpecGradVocoder's draws for a seed depend on
it, so a stream draws from ``BlockNoise`` (counter-based, per draw and hop-block: the same
values whatever the chunking) unless given the whole noise array. With that array,
``draw_white_noise(1, K * hop, steps, seed)[:, 0]``, it equals ``vocoder(mel, seed=seed)``.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from specgrad_plugin.checks import SpecGradInputError, check_one_mel, check_seed, check_whole_number
from specgrad_plugin.export import RealSampler, Schedule
from specgrad_plugin.seeds import MAX_SEED

NoiseSource = Callable[[int, int, int], torch.Tensor]
LOUDNESS_BLOCK = 32  # frames that share one loudness shift (372 ms at 22.05 kHz, hop 256)
LOUDNESS_WINDOW = 1024  # a block's loudness is read on at most this many frames before it (12 s)


class BlockNoise:
    """N(0, 1) noise addressed by (draw, hop-block): block b of draw j comes from a Philox
    generator keyed by the seed at counter (b, j) (counter-based: no two blocks share a
    stream), so any stretch can be drawn on its own."""

    def __init__(self, seed: int, hop: int) -> None:
        self.seed, self.hop = int(seed), hop

    def __call__(self, draw: int, first: int, last: int) -> torch.Tensor:
        """Blocks [first, last) of draw ``draw``: ((last - first) * hop,) float32."""
        blocks = [
            np.random.Generator(np.random.Philox(key=self.seed, counter=[block, draw, 0, 0]))
            .standard_normal(self.hop, dtype=np.float32)
            for block in range(first, last)
        ]
        return torch.from_numpy(np.concatenate(blocks)) if blocks else torch.zeros(0)

    def full(self, steps: int, frames: int) -> torch.Tensor:
        """(steps, 1, frames * hop): the whole noise array a stream of ``frames`` frames uses."""
        return torch.stack([self(draw, 0, frames) for draw in range(steps)])[:, None]


class _Level:
    """The samples of one sampler level finalised so far, kept from block ``origin`` on."""

    def __init__(self) -> None:
        self.x, self.origin, self.done = torch.zeros(0), 0, 0

    def blocks(self, first: int, last: int, hop: int) -> torch.Tensor:
        return self.x[(first - self.origin) * hop : (last - self.origin) * hop]

    def append(self, samples: torch.Tensor, last: int) -> None:
        self.x, self.done = torch.cat([self.x, samples]), last

    def drop_before(self, block: int, hop: int) -> None:
        if block > self.origin:
            self.x, self.origin = self.x[(block - self.origin) * hop :], block


class StreamingVocoder:
    """push() (k, M) mel frames -> the newly final samples; finish() -> the rest. The output,
    concatenated, equals offline vocoding with the same noise (module docstring)."""

    def __init__(self, vocoder, schedule: Optional[Schedule] = None, seed: Optional[int] = 0,
                 noise: Optional[Union[torch.Tensor, np.ndarray, NoiseSource]] = None) -> None:
        """seed: keys the noise (None: a key drawn from torch's global RNG); noise: instead of
        the seed's, a (steps, 1, K * hop) array of the sampler's draws or a NoiseSource."""
        vocoder.schedule_betas(schedule, warn=True)  # a start noisier than training: said as offline says it
        self.sampler = RealSampler(vocoder, schedule, use_fft=True).eval()
        self.n_mels, self.hop, self.fs = vocoder.cfg.features.n_mels, vocoder.hop_length, vocoder.fs
        denoiser = vocoder.denoiser
        self.stft_margin = vocoder.cfg.features.n_fft // self.hop - 1
        self.step_margin = denoiser.trunk_reach() + self.stft_margin
        self.align = denoiser.chunk_alignment()
        seed = check_seed(seed)
        if noise is None:
            noise = BlockNoise(int(torch.randint(MAX_SEED, ())) if seed is None else seed, self.hop)
        elif isinstance(noise, (torch.Tensor, np.ndarray)):
            noise = self._array_source(torch.as_tensor(noise))
        elif not callable(noise):
            raise SpecGradInputError(f"noise: a {type(noise).__name__}, expected a (steps, 1, frames * hop) array "
                                     "or a NoiseSource callable")
        self.noise: NoiseSource = noise
        self.mel = torch.zeros(0, self.n_mels)
        self.mel_origin = 0
        self.frames = 0
        # L xi, then one level per sampler step, then one per gain step (inference.mel_gain_iterations)
        self.levels = [_Level() for _ in range(self.sampler.steps + 1 + self.sampler.mel_gain_iterations)]
        self.finished = False
        # loudness matching (vocoder.level_shift), one shift per LOUDNESS_BLOCK frames, each read
        # on the frames before its block and at least the first loudness_frames (module docstring)
        self.level_shift = vocoder.level_shift
        self.loudness_frames = self.lookahead_frames + 1 if vocoder.matches_levels else 0
        self.block_shifts: List[float] = []  # log10 shift of blocks shift_origin, shift_origin + 1, ...
        self.shift_origin = 0

    @property
    def lookahead_frames(self) -> int:
        """Mel frames beyond a block that must have arrived before its audio comes out."""
        return sum(self.margin(index) for index in range(len(self.levels)))

    def margin(self, index: int) -> int:
        """Frames of context level ``index`` needs on each side: a sampler step's trunk and STFT
        pair, or the STFT pair alone (L xi, a gain step)."""
        return self.step_margin if 0 < index <= self.sampler.steps else self.stft_margin

    @property
    def lookahead_ms(self) -> float:
        return 1000.0 * self.lookahead_frames * self.hop / self.fs

    def _array_source(self, noise: torch.Tensor) -> NoiseSource:
        steps = self.sampler.steps
        if noise.dim() not in (2, 3) or noise.shape[0] != steps or (noise.dim() == 3 and noise.shape[1] != 1):
            raise SpecGradInputError(f"noise: shape {tuple(noise.shape)}, expected ({steps}, 1, frames * hop) or "
                                     f"({steps}, frames * hop): "
                                     f"one draw per step of this stream's {steps}-step schedule")
        if not noise.is_floating_point() or not bool(torch.isfinite(noise).all()):
            raise SpecGradInputError(f"noise: expected finite floating-point draws (dtype {noise.dtype})")
        noise = noise.reshape(steps, -1).float()

        def source(draw: int, first: int, last: int) -> torch.Tensor:
            if last * self.hop > noise.shape[-1]:
                raise ValueError(f"noise: {noise.shape[-1]} samples per draw, but the stream reached "
                                 f"{last * self.hop}; expected (steps, frames * hop) for the whole utterance")
            return noise[draw, first * self.hop : last * self.hop]

        return source

    @torch.no_grad()
    def push(self, mel: torch.Tensor) -> torch.Tensor:
        """(k, M) log10 mel frames (k may be 0) -> (n * hop,) samples, n >= 0 blocks."""
        if self.finished:
            raise RuntimeError("push() after finish(): start a new StreamingVocoder for the next utterance")
        # an empty push is (0, M) frames (or a bare empty tensor); anything else is checked as a mel
        if not isinstance(mel, torch.Tensor) or tuple(mel.shape) not in ((0,), (0, self.n_mels)):
            mel = check_one_mel(mel, self.n_mels, name="streamed mel").float().cpu()
            self.mel = torch.cat([self.mel, mel])
            self.frames += mel.shape[0]
        return self._advance(final=False)

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """The samples still held back: (n * hop,)."""
        if self.finished:
            return torch.zeros(0)
        self.finished = True
        if self.frames == 0:
            return torch.zeros(0)
        return self._advance(final=True)

    def _advance(self, final: bool) -> torch.Tensor:
        out = torch.zeros(0)
        if not final and self.frames < self.loudness_frames:
            return out  # the first blocks' loudness is read on frames the first output waits for anyway
        target = self.frames if final else self.frames - self.stft_margin
        for index, level in enumerate(self.levels):
            if index > 0 and not final:
                target = self.levels[index - 1].done - self.margin(index)
            if target > level.done:
                samples = self._compute(index, level.done, target)
                if index == len(self.levels) - 1:  # the loudness gain, then one clamp, as offline
                    gain = torch.pow(10.0, -self._shifts(level.done, target)).repeat_interleave(self.hop)
                    out = (samples * gain).clamp(-1.0, 1.0)
                level.append(samples, target)
        self._forget()
        return out

    def _compute(self, index: int, first: int, last: int) -> torch.Tensor:
        """Blocks [first, last) of level ``index`` (0: L xi; i: after the i-th step, then the gain steps)."""
        margin = self.margin(index)
        lo = max(0, first - margin) // self.align * self.align
        hi = min(self.frames if index == 0 else self.levels[index - 1].done, last + margin)
        hop = self.hop
        mel = (self.mel[lo - self.mel_origin : hi - self.mel_origin] + self._shifts(lo, hi)[:, None])[None]
        context = self.sampler.prepare(mel, (hi - lo) * hop, gain_only=index > self.sampler.steps)
        if index == 0:
            x = self.sampler.start(context, self.noise(0, lo, hi)[None])
        elif index > self.sampler.steps:
            x = self.sampler.gain_step(context, self.levels[index - 1].blocks(lo, hi, hop)[None])
        else:
            t = self.sampler.steps - index
            xi = self.noise(index, lo, hi)[None] if t > 0 else None
            x = self.sampler.step(context, self.levels[index - 1].blocks(lo, hi, hop)[None], t, xi)
        return x[0, (first - lo) * hop : (last - lo) * hop]

    def _read_span(self, block: int) -> Tuple[int, int]:
        """The frames [start, end) block b's loudness is read on: [0, loudness_frames) for the
        blocks that start before it, then [max(0, b B - W), b B) (B = LOUDNESS_BLOCK,
        W = LOUDNESS_WINDOW): only frames that have arrived, at most max(W, loudness_frames)."""
        first = block * LOUDNESS_BLOCK
        if first < self.loudness_frames:
            return 0, self.loudness_frames
        return max(0, first - LOUDNESS_WINDOW), first

    def _shifts(self, first: int, last: int) -> torch.Tensor:
        """The log10 loudness shift of frames [first, last) (last <= the frames arrived):
        (last - first,), each block's vocoder.level_shift on its _read_span (fewer frames at the
        end of a shorter utterance), whatever the push sizes; zero without level matching."""
        if not self.loudness_frames or last <= first:
            return torch.zeros(max(0, last - first))
        if last > self.frames:
            raise ValueError(f"loudness of frames up to {last} asked for, {self.frames} have arrived")
        for block in range(self.shift_origin + len(self.block_shifts), (last - 1) // LOUDNESS_BLOCK + 1):
            start, end = self._read_span(block)  # _forget keeps these frames of self.mel
            window = self.mel[start - self.mel_origin : end - self.mel_origin]
            self.block_shifts.append(float(self.level_shift(window[None])[0]))
        blocks = torch.arange(first, last) // LOUDNESS_BLOCK - self.shift_origin
        return torch.tensor(self.block_shifts)[blocks]

    def _forget(self) -> None:
        """Drop samples and mel frames no later window or loudness reading reaches."""
        keep_from = []
        for index in range(1, len(self.levels)):
            start = max(0, self.levels[index].done - self.margin(index)) // self.align * self.align
            self.levels[index - 1].drop_before(start, self.hop)
            keep_from.append(start)
        self.levels[-1].drop_before(self.levels[-1].done, self.hop)
        first_mel = min([max(0, self.levels[0].done - self.stft_margin) // self.align * self.align] + keep_from)
        if self.loudness_frames:  # the first frame the next block's loudness reading needs
            first_mel = min(first_mel, self._read_span(self.shift_origin + len(self.block_shifts))[0])
        if first_mel > self.mel_origin:
            self.mel, self.mel_origin = self.mel[first_mel - self.mel_origin :], first_mel
        first_block = self.mel_origin // LOUDNESS_BLOCK  # no later window or output reaches before it
        if first_block > self.shift_origin:
            drop = min(first_block - self.shift_origin, len(self.block_shifts))
            self.block_shifts, self.shift_origin = self.block_shifts[drop:], self.shift_origin + drop


def check_chunk_frames(chunk_frames) -> int:
    expected = "a whole number of frames per push, at least 1"
    frames = check_whole_number(chunk_frames, "chunk_frames", expected)
    if frames < 1:
        raise SpecGradInputError(f"chunk_frames: {chunk_frames!r}, expected {expected}")
    return frames


def stream_utterance(stream: StreamingVocoder, mel: torch.Tensor, chunk_frames: int) -> List[torch.Tensor]:
    """Push a whole (K, M) mel in chunks of ``chunk_frames``; the pieces of audio, finish() last."""
    chunk_frames = check_chunk_frames(chunk_frames)
    pieces = [stream.push(mel[start : start + chunk_frames]) for start in range(0, mel.shape[0], chunk_frames)]
    return pieces + [stream.finish()]


def timed_stream(stream: StreamingVocoder, mel: torch.Tensor, chunk_frames: int) -> Dict[str, object]:
    """stream_utterance with its clock: wav (K * hop,); first_audio_s, the compute time until the
    first samples came out (frames pushed as fast as they are taken); chunk_rtf, per push or
    finish that gave audio, its compute seconds per second of that audio."""
    chunk_frames = check_chunk_frames(chunk_frames)
    pieces, chunk_rtf, first_audio, spent = [], [], None, 0.0
    starts = list(range(0, mel.shape[0], chunk_frames))
    for start in starts + [None]:
        tic = time.perf_counter()
        piece = stream.finish() if start is None else stream.push(mel[start : start + chunk_frames])
        took = time.perf_counter() - tic
        spent += took
        if piece.numel():
            first_audio = spent if first_audio is None else first_audio
            chunk_rtf.append(took / (piece.numel() / stream.fs))
        pieces.append(piece)
    return {"wav": torch.cat(pieces), "first_audio_s": first_audio, "chunk_rtf": chunk_rtf}
