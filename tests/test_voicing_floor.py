"""bench/voicing_floor.py splits voicing and pitch errors into their parts: each part counts
the frames it names, and the parts add up to the totals that scoring reports."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

FLOOR = Path(__file__).resolve().parents[1] / "bench" / "voicing_floor.py"


@pytest.fixture(scope="module")
def floor():
    return load_script(FLOOR)


def test_parts_count_the_frames_they_name(floor):
    # 10 frames: 2 of hum (voiced at 60 Hz in the reference only), one voiced frame lost,
    # one unvoiced frame voiced, one octave error, one 10 % error, 4 exact
    ref = np.array([60, 60, 200, 0, 200, 200, 200, 200, 200, 200], float)
    gen = np.array([0, 0, 0, 150, 400, 220, 200, 200, 200, 200], float)
    parts = floor.f0_parts(ref, gen, fmin=80.0)
    assert parts["vuv_error"] == pytest.approx(0.4)
    assert parts["v_to_uv"] == pytest.approx(0.3) and parts["uv_to_v"] == pytest.approx(0.1)
    assert parts["v_to_uv"] + parts["uv_to_v"] == pytest.approx(parts["vuv_error"])
    assert parts["ref_voiced_below_fmin"] == pytest.approx(0.2)
    assert parts["vuv_error_elsewhere"] == pytest.approx(2 / 8)
    # 6 frames voiced in both: one gross error (x2), five within 20 % (one at x1.1)
    assert parts["gross_pitch_error"] == pytest.approx(1 / 6)
    assert parts["log_f0_rmse"] == pytest.approx(np.sqrt((np.log(2) ** 2 + np.log(1.1) ** 2) / 6))
    assert parts["fine_log_f0_rmse"] == pytest.approx(np.sqrt(np.log(1.1) ** 2 / 5))


def test_lost_voicing_is_counted_at_the_edges_and_inside_a_voiced_stretch(floor):
    # a voiced stretch of 14 frames between unvoiced ones; its first frame (1 from the change)
    # and its 7th and 8th (7 and 7 from the nearest change) come out unvoiced
    ref = np.array([0] * 3 + [200] * 14 + [0] * 3, float)
    gen = ref.copy()
    gen[[3, 9, 10]] = 0
    distance = floor.frames_to_voicing_change(ref > 0)
    assert distance[2] == 1 and distance[3] == 1 and distance[4] == 2 and distance[9] == 7
    parts = floor.f0_parts(ref, gen, fmin=80.0)
    assert parts["lost_at_edges"] == pytest.approx(1 / 4)  # frames 3, 4, 15, 16
    assert parts["lost_inside"] == pytest.approx(2 / 6)  # frames 7 ... 12
    assert np.isnan(floor.f0_parts(np.zeros(5), np.zeros(5), 80.0)["lost_inside"])


def test_voicing_errors_near_a_change_count_both_directions_within_five_frames(floor):
    # the stretch above; errors: frame 0 voiced (3 from the change), frame 3 lost (1), frame 7
    # lost (5 from the nearest change), frames 8 and 9 lost (6, 7): the first three are near one
    ref = np.array([0] * 3 + [200] * 14 + [0] * 3, float)
    gen = ref.copy()
    gen[0] = 200
    gen[[3, 7, 8, 9]] = 0
    parts = floor.f0_parts(ref, gen, fmin=80.0)
    assert parts["vuv_error"] == pytest.approx(5 / 20)
    assert parts["vuv_error_near_changes"] == pytest.approx(3 / 20)
    # no change in the reference: nothing is near one
    assert floor.f0_parts(np.full(6, 200.0), np.zeros(6), 80.0)["vuv_error_near_changes"] == 0


def test_a_20_percent_deviation_is_the_edge_of_a_gross_error(floor):
    ref = np.full(4, 100.0)
    assert floor.f0_parts(ref, np.array([100, 100, 119, 81.0]), 80.0)["gross_pitch_error"] == 0
    assert floor.f0_parts(ref, np.array([100, 100, 121, 79.0]), 80.0)["gross_pitch_error"] == 0.5


def test_parts_keep_scorings_totals(floor):
    from specgrad_plugin.scoring import f0_errors

    rng = np.random.default_rng(0)
    ref = np.where(rng.random(200) < 0.6, rng.uniform(80, 300, 200), 0.0)
    gen = np.where(rng.random(200) < 0.6, ref * rng.uniform(0.5, 2.0, 200), 0.0)
    parts, totals = floor.f0_parts(ref, gen, 80.0), f0_errors(ref, gen)
    assert parts["vuv_error"] == totals["vuv_error"] and parts["log_f0_rmse"] == totals["log_f0_rmse"]
    assert parts["v_to_uv"] + parts["uv_to_v"] == pytest.approx(totals["vuv_error"])


def test_lost_voicing_is_split_at_the_level_floor(floor):
    # 8 frames: the reference voiced in 6, 3 of them (and one unvoiced frame) at the prior's
    # level floor; the output loses 2 of the 3 voiced floor frames and 1 of the 3 others
    ref = np.array([200, 200, 200, 0, 200, 200, 200, 0], float)
    gen = np.array([0, 0, 200, 0, 0, 200, 200, 150], float)
    at_floor = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    parts = floor.level_floor_parts(ref, gen, at_floor)
    assert parts["voiced_at_level_floor"] == pytest.approx(3 / 8)
    assert parts["lost_at_level_floor"] == pytest.approx(2 / 3)
    assert parts["lost_above_level_floor"] == pytest.approx(1 / 3)
    # tracks one frame longer than the mask (DIO's last frame) are cut to it
    assert floor.level_floor_parts(np.append(ref, 200), np.append(gen, 0), at_floor) == parts
    assert np.isnan(floor.level_floor_parts(ref, gen, np.zeros(8, bool))["lost_at_level_floor"])


def test_level_floor_frames_are_read_after_level_matching(floor, speech_clips):
    """The floor mask is the prior's clip on the mel forward() samples from: a copy 20 dB
    quieter is first moved back towards the training level, so it has fewer frames at the
    floor than the quiet copy itself."""
    import torch

    from specgrad_plugin.config import SpecGradConfig
    from specgrad_plugin.features import crop_to_hop
    from specgrad_plugin.priors import level_statistics
    from specgrad_plugin.vocoder import SpecGradVocoder

    vocoder = SpecGradVocoder(SpecGradConfig())
    wav = crop_to_hop(torch.from_numpy(speech_clips[0])[None], 256)
    mel = vocoder.features(wav)[0]
    vocoder.set_mel_statistics(mel.mean(0), mel.std(0))
    vocoder.prior.set_level_statistics(*level_statistics([mel]))

    def clipped(m):
        return vocoder.prior.level(m[None])[0].numpy() <= vocoder.cfg.prior.min_level * (1 + 1e-6)

    at_floor = floor.frames_at_level_floor(vocoder, mel)
    assert 0 < at_floor.sum() < len(at_floor) and np.array_equal(at_floor, clipped(mel))
    quiet = mel - 1.0
    moved, gain = vocoder.match_level(quiet[None])
    assert float(gain) < 0.3  # moved up by more than 10 dB
    matched = floor.frames_at_level_floor(vocoder, quiet)
    assert np.array_equal(matched, clipped(moved[0]))
    assert matched.sum() < clipped(quiet).sum()


def test_errors_are_counted_by_side_and_distance_from_the_nearest_change(floor):
    # 3 unvoiced, 14 voiced, 3 unvoiced frames: changes between frames 2|3 and 16|17
    ref = np.array([0] * 3 + [200] * 14 + [0] * 3, float)
    gen = ref.copy()
    gen[[2, 3, 4, 15, 17]] = [200, 0, 0, 0, 200]  # voiced early, lost after onset, lost before offset, voiced late
    counts = floor.errors_by_distance(ref, gen)
    assert counts["unvoiced before onset 1"] == [1, 1] and counts["unvoiced before onset 3"] == [1, 0]
    assert counts["voiced after onset 1"] == [1, 1] and counts["voiced after onset 2"] == [1, 1]
    assert counts["voiced before offset 2"] == [1, 1] and counts["voiced before offset 1"] == [1, 0]
    assert counts["unvoiced after offset 1"] == [1, 1]
    # frames 8 and 9 are 6-7 from a change (frame 9: 7 after, 8 before): farther
    assert counts["voiced farther"] == [4, 0]  # frames 8, 9, 10, 11
    assert counts["voiced after onset 5"] == [1, 0] and counts["voiced before offset 5"] == [1, 0]
    assert sum(f for f, _ in counts.values()) == 20 and sum(e for _, e in counts.values()) == 5
    # no change at all: every frame is farther
    assert floor.errors_by_distance(np.full(4, 200.0), np.zeros(4)) == {"voiced farther": [4, 4]}


def test_a_turned_phase_moves_every_component_by_the_angle_and_keeps_dc_and_nyquist(floor):
    fs, n = 8000, 8000
    t = np.arange(n) / fs
    dc, nyquist = 0.3, 0.2 * np.cos(np.pi * fs * t)  # a constant and a tone at fs / 2
    x = np.cos(2 * np.pi * 200 * t) + 0.5 * np.cos(2 * np.pi * 450 * t + 1.0)  # whole periods in the clip
    for degrees in (30.0, 90.0, 180.0):
        th = np.deg2rad(degrees)
        want = np.cos(2 * np.pi * 200 * t + th) + 0.5 * np.cos(2 * np.pi * 450 * t + 1.0 + th)
        np.testing.assert_allclose(floor.rotated_phase(x + dc + nyquist, degrees), want + dc + nyquist, atol=1e-9)
    np.testing.assert_allclose(floor.rotated_phase(x, 180.0), -x, atol=1e-9)
    odd = np.random.default_rng(0).standard_normal(999)
    turned = floor.rotated_phase(odd, 90.0)
    assert len(turned) == 999 and abs(turned.mean() - odd.mean()) < 1e-12
    np.testing.assert_allclose(np.abs(np.fft.rfft(turned)), np.abs(np.fft.rfft(odd)), rtol=1e-9, atol=1e-9)


def test_a_random_allpass_keeps_the_magnitude_and_draws_its_phase_at_the_knots(floor):
    fs = 8000
    for n in (8000, 7999):  # even and odd lengths
        x = np.random.default_rng(0).standard_normal(n)
        y = floor.random_allpass(x, fs, 1000.0, np.random.default_rng(1))
        assert len(y) == n
        np.testing.assert_allclose(np.abs(np.fft.rfft(y)), np.abs(np.fft.rfft(x)), rtol=1e-9, atol=1e-9)
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.9  # the waveform did change
    # a tone at a knot comes out turned by that knot's drawn phase, the same for any signal
    n = 8000
    t = np.arange(n) / fs
    drawn = np.random.default_rng(1).uniform(0.0, 2 * np.pi, 4)  # knots at 1000, ..., 4000 Hz (0 at DC)
    tone = floor.random_allpass(np.cos(2 * np.pi * 2000 * t), fs, 1000.0, np.random.default_rng(1))
    np.testing.assert_allclose(tone, np.cos(2 * np.pi * 2000 * t + drawn[1]), atol=1e-9)
    # between two knots the phase is interpolated: 1500 Hz lies halfway between 1000 and 2000 Hz,
    # 250 Hz a quarter of the way from DC's 0 to 1000 Hz (the group delay stays under 1 ms)
    tone = floor.random_allpass(np.cos(2 * np.pi * 1500 * t), fs, 1000.0, np.random.default_rng(1))
    np.testing.assert_allclose(tone, np.cos(2 * np.pi * 1500 * t + (drawn[0] + drawn[1]) / 2), atol=1e-9)
    tone = floor.random_allpass(np.cos(2 * np.pi * 250 * t), fs, 1000.0, np.random.default_rng(1))
    np.testing.assert_allclose(tone, np.cos(2 * np.pi * 250 * t + drawn[0] / 4), atol=1e-9)


def test_a_delay_shifts_the_samples_and_keeps_the_length(floor):
    x = np.arange(1.0, 11.0)
    np.testing.assert_array_equal(floor.delayed(x, 3), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    changed = floor.changed_references(np.random.default_rng(0).standard_normal(22050), 22050, seed=0)
    assert len(changed) == 5 and all(len(w) == 22050 and w.dtype == np.float32 for ws in changed.values() for w in ws)
    draws = next(ws for name, ws in changed.items() if "all-pass" in name)
    assert len(draws) == floor.ALLPASS_DRAWS and not np.allclose(draws[0], draws[1])  # each draw its own phase


def test_a_row_reads_every_track_with_the_tracker_it_is_given(floor):
    """system_row scores the F0 tracks of the tracker passed to it (--f0), on both signals."""
    from specgrad_plugin.config import FeatureConfig
    from specgrad_plugin.features import LogMelExtractor

    features = LogMelExtractor(FeatureConfig())
    t = np.arange(22050) / 22050
    ref = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    wav = ref * 0.5
    seen = []

    def tracker(x, fs, hop):  # voiced at 150 Hz for the reference, unvoiced for the other
        seen.append(x is ref)
        return np.full(len(x) // hop + 1, 150.0 if x is ref else 0.0)

    row = floor.system_row(ref, wav, features, 80.0, track=tracker)
    assert sorted(seen) == [False, True] and row["vuv_error"] == 1.0 and row["v_to_uv"] == 1.0
