"""Training through ESPnet's CLI and pairing with an ESPnet TTS model (decoding:
test_espnet_decode.py)."""

import argparse
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from specgrad_plugin import pretrained
from specgrad_plugin.bin import decode, train
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.espnet import task as task_module
from specgrad_plugin.testing import make_tts_exp
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import REPO, common_args, run_args, write_shape_file

FEATS = dict(fs=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80, fmin=80, fmax=7600)


def test_best_model_criteria_skip_epochs_without_their_key(tmp_path, data, trained):
    """--sample_interval 2: epochs 1 and 3 have no sample scores. ESPnet ranked every epoch
    and died with KeyError after saving epoch 2; the best links now rank only epoch 2 (the
    same path as a run resumed after valid.pesq was added to its criteria)."""
    stats = trained[0]
    out = tmp_path / "train"
    train.main(run_args(data, out, stats) + [
        "--num_iters_per_epoch", "1", "--max_epoch", "3", "--num_samples", "1", "--sample_interval", "2",
        "--sample_seconds", "0.5", "--sample_schedule", "WG-3", "--num_att_plot", "0",
        "--best_model_criterion", "valid,mel_l1,min", "valid,loss,min", "--keep_nbest_models", "1",
    ])
    assert (out / "valid.mel_l1.best.pth").resolve().name == "2epoch.pth"
    assert (out / "3epoch.pth").exists() and (out / "samples/epoch2").is_dir()
    assert not (out / "samples/epoch1").exists() and not (out / "samples/epoch3").exists()


def reporter_with(epochs):
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    for epoch, values in enumerate(epochs, start=1):
        reporter.set_epoch(epoch)
        with reporter.observe("valid") as sub:
            sub.register(values)
            sub.next()
    return reporter


def test_ranking_leaves_out_epochs_without_the_key_and_puts_non_finite_ones_last():
    from specgrad_plugin.espnet.trainer import ranking_only_reported_epochs

    reporter = reporter_with([{"loss": 1.0}, {"loss": 0.5, "pesq": 1.5}, {"loss": 0.7, "pesq": np.nan},
                              {"loss": 0.5, "pesq": 1.7}])
    with pytest.raises(KeyError):
        reporter.get_best_epoch("valid", "pesq", "max")  # ESPnet's own ranking
    with ranking_only_reported_epochs():
        assert reporter.sort_epochs("valid", "pesq", "max") == [4, 2, 3]
        assert reporter.get_best_epoch("valid", "pesq", "max") == 4
        assert reporter.sort_epochs("valid", "loss", "min") == [2, 4, 3, 1]  # ties keep epoch order
    with pytest.raises(KeyError):
        reporter.get_best_epoch("valid", "pesq", "max")  # restored after training


def test_ranking_when_the_first_epochs_value_is_nan():
    """PESQ undefined on every sample clip of epoch 1: ESPnet asks for the best epoch (an
    empty ranking was an IndexError); it is epoch 1 until an epoch has a finite value."""
    from specgrad_plugin.espnet.trainer import ranking_only_reported_epochs

    reporter = reporter_with([{"loss": 1.0, "pesq": np.nan}])
    with ranking_only_reported_epochs():
        assert reporter.get_best_epoch("valid", "pesq", "max") == 1
        reporter = reporter_with([{"loss": 1.0, "pesq": np.nan}, {"loss": 0.9, "pesq": 1.2}])
        assert reporter.get_best_epoch("valid", "pesq", "max") == 2


def test_collect_stats_gives_mel_and_level_statistics(trained):
    stats, out, _ = trained
    mel = np.load(stats / "train" / "feats_stats.npz")
    assert mel["sum"].shape == (80,) and mel["count"] > 0
    hist = np.load(stats / "train" / "energy_hist_stats.npz")["sum"]
    assert hist.sum() == mel["count"]  # one histogram entry per frame
    model = SpecGradVocoder.from_checkpoint(out / "latest.pth")
    e_min, e_max = model.prior.energy_range.tolist()
    assert 0.01 < e_min < e_max < 100  # taken from the histogram, kept with the model
    assert model.mel_stats[1].min() > 0


def test_training_writes_espnet_artifacts_and_resumes(trained):
    _, out, first = trained
    for name in ("config.yaml", "checkpoint.pth", "1epoch.pth", "2epoch.pth", "latest.pth",
                 "valid.pesq.best.pth", "valid.mel_l1.best.pth", "samples/epoch2/dev0.wav", "samples/epoch2/dev0.png"):
        assert (out / name).exists(), name
    assert list((out / "tensorboard" / "valid").iterdir())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model_conf"]["denoiser"]["residual_channels"] == 32  # the preset, resolved
    second = torch.load(out / "2epoch.pth", weights_only=True)
    # The resumed epoch trained on: weights and EMA moved, and the EMA is not the raw model.
    key = "vocoder.denoiser.input.weight"  # the tiny WaveNet's
    assert not torch.equal(first[key], second[key])
    assert not torch.equal(first["ema.denoiser.input.weight"], second["ema.denoiser.input.weight"])
    assert not torch.equal(second[key], second["ema.denoiser.input.weight"])


def _tts_inference(tts_dir, out, vocoder_args):
    text = tts_dir / "text"
    text.write_text("utt1 hello world.\nutt2 a test.\n")
    cmd = [sys.executable, "-m", "espnet2.bin.tts_inference", "--ngpu", "0",
           "--train_config", str(tts_dir / "config.yaml"), "--model_file", str(tts_dir / "model.pth"),
           "--data_path_and_name_and_type", f"{text},text,text", "--output_dir", str(out),
           "--minlenratio", "2", "--maxlenratio", "2", *vocoder_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_unmodified_espnet_tts_inference_uses_specgrad(tmp_path, trained):
    """The plain `python -m espnet2.bin.tts_inference --vocoder_file <ours>` after pip install."""
    _, out, _ = trained
    make_tts_exp(tmp_path / "tts", FEATS)
    result = _tts_inference(tmp_path / "tts", tmp_path / "o", [
        "--vocoder_file", str(out / "latest.pth"), "--vocoder_config", str(out / "config.yaml")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SpecGrad vocoder" in result.stderr
    for uid, chars in (("utt1", len("hello world.")), ("utt2", len("a test."))):
        wav, fs = sf.read(tmp_path / "o" / "wav" / f"{uid}.wav")
        frames = np.load(tmp_path / "o" / "norm" / f"{uid}.npy").shape[0]
        assert fs == 22050 and len(wav) == frames * 256 and frames >= chars


def test_griffin_lim_route_still_works(tmp_path):
    make_tts_exp(tmp_path / "tts", FEATS)
    result = _tts_inference(tmp_path / "tts", tmp_path / "o", [])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Spectrogram2Waveform" in result.stderr and "SpecGrad vocoder" not in result.stderr
    assert sf.read(tmp_path / "o" / "wav" / "utt1.wav")[1] == 22050


def test_text2speech_with_mismatched_mel_settings_is_a_clear_error(tmp_path, trained):
    from espnet2.bin.tts_inference import Text2Speech

    import specgrad_plugin  # noqa: F401  (registers)

    _, out, _ = trained
    make_tts_exp(tmp_path / "tts", {**FEATS, "fmax": 8000})
    with pytest.raises(SpecGradInputError, match="fmax: TTS model 8000 vs vocoder 7600"):
        Text2Speech(train_config=tmp_path / "tts" / "config.yaml", model_file=tmp_path / "tts" / "model.pth",
                    vocoder_file=out / "latest.pth", vocoder_config=out / "config.yaml")


def test_pkl_vocoders_still_go_to_espnet(monkeypatch, tmp_path):
    from espnet2.tasks.tts import TTSTask

    import specgrad_plugin  # noqa: F401

    (tmp_path / "v.pkl").write_bytes(b"x")
    # ESPnet's own route for .pkl needs the parallel_wavegan package: reaching its import proves the fall-through.
    with pytest.raises((ImportError, ModuleNotFoundError, ValueError, RuntimeError, FileNotFoundError)) as err:
        TTSTask.build_vocoder_from_file(None, tmp_path / "v.pkl", None, "cpu")
    assert "SpecGrad" not in str(err.value)


def test_nonfinite_loss_is_counted_and_kept_out_of_the_averages(tiny_cfg, monkeypatch):
    from specgrad_plugin.espnet.model import ESPnetSpecGradModel

    sections = {k: v for k, v in tiny_cfg.to_dict().items() if k != "train"}
    model = ESPnetSpecGradModel(**sections, segment_frames=8)
    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr(model.loss, "forward", lambda vocoder, wav, mel, *_: (nan * 1.0, {"loss": float("nan")}))
    loss, stats, _ = model(torch.randn(2, 4096) * 0.1, torch.tensor([4096, 3000]))
    # ESPnet's trainer sees a non-finite gradient norm and skips the update (no optimizer step,
    # so no EMA update either); the NaN stats are dropped from its averages.
    assert not torch.isfinite(loss) and float(stats["nonfinite"]) == 1.0
    assert int(model.nonfinite_losses) == 1 and not torch.isfinite(stats["loss"])


def test_frame_family_through_espnet_decode_and_text2speech(tmp_path, data):
    """The frame preset through the same ESPnet training (with --use_amp), decode and
    Text2Speech routes."""
    from espnet2.bin.tts_inference import Text2Speech

    import specgrad_plugin  # noqa: F401  (registers)

    from .conftest import FRAME, TINY

    out = tmp_path / "frame"
    args = [str(FRAME) if a == str(TINY) else a for a in common_args(data, out)] + [
        "--train_shape_file", write_shape_file(data[0], tmp_path / "train_shape"),
        "--valid_shape_file", write_shape_file(data[1], tmp_path / "valid_shape"),
        "--model_conf", "denoiser.frame_channels=32", "--model_conf", "denoiser.frame_layers=2",
        "--model_conf", "denoiser.frame_low_band_channels=16",
        "--optim", "adam", "--max_epoch", "1", "--num_iters_per_epoch", "2", "--num_samples", "1",
        "--use_amp", "true",  # on CPU: the denoiser under bf16 autocast (tests/test_precision.py)
        "--sample_seconds", "0.5", "--sample_schedule", "WG-3", "--num_att_plot", "0", "--seed", "0",
    ]
    train.main(args)
    config = yaml.safe_load((out / "config.yaml").read_text())["model_conf"]
    assert config["denoiser"]["kind"] == "frame" and config["denoiser"]["frame_channels"] == 32
    assert (out / "samples" / "epoch1" / "dev0.wav").is_file()
    _, dev_scp = data
    assert decode.main(["--model_file", str(out / "latest.pth"), "--schedule", "WG-3", "--output_dir",
                        str(tmp_path / "d"), "--data_path_and_name_and_type", f"{dev_scp},speech,sound"]) == 0
    assert len(sf.read(tmp_path / "d" / "wav" / "dev0.wav")[0]) == (int(1.2 * 22050) // 256) * 256
    make_tts_exp(tmp_path / "tts", FEATS)
    tts = Text2Speech(train_config=tmp_path / "tts" / "config.yaml", model_file=tmp_path / "tts" / "model.pth",
                      vocoder_file=out / "latest.pth", vocoder_config=out / "config.yaml",
                      minlenratio=2.0, maxlenratio=2.0)
    result = tts("hello world.")
    assert result["wav"].shape[0] == result["feat_gen"].shape[0] * 256 and torch.isfinite(result["wav"]).all()


def test_a_run_exported_as_a_preset_records_and_continues_its_training(tmp_path, trained):
    """The shipped config.yaml comes from an ESPnet run: its train section must be the run's
    (crops, batch, lr, clipping, seed), not the built-in trainer's defaults, so that a run
    continued with it as --preset cuts the same crops."""
    _, out, _ = trained
    model = SpecGradVocoder.from_checkpoint(out / "latest.pth")
    train_cfg = model.cfg.train
    assert (train_cfg.segment_frames, train_cfg.batch_size, train_cfg.lr) == (16, 2, 0.001)
    assert (train_cfg.grad_clip, train_cfg.seed) == (1.0, 0)
    exported = pretrained.export(model, tmp_path / "shipped")
    conf = task_module._model_conf(argparse.Namespace(preset=exported.parent / "config.yaml", model_conf={}))
    assert conf["segment_frames"] == 16


def test_small_corpus_merged_into_one_batch_is_reported(tmp_path, data, caplog):
    """3 clips at --batch_size 2: ESPnet's sampler makes one batch of 3 (3 crops per update)."""
    stats = tmp_path / "stats"
    train.main(common_args(data, stats) + ["--collect_stats", "true"])
    args = common_args(data, tmp_path / "train") + [
        "--train_shape_file", str(stats / "train" / "speech_shape"),
        "--valid_shape_file", str(stats / "valid" / "speech_shape"),
        "--num_iters_per_epoch", "1", "--max_epoch", "1", "--num_samples", "0", "--num_att_plot", "0",
    ]
    with caplog.at_level("WARNING"):
        train.main(args)
    assert any("batch(es) of up to 3" in r.getMessage() for r in caplog.records)


def shared_corpus_batch_sizes(tmp_path, batch_size):
    """The batch sizes ESPnet's unsorted sampler makes of 29 utterances (the shared corpus)."""
    from espnet2.samplers.unsorted_batch_sampler import UnsortedBatchSampler

    shapes = tmp_path / "speech_shape"
    shapes.write_text("".join(f"utt{i:02d} {100000 + i}\n" for i in range(29)))
    return [len(b) for b in UnsortedBatchSampler(batch_size, str(shapes))]


@pytest.mark.parametrize("batch_size, expect_warning", [(16, True), (14, False), (8, False)])
def test_merged_batches_warning_follows_espnet_sampler(tmp_path, batch_size, expect_warning):
    sizes = shared_corpus_batch_sizes(tmp_path, batch_size)
    message = task_module.warn_on_merged_batches(sizes, batch_size)
    assert (message is not None) == expect_warning
    if expect_warning:
        assert "of up to 29" in message


def test_frame_recipe_config_gets_its_batch_size_on_the_shared_corpus(tmp_path):
    """The recipe's frame config must not fall into one 29-crop batch on the 29 shared clips."""
    conf = yaml.safe_load((REPO / "egs/ljspeech/voc_specgrad/conf/train_specgrad_frame.yaml").read_text())
    sizes = shared_corpus_batch_sizes(tmp_path, conf["batch_size"])
    assert task_module.warn_on_merged_batches(sizes, conf["batch_size"]) is None


def test_validation_samples_report_pesq_where_it_is_defined(tmp_path, speech_clip):
    """PESQ is undefined under 1/4 s and STOI under about 0.4 s: such a clip leaves them out of
    the mean instead of stopping the training run (or counting STOI's placeholder as a score);
    with no clip long enough the keys are absent."""
    from specgrad_plugin.espnet.trainer import vocode_samples

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame")).eval()
    clip = torch.from_numpy(speech_clip)
    both = vocode_samples(vocoder, [("long", clip[:22050]), ("short", clip[:4096])], tmp_path / "a", "WG-3", 1.0)
    long_only = vocode_samples(vocoder, [("long", clip[:22050])], tmp_path / "b", "WG-3", 1.0)
    assert 1.0 <= both["pesq"] <= 4.6 and both["pesq"] == pytest.approx(long_only["pesq"])
    assert both["mel_l1"] != pytest.approx(long_only["mel_l1"])  # the short clip is in the other means
    short_only = vocode_samples(vocoder, [("short", clip[:4096])], tmp_path / "c", "WG-3", 1.0)
    assert "pesq" not in short_only and "stoi" not in short_only and {"mel_l1", "mr_stft"} <= set(short_only)
    assert both["stoi"] == pytest.approx(long_only["stoi"])


def test_resuming_with_another_model_is_refused_naming_what_changed(tmp_path, data, trained, capsys):
    """A run resumed with a config that changes what its weights compute (another layer count,
    another prior) stops before any update, naming each change; a run without the start record
    (started before it existed) still gets the error naming the differing weights, not torch's;
    the frame flag only where the low-band trunk differs."""
    import shutil

    stats, out, _ = trained
    run = tmp_path / "train"
    shutil.copytree(out, run, symlinks=True)
    before, config = (run / "checkpoint.pth").read_bytes(), (run / "config.yaml").read_text()
    args = run_args(data, run, stats) + [
        "--optim", "adam", "--num_iters_per_epoch", "1", "--num_samples", "0", "--num_att_plot", "0",
        "--max_epoch", "3", "--resume", "true",
    ]
    for change, named in (("denoiser.residual_layers=3", r"denoiser.residual_layers: \d+ then, 3 now"),
                          ("prior.kind=diffwave", r"prior.kind: 'specgrad' then, 'diffwave' now")):
        with pytest.raises(SystemExit) as exit_:
            train.main(args + ["--model_conf", change])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "cannot resume: this config trains another model than the run's" in err
        assert re.search(named, err) and (run / "checkpoint.pth").read_bytes() == before
        assert (run / "config.yaml").read_text() == config  # refused before ESPnet rewrites it
    (run / "model_identity.json").unlink()
    with pytest.raises(SystemExit):
        train.main(args + ["--model_conf", "denoiser.residual_layers=3"])
    err = capsys.readouterr().err
    assert re.search(r"checkpoint.pth: cannot resume.*missing \[.*\.layers\.", err) and "frame_low_band_hz" not in err
    (run / "checkpoint.pth").write_bytes(before[:100_000])  # a run killed while ESPnet wrote it
    with pytest.raises(SystemExit) as exit_:
        train.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "checkpoint.pth: not a readable training state (truncated" in err
    assert "Traceback" not in err


def test_trainer_options_are_checked_before_the_first_update():
    from specgrad_plugin.config import ConfigError
    from specgrad_plugin.espnet.trainer import check_options

    good = dict(ema_decay=0.999, sample_schedule="WG-6", num_samples=2, sample_interval=1, sample_seconds=3.0)
    check_options(argparse.Namespace(**good))
    for change, message in ((dict(ema_decay=1.5), r"--ema_decay 1.5: expected a decay in \[0, 1\]"),
                            (dict(ema_decay=-1.0), r"--ema_decay -1.0"),
                            (dict(sample_schedule="WG-7"), r"--sample_schedule: schedule 'WG-7': expected one of"),
                            (dict(num_samples=-1), r"--num_samples -1"),
                            (dict(sample_interval=0), r"--sample_interval 0: expected at least 1"),
                            (dict(sample_seconds=0.0), r"--sample_seconds 0.0: expected more than 0")):
        with pytest.raises(ConfigError, match=message):
            check_options(argparse.Namespace(**{**good, **change}))


def test_a_bad_trainer_flag_stops_before_the_run_writes_its_config(tmp_path, data, trained, capsys):
    stats, _, _ = trained
    out = tmp_path / "fresh"
    with pytest.raises(SystemExit) as exit_:
        train.main(run_args(data, out, stats) + ["--ema_decay", "1.5", "--max_epoch", "1"])
    assert exit_.value.code == 2 and "--ema_decay 1.5: expected a decay in [0, 1]" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()


def test_unknown_model_conf_key_is_one_line_naming_the_known_ones(tmp_path, data, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(common_args(data, tmp_path / "o") + ["--model_conf", "bogus=1", "--collect_stats", "true"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown keys ['bogus']; expected some of [" in err and "segment_frames" in err


def _spawn_ranks_as_espnet_does(args):
    """AbsTask.main's --multiprocessing_distributed path, without its GPU requirement: each rank
    runs main_worker in a spawned process, and torch's ProcessContext joins them."""
    from espnet2.train.distributed_utils import resolve_distributed_mode
    from torch.multiprocessing.spawn import ProcessContext
    parsed = task_module.SpecGradTask.get_parser().parse_args(args)
    resolve_distributed_mode(parsed)
    process = torch.multiprocessing.get_context("spawn").Process(
        target=task_module.SpecGradTask.main_worker, args=(parsed,))
    process.start()
    while not ProcessContext([process], [str(REPO / "no-such-error-file")]).join():
        pass


def test_user_error_in_a_spawned_rank_is_one_line(tmp_path, data, monkeypatch, capfd):
    """Under --multiprocessing_distributed the error is raised in a spawned rank, beyond
    bin.train's own handler: the rank prints one line, and the launcher exits 2 without a
    traceback. Any other failure of a rank still raises."""
    args = common_args(data, tmp_path / "o") + ["--model_conf", "bogus=1", "--collect_stats", "true"]
    spawning = classmethod(lambda cls, cmd: _spawn_ranks_as_espnet_does(cmd))
    monkeypatch.setattr(task_module.SpecGradTask, "main", spawning)
    with pytest.raises(SystemExit) as exit_:
        train.main(args)
    err = capfd.readouterr().err
    assert exit_.value.code == 2 and "error: " in err and "unknown keys ['bogus']" in err
    assert "Traceback" not in err

    def crash(cls, cmd):
        raise torch.multiprocessing.ProcessExitedException("rank 0 died", 0, 1, exit_code=1)
    monkeypatch.setattr(task_module.SpecGradTask, "main", classmethod(crash))
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        train.main(args)
