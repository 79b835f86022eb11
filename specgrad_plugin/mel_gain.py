"""Bringing the sampler's output to the mel it was asked for: a gain per mel band on its STFT.

The sampler's waveform is speech whose own log-mel is off the input mel by a few dB, most
of all below 1 kHz. Each iteration measures the output's mel with the features' filterbank
and scales every STFT bin by the bands over it, keeping the phase:

    r(m, k) = clip(L(m, k) - log10 sum_f B(m, f) |Y(f, k)|, -c, c)     log10 ratio per band
    G(f, k) = 10 ** sum_m W(m, f) r(m, k),   W(m, f) = B(m, f) / sum_m' B(m', f)
    y'      = G+ (G(f, k) Y(f, k))

L the input's log10 mel (the features' convention, amplitude mel), B the (M, F) Slaney
filterbank, c = max_db / 20, Y = G y the output's STFT (shaping.stft) and G+ its inverse.
Bins under no band (below fmin, above fmax) keep a gain of 1. It is WaveFit's gain
adjustment (Koizumi et al., 2022: its estimate's power is set to the mel's at every
iteration) per mel band rather than for the whole spectrum, and after the sampler only.

The STFT pads the signal's ends with zeros (so that G+ inverts it exactly, in every path);
the features pad them by reflection. The two frames at each end are therefore measured a
little low and come out about 1 dB above their mel. The STFT's extra last frame takes the
last mel frame as its target (shaping.with_last_frame).

Shapes: B batch, K mel frames, M mel bands, F = n_fft // 2 + 1 bins, T = K + 1 STFT frames,
N = K * hop samples.
"""

from __future__ import annotations

import torch

from specgrad_plugin import shaping

MEL_FLOOR = 1e-10  # the amplitude mel's floor before the log (ESPnet's LogMel)


def band_shares(mel_basis: torch.Tensor) -> torch.Tensor:
    """W: (M, F) filterbank -> (M, F) each bin's share of the bands over it; every column
    sums to 1, or to 0 for a bin no band covers."""
    total = mel_basis.sum(dim=0, keepdim=True)
    return torch.where(total > 0, mel_basis / total.clamp_min(torch.finfo(mel_basis.dtype).tiny), 0.0)


def band_gain(magnitude: torch.Tensor, log_mel: torch.Tensor, mel_basis: torch.Tensor,
              max_db: float) -> torch.Tensor:
    """G: |Y| (B, F, T) and the target log10 mel per STFT frame (B, T, M) -> (B, F, T) gain."""
    measured = torch.log10(torch.einsum("mf,bft->bmt", mel_basis, magnitude).clamp_min(MEL_FLOOR))
    limit = max_db / 20.0
    ratio = (log_mel.transpose(1, 2) - measured).clamp(-limit, limit)
    return torch.pow(10.0, torch.einsum("mf,bmt->bft", band_shares(mel_basis), ratio))


def match_mel(wav: torch.Tensor, mel: torch.Tensor, mel_basis: torch.Tensor, n_fft: int, hop: int,
              window: torch.Tensor, iterations: int, max_db: float) -> torch.Tensor:
    """(B, N) waveform and its (B, K, M) input log10 mel -> (B, N): `iterations` gain steps."""
    target = shaping.with_last_frame(mel)
    for _ in range(iterations):
        spec = shaping.stft(wav, n_fft, hop, window)
        wav = shaping.istft(spec * band_gain(spec.abs(), target, mel_basis, max_db), n_fft, hop, window,
                            wav.shape[-1])
    return wav
