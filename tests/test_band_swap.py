"""bench/band_swap.py's bands that follow the voice: a mask over bins below a multiple of
each frame's F0, empty where the frame is unvoiced."""

from pathlib import Path

import torch

from tests.conftest import load_script

SWAP = Path(__file__).resolve().parents[1] / "bench" / "band_swap.py"


def test_below_f0_follows_each_frames_pitch_and_skips_unvoiced_frames():
    swap = load_script(SWAP)
    freqs = torch.arange(6) * 100.0  # bins at 0, 100, ..., 500 Hz
    f0 = torch.tensor([200.0, 0.0, 300.0])
    mask = swap.below_f0(freqs, f0, 1.5)
    assert mask.shape == (6, 3)
    assert mask[:, 0].tolist() == [1, 1, 1, 0, 0, 0]  # below 300 Hz
    assert mask[:, 1].sum() == 0  # unvoiced
    assert mask[:, 2].tolist() == [1, 1, 1, 1, 1, 0]  # below 450 Hz
    g, r = torch.ones(6, 3, dtype=torch.complex64), 2 * torch.ones(6, 3, dtype=torch.complex64)
    mixed = swap.f0_swaps(freqs, f0)["reference below 1.5 F0"](g, r)
    assert torch.equal(mixed.real, 1 + mask)
