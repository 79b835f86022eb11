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
short one their onsets. Magnitudes only: Griffin-Lim, from the mel's magnitudes alone,
reaches PESQ 3.35 on these clips, so a consistent magnitude is what the band lacks.

Shapes: B batch, K frames, M mel bands, N = K * hop samples.
"""

from __future__ import annotations

from typing import List

import torch

from specgrad_plugin import diffusion

DECIMATION = 8  # the loss sees the band below fs / (2 * DECIMATION)
FFT_SIZES = (256, 128, 64)  # MR-STFT windows at the decimated rate, hop = size / 8


def low_band(wav: torch.Tensor, decimation: int = DECIMATION) -> torch.Tensor:
    """The band below fs / (2 decimation), at fs / decimation: (B, N) -> (B, ceil(N / decimation))."""
    import torchaudio.functional

    return torchaudio.functional.resample(wav, orig_freq=decimation, new_freq=1)


class SamplerLoss(torch.nn.Module):
    """MR-STFT distance between the low bands of the sampler's output and the clean crops.

    Args:
        schedule: the inference schedule unrolled in training (a name or a list of betas,
            diffusion.inference_betas), the one the model will be sampled with.
    """

    def __init__(self, schedule: str) -> None:
        super().__init__()
        import auraloss

        self.register_buffer("betas", diffusion.inference_betas(schedule), persistent=False)
        sizes: List[int] = list(FFT_SIZES)
        self.distance = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=sizes, hop_sizes=[s // 8 for s in sizes], win_lengths=sizes)

    def sample(self, vocoder: torch.nn.Module, mel: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """The sampler's output with gradients, its noise from the global RNG: what
        ``vocoder(mel, schedule, seed=None)`` draws, before its clamp. (B, K, M), (B, K, F) -> (B, N)."""
        prior, denoiser = vocoder.prior, vocoder.denoiser
        cond = denoiser.condition(mel, response)
        return diffusion.sample(lambda x, level: denoiser(x, cond, level),
                                lambda: prior.noise(response), self.betas.cpu())

    def low_band_distance(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """MR-STFT(D estimate, D reference) for (B, N) signals: a scalar."""
        return self.distance(low_band(estimate).unsqueeze(1), low_band(reference).unsqueeze(1))

    def forward(self, vocoder: torch.nn.Module, wav: torch.Tensor, mel: torch.Tensor,
                log_response: torch.Tensor) -> torch.Tensor:
        """vocoder: a SpecGradVocoder; wav: (B, N) clean crops; mel: (B, K, M) their mels;
        log_response: (B, K, F) the prior's log H for mel. Returns the scalar distance."""
        return self.low_band_distance(self.sample(vocoder, mel, torch.exp(log_response)), wav)
