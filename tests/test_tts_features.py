"""The TTS pairing's mel check compares what ESPnet computes with: its nulls resolved as
LogMelFbank resolves them, the window and its length compared too."""

import pytest
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import FeatureConfig
from specgrad_plugin.espnet.tts_vocoder import check_tts_features

OURS = FeatureConfig()
MATCHING = dict(fs=22050, n_fft=1024, hop_length=256, n_mels=80, fmin=80, fmax=7600)


def params(**changes):
    return LogMelFbank(**{**MATCHING, **changes}).get_parameters()


def test_espnets_ljspeech_settings_match():
    check_tts_features(params(), OURS)
    check_tts_features(params(win_length=1024), OURS)  # an explicit win_length equal to n_fft, as null is


def test_a_null_win_length_is_n_fft_not_a_pass():
    narrow = FeatureConfig(win_length=800)
    with pytest.raises(SpecGradInputError, match=r"win_length: TTS model 1024 vs vocoder 800"):
        check_tts_features(params(), narrow)


@pytest.mark.parametrize("changes, message", [
    (dict(fmin=None), r"fmin: TTS model 0 vs vocoder 80"),  # ESPnet's LogMel: null fmin is 0 Hz
    (dict(fmax=None), r"fmax: TTS model 11025.0 vs vocoder 7600"),  # ... and null fmax fs / 2
    (dict(win_length=512), r"win_length: TTS model 512 vs vocoder 1024"),
    (dict(window="hamming"), r"window: TTS model hamming vs vocoder hann"),
    (dict(window=None), r"window: TTS model null \(rectangular\) vs vocoder hann"),
    (dict(fs=24000), r"fs: TTS model 24000 vs vocoder 22050"),
])
def test_settings_espnet_computes_differently_are_refused(changes, message):
    with pytest.raises(SpecGradInputError, match=f"tts.yaml: the TTS model's features do not match.*{message}"):
        check_tts_features(params(**changes), OURS, source="tts.yaml")


def test_every_mismatch_is_named_at_once():
    with pytest.raises(SpecGradInputError, match=r"fmin: TTS model 0 vs vocoder 80; fmax: TTS model 11025.0"):
        check_tts_features(params(fmin=None, fmax=None), OURS)


def test_the_test_tts_experiment_writes_nulls_as_espnet_reads_them(tmp_path):
    """testing.make_tts_exp: a None setting is YAML null in the TTS config (it was the string
    'None', which ESPnet's type checks refuse), so the nulls above can be tested end to end."""
    import yaml

    from specgrad_plugin.testing import make_tts_exp

    config, _ = make_tts_exp(tmp_path, {**MATCHING, "fmax": None, "win_length": None})
    conf = yaml.safe_load(config.read_text())["feats_extract_conf"]
    assert conf["fmax"] is None and conf["win_length"] is None and conf["n_fft"] == 1024
