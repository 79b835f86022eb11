"""The real-arithmetic sampler equals SpecGradVocoder given the same noise; its ONNX graph
runs under onnxruntime in a process without torch and gives the same audio; TorchScript too."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from specgrad_plugin import mel_domain, shaping
from specgrad_plugin.export import ExportError, RealSampler, draw_white_noise
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.realops import FactoredRealDFT, RealPrior, RealSTFT
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import REPO, SMALL_FAMILIES, small_config

RTOL = 1e-4  # max |a - b| / max |b|


def relative_error(a, b) -> float:
    a, b = np.asarray(a).astype(np.complex128), np.asarray(b).astype(np.complex128)
    return float(np.abs(a - b).max() / np.abs(b).max())


def frame_vocoder(inference=None, **denoiser) -> SpecGradVocoder:
    """A small frame model whose output layers are not zero (a zero network would hide errors)."""
    cfg = small_config("frame", denoiser={**SMALL_FAMILIES["frame"], **denoiser}, inference=inference or {})
    torch.manual_seed(1)
    vocoder = SpecGradVocoder(cfg).eval()
    outputs = [vocoder.denoiser.trunk.out] + ([vocoder.denoiser.low_band.out] if vocoder.denoiser.low_band else [])
    for layer in outputs:
        torch.nn.init.normal_(layer.weight, std=0.1)
        torch.nn.init.normal_(layer.bias, std=0.1)
    torch.nn.init.normal_(vocoder.denoiser.gain_bias)
    return vocoder


def mel_of(vocoder, clip, seconds):
    wav = torch.from_numpy(clip[: int(seconds * vocoder.fs)])
    with torch.no_grad():
        return vocoder.features(crop_to_hop(wav, vocoder.hop_length)[None])


@pytest.mark.parametrize("n", [1024, 512, 48, 7])
def test_factored_dft_equals_fft(n):
    dft = FactoredRealDFT(n)
    x = torch.randn(3, 5, n, dtype=torch.float64)
    re, im = dft.rfft(x.float())
    reference = torch.fft.rfft(x)
    assert relative_error(torch.complex(re, im).numpy(), reference.numpy()) < 1e-5
    spec = torch.randn(3, 5, n // 2 + 1, dtype=torch.complex128)
    assert relative_error(dft.irfft((spec.real.float(), spec.imag.float())), torch.fft.irfft(spec, n)) < 1e-5


@pytest.mark.parametrize("use_fft", [False, True])
def test_real_stft_pair_equals_shaping(use_fft):
    window = shaping.hann_window(1024)
    stft = RealSTFT(1024, 256, window, use_fft)
    x = torch.randn(2, 37 * 256)
    re, im = stft(x)
    reference = shaping.stft(x, 1024, 256, window)
    assert relative_error(torch.complex(re, im), reference) < 1e-5
    frames = torch.ones(1, 1, re.shape[-1])
    spec = (re * 0.5 + 0.2, im * 1.5)  # not a consistent STFT: G+ is a least-squares inverse
    wav = stft.inverse(spec, stft.normaliser(frames, x.shape[-1]), x.shape[-1])
    assert relative_error(wav, shaping.istft(torch.complex(*spec), 1024, 256, window, x.shape[-1])) < 1e-5


@pytest.mark.parametrize("kind,phase", [("specgrad", "minimum"), ("specgrad", "zero"), ("priorgrad", "minimum"),
                                        ("diffwave", "minimum")])
def test_real_prior_equals_noise_prior(kind, phase, speech_clip):
    vocoder = SpecGradVocoder(small_config("frame", prior={"kind": kind, "phase": phase}))
    mel = mel_of(vocoder, speech_clip, 1.0)
    re, im = RealPrior(vocoder.prior)(mel)
    assert relative_error(torch.complex(re, im), vocoder.prior.response(mel)) < 1e-5


@pytest.mark.parametrize("denoiser", [{}, {"frame_low_band_hz": 1000.0, "frame_low_band_channels": 8},
                                      {"frame_phase_demodulation": True, "frame_low_band_hz": 500.0,
                                       "frame_low_band_channels": 8}])
@pytest.mark.parametrize("schedule", ["WG-3", "WG-6"])
def test_real_sampler_equals_vocoder(denoiser, schedule, speech_clips):
    vocoder = frame_vocoder(**denoiser)
    mel = torch.cat([mel_of(vocoder, clip, 0.6) for clip in speech_clips[:2]])
    sampler = RealSampler(vocoder, schedule).eval()
    noise = draw_white_noise(2, mel.shape[1] * vocoder.hop_length, sampler.steps, seed=4)
    with torch.no_grad():
        out = sampler(mel, noise)
    reference = vocoder(mel, schedule=schedule, seed=4)
    assert relative_error(out, reference) < RTOL
    other = draw_white_noise(2, mel.shape[1] * vocoder.hop_length, sampler.steps, seed=5)
    with torch.no_grad():
        assert relative_error(sampler(mel, other), reference) > 1e-2  # the noise input is used


def test_real_sampler_applies_the_mel_gain_as_the_vocoder(speech_clips):
    vocoder = frame_vocoder({"mel_gain_iterations": 2}, frame_low_band_hz=1000.0, frame_low_band_channels=8)
    mel = torch.cat([mel_of(vocoder, clip, 0.6) for clip in speech_clips[:2]])
    sampler = RealSampler(vocoder, "WG-3").eval()
    noise = draw_white_noise(2, mel.shape[1] * vocoder.hop_length, sampler.steps, seed=4)
    with torch.no_grad():
        out = sampler(mel, noise)
    reference = vocoder(mel, schedule="WG-3", seed=4)
    assert relative_error(out, reference) < RTOL
    vocoder.cfg.inference.mel_gain_iterations = 0
    assert relative_error(out, vocoder(mel, schedule="WG-3", seed=4)) > 1e-2  # the gain is applied


def test_unsupported_models_are_named():
    with pytest.raises(ExportError, match="denoiser.kind='wavenet'.*expected denoiser.kind: frame"):
        RealSampler(SpecGradVocoder(small_config("wavenet")))
    excitation = small_config("frame", denoiser={**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0,
                                                 "frame_excitation": True})
    with pytest.raises(ExportError, match="frame_excitation=true"):
        RealSampler(SpecGradVocoder(excitation))


def test_torchscript_export_takes_any_length(tmp_path, speech_clip):
    from specgrad_plugin.export import export_torchscript

    vocoder = frame_vocoder(frame_low_band_hz=1000.0, frame_low_band_channels=8)
    mel = mel_of(vocoder, speech_clip, 0.9)  # not the example's length
    std = torch.full((mel.shape[-1],), 0.3)  # statistics that read this mel 20 dB quiet: level matched
    vocoder.set_mel_statistics(mel[0].quantile(mel_domain.LEVEL_QUANTILE, dim=0) - mel_domain.LEVEL_Z * std + 1.0, std)
    path = export_torchscript(vocoder, "WG-3", tmp_path / "s.pt", example_frames=16)
    loaded = torch.jit.load(str(path))
    noise = draw_white_noise(1, mel.shape[1] * vocoder.hop_length, 3, seed=2)
    with torch.no_grad():
        assert relative_error(loaded(mel, noise), vocoder(mel, schedule="WG-3", seed=2)) < RTOL


ORT_SCRIPT = """
import json, sys
import numpy as np
from specgrad_plugin.onnx_vocoder import OnnxVocoder
model, mel, noise, out = sys.argv[1:5]
vocoder = OnnxVocoder(model, threads=1)
np.save(out, vocoder(np.load(mel), noise=np.load(noise)))
print(json.dumps({"torch": "torch" in sys.modules or "soundfile" in sys.modules, "fs": vocoder.fs,
                  "steps": vocoder.steps}))
"""


def run_without_torch(model, mel, noise, tmp_path):
    """Vocode in a fresh process that imports only numpy, onnxruntime and the runner (its
    info's "torch" is true if torch or soundfile, which only the runner's CLI needs, was loaded)."""
    np.save(tmp_path / "mel.npy", mel)
    np.save(tmp_path / "noise.npy", noise)
    done = subprocess.run([sys.executable, "-c", ORT_SCRIPT, str(model), str(tmp_path / "mel.npy"),
                           str(tmp_path / "noise.npy"), str(tmp_path / "out.npy")],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "out.npy"), json.loads(done.stdout.strip().splitlines()[-1])


def test_onnx_graph_runs_without_torch_and_equals_pytorch(tmp_path, speech_clips):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
    pytest.importorskip("onnxruntime", reason="the graph runs in onnxruntime: pip install -e '.[onnx]'")
    from specgrad_plugin.export import export_onnx

    vocoder = frame_vocoder({"mel_gain_iterations": 2}, frame_low_band_hz=1000.0, frame_low_band_channels=8)
    mel = torch.cat([mel_of(vocoder, clip, 0.7) for clip in speech_clips[:2]])  # batch 2, not 16 frames
    # statistics that read the first item's level as 0; the second item 20 dB quieter is level matched
    std = torch.full((mel.shape[-1],), 0.3)
    vocoder.set_mel_statistics(mel[0].quantile(mel_domain.LEVEL_QUANTILE, dim=0) - mel_domain.LEVEL_Z * std, std)
    mel[1] -= 1.0
    path = export_onnx(vocoder, "WG-6", tmp_path / "s.onnx", example_frames=16)
    noise = draw_white_noise(2, mel.shape[1] * vocoder.hop_length, 6, seed=3)
    out, info = run_without_torch(path, mel.numpy(), noise.numpy(), tmp_path)
    assert info == {"torch": False, "fs": vocoder.fs, "steps": 6}
    assert relative_error(out, vocoder(mel, schedule="WG-6", seed=3)) < RTOL
    with torch.no_grad():  # the quiet item is not what the sampler makes of it as given
        as_given = RealSampler(vocoder, "WG-6")(mel, noise)
    assert relative_error(out[0], as_given[0]) < RTOL and relative_error(out[1], as_given[1]) > 1e-2
    import onnx

    meta = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    assert float(meta["level_match_db"]) == vocoder.cfg.inference.level_match_db > 0


def test_onnx_vocoder_names_bad_input(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
    pytest.importorskip("onnxruntime", reason="the graph runs in onnxruntime: pip install -e '.[onnx]'")
    from specgrad_plugin.export import export_onnx
    from specgrad_plugin.onnx_vocoder import OnnxInputError, OnnxVocoder

    path = export_onnx(frame_vocoder(), "WG-3", tmp_path / "s.onnx", example_frames=8)
    runner = OnnxVocoder(path)
    with pytest.raises(OnnxInputError, match=r"mel: shape \(80, 10\), expected \(frames, 80\)"):
        runner(np.zeros((80, 10), np.float32))
    with pytest.raises(OnnxInputError, match=r"noise: shape \(3, 1, 10\), expected \(3, 1, 2560\)"):
        runner(np.zeros((10, 80), np.float32), noise=np.zeros((3, 1, 10), np.float32))
    assert runner(np.full((10, 80), -3.0, np.float32), seed=1).shape == (2560,)
    np.save(tmp_path / "mel.npy", np.zeros((10, 80), np.float32))
    with pytest.raises(OnnxInputError, match=r"mel.npy: onnxruntime cannot load it \(\w+: .*expected a graph"):
        OnnxVocoder(tmp_path / "mel.npy")
    from specgrad_plugin.onnx_vocoder import main

    assert main([str(tmp_path / "mel.npy"), str(tmp_path / "mel.npy"), str(tmp_path / "o.wav")]) == 2
    assert not (tmp_path / "o.wav").exists()
    for seed in (-1, 2**63, 1.5):
        with pytest.raises(OnnxInputError, match="seed: .*expected an integer from 0 to 2\\*\\*63 - 1"):
            runner(np.zeros((10, 80), np.float32), seed=seed)
    with pytest.raises(OnnxInputError, match="a batch of 0 mels"):
        runner(np.zeros((0, 10, 80), np.float32))
    with pytest.raises(OnnxInputError, match="noise: NaN or inf"):
        runner(np.zeros((10, 80), np.float32), noise=np.full((3, 1, 2560), np.nan, np.float32))


def test_onnx_vocoder_cli_names_a_bad_array_or_output_in_one_line(tmp_path, capsys):
    """An .npz mel, an output under a file and an output that is a folder: each one line and
    exit 2, nothing written."""
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
    pytest.importorskip("onnxruntime", reason="the graph runs in onnxruntime: pip install -e '.[onnx]'")
    from specgrad_plugin.export import export_onnx
    from specgrad_plugin.onnx_vocoder import main

    graph = str(export_onnx(frame_vocoder(), "WG-3", tmp_path / "s.onnx", example_frames=8))
    np.savez(tmp_path / "mel.npz", np.full((10, 80), -3.0, np.float32))
    np.save(tmp_path / "mel.npy", np.full((10, 80), -3.0, np.float32))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.wav").mkdir()
    np.save(tmp_path / "melT.npy", np.full((80, 10), -3.0, np.float32))
    cases = [(str(tmp_path / "mel.npz"), str(tmp_path / "o.wav"), "mel.npz: an archive of 1 arrays"),
             (str(tmp_path / "melT.npy"), str(tmp_path / "o.wav"), "melT.npy: shape (80, 10), expected (frames, 80)"),
             (str(tmp_path / "mel.npy"), str(tmp_path / "afile" / "o.wav"),
              f"{tmp_path / 'afile'} is a file; expected a folder there"),
             (str(tmp_path / "mel.npy"), str(tmp_path / "adir.wav"), "adir.wav")]
    for mel, out, message in cases:
        assert main([graph, mel, out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.wav").exists() and list((tmp_path / "adir.wav").iterdir()) == []


@pytest.mark.slow
def test_shipped_model_exports_and_runs_without_torch(tmp_path, speech_clip):
    """The command line on the shipped model, then onnxruntime in a process without torch."""
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
    pytest.importorskip("onnxruntime", reason="the graph runs in onnxruntime: pip install -e '.[onnx]'")
    from specgrad_plugin.bin import export

    assert export.main(["--model_tag", "specgrad/ljspeech", "--format", "onnx", "--schedule", "WG-3",
                        "--output", str(tmp_path / "shipped.onnx")]) == 0
    vocoder = SpecGradVocoder.from_pretrained("specgrad/ljspeech")
    mel = mel_of(vocoder, speech_clip, 1.0)
    noise = draw_white_noise(1, mel.shape[1] * vocoder.hop_length, 3, seed=0)
    out, info = run_without_torch(tmp_path / "shipped.onnx", mel[0].numpy(), noise.numpy(), tmp_path)
    assert not info["torch"]
    assert relative_error(out, vocoder(mel[0], schedule="WG-3", seed=0)) < RTOL


def test_a_graph_that_fails_its_check_is_not_written(tmp_path, monkeypatch, capsys):
    """export --check: a graph shown to differ from PyTorch does not reach --output (an
    earlier graph there stays), and leaves nothing beside it; one that passes replaces it."""
    from specgrad_plugin.bin import export

    def write(vocoder, schedule, output):
        output.write_bytes(b"graph")
        return output
    monkeypatch.setitem(export.FORMATS, "onnx", write)
    monkeypatch.setattr(export, "check_graph", lambda *args: 1.0)
    path = tmp_path / "graph.onnx"
    path.write_bytes(b"earlier good graph")
    assert export.main(["--model_tag", "specgrad/ljspeech", "--output", str(path), "--check"]) == 1
    assert "differs from PyTorch by 1.00e+00" in capsys.readouterr().err
    assert path.read_bytes() == b"earlier good graph" and sorted(tmp_path.iterdir()) == [path]
    monkeypatch.setattr(export, "check_graph", lambda *args: 0.0)
    assert export.main(["--model_tag", "specgrad/ljspeech", "--output", str(path), "--check"]) == 0
    assert path.read_bytes() == b"graph" and sorted(tmp_path.iterdir()) == [path]
    # under a file: one line naming that file, not the graph's temporary name
    assert export.main(["--model_tag", "specgrad/ljspeech", "--output", str(path / "x.onnx")]) == 2
    assert capsys.readouterr().err == f"error: {path} is a file; expected a folder there for the output\n"
