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

A frame-rate denoiser finds it easiest to output the same thing in every STFT frame, and a
signal that repeats every hop is a buzz at multiples of fs / hop (86 Hz at 22.05 kHz),
inside a low voice's pitch range. With ``frame_periodic_weight`` the loss adds
``frame_periodic_distance``: how far the part of the output that repeats every hop is from
the reference's.

With ``adversarial_weight`` the loss adds WaveFit's GAN term on the same low band: a
period discriminator (critic.LowBandCritic) takes one step on the batch, then its
adversarial and feature-matching losses join the distance.

Shapes: B batch, K frames, M mel bands, N = K * hop samples.
"""

from __future__ import annotations

from typing import Dict, List

import torch

from specgrad_plugin import diffusion

DECIMATION = 8  # the loss sees the band below fs / (2 * DECIMATION)
FFT_SIZES = (256, 128, 64)  # MR-STFT windows at the decimated rate, hop = size / 8
PHASE_FFT_SIZE = 128  # the phase-advance distance's window at the decimated rate, hop = size / 8
PHASE_LAG = 4  # ... over this many hops (half a window): closer frames overlap, and noise's advance is not random


def low_band(wav: torch.Tensor, decimation: int = DECIMATION) -> torch.Tensor:
    """The band below fs / (2 decimation), at fs / decimation: (B, N) -> (B, ceil(N / decimation))."""
    import torchaudio.functional

    return torchaudio.functional.resample(wav, orig_freq=decimation, new_freq=1)


def phase_advance_distance(estimate: torch.Tensor, reference: torch.Tensor, n_fft: int = PHASE_FFT_SIZE,
                           lag: int = PHASE_LAG) -> torch.Tensor:
    """The magnitude-weighted distance between the two signals' phase advances over ``lag`` hops:

        u_{f,t} = X_{f,t} conj(X_{f,t-lag}) / |X_{f,t} X_{f,t-lag}|   (unit phasor of bin f's advance)
        w_{f,t} = |R_{f,t}| |R_{f,t-lag}|                             (R: the reference's STFT)
        D = sum w |u^est - u^ref|^2 / (2 sum w) = sum w (1 - cos(dphi^est - dphi^ref)) / sum w

    with Hann windows of n_fft and hop n_fft / 8. 0 when every bin advances as the reference's,
    at any phase offset (a delay of a steady signal); about 1 for phases at random.
    (B, N), (B, N) -> a scalar."""
    window = torch.hann_window(n_fft, device=estimate.device)

    def advance(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, n_fft, n_fft // 8, window=window, return_complex=True)
        return spec[..., lag:] * spec[..., :-lag].conj()

    est, ref = advance(estimate.float()), advance(reference.float())
    weight = ref.abs()
    # a floor 30 dB under the mean keeps the phasor's gradient finite where the estimate is silent
    floor = 1e-3 * weight.mean().clamp_min(1e-12)
    cosine = (est * ref.conj()).real / ((est.abs() + floor) * (weight + floor))
    return (weight * (1.0 - cosine)).sum() / weight.sum().clamp_min(1e-12)


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
    """

    def __init__(self, schedule: str, phase_weight: float = 0.0, adversarial_weight: float = 0.0,
                 frame_periodic_weight: float = 0.0, hop: int = 256) -> None:
        super().__init__()
        self.phase_weight = phase_weight
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
        """The sampler's output with gradients, its noise from the global RNG and its start the
        model's own (inference.start_iterations): what ``vocoder(mel, schedule, seed=None)``
        draws, before its clamp. (B, K, M), (B, K, F) -> (B, N)."""
        prior, denoiser = vocoder.prior, vocoder.denoiser
        cond = denoiser.condition(mel, response)
        return diffusion.sample(lambda x, level: denoiser(x, cond, level), lambda: prior.noise(response),
                                self.betas.cpu(), start=prior.start(mel, vocoder.cfg.inference.start_iterations))

    def low_band_distance(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """MR-STFT(D estimate, D reference), plus phase_weight times their phase-advance
        distance and frame_periodic_weight times their frame-periodic distance, for (B, N)
        signals: a scalar."""
        estimate, reference = low_band(estimate), low_band(reference)
        distance = self.distance(estimate.unsqueeze(1), reference.unsqueeze(1))
        if self.phase_weight > 0:
            distance = distance + self.phase_weight * phase_advance_distance(estimate, reference)
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
