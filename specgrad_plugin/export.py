"""The whole sampler (prior filter, frame denoiser, every step) as one module of real ops,
for ONNX export and for padded batches whose items must equal their one-by-one vocoding.

    sampler = RealSampler(vocoder, "WG-6")
    wav = sampler(mel, noise)           # (B, K, M), (S, B, K * hop) -> (B, K * hop)
    export_onnx(vocoder, "WG-6", "specgrad.onnx")   # LevelMatchedSampler: the vocoder's level matching around it

``noise`` holds the sampler's S white-noise draws xi ~ N(0, I) (S = the schedule's steps):
noise[0] starts x_T = L xi, noise[j] (j >= 1) is the fresh draw added after the j-th step. SpecGradVocoder draws
the same S tensors, in this order, from its generator (``draw_white_noise``), so equal noise
gives equal audio. With ``lengths`` each item of a padded batch sees only its own frames:
the STFT frames past its end are zeroed before every inverse STFT and every convolution
over frames, its samples past the end are zeroed after every step, and the inverse STFT
normalises by the windows of its own frames, so an item equals its one-by-one vocoding.

The weights are the vocoder's own modules (not copies). Only the frame family is supported
(the wavenet family is sample-rate and has no frame graph), and without frame_excitation or
the harmonic prior (their F0 search is a Viterbi loop over frames), the time-domain head, the
low band's longer STFT or the Griffin-Lim start (not written in real arithmetic); others
raise ExportError naming the key (unsupported_reason).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from specgrad_plugin import diffusion, mel_domain, mel_gain, shaping
from specgrad_plugin.checks import check_seed
from specgrad_plugin.denoisers.frame import MEL_OFFSET, MEL_SCALE, FrameDenoiser
from specgrad_plugin.realops import Pair, RealPrior, RealSTFT, complex_mul, complex_reciprocal, frame_mask

Schedule = Union[str, Sequence[float]]
ONNX_OPSET = 17  # LayerNormalization needs 17


class ExportError(ValueError):
    """A model or option the real-arithmetic sampler does not support."""


def unsupported_reason(vocoder) -> Optional[str]:
    """Why ``vocoder`` cannot run as a RealSampler, or None."""
    denoiser = vocoder.denoiser
    if not isinstance(denoiser, FrameDenoiser):
        return (f"denoiser.kind={vocoder.cfg.denoiser.kind!r}: only the frame family exports "
                "(expected denoiser.kind: frame)")
    features = vocoder.cfg.features
    if features.n_fft % features.hop_length:
        return (f"features.n_fft={features.n_fft} is not a multiple of hop_length={features.hop_length}: "
                "the real-arithmetic STFT cuts frames from whole hops")
    if getattr(denoiser, "excitation_input", None) is not None:
        return ("denoiser.frame_excitation=true: the F0 search (a Viterbi loop over frames) does not export; "
                "expected a model trained with frame_excitation: false")
    if getattr(denoiser, "time_head", None) is not None:
        return (f"denoiser.frame_time_head_channels={vocoder.cfg.denoiser.frame_time_head_channels}: the "
                "time-domain low-band head is not written in real arithmetic; expected 0")
    if getattr(denoiser, "long_window", None) is not None:
        return (f"denoiser.frame_low_band_n_fft={vocoder.cfg.denoiser.frame_low_band_n_fft}: the low band's "
                "longer STFT is not written in real arithmetic; expected 0")
    if vocoder.cfg.prior.harmonic_depth_db > 0:
        return (f"prior.harmonic_depth_db={vocoder.cfg.prior.harmonic_depth_db}: the harmonic prior's F0 search "
                "(a Viterbi loop over frames) does not export; expected a model trained with depth 0")
    if vocoder.cfg.inference.start_iterations:
        return (f"inference.start_iterations={vocoder.cfg.inference.start_iterations}: the Griffin-Lim start "
                "is not written in real arithmetic; expected 0 (the sampler starts from the prior's noise)")
    return None


def draw_white_noise(batch: int, samples: int, steps: int, seed: Optional[int], device="cpu") -> torch.Tensor:
    """(steps, batch, samples) xi ~ N(0, I), the draws SpecGradVocoder.forward makes with ``seed``
    for a batch of this size (None: the global RNG)."""
    seed = check_seed(seed)
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    return torch.stack([torch.randn(batch, samples, generator=generator, device=device) for _ in range(steps)])


class SamplerContext(NamedTuple):
    """RealSampler.prepare's result. response, scaled (c H), inverse (1 / (c H)): pairs (B, F, T);
    mel_in (B, M, T); target (B, T, M), the log10 mel of each STFT frame (each item's last
    mel frame repeated past it, shaping.with_last_frame);
    mask (B, 1, T) and keep (B, N): the frames and samples each item has (None: all);
    normaliser: the inverse STFT's; samples: N. A gain_only context (RealSampler.prepare) has
    None for response, scaled, inverse and mel_in."""

    response: Optional[Pair]
    scaled: Optional[Pair]
    inverse: Optional[Pair]
    mel_in: Optional[torch.Tensor]
    target: torch.Tensor
    mask: Optional[torch.Tensor]
    keep: Optional[torch.Tensor]
    normaliser: torch.Tensor
    samples: int


def _cut(signal: torch.Tensor, context: SamplerContext) -> torch.Tensor:
    """Zero the samples past each item's end."""
    return signal if context.keep is None else signal * context.keep


class RealSampler(nn.Module):
    """mel (B, K, M), noise (S, B, K * hop)[, lengths (B,) frames] -> waveform (B, K * hop) in
    [-1, 1] (not clamped with clamp=False): SpecGradVocoder.forward with the schedule fixed, in
    real arithmetic. The schedule and the gain steps after the sampler
    (inference.mel_gain_iterations) are read when it is built: a stream or an exported graph
    keeps them."""

    def __init__(self, vocoder, schedule: Optional[Schedule] = None, use_fft: bool = False,
                 clamp: bool = True) -> None:
        super().__init__()
        self.clamp = clamp  # False: the caller scales the output (a level's gain) and clamps after
        reason = unsupported_reason(vocoder)
        if reason:
            raise ExportError(reason)
        self.denoiser = vocoder.denoiser
        self.prior = RealPrior(vocoder.prior)
        self.stft = RealSTFT(vocoder.prior.n_fft, vocoder.prior.hop, vocoder.prior.window, use_fft)
        self.hop = vocoder.prior.hop
        self.mel_gain_iterations = vocoder.cfg.inference.mel_gain_iterations
        self.mel_gain_max_db = vocoder.cfg.inference.mel_gain_max_db
        self.register_buffer("mel_basis", vocoder.features.mel_basis.detach().float().clone(), persistent=False)
        self.response_scale = float(self.denoiser.window.pow(2).sum().sqrt())
        betas = vocoder.schedule_betas(schedule)
        self.betas = betas.tolist()
        self.alpha_bars = diffusion.alpha_bars(betas).tolist()
        levels = diffusion.log_snr(diffusion.alpha_bars(betas))
        self.levels = levels.tolist()
        # Z = Y / sqrt(1 - abar), 1 / (1 - abar) = 1 + exp(log_snr), in float32 as FrameDenoiser
        self.z_scales = torch.sqrt(1.0 + torch.exp(levels)).tolist()
        if self.denoiser.demodulate:
            bins = self.denoiser.n_fft // 2 + 1
            advance = shaping.bin_phase_advance(bins, self.denoiser.chunk_alignment(), self.denoiser.n_fft, self.hop)
            self.register_buffer("advance", torch.stack([advance.real, advance.imag]), persistent=False)

    @property
    def steps(self) -> int:
        return len(self.betas)

    def forward(self, mel: torch.Tensor, noise: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        context = self.prepare(mel, noise.shape[-1], lengths)
        x = self.start(context, noise[0])
        for t in range(self.steps - 1, -1, -1):
            x = self.step(context, x, t, noise[self.steps - t] if t > 0 else None)
        x = self.match_mel(context, x)
        return x.clamp(-1.0, 1.0) if self.clamp else x

    def prepare(self, mel: torch.Tensor, samples: int, lengths: Optional[torch.Tensor] = None,
                gain_only: bool = False) -> SamplerContext:
        """What every step reuses: the prior's response and the conditioning of (B, K, M) mels.
        gain_only: what gain_step reads alone (target, mask, keep, normaliser), the prior's
        response and the conditioning left None."""
        # the STFT's extra last frame reuses the last mel frame and response (shaping.apply_filter,
        # FrameDenoiser.condition): each item's own last frame
        if lengths is None:
            mel = shaping.with_last_frame(mel)
        else:
            frames = torch.arange(mel.shape[1] + 1, device=mel.device)
            last = torch.minimum(frames[None, :], lengths.to(mel.device)[:, None] - 1)
            mel = mel.gather(1, last.unsqueeze(-1).expand(-1, -1, mel.shape[-1]))
        present = frame_mask(lengths, mel.shape[1], mel.shape[0], mel.device)
        normaliser = self.stft.normaliser(present, samples)
        mask = keep = None
        if lengths is not None:
            mask = present
            t = torch.arange(samples, device=mel.device)
            keep = (t[None, :] < lengths.to(mel.device)[:, None] * self.hop).float()
        if gain_only:
            return SamplerContext(None, None, None, None, mel, mask, keep, normaliser, samples)
        response = tuple(r.transpose(1, 2) for r in self.prior(mel))
        mel_in = (mel.transpose(1, 2) + MEL_OFFSET) / MEL_SCALE
        if lengths is not None:
            # frames past an item's end: zero (where, not a product: the padding may give inf)
            response = tuple(torch.where(mask > 0, r, 0.0) for r in response)
            mel_in = torch.where(mask > 0, mel_in, 0.0)
        scaled = (response[0] * self.response_scale, response[1] * self.response_scale)
        inverse = complex_reciprocal(scaled)
        if mask is not None:
            inverse = tuple(torch.where(mask > 0, r, 0.0) for r in inverse)
        return SamplerContext(response, scaled, inverse, mel_in, mel, mask, keep, normaliser, samples)

    def start(self, context: SamplerContext, xi: torch.Tensor) -> torch.Tensor:
        """x_T = L xi: (B, N) white noise -> (B, N)."""
        return _cut(self.stft.inverse(self._shaped(context, xi), context.normaliser, context.samples), context)

    def step(self, context: SamplerContext, x: torch.Tensor, t: int, xi: Optional[torch.Tensor]) -> torch.Tensor:
        """x_t -> x_{t-1} (diffusion.sample's update, not clamped): (B, N); xi the fresh (B, N)
        white noise for t > 0, None at t = 0."""
        beta, one_minus = self.betas[t], 1.0 - self.alpha_bars[t]
        spec = self.denoise(x, context.mel_in, context.scaled, context.inverse, context.mask, self.levels[t])
        # x <- (x - beta / sqrt(1 - abar) eps) / sqrt(alpha) + sigma L z, with one G+ for both
        # spectra (G+ is linear and both have the same frames)
        gain = -(beta / one_minus**0.5) / (1.0 - beta) ** 0.5
        update = (spec[0] * gain, spec[1] * gain)
        if t > 0:
            sigma = (beta * (1.0 - self.alpha_bars[t - 1]) / one_minus) ** 0.5
            fresh = self._shaped(context, xi)
            update = (update[0] + sigma * fresh[0], update[1] + sigma * fresh[1])
        return _cut(x / (1.0 - beta) ** 0.5 + self.stft.inverse(update, context.normaliser, context.samples), context)

    def match_mel(self, context: SamplerContext, x: torch.Tensor) -> torch.Tensor:
        """SpecGradVocoder.match_mel (mel_gain.match_mel) on (B, N)."""
        for _ in range(self.mel_gain_iterations):
            x = self.gain_step(context, x)
        return x

    def gain_step(self, context: SamplerContext, x: torch.Tensor) -> torch.Tensor:
        """One step of mel_gain.match_mel on (B, N), on the frames each item has."""
        re, im = self.stft(x)
        gain = mel_gain.band_gain(torch.sqrt(re * re + im * im), context.target, self.mel_basis, self.mel_gain_max_db)
        if context.mask is not None:
            gain = gain * context.mask
        return _cut(self.stft.inverse((re * gain, im * gain), context.normaliser, context.samples), context)

    def _shaped(self, context: SamplerContext, xi: torch.Tensor) -> Pair:
        """H G xi, the spectrum of L xi before G+."""
        return complex_mul(self.stft(_cut(xi, context)), context.response)

    def denoise(self, x: torch.Tensor, mel_in: torch.Tensor, scaled: Pair, inverse: Pair,
                mask: Optional[torch.Tensor], level_value: float) -> Pair:
        """FrameDenoiser.forward up to its inverse STFT: x_t (B, N) at one log-SNR -> the
        spectrum (B, F, T) whose G+ is eps_hat, zero on the frames an item lacks."""
        d = self.denoiser
        whitened = complex_mul(self.stft(x), inverse)
        log_snr = torch.full((1,), level_value, device=x.device)
        level = d.level_embedding(log_snr)
        seen = whitened
        if d.demodulate:
            advance = self.phase_advance(whitened[0].shape[-1])
            seen = complex_mul(whitened, (advance[0], -advance[1]))
        h = masked_trunk(d.trunk, torch.cat([seen[0], seen[1], mel_in], dim=1), level, mask)
        logit, real, imag = h.chunk(3, dim=1)
        if d.low_band is not None:
            bins = d.low_bins
            low = masked_trunk(d.low_band, torch.cat([seen[0][:, :bins], seen[1][:, :bins], mel_in], dim=1),
                               level, mask)
            above = (0, 0, 0, logit.shape[1] - bins)
            logit, real, imag = (part + F.pad(extra, above)
                                 for part, extra in zip((logit, real, imag), low.chunk(3, dim=1), strict=True))
        gain = torch.sigmoid(logit + d.gain_bias[:, None] - level_value)
        z_scale = self.z_scales[self.levels.index(level_value)]
        residual = (real, imag)
        if d.demodulate:
            residual = complex_mul(residual, advance)
        noise = (gain * whitened[0] * z_scale + residual[0], gain * whitened[1] * z_scale + residual[1])
        return complex_mul(noise, scaled)  # scaled is zero on the frames an item lacks

    def phase_advance(self, frames: int) -> Pair:
        """shaping.bin_phase_advance (F, T) as a pair, from its period."""
        period = self.advance.shape[-1]
        index = torch.arange(frames, device=self.advance.device) % period
        table = self.advance.index_select(2, index)
        return table[0], table[1]


class LevelMatchedSampler(nn.Module):
    """mel (B, K, M), noise (S, B, K * hop) -> waveform (B, K * hop): RealSampler inside the
    vocoder's level matching (SpecGradVocoder.match_level, mel_domain.match_level), so that a
    graph vocodes a mel far from the training level as vocoder(mel) does. What export_onnx and
    export_torchscript write; without the vocoder's mel statistics or with
    inference.level_match_db = 0 it is RealSampler."""

    def __init__(self, vocoder, schedule: Optional[Schedule] = None) -> None:
        super().__init__()
        self.sampler = RealSampler(vocoder, schedule, clamp=False)
        self.level_match_db = float(vocoder.cfg.inference.level_match_db) if vocoder.matches_levels else 0.0
        self.register_buffer("mel_stats", vocoder.mel_stats.detach().float().clone(), persistent=False)

    def forward(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.level_match_db <= 0:
            return self.sampler(mel, noise).clamp(-1.0, 1.0)
        mel, gain = mel_domain.match_level(mel, self.mel_stats[0], self.mel_stats[1], self.level_match_db)
        return (self.sampler(mel, noise) * gain[:, None]).clamp(-1.0, 1.0)  # the gain, then one clamp


def masked_trunk(module: nn.Module, x: torch.Tensor, level: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """ConvNeXtTrunk.forward with the frames an item lacks held at zero before every convolution over
    frames (as the zero padding of its one-by-one run sees them): (B, C, T), mask (B, 1, T) or
    None (every frame present) -> (B, C_out, T)."""
    def cut(h: torch.Tensor) -> torch.Tensor:
        return h if mask is None else h * mask

    h = module.input(cut(x))
    h = cut(module.input_norm(h.transpose(1, 2)).transpose(1, 2))
    for block in module.blocks:
        h = cut(block(h, level))
    return module.out(module.output_norm(h.transpose(1, 2), level).transpose(1, 2))


def graph_metadata(vocoder, graph: LevelMatchedSampler, schedule: Optional[Schedule]) -> dict:
    """What a runtime without this package needs to feed the graph: strings, as ONNX stores them."""
    name = vocoder.chosen_schedule(schedule)
    sampler = graph.sampler
    return {
        "fs": str(vocoder.fs), "hop_length": str(sampler.hop), "n_mels": str(vocoder.cfg.features.n_mels),
        "steps": str(sampler.steps), "schedule": name if isinstance(name, str) else ",".join(map(str, name)),
        "mel_gain_iterations": str(sampler.mel_gain_iterations),
        "level_match_db": str(graph.level_match_db),
        "inputs": "mel (batch, frames, n_mels) denormalised log10 mel; noise (steps, batch, frames * hop_length) "
                  "float32 N(0, 1) draws",
        "output": "wav (batch, frames * hop_length) in [-1, 1] at fs",
    }


def _examples(vocoder, graph: LevelMatchedSampler, frames: int):
    mel = torch.full((1, frames, vocoder.cfg.features.n_mels), -2.0)
    return mel, torch.zeros(graph.sampler.steps, 1, frames * graph.sampler.hop)


def export_onnx(vocoder, schedule: Optional[Schedule], path: Union[str, Path], example_frames: int = 64,
                opset: int = ONNX_OPSET) -> Path:
    """Write the sampler, inside the vocoder's level matching (LevelMatchedSampler), as an ONNX
    graph with inputs mel (batch, frames, n_mels) and noise
    (steps, batch, frames * hop) and output wav (batch, frames * hop); batch and frames are
    dynamic; graph_metadata() in the model's metadata. Needs the onnx package."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'specgrad_plugin[onnx]'") from None
    graph = LevelMatchedSampler(vocoder, schedule).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            graph, _examples(vocoder, graph, example_frames), str(path), input_names=["mel", "noise"],
            output_names=["wav"], opset_version=opset, dynamo=False,
            dynamic_axes={"mel": {0: "batch", 1: "frames"}, "noise": {1: "batch", 2: "samples"},
                          "wav": {0: "batch", 1: "samples"}},
        )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, graph_metadata(vocoder, graph, schedule))
    onnx.save(model, str(path))
    return path


def export_torchscript(vocoder, schedule: Optional[Schedule], path: Union[str, Path],
                       example_frames: int = 64) -> Path:
    """Write the sampler with its level matching (LevelMatchedSampler) traced to TorchScript:
    forward(mel, noise) -> wav as in export_onnx."""
    graph = LevelMatchedSampler(vocoder, schedule).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(graph, _examples(vocoder, graph, example_frames), check_trace=False)
    extra = {"metadata.json": json.dumps(graph_metadata(vocoder, graph, schedule))}
    torch.jit.save(traced, str(path), _extra_files=extra)
    return path
