"""pitch.py: F0 read off a mel, and the harmonic excitation the frame family's low trunk sees."""

import math

import pytest
import torch

from specgrad_plugin import pitch
from specgrad_plugin.config import FeatureConfig, SpecGradConfig
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.vocoder import SpecGradVocoder

FEATURES = FeatureConfig()


@pytest.fixture(scope="module")
def extractor():
    return LogMelExtractor(FEATURES)


@pytest.fixture(scope="module")
def templates(extractor):
    return pitch.comb_templates(extractor.mel_basis, FEATURES.fs, FEATURES.n_fft)


def voiced(f0_of_t, seconds=1.0, fs=FEATURES.fs, formant_hz=700.0):
    """A glottal-like source (harmonics falling 6 dB per octave up to 5 kHz) at the F0 track
    f0_of_t(t), through one resonance: a voice-shaped test signal, hop-aligned."""
    n = int(seconds * fs) // FEATURES.hop_length * FEATURES.hop_length
    t = torch.arange(n, dtype=torch.float64) / fs
    f0 = f0_of_t(t)
    phase = 2 * math.pi * torch.cumsum(f0 / fs, 0)
    out = torch.zeros(n, dtype=torch.float64)
    for h in range(1, 120):
        freq = h * f0
        gain = (1.0 / h) / (1.0 + ((freq - formant_hz) / 400.0) ** 2) ** 0.5 * (freq < 5000)
        out += gain * torch.sin(h * phase)
    return (0.3 * out / out.abs().max()).float()


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 340.0])
def test_mel_f0_finds_the_pitch_of_low_and_high_voices(extractor, templates, f0):
    """A male bass, a male, a female and a child's F0: the track is within a quarter semitone
    (the candidates are a third of a semitone apart) in the steady part, and voiced."""
    mel = extractor(voiced(lambda t: torch.full_like(t, f0))[None])
    track, voicing = pitch.mel_f0(mel, *templates)
    middle = slice(5, -5)
    assert torch.allclose(track[0, middle], torch.full_like(track[0, middle], f0), rtol=2 ** (1 / 48) - 1)
    assert float(voicing[0, middle].min()) > 0.9


def test_mel_f0_follows_a_glide_and_calls_noise_unvoiced(extractor, templates):
    """An octave glide 110 -> 220 Hz is followed frame by frame (no octave jumps); white noise
    of the same level is unvoiced."""
    glide = voiced(lambda t: 110.0 * 2.0 ** t, seconds=1.0)
    track, _ = pitch.mel_f0(extractor(glide[None]), *templates)
    frames = torch.arange(track.shape[1]) * FEATURES.hop_length / FEATURES.fs
    expected = 110.0 * 2.0 ** frames
    error = (track[0] / expected).log2().abs()[5:-5]
    assert float(error.max()) < 1 / 12  # a semitone at worst
    samples = FEATURES.fs // FEATURES.hop_length * FEATURES.hop_length
    noise = torch.randn(samples, generator=torch.Generator().manual_seed(0))
    _, voicing = pitch.mel_f0(extractor(0.1 * noise[None]), *templates)
    assert float(voicing.mean()) < 0.1


def test_viterbi_track_pays_for_jumps():
    """Greedy argmax takes the octave error of frame 2; the path does not, unless jumps are free."""
    candidates = torch.tensor([100.0, 200.0, 400.0])
    score = torch.tensor([[[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.0, 0.5, 0.6], [0.1, 0.9, 0.0]]])
    assert pitch.viterbi_track(score, candidates).tolist() == [[1, 1, 1, 1]]
    assert pitch.viterbi_track(score, candidates, jump_cost=0.0).tolist() == [[1, 1, 2, 1]]


def test_frames_to_samples_interpolates_between_frame_centres():
    track = torch.tensor([[100.0, 200.0, 300.0]])
    samples = pitch.frames_to_samples(track, 4)
    assert samples.tolist() == [[100.0, 125.0, 150.0, 175.0, 200.0, 225.0, 250.0, 275.0, 300.0, 300.0, 300.0, 300.0]]


def test_harmonic_excitation_is_the_sum_of_sines_below_the_cutoff():
    """Constant F0 and full voicing: exactly sum_h sin(2 pi h f0 (n + 1) / fs) over h f0 < cutoff."""
    fs, hop, f0, cutoff = 16000, 160, 230.0, 1000.0
    frames = 50
    e = pitch.harmonic_excitation(torch.full((1, frames), f0), torch.ones(1, frames), hop, fs, cutoff)
    n = torch.arange(frames * hop, dtype=torch.float64) + 1
    expected = sum(torch.sin(2 * math.pi * h * f0 * n / fs) for h in range(1, 5))  # 230 .. 920 Hz
    assert torch.allclose(e[0].double(), expected, atol=1e-4)
    silent = pitch.harmonic_excitation(torch.full((1, frames), f0), torch.zeros(1, frames), hop, fs, cutoff)
    assert float(silent.abs().max()) == 0.0


def excitation_config(**denoiser):
    data = SpecGradConfig().to_dict()
    data["denoiser"] = {"kind": "frame", "frame_channels": 32, "frame_layers": 2, "frame_low_band_hz": 1000.0,
                        "frame_low_band_channels": 16, "frame_excitation": True, **denoiser}
    return SpecGradConfig.from_dict(data)


def test_excitation_input_starts_silent_and_changes_only_the_low_trunk(extractor):
    """A model grown by the excitation input computes what it computed before; once trained
    (here: random weights), the excitation of a voiced mel changes its output."""
    torch.manual_seed(0)
    grown = SpecGradVocoder(excitation_config())
    plain = SpecGradVocoder(excitation_config(frame_excitation=False))
    for p in plain.denoiser.parameters():  # a "trained" model: the low trunk's output is not zero
        torch.nn.init.normal_(p, std=0.05)
    state = plain.state_dict()
    new = {"denoiser.excitation_input.weight", "denoiser.excitation_input.bias"}
    assert set(grown.state_dict()) - set(state) == new
    assert grown.denoiser.silent_at_start() == ("low_band", "excitation_input")
    grown.load_state_dict({**grown.state_dict(), **state})
    mel = extractor(voiced(lambda t: torch.full_like(t, 180.0))[None])[0]
    assert torch.equal(grown(mel, schedule="WG-3"), plain(mel, schedule="WG-3"))
    torch.nn.init.normal_(grown.denoiser.excitation_input.weight, std=0.1)
    assert not torch.allclose(grown(mel, schedule="WG-3"), plain(mel, schedule="WG-3"), atol=1e-3)


def test_excitation_needs_the_low_trunk():
    with pytest.raises(ValueError, match="frame_excitation"):
        excitation_config(frame_low_band_hz=0.0)


def test_chunked_excitation_model_matches_whole_input(extractor):
    """Chunks cut the whole utterance's excitation like x_t: chunked output equals whole. An
    excitation restarted in every chunk (its phase from 0) would not."""
    torch.manual_seed(0)
    vocoder = SpecGradVocoder(excitation_config()).eval()
    for p in vocoder.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.05)
    mel = extractor(voiced(lambda t: 150.0 * 2.0 ** (0.5 * t), seconds=3.0)[None])[0]
    whole = vocoder(mel, schedule="WG-3", chunk_frames=0)
    chunked = vocoder(mel, schedule="WG-3", chunk_frames=97)
    assert float((whole - chunked).abs().max()) < 1e-4 * float(whole.abs().max())
    own = vocoder.denoiser.periodic_source  # each chunk makes its own from its stretch of mel
    vocoder.denoiser.periodic_source = lambda part: None if part.shape[1] == mel.shape[0] else own(part)
    restarted = vocoder(mel, schedule="WG-3", chunk_frames=97)
    assert float((whole - restarted).abs().max()) > 1e-3 * float(whole.abs().max())
