"""GPU vocoding that is not launch-bound: the whole sampler captured as one CUDA graph per
shape bucket, replayed for every batch that fits it.

    vocode = GraphedVocoder(vocoder, schedule="WG-6")          # vocoder on a CUDA device
    wavs = vocode([mel_a, mel_b], seed=0)                      # [(K_i * hop,) waveforms]

A diffusion sampler launches a few hundred small kernels per step; at batch 1 the GPU waits
on the CPU that launches them. A CUDA graph records the launches once and replays them as
one. Graphs need fixed shapes, so a batch is padded to the smallest bucket that holds it
(``frame_buckets`` x ``batch_buckets``) with batched.pad_batch: length masks and per-item
noise keep every item equal to its one-by-one vocoding. A batch larger than every bucket,
a model the masked sampler does not cover, a CPU device, or a capture that fails runs
eagerly (batched.vocode_batch), with the same result.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from specgrad_plugin import precision
from specgrad_plugin.batched import batchable, matched_levels, pad_batch, vocode_batch
from specgrad_plugin.checks import check_one_mel
from specgrad_plugin.export import RealSampler, Schedule

FRAME_BUCKETS = (128, 256, 512, 1024, 2048)  # 1.5 s ... 23.8 s at hop 256 and 22.05 kHz
BATCH_BUCKETS = (1, 2, 4, 8, 16)
log = logging.getLogger(__name__)

Inputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class CapturedCall:
    """fn(*inputs) recorded once on static input tensors; run() copies new inputs into them
    and replays. This is the CUDA graph; ``replay_eagerly`` stands in for it where there is
    no CUDA (it runs fn on the static tensors, so the copy-in logic is the one a graph uses)."""

    def __init__(self, fn: Callable[..., torch.Tensor], example: Inputs, replay_eagerly: bool = False) -> None:
        self.fn = fn
        self.static = tuple(x.clone() for x in example)
        self.graph = None
        if not replay_eagerly:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up outside the graph: allocator and kernel choices
                for _ in range(2):
                    fn(*self.static)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output = fn(*self.static)
        else:
            self.output = None

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        for static, x in zip(self.static, inputs, strict=True):
            static.copy_(x)
        if self.graph is None:
            return self.fn(*self.static).clone()
        self.graph.replay()
        return self.output.clone()  # the graph writes the next replay's output into the same memory


class GraphedVocoder:
    """[(K_i, M) log10 mels] -> [(K_i * hop,) waveforms], each equal (to float rounding) to
    vocoder(mel, schedule=schedule, seed=seed), through one captured graph per bucket.

    Args:
        vocoder: a SpecGradVocoder, on the device it will run on.
        schedule: the sampler's schedule (a name or betas); fixed per GraphedVocoder.
        frame_buckets: padded lengths, in frames; longer batches run eagerly.
        batch_buckets: padded batch sizes; larger batches run eagerly.
        replay_eagerly: run the bucket path without CUDA graphs (for tests on a CPU); otherwise
            a device that is not CUDA runs every batch eagerly.
    """

    def __init__(self, vocoder, schedule: Optional[Schedule] = None,
                 frame_buckets: Sequence[int] = FRAME_BUCKETS, batch_buckets: Sequence[int] = BATCH_BUCKETS,
                 replay_eagerly: bool = False) -> None:
        self.vocoder = vocoder
        self.schedule = schedule
        self.device = vocoder.train_betas.device
        self.frame_buckets = sorted(frame_buckets)
        self.batch_buckets = sorted(batch_buckets)
        self.replay_eagerly = replay_eagerly
        self.sampler = None  # families the masked sampler does not cover run eagerly
        if batchable(vocoder) and (self.device.type == "cuda" or replay_eagerly):
            self.sampler = RealSampler(vocoder, schedule, use_fft=True, clamp=False).to(self.device).eval()
        self.captured: Dict[Tuple[int, int], Optional[CapturedCall]] = {}  # None: capture failed

    def bucket(self, frames: int, batch: int) -> Optional[Tuple[int, int]]:
        """The smallest (batch, frames) bucket holding a batch, or None."""
        fits_b = [b for b in self.batch_buckets if b >= batch]
        fits_k = [k for k in self.frame_buckets if k >= frames]
        return (fits_b[0], fits_k[0]) if fits_b and fits_k else None

    @torch.inference_mode()  # as the capture's: static buffers made here stay writable on later calls
    def __call__(self, mels: Sequence[torch.Tensor], seed: Optional[int] = 0) -> List[torch.Tensor]:
        n_mels = self.vocoder.cfg.features.n_mels
        mels = [check_one_mel(m, n_mels, name=f"mel {i}").to(self.device).float() for i, m in enumerate(mels)]
        shape = self.bucket(max(m.shape[0] for m in mels), len(mels)) if mels else None
        call = self._captured(shape) if shape is not None and self.sampler is not None else None
        if call is None:
            return vocode_batch(self.vocoder, mels, self.schedule, seed)
        for mel in mels:
            self.vocoder.warn_on_mel_range(mel[None])
        self.vocoder.schedule_betas(self.schedule, warn=True)
        batch, frames = shape
        hop = self.vocoder.hop_length
        mels, gains = matched_levels(self.vocoder, mels)
        inputs = pad_batch(mels, frames, batch, self.sampler.steps, hop, seed)
        with precision.tf32(self.vocoder.cfg.inference.allow_tf32):
            wavs = call.run(*inputs)
        # wavs has the bucket's batch: its padding items come after the mels'
        return [(wav[: mel.shape[0] * hop] * gain).clamp(-1.0, 1.0)
                for wav, mel, gain in zip(wavs, mels, gains, strict=False)]

    def _captured(self, shape: Tuple[int, int]) -> Optional[CapturedCall]:
        if shape not in self.captured:
            batch, frames = shape
            hop, n_mels = self.vocoder.hop_length, self.vocoder.cfg.features.n_mels
            example = (torch.zeros(batch, frames, n_mels, device=self.device) - 5.0,
                       torch.zeros(self.sampler.steps, batch, frames * hop, device=self.device),
                       torch.full((batch,), frames, device=self.device, dtype=torch.long))
            try:
                with precision.tf32(self.vocoder.cfg.inference.allow_tf32):
                    self.captured[shape] = CapturedCall(self.sampler, example, self.replay_eagerly)
            except RuntimeError as e:  # e.g. an op that syncs with the host: stay correct, run eagerly
                log.warning("CUDA graph capture of a %d x %d-frame batch failed (%s); running it eagerly",
                            batch, frames, str(e).splitlines()[0] if str(e) else type(e).__name__)
                self.captured[shape] = None
        return self.captured[shape]
