"""The model shipped in the package: loaded by name, by ESPnet's vocoder tags, by decode, packed."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import soundfile as sf
import torch

from specgrad_plugin import pretrained
from specgrad_plugin.bin import decode
from specgrad_plugin.checkpoints import CheckpointError
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.scoring import mel_l1
from specgrad_plugin.testing import make_data_dir, make_tts_exp
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import load_script
from .test_espnet import FEATS, _tts_inference

PACK = Path(__file__).resolve().parents[1] / "egs" / "ljspeech" / "voc_specgrad" / "local" / "pack.py"


@pytest.fixture(scope="module")
def shipped():
    return SpecGradVocoder.from_pretrained("ljspeech")


def test_shipped_model_loads_by_name_and_vocodes_a_clip(shipped, speech_clip):
    """Its sampler's output is far closer to the clip than an untrained model's (same config,
    same draws): broken, missing or mis-loaded weights would not be. Both without the gain
    steps after the sampler, which bring any output near its mel, an untrained one's too."""
    assert shipped.cfg.denoiser.kind == "frame"
    assert SpecGradVocoder.from_pretrained("specgrad/ljspeech").state_dict().keys() == shipped.state_dict().keys()
    ref = crop_to_hop(torch.from_numpy(speech_clip[: 3 * 22050]), 256)
    mel = shipped.features(ref[None])[0]
    wav = shipped(mel, schedule="WG-6")
    assert wav.shape == ref.shape and torch.isfinite(wav).all()
    config = SpecGradConfig.from_dict(shipped.cfg.to_dict())  # a copy
    config.inference.mel_gain_iterations = 0
    trained, untrained = SpecGradVocoder(config).eval(), SpecGradVocoder(config).eval()
    trained.load_state_dict(shipped.state_dict())
    untrained.load_state_dict({k: v for k, v in shipped.state_dict().items() if not k.startswith("denoiser.")},
                              strict=False)
    ours = mel_l1(ref.numpy(), trained(mel, schedule="WG-6").numpy(), shipped.features)
    baseline = mel_l1(ref.numpy(), untrained(mel, schedule="WG-6").numpy(), shipped.features)
    assert ours < 0.5 * baseline, (ours, baseline)
    # as shipped, the gain steps bring the same draws' output nearer the clip's mel
    assert mel_l1(ref.numpy(), wav.numpy(), shipped.features) < 0.8 * ours


def test_unknown_name_lists_the_shipped_ones():
    listed = ("'vctk' is not shipped; available: ljspeech, ljspeech-v1, ljspeech-v2, ljspeech-v3, ljspeech-v4, "
              "ljspeech-v5 ")
    with pytest.raises(pretrained.UnknownModelError, match=listed):
        SpecGradVocoder.from_pretrained("vctk")
    with pytest.raises(pretrained.UnknownModelError, match="'specgrad/ljspeech-v0' is not shipped"):
        pretrained.resolve("specgrad/ljspeech-v0")


def test_unversioned_name_is_the_latest_version():
    """Each name resolves to its own folder; the unversioned one to the newest version's."""
    assert pretrained.available() == ["ljspeech", "ljspeech-v1", "ljspeech-v2", "ljspeech-v3", "ljspeech-v4",
                                      "ljspeech-v5"]
    released = [model.released for model in pretrained.MODELS.values()]
    assert released == sorted(released)  # listed oldest first
    latest = list(pretrained.MODELS)[-1]
    assert pretrained.version_of("specgrad/ljspeech") == latest == "ljspeech-v5"
    weights, config = pretrained.resolve("specgrad/ljspeech-v5")
    assert (weights, config) == pretrained.resolve("ljspeech") and weights.parent.name == "ljspeech-v5"
    assert pretrained.resolve("ljspeech-v1")[0].parent.name == "ljspeech"  # the released folder, unchanged
    for name in pretrained.MODELS:
        assert (pretrained.resolve(name)[0].parent / "README.md").is_file()  # its model card
    listing = subprocess.run([sys.executable, "-m", "specgrad_plugin.pretrained"], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert [line.split(":")[0] for line in listing.stdout.splitlines()] == [
        "specgrad/ljspeech", "specgrad/ljspeech-v1", "specgrad/ljspeech-v2", "specgrad/ljspeech-v3",
        "specgrad/ljspeech-v4", "specgrad/ljspeech-v5"]
    assert "released 2026-11-28" in listing.stdout and "released 2026-12-04" in listing.stdout


def test_text2speech_takes_the_specgrad_tag_and_leaves_other_tags_to_espnet(tmp_path):
    from espnet2.bin.tts_inference import Text2Speech

    import specgrad_plugin  # noqa: F401  (registers)

    make_tts_exp(tmp_path / "tts", FEATS)
    tts = {"train_config": tmp_path / "tts" / "config.yaml", "model_file": tmp_path / "tts" / "model.pth"}
    text2speech = Text2Speech.from_pretrained(vocoder_tag="specgrad/ljspeech", minlenratio=2.0, maxlenratio=2.0,
                                              **tts)
    from specgrad_plugin.checks import InputMelWarning

    def synthesise():
        return text2speech("hello world.")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = synthesise()
    assert out["wav"].shape[0] == out["feat_gen"].shape[0] * 256
    # an untrained TTS model's mel is far from the training mels: the warning names the line
    # that called Text2Speech, not ESPnet's line that called the vocoder
    ours = [w for w in caught if issubclass(w.category, InputMelWarning)]
    assert ours and {(w.filename, w.lineno) for w in ours} == {(__file__, synthesise.__code__.co_firstlineno + 1)}
    with pytest.raises(ValueError, match="foo/bar is unsupported format"):
        Text2Speech.from_pretrained(vocoder_tag="foo/bar", **tts)
    with pytest.raises(ImportError):  # ESPnet's own route: it needs the parallel_wavegan package
        Text2Speech.from_pretrained(vocoder_tag="parallel_wavegan/ljspeech_hifigan.v1", **tts)
    with pytest.raises(pretrained.UnknownModelError, match="specgrad/vctk"):
        Text2Speech.from_pretrained(vocoder_tag="specgrad/vctk", **tts)


def test_unmodified_tts_inference_cli_takes_the_specgrad_tag(tmp_path):
    make_tts_exp(tmp_path / "tts", FEATS)
    result = _tts_inference(tmp_path / "tts", tmp_path / "o", ["--vocoder_tag", "specgrad/ljspeech"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SpecGrad vocoder from" in result.stderr and "pretrained/ljspeech-v5/model.pth" in result.stderr
    assert sf.read(tmp_path / "o" / "wav" / "utt1.wav")[1] == 22050
    unknown = _tts_inference(tmp_path / "tts", tmp_path / "u", ["--vocoder_tag", "specgrad/vctk"])
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "error: --vocoder_tag: pretrained SpecGrad model 'specgrad/vctk' is not shipped" in unknown.stderr


def test_decode_takes_the_shipped_model(tmp_path, speech_clip):
    scp = make_data_dir(tmp_path / "d", [("a", speech_clip[: 22050])], 22050)
    assert decode.main(["--model_tag", "specgrad/ljspeech", "--data_path_and_name_and_type", f"{scp},speech,sound",
                        "--output_dir", str(tmp_path / "o")]) == 0
    assert len(sf.read(tmp_path / "o" / "wav" / "a.wav")[0]) == (22050 // 256) * 256
    assert decode.main(["--model_tag", "nope", "--data_path_and_name_and_type", f"{scp},speech,sound",
                        "--output_dir", str(tmp_path / "p")]) == 2


def test_packed_zip_of_the_shipped_model_loads(tmp_path, shipped):
    from espnet2.tasks.tts import TTSTask
    from espnet_model_zoo.downloader import ModelDownloader

    import specgrad_plugin  # noqa: F401

    weights, config = pretrained.resolve("ljspeech")
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(config.read_text())
    (exp / "model.pth").write_bytes(weights.read_bytes())
    (exp / "checkpoint.pth").write_bytes(b"not a model")

    def pack(*args):  # as run.sh runs it: from the recipe folder, the model under it
        return subprocess.run([sys.executable, str(PACK), *args], capture_output=True, text=True, cwd=tmp_path)

    (exp / "valid.pesq.best.pth").symlink_to("model.pth")  # as ESPnet links its best model
    done = pack(str(exp), str(exp / "valid.pesq.best.pth"), "ljspeech.zip")
    assert done.returncode == 0, done.stderr
    unpacked = ModelDownloader(tmp_path / "zoo").download_and_unpack(str(tmp_path / "ljspeech.zip"))
    # the unpacked copies, not the files packed (meta.yaml holds paths relative to the recipe)
    assert all(Path(unpacked[k]).resolve().is_relative_to(tmp_path / "zoo") for k in ("vocoder_file", "vocoder_config"))
    vocoder = TTSTask.build_vocoder_from_file(unpacked["vocoder_config"], unpacked["vocoder_file"], None, "cpu")
    mel = torch.randn(6, 80) - 3
    assert torch.equal(vocoder(mel), shipped(mel))
    for args, message in (((str(exp), str(exp / "checkpoint.pth"), "x.zip"), "checkpoint.pth: not a readable"),
                          ((str(exp), str(exp / "model.pth"), "exp"), "exp: expected an archive name"),
                          ((str(exp), str(weights), "y.zip"), "outside the working folder")):
        done = pack(*args)
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "y.zip").exists()


def test_ship_pretrained_writes_the_folder_or_leaves_it_as_it_was(tmp_path, monkeypatch):
    ship = load_script(PACK.parent / "ship_pretrained.py")
    checkpoint = pretrained.resolve("ljspeech")[0]
    assert ship.main(str(checkpoint), "again", root=tmp_path) == 0
    shipped = {f: (tmp_path / "again" / f).read_bytes() for f in ("model.pth", "config.yaml")}
    assert SpecGradVocoder.from_checkpoint(tmp_path / "again" / "model.pth").cfg.denoiser.kind == "frame"
    v1 = str(pretrained.resolve("ljspeech-v1")[0])
    # v1's folder, v1's name (not a folder: it would make one), v5's; kept as changes to v1, each
    # would fit in the size limit, so only the name refuses it
    for released in ("ljspeech", "ljspeech-v1", "ljspeech-v5"):
        assert ship.main(v1, released, "ljspeech-v1") == 1
    assert not (pretrained.ROOT / "ljspeech-v1").exists()
    monkeypatch.setattr(ship, "LIMIT_MB", 1)  # over the cap: an error, and the shipped files untouched
    assert ship.main(str(checkpoint), "again", root=tmp_path) == 1
    assert {f: (tmp_path / "again" / f).read_bytes() for f in shipped} == shipped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no scratch folder left behind
    (tmp_path / "b").mkdir()  # kept as changes to ljspeech-v1: none, so a file of config and no weights
    assert ship.main(v1, "same", "ljspeech-v1", root=tmp_path / "b") == 0
    assert (tmp_path / "b" / "same" / "model.pth").stat().st_size < 100_000


def test_a_version_kept_as_changes_to_another_loads_whole_and_ships_small(tmp_path, shipped):
    """export(base=) keeps only the weights that differ from the base model's; loading adds back
    the rest, so the model equals the one exported. A base the package lacks is a clear error."""
    changed = SpecGradVocoder.from_pretrained("ljspeech-v1")
    with torch.no_grad():
        changed.denoiser.low_band.out.bias.add_(0.01)
    path = pretrained.export(changed, tmp_path / "v9", base="ljspeech-v1")
    payload = torch.load(path, weights_only=True)
    assert payload["base"] == "ljspeech-v1" and sorted(payload["model"]) == ["denoiser.low_band.out.bias"]
    loaded = SpecGradVocoder.from_checkpoint(path)
    assert all(torch.equal(v, changed.state_dict()[k].to(v.dtype)) for k, v in loaded.state_dict().items()
               if not k.startswith("denoiser."))  # statistics exactly; the denoiser as shipped (float16)
    assert torch.equal(loaded.denoiser.low_band.out.bias, changed.denoiser.low_band.out.bias.half().float())
    base = SpecGradVocoder.from_pretrained("ljspeech-v1")
    assert torch.equal(loaded.denoiser.trunk.out.weight, base.denoiser.trunk.out.weight)
    payload["base"] = "ljspeech-v0"
    torch.save(payload, tmp_path / "orphan.pth")
    with pytest.raises(CheckpointError, match="orphan.pth: its weights are changes to the shipped model 'ljspeech-v0'"):
        SpecGradVocoder.from_checkpoint(tmp_path / "orphan.pth")


def test_changes_kept_as_int8_steps_load_within_half_a_step_and_ship_at_half_the_size(tmp_path, shipped):
    """export(quantise_changes=True) stores each changed denoiser tensor as int8 steps of its
    change from the base's weights: every weight loads within step / 2 of the trained one
    (float32, not the float16 rounding), the unchanged ones exactly as the base's, in half the
    bytes of float16 changes; a change whose shape the base lacks is refused by name."""
    changed = SpecGradVocoder.from_pretrained("ljspeech-v1")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in changed.denoiser.low_band.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=g))
    trained = {k: v.clone() for k, v in changed.state_dict().items()}
    plain = pretrained.export(changed, tmp_path / "half", base="ljspeech-v1")
    path = pretrained.export(changed, tmp_path / "int8", base="ljspeech-v1", quantise_changes=True)
    assert path.stat().st_size < 0.6 * plain.stat().st_size
    payload = torch.load(path, weights_only=True)
    low = [k for k in trained if k.startswith("denoiser.low_band.")]
    assert sorted(payload["changes"]) == sorted(low) and not any(k.startswith("denoiser.") for k in payload["model"])
    base = SpecGradVocoder.from_pretrained("ljspeech-v1").state_dict()
    loaded = SpecGradVocoder.from_checkpoint(path).state_dict()
    for k in low:
        step = float(payload["changes"][k]["step"])
        assert step == pytest.approx(float((trained[k] - base[k]).abs().max()) / 127, rel=1e-5)
        assert float((loaded[k] - trained[k]).abs().max()) <= step / 2 * (1 + 1e-3) + 1e-7, k
    assert torch.equal(loaded["denoiser.trunk.out.weight"], base["denoiser.trunk.out.weight"])
    key = low[0]
    bad = {**payload, "changes": {**payload["changes"], key: {"steps": payload["changes"][key]["steps"][:1],
                                                              "step": payload["changes"][key]["step"]}}}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=f"bad.pth: change to '{key}' of shape"):
        SpecGradVocoder.from_checkpoint(tmp_path / "bad.pth")
    torch.save({**payload, "changes": {key: {"steps": payload["changes"][key]["steps"]}}}, tmp_path / "nostep.pth")
    with pytest.raises(CheckpointError, match=f"nostep.pth: change to '{key}' is \\['steps'\\], expected a scalar"):
        SpecGradVocoder.from_checkpoint(tmp_path / "nostep.pth")
    torch.save({k: v for k, v in payload.items() if k != "base"}, tmp_path / "nobase.pth")
    with pytest.raises(CheckpointError, match="nobase.pth: holds int8 changes to a base model but names none"):
        SpecGradVocoder.from_checkpoint(tmp_path / "nobase.pth")
    with pytest.raises(ValueError, match="quantise_changes"):
        pretrained.export(changed, tmp_path / "nobase", quantise_changes=True)


def test_int8_steps_are_taken_from_the_base_as_it_loads(tmp_path, shipped, monkeypatch):
    """A base that itself holds int8 changes loads with weights float16 cannot hold: the steps
    are measured from those weights, so a version on top of it still lands within step / 2."""
    real = SpecGradVocoder.from_pretrained.__func__

    def offset_v1(cls, name, *args, **kwargs):  # "ljspeech-v1" now loads off the float16 grid
        model = real(cls, name, *args, **kwargs)
        if name == "ljspeech-v1":
            with torch.no_grad():
                for p in model.denoiser.low_band.parameters():
                    p.add_(1e-4 / 3)
        return model

    monkeypatch.setattr(SpecGradVocoder, "from_pretrained", classmethod(offset_v1))
    changed = SpecGradVocoder.from_pretrained("ljspeech-v1")
    with torch.no_grad():
        changed.denoiser.low_band.out.weight.add_(1e-3)
    trained = changed.state_dict()["denoiser.low_band.out.weight"].clone()
    path = pretrained.export(changed, tmp_path / "v9", base="ljspeech-v1", quantise_changes=True)
    step = float(torch.load(path, weights_only=True)["changes"]["denoiser.low_band.out.weight"]["step"])
    loaded = SpecGradVocoder.from_checkpoint(path).state_dict()["denoiser.low_band.out.weight"]
    assert float((loaded - trained).abs().max()) <= step / 2 * (1 + 1e-3) + 1e-7
