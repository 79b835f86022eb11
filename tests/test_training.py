"""The shipped family learns: the loss on fixed noise draws falls clearly within 20 steps."""

import pytest
import torch

from specgrad_plugin.config import SpecGradConfig
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


def test_frame_model_overfits_one_clip(speech_clip):
    # the frame preset (the shipped family); the WaveNet family trains in test_denoisers
    vocoder = SpecGradVocoder(SpecGradConfig.from_preset("frame"))
    data = SegmentDataset([speech_clip[: 2 * 22050]], vocoder.features, segment_frames=16)
    wav, mel = data.items[0]
    wav, mel = wav[None, : 96 * 256], mel[None, :96]
    before = fixed_loss(vocoder, wav, mel)
    optimizer = torch.optim.Adam(vocoder.parameters(), lr=2e-3)
    ema = make_ema(vocoder)
    loader = torch.utils.data.DataLoader(
        data, batch_size=4, sampler=torch.utils.data.RandomSampler(data, replacement=True, num_samples=4 * 20)
    )
    for step, (seg, seg_mel) in enumerate(loader):
        loss, _ = vocoder.training_loss(seg, seg_mel)
        assert optimisation_step(loss, vocoder, optimizer, grad_clip=1.0) is not None
        ema_update(ema, vocoder, 0.999, step)
    after = fixed_loss(vocoder, wav, mel)
    assert after < 0.5 * before, (before, after)
    assert fixed_loss(ema, wav, mel) < before


def test_non_finite_loss_skips_the_update(tiny_cfg):
    vocoder = SpecGradVocoder(tiny_cfg)
    optimizer = torch.optim.Adam(vocoder.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in vocoder.state_dict().items()}
    loss = vocoder.denoiser.out.weight.sum() * float("nan")
    assert optimisation_step(loss, vocoder, optimizer, grad_clip=1.0) is None
    assert all(torch.equal(before[k], v) for k, v in vocoder.state_dict().items())


def test_aux_stft_loss_is_fregrads_on_x0_hat_and_skips_draws_below_the_schedule(tiny_cfg, speech_clip, monkeypatch):
    import auraloss

    from specgrad_plugin import diffusion

    data = tiny_cfg.to_dict()
    data["diffusion"]["aux_stft_weight"] = 0.1
    with_aux = SpecGradVocoder(SpecGradConfig.from_dict(data))
    plain = SpecGradVocoder(tiny_cfg)
    plain.load_state_dict(with_aux.state_dict())  # the aux loss adds nothing to the state
    wav = torch.from_numpy(speech_clip[: 4 * 32 * 256]).reshape(4, -1)
    mel = with_aux.features(wav)
    abar_end = float(diffusion.alpha_bars(with_aux.train_betas[: tiny_cfg.diffusion.steps])[-1])
    # 2 above the schedule's last level, 2 below; the middle two next to it, where a threshold
    # one step off would sort them the other way
    draws = {"levels": torch.tensor([0.9, abar_end * 1.001, abar_end * 0.999, 1e-3], dtype=torch.float64)}
    monkeypatch.setattr(diffusion, "sample_training_levels", lambda batch, *a, **k: draws["levels"][:batch])
    captured = {}
    original = diffusion.predicted_clean
    monkeypatch.setattr(diffusion, "predicted_clean", lambda *a: captured.setdefault("x0_hat", original(*a)))

    def losses(vocoder, n=4):
        torch.manual_seed(7)
        with torch.no_grad():
            return vocoder.training_loss(wav[:n], mel[:n])

    loss, stats = losses(with_aux)
    base, _ = losses(plain)
    expected = float(auraloss.freq.MultiResolutionSTFTLoss()(captured["x0_hat"][:2, None], wav[:2, None]))
    assert abs(stats["aux_stft"] - expected) < 1e-4 * expected
    assert abs(float(loss) - (float(base) + 0.1 * expected)) < 1e-5
    assert not torch.allclose(captured["x0_hat"], wav, atol=1e-3)  # from the network's eps_hat, not the true eps
    monkeypatch.setattr(diffusion, "predicted_clean", original)  # the capture above returns its first value
    grads = []
    for vocoder in (with_aux, plain):  # the auxiliary term trains the denoiser (not detached)
        vocoder.zero_grad()
        torch.manual_seed(7)
        vocoder.training_loss(wav, mel)[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in vocoder.denoiser.parameters() if p.grad is not None]))
    assert not torch.allclose(grads[0], grads[1])
    draws["levels"] = draws["levels"][2:]  # only draws below the schedule's end: no auxiliary term
    loss, stats = losses(with_aux, 2)
    assert stats["aux_stft"] == 0.0 and float(loss) == float(losses(plain, 2)[0])


def test_fit_resumes_a_checkpoint_saved_before_keys_were_added_but_not_another_model(tmp_path):
    """The saved config is read through today's dataclasses: a key an older version did not
    write counts at its default; a real change of model is refused before config.yaml is
    rewritten."""
    from specgrad_plugin.checkpoints import CheckpointError
    from specgrad_plugin.training import fit
    from tests.conftest import small_config

    cfg = small_config("frame")
    vocoder = SpecGradVocoder(cfg)
    wav = 0.1 * torch.randn(4, cfg.train.segment_frames * 256)
    loader = [(wav, vocoder.features(wav))]
    fit(vocoder, loader, 1, tmp_path, log_every=1, save_every=1)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    # as an older version saved it: keys added since, in a section the resume compares and in one it does not
    state["config"]["prior"].pop("harmonic_depth_db")
    state["config"]["prior"].pop("harmonic_cutoff_hz")
    for key in ("mel_gain_iterations", "mel_gain_max_db", "start_iterations"):
        state["config"]["inference"].pop(key)
    torch.save(state, tmp_path / "checkpoint.pt")
    fit(SpecGradVocoder(cfg), loader, 2, tmp_path, log_every=1, save_every=1)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 2
    config = (tmp_path / "config.yaml").read_text()
    other = small_config("frame", prior={"kind": "diffwave"})
    with pytest.raises(CheckpointError, match=r"cannot resume: it holds another model \(prior.kind: 'specgrad' "
                                              r"then, 'diffwave' now\)"):
        fit(SpecGradVocoder(other), loader, 3, tmp_path)
    assert (tmp_path / "config.yaml").read_text() == config


def test_training_loss_is_the_whitened_error_on_the_filtered_noise(speech_clip, monkeypatch):
    """One batch worked by hand: eps = L xi with the prior's (minimum-phase) response,
    x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, the denoiser given x_t, its condition on (mel, H)
    and log-SNR(abar), and the loss || L^-p (eps - eps_theta) ||^2 at the configured power."""
    from specgrad_plugin import diffusion

    from .conftest import small_config

    vocoder = SpecGradVocoder(small_config("frame", diffusion={"loss_inverse_power": 0.5}))
    wav = torch.from_numpy(speech_clip[: 2 * 32 * 256]).reshape(2, -1)
    mel = vocoder.features(wav)
    levels = torch.tensor([0.7, 0.2], dtype=torch.float64)
    monkeypatch.setattr(diffusion, "sample_training_levels", lambda batch, *a, **k: levels[:batch])
    seen = {}

    def denoiser(x_t, cond, level):  # an eps_theta that depends on its input
        seen.update(x_t=x_t, cond=cond, level=level)
        return 0.1 * x_t

    condition = vocoder.denoiser.condition
    monkeypatch.setattr(vocoder.denoiser, "forward", denoiser)
    torch.manual_seed(3)
    loss, _ = vocoder.training_loss(wav, mel)
    log_h = vocoder.prior.log_response(mel)
    assert log_h.imag.abs().max() > 0.1  # a phase a zero-phase |H| would drop
    torch.manual_seed(3)
    eps = vocoder.prior.apply(torch.randn(wav.shape), torch.exp(log_h))
    x_t = levels.sqrt().float()[:, None] * wav + (1 - levels).sqrt().float()[:, None] * eps
    torch.testing.assert_close(seen["x_t"], x_t)
    torch.testing.assert_close(seen["level"].double(), diffusion.log_snr(levels).double())
    torch.testing.assert_close(seen["cond"], condition(mel, torch.exp(log_h)))
    residual = vocoder.prior.apply_inverse(eps - 0.1 * x_t, log_h, 0.5)
    assert float(loss) == pytest.approx(float(diffusion.weighted_loss(residual)), rel=1e-5)
