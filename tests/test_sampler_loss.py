"""The sampler loss trains what inference runs (the same chain, the same noise), in the low
band only, through every step; train.freeze leaves the named parameters as they were."""

import math

import pytest
import torch

from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.sampler_loss import (
    DECIMATION,
    PHASE_FFT_SIZE,
    PHASE_LAG,
    SamplerLoss,
    frame_periodic_distance,
    fundamental_distance,
    fundamental_mask,
    low_band,
    phase_advance_distance,
    reference_f0,
)
from specgrad_plugin.training import fit, trainable_parameters
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import SMALL_FAMILIES, small_config

FS = 22050
LOW_TRUNK = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8}
FROZEN = ["denoiser.trunk", "denoiser.level_embedding", "denoiser.gain_bias"]


def sine(hz: float, n: int = 8192, amplitude: float = 0.3) -> torch.Tensor:
    return amplitude * torch.sin(2 * math.pi * hz * torch.arange(n) / FS)


def test_low_band_keeps_below_the_cutoff_and_removes_above():
    low, high = sine(500.0)[None], sine(3000.0)[None]
    assert low_band(low).shape == (1, 8192 // DECIMATION)
    keep = float(low_band(low)[:, 64:-64].pow(2).mean() / low[:, 512:-512].pow(2).mean())
    assert 0.95 < keep < 1.05, keep
    assert float(low_band(high).pow(2).mean() / high.pow(2).mean()) < 1e-3


def test_distance_sees_an_error_below_one_khz_and_not_one_above(speech_clip):
    loss = SamplerLoss("WG-6")
    clean = torch.from_numpy(speech_clip[:8192]).float()[None]
    above = float(loss.low_band_distance(clean + sine(3000.0, amplitude=0.05)[None], clean))
    below = float(loss.low_band_distance(clean + sine(300.0, amplitude=0.05)[None], clean))
    assert float(loss.low_band_distance(clean, clean)) < 1e-4
    assert above < 0.05 < below, (above, below)


def test_phase_advance_distance_ignores_a_phase_offset_and_measures_a_frequency_error():
    """A steady tone advances 2 pi f lag / fs over a lag whatever its phase: a quarter-period
    offset costs nothing; a tone off by fs / (6 lag) differs by pi / 3 in every bin, so the
    distance is 1 - cos(pi / 3) = 0.5; noise against a tone is about 1."""
    fs, lag, n = FS / DECIMATION, PHASE_LAG * PHASE_FFT_SIZE // 8, 4096
    t = torch.arange(n) / fs
    reference = torch.sin(2 * math.pi * 300.0 * t)[None]
    shifted = torch.cos(2 * math.pi * 300.0 * t)[None]
    detuned = torch.sin(2 * math.pi * (300.0 + fs / (6 * lag)) * t)[None]
    assert float(phase_advance_distance(shifted, reference)) < 0.01
    assert abs(float(phase_advance_distance(detuned, reference)) - 0.5) < 0.03
    noise = torch.randn(1, n, generator=torch.Generator().manual_seed(0))
    assert 0.8 < float(phase_advance_distance(noise, reference)) < 1.2
    assert float(phase_advance_distance(reference, reference)) < 1e-3


def test_phase_weight_adds_the_low_bands_phase_distance(speech_clip):
    clean = torch.from_numpy(speech_clip[:8192]).float()[None]
    noisy = clean + 0.2 * torch.randn(1, 8192, generator=torch.Generator().manual_seed(1))
    plain = float(SamplerLoss("WG-6").low_band_distance(noisy, clean))
    phased = float(SamplerLoss("WG-6", phase_weight=2.0).low_band_distance(noisy, clean))
    expected = plain + 2.0 * float(phase_advance_distance(low_band(noisy), low_band(clean)))
    assert phased > plain + 0.05 and abs(phased - expected) < 1e-5, (plain, phased, expected)


def test_frame_periodic_distance_sees_a_buzz_at_the_frame_rate_and_not_a_voice():
    g = torch.Generator().manual_seed(0)
    period, frames = 32, 64
    reference, other = torch.randn(2, 4, frames * period, generator=g)
    assert 0.7 < float(frame_periodic_distance(other, reference, period)) < 1.3  # unrelated noises
    assert float(frame_periodic_distance(reference, reference, period)) < 1e-6
    # the same noise plus a pulse every period, 9 dB under it (a buzz at the frame rate): D ~ K / 17
    buzz = torch.zeros(period)
    buzz[0] = 2.0
    buzzed = reference + buzz.repeat(frames)
    assert float(frame_periodic_distance(buzzed, reference, period)) > 3.0
    # ... while a tone between the frame rate's harmonics, 12 dB under it, is not
    n = torch.arange(frames * period)
    tone = 2.0 * math.sqrt(1 / period) * torch.sin(2 * math.pi * 2.5 * n / period)
    assert float(frame_periodic_distance(reference + tone, reference, period)) < 0.1
    with pytest.raises(ValueError, match="period=32"):
        frame_periodic_distance(reference[:, :-1], reference[:, :-1], period)
    # each item is its own ratio: a batch of one buzzed and three clean items is their mean
    mixed = torch.cat([buzzed[:1], other[1:]])
    each = [float(frame_periodic_distance(mixed[i:i + 1], reference[i:i + 1], period)) for i in range(4)]
    assert float(frame_periodic_distance(mixed, reference, period)) == pytest.approx(sum(each) / 4, rel=1e-5)


def test_frame_periodic_weight_adds_the_low_bands_distance(speech_clip):
    clean = torch.from_numpy(speech_clip[:8192]).float()[None]
    noisy = clean + 0.05 * torch.randn(1, 8192, generator=torch.Generator().manual_seed(1))
    plain = float(SamplerLoss("WG-6").low_band_distance(noisy, clean))
    weighted = float(SamplerLoss("WG-6", frame_periodic_weight=2.0, hop=256).low_band_distance(noisy, clean))
    expected = plain + 2.0 * float(frame_periodic_distance(low_band(noisy), low_band(clean), 256 // DECIMATION))
    assert weighted > plain and abs(weighted - expected) < 1e-5, (plain, weighted, expected)


def test_fundamental_mask_covers_the_bins_below_one_and_a_half_f0_of_voiced_frames():
    fs, n_fft = FS / DECIMATION, PHASE_FFT_SIZE  # bins 21.5 Hz apart
    mask = fundamental_mask(torch.tensor([[100.0, 0.0, 200.0]]), fs, n_fft)
    assert mask.shape == (1, n_fft // 2 + 1, 3)
    assert mask[0, :, 0].nonzero().flatten().tolist() == list(range(7))  # below 150 Hz: bins 0..6
    assert mask[0, :, 1].sum() == 0  # unvoiced
    assert mask[0, :, 2].nonzero().flatten().tolist() == list(range(14))  # below 300 Hz: bins 0..13


def test_fundamental_distance_sees_the_fundamental_and_not_the_harmonics_above():
    """A 150 Hz voice with its 3rd harmonic: WORLD finds 150 Hz; the distance is 0 against
    itself, ignores the 450 Hz harmonic (above 1.5 F0), is log 2 for a fundamental at half
    its amplitude and large for noise in its place; no voiced frame, no distance."""
    fs, n = FS / DECIMATION, 4096
    t = torch.arange(n) / fs
    fundamental, third = 0.3 * torch.sin(2 * math.pi * 150.0 * t)[None], 0.2 * torch.sin(2 * math.pi * 450.0 * t)[None]
    reference = fundamental + third
    f0 = reference_f0(reference, fs, PHASE_FFT_SIZE // 8)
    assert f0.shape == (1, n // (PHASE_FFT_SIZE // 8) + 1)
    assert float((f0[0, 20:-20] - 150.0).abs().max()) < 3.0, f0
    assert float(fundamental_distance(reference, reference, f0, fs)) < 1e-3
    assert float(fundamental_distance(fundamental + 0.3 * third, reference, f0, fs)) < 0.02
    halved = float(fundamental_distance(0.5 * fundamental + third, reference, f0, fs))
    assert abs(halved - math.log(2)) < 0.1, halved
    noise = 0.05 * torch.randn(1, n, generator=torch.Generator().manual_seed(0))
    assert float(fundamental_distance(noise + third, reference, f0, fs)) > 1.0
    assert float(fundamental_distance(noise, reference, torch.zeros_like(f0), fs)) == 0.0
    # a harmonic detuned to 470 Hz is outside the mask for the phase part too (unmasked: ~0.6)
    detuned = fundamental + 0.2 * torch.sin(2 * math.pi * 470.0 * t)[None]
    assert float(fundamental_distance(detuned, reference, f0, fs)) < 0.1


def test_fundamental_distance_compares_only_the_frames_where_the_reference_is_voiced():
    """A voice that starts halfway: WORLD's track is 0 before, so noise there costs nothing,
    while the same noise after the onset does; F0 frames line up with the STFT's."""
    fs, n = FS / DECIMATION, 4096
    t = torch.arange(n) / fs
    reference = 0.3 * torch.sin(2 * math.pi * 150.0 * t)[None] * (t >= t[n // 2])
    f0 = reference_f0(reference, fs, PHASE_FFT_SIZE // 8)
    onset = (n // 2) // (PHASE_FFT_SIZE // 8)
    assert float(f0[0, : onset - 8].abs().max()) == 0 and float((f0[0, onset + 16: -16] > 0).float().mean()) == 1
    noise = 0.05 * torch.randn(1, n, generator=torch.Generator().manual_seed(0))
    before, after = noise * (t < t[n // 2 - PHASE_FFT_SIZE]), noise * (t >= t[n // 2])
    assert float(fundamental_distance(reference + before, reference, f0, fs)) < 0.01
    assert float(fundamental_distance(reference + after, reference, f0, fs)) > 0.2


def test_fundamental_weight_adds_the_low_bands_fundamental_distance(speech_clip):
    clean = torch.from_numpy(speech_clip[FS: FS + 8192]).float()[None]  # a second in: speech, not the lead-in
    noisy = clean + 0.05 * torch.randn(1, 8192, generator=torch.Generator().manual_seed(1))
    plain = float(SamplerLoss("WG-6").low_band_distance(noisy, clean))
    weighted = float(SamplerLoss("WG-6", fundamental_weight=2.0, fs=FS).low_band_distance(noisy, clean))
    low_fs = FS / DECIMATION
    f0 = reference_f0(low_band(clean), low_fs, PHASE_FFT_SIZE // 8)
    assert (f0 > 0).any()  # the clip is voiced: the term has frames to compare
    expected = plain + 2.0 * float(fundamental_distance(low_band(noisy), low_band(clean), f0, low_fs))
    assert weighted > plain + 0.05 and abs(weighted - expected) < 1e-5, (plain, weighted, expected)


def test_fundamental_weight_without_pyworld_is_one_line_naming_the_key(monkeypatch):
    from specgrad_plugin.data import SpecGradInputError

    monkeypatch.setitem(__import__("sys").modules, "pyworld", None)  # import pyworld raises ImportError
    with pytest.raises(SpecGradInputError, match="sampler_loss_fundamental_weight needs pyworld"):
        SamplerLoss("WG-6", fundamental_weight=1.0)
    SamplerLoss("WG-6")  # not needed without the term


def test_diffusion_loss_gives_the_sampler_loss_its_config_weight_and_hop():
    from specgrad_plugin.loss import DiffusionLoss

    cfg = small_config("frame", features={"hop_length": 128},
                       diffusion={"sampler_loss_weight": 1.0, "sampler_loss_frame_periodic_weight": 0.3,
                                  "sampler_loss_fundamental_weight": 0.7})
    sampler_loss = DiffusionLoss(cfg).sampler_loss
    assert sampler_loss.frame_periodic_weight == 0.3 and sampler_loss.hop == 128
    assert sampler_loss.fundamental_weight == 0.7 and sampler_loss.fs == cfg.features.fs


@pytest.mark.parametrize("inference", [{}, {"mel_gain_iterations": 2}])
def test_unrolled_sampler_is_the_inference_sampler(inference):
    vocoder = SpecGradVocoder(small_config("frame", denoiser=LOW_TRUNK, inference=inference)).eval()
    with torch.no_grad():  # a non-zero low trunk, so that its output counts
        for p in vocoder.denoiser.low_band.out.parameters():
            p.normal_(0, 0.05)
    mel = vocoder.features(0.1 * torch.randn(1, 32 * 256))
    unrolled = {}
    for schedule in ("WG-6", "WG-3"):
        torch.manual_seed(5)
        with torch.no_grad():
            unrolled[schedule] = SamplerLoss(schedule).sample(vocoder, mel, vocoder.prior.response(mel))
        torch.manual_seed(5)
        reference = vocoder(mel, schedule=schedule, seed=None, chunk_frames=0)
        inside = reference.abs() < 0.999  # the vocoder clamps to [-1, 1]
        assert torch.allclose(unrolled[schedule][inside], reference[inside], atol=1e-5)
    assert not torch.allclose(unrolled["WG-3"], unrolled["WG-6"], atol=1e-3)  # the schedule is the one named


@pytest.mark.parametrize("inference", [{}, {"mel_gain_iterations": 2}])
def test_gradient_reaches_the_low_trunk_through_every_step(speech_clip, monkeypatch, inference):
    data = {"denoiser": LOW_TRUNK, "diffusion": {"sampler_loss_weight": 1.0}, "train": {"freeze": FROZEN},
            "inference": inference}
    vocoder = SpecGradVocoder(SpecGradConfig.from_dict(data))
    kept = trainable_parameters(vocoder, vocoder.cfg.train.freeze)
    assert {id(p) for p in kept} == {id(p) for p in vocoder.denoiser.low_band.parameters()}
    wav = torch.from_numpy(speech_clip[: 2 * 32 * 256]).float().reshape(2, -1)
    mel = vocoder.features(wav)
    calls = []
    original = vocoder.denoiser.forward
    monkeypatch.setattr(vocoder.denoiser, "forward", lambda x, *a: calls.append(x.requires_grad) or original(x, *a))
    loss, stats = vocoder.training_loss(wav, mel)
    # the diffusion loss's step, then WG-6's six, each fed the last one's output with its graph
    assert calls == [False, False] + [True] * 5
    assert stats["sampler_stft"] > 0
    loss.backward()
    assert all(p.grad is None for p in vocoder.denoiser.trunk.parameters())
    out = vocoder.denoiser.low_band.out.weight.grad  # zero-initialised: only its own gradient is non-zero
    assert out is not None and float(out.abs().sum()) > 0 and bool(torch.isfinite(out).all())


def test_freeze_matches_names_up_to_a_dot_and_rejects_unknown_names():
    vocoder = SpecGradVocoder(small_config("frame", denoiser=LOW_TRUNK))
    kept = trainable_parameters(vocoder, ["denoiser.trunk"])
    names = {n for n, p in vocoder.named_parameters() if p.requires_grad}
    assert not any(n.startswith("denoiser.trunk.") for n in names)
    assert any(n.startswith("denoiser.low_band.") for n in names) and len(kept) == len(names)
    with pytest.raises(ValueError, match="denoiser.trunkk"):
        trainable_parameters(vocoder, ["denoiser.trunkk"])
    with pytest.raises(ValueError, match="denoiser.tru'"):  # a prefix must end at a dot
        trainable_parameters(vocoder, ["denoiser.tru"])


def test_fit_with_freeze_trains_only_what_is_left(tmp_path, speech_clip):
    from specgrad_plugin.data import SegmentDataset

    data = {"denoiser": LOW_TRUNK, "train": {"freeze": FROZEN, "batch_size": 2, "segment_frames": 16,
                                             "warmup_steps": 1, "lr": 1e-2}}
    vocoder = SpecGradVocoder(SpecGradConfig.from_dict(data))
    before = {k: v.clone() for k, v in vocoder.state_dict().items()}
    loader = torch.utils.data.DataLoader(
        SegmentDataset([speech_clip[: 22050]], vocoder.features, segment_frames=16), batch_size=2)
    fit(vocoder, loader, steps=3, out_dir=tmp_path)
    after = vocoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("denoiser.low_band.") for k in changed), changed
    assert SpecGradConfig.from_yaml(tmp_path / "config.yaml").train.freeze == FROZEN


def test_config_names_a_bad_sampler_schedule():
    with pytest.raises(ConfigError, match="diffusion.sampler_loss_schedule 'WG-7'"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_schedule": "WG-7"}})
    with pytest.raises(ConfigError, match="sampler_loss_weight=-1"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_weight": -1.0}})
    with pytest.raises(ConfigError, match="sampler_loss_phase_weight=-1"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_phase_weight": -1.0}})
    with pytest.raises(ConfigError, match="sampler_loss_frame_periodic_weight=-1"):
        SpecGradConfig.from_dict({"diffusion": {"sampler_loss_frame_periodic_weight": -1.0}})
    hop_250 = {"features": {"hop_length": 250}, "denoiser": {"kind": "frame"}}
    periodic = {"sampler_loss_weight": 1.0, "sampler_loss_frame_periodic_weight": 0.5}
    with pytest.raises(ConfigError, match="hop_length=250 with sampler_loss_frame_periodic_weight"):
        SpecGradConfig.from_dict({**hop_250, "diffusion": periodic})
    SpecGradConfig.from_dict({**hop_250, "diffusion": {"sampler_loss_weight": 1.0}})
