"""Mixed precision: only the denoiser runs in bf16/fp16; the filter, STFT pair and loss stay float32."""

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
    inner = vocoder.denoiser.layers[0] if family == "wavenet" else vocoder.denoiser.blocks[0].expand
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
