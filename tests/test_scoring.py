"""scoring's F0 metrics (ESPnet's definitions): nothing for a signal against itself, the
pitch ratio for a transposed one, and the voiced share for one that lost its voicing; and
the share of a signal that repeats every frame."""

import numpy as np
import pytest

from specgrad_plugin.scoring import FRAME_BLOCK, aligned_f0, f0_errors, frame_synchronous_share, mcd_and_f0

FS = 22050


def voiced_then_silent(f0: float, seconds: float = 0.8) -> np.ndarray:
    """Harmonics at f0 for `seconds`, then as long a near-silence (voiced, then unvoiced frames)."""
    t = np.arange(int(seconds * FS)) / FS
    voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * 0.2
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    return np.concatenate([voiced, quiet]).astype(np.float32)


def test_a_signal_against_itself_scores_nothing():
    x = voiced_then_silent(150.0)
    scores = mcd_and_f0(x, x, FS)
    assert scores == {"mcd": 0.0, "log_f0_rmse": 0.0, "vuv_error": 0.0}
    ref_f0, _, _ = aligned_f0(x, x, FS)
    assert 0.3 < np.mean(ref_f0 > 0) < 0.7 and np.median(ref_f0[ref_f0 > 0]) == pytest.approx(150, rel=0.03)
    # tracks the caller already has are used as given, on the same DTW path
    from specgrad_plugin.scoring import world_f0

    track = world_f0(x, FS)
    given, silent, _ = aligned_f0(x, x, FS, tracks=(track, np.zeros_like(track)))
    assert np.array_equal(given, ref_f0) and not silent.any()
    # so is the reference's mel-cepstrum: the same one gives the same score, another one is used
    from specgrad_plugin.scoring import mel_cepstra

    mcep = mel_cepstra(x, FS)
    assert aligned_f0(x, x, FS, ref_mcep=mcep)[2] == 0.0
    assert aligned_f0(x, x, FS, ref_mcep=mcep + 0.1)[2] > 0.0


def test_a_transposed_signal_scores_its_pitch_ratio():
    scores = mcd_and_f0(voiced_then_silent(150.0), voiced_then_silent(165.0), FS)
    assert scores["log_f0_rmse"] == pytest.approx(np.log(1.1), rel=0.15)
    assert scores["vuv_error"] < 0.05


def test_f0_errors_count_voicing_on_every_frame_and_pitch_on_frames_voiced_in_both():
    ref = np.array([100.0, 100.0, 0.0, 0.0, 200.0])
    gen = np.array([100.0, 0.0, 0.0, 120.0, 100.0])
    errors = f0_errors(ref, gen)
    assert errors["vuv_error"] == pytest.approx(2 / 5)
    assert errors["log_f0_rmse"] == pytest.approx(np.sqrt(np.log(2) ** 2 / 2))
    assert np.isnan(f0_errors(ref, np.zeros(5))["log_f0_rmse"])


def test_frame_synchronous_share_is_one_for_a_frame_rate_buzz_and_chance_for_a_voice():
    hop = 256
    noise = np.random.default_rng(0).standard_normal(4 * FRAME_BLOCK * hop)
    assert frame_synchronous_share(noise, hop) == pytest.approx(1 / FRAME_BLOCK, rel=0.15)
    buzz = np.tile(np.random.default_rng(1).standard_normal(hop), 4 * FRAME_BLOCK)  # the same every frame
    assert frame_synchronous_share(buzz, hop) == pytest.approx(1.0)
    voice = voiced_then_silent(120.0, seconds=2.0)  # a 120 Hz voice: harmonics off the 86 Hz grid
    assert frame_synchronous_share(voice, hop) < 2 / FRAME_BLOCK
    # a buzz at a tenth of the voice's energy is most of what repeats per frame
    mixed = noise + np.sqrt(0.1) * buzz
    assert frame_synchronous_share(mixed, hop) > 0.08
    # only whole blocks count, at any hop
    tail = np.random.default_rng(2).standard_normal(3 * 100 - 1)
    assert frame_synchronous_share(np.concatenate([np.tile(buzz[:100], 2 * FRAME_BLOCK), tail]), 100) \
        == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one block"):
        frame_synchronous_share(noise[: hop * FRAME_BLOCK - 1], hop)


def test_harvest_reads_the_pitch_and_the_silence_on_dios_frames():
    from specgrad_plugin.scoring import harvest_f0, world_f0

    x = voiced_then_silent(150.0)
    x[len(x) // 2:] = 0.0  # Harvest's voicing does not look at the level, so true silence
    harvest, dio = harvest_f0(x, FS), world_f0(x, FS)
    assert harvest.shape == dio.shape
    voiced = harvest > 0
    assert 0.3 < np.mean(voiced) < 0.7 and np.median(harvest[voiced]) == pytest.approx(150, rel=0.03)
    assert not voiced[-len(voiced) // 3:].any()  # the silent half stays unvoiced


def test_every_result_file_under_docs_is_strict_json():
    """NaN and Infinity are not JSON: jq and JavaScript refuse a file that holds them, so a
    score that is undefined is written as null (scoring.scores_to_json)."""
    import json
    from pathlib import Path

    def refuse(name):
        raise ValueError(f"bare {name}")

    docs = Path(__file__).resolve().parents[1] / "docs"
    bad = []
    for path in sorted(docs.rglob("*.json*")):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        try:
            for line in filter(str.strip, lines):
                json.loads(line, parse_constant=refuse)
        except ValueError as e:
            bad.append(f"{path.relative_to(docs)}: {e}")
    assert not bad, bad
