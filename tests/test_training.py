"""The tiny model learns: the loss on fixed noise draws falls clearly within a minute."""

import torch

from specgrad_plugin.data import SegmentDataset
from specgrad_plugin.training import ema_update, make_ema, optimisation_step
from specgrad_plugin.vocoder import SpecGradVocoder


def fixed_loss(vocoder, wav, mel) -> float:
    """The training loss on the same noise draws and levels every time it is called."""
    state = torch.random.get_rng_state()
    torch.manual_seed(123)
    with torch.no_grad():
        value = sum(float(vocoder.training_loss(wav, mel)[0]) for _ in range(8)) / 8
    torch.random.set_rng_state(state)
    return value


def test_tiny_model_overfits_one_clip(tiny_cfg, speech_clip):
    vocoder = SpecGradVocoder(tiny_cfg)
    data = SegmentDataset([speech_clip[: 2 * 22050]], vocoder.features, segment_frames=16)
    wav, mel = data.items[0]
    wav, mel = wav[None, : 96 * 256], mel[None, :96]
    before = fixed_loss(vocoder, wav, mel)
    optimizer = torch.optim.Adam(vocoder.parameters(), lr=2e-3)
    ema = make_ema(vocoder)
    loader = torch.utils.data.DataLoader(
        data, batch_size=4, sampler=torch.utils.data.RandomSampler(data, replacement=True, num_samples=4 * 40)
    )
    for step, (seg, seg_mel) in enumerate(loader):
        loss, _ = vocoder.training_loss(seg, seg_mel)
        assert optimisation_step(loss, vocoder, optimizer, grad_clip=1.0) is not None
        ema_update(ema, vocoder, 0.999, step)
    after = fixed_loss(vocoder, wav, mel)
    assert after < 0.7 * before, (before, after)
    assert fixed_loss(ema, wav, mel) < before


def test_non_finite_loss_skips_the_update(tiny_cfg):
    vocoder = SpecGradVocoder(tiny_cfg)
    optimizer = torch.optim.Adam(vocoder.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in vocoder.state_dict().items()}
    loss = vocoder.denoiser.out.weight.sum() * float("nan")
    assert optimisation_step(loss, vocoder, optimizer, grad_clip=1.0) is None
    assert all(torch.equal(before[k], v) for k, v in vocoder.state_dict().items())
