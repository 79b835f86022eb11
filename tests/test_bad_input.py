"""Bad audio through the decode CLI and the training CLI: one line each, the rest finishes."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from specgrad_plugin.bin import decode

from .conftest import common_args


def make_inputs(root, clip):
    root.mkdir()
    cases = {
        "good_int16": lambda p: sf.write(p, clip, 22050, subtype="PCM_16"),
        "good_float": lambda p: sf.write(p, clip, 22050, subtype="FLOAT"),
        "clipped": lambda p: sf.write(p, np.clip(clip * 20, -1, 1), 22050, subtype="PCM_16"),
        "silence": lambda p: sf.write(p, np.zeros(22050), 22050, subtype="PCM_16"),
        "empty": lambda p: sf.write(p, np.zeros(0), 22050, subtype="PCM_16"),
        "corrupt": lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7),
        "text": lambda p: p.write_text("this is not audio"),
        "stereo": lambda p: sf.write(p, np.stack([clip, clip], axis=1), 22050, subtype="PCM_16"),
        "rate16k": lambda p: sf.write(p, clip[:16000], 16000, subtype="PCM_16"),
        "short": lambda p: sf.write(p, clip[:100], 22050, subtype="PCM_16"),
        # the whole clip's mel pads 512 samples each side: two hops are too few, three enough
        "two_hops": lambda p: sf.write(p, clip[:512], 22050, subtype="PCM_16"),
        "three_hops": lambda p: sf.write(p, clip[:768], 22050, subtype="PCM_16"),
    }
    for name, write in cases.items():
        write(root / f"{name}.wav")
    lines = [f"{name} {root / f'{name}.wav'}" for name in sorted(cases)] + [f"missing {root / 'missing.wav'}"]
    (root / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    return root / "wav.scp"


EXPECTED = {
    "corrupt": "not a readable audio file", "text": "not a readable audio file",
    "missing": "missing.wav: file not found",
    "stereo": "2 channels, expected mono", "rate16k": "16000 Hz, expected 22050 Hz", "short": "100 samples",
    "empty": "0 samples", "two_hops": "512 samples, expected at least 768",
}


def test_decode_reports_each_bad_wav_on_one_line(tmp_path, speech_clip, trained_vocoder):
    scp = make_inputs(tmp_path / "in", speech_clip[:22050])
    out = tmp_path / "out"
    rc = decode.main(["--model_file", str(trained_vocoder), "--data_path_and_name_and_type", f"{scp},speech,sound",
                      "--output_dir", str(out), "--schedule", "WG-3", "--batch_size", "3"])
    assert rc == 1
    failed = dict(line.split(" ", 1) for line in (out / "failed.txt").read_text().splitlines())
    assert sorted(failed) == sorted(EXPECTED)
    for uid, message in EXPECTED.items():
        assert message in failed[uid] and uid in failed[uid], (uid, failed[uid])
        assert "\n" not in failed[uid] and "Traceback" not in failed[uid]
    for uid in ("good_int16", "good_float", "clipped", "silence"):
        wav, fs = sf.read(out / "wav" / f"{uid}.wav")
        assert fs == 22050 and len(wav) == (22050 // 256) * 256 and np.isfinite(wav).all()
    wav, _ = sf.read(out / "wav" / "three_hops.wav")
    assert len(wav) == 768 and np.isfinite(wav).all()
    # Another rate is vocoded only when asked.
    assert decode.main(["--model_file", str(trained_vocoder), "--output_dir", str(out), "--resample",
                        "--data_path_and_name_and_type", f"{scp},speech,sound", "--schedule", "WG-3"]) == 1
    assert sf.info(out / "wav" / "rate16k.wav").frames == (22050 // 256) * 256


def test_training_refuses_bad_wavs_before_any_work(tmp_path, speech_clip, data):
    scp = make_inputs(tmp_path / "in", speech_clip[:22050])
    args = common_args(data, tmp_path / "exp")
    args[args.index("--train_data_path_and_name_and_type") + 1] = f"{scp},speech,sound"
    result = subprocess.run([sys.executable, "-m", "specgrad_plugin.bin.train", "--collect_stats", "true", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    for uid in EXPECTED:
        assert f"{uid}:" in error[0], uid
    assert f"{len(EXPECTED)} of 13 utterances cannot be used" in error[0]


def test_a_nan_wav_in_training_names_its_file_and_list(tmp_path, speech_clip, data):
    """NaN samples pass the header checks and are found when the utterance is read: the
    error names the file and the wav.scp that lists it, not the utterance id alone."""
    (tmp_path / "in").mkdir()
    good, bad = tmp_path / "in" / "good.wav", tmp_path / "in" / "nan.wav"
    sf.write(good, speech_clip[:22050], 22050, subtype="FLOAT")
    sf.write(bad, np.full(22050, np.nan, np.float32), 22050, subtype="FLOAT")
    scp = tmp_path / "in" / "wav.scp"
    scp.write_text(f"good {good}\nnanutt {bad}\n")
    args = common_args(data, tmp_path / "exp")
    args[args.index("--train_data_path_and_name_and_type") + 1] = f"{scp},speech,sound"
    result = subprocess.run([sys.executable, "-m", "specgrad_plugin.bin.train", "--collect_stats", "true", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"utterance nanutt ({bad} in {scp}): NaN/inf samples" in result.stderr


def test_decode_refuses_a_file_of_several_mels_an_empty_list_a_bad_seed_and_an_unwritable_output(
        tmp_path, trained_vocoder, capsys):
    """A (2, K, M) .npy is two utterances under one name: listed as failed, not cut to its
    first. An empty list, a seed no generator takes and an --output_dir that is a file stop
    with one line before anything is written."""
    mel = np.full((12, 80), -3.0, np.float32)
    np.save(tmp_path / "good.npy", mel)
    np.save(tmp_path / "pair.npy", np.stack([mel, mel]))
    (tmp_path / "feats.scp").write_text(f"good {tmp_path / 'good.npy'}\npair {tmp_path / 'pair.npy'}\n")
    common = ["--model_file", str(trained_vocoder), "--schedule", "WG-3"]
    feats = ["--data_path_and_name_and_type", f"{tmp_path / 'feats.scp'},feats,npy"]
    assert decode.main(common + feats + ["--output_dir", str(tmp_path / "out")]) == 1
    failed = (tmp_path / "out" / "failed.txt").read_text()
    assert "pair" in failed and "2 mels in one item" in failed
    assert sorted(p.name for p in (tmp_path / "out" / "wav").iterdir()) == ["good.wav"]
    capsys.readouterr()
    (tmp_path / "empty.scp").write_text("\n")
    (tmp_path / "afile").write_text("x")
    cases = [
        (["--data_path_and_name_and_type", f"{tmp_path / 'empty.scp'},speech,sound", "--output_dir",
          str(tmp_path / "o1")], "empty.scp: no utterances", tmp_path / "o1"),
        (feats + ["--seed", str(2**64), "--output_dir", str(tmp_path / "o2")], "--seed: 18446744073709551616",
         tmp_path / "o2"),
        (feats + ["--output_dir", str(tmp_path / "afile")], f"{tmp_path}/afile is a file; expected a folder", None),
    ]
    for args, message, out in cases:
        assert decode.main(common + args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and (out is None or not out.exists()), err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("streaming", [False, True])
def test_decode_names_each_utterance_whose_mel_it_warns_about(tmp_path, streaming):
    """Of three mels the first and last are 30 dB quieter than the training mels, a departure
    the vocoder alone names once per kind: decode names each utterance, at decode's line,
    offline and streamed. The schedule's warning (it starts below the trained levels) is no
    utterance's and comes once."""
    import warnings

    from specgrad_plugin.checks import InputMelWarning
    from specgrad_plugin.vocoder import SpecGradVocoder

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame"))
    n_mels = vocoder.cfg.features.n_mels
    vocoder.set_mel_statistics(torch.full((n_mels,), -2.0), torch.full((n_mels,), 0.5))
    vocoder.save(tmp_path / "c.pt")
    lines = []
    for uid, value in (("quiet1", -2.9), ("near", -2.0), ("quiet2", -2.9)):
        np.save(tmp_path / f"{uid}.npy", np.full((8, n_mels), value, np.float32))
        lines.append(f"{uid} {tmp_path / f'{uid}.npy'}\n")
    (tmp_path / "feats.scp").write_text("".join(lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert decode.main(["--model_file", str(tmp_path / "c.pt"), "--schedule", "0.5,0.9,0.99", "--output_dir",
                            str(tmp_path / "out"), "--data_path_and_name_and_type",
                            f"{tmp_path / 'feats.scp'},feats,npy"] + ["--streaming"] * streaming) == 0
    level = [w for w in caught if "dB below the training" in str(w.message)]
    assert sorted(str(w.message).split(":")[0] for w in level) == ["utterance quiet1", "utterance quiet2"]
    assert {w.filename for w in level} == {decode.__file__} and {w.category for w in level} == {InputMelWarning}
    schedule = [str(w.message) for w in caught if "outside what the network learnt" in str(w.message)]
    assert len(schedule) == 1 and not schedule[0].startswith("utterance"), schedule
