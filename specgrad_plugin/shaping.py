"""The paper's time-varying filter as pure functions (docs/design.md, the filter).

Shapes: B batch, K mel frames, M mel bands, F = n_fft // 2 + 1 linear bins,
N = K * hop samples, T = K + 1 STFT frames of an N-sample signal (center=True).
All log amplitudes are natural logs; the mel input is log10 (ESPnet's convention).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


# ---------------------------------------------------------------- STFT pair (G, G+)
def stft(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """G: (B, N) real -> (B, F, T) complex, Hann window, centred frames.

    Zero padding at the ends (not reflection): defined for any N >= 1, e.g. a
    one-frame mel from a TTS model, and G+ removes the padding exactly.
    """
    return torch.stft(
        x, n_fft, hop_length=hop, win_length=n_fft, window=window,
        center=True, pad_mode="constant", normalized=False, return_complex=True,
    )


def istft(spec: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, length: int) -> torch.Tensor:
    """G+: (B, F, T) complex -> (B, length) real; the least-squares inverse of :func:`stft`.

    With a Hann window at 75 % overlap the window-sum is constant, so G+ G = I.
    """
    return torch.istft(
        spec, n_fft, hop_length=hop, win_length=n_fft, window=window,
        center=True, normalized=False, length=length,
    )


def bins_below(cutoff_hz: float, n_fft: int, fs: float) -> int:
    """How many of an n_fft-point STFT's bins (from 0 Hz) lie at or below cutoff_hz:
    floor(cutoff_hz n_fft / fs) + 1, at most n_fft // 2 + 1; 0 for a cutoff of 0 or less."""
    return min(int(cutoff_hz * n_fft / fs) + 1, n_fft // 2 + 1) if cutoff_hz > 0 else 0


def istft_of_band(band: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, length: int) -> torch.Tensor:
    """G+ of a low band: (B, L, T) complex, the STFT's lowest L bins -> (B, length) real, the
    bins above the band taken as zero."""
    above = n_fft // 2 + 1 - band.shape[1]
    return istft(torch.cat([band, band.new_zeros(band.shape[0], above, band.shape[2])], dim=1), n_fft, hop,
                 window, length)


def with_last_frame(per_frame: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) values per mel frame -> (B, K + 1, ...) per STFT frame: an N = K * hop
    signal has K + 1 centred frames, and the extra last one takes the last mel frame's."""
    return torch.cat([per_frame, per_frame[:, -1:]], dim=1)


# ------------------------------------------------------------- filter, step by step
def mel_pseudo_inverse(mel_basis: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
    """Pseudo-inverse of the mel filterbank and the band-edge bins.

    mel_basis: (M, F). Returns pinv (F, M) and the bins of the first and last
    filters' peaks: outside [lo, hi] the pseudo-inverse falls towards 0 because no
    filter has full weight there, so the envelope is held at its edge value instead.
    """
    basis = mel_basis.double()
    pinv = torch.linalg.pinv(basis).to(mel_basis.dtype)
    lo = int(basis[0].argmax())
    hi = int(basis[-1].argmax())
    return pinv, lo, hi


def linear_amplitude(
    logmel: torch.Tensor, mel_pinv: torch.Tensor, lo: int, hi: int, floor_db: float
) -> torch.Tensor:
    """s_k = max(pinv(MelBasis) a_k, floor), a_k = 10 ** c_k.

    logmel: (B, K, M) log10 mel amplitudes -> (B, K, F) linear amplitudes. The
    floor is relative to each frame's maximum (floor_db is a power ratio) so that
    negative pseudo-inverse lobes never reach the logarithm of the next step.
    """
    amp = torch.pow(10.0, logmel) @ mel_pinv.T
    amp[..., :lo] = amp[..., lo : lo + 1]
    amp[..., hi + 1 :] = amp[..., hi : hi + 1]
    peak = amp.amax(dim=-1, keepdim=True).clamp_min(1e-10)
    return torch.maximum(amp, peak * 10.0 ** (floor_db / 20.0))


def cepstral_envelope(log_amp: torch.Tensor, n_fft: int, order: int) -> torch.Tensor:
    """Spectral envelope by real-cepstrum liftering.

    g = irfft(log s, n_fft) is the real, even cepstrum; keeping quefrencies
    |n| < order (g[0..order-1] and the mirrored tail g[n_fft-order+1..]) and taking
    rfft(.).real gives the smoothed log envelope. (..., F) -> (..., F), natural log.
    """
    cep = torch.fft.irfft(log_amp, n=n_fft)
    lifter = torch.zeros(n_fft, dtype=cep.dtype, device=cep.device)
    lifter[:order] = 1.0
    lifter[n_fft - order + 1 :] = 1.0
    return torch.fft.rfft(cep * lifter, n=n_fft).real


def minimum_phase_log(log_amp: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex log of the minimum-phase response with magnitude exp(log_amp), by cepstral
    folding: log H = rfft(w * irfft(log_amp)), w = [1, 2, ..., 2, 1, 0, ..., 0]
    (the causal part of the cepstrum doubled). Its imaginary part is the unwrapped phase,
    which H^-p needs for p != 1. (..., F) real -> (..., F) complex."""
    cep = torch.fft.irfft(log_amp, n=n_fft)
    fold = torch.zeros(n_fft, dtype=cep.dtype, device=cep.device)
    fold[0] = 1.0
    fold[1 : n_fft // 2] = 2.0
    fold[n_fft // 2] = 1.0
    return torch.fft.rfft(cep * fold, n=n_fft)


def normalised_power(log_env: torch.Tensor, floor_db: float, white_mix: float) -> torch.Tensor:
    """Envelope power h^2 with floor, unit mean power and white mix.

    p = max(e^2, max_f(e^2) * 10^(floor_db/10)); p /= mean_f(p);
    h^2 = (1 - w) p + w. (..., F) natural-log amplitude -> (..., F) power, mean 1.
    """
    power = torch.exp(2.0 * log_env)
    peak = power.amax(dim=-1, keepdim=True)
    power = torch.maximum(power, peak * 10.0 ** (floor_db / 10.0))
    power = power / power.mean(dim=-1, keepdim=True)
    return (1.0 - white_mix) * power + white_mix


def frame_level(
    logmel: torch.Tensor, energy_min: float, energy_max: float, min_level: float
) -> torch.Tensor:
    """PriorGrad's frame level sigma_k, clipped to the training range.

    E_k = sqrt(sum_b 10 ** c_kb); sigma_k = clip((E_k - E_min) / (E_max - E_min), min_level, 1):
    a frame louder than the training set's loudest (a TTS model's mel, say) gets the
    loudest noise seen in training, not louder. (B, K, M) log10 mel -> (B, K).
    """
    energy = frame_energy(logmel)
    return ((energy - energy_min) / (energy_max - energy_min)).clamp(min_level, 1.0)


def frame_energy(logmel: torch.Tensor) -> torch.Tensor:
    """E_k = sqrt(sum_b 10 ** c_kb): (B, K, M) -> (B, K)."""
    return torch.pow(10.0, logmel).sum(dim=-1).sqrt()


def shaped_log_response(
    logmel: torch.Tensor,
    mel_pinv: torch.Tensor,
    lo: int,
    hi: int,
    n_fft: int,
    lifter_order: int,
    floor_db: float,
    white_mix: float,
    phase: str,
    extra_log_amp: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """log h_k(f): the complex log of the unit-mean-power spectral shape of SpecGrad's
    noise, minimum phase (unwrapped) or zero phase.

    (B, K, M) log10 mel -> (B, K, F) complex; h = exp(log h). extra_log_amp: (B, K, F) real,
    a log amplitude added after the normalisation and white mix, before the phase is taken
    (the harmonic prior's comb, pitch.py: it lowers h's mean power and, between harmonics,
    h below the white mix's floor).
    """
    amp = linear_amplitude(logmel, mel_pinv, lo, hi, floor_db)
    log_env = cepstral_envelope(torch.log(amp), n_fft, lifter_order)
    log_h = 0.5 * torch.log(normalised_power(log_env, floor_db, white_mix))
    if extra_log_amp is not None:
        log_h = log_h + extra_log_amp
    if phase == "minimum":
        return minimum_phase_log(log_h, n_fft)
    return torch.complex(log_h, torch.zeros_like(log_h))


# ------------------------------------------------------------ applying L and L^-1
def apply_filter(
    x: torch.Tensor, response: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor
) -> torch.Tensor:
    """L x = G+ diag(H) G x.

    x: (B, N) with N = K * hop; response: (B, K, F) complex or real, one row per
    mel frame. The STFT has K + 1 frames; the last frame reuses the last response.
    """
    spec = stft(x, n_fft, hop, window)
    resp = response.transpose(1, 2)
    frames = spec.shape[-1]
    if resp.shape[-1] < frames:
        resp = torch.cat([resp, resp[..., -1:].expand(-1, -1, frames - resp.shape[-1])], dim=-1)
    return istft(spec * resp[..., :frames], n_fft, hop, window, length=x.shape[-1])


def bin_phase_advance(n_bins: int, frames: int, n_fft: int, hop: int) -> torch.Tensor:
    """exp(2 pi i k t hop / n_fft): (F, T) complex, the phase that frame t of :func:`stft`
    adds to a sinusoid at the centre of bin k. Multiplying by its conjugate demodulates each
    bin; it repeats every n_fft / gcd(hop, n_fft) frames (4 at 75 % overlap)."""
    k = torch.arange(n_bins, dtype=torch.float64)[:, None]
    t = torch.arange(frames, dtype=torch.float64)[None, :]
    # (k t hop) mod n_fft first: exact in float64, then a small angle in float32
    angle = 2 * torch.pi * torch.remainder(k * t * hop, n_fft) / n_fft
    return torch.polar(torch.ones_like(angle), angle).to(torch.complex64)


def inverse_response(log_response: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """H^-p = exp(-p log H): the response of L^-p (loss weighting), (..., F) complex.

    Takes the complex log of H with its unwrapped phase: exp(-i p arg H) with the wrapped
    angle would flip the sign wherever the true phase is beyond +-pi (p = 1/2) or turn it
    by other multiples of 2 pi p. p = 1 gives 1/H (the paper's L^-1); p = 0 the identity.
    """
    return torch.exp(-power * log_response)


# Corner frequencies (Hz) of two auditory scales, both of the form a log(1 + f / corner):
# mel = 2595 log10(1 + f / 700); ERB-rate = 21.4 log10(1 + 0.00437 f) (Glasberg & Moore 1990).
SCALE_CORNERS_HZ = {"mel": 700.0, "erb": 1.0 / 0.00437}


def scale_density_weights(n_fft: int, fs: int, scale: str) -> torch.Tensor:
    """Per-bin loss weights proportional to an auditory scale's density, d scale / df ~
    1 / (corner + f) (scale: mel | erb, SCALE_CORNERS_HZ), at the F = n_fft // 2 + 1 bin
    centres, unit mean: (F,).

    The paper's L^-1 loss weights every bin alike, so the band below 1 kHz (where F0 and
    the first harmonics are) gets 9 % of it at 22.05 kHz; mel weights give it 31 %, ERB 44 %.
    """
    freqs = torch.linspace(0.0, fs / 2, n_fft // 2 + 1)
    density = 1.0 / (SCALE_CORNERS_HZ[scale] + freqs)
    return density / density.mean()


def terminal_snr_db(
    x0: torch.Tensor,
    response: torch.Tensor,
    alpha_bar: float,
    mel_basis: torch.Tensor,
    n_fft: int,
    hop: int,
    window: torch.Tensor,
) -> torch.Tensor:
    """Speech-to-noise ratio of x_t per frame and mel band (docs/design.md, level criterion).

    abar |G x0|^2 against (1 - abar) E|G L xi|^2 = (1 - abar) |H|^2 sum(w^2), both
    summed in mel bands (power through mel_basis (M, F)). Returns (B, K, M) dB.
    """
    frames = response.shape[1]
    speech = stft(x0, n_fft, hop, window)[..., :frames].abs().pow(2).transpose(1, 2)
    noise = response.abs().pow(2) * window.pow(2).sum()
    basis = mel_basis.T.to(speech.dtype)
    ratio = (alpha_bar * (speech @ basis)) / ((1.0 - alpha_bar) * (noise @ basis)).clamp_min(1e-20)
    return 10.0 * torch.log10(ratio.clamp_min(1e-20))


def griffin_lim(logmel: torch.Tensor, mel_pinv: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor,
                iterations: int) -> torch.Tensor:
    """Audio whose STFT magnitude is near the mel's pseudo-inverse: (B, K, M) log10 mel ->
    (B, K * hop). The magnitude is S = max(pinv(MelBasis) 10 ** c_k, 1e-10), as ESPnet's
    logmel2linear. The phase comes from ``iterations`` of fast Griffin-Lim (Perraudin et al.
    2013; torchaudio's, momentum 0.99, which it applies as 0.99 / 1.99):
    X <- P(S, G G+ (S e^{i phi})) with an extrapolation over the last two iterates, from zero
    phase, so the same mel always gives the same audio."""
    import torchaudio.functional

    frames, samples = logmel.shape[1], logmel.shape[1] * hop
    amp = (torch.pow(10.0, logmel.float()) @ mel_pinv.T).clamp_min(1e-10).transpose(1, 2)
    # K + 1 centred frames cover K * hop samples; torchaudio's STFT pads by reflection, which
    # needs more than n_fft / 2 samples, so a mel of a frame or two runs on repeats of its last
    # frame up to n_fft samples and is cut back
    length = max(samples, n_fft)
    amp = torch.cat([amp, amp[..., -1:].expand(-1, -1, length // hop + 1 - frames)], dim=-1)
    wav = torchaudio.functional.griffinlim(amp, window, n_fft, hop, n_fft, power=1.0, n_iter=iterations,
                                           momentum=0.99, length=length, rand_init=False)
    return wav[..., :samples]


def hann_window(n_fft: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Periodic Hann window, the one ESPnet's Stft uses."""
    return torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype)

