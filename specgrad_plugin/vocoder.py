"""SpecGradVocoder: features + prior + denoiser, the training loss and the ``predict`` API.

    vocoder = SpecGradVocoder.from_checkpoint("exp/.../checkpoint.pt")
    wav = vocoder(mel)            # (K, 80) log10 mel -> (K * 256,) samples at vocoder.fs
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from specgrad_plugin import diffusion, mel_domain, pitch, precision, shaping
from specgrad_plugin.checks import check_mel
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.denoisers import Denoiser, build_denoiser
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.priors import NoisePrior

Schedule = Union[str, Sequence[float]]


class CheckpointError(ValueError):
    """A checkpoint that does not match the model it is loaded into."""


class SpecGradVocoder(torch.nn.Module):
    def __init__(self, cfg: SpecGradConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.features = LogMelExtractor(cfg.features)
        self.prior = NoisePrior(cfg.prior, cfg.features, self.features.mel_basis)
        self.denoiser = build_denoiser(cfg)
        self.register_buffer("train_betas", diffusion.training_betas(cfg.diffusion), persistent=False)
        # sqrt of the loss's weights over frequency (diffusion.loss_band_weighting); None: flat
        band_gain, scale = None, cfg.diffusion.loss_band_weighting
        if scale != "flat":
            band_gain = shaping.scale_density_weights(cfg.features.n_fft, cfg.features.fs, scale).sqrt()
        self.register_buffer("loss_band_gain", band_gain, persistent=False)
        # Mean and std per band of the training mels (zeros: not collected). Inputs far
        # from them (a normalised or natural-log mel) trigger a warning, not silence.
        self.register_buffer("mel_stats", torch.zeros(2, cfg.features.n_mels))
        self.warned_departures: set = set()  # the kinds of input departure already warned about
        self.f0_templates = None  # pitch.comb_templates, built when a pitch warning needs them
        self.mr_stft = None  # FreGrad's auxiliary loss (diffusion.aux_stft_weight): no parameters
        if cfg.diffusion.aux_stft_weight > 0:
            import auraloss

            self.mr_stft = auraloss.freq.MultiResolutionSTFTLoss()

    @property
    def fs(self) -> int:
        return self.cfg.features.fs

    @property
    def hop_length(self) -> int:
        return self.cfg.features.hop_length

    def set_mel_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_stats.copy_(torch.stack([torch.as_tensor(mean), torch.as_tensor(std)]).float())

    def warn_on_mel_range(self, mel: torch.Tensor) -> None:
        """Warn when a (B, K, M) mel is far from the training mels: mean |z| over bands > 2
        (a normalised or natural-log mel: noise out), else once per kind of departure that
        mel_domain names (level, band limit, pitch outside inference.voice_f0_hz)."""
        mean, std = self.mel_stats
        if not bool((std > 0).all()):
            return
        z = float(((mel.mean(dim=(0, 1)) - mean) / std).abs().mean())
        if z > 2.0:
            warnings.warn(
                f"input mel mean {float(mel.mean()):.2f} is {z:.1f} std from the training mels "
                f"(mean {float(mean.mean()):.2f}): expected a denormalised log10 mel with the model's "
                "feature settings; the output will likely be noise",
                stacklevel=3,
            )
            return
        median_f0 = None
        if self.cfg.inference.voice_f0_hz and "pitch" not in self.warned_departures:  # once said, not re-estimated
            f0, voicing = pitch.mel_f0(mel[:1].float(), *self.pitch_templates())
            median_f0 = mel_domain.median_voiced_f0(f0[0], voicing[0])
        centres = pitch.band_centres_hz(self.features.mel_basis, self.cfg.features.fs, self.cfg.features.n_fft)
        notes = mel_domain.describe(mel.float().mean(dim=(0, 1)), mean, centres.tolist(), median_f0,
                                    self.cfg.inference.voice_f0_hz)
        for kind, note in notes.items():
            if kind not in self.warned_departures:  # once per vocoder and kind, not once per utterance
                self.warned_departures.add(kind)
                warnings.warn(f"input mel unlike the training mels: {note}", stacklevel=3)

    def pitch_templates(self):
        """pitch.comb_templates for this model's features, built on first use."""
        if self.f0_templates is None:
            self.f0_templates = pitch.comb_templates(
                self.features.mel_basis.cpu(), self.cfg.features.fs, self.cfg.features.n_fft)
        return tuple(t.to(self.mel_stats.device) for t in self.f0_templates)

    def warn_on_untrained_levels(self, betas: torch.Tensor, schedule) -> None:
        """Warn when a schedule starts below the lowest noise level the model was trained on."""
        problem = diffusion.untrained_start(betas, self.cfg.diffusion)
        if problem:
            name = schedule if isinstance(schedule, str) else f"{len(betas)} custom betas"
            warnings.warn(f"schedule {name} {problem}: its first steps are outside what the network learnt",
                          stacklevel=3)

    # ------------------------------------------------------------------ training
    def training_loss(
        self, wav: torch.Tensor, mel: torch.Tensor, amp_dtype: Optional[torch.dtype] = None
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The paper's loss || L^-p (eps - eps_theta(x_t, c, abar)) ||^2 on one batch.

        wav: (B, K * hop) clean segments; mel: (B, K, M) their log10 mels (computed on
        the whole clip, then cropped, so that edge frames see real context).
        amp_dtype: run the denoiser under autocast to this dtype (mixed precision); the
        filter, the noise, the loss and everything else stay float32 (precision.py).
        """
        device = wav.device
        with precision.float32_only(device):
            wav, mel = wav.float(), mel.float()
            log_response = self.prior.log_response(mel)
            response = torch.exp(log_response)
            eps = self.prior.noise(response)
            d = self.cfg.diffusion
            abar = diffusion.sample_training_levels(wav.shape[0], self.train_betas.cpu(), d.below_share,
                                                    d.min_alpha_bar)
            abar = abar.to(device)
            x_t = diffusion.add_noise(wav, eps, abar)
        with precision.autocast(device, amp_dtype):
            eps_hat = self.denoiser(x_t, self.denoiser.condition(mel, response), diffusion.log_snr(abar))
        with precision.float32_only(device):
            error = eps - eps_hat.float()
            residual = self.prior.apply_inverse(error, log_response, d.loss_inverse_power, self.loss_band_gain)
            loss = diffusion.weighted_loss(residual)
            stats = {}
            if d.aux_stft_weight > 0:
                aux = self.aux_stft_loss(wav, diffusion.predicted_clean(x_t, eps_hat.float(), abar), abar)
                stats["aux_stft"] = float(aux.detach())
                loss = loss + d.aux_stft_weight * aux
        with torch.no_grad():
            plain = error.pow(2).mean()
        return loss, {"loss": float(loss.detach()), "mse": float(plain), **stats}

    def aux_stft_loss(self, wav: torch.Tensor, x0_hat: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """auraloss's MR-STFT distance between x0_hat and the clean crops, on the draws at or
        above the linear schedule's last level (below it x0_hat is mostly amplified noise:
        x_t / sqrt(abar) at abar = 1e-3 is 31x the input); zero when the batch has none."""
        d = self.cfg.diffusion
        keep = abar >= float(diffusion.alpha_bars(self.train_betas[: d.steps])[-1])
        if not bool(keep.any()):
            return x0_hat.sum() * 0.0
        return self.mr_stft(x0_hat[keep].unsqueeze(1), wav[keep].unsqueeze(1))

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def forward(
        self,
        mel: torch.Tensor,
        schedule: Optional[Schedule] = None,
        seed: Optional[int] = 0,
        progress=None,
        chunk_frames: Optional[int] = None,
    ) -> torch.Tensor:
        """(K, M) or (B, K, M) denormalised log10 mel -> (K * hop,) or (B, K * hop) waveform.

        schedule: WG-3 | WG-6 | PG-6 | WG-50 | list of betas (default: the config's).
        seed: fixes the noise draws (None: use the global RNG).
        chunk_frames: run the denoiser in chunks of this many frames (default: the config's;
            0: never); the noise is drawn for the whole input, so the output is the same.
        TF32 (CUDA) follows inference.allow_tf32 during the call; the process' flags are restored.
        """
        batched = mel.dim() == 3
        mel = check_mel(mel, self.cfg.features.n_mels).to(self.train_betas.device).float()
        self.warn_on_mel_range(mel)
        betas = diffusion.inference_betas(schedule or self.cfg.inference.schedule)
        self.warn_on_untrained_levels(betas, schedule)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=mel.device).manual_seed(int(seed))
        with precision.tf32(self.cfg.inference.allow_tf32):  # this call's setting, not the process'
            response = self.prior.response(mel)
            chunk = self.cfg.inference.chunk_frames if chunk_frames is None else chunk_frames
            if 0 < chunk < mel.shape[1]:
                def predict(x, level):
                    return self.denoiser.forward_chunked(x, mel, response, level, chunk)
            else:
                budget = self.cfg.inference.conditioning_cache_mb * 2**20
                cond = self.denoiser.condition(mel, response, budget)  # once per utterance, reused at every step

                def predict(x, level):
                    return self.denoiser(x, cond, level)
            wav = diffusion.sample(
                predict,
                lambda: self.prior.noise(response, generator),
                betas,
                progress=progress,
            )
        wav = wav.clamp(-1.0, 1.0)
        return wav if batched else wav[0]

    # -------------------------------------------------------------- checkpoints
    def save(self, path: Union[str, Path], extra: Optional[Dict[str, Any]] = None) -> None:
        """Write {config, model, **extra} atomically (temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"config": self.cfg.to_dict(), "model": self.state_dict(), **(extra or {})}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

    @classmethod
    def from_pretrained(cls, name: str = "ljspeech", device: Union[str, torch.device] = "cpu") -> "SpecGradVocoder":
        """A model shipped with the package, by name, offline: "ljspeech" (the latest version) or
        a version, "ljspeech-v1", each also with the "specgrad/" prefix; pretrained.available()
        lists them. Unknown names raise pretrained.UnknownModelError listing the shipped ones."""
        from specgrad_plugin import pretrained

        weights, config = pretrained.resolve(name)
        return cls.from_checkpoint(weights, config=config, device=device)

    @classmethod
    def from_checkpoint(
        cls,
        path: Union[str, Path],
        config: Optional[Union[str, Path, SpecGradConfig]] = None,
        device: Union[str, torch.device] = "cpu",
        use_ema: bool = True,
    ) -> "SpecGradVocoder":
        """Load a checkpoint of the built-in trainer (config inside) or of ESPnet's trainer
        (``*.pth``: the config is ``config`` or the ``config.yaml`` beside it).

        Uses the EMA weights when the checkpoint has them, unless use_ema=False.
        config: a YAML path (preset or ESPnet config.yaml) or a SpecGradConfig; overrides the saved one.
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint not found")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for corrupt or foreign files
            hint = " (ESPnet's training state: load latest.pth or *.best.pth)" if path.name == "checkpoint.pth" else ""
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise CheckpointError(
                f"{path}: not a readable SpecGrad checkpoint{hint} ({type(e).__name__}: {first_line})"
            ) from None
        if not isinstance(payload, dict):
            raise CheckpointError(f"{path}: expected a dict of weights, got {type(payload).__name__}")
        weights, saved_config = _split_checkpoint(payload, use_ema, path)
        if isinstance(config, SpecGradConfig):
            cfg = config
        elif config is not None:
            cfg = SpecGradConfig.from_yaml(config)
        elif saved_config is not None:
            cfg = SpecGradConfig.from_dict(saved_config, source=f"{path}:config")
        elif (path.parent / "config.yaml").is_file():
            cfg = SpecGradConfig.from_yaml(path.parent / "config.yaml")
        else:
            raise CheckpointError(f"{path}: no config inside the checkpoint nor config.yaml beside it; pass config=")
        model = cls(cfg)
        load_state_strict(model, weights, str(path))
        return model.to(device).eval()


def _split_checkpoint(payload: Dict[str, Any], use_ema: bool, path: Path):
    """(weights of a SpecGradVocoder, saved config or None) from either checkpoint layout."""
    if "config" in payload and "model" in payload:  # built-in trainer: {config, model, ema, ...}
        weights = payload["ema"] if use_ema and "ema" in payload else payload["model"]
        return weights, payload["config"]
    state = payload.get("model", payload)  # ESPnet: a state dict, or checkpoint.pth's {"model": ...}
    prefix = "ema." if use_ema and any(k.startswith("ema.") for k in state) else "vocoder."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f"{path}: no SpecGrad weights (expected 'config'+'model', or 'vocoder.*' keys)")
    return weights, None


def load_state_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict that names missing/unexpected/mis-shaped keys in one error. Keys of
    older layouts are renamed first (Denoiser.upgrade_state_dict)."""
    state = dict(state)
    for name, module in model.named_modules():
        if isinstance(module, Denoiser):
            module.upgrade_state_dict(state, f"{name}." if name else "")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shaped = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shaped:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shaped:
            k = shaped[0]
            parts.append(f"shape mismatch for {k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise CheckpointError(f"{source}: weights do not match the config ({'; '.join(parts)})")
    model.load_state_dict(state)
