"""The unseen-voice bench (bench/unseen_voices.py) without the network: clip conversion from an
unpacked package, group means, and the scoring path on generated clips."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specgrad_plugin.synthetic import speech_like
from tests.conftest import load_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "unseen_voices.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(BENCH)


def test_join_words_keeps_the_leading_words_that_fit(bench):
    fs = 1000
    words = [np.ones(300), 2 * np.ones(400), 3 * np.ones(500)]
    joined, used = bench.join_words(words, fs, max_seconds=0.8)
    assert used == 2 and len(joined) == 700
    assert joined[0] == 0.0 and joined[150] == 1.0 and joined[500] == 2.0  # faded edges, untouched middles
    alone, used = bench.join_words([np.ones(2000)], fs, max_seconds=0.8)
    assert used == 1 and len(alone) == 800 and alone[0] == 1.0  # one piece: cut, not faded


def test_real_clip_from_an_unpacked_raw_file(bench, tmp_path):
    """A headerless 8 kHz file cut into segments comes out at 22.05 kHz, at the target level,
    with its source and rate on record."""
    root = tmp_path / "root"
    raw = root / "usr/share/codec2/raw/voice.raw"
    raw.parent.mkdir(parents=True)
    (speech_like(6.0, 8000, seed=1) * 0.3 * 32767).astype("<i2").tofile(raw)
    clip = bench.Clip("voice_m", "codec2-examples", ("usr/share/codec2/raw/voice.raw",), "male", "8 kHz",
                      raw_fs=8000, segments=((0.0, 1.5), (3.0, 4.0)))
    wav, meta = bench.real_clip(clip, root, "1.0.5-1", target_rms=0.05, rng=np.random.default_rng(0))
    assert len(wav) == pytest.approx(2.5 * bench.FS, abs=4)
    assert bench.active_rms(wav, bench.FS) == pytest.approx(0.05, rel=1e-3)
    assert meta["original_fs"] == 8000 and meta["files"] == ["usr/share/codec2/raw/voice.raw"]
    assert meta["segments_s"] == [[0.0, 1.5], [3.0, 4.0]] and len(meta["sha256"]) == 1
    spectrum = np.abs(np.fft.rfft(wav)) ** 2
    above = spectrum[int(len(spectrum) * 4500 / (bench.FS / 2)):].sum() / spectrum.sum()
    assert above < 1e-4  # an 8 kHz source stays band-limited (resampling filter edge included)


def test_summary_means_per_group_and_variant_skip_undefined_scores(bench):
    entries = [{"utt": "a", "group": bench.GROUPS[0]}, {"utt": "b", "group": bench.GROUPS[0]},
               {"utt": "c", "group": bench.GROUPS[2], "variant": "band16k"}]
    scores = {s: {"a": {"pesq": 2.0, "stoi": 0.9}, "b": {"pesq": float("nan"), "stoi": 0.7},
                  "c": {"pesq": 1.0, "stoi": 0.5}} for s in bench.SYSTEMS}
    summary = bench.summarise(scores, entries)
    assert summary[bench.GROUPS[0]]["clips"] == 2
    assert summary[bench.GROUPS[0]]["specgrad"] == pytest.approx({"pesq": 2.0, "stoi": 0.8})
    assert summary[f"{bench.GROUPS[2]}: band16k"]["griffin_lim"]["stoi"] == pytest.approx(0.5)


def test_score_vocodes_each_clip_from_its_own_mel(bench, tmp_path):
    """Two generated clips, one a -20 dB copy of the other, through the shipped model and
    Griffin-Lim. Griffin-Lim is linear in the mel's magnitude, so the quiet copy's scores
    on level-free metrics equal the loud one's; the table has both groups."""
    data = tmp_path / "data"
    (data / "wav").mkdir(parents=True)
    # a noise floor, as recordings have: no frame at the log-mel clamp, even 20 dB down
    loud = speech_like(1.0, bench.FS, seed=2) + 1e-3 * np.random.default_rng(2).standard_normal(bench.FS)
    entries = []
    for utt, group, wav in (("gen", bench.GROUPS[0], loud), ("gen_m20db", bench.GROUPS[1], 0.1 * loud)):
        path = data / "wav" / f"{utt}.wav"
        sf.write(str(path), wav, bench.FS, subtype="FLOAT")
        entries.append({"utt": utt, "group": group, "path": str(path)})
    (data / "wav.scp").write_text("".join(f"{e['utt']} {e['path']}\n" for e in entries))
    (data / "clips.json").write_text(json.dumps({"clips": entries}))
    out = tmp_path / "out"
    assert bench.main(["score", "--data", str(data), "--out", str(out), "--schedule", "WG-3"]) == 0
    result = json.loads((out / "scores.json").read_text())
    assert set(result["groups"]) == {bench.GROUPS[0], bench.GROUPS[1]}
    loud_gl, quiet_gl = (result["clips"][u]["griffin_lim"] for u in ("gen", "gen_m20db"))
    for metric in ("stoi", "mel_l1", "log_f0_rmse", "vuv_error"):
        assert quiet_gl[metric] == pytest.approx(loud_gl[metric], abs=1e-3), metric
    assert result["clips"]["gen"]["specgrad"]["stoi"] > 0.0
    table = (out / "scores.md").read_text()
    assert "| real voices -20 dB (1) |" in table and "| gen_m20db |" in table
