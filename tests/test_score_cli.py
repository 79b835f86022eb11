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
    text = (tmp_path / "out" / "scores.json").read_text()
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"scores.json holds bare {name}"))
    assert all(strict["utterances"]["short"][name] is None for name in ("pesq", "stoi", "mr_stft"))
    result = scoring.scores_from_json(text)
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


def test_a_run_stopped_while_scoring_leaves_out_as_it_was(tmp_path, speech_clip, monkeypatch):
    """The second utterance's scoring fails (as an interrupt would) after the first one's plot:
    --out keeps only what it held (no staging folder left in it), and one the run made is gone."""
    ref = write_set(tmp_path / "ref", {"a": speech_clip, "b": speech_clip})
    gen = write_set(tmp_path / "gen", {"a": speech_clip, "b": speech_clip})
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.json").write_text("earlier run")
    real, calls = score.score, []

    def stopped_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(score, "score", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["scores.json"]
    assert (out / "scores.json").read_text() == "earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "out", "ref"]
    calls.clear()
    with pytest.raises(KeyboardInterrupt):  # an --out the run would have made is not left behind
        score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(tmp_path / "new" / "out")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "new", "out", "ref"]
    assert list((tmp_path / "new").iterdir()) == []
    (tmp_path / "new").rmdir()
    monkeypatch.setattr(score, "score", real)
    assert score.main(["--ref", str(ref), "--gen", str(gen), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "scores.json", "scores.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "out", "ref"]


def test_an_audio_file_given_as_its_list_is_one_line(tmp_path, speech_clip, capsys):
    ref = write_set(tmp_path / "ref", {"a": speech_clip})
    assert score.main(["--ref", str(tmp_path / "ref" / "a.wav"), "--gen", str(ref), "--out",
                       str(tmp_path / "out")]) == 2
    assert "a.wav: not a text file; expected a Kaldi-style list" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_scores_whose_packages_are_missing_are_named_not_dropped_silently(tmp_path, speech_clip, capsys,
                                                                        monkeypatch):
    """Without pesq and pyworld (a plain install, no eval extra) the other scores are written and
    one line says which are not and what installs them."""
    import sys

    monkeypatch.setitem(sys.modules, "pesq", None)  # import pesq then raises ImportError
    monkeypatch.setitem(sys.modules, "pyworld", None)
    ref = write_set(tmp_path / "ref", {"a": speech_clip})
    assert score.main(["--ref", str(ref), "--gen", str(ref), "--out", str(tmp_path / "out"), "--plot", "false"]) == 0
    err = capsys.readouterr().err
    assert "not scored: pesq (needs pesq); mcd, log_f0_rmse, vuv_error (needs pyworld)" in err
    assert "pip install 'specgrad_plugin[eval]'" in err
    written = scoring.scores_from_json((tmp_path / "out" / "scores.json").read_text())["mean"]
    assert {"stoi", "mel_l1", "mr_stft"} <= set(written) and not {"pesq", "vuv_error", "mcd"} & set(written)
    # TTS output scores the DTW metrics alone: without their packages there is nothing to score
    assert score.main(["--ref", str(ref), "--gen", str(ref), "--out", str(tmp_path / "tts"), "--aligned",
                       "false"]) == 2
    err = capsys.readouterr().err
    assert "error: --aligned false scores mcd, log_f0_rmse, vuv_error only, which need pyworld" in err
    assert "note:" not in err and not (tmp_path / "tts").exists()


def test_stoi_and_mr_stft_are_nan_exactly_where_undefined(speech_clip):
    """STOI: silence and a clip too short for pystoi are NaN, speech is a score; MR-STFT:
    1024 samples are too few for auraloss's 2048-point padding, 1025 are enough."""
    silence = np.zeros(22050, dtype=np.float32)
    assert math.isnan(scoring.stoi(silence, silence, 22050)) and math.isnan(scoring.stoi(speech_clip[:800],
                                                                                        speech_clip[:800], 22050))
    assert scoring.stoi(speech_clip, speech_clip, 22050) > 0.99
    assert math.isnan(scoring.mr_stft(speech_clip[:1024], speech_clip[:1024]))
    assert math.isfinite(scoring.mr_stft(speech_clip[:1025], speech_clip[:1025]))


def test_scores_json_round_trip_writes_null_for_what_is_not_a_number():
    """NaN and infinities become null at any depth (lists included) and read back as NaN;
    numbers, strings and ints come back as they were."""
    scores = {"mean": {"pesq": 3.25, "stoi": float("nan")}, "clips": {"a": {"f0": [1.5, float("inf"), 2],
                                                                            "note": "x", "n": 3}}}
    text = scoring.scores_to_json(scores)
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert strict["mean"]["stoi"] is None and strict["clips"]["a"]["f0"] == [1.5, None, 2]
    back = scoring.scores_from_json(text)
    assert back["mean"]["pesq"] == 3.25 and math.isnan(back["mean"]["stoi"])
    assert back["clips"]["a"]["f0"][0] == 1.5 and math.isnan(back["clips"]["a"]["f0"][1])
    assert back["clips"]["a"]["n"] == 3 and back["clips"]["a"]["note"] == "x"


def test_aligned_scores_refuse_a_generated_clip_of_another_length(tmp_path, speech_clip, capsys):
    """A vocoder that drops the last fifth of a clip must not score PESQ 4.6 on what is left:
    aligned scoring wants the lengths within 2 hops (a vocoder's output is whole frames), and
    names both files; --aligned false (TTS, DTW) takes any length."""
    ref = write_set(tmp_path / "ref", {"a": speech_clip})
    cut = write_set(tmp_path / "cut", {"a": speech_clip[: int(0.8 * len(speech_clip))]})
    assert score.main(["--ref", str(ref), "--gen", str(cut), "--out", str(tmp_path / "out"), "--plot", "false"]) == 2
    err = capsys.readouterr().err
    assert "samples against the reference's" in err and "within 2 hops (512 samples)" in err
    assert not (tmp_path / "out").exists()
    whole_frames = write_set(tmp_path / "frames", {"a": speech_clip[: len(speech_clip) // 256 * 256 + 256 - 512]})
    assert score.main(["--ref", str(ref), "--gen", str(whole_frames), "--out", str(tmp_path / "ok"),
                       "--plot", "false"]) == 0


def test_a_silent_output_scores_pesq_at_its_floor_not_a_crash(speech_clip):
    """pesq divides by the output's power: an all-zero output crashed it. It now scores as
    near-silence (PESQ's floor), not NaN, which a mean would leave out."""
    value = scoring.pesq_wb(speech_clip, np.zeros_like(speech_clip), 22050)
    assert 1.0 <= value < 1.1


def test_bad_options_and_outputs_are_one_line(tmp_path, speech_clip, capsys):
    ref = write_set(tmp_path / "ref", {"a": speech_clip})
    with pytest.raises(SystemExit):
        score.main(["--ref", str(ref), "--gen", str(ref), "--out", str(tmp_path / "o"), "--fs", "0"])
    assert "--fs 0: expected a sampling rate in Hz, above 0" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert score.main(["--ref", str(ref), "--gen", str(ref), "--out", str(tmp_path / "afile"), "--plot", "false"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out {tmp_path / 'afile'}: a file, expected a folder for scores.json and scores.md\n"


def test_the_scores_packages_are_the_eval_extra():
    """scoring.EVAL_PACKAGES, which names what a missing score needs, lists setup.py's eval extra."""
    import re
    from pathlib import Path

    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    extra = re.search(r"eval_requires = \[(.*?)\]", setup, re.S).group(1)
    pinned = set(re.findall(r'"([A-Za-z0-9_]+)==', extra))
    assert {p for packages in scoring.EVAL_PACKAGES.values() for p in packages} == pinned
