"""The training voices (bench/train_voices.py) without the network: never a voice of the
unseen-voice dev set, only full-band sources, clips cut to length and brought to level."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specgrad_plugin.synthetic import speech_like
from tests.conftest import load_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "train_voices.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(BENCH)


def test_training_voices_are_not_the_dev_sets(bench):
    dev = bench.dev_set_languages()
    assert {"ru", "el", "ca", "uk", "sr"} <= dev  # read from unseen_voices.CLIPS, not restated
    assert not {bench.language(v) for v in bench.VOICES} & dev
    assert bench.language("sr@ijekavianlatin") == "sr"


def words(folder: Path, rates, seconds: float = 3.0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, fs in enumerate(rates):
        sf.write(folder / f"w{i}.ogg", speech_like(seconds, fs, seed=i) * 0.3, fs, format="OGG", subtype="VORBIS")


def test_voice_clips_cut_level_dither_and_skip_narrow_band_sources(bench, tmp_path):
    folder = tmp_path / "xx"
    # 3 s Vorbis words: two fit in one 8 s clip; 22.05 kHz is full band, 16 kHz is not
    words(folder, [44100, 22050, 16000, 44100, 44100, 22050, 44100])
    clips = bench.voice_clips(folder, refused=set(), target_rms=0.05, rng=np.random.default_rng(0))
    assert [[f.name for f in files] for _, files, _ in clips] == [["w0.ogg", "w1.ogg"], ["w3.ogg", "w4.ogg"],
                                                                  ["w5.ogg", "w6.ogg"]]
    for wav, _, gain in clips:
        assert len(wav) == pytest.approx(6.0 * bench.FS, abs=4)
        assert bench.unseen_voices.active_rms(wav, bench.FS) == pytest.approx(0.05, rel=1e-3)
        assert gain > 0
    # more words than three clips take: the cap, not the words, ends the list
    more = tmp_path / "yy"
    words(more, [22050] * 8)
    assert len(bench.voice_clips(more, set(), 0.05, np.random.default_rng(0))) == bench.CLIPS_PER_VOICE == 3
    # a short last clip is kept
    few = tmp_path / "zz"
    words(few, [22050] * 3)
    assert [len(files) for _, files, _ in bench.voice_clips(few, set(), 0.05, np.random.default_rng(0))] == [2, 1]


def test_voice_clips_are_dithered(bench, tmp_path):
    folder = tmp_path / "xx"
    folder.mkdir()
    x = np.zeros(22050)
    x[5000:15000] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(10000) / 22050)
    sf.write(folder / "w.wav", x, 22050, subtype="FLOAT")
    (wav, _, _), = bench.voice_clips(folder, set(), 0.05, np.random.default_rng(0))
    silence = wav[:4000]
    assert 0 < np.abs(silence).max() <= 2 * bench.unseen_voices.DITHER_LSB


def test_no_full_band_source_is_an_error(bench, tmp_path):
    folder = tmp_path / "xx"
    words(folder, [16000, 8000])
    with pytest.raises(SystemExit, match=r"xx: no \.ogg or \.wav source at >= 22050 Hz"):
        bench.voice_clips(folder, set(), 0.05, np.random.default_rng(0))


def test_files_of_the_dev_languages_are_refused_by_their_bytes(bench, tmp_path):
    sounds = tmp_path / "sounds"
    words(sounds / "sr@latin", [22050])  # a dev language under another folder name
    words(sounds / "de", [44100, 44100])
    (sounds / "sr.soundtheme").write_text("not a folder")
    refused = bench.refused_hashes(sounds, {"sr"})
    assert refused == {bench.unseen_voices.short_hash(sounds / "sr@latin" / "w0.ogg")}
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "other_name.ogg").write_bytes((sounds / "sr@latin" / "w0.ogg").read_bytes())
    with pytest.raises(SystemExit, match="other_name.ogg"):
        bench.voice_clips(copy, refused, 0.05, np.random.default_rng(0))
    assert len(bench.voice_clips(sounds / "de", refused, 0.05, np.random.default_rng(0))) == 1


def test_trim_silence_keeps_the_word_and_a_pad_of_each_edge(bench):
    fs = bench.FS
    frame = int(0.02 * fs)
    word = 0.3 * np.sin(2 * np.pi * 150 * np.arange(20 * frame) / fs)
    quiet = 3e-3 * word[: 5 * frame]  # 50 dB below: cut at 40 dB, kept at 60 dB
    x = np.concatenate([np.zeros(30 * frame), quiet, word, np.zeros(40 * frame)])
    trimmed = bench.trim_silence(x, fs, floor_db=40.0, pad_s=0.05)
    pad = int(0.05 * fs)
    start = 35 * frame - pad
    assert np.array_equal(trimmed, x[start: 55 * frame + pad])
    kept = bench.trim_silence(x, fs, floor_db=60.0, pad_s=0.0)
    assert np.array_equal(kept, x[30 * frame: 55 * frame])
    assert np.array_equal(bench.trim_silence(np.zeros(fs), fs, 40.0), np.zeros(fs))  # nothing loud: unchanged


def test_voice_clips_trim_each_word_before_joining(bench, tmp_path):
    folder = tmp_path / "xx"
    folder.mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(11025) / 22050)
    for i in range(4):  # 0.5 s words inside 3 s of digital silence each
        sf.write(folder / f"w{i}.wav", np.concatenate([np.zeros(22050), tone, np.zeros(33075)]), 22050,
                 subtype="FLOAT")
    whole = bench.voice_clips(folder, set(), 0.05, np.random.default_rng(0))
    trimmed = bench.voice_clips(folder, set(), 0.05, np.random.default_rng(0), trim_db=40.0)
    assert [len(f) for _, f, _ in whole] == [2, 2] and len(whole[0][0]) == 6 * 22050
    (wav, files, _), = trimmed  # all four words now fit in one 8 s clip
    assert len(files) == 4 and len(wav) == pytest.approx(4 * (0.5 + 0.1) * 22050, abs=4 * 441)
