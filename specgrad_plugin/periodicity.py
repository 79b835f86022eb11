"""How periodic a signal is at the reference's pitch period, frame by frame, whatever its level.

DIO calls a frame voiced when the periods it reads off the band-passed waveform agree with
each other, that is, when the waveform repeats itself at one period. `ljspeech-v4` loses or
adds voicing mostly within a few frames of the recording's onsets and offsets
(docs/voicing_floor.md), where the recording is quiet and weakly periodic. The sampler
loss's spectral distances weight a frame by its energy, so those frames count for little.
``periodicity_distance`` counts every frame alike: it compares the two signals' normalised
autocorrelation at the reference's period,

    r_t(x) = sum_n x[n] x[n + P_t] / sqrt(sum_n x[n]^2 sum_n x[n + P_t]^2),   n in frame t's window
    D      = sum_t m_t |r_t(estimate) - r_t(reference)| / sum_t m_t

with P_t = fs / F0_t of the reference (x[n + P] interpolated linearly between samples), on
the frames where the reference is voiced and on the unvoiced ones within ``edge_frames`` of
a voiced frame (m_t = 1; they take the nearest voiced frame's F0), so that an output more
periodic than the reference where the recording has stopped voicing is a distance too.
r is 1 for a signal that repeats at P, about 0 for noise, and unchanged by a gain, down to
frames 60 dB under their crop's peak (a floor keeps silence at r = 0).

Shapes: B batch, N samples, T frames (frame t centred on sample t * hop).
"""

from __future__ import annotations

import numpy as np
import torch

WINDOW = 64  # samples per frame's window: 23 ms at the sampler loss's 2756 Hz, two periods of an 86 Hz voice
EDGE_FRAMES = 10  # unvoiced frames this near a voiced one count too: 58 ms at hop 16 and 2756 Hz


def extend_f0(f0: torch.Tensor, edge_frames: int) -> torch.Tensor:
    """Each unvoiced frame within edge_frames of a voiced one takes the nearest voiced frame's F0
    (the earlier one on a tie); others keep theirs (0 stays 0 farther away).
    (B, T) F0 in Hz, 0 where unvoiced -> (B, T)."""
    tracks = f0.detach().cpu().numpy()
    out = tracks.copy()
    frames = np.arange(out.shape[1])
    for row, track in zip(out, tracks, strict=True):
        voiced = np.flatnonzero(track > 0)
        if len(voiced) == 0 or edge_frames <= 0:
            continue
        after = np.clip(np.searchsorted(voiced, frames), 0, len(voiced) - 1)  # first voiced frame at or after t
        before = np.clip(after - 1, 0, len(voiced) - 1)
        nearer = np.where(np.abs(frames - voiced[before]) <= np.abs(voiced[after] - frames), before, after)
        nearest = voiced[nearer]
        near = (track <= 0) & (np.abs(nearest - frames) <= edge_frames)
        row[near] = track[nearest[near]]
    return torch.from_numpy(out).to(f0)


def normalised_autocorrelation(x: torch.Tensor, periods: torch.Tensor, hop: int, window: int = WINDOW
                               ) -> torch.Tensor:
    """r_t(x) at each frame's period (module docstring): frame t's window is samples
    [t hop - window / 2, t hop + window / 2), zeros outside the signal; 0 where the window is
    silent, damped where it is more than 60 dB under its row's peak. (B, N) signal, (B, T)
    periods in samples (> 0, fractional) -> (B, T)."""
    batch, frames = periods.shape
    reach = int(np.ceil(float(periods.max()))) + 1 if periods.numel() else 1
    # zeros before the first window and up to the last window's farthest lagged sample
    needed = (frames - 1) * hop + window + reach
    padded = torch.nn.functional.pad(x.float(), (window // 2, max(0, needed - window // 2 - x.shape[-1])))
    start = torch.arange(frames, device=x.device)[:, None] * hop + torch.arange(window, device=x.device)  # (T, W)
    here = padded[:, start]  # (B, T, W)
    position = start[None].to(periods) + periods[:, :, None]
    low = position.floor().long()
    frac = position - low

    def take(index: torch.Tensor) -> torch.Tensor:
        return padded.gather(1, index.reshape(batch, -1)).reshape(batch, frames, window)

    later = take(low) * (1.0 - frac) + take(low + 1) * frac
    energy = here.pow(2).sum(-1) * later.pow(2).sum(-1)
    # per row: 60 dB under a window of that row's peak (squared, as energy is), never 0 (silence
    # gives r = 0); one floor for the batch would silence a quiet crop beside a loud one
    full_scale = window * padded.detach().pow(2).amax(dim=1, keepdim=True)  # (B, 1)
    return (here * later).sum(-1) / (energy + (1e-6 * full_scale) ** 2 + 1e-30).sqrt()


def periodicity_distance(estimate: torch.Tensor, reference: torch.Tensor, f0: torch.Tensor, fs: float, hop: int,
                         window: int = WINDOW, edge_frames: int = EDGE_FRAMES) -> torch.Tensor:
    """D of the module docstring: (B, N), (B, N) at fs, (B, T) reference F0 in Hz (0: unvoiced)
    at one frame per hop samples -> a scalar; 0 where no frame is voiced."""
    extended = extend_f0(f0, edge_frames)
    counted = extended > 0
    if not bool(counted.any()):
        return estimate.new_zeros(())
    periods = torch.where(counted, fs / extended.clamp_min(1.0), torch.ones_like(extended))
    r_est = normalised_autocorrelation(estimate, periods, hop, window)
    with torch.no_grad():
        r_ref = normalised_autocorrelation(reference, periods, hop, window)
    return ((r_est - r_ref).abs() * counted).sum() / counted.sum()
