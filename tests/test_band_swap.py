"""bench/band_swap.py's bands that follow the voice: bins below a multiple of each frame's
F0, none where the frame is unvoiced."""

from pathlib import Path

import torch

from tests.conftest import load_script

SWAP = Path(__file__).resolve().parents[1] / "bench" / "band_swap.py"


def test_f0_swaps_follow_each_frames_pitch_and_skip_unvoiced_frames():
    swap = load_script(SWAP)
    fs, n_fft = 1000.0, 10  # bins at 0, 100, ..., 500 Hz
    f0 = torch.tensor([200.0, 0.0, 300.0])
    g, r = torch.ones(6, 3, dtype=torch.complex64), 2 * torch.ones(6, 3, dtype=torch.complex64)
    mixes = swap.f0_swaps(f0, fs, n_fft)
    taken = mixes["reference below 1.5 F0"](g, r).real - 1  # 1 where the reference's bin was put in
    assert taken[:, 0].tolist() == [1, 1, 1, 0, 0, 0]  # below 300 Hz
    assert taken[:, 1].sum() == 0  # unvoiced
    assert taken[:, 2].tolist() == [1, 1, 1, 1, 1, 0]  # below 450 Hz
    assert (mixes["reference under 0.75 F0"](g, r).real - 1)[:, 0].tolist() == [1, 1, 0, 0, 0, 0]  # below 150 Hz
    assert torch.equal(mixes["generated, nothing under 0.75 F0"](g, r).real[:, 2], torch.tensor([0., 0, 0, 1, 1, 1]))
