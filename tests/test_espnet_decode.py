"""bin.decode on an ESPnet-trained run: wav.scp and feature lists, bad utterances and options,
and reruns into one folder, which keep their wavs only under the settings that made them."""

import argparse
import json

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from specgrad_plugin.bin import decode
from specgrad_plugin.vocoder import SpecGradVocoder


def test_decode_wav_scp_and_feats(tmp_path, trained, data):
    _, out, _ = trained
    _, dev_scp = data
    model_args = ["--model_file", str(out / "latest.pth"), "--schedule", "WG-3"]
    assert decode.main(model_args + ["--data_path_and_name_and_type", f"{dev_scp},speech,sound",
                                     "--output_dir", str(tmp_path / "a")]) == 0
    wav, fs = sf.read(tmp_path / "a" / "wav" / "dev0.wav")
    assert fs == 22050 and len(wav) == (int(1.2 * 22050) // 256) * 256
    assert (tmp_path / "a" / "wav.scp").read_text().startswith("dev0 ")
    mels = {"m1": np.random.randn(7, 80).astype(np.float32) - 3, "m2": np.random.randn(3, 80).astype(np.float32) - 3}
    (tmp_path / "npy").mkdir()
    lines = []
    for uid, mel in mels.items():
        np.save(tmp_path / "npy" / f"{uid}.npy", mel)
        lines.append(f"{uid} {tmp_path / 'npy' / f'{uid}.npy'}\n")
    (tmp_path / "npy" / "feats.scp").write_text("".join(lines))
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as writer:
        for uid, mel in mels.items():
            writer(uid, mel)
    for kind, scp in (("npy", tmp_path / "npy" / "feats.scp"), ("kaldi_ark", tmp_path / "feats.scp")):
        assert decode.main(model_args + ["--data_path_and_name_and_type", f"{scp},feats,{kind}", "--batch_size", "2",
                                         "--output_dir", str(tmp_path / kind)]) == 0
        assert [len(sf.read(tmp_path / kind / "wav" / f"{u}.wav")[0]) for u in mels] == [7 * 256, 3 * 256]


def test_decode_rerun_keeps_its_wavs_only_under_the_same_settings(tmp_path, trained, data, capsys):
    """A rerun skips the wavs it made; one with another schedule, seed or weights is refused
    before it writes anything, as their wavs would be mixed; --overwrite re-vocodes them and
    leaves no wav of the old settings, even where an utterance fails this time."""
    _, out, _ = trained
    _, dev_scp = data
    dev0 = dev_scp.read_text().split()[1]
    quiet, fs = sf.read(dev0)
    sf.write(tmp_path / "u2.wav", quiet[::2], fs // 2)  # needs --resample
    scp = tmp_path / "wav.scp"
    scp.write_text(f"dev0 {dev0}\nu2 {tmp_path / 'u2.wav'}\n")
    common = ["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type", f"{scp},speech,sound",
              "--output_dir", str(tmp_path / "o")]
    wav = tmp_path / "o" / "wav" / "dev0.wav"
    assert decode.main(common + ["--schedule", "WG-3", "--resample"]) == 0
    first = wav.read_bytes()
    # --resample changes no wav that exists: a rerun without it keeps both
    assert decode.main(common + ["--schedule", "WG-3"]) == 0 and wav.read_bytes() == first
    for other, named in ((["--schedule", "WG-6"], "schedule: 'WG-3' then, 'WG-6' now"),
                         (["--schedule", "WG-3", "--seed", "5"], "seed: 0 then, 5 now"),
                         (["--schedule", "WG-3", "--use_ema", "false"], "other weights_sha256"),
                         (["--schedule", "WG-3", "--train_config", str(tmp_path / "c.yaml")],
                          "config inference.mel_gain_iterations: 0 then, 1 now")):
        if "--train_config" in other:
            config = yaml.safe_load((out / "config.yaml").read_text())
            config["model_conf"]["inference"] = {**config["model_conf"].get("inference", {}), "mel_gain_iterations": 1}
            (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        assert decode.main(common + other) == 2
        err = capsys.readouterr().err
        assert named in err and "latest.pth" not in err and wav.read_bytes() == first  # the same --model_file
    assert decode.main(common + ["--schedule", "WG-6", "--overwrite"]) == 1  # u2 fails without --resample
    assert wav.read_bytes() != first and not (tmp_path / "o" / "wav" / "u2.wav").exists()
    assert json.loads((tmp_path / "o" / "decode_settings.json").read_text())["schedule"] == "WG-6"
    assert decode.main(common + ["--schedule", "WG-6"]) == 1  # u2 is tried again, not taken from WG-3
    assert (tmp_path / "o" / "wav.scp").read_text().split()[0::2] == ["dev0"]
    (tmp_path / "o" / "decode_settings.json").unlink()  # wavs of unknown origin are not kept either
    assert decode.main(common + ["--schedule", "WG-6"]) == 2
    assert "decode_settings.json is missing" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [(["--batch_size", "0"], "--batch_size 0: expected at least 1"),
                                            (["--batch_size", "-1"], "--batch_size -1: expected at least 1"),
                                            (["--schedule", ""], "schedule '': expected a non-empty list"),
                                            pytest.param(["--ngpu", "1"], "--ngpu 1: torch sees no CUDA device here",
                                                         marks=pytest.mark.skipif(torch.cuda.is_available(),
                                                                                  reason="a GPU is here"))])
def test_decode_refuses_bad_options_before_writing(tmp_path, trained, data, capsys, flags, message):
    _, out, _ = trained
    _, dev_scp = data
    assert decode.main(["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type",
                        f"{dev_scp},speech,sound", "--output_dir", str(tmp_path / "o")] + flags) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_decode_names_bad_feature_lists(tmp_path, trained, data, capsys):
    _, out, _ = trained
    _, dev_scp = data
    assert decode.main(["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type",
                        f"{dev_scp},feats,npy", "--output_dir", str(tmp_path / "o")]) == 1
    failed = (tmp_path / "o" / "failed.txt").read_text()
    assert "not an .npy array (a wav.scp is TYPE sound" in failed and "allow_pickle" not in failed
    np.save(tmp_path / "m.npy", np.zeros((4, 80), np.float32) - 3)
    (tmp_path / "dup.scp").write_text(f"a {tmp_path / 'm.npy'}\nb {tmp_path / 'gone.npy'}\na {tmp_path / 'm.npy'}\n")
    assert decode.main(["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type",
                        f"{tmp_path / 'dup.scp'},feats,npy", "--output_dir", str(tmp_path / "d")]) == 2
    assert "dup.scp:3: utterance id 'a' already given on line 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    for kind in ("npy", "sound"):  # an array or audio file where its list belongs
        assert decode.main(["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type",
                            f"{tmp_path / 'm.npy'},feats,{kind}", "--output_dir", str(tmp_path / "d")]) == 2
        assert "m.npy: not a text file; expected a Kaldi-style list" in capsys.readouterr().err
    (tmp_path / "dup.scp").write_text(f"a {tmp_path / 'm.npy'}\nb {tmp_path / 'gone.npy'}\n")
    assert decode.main(["--model_file", str(out / "latest.pth"), "--data_path_and_name_and_type",
                        f"{tmp_path / 'dup.scp'},feats,npy", "--output_dir", str(tmp_path / "d")]) == 1
    failed = (tmp_path / "d" / "failed.txt").read_text()
    assert "utterance b: not readable as npy features" in failed and "TYPE sound" not in failed


@pytest.mark.parametrize("module, argv", [
    ("decode", ["--model_tag", "x", "--data_path_and_name_and_type", "a,b,c", "--output_dir", "o"]),
    ("export", ["--model_tag", "x", "--output", "o.onnx"]),
    ("score", ["--ref", "r", "--gen", "g", "--out", "o"]),
])
def test_boolean_flags_refuse_a_typo(module, argv, capsys):
    import importlib

    parser = importlib.import_module(f"specgrad_plugin.bin.{module}").get_parser()
    flag = {"decode": "--use_ema", "export": "--use_ema", "score": "--aligned"}[module]
    assert getattr(parser.parse_args(argv + [flag, "false"]), flag[2:]) is False
    assert getattr(parser.parse_args(argv + [flag, "True"]), flag[2:]) is True
    with pytest.raises(SystemExit):
        parser.parse_args(argv + [flag, "ture"])
    assert "invalid str2bool value: 'ture'" in capsys.readouterr().err


def test_decode_lists_bad_utterances_and_finishes_the_rest(tmp_path, trained):
    _, out, _ = trained
    (tmp_path / "f").mkdir()
    np.save(tmp_path / "f" / "good.npy", np.zeros((4, 80), np.float32) - 3)
    np.save(tmp_path / "f" / "nan.npy", np.full((4, 80), np.nan, np.float32))
    np.save(tmp_path / "f" / "wide.npy", np.zeros((4, 64), np.float32))
    (tmp_path / "f" / "feats.scp").write_text("".join(f"{u} {tmp_path}/f/{u}.npy\n" for u in ("good", "nan", "wide")))
    rc = decode.main(["--model_file", str(out / "latest.pth"), "--output_dir", str(tmp_path / "o"),
                      "--data_path_and_name_and_type", f"{tmp_path}/f/feats.scp,feats,npy"])
    assert rc == 1
    assert (tmp_path / "o" / "wav" / "good.wav").is_file()
    failed = (tmp_path / "o" / "failed.txt").read_text()
    assert "nan utterance nan: 320 non-finite values" in failed
    assert "wide utterance wide: 64 mel bands" in failed


def test_the_shipped_models_record_reads_back(tmp_path):
    """The record keeps the whole config: the shipped model's schedule keys alone, filled with
    today's defaults, would not read as a valid config, and every rerun would be refused."""
    vocoder = SpecGradVocoder.from_pretrained("ljspeech")
    args = argparse.Namespace(model_tag="specgrad/ljspeech", model_file=None, schedule=None, seed=0,
                              streaming=False, stream_chunk_frames=32)
    record = tmp_path / decode.SETTINGS_FILE
    record.write_text(json.dumps(decode.decode_settings(vocoder, args, "cpu")))
    assert decode.settings_change(record, decode.decode_settings(vocoder, args, "cpu")) == ""
    args.seed = 1
    assert "seed: 0 then, 1 now" in decode.settings_change(record, decode.decode_settings(vocoder, args, "cpu"))
    args.seed = 0  # the device draws the noise: CUDA's generator gives other wavs for the same seed
    on_gpu = decode.decode_settings(vocoder, args, "cuda")
    assert "device: 'cpu' then, 'cuda' now" in decode.settings_change(record, on_gpu)
