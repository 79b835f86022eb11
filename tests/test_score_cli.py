"""bin.score on inputs a user meets: clips too short for a score, and bad files."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from specgrad_plugin import scoring
from specgrad_plugin.bin import score


def write_set(root, clips):
    root.mkdir(parents=True)
    for uid, wav in clips.items():
        sf.write(root / f"{uid}.wav", wav, 22050, subtype="FLOAT")
    (root / "wav.scp").write_text("".join(f"{uid} {root / f'{uid}.wav'}\n" for uid in clips))
    return root / "wav.scp"


def test_a_score_undefined_on_a_short_clip_is_nan_and_left_out_of_the_mean(tmp_path, speech_clip):
    """800 samples: mel-L1 is defined, PESQ, STOI and MR-STFT are not (pesq: under 1/4 s; pystoi:
    too few frames, where it returns 1e-5; auraloss: 1024 samples of padding). Each is NaN
    there, and the means are those of the long clip alone."""
    noisy = speech_clip + 0.01 * np.random.default_rng(0).standard_normal(len(speech_clip)).astype(np.float32)
    ref = write_set(tmp_path / "ref", {"long": speech_clip, "short": speech_clip[:800]})
    gen = write_set(tmp_path / "gen", {"long": noisy, "short": noisy[:800]})
    assert score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(tmp_path / "out"), "--plot", "false"]) == 0
    result = json.loads((tmp_path / "out" / "scores.json").read_text())
    short, long = result["utterances"]["short"], result["utterances"]["long"]
    for name in ("pesq", "stoi", "mr_stft"):
        assert math.isnan(short[name]) and not math.isnan(long[name]), name
        assert result["mean"][name] == long[name], name
    assert long["stoi"] > 0.9 and math.isfinite(short["mel_l1"])


@pytest.mark.parametrize("short_side", ["ref", "gen"])
def test_a_bad_file_stops_scoring_before_anything_is_written(tmp_path, speech_clip, capsys, short_side):
    """Either side's bad file; the first utterance is fine, so a scorer that checks as it goes
    would have written its plot."""
    b = {"ref": speech_clip, "gen": speech_clip}
    b[short_side] = speech_clip[:512]
    ref = write_set(tmp_path / "ref", {"a": speech_clip, "b": b["ref"]})
    gen = write_set(tmp_path / "gen", {"a": speech_clip, "b": b["gen"]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.json").write_text("earlier run")
    assert score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "utterance b:" in err and "512 samples, expected at least 768" in err and "nothing written" in err
    assert sorted(p.name for p in out.iterdir()) == ["scores.json"]  # no a.png, the earlier run's file as it was
    assert (out / "scores.json").read_text() == "earlier run"


def test_stoi_and_mr_stft_are_nan_exactly_where_undefined(speech_clip):
    """STOI: silence and a clip too short for pystoi are NaN, speech is a score; MR-STFT:
    1024 samples are too few for auraloss's 2048-point padding, 1025 are enough."""
    silence = np.zeros(22050, dtype=np.float32)
    assert math.isnan(scoring.stoi(silence, silence, 22050)) and math.isnan(scoring.stoi(speech_clip[:800],
                                                                                        speech_clip[:800], 22050))
    assert scoring.stoi(speech_clip, speech_clip, 22050) > 0.99
    assert math.isnan(scoring.mr_stft(speech_clip[:1024], speech_clip[:1024]))
    assert math.isfinite(scoring.mr_stft(speech_clip[:1025], speech_clip[:1025]))
