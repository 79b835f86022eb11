"""periodicity.py: the normalised autocorrelation at the reference's period, every frame alike,
and the sampler loss's periodicity term built on it."""

import math

import pytest
import torch

from specgrad_plugin.periodicity import extend_f0, normalised_autocorrelation, periodicity_distance
from specgrad_plugin.sampler_loss import DECIMATION, PHASE_FFT_SIZE, SamplerLoss, low_band, reference_f0

FS = 2756.25  # the sampler loss's rate: 22.05 kHz / 8
HOP = 16


def sine(f0: float, n: int = 2048, amplitude: float = 0.3) -> torch.Tensor:
    return amplitude * torch.sin(2 * math.pi * f0 * torch.arange(n) / FS)[None]


def noise(n: int = 2048, seed: int = 0, amplitude: float = 0.1) -> torch.Tensor:
    return amplitude * torch.randn(1, n, generator=torch.Generator().manual_seed(seed))


def frames(n: int = 2048) -> int:
    return n // HOP + 1


def test_autocorrelation_is_one_at_a_fractional_period_and_low_elsewhere():
    """A sine of period 20.41 samples repeats at that lag (linear interpolation keeps r at 1;
    rounding the lag would give cos(2 pi 0.41 / 20.41) = 0.992), not at 1.5 periods; noise
    does not repeat; a gain changes nothing."""
    x = sine(135.0)
    period = torch.full((1, frames()), FS / 135.0)
    r = normalised_autocorrelation(x, period, HOP)[0, 4:-8]  # windows inside the signal
    assert float(r.min()) > 0.998, r
    assert float(normalised_autocorrelation(x, 1.5 * period, HOP)[0, 4:-8].max()) < -0.9  # half a period off
    assert float(normalised_autocorrelation(noise(), period, HOP)[0, 4:-8].abs().mean()) < 0.2
    quiet = normalised_autocorrelation(1e-4 * x, period, HOP)
    assert torch.allclose(quiet, normalised_autocorrelation(x, period, HOP), atol=1e-4)
    assert float(normalised_autocorrelation(torch.zeros(1, 2048), period, HOP).abs().max()) == 0.0  # silence: 0


def test_each_row_is_measured_against_its_own_level():
    """A quiet crop batched beside a loud one scores as it does alone (a floor taken over the
    whole batch would put the quiet row under it)."""
    x = sine(135.0) + 0.3 * noise(seed=3)
    period = torch.full((1, frames()), FS / 135.0)
    alone = normalised_autocorrelation(1e-4 * x, period, HOP)
    batched = normalised_autocorrelation(torch.cat([x, 1e-4 * x]), period.expand(2, -1), HOP)
    assert float(alone[0, 4:-8].mean()) > 0.5
    assert torch.allclose(batched[1], alone[0], atol=1e-4) and torch.allclose(batched[0], alone[0], atol=1e-4)
    f0 = torch.full((2, frames()), 135.0)
    reference = torch.cat([sine(135.0), 1e-4 * sine(135.0)])
    estimate = torch.cat([sine(135.0), 1e-4 * noise()])
    assert float(periodicity_distance(estimate, reference, f0, FS, HOP)) > 0.4  # the quiet row's noise counts


def test_autocorrelation_of_frame_t_reads_the_window_centred_on_sample_t_hop():
    """A sine that starts at sample 1024: frames well before it see silence (0), frames well
    after see the sine (1); the window is 64 samples, so the change is within 2 frames of 64."""
    x = sine(135.0) * (torch.arange(2048) >= 1024)
    r = normalised_autocorrelation(x, torch.full((1, frames()), FS / 135.0), HOP)[0]
    onset = 1024 // HOP
    assert float(r[: onset - 3].abs().max()) == 0.0
    assert float(r[onset + 2: -8].min()) > 0.99


def test_extend_f0_gives_unvoiced_neighbours_the_nearest_voiced_f0():
    track = torch.tensor([[0.0, 0, 0, 0, 100, 110, 0, 0, 0, 0, 0, 0, 0, 120, 0, 0]])
    got = extend_f0(track, 2)[0].tolist()
    # frames 2-3 take 100 (frame 4), 6-7 take 110 (frame 5), 11-12 and 14-15 take 120; 0-1 and 8-10 stay 0
    assert got == [0, 0, 100, 100, 100, 110, 110, 110, 0, 0, 0, 120, 120, 120, 120, 120]
    tie = extend_f0(torch.tensor([[100.0, 0, 200]]), 1)[0].tolist()
    assert tie == [100, 100, 200]  # equally near both: the earlier one
    assert extend_f0(torch.zeros(1, 5), 3).abs().sum() == 0 and extend_f0(track, 0).equal(track)


def test_periodicity_distance_counts_voiced_frames_and_their_neighbours_at_any_level():
    reference = sine(135.0)
    f0 = torch.full((1, frames()), 135.0)
    assert float(periodicity_distance(reference, reference, f0, FS, HOP)) < 1e-5
    assert float(periodicity_distance(0.01 * reference, reference, f0, FS, HOP)) < 1e-4  # level: no distance
    assert float(periodicity_distance(noise(), reference, f0, FS, HOP)) > 0.8  # noise for a voice: about 1
    assert float(periodicity_distance(noise(), reference, torch.zeros_like(f0), FS, HOP)) == 0.0
    # a quiet voiced frame counts as much as a loud one: noise over the quiet half costs half
    loud_quiet = reference * torch.where(torch.arange(2048) < 1024, 1.0, 0.01)
    quiet_noisy = loud_quiet + noise(amplitude=0.01) * (torch.arange(2048) >= 1024)
    half = float(periodicity_distance(quiet_noisy, loud_quiet, f0, FS, HOP))
    assert 0.3 < half < 0.65, half


def test_periodicity_distance_sees_voicing_added_next_to_a_voiced_stretch_not_far_from_it():
    """Reference voiced in frames 40-80 only. A sine in the output over frames 82-88 (within
    EDGE_FRAMES = 10 of the last voiced frame) is a distance; the same sine over 110-116 is not."""
    reference = sine(135.0) * ((torch.arange(2048) >= 40 * HOP) & (torch.arange(2048) < 80 * HOP))
    f0 = torch.zeros(1, frames())
    f0[0, 40:80] = 135.0

    def burst(first: int, last: int) -> torch.Tensor:
        return sine(135.0) * ((torch.arange(2048) >= first * HOP) & (torch.arange(2048) < last * HOP))

    assert float(periodicity_distance(reference + burst(110, 117), reference, f0, FS, HOP)) < 1e-5
    assert float(periodicity_distance(reference + burst(82, 89), reference, f0, FS, HOP)) > 0.1


def test_periodicity_weight_adds_the_low_bands_periodicity_distance(speech_clip):
    fs = 22050
    clean = torch.from_numpy(speech_clip[fs: fs + 8192]).float()[None]  # a second in: speech
    noisy = clean + 0.05 * torch.randn(1, 8192, generator=torch.Generator().manual_seed(1))
    plain = float(SamplerLoss("WG-6").low_band_distance(noisy, clean))
    weighted = float(SamplerLoss("WG-6", periodicity_weight=3.0, fs=fs).low_band_distance(noisy, clean))
    low_fs = fs / DECIMATION
    f0 = reference_f0(low_band(clean), low_fs, PHASE_FFT_SIZE // 8)
    assert (f0 > 0).any()
    expected = plain + 3.0 * float(periodicity_distance(low_band(noisy), low_band(clean), f0, low_fs,
                                                        PHASE_FFT_SIZE // 8))
    assert weighted > plain + 0.05 and abs(weighted - expected) < 1e-5, (plain, weighted, expected)


def test_periodicity_distance_has_gradients_for_the_estimate_only():
    reference = sine(135.0).requires_grad_(True)
    estimate = (sine(135.0) + noise()).requires_grad_(True)
    distance = periodicity_distance(estimate, reference, torch.full((1, frames()), 135.0), FS, HOP)
    distance.backward()
    assert estimate.grad is not None and float(estimate.grad.abs().sum()) > 0
    assert reference.grad is None  # the target is fixed


def test_periodicity_weight_without_pyworld_is_one_line_naming_the_key(monkeypatch):
    from specgrad_plugin.data import SpecGradInputError

    monkeypatch.setitem(__import__("sys").modules, "pyworld", None)
    with pytest.raises(SpecGradInputError, match="sampler_loss_periodicity_weight needs pyworld"):
        SamplerLoss("WG-6", periodicity_weight=1.0)
