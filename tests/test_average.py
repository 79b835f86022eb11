"""Weight averaging of fine-tunes (checkpoints.average, bin.average)."""

import pytest
import torch

from specgrad_plugin import checkpoints, pretrained
from specgrad_plugin.bin import average as average_bin
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.vocoder import SpecGradVocoder


def _with(cfg: SpecGradConfig, section: str, **values) -> SpecGradConfig:
    data = cfg.to_dict()
    data[section] = {**data[section], **values}
    return SpecGradConfig.from_dict(data)


def _fine_tune(cfg: SpecGradConfig, seed: int, path, ema: bool = True):
    """A checkpoint of `cfg`; its EMA copy is the raw weights with every float tensor moved
    (parameters and buffers), so raw, EMA and other seeds all differ."""
    torch.manual_seed(seed)
    model = SpecGradVocoder(cfg)
    if not ema:
        model.save(path)
        return model.state_dict()
    shadow = {k: v + torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.save(path, {"ema": shadow})
    return shadow


def test_average_is_the_mean_of_the_ema_weights(tiny_cfg, tmp_path):
    states = [_fine_tune(_with(tiny_cfg, "train", lr=1e-4 * (seed + 1)), seed, tmp_path / f"{seed}.pt")
              for seed in range(3)]
    weights, config = checkpoints.average([tmp_path / f"{seed}.pt" for seed in range(3)])
    assert config["train"]["lr"] == pytest.approx(1e-4)  # the first checkpoint's config
    floats = [k for k, v in states[0].items() if v.is_floating_point()]
    assert any(not k.startswith("denoiser.") for k in floats)  # buffers outside the denoiser average too
    for key in floats:
        expected = (states[0][key].double() + states[1][key].double() + states[2][key].double()) / 3
        assert weights[key].dtype == torch.float32
        torch.testing.assert_close(weights[key].double(), expected, rtol=0, atol=1e-5)


def test_average_of_shipped_versions_reads_their_base_and_keeps_float32():
    """ljspeech-v2 and -v3 hold only the weights they change in ljspeech-v1 (float16)."""
    paths = [pretrained.resolve(name)[0] for name in ("ljspeech-v2", "ljspeech-v3")]
    weights, _ = checkpoints.average(paths)
    v2, v3 = (SpecGradVocoder.from_pretrained(name).state_dict() for name in ("ljspeech-v2", "ljspeech-v3"))
    changed = [k for k in v2 if v2[k].is_floating_point() and not torch.equal(v2[k], v3[k])]
    assert changed and all(k.startswith("denoiser.low_") or "low" in k for k in changed)
    for key in v2:
        if v2[key].is_floating_point():
            torch.testing.assert_close(weights[key].float(), (v2[key] + v3[key]) / 2, rtol=0, atol=1e-3)
    assert {weights[k].dtype for k in v2 if v2[k].is_floating_point()} == {torch.float32}


def test_bin_average_writes_a_loadable_checkpoint(tiny_cfg, tmp_path):
    a, b = (_fine_tune(tiny_cfg, seed, tmp_path / f"{seed}.pt") for seed in (0, 1))
    assert average_bin.main([str(tmp_path / "0.pt"), str(tmp_path / "1.pt"), "--out", str(tmp_path / "soup.pt")]) == 0
    soup = SpecGradVocoder.from_checkpoint(tmp_path / "soup.pt")
    key = next(k for k, v in a.items() if v.is_floating_point() and k.startswith("denoiser."))
    torch.testing.assert_close(soup.state_dict()[key], (a[key] + b[key]) / 2)
    assert len(torch.load(tmp_path / "soup.pt", weights_only=True)["averaged_from"]) == 2


@pytest.mark.parametrize("section, key, change", [
    ("features", "fmax", -1000), ("prior", "white_mix", 0.1), ("denoiser", "level_embed_dim", 16),
    ("inference", "level_match_db", 1.0), ("diffusion", "beta_end", 0.01)])
def test_average_refuses_checkpoints_of_another_model(tiny_cfg, tmp_path, capsys, section, key, change):
    _fine_tune(tiny_cfg, 0, tmp_path / "a.pt")
    current = tiny_cfg.to_dict()[section][key]
    torch.save({"config": _with(tiny_cfg, section, **{key: current + change}).to_dict(),
                "model": SpecGradVocoder(tiny_cfg).state_dict(), "ema": SpecGradVocoder(tiny_cfg).state_dict()},
               tmp_path / "b.pt")
    with pytest.raises(checkpoints.CheckpointError, match=rf"b\.pt: {section}\.{key} = "):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert average_bin.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--out", str(tmp_path / "s.pt")]) == 2
    assert f"{section}.{key}" in capsys.readouterr().err and not list(tmp_path.glob("s.pt*"))


def test_training_keys_may_differ(tiny_cfg, tmp_path):
    _fine_tune(tiny_cfg, 0, tmp_path / "a.pt")
    other = _with(tiny_cfg, "diffusion", sampler_loss_weight=1.0, sampler_loss_schedule="WG-6")
    _fine_tune(other, 1, tmp_path / "b.pt")
    checkpoints.average([tmp_path / "a.pt", tmp_path / "b.pt"])


def _saved(cfg, path, state, ema=None):
    torch.save({"config": cfg.to_dict(), "model": state, **({"ema": ema} if ema is not None else {})}, path)


def test_average_refuses_weights_that_do_not_match(tiny_cfg, tmp_path):
    state = SpecGradVocoder(tiny_cfg).state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)
    _saved(tiny_cfg, tmp_path / "a.pt", {**state, "count": torch.tensor([3])})
    _saved(tiny_cfg, tmp_path / "b.pt", {**state, "count": torch.tensor([4])})
    with pytest.raises(checkpoints.CheckpointError, match=r"b\.pt: the integer buffer count is \[4\]"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "b.pt"])
    state = {**state, "count": torch.tensor([3])}
    _saved(tiny_cfg, tmp_path / "c.pt", {**state, key: state[key][:, :1]})
    with pytest.raises(checkpoints.CheckpointError, match=rf"c\.pt: {key} has shape"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "c.pt"])
    _saved(tiny_cfg, tmp_path / "d.pt", {k: v for k, v in state.items() if k != key})
    with pytest.raises(checkpoints.CheckpointError, match=rf"d\.pt: .* it lacks \['{key}'\]"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "d.pt"])


def test_average_refuses_repeats_fewer_than_two_and_a_mix_of_ema_and_raw(tiny_cfg, tmp_path):
    _fine_tune(tiny_cfg, 0, tmp_path / "a.pt")
    _fine_tune(tiny_cfg, 1, tmp_path / "raw.pt", ema=False)
    with pytest.raises(checkpoints.CheckpointError, match=r"raw\.pt: has no EMA weights, while .*a\.pt has"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "raw.pt"])
    with pytest.raises(checkpoints.CheckpointError, match="given twice"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "." / "a.pt"])
    with pytest.raises(checkpoints.CheckpointError, match="at least 2"):
        checkpoints.average([tmp_path / "a.pt"])


def test_bin_average_fails_on_an_unwritable_output_without_leaving_files(tiny_cfg, tmp_path, capsys):
    for seed in (0, 1):
        _fine_tune(tiny_cfg, seed, tmp_path / f"{seed}.pt")
    (tmp_path / "out").mkdir()
    assert average_bin.main([str(tmp_path / "0.pt"), str(tmp_path / "1.pt"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not list(tmp_path.glob("out.tmp*"))


def test_weights_with_nan_are_refused_by_name_when_loaded_and_averaged(tiny_cfg, tmp_path, capsys):
    """A diverged run's NaN weights: loading them for vocoding, and averaging them (which
    would pass the NaN on to the soup), each stop with the file and the weight named."""
    state = SpecGradVocoder(tiny_cfg).state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)
    _saved(tiny_cfg, tmp_path / "good.pt", state)
    _saved(tiny_cfg, tmp_path / "nan.pt", {**state, key: torch.full_like(state[key], float("nan"))})
    with pytest.raises(checkpoints.CheckpointError, match=rf"nan\.pt: weight {key} holds \d+ NaN/inf values"):
        SpecGradVocoder.from_checkpoint(tmp_path / "nan.pt")
    assert average_bin.main([str(tmp_path / "good.pt"), str(tmp_path / "nan.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert f"nan.pt: weight {key} holds" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()


def test_bin_average_under_a_file_is_one_line(tiny_cfg, tmp_path, capsys):
    """An --out whose folder is a file is refused by the OS: one line naming the path, not
    torch's serialisation error."""
    for seed in (0, 1):
        _fine_tune(tiny_cfg, seed, tmp_path / f"{seed}.pt")
    (tmp_path / "afile").write_text("x")
    assert average_bin.main([str(tmp_path / "0.pt"), str(tmp_path / "1.pt"), "--out",
                             str(tmp_path / "afile" / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'afile'} is a file; expected a folder there for the output\n"
    before = (tmp_path / "0.pt").read_bytes()
    assert average_bin.main([str(tmp_path / "0.pt"), str(tmp_path / "1.pt"), "--out", str(tmp_path / "0.pt")]) == 2
    assert "one of the checkpoints averaged" in capsys.readouterr().err and (tmp_path / "0.pt").read_bytes() == before


def test_identity_changes_name_each_differing_key_a_family_first():
    before = {"prior": {"kind": "specgrad", "floor_db": -40.0}, "denoiser": {"kind": "frame", "a": 1}}
    after = {"prior": {"kind": "specgrad", "floor_db": -60.0}, "denoiser": {"kind": "wavenet", "b": 2}}
    assert checkpoints.identity_changes(before, after) == ["denoiser.kind", "denoiser.a", "denoiser.b",
                                                           "prior.floor_db"]
    assert checkpoints.identity_changes(before, before) == []


def test_average_sums_in_float64_and_keeps_a_float16_mean_in_float32(tiny_cfg, tmp_path):
    """Beside 2^24 a float32 sum drops the 1s (the exact mean, (2^24 + 2) / 3, is a float32);
    the mean of the adjacent float16 values 1 and 1 + 2^-10 is 1 + 2^-11, which float16 would
    round back to 1."""
    model = SpecGradVocoder(tiny_cfg)
    key = next(k for k, v in model.state_dict().items() if v.is_floating_point() and v.numel() > 1)
    for n, (big, small) in enumerate(((2.0**24, 1.0), (1.0, 1.0 + 2**-10), (1.0, 1.0))):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        state[key].view(-1)[:2] = torch.tensor([big, small])
        halves = {k: v.half() if k == key else v for k, v in state.items()}
        model.save(tmp_path / f"{n}.pt", {"ema": state})
        model.save(tmp_path / f"h{n}.pt", {"ema": halves})
    weights, _ = checkpoints.average([tmp_path / f"{n}.pt" for n in range(3)])
    assert float(weights[key].view(-1)[0]) == (2.0**24 + 2.0) / 3
    halves, _ = checkpoints.average([tmp_path / f"h{n}.pt" for n in (1, 2)])
    assert halves[key].dtype == torch.float32 and float(halves[key].view(-1)[1]) == 1.0 + 2**-11
    doubles = {k: v.double() if k == key else v for k, v in model.state_dict().items()}
    model.save(tmp_path / "d.pt", {"ema": doubles})  # a float64 checkpoint keeps its mean in float64
    assert checkpoints.average([tmp_path / "0.pt", tmp_path / "d.pt"])[0][key].dtype == torch.float64
