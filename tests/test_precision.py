"""Mixed precision: only the denoiser runs in bf16/fp16; the filter, STFT pair and loss stay float32."""

import subprocess
import sys

import pytest
import torch

from specgrad_plugin import precision
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import SMALL_FAMILIES, small_config


def _loss(vocoder, wav, mel, amp_dtype, seed=0):
    torch.manual_seed(seed)
    return vocoder.training_loss(wav, mel, amp_dtype)[0]


@pytest.mark.parametrize("family", sorted(SMALL_FAMILIES))
def test_bf16_autocast_runs_the_denoiser_only_and_matches_fp32(family, speech_clip):
    vocoder = SpecGradVocoder(small_config(family))
    for p in vocoder.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    wav = torch.from_numpy(speech_clip[: 4 * 32 * 256]).view(4, -1)
    mel = vocoder.features(wav)
    inner = vocoder.denoiser.layers[0] if family == "wavenet" else vocoder.denoiser.trunk.blocks[0].expand
    dtypes = []
    handle = inner.register_forward_hook(lambda module, args, out: dtypes.append(
        (out[0] if isinstance(out, tuple) else out).dtype))
    full = _loss(vocoder, wav, mel, None)
    mixed = _loss(vocoder, wav, mel, torch.bfloat16)
    handle.remove()
    assert dtypes == [torch.float32, torch.bfloat16]  # autocast reached the denoiser
    assert mixed.dtype == torch.float32
    # Same draws: bf16's 8-bit mantissa in the denoiser moves the loss by well under 3 %.
    assert abs(float(mixed) - float(full)) < 0.03 * float(full)
    mixed.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vocoder.denoiser.parameters())


def test_filter_and_loss_stay_float32_inside_an_outer_autocast(speech_clip):
    """ESPnet's --use_amp wraps the whole model call in autocast: the loss must not change
    unless the denoiser itself is put in reduced precision."""
    vocoder = SpecGradVocoder(small_config("frame"))
    for p in vocoder.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    wav = torch.from_numpy(speech_clip[: 2 * 32 * 256]).view(2, -1)
    mel = vocoder.features(wav)
    full = _loss(vocoder, wav, mel, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wrapped = _loss(vocoder, wav, mel, None)
    assert torch.equal(full, wrapped)


def test_amp_dtype_and_tf32_switch():
    assert precision.amp_dtype(torch.device("cpu")) == torch.bfloat16
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        precision.set_tf32(False)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        precision.set_tf32(True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        precision.set_tf32(before)


def _tf32_flags():
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.mark.parametrize("allow_tf32", [True, False])
def test_vocoding_uses_the_configs_tf32_and_restores_the_process_flags(allow_tf32):
    """Text2Speech runs its TTS model in the same process: a vocoder call must not leave TF32
    switched for it. The flags are process-wide (also on a CPU-only build), so this runs anywhere."""
    vocoder = SpecGradVocoder(small_config("frame", inference={"allow_tf32": allow_tf32})).eval()
    seen = []
    vocoder.denoiser.register_forward_pre_hook(lambda module, args: seen.append(_tf32_flags()))
    before = _tf32_flags()
    try:
        precision.set_tf32(not allow_tf32)
        vocoder(torch.full((8, 80), -2.0), schedule="WG-3")
        assert seen and set(seen) == {(allow_tf32, allow_tf32)}
        assert _tf32_flags() == (not allow_tf32, not allow_tf32)
        with pytest.raises(RuntimeError, match="inside"):  # restored on the way out of an error too
            with precision.tf32(allow_tf32):
                raise RuntimeError("inside")
        assert _tf32_flags() == (not allow_tf32, not allow_tf32)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_tf32_set_through_torchs_newer_api_is_left_alone():
    """allow_tf32 cannot be read (torch raises) once a caller used fp32_precision; the vocoder
    then keeps the caller's choice instead of failing. A fresh process: the state is global."""
    code = ("import torch; from specgrad_plugin import precision\n"
            "torch.backends.cuda.matmul.fp32_precision = 'tf32'\n"
            "with precision.tf32(False):\n"
            "    inside = torch.backends.cuda.matmul.fp32_precision\n"
            "print(inside, torch.backends.cuda.matmul.fp32_precision)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["tf32", "tf32"]
