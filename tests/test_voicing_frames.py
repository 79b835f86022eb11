"""bench/voicing_frames.py sorts the reference's voiced frames by what the output's F0 does and
measures the output's band energies against the recording's, per frame."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

FRAMES = Path(__file__).resolve().parents[1] / "bench" / "voicing_frames.py"
FS, HOP, N_FFT = 22050, 256, 1024


@pytest.fixture(scope="module")
def frames():
    return load_script(FRAMES)


def harmonic(f0: float, seconds: float, amplitudes=(1.0, 0.5, 0.25)) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return sum(a * np.sin(2 * np.pi * (k + 1) * f0 * t) for k, a in enumerate(amplitudes)) * 0.2


def test_band_energy_reads_bands_in_multiples_of_f0(frames):
    power = frames.power_frames(harmonic(200.0, 0.5, (1.0,)), N_FFT, HOP)
    f0 = np.full(len(power), 200.0)
    total = power.sum(axis=1)[5:-5]
    assert np.all(frames.band_energy(power, f0, (0.75, 1.25), FS, N_FFT)[5:-5] > 0.99 * total)
    assert np.all(frames.band_energy(power, f0, (1.3, 1.7), FS, N_FFT)[5:-5] < 1e-3 * total)
    # at F0 = 400 Hz the same bands hold none of a 200 Hz tone
    assert np.all(frames.band_energy(power, 2 * f0, (0.75, 1.25), FS, N_FFT)[5:-5] < 1e-3 * total)


def test_frames_are_sorted_by_what_the_output_pitch_does(frames):
    ref = harmonic(200.0, 1.0)
    same = frames.frame_kinds(ref, ref, FS, HOP, N_FFT, fmin=80.0)
    assert len(same["right"]) > 60 and not same["gross"] and not same["lost"]
    right = np.array(same["right"])
    assert np.allclose(right[:, :2], 0.0, atol=1e-6)  # the same energy around F0 and 2 F0
    assert np.allclose(right[:, 2], right[:, 3])  # the same periodicity as the recording
    half = len(ref) // 2
    noisy = ref.copy()
    noisy[half:] = np.random.default_rng(0).standard_normal(len(ref) - half) * ref[half:].std()
    kinds = frames.frame_kinds(ref, noisy, FS, HOP, N_FFT, fmin=80.0)
    assert len(kinds["lost"]) > 25 and len(kinds["right"]) > 25  # the noise half is lost
    assert np.median(np.array(kinds["lost"])[:, 2]) > -10.0 > np.median(np.array(kinds["right"])[:, 2])
    fifth = frames.frame_kinds(ref, harmonic(300.0, 1.0), FS, HOP, N_FFT, fmin=80.0)
    assert len(fifth["gross"]) > 60 and not fifth["right"]
