"""Weight averaging of fine-tunes (checkpoints.average, bin.average)."""

import copy

import pytest
import torch

from specgrad_plugin import checkpoints
from specgrad_plugin.bin import average as average_bin
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.vocoder import SpecGradVocoder


def _fine_tune(cfg: SpecGradConfig, seed: int, path, ema: bool = True, **train):
    """A checkpoint of `cfg` with its own random weights (the EMA copy different from the raw)."""
    torch.manual_seed(seed)
    model = SpecGradVocoder(SpecGradConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], **train}}))
    extra = {}
    if ema:
        shadow = copy.deepcopy(model)
        with torch.no_grad():
            for p in shadow.parameters():
                p.add_(torch.randn_like(p))
        extra["ema"] = shadow.state_dict()
    model.save(path, extra)
    return (extra["ema"] if ema else model.state_dict())


def test_average_is_the_mean_of_the_ema_weights(tiny_cfg, tmp_path):
    states = [_fine_tune(tiny_cfg, seed, tmp_path / f"{seed}.pt", lr=1e-4 * (seed + 1)) for seed in range(3)]
    weights, config = checkpoints.average([tmp_path / f"{seed}.pt" for seed in range(3)])
    assert config == SpecGradConfig.from_dict(torch.load(tmp_path / "0.pt", weights_only=True)["config"]).to_dict()
    floats = [k for k, v in states[0].items() if v.is_floating_point() and not torch.equal(v, states[1][k])]
    assert len(floats) > 10  # the parameters; buffers (mel basis, statistics) are equal in all
    for key in floats:
        expected = (states[0][key].double() + states[1][key].double() + states[2][key].double()) / 3
        assert weights[key].dtype == states[0][key].dtype
        torch.testing.assert_close(weights[key].double(), expected, rtol=0, atol=1e-6)
        assert not torch.allclose(weights[key], states[0][key])  # a "first checkpoint wins" would pass above alone


def test_bin_average_writes_a_loadable_checkpoint(tiny_cfg, tmp_path):
    a, b = (_fine_tune(tiny_cfg, seed, tmp_path / f"{seed}.pt") for seed in (0, 1))
    assert average_bin.main([str(tmp_path / "0.pt"), str(tmp_path / "1.pt"), "--out", str(tmp_path / "soup.pt")]) == 0
    soup = SpecGradVocoder.from_checkpoint(tmp_path / "soup.pt")
    key = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    torch.testing.assert_close(soup.state_dict()[key], (a[key] + b[key]) / 2)
    assert len(torch.load(tmp_path / "soup.pt", weights_only=True)["averaged_from"]) == 2


def test_average_refuses_other_models(tiny_cfg, tmp_path, capsys):
    _fine_tune(tiny_cfg, 0, tmp_path / "a.pt")
    other = tiny_cfg.to_dict()
    other["features"] = {**other["features"], "fmax": other["features"]["fmax"] - 1000}
    _fine_tune(SpecGradConfig.from_dict(other), 1, tmp_path / "b.pt")
    with pytest.raises(checkpoints.CheckpointError, match=r"b\.pt.*'features'"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert average_bin.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--out", str(tmp_path / "s.pt")]) == 2
    assert "features" in capsys.readouterr().err and not (tmp_path / "s.pt").exists()
    with pytest.raises(checkpoints.CheckpointError, match="at least 2"):
        checkpoints.average([tmp_path / "a.pt"])


def test_average_refuses_different_weights(tiny_cfg, tmp_path):
    _fine_tune(tiny_cfg, 0, tmp_path / "a.pt", ema=False)
    state = SpecGradVocoder(tiny_cfg).state_dict()
    key = next(iter(state))
    torch.save({"config": tiny_cfg.to_dict(), "model": {k: v for k, v in state.items() if k != key}}, tmp_path / "b.pt")
    with pytest.raises(checkpoints.CheckpointError, match=r"b\.pt.*keys in one only"):
        checkpoints.average([tmp_path / "a.pt", tmp_path / "b.pt"])
