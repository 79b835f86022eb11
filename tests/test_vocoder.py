"""Checkpoints: atomic save, strict load, EMA preferred; the quick-start CLI end to end."""

import collections
import json
from fractions import Fraction

import pytest
import soundfile as sf
import torch

from specgrad_plugin.bin import quickstart
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.vocoder import CheckpointError, SpecGradVocoder


def test_checkpoint_round_trip_prefers_ema(tmp_path, tiny_cfg):
    model = SpecGradVocoder(tiny_cfg)
    ema = SpecGradVocoder(tiny_cfg)
    torch.nn.init.normal_(ema.denoiser.out.weight)
    model.prior.set_level_statistics(0.2, 3.0)
    ema.prior.set_level_statistics(0.2, 3.0)
    model.save(tmp_path / "c.pt", {"ema": ema.state_dict(), "step": 5})
    assert not list(tmp_path.glob("*.tmp"))
    loaded = SpecGradVocoder.from_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded.denoiser.out.weight, ema.denoiser.out.weight)
    assert loaded.prior.energy_range.tolist() == pytest.approx([0.2, 3.0])
    raw = SpecGradVocoder.from_checkpoint(tmp_path / "c.pt", use_ema=False)
    assert torch.equal(raw.denoiser.out.weight, model.denoiser.out.weight)
    assert loaded.fs == 22050


def test_checkpoint_with_wrong_keys_is_an_error(tmp_path, tiny_cfg):
    model = SpecGradVocoder(tiny_cfg)
    state = model.state_dict()
    state.pop("denoiser.out.bias")
    state["denoiser.extra"] = torch.zeros(1)
    torch.save({"config": tiny_cfg.to_dict(), "model": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="missing keys.*denoiser.out.bias.*unexpected keys.*denoiser.extra"):
        SpecGradVocoder.from_checkpoint(tmp_path / "bad.pt")


def test_checkpoint_from_other_config_is_an_error(tmp_path, tiny_cfg):
    SpecGradVocoder(tiny_cfg).save(tmp_path / "tiny.pt")
    from specgrad_plugin.config import SpecGradConfig

    with pytest.raises(CheckpointError, match="tiny.pt: weights do not match"):
        SpecGradVocoder.from_checkpoint(tmp_path / "tiny.pt", config=SpecGradConfig())


def test_garbage_checkpoint_is_an_error(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="x.pt: not a readable SpecGrad checkpoint"):
        SpecGradVocoder.from_checkpoint(tmp_path / "x.pt")
    # a pickle of objects: torch's advice to load it with weights_only=False is not passed on
    torch.save({"model": collections.OrderedDict(a=Fraction(1, 3))}, tmp_path / "objects.pt")
    with pytest.raises(CheckpointError, match="objects.pt: .*holds Python objects other than weights") as raised:
        SpecGradVocoder.from_checkpoint(tmp_path / "objects.pt")
    assert "weights_only=False" not in str(raised.value)


def test_binary_file_as_config_is_named(tmp_path, tiny_cfg):
    SpecGradVocoder(tiny_cfg).save(tmp_path / "a.pt")
    (tmp_path / "audio.wav").write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(ConfigError, match="audio.wav: not a text file"):
        SpecGradVocoder.from_checkpoint(tmp_path / "a.pt", config=tmp_path / "audio.wav")
    from specgrad_plugin.checkpoints import is_specgrad_file

    # ESPnet's --vocoder_config: not ours (ESPnet then gives its own error), not a traceback here
    assert is_specgrad_file(tmp_path / "a.pt", tmp_path / "audio.wav") is False


def test_quickstart_checks_its_seed_before_training(tmp_path, capsys):
    assert quickstart.main(["--seed", "-1", "--out", str(tmp_path / "q")]) == 2
    assert "--seed: -1, expected an integer" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_quickstart_end_to_end(tmp_path, capsys):
    """The written wavs are the trained checkpoint's and Griffin-Lim's vocodings of the held-out
    clip, and the scores are those of the same signals before 16-bit rounding (a swapped clip,
    model or score would fail). Scores of the files would differ on generated clips, whose
    quiet parts lie below the 16-bit floor."""
    from specgrad_plugin.features import crop_to_hop
    from specgrad_plugin.scoring import griffin_lim, mel_l1

    out = tmp_path / "qs"
    argv = ["--steps", "3", "--max_clips", "3", "--out", str(out), "--schedule", "WG-3"]
    assert quickstart.main(argv) == 0
    wav, fs = sf.read(out / "heldout_specgrad.wav", dtype="float32")
    vocoder = SpecGradVocoder.from_checkpoint(out / "checkpoint.pt")
    clips, _ = quickstart.load_clips(quickstart.get_parser().parse_args(argv), vocoder.cfg)
    ref = crop_to_hop(torch.from_numpy(clips[-1]), 256)
    expected = vocoder(vocoder.features(ref[None])[0], schedule="WG-3", seed=0).numpy()
    assert fs == 22050 and wav.shape == expected.shape
    assert float(abs(wav - expected).max()) < 2.0 / 2**15  # 16-bit PCM rounding
    scores = json.loads((out / "scores.json").read_text())
    assert scores["specgrad"]["mel_l1"] == pytest.approx(mel_l1(ref.numpy(), expected, vocoder.features), rel=1e-3)
    gl, _ = sf.read(out / "heldout_griffin_lim.wav", dtype="float32")
    expected_gl = griffin_lim(vocoder.features(ref[None])[0], vocoder.cfg.features)
    assert gl.shape == expected_gl.shape and float(abs(gl - expected_gl).max()) < 2.0 / 2**15
    gl_mel_l1 = mel_l1(ref.numpy(), expected_gl, vocoder.features)
    assert scores["griffin_lim"]["mel_l1"] == pytest.approx(gl_mel_l1, rel=1e-3)
    assert (out / "config.yaml").is_file()
    assert "| specgrad |" in capsys.readouterr().out
    # the folder again with fewer steps: it resumes at 3 and says 3, not the 1 asked for
    assert quickstart.main(["--steps", "1", "--max_clips", "3", "--out", str(out), "--schedule", "WG-3"]) == 0
    assert "held-out clip, 3 steps" in capsys.readouterr().out
    # the same folder with another preset: refused before config.yaml is rewritten
    config = (out / "config.yaml").read_text()
    assert quickstart.main(["--steps", "1", "--max_clips", "3", "--out", str(out), "--preset", "frame"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt: cannot resume: it holds another model" in err and "denoiser.kind" in err
    assert (out / "config.yaml").read_text() == config
    assert quickstart.main(["--steps", "0", "--out", str(tmp_path / "none")]) == 2
    assert "--steps 0: expected at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("family", ["wavenet", "frame"])
def test_chunked_inference_matches_whole_input(family, tiny_cfg):
    """Long inputs are vocoded in chunks (memory bounded by the chunk); the noise is drawn for
    the whole input and each chunk carries the network's receptive field, so nothing changes.
    Chunks without context must show (the test can fail)."""
    from .conftest import FRAME, small_config

    full = tiny_cfg if family == "wavenet" else SpecGradConfig.from_yaml(FRAME)
    for cfg, seconds in ((small_config(family), 30.0), (full, 4.0)):
        vocoder = SpecGradVocoder(cfg).eval()
        for p in vocoder.denoiser.parameters():
            torch.nn.init.normal_(p, std=0.05)
        mel = torch.randn(int(seconds * 22050 / 256), 80) * 0.5 - 3
        whole = vocoder(mel, schedule="WG-3", chunk_frames=0)
        chunked = vocoder(mel, schedule="WG-3", chunk_frames=97)
        assert float((whole - chunked).abs().max()) < 1e-4 * max(float(whole.abs().max()), 1e-3)
    vocoder.denoiser.context_frames = lambda: 0
    short = vocoder(mel, schedule="WG-3", chunk_frames=97)
    assert float((whole - short).abs().max()) > 1e-3 * float(whole.abs().max())


def test_tensor_bytes_counts_each_storage_once_and_each_meta_tensor_whole():
    """A view is charged for its whole base once; meta tensors, which share the address 0,
    are each counted (a de-duplication by address would count only the last); other types
    are refused by name."""
    from specgrad_plugin.denoisers.base import tensor_bytes

    base = torch.zeros(10, 8)
    assert tensor_bytes([base, base[:2], (base.T, None, 3)]) == 320
    assert tensor_bytes([base, torch.zeros(5)]) == 340
    metas = [torch.empty(10, 8, device="meta"), torch.empty(3, device="meta")]
    assert tensor_bytes(metas) == 332
    with pytest.raises(TypeError, match="cannot size a dict"):
        tensor_bytes({"a": base})


@pytest.mark.parametrize("family", ["wavenet", "frame"])
def test_chunks_keep_their_conditioning_within_the_budget_only(family):
    """Denoiser.chunked: the chunks' conditionings are kept, in order, while they fit the
    budget together, and the others are recomputed at each step, with the same output as
    the whole input. A budget of exactly the first two chunks' keeps those two: a budget never
    spent, spent twice, or compared strictly, calls condition() another number of times."""
    from specgrad_plugin.denoisers.base import tensor_bytes

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config(family)).eval()
    denoiser = vocoder.denoiser
    for p in denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    mel = torch.randn(1, 90, 80) * 0.5 - 3
    response = vocoder.prior.response(mel)
    hop, chunk, steps = vocoder.hop_length, 30, 4
    levels = [torch.tensor([v]) for v in (-2.0, 0.0, 1.0, 3.0)]
    x = [torch.randn(1, 90 * hop) for _ in levels]
    with torch.no_grad():
        whole = [denoiser(xi, denoiser.condition(mel, response), level) for xi, level in zip(x, levels, strict=True)]
        context = denoiser.context_frames()
        spans = ((0, 30 + context), (30 - context, 60 + context), (60 - context, 90))
        sizes = [tensor_bytes(denoiser.condition(mel[:, lo:hi], response[:, lo:hi], 2**30)) for lo, hi in spans]
        calls = []  # the first frame of each call's mel
        condition = denoiser.condition
        denoiser.condition = lambda mel_piece, *a, **k: calls.append(
            int((mel_piece[0, 0] == mel[0]).all(-1).nonzero()[0])) or condition(mel_piece, *a, **k)
        starts = [lo for lo, _ in spans]
        for budget, expected in ((0, starts * steps), (sizes[0] + sizes[1], starts + starts[2:] * (steps - 1)),
                                 (2**30, starts)):
            calls.clear()
            predict = denoiser.chunked(mel, response, hop, chunk, budget)
            for xi, level, reference in zip(x, levels, whole, strict=True):
                torch.testing.assert_close(predict(xi, level), reference, atol=1e-6, rtol=1e-5)
            assert sorted(calls) == sorted(expected), (budget, calls)


def test_fast_inference_path_matches_training_path(tiny_cfg):
    """Within the memory budget the denoiser takes each layer's conditioner output computed
    once per utterance: the same function as from the upsampled mel that training uses, and
    the cache is used only within its budget."""
    vocoder = SpecGradVocoder(tiny_cfg).eval()
    for p in vocoder.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.1)
    denoiser = vocoder.denoiser
    mel = torch.randn(1, 30, 80) * 0.5 - 3
    x, level = torch.randn(1, 30 * 256), torch.tensor([1.5])
    reference = denoiser(x, denoiser.condition(mel), level)  # training's: no cache budget
    assert reference.requires_grad
    with torch.no_grad():
        cached = denoiser.condition(mel, cache_bytes=2**30)
        uncached = denoiser.condition(mel, cache_bytes=1)
        assert isinstance(cached, list) and len(cached) == len(denoiser.layers)
        assert isinstance(uncached, torch.Tensor)
        x_before = x.clone()
        for cond in (cached, uncached):
            fast = denoiser(x, cond, level)
            assert float((fast - reference).abs().max()) < 1e-5 * float(reference.abs().max())
        assert torch.equal(x, x_before)  # the caller's input is not overwritten
    cached = denoiser.condition(mel, cache_bytes=2**30)  # with autograd as well
    torch.testing.assert_close(denoiser(x, cached, level), reference, atol=1e-6, rtol=1e-5)


def test_cpu_allocator_tuning_and_opt_out(monkeypatch):
    import platform

    from specgrad_plugin import runtime

    monkeypatch.setattr(runtime, "_tuned", False)
    monkeypatch.setenv(runtime.ALLOCATOR_ENV, "default")
    assert runtime.tune_cpu_allocator() is False
    monkeypatch.delenv(runtime.ALLOCATOR_ENV)
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert runtime.tune_cpu_allocator() is expected


def test_allocator_tuning_is_left_to_the_command_line_tools(monkeypatch, tmp_path, tiny_cfg, speech_clip):
    """glibc's malloc settings are process-wide: vocoding as a library leaves them alone, the
    project's own command-line tools set them."""
    from specgrad_plugin import runtime
    from specgrad_plugin.bin import decode
    from specgrad_plugin.testing import make_data_dir

    calls = []
    monkeypatch.setattr(runtime, "tune_cpu_allocator", lambda: calls.append("tuned") or True)
    vocoder = SpecGradVocoder(tiny_cfg)
    vocoder(torch.full((8, 80), -2.0), schedule="WG-3")
    assert calls == []
    vocoder.save(tmp_path / "c.pt")
    scp = make_data_dir(tmp_path / "d", [("a", speech_clip[: 8 * 256])], 22050)
    assert decode.main(["--model_file", str(tmp_path / "c.pt"), "--schedule", "WG-3", "--output_dir",
                        str(tmp_path / "o"), "--data_path_and_name_and_type", f"{scp},speech,sound"]) == 0
    assert calls == ["tuned"]


def test_phase_demodulated_frame_model_chunks_exactly():
    """With frame_phase_demodulation the network's input depends on each frame's index mod 4;
    chunks start on multiples of 4 frames, so chunked output equals the whole input's. Chunks
    that start anywhere must show (the test can fail)."""
    from .conftest import SMALL_FAMILIES

    cfg = SpecGradConfig.from_dict({"denoiser": {**SMALL_FAMILIES["frame"], "frame_phase_demodulation": True}})
    vocoder = SpecGradVocoder(cfg).eval()
    for p in vocoder.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    mel = torch.randn(400, 80) * 0.5 - 3
    whole = vocoder(mel, schedule="WG-3", chunk_frames=0)
    chunked = vocoder(mel, schedule="WG-3", chunk_frames=97)
    assert float((whole - chunked).abs().max()) < 1e-4 * float(whole.abs().max())
    vocoder.denoiser.chunk_alignment = lambda: 1
    unaligned = vocoder(mel, schedule="WG-3", chunk_frames=97)
    assert float((whole - unaligned).abs().max()) > 1e-3 * float(whole.abs().max())


def test_low_band_trunk_starts_silent_and_acts_only_below_its_cutoff():
    """frame_low_band_hz: the second trunk's output starts at zero (the model is the one
    without it), and once trained it changes eps_hat only below its cutoff (1 kHz here; the
    inverse STFT spreads a few bins, not kHz)."""
    from specgrad_plugin import shaping

    from .conftest import SMALL_FAMILIES

    plain = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": SMALL_FAMILIES["frame"]})).eval()
    cfg = SpecGradConfig.from_dict({"denoiser": {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0,
                                                 "frame_low_band_channels": 8}})
    low = SpecGradVocoder(cfg).eval()
    trunk = [p for name, p in low.denoiser.low_band.named_parameters() if not name.startswith("out.")]
    for p in list(plain.denoiser.parameters()) + trunk:
        torch.nn.init.normal_(p, std=0.05)
    low.load_state_dict(plain.state_dict(), strict=False)  # everything but the low trunk
    assert low.denoiser.low_bins == 47  # bins 0 .. 46: up to 1000 Hz at 22050 Hz, n_fft 1024
    mel = torch.randn(1, 40, 80) * 0.5 - 3
    x, level = torch.randn(1, 40 * 256), torch.tensor([0.5])
    with torch.no_grad():
        cond = plain.denoiser.condition(mel, plain.prior.response(mel))
        base = plain.denoiser(x, cond, level)
        assert torch.allclose(low.denoiser(x, cond, level), base, atol=1e-6)  # zero output at the start
        torch.nn.init.normal_(low.denoiser.low_band.out.weight, std=0.05)
        change = shaping.stft(low.denoiser(x, cond, level) - base, 1024, 256, shaping.hann_window(1024)).abs()
    below, above = change[:, :47].pow(2).sum(), change[:, 60:].pow(2).sum()
    assert below > 0 and above < 1e-3 * below


def test_a_deeper_low_band_trunk_has_its_own_blocks_and_its_reach_counts_in_the_context():
    """frame_low_band_layers: the low trunk gets that many blocks (0: frame_layers), and
    context_frames() (what chunked() cuts) is the farther of the two trunks' reaches: a count
    from the main trunk alone, from the low trunk alone or from both added fails."""
    from .conftest import SMALL_FAMILIES, frames_reaching_one_output_frame

    low = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8}
    same = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": low}))
    deep = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": {**low, "frame_low_band_layers": 6}}))
    assert len(same.denoiser.low_band.blocks) == len(same.denoiser.trunk.blocks) == 2
    assert len(deep.denoiser.low_band.blocks) == 6 and len(deep.denoiser.trunk.blocks) == 2
    for p in deep.parameters():
        torch.nn.init.normal_(p, std=0.05)
    reach = frames_reaching_one_output_frame(deep)
    # six 3-tap blocks and the input convolution reach 7 frames, the main trunk 3
    assert deep.denoiser.context_frames() - same.denoiser.context_frames() == 4
    assert same.denoiser.context_frames() < reach <= deep.denoiser.context_frames()
    # a shallower low trunk: its own single block, and the main trunk's reach counts
    shallow = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": {**low, "frame_low_band_layers": 1}}))
    assert len(shallow.denoiser.low_band.blocks) == 1
    assert shallow.denoiser.context_frames() == same.denoiser.context_frames()
    # chunked with no cache equals whole: the count covers what the deeper trunk reaches
    deep.cfg.inference.conditioning_cache_mb = 0
    mel = torch.randn(40, 80) * 0.5 - 3
    with torch.no_grad():
        chunked = deep.eval()(mel, schedule="WG-3", seed=0, chunk_frames=12)
        whole = deep(mel, schedule="WG-3", seed=0, chunk_frames=0)
    assert torch.allclose(chunked, whole, atol=1e-5)
    with pytest.raises(ConfigError, match="frame_low_band_layers=-1"):
        SpecGradConfig.from_dict({"denoiser": {**low, "frame_low_band_layers": -1}})
    with pytest.raises(ConfigError, match="frame_low_band_layers=6 needs a low-band trunk"):
        SpecGradConfig.from_dict({"denoiser": {**low, "frame_low_band_hz": 0.0, "frame_low_band_layers": 6}})


def test_every_vocoding_path_warns_on_a_schedule_below_the_trained_levels():
    """SpecGradVocoder.schedule_betas(warn=True), which forward and vocode_batch both use: a
    schedule starting far below the lowest trained level warns, one starting near x0 does not,
    and without warn=True (the export's and streaming's lookups) nothing is said."""
    import warnings

    from specgrad_plugin.batched import vocode_batch

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame")).eval()
    mel = torch.full((8, vocoder.cfg.features.n_mels), -2.0)
    too_noisy, mild = [0.5, 0.9, 0.99], [1e-4, 1e-3, 1e-2]  # abar 5e-4 and 0.99; trained down to 1e-3
    for vocode in (lambda s: vocoder(mel, schedule=s, seed=0), lambda s: vocode_batch(vocoder, [mel], s)):
        with pytest.warns(UserWarning, match="3 custom betas starts at abar .* below the lowest trained level"):
            vocode(too_noisy)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            vocode(mild)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert len(vocoder.schedule_betas(too_noisy)) == 3


def test_input_warnings_point_at_the_callers_line():
    """The mel-range and schedule warnings name the line that called the vocoder, on every
    path (forward under torch's no_grad wrapper, vocode_batch; a mel far off and one whose
    level alone is off take two different branches), not a frame inside torch or the package.
    (decode's own line, for the decode CLI: tests/test_bad_input.py; the user's line under
    Text2Speech: tests/test_pretrained.py.)"""
    import warnings

    from specgrad_plugin.batched import vocode_batch

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame")).eval()
    n_mels = vocoder.cfg.features.n_mels
    vocoder.set_mel_statistics(torch.full((n_mels,), -2.0), torch.full((n_mels,), 0.5))
    far, quiet = torch.full((8, n_mels), 3.0), torch.full((8, n_mels), -2.9)  # 10 std off; 18 dB low, 1.8 std
    untrained = [0.5, 0.9, 0.99]  # starts below the lowest trained level
    calls = {"forward": lambda: vocoder(far, schedule=untrained, seed=0),
             "vocode_batch": lambda: vocode_batch(vocoder, [far], untrained, seed=0),
             "level note": lambda: vocoder(quiet, schedule=untrained, seed=0)}
    expected = {"forward": "std from the training mels", "vocode_batch": "std from the training mels",
                "level note": "dB below the training"}
    for name, call in calls.items():
        vocoder.input_warnings.warned.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        messages = [str(w.message) for w in caught]
        assert any(expected[name] in m for m in messages), (name, messages)
        assert any("outside what the network learnt" in m for m in messages), (name, messages)
        assert {(w.filename, w.lineno) for w in caught} == {(__file__, call.__code__.co_firstlineno)}, name
