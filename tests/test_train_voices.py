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
    dev = bench.dev_set_folders()
    assert {"ru", "el", "ca", "uk", "sr"} <= dev  # read from unseen_voices.CLIPS, not restated
    assert not set(bench.VOICES) & {d.split("@")[0] for d in dev}


def test_voice_clips_cut_level_and_skip_narrow_band_sources(bench, tmp_path):
    folder = tmp_path / "xx"
    folder.mkdir()
    for i in range(8):  # 3 s words at 44.1 kHz: two fit in one 8 s clip; the last two past the cap
        sf.write(folder / f"w{i}.wav", speech_like(3.0, 44100, seed=i) * 0.3, 44100)
    sf.write(folder / "narrow.wav", speech_like(3.0, 8000, seed=9) * 0.3, 8000)
    clips = bench.voice_clips(folder, refused=set(), target_rms=0.05, rng=np.random.default_rng(0))
    assert len(clips) == bench.CLIPS_PER_VOICE == 3
    for wav, files in clips:
        assert len(files) == 2 and all(f.name != "narrow.wav" for f in files)
        assert len(wav) == pytest.approx(6.0 * bench.FS, abs=2)
        assert bench.active_rms(wav, bench.FS) == pytest.approx(0.05, rel=1e-3)
    assert [f.name for _, fs in clips for f in fs] == [f"w{i}.wav" for i in range(6)]


def test_a_file_of_the_dev_set_is_refused(bench, tmp_path):
    folder = tmp_path / "xx"
    folder.mkdir()
    sf.write(folder / "w.wav", speech_like(1.0, 22050, seed=0) * 0.3, 22050)
    with pytest.raises(SystemExit, match="w.wav"):
        bench.voice_clips(folder, refused={bench.file_hash(folder / "w.wav")}, target_rms=0.05,
                          rng=np.random.default_rng(0))
