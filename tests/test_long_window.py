"""The frame family's low band on a longer STFT (denoisers/long_window.py): the two STFTs'
estimates join back into eps, the long STFT's bins are whitened by the prior's response read
at their own frequencies, the low trunk acts only below the cutoff, chunked inference equals
whole, and the option is refused where it is not implemented."""


import pytest
import torch

from specgrad_plugin import shaping
from specgrad_plugin.config import ConfigError, SpecGradConfig
from specgrad_plugin.denoisers.long_window import CROSSOVER_HZ, LongWindowLowBand, crossover_weight
from specgrad_plugin.vocoder import SpecGradVocoder

from .conftest import SMALL_FAMILIES, assert_refused_and_vocoded_one_by_one, frames_reaching_one_output_frame

LONG = {**SMALL_FAMILIES["frame"], "frame_low_band_hz": 1000.0, "frame_low_band_channels": 8,
        "frame_low_band_n_fft": 2048}
N_FFT, HOP, FS = 1024, 256, 22050


def _response(frames: int) -> torch.Tensor:
    """c H (1, F, T): a smooth minimum-phase-like response falling 30 dB over 0-2 kHz, complex."""
    freqs = torch.arange(N_FFT // 2 + 1) * FS / N_FFT
    magnitude = 10 ** (-1.5 * (freqs / 2000).clamp(max=1.0)) + 0.01
    phase = -2.0 * (freqs / 2000).clamp(max=1.0)
    scale = float(shaping.hann_window(N_FFT).pow(2).sum().sqrt())
    return (magnitude * torch.exp(1j * phase) * scale)[None, :, None].repeat(1, 1, frames).to(torch.complex64)


def test_crossover_weights_are_complementary_and_smooth():
    """w is 1 below cutoff - width, 0 from the cutoff up, and the main trunk's 1 - w and the
    low trunk's w read at the same frequency add to 1 (a ramp ending at the cutoff + width, or
    one weight not the other's complement, fails)."""
    band = LongWindowLowBand(N_FFT, 2048, HOP, FS, 1000.0)
    freqs = torch.linspace(0, 1500, 301)
    w = crossover_weight(freqs, 1000.0)
    assert w[freqs <= 1000.0 - CROSSOVER_HZ].eq(1).all() and w[freqs >= 1000.0].eq(0).all()
    assert float(w.diff().abs().max()) < 3 * 5 / CROSSOVER_HZ
    main_freqs = torch.arange(N_FFT // 2 + 1) * FS / N_FFT
    low_freqs = torch.arange(band.low_bins) * FS / 2048
    common = [int(k) for k in range(band.low_bins) if k % 2 == 0 and k // 2 < len(main_freqs)]
    torch.testing.assert_close(band.main_weight[[k // 2 for k in common]] + band.low_weight[common],
                               torch.ones(len(common)))
    assert torch.equal(main_freqs[[k // 2 for k in common]], low_freqs[common])
    assert band.low_bins == int(1000.0 * 2048 / FS) + 1


def test_perfect_estimates_in_both_stfts_give_back_eps():
    """eps split by the two weights into the two STFTs (whitened, each by its own response)
    and joined by the denoiser's synthesis comes back to -40 dB in the crossover band and far
    below elsewhere. The main trunk's weight left at 1, the low trunk's ramp moved up by 100 Hz,
    or the main one's ramp made half as wide fail."""
    band = LongWindowLowBand(N_FFT, 2048, HOP, FS, 1000.0)
    torch.manual_seed(0)
    samples = HOP * 200
    eps = torch.randn(1, samples)
    window = shaping.hann_window(N_FFT)
    scaled_response = _response(samples // HOP + 1)
    main = shaping.stft(eps, N_FFT, HOP, window) / scaled_response
    low_response = band.response(scaled_response)
    low = band.whiten(eps, low_response)
    joined = (shaping.istft(main * scaled_response * band.main_weight[:, None], N_FFT, HOP, window, samples)
              + band.synthesize(low, low_response, samples))
    error = shaping.stft(joined - eps, N_FFT, HOP, window).abs().pow(2).mean(-1)[0]
    power = shaping.stft(eps, N_FFT, HOP, window).abs().pow(2).mean(-1)[0]
    ratio_db = 10 * torch.log10(error / power)
    freqs = torch.arange(N_FFT // 2 + 1) * FS / N_FFT
    crossover = (freqs > 1000.0 - CROSSOVER_HZ - 50) & (freqs < 1000.0 + 50)
    assert float(ratio_db[crossover].max()) < -40
    assert float(ratio_db[~crossover].max()) < -60


def test_long_bins_of_shaped_noise_are_white():
    """Noise shaped by the prior (x = G+(c H xi) / c), seen by the long STFT and divided by the
    interpolated response, has unit variance over each quarter of the low bins, to 10 %, and
    the odd bins (between two of the features' bins) as much as the even ones, to 3 %: the
    response read at main bin k instead of k / 2 (variance rising to 13 at the top quarter),
    without the windows' scale ratio (2 everywhere) or the odd bins given the lower
    neighbour's value (7 % apart) fails."""
    band = LongWindowLowBand(N_FFT, 2048, HOP, FS, 1000.0)
    torch.manual_seed(1)
    batch, samples = 64, HOP * 120
    window = shaping.hann_window(N_FFT)
    scaled_response = _response(samples // HOP + 1).repeat(batch, 1, 1)
    c = float(window.pow(2).sum().sqrt())
    shaped = shaping.istft(shaping.stft(torch.randn(batch, samples), N_FFT, HOP, window) * scaled_response / c,
                           N_FFT, HOP, window, samples)
    low = band.whiten(shaped, band.response(scaled_response))[:, 1:-1, 10:-10]  # DC: real-valued
    per_bin = low.abs().pow(2).mean(dim=(0, 2))[:88]
    variance = per_bin.view(4, 22).mean(1)
    assert float((variance - 1).abs().max()) < 0.1, variance
    odd_over_even = per_bin.view(44, 2).mean(0)
    assert abs(float(odd_over_even[1] / odd_over_even[0]) - 1) < 0.03, odd_over_even


def _vocoders(mode: str = "predict"):
    settings = {**LONG, "frame_low_band_long_mode": mode}
    plain = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": settings})).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.05)
    changed = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": settings})).eval()
    changed.load_state_dict(plain.state_dict())
    for p in changed.denoiser.low_band.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return plain, changed


@pytest.mark.parametrize("mode", ["predict", "see"])
def test_with_silent_trunks_the_estimate_is_the_gain_times_the_noisy_input(mode):
    """With both trunks' outputs at zero and both gain biases at zero, each trunk's estimate is
    sigmoid(-log_snr) Z in its own STFT, so eps_hat = sigmoid(-log_snr) sqrt(1 + exp(log_snr)) x
    across the band (away from the ends), to 1 %: the join without the main trunk's weight,
    the low trunk's Z without the sqrt(1 + exp(log_snr)), a gain of sigmoid(+log_snr), or the
    low band un-whitened by a response off by 30 % fails."""
    vocoder, _ = _vocoders(mode)
    denoiser = vocoder.denoiser
    with torch.no_grad():
        for layer in (denoiser.trunk.out, denoiser.low_band.out):
            layer.weight.zero_()
            layer.bias.zero_()
        denoiser.gain_bias.zero_()
        if mode == "predict":
            denoiser.long_window.gain_bias.zero_()
        mel = torch.randn(1, 60, 80) * 0.5 - 3
        x, log_snr = torch.randn(1, 60 * HOP), torch.tensor([2.0])
        eps = denoiser(x, denoiser.condition(mel, vocoder.prior.response(mel)), log_snr)
    expected = torch.sigmoid(-log_snr) * torch.sqrt(1 + torch.exp(log_snr)) * x
    inner = slice(8 * HOP, -8 * HOP)
    error = (eps - expected)[:, inner].pow(2).mean() / expected[:, inner].pow(2).mean()
    assert float(error) < 1e-4


def test_only_the_see_mode_trunk_is_listed_as_silent_at_start():
    """A see trunk's zero output leaves the model as it was (it can be grown onto a trained
    one); a predict trunk replaces the main trunk's band, so it is not listed."""
    see, _ = _vocoders("see")
    predict, _ = _vocoders("predict")
    assert see.denoiser.silent_at_start() == ("low_band",)
    assert predict.denoiser.silent_at_start() == ()


@pytest.mark.parametrize("mode", ["predict", "see"])
def test_low_trunk_acts_only_below_the_cutoff(mode):
    """Changing the low trunk's weights changes eps_hat below the cutoff and (to -60 dB) not
    above it: the main trunk alone speaks there. The 4 frames at each end are left out: the
    long STFT's zero padding there is not band-limited."""
    plain, changed = _vocoders(mode)
    mel = torch.randn(1, 40, 80) * 0.5 - 3
    x, level = torch.randn(1, 40 * HOP), torch.tensor([0.5])
    with torch.no_grad():
        cond = plain.denoiser.condition(mel, plain.prior.response(mel))
        change = plain.denoiser(x, cond, level) - changed.denoiser(x, cond, level)
        spectrum = shaping.stft(change, N_FFT, HOP, shaping.hann_window(N_FFT)).abs().pow(2)[..., 4:-4]
    below, above = spectrum[:, :40].sum(), spectrum[:, 52:].sum()
    assert below > 0 and above < 1e-6 * below


@pytest.mark.parametrize("mode", ["predict", "see"])
def test_context_frames_cover_the_long_window(mode):
    """The output at one frame has zero gradient from x beyond context_frames() (what
    chunked() cuts), and the long window reaches farther than the same model without it:
    a count made with the features' n_fft alone fails in predict mode."""
    vocoder, _ = _vocoders(mode)
    short = SpecGradVocoder(SpecGradConfig.from_dict({"denoiser": {**LONG, "frame_low_band_n_fft": 0}}))
    for p in short.parameters():
        torch.nn.init.normal_(p, std=0.05)
    reach, short_reach = frames_reaching_one_output_frame(vocoder), frames_reaching_one_output_frame(short)
    assert short_reach < reach <= vocoder.denoiser.context_frames()
    assert vocoder.denoiser.context_frames() - short.denoiser.context_frames() == reach - short_reach


@pytest.mark.parametrize("mode", ["predict", "see"])
def test_chunked_inference_equals_whole_and_training_reaches_every_low_weight(mode):
    vocoder, _ = _vocoders(mode)
    mel = torch.randn(300, 80) * 0.5 - 3
    whole = vocoder(mel, schedule="WG-3", chunk_frames=0, seed=1)
    chunked = vocoder(mel, schedule="WG-3", chunk_frames=97, seed=1)
    assert float((whole - chunked).abs().max()) < 1e-5 * float(whole.abs().max())
    vocoder.train()
    wav = torch.randn(2, 24 * HOP) * 0.1
    loss, _ = vocoder.training_loss(wav, vocoder.features(wav))
    loss.backward()
    parts = list(vocoder.denoiser.low_band.named_parameters())
    if mode == "predict":
        parts.append(("gain_bias", vocoder.denoiser.long_window.gain_bias))
    else:  # the long STFT's bins reach the trunk: its input layer's weights for them train
        # channels: real parts (47 main, 93 long), imaginary parts (47 main, 93 long), mel
        weight = vocoder.denoiser.low_band.input.weight
        assert weight.shape[1] == 2 * (47 + 93) + 80
        assert all(weight.grad[:, long_bins].abs().sum() > 0 for long_bins in (slice(47, 140), slice(187, 280)))
    silent = [n for n, p in parts if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent


@pytest.mark.parametrize("change, message", [
    ({"frame_low_band_n_fft": 1024}, "frame_low_band_n_fft=1024"),
    ({"frame_low_band_n_fft": 2047}, "frame_low_band_n_fft=2047"),
    ({"frame_low_band_hz": 0.0}, "frame_low_band_hz=0.0"),
    ({"frame_low_band_hz": 150.0}, "above the 200 Hz crossover"),
    ({"frame_phase_demodulation": True}, "frame_phase_demodulation"),
    ({"frame_time_head_channels": 8}, "frame_time_head_channels"),
    ({"frame_excitation": True}, "frame_excitation"),
    ({"frame_low_band_long_mode": "both"}, "frame_low_band_long_mode='both'"),
])
def test_bad_long_window_settings_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        SpecGradConfig.from_dict({"denoiser": {**LONG, **change}})


def test_a_seeing_trunk_needs_no_crossover():
    """Only predict joins two estimates over a crossover: see takes a cutoff below it."""
    SpecGradConfig.from_dict({"denoiser": {**LONG, "frame_low_band_hz": 150.0, "frame_low_band_long_mode": "see"}})


def test_export_and_streaming_refuse_and_batched_falls_back():
    vocoder, _ = _vocoders()
    assert_refused_and_vocoded_one_by_one(vocoder, "frame_low_band_n_fft=2048")
