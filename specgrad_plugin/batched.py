"""Vocode utterances of different lengths in one padded batch, each equal to its one-by-one
vocoding.

    wavs = vocode_batch(vocoder, [mel_a, mel_b, mel_c], schedule="WG-6", seed=0)
    # wavs[i] == vocoder(mels[i], schedule="WG-6", seed=0), up to float rounding

Padding alone cannot give that: the prior's STFT, the inverse STFT's normalisation and
every convolution over frames would see the padding, and one generator's draws for a
(B, N_max) batch are not the draws of each (1, N_i) call. So each item gets its own noise
(the draws SpecGradVocoder.forward makes for it alone with ``seed``) and a length mask
(export.RealSampler with ``lengths``: frames past its end held at zero before every
convolution and inverse STFT, the inverse STFT normalised by its own frames). Families the
masked sampler does not cover (wavenet, frame_excitation, the harmonic prior, the time-domain head,
the long-window low band, inference.start_iterations > 0) are
vocoded one by one.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from specgrad_plugin import precision
from specgrad_plugin.checks import check_one_mel, check_seed
from specgrad_plugin.export import RealSampler, Schedule, draw_white_noise, unsupported_reason


def batchable(vocoder) -> bool:
    """Whether vocode_batch runs ``vocoder`` as one batch (otherwise it loops)."""
    return unsupported_reason(vocoder) is None


@torch.no_grad()
def vocode_batch(
    vocoder, mels: Sequence[torch.Tensor], schedule: Optional[Schedule] = None, seed: Optional[int] = 0
) -> List[torch.Tensor]:
    """(K_i, M) log10 mels -> [(K_i * hop,) waveforms], each as vocoder(mels[i], schedule, seed)
    would give it. seed=None draws from the global RNG (then no call reproduces another)."""
    n_mels = vocoder.cfg.features.n_mels
    device = vocoder.train_betas.device
    seed = check_seed(seed)
    mels = [check_one_mel(mel, n_mels, name=f"mel {i}").to(device).float() for i, mel in enumerate(mels)]
    if len(mels) <= 1 or not batchable(vocoder):
        return [vocoder(mel, schedule=schedule, seed=seed) for mel in mels]
    for mel in mels:
        vocoder.warn_on_mel_range(mel[None])
    mels, gains = matched_levels(vocoder, mels)
    vocoder.schedule_betas(schedule, warn=True)
    sampler = RealSampler(vocoder, schedule, use_fft=True, clamp=False).to(device).eval()
    padded, noise, lengths = pad_batch(mels, max(mel.shape[0] for mel in mels), len(mels), sampler.steps,
                                       vocoder.hop_length, seed)
    with precision.tf32(vocoder.cfg.inference.allow_tf32):
        wavs = sampler(padded, noise, lengths)
    return [(wav[: mel.shape[0] * vocoder.hop_length] * gain).clamp(-1.0, 1.0)
            for wav, mel, gain in zip(wavs, mels, gains, strict=True)]


def matched_levels(vocoder, mels: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """vocoder.match_level on each (K_i, M) mel alone: (the mels to sample from, their output gains)."""
    matched = [vocoder.match_level(mel[None]) for mel in mels]
    return [mel[0] for mel, _ in matched], [gain[0] for _, gain in matched]


def pad_batch(mels: Sequence[torch.Tensor], frames: int, batch: int, steps: int, hop: int,
              seed: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RealSampler's inputs for (K_i, M) mels padded to ``frames`` frames and ``batch`` items:
    mel (batch, frames, M), noise (steps, batch, frames * hop), lengths (batch,). Item i gets
    the draws vocoder(mels[i], seed=seed) makes; items past len(mels) repeat the first mel
    (their output is thrown away)."""
    longest = max((mel.shape[0] for mel in mels), default=0)
    if not 0 < len(mels) <= batch or longest > frames:
        raise ValueError(f"{len(mels)} mels of up to {longest} frames do not fit "
                         f"a batch of {batch} x {frames} frames")
    device = mels[0].device
    items = list(mels) + [mels[0]] * (batch - len(mels))
    # any finite padding works (the mask hides it); each mel's own floor keeps the prior tame
    padded = torch.stack([
        torch.nn.functional.pad(mel, (0, 0, 0, frames - mel.shape[0]), value=float(mel.min())) for mel in items
    ])
    noise = torch.zeros(steps, batch, frames * hop, device=device)
    for i, mel in enumerate(items):
        noise[:, i, : mel.shape[0] * hop] = draw_white_noise(1, mel.shape[0] * hop, steps, seed, device)[:, 0]
    lengths = torch.tensor([mel.shape[0] for mel in items], device=device)
    return padded, noise, lengths
