"""The ESPnet hook cannot break ESPnet: a failing registration still leaves ESPnet's TTS
working; the wrappers pass ESPnet's arguments through; a vocoder_tag in a --config YAML."""

import subprocess
import sys

import pytest
import soundfile as sf

from specgrad_plugin.espnet.tts_vocoder import register_loader, register_tags
from specgrad_plugin.testing import make_tts_exp

from .test_espnet import FEATS, _tts_inference

# Run in a fresh process: the hook fires once, on the first import of ESPnet's TTS modules.
PLANTED_FAILURE = """
import sys, traceback
import specgrad_plugin.espnet.tts_vocoder as hook

def register(module=None):
    raise AttributeError("type object 'TTSTask' has no attribute 'build_vocoder_from_file'\\nsecond line")

hook.register = register
assert "espnet2.tasks.tts" not in sys.modules
import espnet2.tasks.tts
from espnet2.bin.tts_inference import Text2Speech
from espnet2.tasks.tts import TTSTask

print("wrapped", getattr(TTSTask.build_vocoder_from_file, "_specgrad", False))
text2speech = Text2Speech(train_config=sys.argv[1], model_file=sys.argv[2], minlenratio=2.0, maxlenratio=2.0)
out = text2speech("hello world.")
frames, samples = out["feat_gen"].shape[0], out["wav"].shape[0]
print("griffin-lim", type(text2speech.vocoder).__name__, frames > 0 and (frames - 1) * 256 <= samples <= frames * 256)
try:
    TTSTask.build_vocoder_from_file(None, sys.argv[3], None, "cpu")
except Exception as e:  # without the parallel_wavegan package, ESPnet's own ImportError
    files = [frame.filename for frame in traceback.extract_tb(e.__traceback__)]
    print("pkl", any(f.endswith("parallel_wavegan_pretrained_vocoder.py") for f in files))
"""


def test_a_failing_registration_leaves_espnet_working(tmp_path):
    """Another ESPnet version could make register() raise: ESPnet must still import, build
    Griffin-Lim and route a ParallelWaveGAN .pkl to its own loader; one line says why."""
    config, model = make_tts_exp(tmp_path / "tts", FEATS)
    (tmp_path / "vocoder.pkl").write_bytes(b"not a real checkpoint")
    result = subprocess.run([sys.executable, "-c", PLANTED_FAILURE, str(config), str(model),
                             str(tmp_path / "vocoder.pkl")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ours = [line for line in result.stdout.splitlines() if line.split(" ")[0] in ("wrapped", "griffin-lim", "pkl")]
    assert ours == ["wrapped False", "griffin-lim Spectrogram2Waveform True", "pkl True"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("specgrad_plugin:")]
    assert warnings == ["specgrad_plugin: SpecGrad is not registered with ESPnet, which works without it "
                        "(AttributeError: type object 'TTSTask' has no attribute 'build_vocoder_from_file')"]
    assert "second line" not in result.stderr


class NewerTTSTask:
    """ESPnet's loader as a later version might have it: one more argument, open keywords."""

    @classmethod
    def build_vocoder_from_file(cls, vocoder_config_file=None, vocoder_file=None, model=None, device="cpu",
                                dtype="float32", **options):
        return cls, vocoder_config_file, vocoder_file, model, device, dtype, options


class NewerText2Speech:
    @staticmethod
    def from_pretrained(model_tag=None, vocoder_tag=None, *, quantize=False, **kwargs):
        return model_tag, vocoder_tag, quantize, kwargs


def test_wrappers_pass_every_argument_through(tmp_path):
    class Subtask(NewerTTSTask):
        pass

    register_loader(Subtask)
    register_tags(NewerText2Speech)
    vocoder = tmp_path / "v.pkl"
    assert Subtask.build_vocoder_from_file("c.yml", vocoder, None, "cuda", "bfloat16", extra=1) == (
        Subtask, "c.yml", vocoder, None, "cuda", "bfloat16", {"extra": 1})
    assert Subtask.build_vocoder_from_file(vocoder_file=vocoder, dtype="float16") == (
        Subtask, None, vocoder, None, "cpu", "float16", {})
    assert NewerText2Speech.from_pretrained("espnet/tts", "parallel_wavegan/x", quantize=True, seed=3) == (
        "espnet/tts", "parallel_wavegan/x", True, {"seed": 3})
    model_tag, vocoder_tag, quantize, kwargs = NewerText2Speech.from_pretrained(None, "specgrad/ljspeech",
                                                                                quantize=True)
    assert (model_tag, vocoder_tag, quantize) == (None, None, True)
    assert kwargs["vocoder_file"].name == "model.pth" and kwargs["vocoder_config"].name == "config.yaml"


def test_tts_inference_takes_the_specgrad_tag_from_a_config_yaml(tmp_path):
    """ESPnet's tts_inference reads --config YAML keys as the options' defaults, after the
    command line was seen: the tag is recognised where the options are parsed."""
    make_tts_exp(tmp_path / "tts", FEATS)
    (tmp_path / "decode.yaml").write_text("vocoder_tag: specgrad/ljspeech\n")
    result = _tts_inference(tmp_path / "tts", tmp_path / "o", ["--config", str(tmp_path / "decode.yaml")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SpecGrad vocoder from" in result.stderr and "pretrained/ljspeech-v5/model.pth" in result.stderr
    assert sf.read(tmp_path / "o" / "wav" / "utt1.wav")[1] == 22050
    (tmp_path / "unknown.yaml").write_text("vocoder_tag: specgrad/vctk\n")
    unknown = _tts_inference(tmp_path / "tts", tmp_path / "u", ["--config", str(tmp_path / "unknown.yaml")])
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "error: --vocoder_tag: pretrained SpecGrad model 'specgrad/vctk' is not shipped" in unknown.stderr


def test_plugin_tts_inference_names_mismatched_mel_settings_in_one_line(tmp_path, trained, capsys):
    """python -m specgrad_plugin.bin.tts_inference: the same refusal as one line and exit 2,
    as its README promises, not ESPnet's traceback around it."""
    from specgrad_plugin.bin import tts_inference

    _, out, _ = trained
    make_tts_exp(tmp_path / "tts", {**FEATS, "fmax": 8000})
    (tmp_path / "text").write_text("utt1 hello world.\n")
    with pytest.raises(SystemExit) as raised:
        tts_inference.main(["--ngpu", "0", "--train_config", str(tmp_path / "tts" / "config.yaml"),
                            "--model_file", str(tmp_path / "tts" / "model.pth"),
                            "--data_path_and_name_and_type", f"{tmp_path / 'text'},text,text",
                            "--output_dir", str(tmp_path / "o"), "--vocoder_file", str(out / "latest.pth"),
                            "--vocoder_config", str(out / "config.yaml")])
    assert raised.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "fmax: TTS model 8000 vs vocoder 7600" in last
