"""bin.score on inputs a user meets: clips too short for a score, and bad files."""

import json
import math

import numpy as np
import soundfile as sf

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


def test_a_bad_file_stops_scoring_before_anything_is_written(tmp_path, speech_clip, capsys):
    ref = write_set(tmp_path / "ref", {"a": speech_clip, "b": speech_clip})
    gen = write_set(tmp_path / "gen", {"a": speech_clip, "b": speech_clip[:512]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.json").write_text("earlier run")
    assert score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "utterance b:" in err and "512 samples, expected at least 768" in err and "nothing written" in err
    assert sorted(p.name for p in out.iterdir()) == ["scores.json"]  # no a.png, the earlier run's file as it was
    assert (out / "scores.json").read_text() == "earlier run"
