"""F0 from a log-mel spectrogram, and the harmonic excitation it implies, as pure functions.

A TTS model hands the vocoder only a mel, so the pitch must come from the mel itself. Below
about 2.5 kHz the 80 Slaney mel bands are narrow enough (~35 Hz apart under 1 kHz) to resolve
the harmonics of a voice, and their pattern over the bands is the same for every speaker
once the spectral envelope is taken out. The estimate is a matched filter:

    t_c = D log10(B |W * comb_c|),     x_k = D c_k,       r_{k,c} = <x_k, t_c> / (|x_k| |t_c|)

with B the mel filterbank (M, F), comb_c a harmonic comb at candidate F0 c seen through the
analysis window W, c_k the frame's log10 mel and D a detrending over bands (minus a moving
average, then the mean) that removes the envelope. A comb at c / 2 or 2 c matches the
bands between the harmonics with the wrong sign, which penalises octave errors. A Viterbi
path over frames with a cost on |log2 c_k - log2 c_{k-1}| picks the track; r along it,
averaged over a few frames, is the voicing score. No parameters are learnt: it is the same
for voices the vocoder never heard.

The excitation is a sum of sines at the harmonics of that track below a cutoff, its phase
the running integral of F0 (PeriodGrad's and NSF's periodic source), faded by the voicing.

Shapes: B batch, K frames, M mel bands, F = n_fft // 2 + 1 bins, C candidates, N = K * hop.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

F0_MIN, F0_MAX = 50.0, 600.0  # Hz: the candidates' range, bass to child voices
CANDIDATES_PER_OCTAVE = 36
TEMPLATE_MAX_HZ = 2500.0  # bands above this are too wide to resolve harmonics: left out
DETREND_BANDS = 5  # the moving average over bands taken as the envelope
JUMP_COST = 2.0  # Viterbi: correlation given up per octave of jump between frames
VOICING_FRAMES = 5  # the voicing score is the path's correlation averaged over this many frames
VOICING_LOW, VOICING_HIGH = 0.45, 0.7  # ... mapped linearly to 0..1 between these
COMB_TAPER_HZ = 200.0  # the harmonic prior's comb fades out over this band above its cutoff


def detrend_bands(logmel: torch.Tensor, width: int = DETREND_BANDS) -> torch.Tensor:
    """x - moving_average(x) over the last axis (bands), replicate-padded: (..., M) -> (..., M)."""
    shape = logmel.shape
    flat = logmel.reshape(-1, 1, shape[-1])
    kernel = torch.full((1, 1, width), 1.0 / width, dtype=logmel.dtype, device=logmel.device)
    smooth = F.conv1d(F.pad(flat, (width // 2, width // 2), mode="replicate"), kernel)
    return logmel - smooth.reshape(shape)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(dim=-1, keepdim=True)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def hann_magnitude(offset_bins: torch.Tensor) -> torch.Tensor:
    """|W(f)| / W(0) of a periodic Hann window at ``offset_bins`` from a sinusoid's frequency:
    |sinc(x) / (1 - x^2)|, with its limit 1/2 at x = +-1."""
    x = offset_bins
    near = (x.abs() - 1.0).abs() < 1e-6
    safe = torch.where(near, torch.zeros_like(x), 1.0 - x * x)
    return torch.where(near, torch.full_like(x, 0.5), (torch.sinc(x) / safe).abs())


def band_centres_hz(mel_basis: torch.Tensor, fs: int, n_fft: int) -> torch.Tensor:
    """Each mel band's centre frequency, its filter's centroid: (M, F) -> (M,) Hz, float64."""
    basis = mel_basis.double()
    freqs = torch.arange(basis.shape[1], dtype=torch.float64, device=basis.device) * fs / n_fft
    return (basis * freqs).sum(1) / basis.sum(1).clamp_min(1e-12)


def comb_templates(mel_basis: torch.Tensor, fs: int, n_fft: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The matched filters t_c: mel_basis (M, F) -> candidates (C,) Hz, unit templates
    (C, M_used) over the bands used, and their mask (M,) (bands centred below TEMPLATE_MAX_HZ)."""
    basis = mel_basis.double()
    bins = basis.shape[1]
    freqs = torch.arange(bins, dtype=torch.float64) * fs / n_fft
    count = int(math.floor(math.log2(F0_MAX / F0_MIN) * CANDIDATES_PER_OCTAVE)) + 1
    candidates = F0_MIN * 2.0 ** (torch.arange(count, dtype=torch.float64) / CANDIDATES_PER_OCTAVE)
    combs = torch.zeros(count, bins, dtype=torch.float64)
    for i, f0 in enumerate(candidates.tolist()):
        harmonics = torch.arange(1, int(TEMPLATE_MAX_HZ * 1.2 // f0) + 1, dtype=torch.float64) * f0
        combs[i] = hann_magnitude((freqs[None, :] - harmonics[:, None]) * n_fft / fs).sum(0)
    mel = combs @ basis.T
    log_mel = torch.log10(mel + 1e-3 * mel.amax(dim=-1, keepdim=True))
    used = band_centres_hz(basis, fs, n_fft) < TEMPLATE_MAX_HZ
    return candidates.float(), _unit_rows(detrend_bands(log_mel)[:, used]).float(), used


def harmonic_correlation(logmel: torch.Tensor, templates: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """r_{k,c}: (B, K, M) log10 mel, (C, M_used) templates -> (B, K, C), each in -1..1."""
    x = _unit_rows(detrend_bands(logmel.float())[..., used])
    return x @ templates.T


def viterbi_track(score: torch.Tensor, candidates: torch.Tensor, jump_cost: float = JUMP_COST) -> torch.Tensor:
    """The path through (B, K, C) scores maximising sum_k score - jump_cost |log2 c_k / c_{k-1}|:
    (B, K) indices into candidates."""
    octaves = torch.log2(candidates.to(score))
    transition = -jump_cost * (octaves[:, None] - octaves[None, :]).abs()  # (from, to)
    total, back = score[:, 0], []
    for k in range(1, score.shape[1]):
        best, index = (total[:, :, None] + transition).max(dim=1)
        total = best + score[:, k]
        back.append(index)
    path = [total.argmax(dim=-1)]
    for index in reversed(back):
        path.append(index.gather(1, path[-1][:, None])[:, 0])
    return torch.stack(path[::-1], dim=1)


def mel_f0(
    logmel: torch.Tensor, candidates: torch.Tensor, templates: torch.Tensor, used: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """F0 track (B, K) in Hz and voicing (B, K) in 0..1 of a (B, K, M) log10 mel."""
    score = harmonic_correlation(logmel, templates, used)
    path = viterbi_track(score, candidates)
    f0 = candidates.to(logmel.device)[path]
    # a voice holds its correlation over frames, noise (max over C candidates) does not
    peak = F.pad(score.gather(2, path[..., None])[..., 0][:, None], (VOICING_FRAMES // 2,) * 2, mode="replicate")
    peak = F.avg_pool1d(peak, VOICING_FRAMES, stride=1)[:, 0]
    voicing = ((peak - VOICING_LOW) / (VOICING_HIGH - VOICING_LOW)).clamp(0.0, 1.0)
    return f0, voicing


def frames_to_samples(track: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, K) values at frame centres k * hop -> (B, K * hop) linearly interpolated, held past
    the last centre."""
    nxt = torch.cat([track[:, 1:], track[:, -1:]], dim=1)
    frac = torch.arange(hop, dtype=track.dtype, device=track.device) / hop
    return (track[:, :, None] * (1.0 - frac) + nxt[:, :, None] * frac).reshape(track.shape[0], -1)


def harmonic_excitation(
    f0: torch.Tensor, voicing: torch.Tensor, hop: int, fs: int, cutoff_hz: float
) -> torch.Tensor:
    """e(n) = v(n) sum_{h: h f0(n) < cutoff} sin(h phi(n)), phi(n) = 2 pi sum_{m <= n} f0(m) / fs:
    (B, K) F0 in Hz and voicing -> (B, K * hop) samples, phi from 0 at the first sample.
    The phase is integrated in float64 so that long inputs keep it to the sample."""
    f0_s = frames_to_samples(f0.double(), hop)
    phase = torch.remainder(2.0 * math.pi * torch.cumsum(f0_s / fs, dim=1), 2.0 * math.pi)
    out = torch.zeros_like(f0_s)
    for h in range(1, int(cutoff_hz // F0_MIN) + 1):
        out += torch.sin(h * phase) * (h * f0_s < cutoff_hz)
    return (out * frames_to_samples(voicing.double(), hop)).to(f0.dtype)


def harmonic_comb_log_amp(
    f0: torch.Tensor, voicing: torch.Tensor, n_fft: int, fs: int, cutoff_hz: float, depth_db: float,
    taper_hz: float = COMB_TAPER_HZ,
) -> torch.Tensor:
    """log c_k(f), the harmonic prior's factor of the SpecGrad filter (natural-log amplitude):

        c_k(f)^2 = g + (1 - g) max_h |W(f - h f0_k)|^2,    g = 10^(-depth_db / 10),
        log c_k(f) <- v_k w(f) log c_k(f),    w = 1 below cutoff_hz, 0 from cutoff_hz + taper_hz,

    with |W| the Hann window's response to a sinusoid (each harmonic's lobe as this STFT
    sees it, peak 1) and v_k the voicing. Between the harmonics of a voiced frame the noise
    is depth_db lower; unvoiced frames and bins above the band are untouched (log c = 0).
    The max over harmonics, not their sum, keeps the peaks at 1 when a low F0 packs the
    lobes together, where the comb flattens. It runs over the two harmonics either side of
    f (h >= 1): farther ones reach f only through sidelobes at least 31 dB down.
    (B, K) F0 in Hz (> 0) and voicing -> (B, K, F) real."""
    bins = n_fft // 2 + 1
    top = cutoff_hz + taper_hz
    freqs = torch.arange(bins, dtype=f0.dtype, device=f0.device) * fs / n_fft
    n_low = int((freqs < top).sum())
    below = (freqs[:n_low] / f0[..., None]).floor().clamp_min(1.0)  # (B, K, F_low)
    either_side = torch.stack([below, below + 1.0], dim=-1)
    offset = (freqs[:n_low, None] - either_side * f0[..., None, None]) * n_fft / fs
    lobe = hann_magnitude(offset).pow(2).amax(dim=-1)
    floor = 10.0 ** (-depth_db / 10.0)
    weight = ((top - freqs[:n_low]) / taper_hz).clamp(0.0, 1.0)
    out = torch.zeros(*f0.shape, bins, dtype=f0.dtype, device=f0.device)
    out[..., :n_low] = voicing[..., None] * weight * 0.5 * torch.log(floor + (1.0 - floor) * lobe)
    return out
