"""The frame-rate family: a ConvNeXt over STFT frames, working in the prior's whitened domain.

The network never sees samples. x_t goes through the filter's own STFT G and is divided
by the prior's response H (scaled so that white noise has unit variance per bin):

    Y = G x_t / (c H),  c^2 = sum(window^2)
      = sqrt(abar) S + sqrt(1 - abar) Xi,   S = G x0 / (c H),  Xi ~ G xi / c

so the noise is white and of unit variance in every bin at every level, whatever the
prior. The network predicts Xi as a time-frequency gain on Z = Y / sqrt(1 - abar) plus a
complex residual,

    Xi_hat = g * Z + R,   g = sigmoid(m + b_f - log_snr),

whose starting point (m = R = 0) is the Wiener estimate of Xi for speech of per-bin
variance exp(-b_f) in the whitened domain: the noise passes straight through where
there is no speech (silence, high noise levels). Then eps_hat = G+(c H Xi_hat), which is eps exactly
when Xi_hat = G xi / c, so the paper's L^-1 loss weights every bin alike.

Trunk: Vocos-style ConvNeXt blocks (depthwise conv over frames, pointwise MLP), with the
noise level entering every block's LayerNorm as a scale and shift (AdaLN). With
frame_low_band_hz > 0 a second, narrower trunk sees only the bins below it and adds its own
m and R there (docs/low_band.md). With
frame_excitation the low trunk's input also gets the STFT of a harmonic excitation at the F0
read off the mel (pitch.py), scaled to unit magnitude at each harmonic: a phase reference.
With frame_low_band_n_fft the low trunk works on an STFT of its own with a longer window
(long_window.py; docs/long_window.md).
With frame_time_head_channels a small WaveNet refines the low band's noise estimate as a
waveform at fs / 8 (time_head.py; docs/time_head.md).
Shapes: B batch, K mel frames, T = K + 1 STFT frames, F = n_fft // 2 + 1 bins, D channels.
"""

from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from specgrad_plugin import pitch, precision, shaping
from specgrad_plugin.config import FeatureConfig, FrameConfig
from specgrad_plugin.denoisers.base import Denoiser, tensor_bytes
from specgrad_plugin.denoisers.level import LevelEmbedding
from specgrad_plugin.denoisers.long_window import LongWindowLowBand
from specgrad_plugin.denoisers.time_head import HeadCondition, TimeDomainLowBandHead

# A fixed affine map of log10 mels (LJSpeech: about -5 .. 1) to about -1 .. 1.
MEL_OFFSET, MEL_SCALE = 2.0, 3.0


class FrameCondition(NamedTuple):
    """What FrameDenoiser.condition() computes once per utterance (or chunk) for forward().
    T = K + 1 STFT frames: the last mel frame repeated for the STFT's extra frame."""

    mel: torch.Tensor  # the normalised mel (B, M, T)
    response: torch.Tensor  # c H (B, F, T) complex: the prior's response times the window's scale
    excitation: Optional[torch.Tensor] = None  # frame_excitation: its STFT (B, F_low, T), 1 at a harmonic's peak
    long_response: Optional[torch.Tensor] = None  # frame_low_band_n_fft: c_l H_l at the longer STFT's low bins
    head: Optional[HeadCondition] = None  # frame_time_head_channels: the head's per-layer conditioning


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm over channels whose scale and shift come from the level: (B, T, D) -> (B, T, D).
    Zero-initialised, so it starts as a plain LayerNorm."""

    def __init__(self, dim: int, level_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Linear(level_dim, 2 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(level).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(x) * (1.0 + scale) + shift


class ConvNeXtBlock(nn.Module):
    """x + gamma * MLP(AdaLN(depthwise_conv(x))): (B, D, T) -> (B, D, T)."""

    def __init__(self, dim: int, mlp_dim: int, level_dim: int, kernel_size: int, layer_scale: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = AdaptiveLayerNorm(dim, level_dim)
        self.expand = nn.Linear(dim, mlp_dim)
        self.project = nn.Linear(mlp_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.depthwise(x).transpose(1, 2), level)
        y = self.project(F.gelu(self.expand(y))) * self.gamma
        return x + y.transpose(1, 2)


class ConvNeXtTrunk(nn.Module):
    """in_channels -> dim -> out_channels per frame, the level in every block's norm:
    (B, in_channels, T), level (B, L) -> (B, out_channels, T). The output starts at zero."""

    def __init__(self, in_channels: int, out_channels: int, dim: int, layers: int, kernel: int,
                 mlp_ratio: int, level_dim: int) -> None:
        super().__init__()
        self.input = nn.Conv1d(in_channels, dim, kernel, padding=kernel // 2)
        self.input_norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, mlp_ratio * dim, level_dim, kernel, 1.0 / layers) for _ in range(layers)
        )
        self.output_norm = AdaptiveLayerNorm(dim, level_dim)
        self.out = nn.Conv1d(dim, out_channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def reach(self) -> int:
        """Frames each way that one output frame sees: every convolution over frames adds k // 2."""
        return self.input.kernel_size[0] // 2 + sum(b.depthwise.kernel_size[0] // 2 for b in self.blocks)

    def forward(self, x: torch.Tensor, level: torch.Tensor, extra: Optional[torch.Tensor] = None) -> torch.Tensor:
        """extra: (B, dim, T) added to the input convolution's output (None: nothing)."""
        h = self.input(x)
        if extra is not None:
            h = h + extra
        h = self.input_norm(h.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            h = block(h, level)
        return self.out(self.output_norm(h.transpose(1, 2), level).transpose(1, 2))


# Checkpoints written before the main trunk was a module of its own hold its weights
# directly under the denoiser (denoiser.input.weight for denoiser.trunk.input.weight).
LEGACY_TRUNK_KEYS = ("input.", "input_norm.", "blocks.", "output_norm.", "out.")


def rename_legacy_trunk_keys(state: Dict[str, torch.Tensor], prefix: str) -> None:
    """In place: ``prefix + input.*`` -> ``prefix + trunk.input.*`` (and the trunk's other parts)."""
    for key in [k for k in state if k.startswith(prefix) and k[len(prefix):].startswith(LEGACY_TRUNK_KEYS)]:
        state[f"{prefix}trunk.{key[len(prefix):]}"] = state.pop(key)


def noise_estimate(logit: torch.Tensor, residual: torch.Tensor, whitened: torch.Tensor, gain_bias: torch.Tensor,
                   log_snr: torch.Tensor) -> torch.Tensor:
    """Xi_hat = g Z + R, g = sigmoid(m + b_f - log_snr), Z = Y / sqrt(1 - abar) (and
    1 / (1 - abar) = 1 + exp(log_snr)): logit m (B, F, T), residual R and whitened Y (B, F, T)
    complex, gain_bias b_f (F,), log_snr (B,) -> (B, F, T) complex."""
    snr_log = log_snr[:, None, None]
    gain = torch.sigmoid(logit + gain_bias[:, None] - snr_log)
    return gain * whitened * torch.sqrt(1.0 + torch.exp(snr_log)) + residual


def mel_basis(features: FeatureConfig) -> torch.Tensor:
    """The features' Slaney mel filterbank (M, F), as LogMelExtractor builds it."""
    from specgrad_plugin.features import LogMelExtractor

    return LogMelExtractor(features).mel_basis.detach().clone()


class FrameDenoiser(Denoiser):
    """eps_theta over STFT frames: x_t (B, N), condition(mel, H), log-SNR (B,) -> (B, N)."""

    def __init__(self, cfg: FrameConfig, features: FeatureConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = features.n_fft, features.hop_length
        bins = self.n_fft // 2 + 1
        self.register_buffer("window", shaping.hann_window(self.n_fft), persistent=False)
        self.level_embedding = LevelEmbedding(cfg.level_embed_dim, cfg.level_hidden_dim)
        # Per frame: the gain's logit m (F) and the residual R (real F, imaginary F).
        self.trunk = ConvNeXtTrunk(2 * bins + features.n_mels, 3 * bins, cfg.frame_channels, cfg.frame_layers,
                                   cfg.frame_kernel, cfg.frame_mlp_ratio, cfg.level_hidden_dim)
        # The low-band trunk sees and predicts only the bins below frame_low_band_hz (F0 and
        # the first harmonics); its output is added to the main trunk's for those bins.
        self.low_bins = shaping.bins_below(cfg.frame_low_band_hz, self.n_fft, features.fs)
        self.low_band = self.long_window = None
        trunk_bins = self.low_bins
        if cfg.frame_low_band_n_fft:
            # the low trunk sees its band through a longer window of its own (long_window.py)
            self.long_window = LongWindowLowBand(self.n_fft, cfg.frame_low_band_n_fft, self.hop, features.fs,
                                                 cfg.frame_low_band_hz, cfg.frame_low_band_long_mode == "predict")
            trunk_bins = self.long_window.low_bins
        seen_bins = trunk_bins + (self.low_bins if self.long_window is not None and not self.predicts_long else 0)
        predicted_bins = trunk_bins if self.predicts_long else self.low_bins
        if self.low_bins:
            self.low_band = ConvNeXtTrunk(2 * seen_bins + features.n_mels, 3 * predicted_bins,
                                          cfg.frame_low_band_channels, cfg.frame_low_band_layers or cfg.frame_layers,
                                          cfg.frame_kernel, cfg.frame_mlp_ratio, cfg.level_hidden_dim)
        self.excitation_input = None
        if cfg.frame_excitation:
            self.fs, self.low_band_hz = features.fs, cfg.frame_low_band_hz
            candidates, templates, used = pitch.comb_templates(mel_basis(features), features.fs, self.n_fft)
            for name, value in (("f0_candidates", candidates), ("f0_templates", templates), ("f0_bands", used)):
                self.register_buffer(name, value, persistent=False)
            # the excitation's real and imaginary low bins into the low trunk, zero at the start
            self.excitation_input = nn.Conv1d(2 * self.low_bins, cfg.frame_low_band_channels,
                                              cfg.frame_kernel, padding=cfg.frame_kernel // 2)
            nn.init.zeros_(self.excitation_input.weight)
            nn.init.zeros_(self.excitation_input.bias)
        self.time_head = None
        if cfg.frame_time_head_channels:
            self.time_head = TimeDomainLowBandHead(
                self.low_bins, features.n_mels, cfg.level_hidden_dim, cfg.frame_time_head_channels,
                cfg.frame_time_head_layers, cfg.frame_time_head_dilation_cycle, self.n_fft, self.hop,
                cfg.frame_time_head_decimation)
        # b_f: minus the log speech variance per bin in the whitened domain (0 = unit variance).
        self.gain_bias = nn.Parameter(torch.zeros(bins))
        self.demodulate = cfg.frame_phase_demodulation
        self._register_load_state_dict_pre_hook(
            lambda state, prefix, *args: rename_legacy_trunk_keys(state, prefix))

    def upgrade_state_dict(self, state: Dict[str, torch.Tensor], prefix: str = "") -> Dict[str, torch.Tensor]:
        rename_legacy_trunk_keys(state, prefix)
        return state

    @property
    def predicts_long(self) -> bool:
        """The low trunk predicts its band in the longer STFT (frame_low_band_long_mode: predict)."""
        return self.long_window is not None and self.long_window.predicts

    def silent_at_start(self) -> Tuple[str, ...]:
        # the low trunk's and the time head's output layers and the excitation's input layer are
        # zero-initialised; a low trunk predicting in the longer STFT replaces the main trunk's
        # estimate below the cutoff, so it changes the function from the start
        silent = (name for name in ("low_band", "excitation_input", "time_head") if getattr(self, name) is not None)
        return tuple(name for name in silent if not (name == "low_band" and self.predicts_long))

    def periodic_source(self, mel: torch.Tensor) -> Optional[torch.Tensor]:
        """The harmonic excitation (B, K * hop) at the mel's F0 (pitch.py), or None without
        frame_excitation."""
        if self.excitation_input is None:
            return None
        with torch.no_grad(), precision.float32_only(mel.device):
            f0, voicing = pitch.mel_f0(mel.float(), self.f0_candidates, self.f0_templates, self.f0_bands)
            return pitch.harmonic_excitation(f0, voicing, self.hop, self.fs, self.low_band_hz)

    def chunk_alignment(self) -> int:
        """Chunks must start on multiples of this many frames: the demodulating phase repeats
        every n_fft / gcd(hop, n_fft) frames, so aligned chunks see the utterance's own."""
        return self.n_fft // math.gcd(self.hop, self.n_fft) if self.demodulate else 1

    def trunk_reach(self) -> int:
        """Frames each way that the farther-reaching trunk (main or low band) sees."""
        return max(t.reach() for t in (self.trunk, self.low_band) if t is not None)

    def context_frames(self) -> int:
        """Each k-tap convolution reaches (k - 1) / 2 frames each way; the STFT and its
        inverse each add n_fft / 2 samples (rounded up to frames) on each side, and one
        more frame covers the chunk edge's zero padding; the time-domain head adds its own
        reach (TimeDomainLowBandHead.context_frames). With frame_low_band_n_fft the low trunk
        sees (and in predict mode, synthesises) through the longer window."""
        reach = self.trunk_reach()
        head = self.time_head.context_frames() if self.time_head is not None else 0
        seen_fft = self.long_window.long_n_fft if self.long_window is not None else self.n_fft
        out_fft = seen_fft if self.predicts_long else self.n_fft
        return reach + head + sum(-(-n // (2 * self.hop)) for n in (seen_fft, out_fft)) + 1

    def condition(
        self, mel: torch.Tensor, response: torch.Tensor, cache_bytes: int = 0, source: Optional[torch.Tensor] = None
    ) -> FrameCondition:
        """(B, K, M) mel, (B, K, F) response -> FrameCondition: what does not change between
        sampler steps (the longer STFT's interpolated response and the time head's
        conditioning included, the latter held over the hop when it fits in what is left of
        cache_bytes), each frame-rate entry with the last frame repeated for the STFT's extra
        frame (as shaping.apply_filter does)."""
        if source is None:
            source = self.periodic_source(mel)
        mel = shaping.with_last_frame(mel).transpose(1, 2)
        response = shaping.with_last_frame(response).transpose(1, 2)
        scale = float(self.window.pow(2).sum().sqrt())
        cond = FrameCondition((mel.float() + MEL_OFFSET) / MEL_SCALE, response * scale)
        if self.long_window is not None:
            cond = cond._replace(long_response=self.long_window.response(cond.response))
        with precision.float32_only(mel.device):
            if source is not None:
                spectrum = shaping.stft(source.float(), self.n_fft, self.hop, self.window)[:, : self.low_bins]
                cond = cond._replace(excitation=spectrum * (2.0 / float(self.window.sum())))
            if self.time_head is not None:
                left = cache_bytes - tensor_bytes(cond) if cache_bytes > 0 else 0  # training: no budget
                cond = cond._replace(head=self.time_head.condition(cond.mel, left))
        return cond

    def whiten(self, x: torch.Tensor, scaled_response: torch.Tensor) -> torch.Tensor:
        """Y = G x / (c H): (B, N), c H (B, F, T) -> (B, F, T) complex; white noise of unit
        variance per bin for x = L xi. Always float32 (the STFT pair stays out of mixed precision)."""
        with precision.float32_only(x.device):
            return shaping.stft(x.float(), self.n_fft, self.hop, self.window) / scaled_response

    def forward(self, x: torch.Tensor, cond: FrameCondition, log_snr: torch.Tensor) -> torch.Tensor:
        mel, scaled_response = cond.mel, cond.response
        whitened = self.whiten(x, scaled_response)
        level = self.level_embedding(log_snr)
        seen = whitened
        if self.demodulate:
            advance = shaping.bin_phase_advance(whitened.shape[1], whitened.shape[2], self.n_fft, self.hop)
            advance = advance.to(whitened.device)
            seen = whitened * advance.conj()
        h = self.trunk(torch.cat([seen.real, seen.imag, mel], dim=1), level)
        low_response = low_whitened = None
        if self.long_window is not None:
            low_response = cond.long_response
            low_whitened = self.long_window.whiten(x, low_response)
        if self.low_band is not None:
            low = seen[:, : self.low_bins]
            if self.long_window is not None:
                low = low_whitened if self.predicts_long else torch.cat([low, low_whitened], dim=1)
            extra = None
            if self.excitation_input is not None:
                source = cond.excitation * advance[: self.low_bins].conj() if self.demodulate else cond.excitation
                extra = self.excitation_input(torch.cat([source.real, source.imag], dim=1).to(low.real.dtype))
            low = self.low_band(torch.cat([low.real, low.imag, mel], dim=1), level, extra)
        with precision.float32_only(x.device):
            logit, real, imag = h.float().chunk(3, dim=1)
            if self.low_band is not None and not self.predicts_long:
                above = (0, 0, 0, h.shape[1] // 3 - self.low_bins)  # the low trunk adds nothing above
                extras = low.float().chunk(3, dim=1)
                logit, real, imag = (part + F.pad(extra, above)
                                     for part, extra in zip((logit, real, imag), extras, strict=True))
            residual = torch.complex(real, imag)
            if self.demodulate:
                residual = residual * advance
            noise = noise_estimate(logit, residual, whitened, self.gain_bias, log_snr.float())
            if self.time_head is not None:
                bins = self.low_bins
                correction = self.time_head(whitened[:, :bins], noise[:, :bins], cond.head, level.float())
                noise = torch.cat([noise[:, :bins] + correction, noise[:, bins:]], dim=1)
            if not self.predicts_long:
                return shaping.istft(noise * scaled_response, self.n_fft, self.hop, self.window, length=x.shape[-1])
            # the low trunk's own estimate in its own STFT, the same gain-plus-residual form
            low_logit, low_real, low_imag = low.float().chunk(3, dim=1)
            low_noise = noise_estimate(low_logit, torch.complex(low_real, low_imag), low_whitened,
                                       self.long_window.gain_bias, log_snr.float())
            main = shaping.istft(noise * scaled_response * self.long_window.main_weight[:, None], self.n_fft,
                                 self.hop, self.window, length=x.shape[-1])
            return main + self.long_window.synthesize(low_noise, low_response, x.shape[-1])
