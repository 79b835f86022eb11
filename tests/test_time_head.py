"""The frame family's time-domain low-band head (denoisers/time_head.py): its decimated STFT
shares the frame trunks' bins, it starts silent, acts below the low band only, keeps chunked
inference equal to whole, and is refused where it is not implemented."""

import math

import pytest
import torch

from specgrad_plugin import shaping
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.denoisers.time_head import TimeDomainLowBandHead
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import SMALL_FAMILIES, assert_refused_and_vocoded_one_by_one, frames_reaching_one_output_frame

LOW = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8}


def _vocoders(**head_settings):
    plain = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": LOW})).eval()
    head_settings = {"frame_time_head_channels": 8, **head_settings}
    head = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": {**LOW, **head_settings}})).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.05)
    head.load_state_dict(plain.state_dict(), strict=False)  # everything but the head
    return plain, head


def _low_tones(samples: int, fs: int = 22050) -> torch.Tensor:
    t = torch.arange(samples) / fs
    return sum(a * torch.sin(2 * math.pi * f * t + p)
               for a, f, p in ((1.0, 131.0, 0.3), (0.5, 262.0, 1.0), (0.3, 410.0, 2.0), (0.2, 905.0, 0.5)))


def test_head_signals_are_the_trunks_band_at_an_eighth_of_the_rate():
    """For a signal below 1 kHz, the head's waveform of the trunks' low bins (full-rate STFT)
    is every 8th sample of the signal (times input_scale / 8), and its STFT of that waveform
    gives the trunks' bins back: the head's frames and bins are the trunks'. Bins padded at
    the wrong end or conjugated, a decimated signal one sample off the grid, or another
    hop fail this."""
    head = TimeDomainLowBandHead(47, 80, 16, 8, 2, 2, 1024, 256, 8)
    x = _low_tones(256 * 40)
    bins = shaping.stft(x[None], 1024, 256, shaping.hann_window(1024))[:, :47]
    signal = head.to_signal(bins)[0] / head.input_scale / 8
    inner = slice(400, -400)  # the STFT's zero padding at the ends is not band-limited
    scale = float(x.abs().max())
    assert float((signal - x[::8])[inner].abs().max()) < 1e-3 * scale
    assert float((signal[1:] - x[::8][:-1])[inner].abs().max()) > 0.1 * scale
    back = head.from_signal(head.to_signal(bins))
    frames = slice(3, -3)
    assert float((back - bins)[..., frames].abs().max()) < 1e-3 * float(bins.abs().max())


def test_head_input_is_of_unit_variance_for_white_bins():
    """to_signal scales G_d+ of unit-variance white bins to unit variance (4 F_low / (3 n^2)
    before the scale: Hann at 75 % overlap); a scale off by the window's sum of squares or
    a factor of two fails."""
    head = TimeDomainLowBandHead(47, 80, 16, 8, 2, 2, 1024, 256, 8)
    torch.manual_seed(1)
    bins = torch.complex(torch.randn(32, 47, 200), torch.randn(32, 47, 200)) / math.sqrt(2)
    variance = float(head.to_signal(bins)[:, 200:-200].var())
    assert abs(variance - 1.0) < 0.05


def test_head_starts_silent_and_acts_only_below_the_low_band():
    """The head's output layer starts at zero (the model is the one without it), and once
    trained its correction of eps_hat stays below the low band's cutoff."""
    plain, head = _vocoders()
    assert "time_head" in head.denoiser.silent_at_start()
    mel = torch.randn(1, 40, 80) * 0.5 - 3
    x, level = torch.randn(1, 40 * 256), torch.tensor([0.5])
    with torch.no_grad():
        base = plain.denoiser(x, plain.denoiser.condition(mel, plain.prior.response(mel)), level)
        assert torch.equal(head.denoiser(x, head.denoiser.condition(mel, head.prior.response(mel)), level), base)
        for p in head.denoiser.time_head.parameters():
            torch.nn.init.normal_(p, std=0.1)
        cond = head.denoiser.condition(mel, head.prior.response(mel))  # the head's conditioning is in it
        change = shaping.stft(head.denoiser(x, cond, level) - base, 1024, 256, shaping.hann_window(1024)).abs()
    below, above = change[:, :47].pow(2).sum(), change[:, 60:].pow(2).sum()
    assert below > 0 and above < 1e-3 * below


@pytest.mark.parametrize("cycle", [4, 8])
def test_head_context_frames_cover_its_reach_and_no_more_than_a_frame_beyond(cycle):
    """The frames whose input changes one output frame (nonzero gradient) lie within
    context_frames() of it, and the farthest is at least context_frames() - 1 away: a count
    without the WaveNet's reach or without the STFT pair's half windows fails."""
    head = TimeDomainLowBandHead(47, 80, 16, 8, 8, cycle, 1024, 256, 8)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.3)
    frames, centre = 61, 30
    inputs = [torch.complex(torch.randn(1, 47, frames), torch.randn(1, 47, frames)).requires_grad_()
              for _ in range(2)] + [torch.randn(1, 80, frames).requires_grad_()]
    head(*inputs[:2], head.condition(inputs[2]), torch.randn(1, 16))[0, :, centre].abs().sum().backward()
    reached = max(int((x.grad.abs().sum(1)[0] > 0).nonzero().flatten().sub(centre).abs().max()) for x in inputs)
    assert head.context_frames() - 1 <= reached <= head.context_frames()


def test_frame_denoiser_context_covers_the_heads_reach():
    """The frame denoiser's output at one frame has zero gradient from x beyond
    context_frames() (what chunked() cuts), and a nonzero one beyond the count without
    the head's share: with a head of 255 samples' reach at fs / 8."""
    _, vocoder = _vocoders(frame_time_head_dilation_cycle=8)
    denoiser = vocoder.denoiser
    for p in denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    reach = frames_reaching_one_output_frame(vocoder)
    assert reach <= denoiser.context_frames()
    assert reach > denoiser.context_frames() - denoiser.time_head.context_frames()


@pytest.mark.parametrize("excitation", [False, True])
def test_chunked_inference_with_the_head_equals_whole(excitation):
    """Chunked equals whole, also beside the excitation, whose STFT comes before the head's
    conditioning in the denoiser's FrameCondition: a head fed the excitation fails the second case."""
    _, vocoder = _vocoders(frame_time_head_dilation_cycle=8, frame_excitation=excitation)
    for p in vocoder.denoiser.time_head.parameters():
        torch.nn.init.normal_(p, std=0.1)
    mel = torch.randn(300, 80) * 0.5 - 3
    whole = vocoder(mel, schedule="WG-3", chunk_frames=0, seed=1)
    chunked = vocoder(mel, schedule="WG-3", chunk_frames=97, seed=1)
    assert float((whole - chunked).abs().max()) < 1e-5 * float(whole.abs().max())


def test_every_head_weight_gets_a_gradient():
    _, vocoder = _vocoders()
    for p in vocoder.denoiser.time_head.parameters():
        torch.nn.init.normal_(p, std=0.05)
    wav = torch.randn(2, 24 * 256) * 0.1
    loss, _ = vocoder.training_loss(wav, vocoder.features(wav))
    loss.backward()
    head = vocoder.denoiser.time_head
    silent = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent


@pytest.mark.parametrize("change, message", [
    ({"frame_low_band_hz": 0.0}, "needs a low-band trunk"),
    ({"frame_time_head_decimation": 3}, "frame_time_head_decimation=3"),
    ({"frame_time_head_decimation": 32}, "above frame_low_band_hz"),
    ({"frame_time_head_channels": -4}, "frame_time_head_channels=-4"),
])
def test_bad_head_settings_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        SpecGradConfig.from_dict({"denoiser": {**LOW, "frame_time_head_channels": 8, **change}})


def test_export_batched_and_streaming_refuse_the_head():
    _, vocoder = _vocoders()
    assert_refused_and_vocoded_one_by_one(vocoder, "frame_time_head_channels=8")


def test_mel_frames_are_held_over_the_hop_centred_on_them():
    """Frame t conditions the samples within half a hop of its centre, sample t * hop at
    fs / 8 (a hold that starts at the frame's centre is half a frame late)."""
    head = TimeDomainLowBandHead(47, 80, 16, 8, 2, 2, 1024, 256, 8)
    frames = torch.arange(5.0).view(1, 1, 5)
    held = head.held(frames, 4 * 32)[0, 0]
    assert held.shape == (128,)
    for t in range(4):
        assert held[t * 32] == t
        assert held[max(0, t * 32 - 16): t * 32 + 16].eq(t).all()


def test_head_conditioning_runs_once_per_utterance_not_per_step():
    """The head's per-layer conditioners run in condition(), once for a whole WG-6 vocoding
    and once per chunk for a chunked one, not at each of its 6 steps: a forward() that
    recomputed them fails. Past the cache budget, each chunk's runs again at every step, and
    the output stays the same."""
    _, vocoder = _vocoders()
    for p in vocoder.denoiser.time_head.parameters():
        torch.nn.init.normal_(p, std=0.1)  # a correction that is not zero
    calls = []
    vocoder.denoiser.time_head.layers[0].conditioner.register_forward_hook(lambda *_: calls.append(1))
    mel = torch.randn(100, 80) * 0.5 - 3
    with torch.no_grad():
        vocoder(mel[:30], "WG-6", seed=0)
        assert len(calls) == 1
        calls.clear()
        cached = vocoder(mel, "WG-6", seed=0, chunk_frames=40)  # 3 chunks
        assert len(calls) == 3
        calls.clear()
        vocoder.cfg.inference.conditioning_cache_mb = 0
        uncached = vocoder(mel, "WG-6", seed=0, chunk_frames=40)
    assert len(calls) == 3 * 6
    assert torch.equal(cached, uncached)


def test_head_holds_its_conditioning_over_the_hop_only_within_the_budget():
    """Within cache_bytes the conditioning is held at fs / 8 once; past it (training passes no
    budget) it stays at the frame rate and forward() holds it: the same correction."""
    _, vocoder = _vocoders()
    head = vocoder.denoiser.time_head
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.1)
    mel, frames = torch.randn(1, 80, 21), 21
    held_bytes = len(head.layers) * 2 * 8 * frames * head.hop * 4  # held() views T * hop samples
    small, large = head.condition(mel, held_bytes - 1), head.condition(mel, held_bytes)
    assert not small.held and all(c.shape == (1, 16, frames) for c in small.per_layer)
    assert large.held and all(c.shape == (1, 16, (frames - 1) * head.hop) for c in large.per_layer)
    low = torch.randn(1, head.low_bins, frames, dtype=torch.complex64)
    noise, level = torch.randn_like(low), vocoder.denoiser.level_embedding(torch.tensor([1.0]))
    assert torch.equal(head(low, noise, small, level), head(low, noise, large, level))


def test_the_denoiser_gives_the_head_what_its_own_conditioning_leaves_of_the_budget():
    """FrameDenoiser.condition holds the head's conditioning when the budget covers the rest
    of the FrameCondition plus the held tensors, and not one byte less: a head handed the
    whole budget fails."""
    from specgrad_plugin.denoisers.base import tensor_bytes

    _, vocoder = _vocoders()
    mel = torch.randn(1, 20, 80) * 0.5 - 3
    response = vocoder.prior.response(mel)
    with torch.no_grad():
        held = vocoder.denoiser.condition(mel, response, 2**30)
        rest, head = tensor_bytes(held._replace(head=None)), tensor_bytes(held.head)
        assert held.head.held and head > rest
        assert vocoder.denoiser.condition(mel, response, rest + head).head.held
        assert not vocoder.denoiser.condition(mel, response, rest + head - 1).head.held
