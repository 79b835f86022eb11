"""SamplerLoss: the sampler's own output, trained against the clean audio in the low band.

The diffusion loss trains each noise level on its own, one step from x_t. What a user hears
is the end of a short chain (WG-6: six steps), where each step's error is the next step's
input, and at six steps the error left is largest below 1 kHz (docs/low_band.md). This loss
runs the ancestral sampler over a fixed schedule with gradients through every step
(diffusion.sample is differentiable), as WaveFit trains its fixed-length refinement, and
compares what comes out with the clean crop:

    x_0 = sample(eps_theta, L xi, schedule),   loss = MR-STFT(D x_0, D x)

with D a decimation by DECIMATION (torchaudio's windowed-sinc resampler: the band below
fs / (2 DECIMATION), 1.38 kHz at 22.05 kHz) and MR-STFT auraloss's spectral convergence plus
log-magnitude distance at FFT_SIZES. After decimation by 8 these windows are 2048, 1024 and
512 samples at the audio's rate: the long one resolves the harmonics of a 100 Hz voice, the
short one their onsets. Griffin-Lim, from the mel's magnitudes alone, reaches PESQ 3.35
on these clips, so a consistent magnitude is most of what the band lacks.

Voicing is what a magnitude distance barely sees (docs/sampler_loss.md: the reference's
low-band phase with the model's magnitude takes V/UV error from 0.165 to 0.090). With
``phase_weight`` the loss adds ``phase_advance_distance``: how far each bin's phase advance
over half a window (its instantaneous frequency) is from the reference's, where the reference
has energy. A harmonic advances by 2 pi f lag / fs whatever its starting phase, so the distance
asks for periodicity at the reference's frequencies, not for the recording's one phase
among the many that a mel allows (APNet's instantaneous-frequency loss, Ai and Ling 2023,
weighted by magnitude).

What DIO reads voicing from is the fundamental: with the reference's STFT below 1.5 F0 the
output's V/UV error falls by more than a quarter, with its magnitude or its phase alone by
less: about half of it with the phase alone, a quarter with the magnitude alone
(bench/band_swap.py --f0_bands, dev, one sampling seed). With ``fundamental_weight`` the loss adds
``fundamental_distance``: the log-magnitude and phase-advance distances on the bins below
1.5 times the reference's own F0 (WORLD DIO on the clean crop, no gradient), frame by frame.

A frame-rate denoiser finds it easiest to output the same thing in every STFT frame, and a
signal that repeats every hop is a buzz at multiples of fs / hop (86 Hz at 22.05 kHz),
inside a low voice's pitch range. With ``frame_periodic_weight`` the loss adds
``frame_periodic_distance``: how far the part of the output that repeats every hop is from
the reference's.

With ``periodicity_weight`` the loss adds ``periodicity.periodicity_distance``: how far the
output's normalised autocorrelation at the reference's pitch period is from the reference's,
frame by frame whatever the frame's level (down to 60 dB under the crop's peak), on its
voiced frames and the unvoiced ones next to them, where `ljspeech-v4`'s voicing errors are.

With ``adversarial_weight`` the loss adds WaveFit's GAN term on the same low band: a
period discriminator (critic.LowBandCritic) takes one step on the batch, then its
adversarial and feature-matching losses join the distance.

Shapes: B batch, K frames, M mel bands, N = K * hop samples.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch

from specgrad_plugin import diffusion, periodicity

DECIMATION = 8  # the loss sees the band below fs / (2 * DECIMATION)
FFT_SIZES = (256, 128, 64)  # MR-STFT windows at the decimated rate, hop = size / 8
PHASE_FFT_SIZE = 128  # the phase-advance distance's window at the decimated rate, hop = size / 8
PHASE_LAG = 4  # ... over this many hops (half a window): closer frames overlap, and noise's advance is not random
FUNDAMENTAL_RATIO = 1.5  # fundamental_distance: the bins below this times F0 (the fundamental, not the 2nd harmonic)


def low_band(wav: torch.Tensor, decimation: int = DECIMATION) -> torch.Tensor:
    """The band below fs / (2 decimation), at fs / decimation: (B, N) -> (B, ceil(N / decimation))."""
    import torchaudio.functional

    return torchaudio.functional.resample(wav, orig_freq=decimation, new_freq=1)


def phase_advance_distance(estimate: torch.Tensor, reference: torch.Tensor, n_fft: int = PHASE_FFT_SIZE,
                           lag: int = PHASE_LAG, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The magnitude-weighted distance between the two signals' phase advances over ``lag`` hops:

        u_{f,t} = X_{f,t} conj(X_{f,t-lag}) / |X_{f,t} X_{f,t-lag}|   (unit phasor of bin f's advance)
        w_{f,t} = |R_{f,t}| |R_{f,t-lag}|                             (R: the reference's STFT)
        D = sum w |u^est - u^ref|^2 / (2 sum w) = sum w (1 - cos(dphi^est - dphi^ref)) / sum w

    with Hann windows of n_fft and hop n_fft / 8. 0 when every bin advances as the reference's,
    at any phase offset (a delay of a steady signal); about 1 for phases at random.
    mask: (B, F, T) weights on the STFT's bins (T = N // (n_fft // 8) + 1 frames), w *= mask_t.
    (B, N), (B, N) -> a scalar."""
    return _phase_advance_distance(_stft(estimate, n_fft), _stft(reference, n_fft), lag, mask)


def _stft(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(B, N) -> (B, n_fft // 2 + 1, T) complex: Hann window n_fft, hop n_fft / 8, centred."""
    return torch.stft(x.float(), n_fft, n_fft // 8, window=torch.hann_window(n_fft, device=x.device),
                      return_complex=True)


def _phase_advance_distance(est_spec: torch.Tensor, ref_spec: torch.Tensor, lag: int,
                            mask: Optional[torch.Tensor]) -> torch.Tensor:
    """phase_advance_distance from the two STFTs (_stft)."""
    est = est_spec[..., lag:] * est_spec[..., :-lag].conj()
    ref = ref_spec[..., lag:] * ref_spec[..., :-lag].conj()
    weight = ref.abs() if mask is None else ref.abs() * mask[..., lag:]
    # a floor 30 dB under the mean keeps the phasor's gradient finite where the estimate is silent
    floor = 1e-3 * weight.mean().clamp_min(1e-12)
    cosine = (est * ref.conj()).real / ((est.abs() + floor) * (weight + floor))
    return (weight * (1.0 - cosine)).sum() / weight.sum().clamp_min(1e-12)


def fundamental_mask(f0: torch.Tensor, fs: float, n_fft: int, ratio: float = FUNDAMENTAL_RATIO) -> torch.Tensor:
    """1 on the bins below ratio * f0 of each voiced frame, 0 elsewhere: (B, T) F0 in Hz (0:
    unvoiced) -> (B, n_fft // 2 + 1, T)."""
    freqs = torch.arange(n_fft // 2 + 1, device=f0.device, dtype=f0.dtype) * fs / n_fft
    return ((freqs[None, :, None] < ratio * f0[:, None, :]) & (f0[:, None, :] > 0)).to(f0.dtype)


def reference_f0(reference: torch.Tensor, fs: float, hop: int) -> torch.Tensor:
    """WORLD F0 (scoring.world_f0) of each (B, N) reference at fs, one per hop samples from
    sample 0 (the centred STFT's frames): (B, N) -> (B, N // hop + 1), 0 where unvoiced."""
    from specgrad_plugin.scoring import world_f0

    frames = reference.shape[-1] // hop + 1
    rows = []
    for x in reference.detach().cpu().double().numpy():
        track = torch.from_numpy(world_f0(x, fs, hop)).float()[:frames]
        rows.append(torch.nn.functional.pad(track, (0, frames - len(track))))
    return torch.stack(rows).to(reference.device)


def fundamental_distance(estimate: torch.Tensor, reference: torch.Tensor, f0: torch.Tensor, fs: float,
                         n_fft: int = PHASE_FFT_SIZE, lag: int = PHASE_LAG) -> torch.Tensor:
    """The two signals' distance over the bins below 1.5 F0 of the reference's voiced frames,
    where the fundamental is:

        M_{f,t} = [f < 1.5 F0_t]
        D = sum M |log |X| - log |R|| / sum M  +  phase_advance_distance(X, R, mask=M)

    with X, R the STFTs (Hann window n_fft, hop n_fft / 8). 0 where no frame is voiced.
    (B, N), (B, N) at fs, (B, N // (n_fft // 8) + 1) F0 in Hz -> a scalar."""
    mask = fundamental_mask(f0, fs, n_fft)
    if not bool(mask.any()):
        return estimate.new_zeros(())
    est_spec, ref_spec = _stft(estimate, n_fft), _stft(reference, n_fft)  # once, for both parts
    est, ref = est_spec.abs(), ref_spec.abs()
    floor = 1e-5 * ref.amax().clamp_min(1e-12)  # 100 dB under the loudest bin: silence stays finite
    log_distance = (mask * (torch.log(est + floor) - torch.log(ref + floor)).abs()).sum() / mask.sum()
    return log_distance + _phase_advance_distance(est_spec, ref_spec, lag, mask)


def frame_periodic_distance(estimate: torch.Tensor, reference: torch.Tensor, period: int) -> torch.Tensor:
    """The distance between the two signals' frame-synchronous averages, the part of each that
    repeats every ``period`` samples:

        P(x)_j = (1 / K) sum_k x_{k period + j},   D = K^2 |P(e) - P(r)|^2 / (|e|^2 + |r|^2)

    averaged over the batch. For two unrelated noises D is about 1; it is 0 when the outputs
    repeat per frame as the reference does. P is scoring.frame_synchronous_share's frame
    average, over a whole crop and with gradients. (B, K * period), (B, K * period) -> a scalar."""
    frames = estimate.shape[-1] // period
    if frames < 2 or estimate.shape[-1] != frames * period:
        raise ValueError(f"frame_periodic_distance: {estimate.shape[-1]} samples, expected a multiple of "
                         f"period={period} of at least 2 periods")

    def average(x: torch.Tensor) -> torch.Tensor:
        return x.float().reshape(x.shape[0], frames, period).mean(dim=1)

    error = (average(estimate) - average(reference)).pow(2).sum(dim=1)
    energy = estimate.float().pow(2).sum(dim=1) + reference.float().pow(2).sum(dim=1)
    return (frames**2 * error / energy.clamp_min(1e-12)).mean()


class SamplerLoss(torch.nn.Module):
    """MR-STFT distance between the low bands of the sampler's output and the clean crops.

    Args:
        schedule: the inference schedule unrolled in training (a name or a list of betas,
            diffusion.inference_betas), the one the model will be sampled with.
        phase_weight: weight of phase_advance_distance beside the MR-STFT distance (0: off).
        adversarial_weight: weight of critic.LowBandCritic's generator loss (0: no critic).
        frame_periodic_weight: weight of frame_periodic_distance on the low band (0: off).
        hop: the denoiser's frame hop in samples at the audio's rate (a multiple of DECIMATION).
        fundamental_weight: weight of fundamental_distance on the low band (0: off).
        fs: the audio's sample rate (fundamental_distance's bins and F0 are in Hz).
        periodicity_weight: weight of periodicity.periodicity_distance on the low band (0: off).
    """

    def __init__(self, schedule: str, phase_weight: float = 0.0, adversarial_weight: float = 0.0,
                 frame_periodic_weight: float = 0.0, hop: int = 256, fundamental_weight: float = 0.0,
                 fs: int = 22050, periodicity_weight: float = 0.0) -> None:
        super().__init__()
        self.phase_weight = phase_weight
        self.fundamental_weight, self.periodicity_weight, self.fs = fundamental_weight, periodicity_weight, fs
        for key, weight in (("fundamental", fundamental_weight), ("periodicity", periodicity_weight)):
            if weight > 0:
                from specgrad_plugin.data import _pyworld

                _pyworld(f"diffusion.sampler_loss_{key}_weight")  # the reference's F0: before any data is read
        self.frame_periodic_weight = frame_periodic_weight
        self.hop = hop
        self.adversarial_weight = adversarial_weight
        self.critic = None
        if adversarial_weight > 0:
            from specgrad_plugin.critic import LowBandCritic

            self.critic = LowBandCritic()
        self.stats: Dict[str, float] = {}  # the critic's last losses, for the trainer's log
        import auraloss

        self.register_buffer("betas", diffusion.inference_betas(schedule), persistent=False)
        sizes: List[int] = list(FFT_SIZES)
        self.distance = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=sizes, hop_sizes=[s // 8 for s in sizes], win_lengths=sizes)

    def sample(self, vocoder: torch.nn.Module, mel: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """The sampler's output with gradients, its noise from the global RNG, its start the
        model's own (inference.start_iterations) and its gain steps after the sampler
        (inference.mel_gain_iterations): what ``vocoder(mel, schedule, seed=None)`` gives,
        before its clamp. (B, K, M), (B, K, F) -> (B, N)."""
        prior, denoiser = vocoder.prior, vocoder.denoiser
        # once for all steps, within the inference budget (the time head's hold over the hop)
        cond = denoiser.condition(mel, response, vocoder.cfg.inference.conditioning_cache_mb * 2**20)
        wav = diffusion.sample(lambda x, level: denoiser(x, cond, level), lambda: prior.noise(response),
                               self.betas.cpu(), start=prior.start(mel, vocoder.cfg.inference.start_iterations))
        return vocoder.match_mel(wav, mel)

    def low_band_distance(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """MR-STFT(D estimate, D reference), plus phase_weight times their phase-advance
        distance, fundamental_weight times their fundamental distance, periodicity_weight times
        their periodicity distance and frame_periodic_weight times their frame-periodic distance,
        for (B, N) signals: a scalar."""
        estimate, reference = low_band(estimate), low_band(reference)
        distance = self.distance(estimate.unsqueeze(1), reference.unsqueeze(1))
        if self.phase_weight > 0:
            distance = distance + self.phase_weight * phase_advance_distance(estimate, reference)
        if self.fundamental_weight > 0 or self.periodicity_weight > 0:
            low_fs, low_hop = self.fs / DECIMATION, PHASE_FFT_SIZE // 8
            f0 = reference_f0(reference, low_fs, low_hop)
            if self.fundamental_weight > 0:
                fundamental = fundamental_distance(estimate, reference, f0, low_fs)
                distance = distance + self.fundamental_weight * fundamental
            if self.periodicity_weight > 0:
                periodic = periodicity.periodicity_distance(estimate, reference, f0, low_fs, low_hop)
                distance = distance + self.periodicity_weight * periodic
        if self.frame_periodic_weight > 0:
            periodic = frame_periodic_distance(estimate, reference, self.hop // DECIMATION)
            distance = distance + self.frame_periodic_weight * periodic
        self.stats = {}
        # the critic learns only in a training step: not in eval mode, nor under no_grad (a validation loss)
        if self.critic is not None and self.training and torch.is_grad_enabled():
            self.stats = self.critic.update(estimate, reference)
            adversarial = self.critic.generator_loss(estimate, reference)
            self.stats["critic_generator"] = float(adversarial.detach())
            distance = distance + self.adversarial_weight * adversarial
        return distance

    def forward(self, vocoder: torch.nn.Module, wav: torch.Tensor, mel: torch.Tensor,
                log_response: torch.Tensor) -> torch.Tensor:
        """vocoder: a SpecGradVocoder; wav: (B, N) clean crops; mel: (B, K, M) their mels;
        log_response: (B, K, F) the prior's log H for mel. Returns the scalar distance."""
        return self.low_band_distance(self.sample(vocoder, mel, torch.exp(log_response)), wav)
