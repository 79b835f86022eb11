"""SpecGradVocoder: the inference model (features, prior, denoiser) and its sampler.

    vocoder = SpecGradVocoder.from_checkpoint("exp/.../checkpoint.pt")
    wav = vocoder(mel)            # (K, 80) log10 mel -> (K * 256,) samples at vocoder.fs

The training loss is loss.DiffusionLoss; checkpoint layouts are checkpoints.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from specgrad_plugin import checkpoints, diffusion, mel_domain, mel_gain, precision
from specgrad_plugin.checkpoints import CheckpointError, load_state_strict  # noqa: F401  (their old home)
from specgrad_plugin.checks import check_mel, check_seed, check_whole_number, warn_caller
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.critic import refuse_critic
from specgrad_plugin.denoisers import build_denoiser
from specgrad_plugin.features import LogMelExtractor
from specgrad_plugin.loss import DiffusionLoss
from specgrad_plugin.mel_domain import InputWarnings
from specgrad_plugin.priors import NoisePrior

Schedule = Union[str, Sequence[float]]


class SpecGradVocoder(torch.nn.Module):
    """A denormalised log10 mel -> waveform by SpecGrad's ancestral sampler.

    Args:
        cfg: the model (features, prior, diffusion levels, denoiser family, inference
            defaults); validated here.
    """

    def __init__(self, cfg: SpecGradConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.features = LogMelExtractor(cfg.features)
        self.prior = NoisePrior(cfg.prior, cfg.features, self.features.mel_basis)
        self.denoiser = build_denoiser(cfg)
        # the levels the network was trained on: the loss draws from them, bench and tests read them
        self.register_buffer("train_betas", diffusion.training_betas(cfg.diffusion), persistent=False)
        # Mean and std per band of the training mels (zeros: not collected). Inputs far
        # from them (a normalised or natural-log mel) trigger a warning, not silence.
        self.register_buffer("mel_stats", torch.zeros(2, cfg.features.n_mels))
        self.input_warnings = InputWarnings(cfg.features, self.features.mel_basis, cfg.inference.voice_f0_hz,
                                            level_matched=cfg.inference.level_match_db > 0)
        self.loss_cache: Tuple[Any, ...] = ()  # (device, DiffusionLoss) of training_loss, not a submodule

    @property
    def fs(self) -> int:
        return self.cfg.features.fs

    @property
    def hop_length(self) -> int:
        return self.cfg.features.hop_length

    def set_mel_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_stats.copy_(torch.stack([torch.as_tensor(mean), torch.as_tensor(std)]).float())

    def warn_on_mel_range(self, mel: torch.Tensor) -> None:
        """Warn when a (B, K, M) mel is far from the training mels (mel_domain.InputWarnings)."""
        self.input_warnings.check(mel, *self.mel_stats)

    @property
    def matches_levels(self) -> bool:
        """Whether level matching is on: inference.level_match_db > 0 and mel statistics set
        (a mel within the tolerance is still left as it is)."""
        return self.cfg.inference.level_match_db > 0 and bool((self.mel_stats[1] > 0).all())

    def level_shift(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, K, M) mel -> (B,) log10 shift s that moves each item to within
        inference.level_match_db of the training level (mel_domain.level_shift); 0 when it is
        already there, or when level matching is off."""
        if not self.matches_levels:
            return torch.zeros(mel.shape[0], device=mel.device)
        return mel_domain.level_shift(mel, *self.mel_stats, self.cfg.inference.level_match_db)

    def match_level(self, mel: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, K, M) mel -> (the mel to sample from, (B,) gain for its output): each item moved
        to within inference.level_match_db of the training level (mel_domain.match_level);
        gain 1 and the mel unchanged when it is already there, or when level matching is off."""
        if not self.matches_levels:
            return mel, torch.ones(mel.shape[0], device=mel.device)
        return mel_domain.match_level(mel, *self.mel_stats, self.cfg.inference.level_match_db)

    def match_mel(self, wav: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """(B, K * hop) sampler output -> (B, K * hop) brought to its (B, K, M) mel by
        inference.mel_gain_iterations gain steps (mel_gain.match_mel); unchanged when 0."""
        inference = self.cfg.inference
        if not inference.mel_gain_iterations:
            return wav
        return mel_gain.match_mel(wav, mel, self.features.mel_basis.to(wav), self.prior.n_fft, self.prior.hop,
                                  self.prior.window, inference.mel_gain_iterations, inference.mel_gain_max_db)

    def chosen_schedule(self, schedule: Optional[Schedule]) -> Schedule:
        """``schedule``, or the config's (inference.schedule) when it is None: every inference
        path reads it so, and an empty schedule stays an error (diffusion.inference_betas)."""
        return self.cfg.inference.schedule if schedule is None else schedule

    def schedule_betas(self, schedule: Optional[Schedule], warn: bool = False) -> torch.Tensor:
        """The betas of ``schedule`` (chosen_schedule: None is the config's), as
        diffusion.inference_betas gives them; warn=True (the vocoding paths): warn when the
        schedule starts noisier than the noisiest level the model was trained on (its starting
        abar below the lowest trained abar)."""
        betas = diffusion.inference_betas(self.chosen_schedule(schedule))
        problem = diffusion.untrained_start(betas, self.cfg.diffusion) if warn else None
        if problem:
            name = schedule if isinstance(schedule, str) or schedule is None else f"{len(betas)} custom betas"
            warn_caller(f"schedule {self.chosen_schedule(name)} {problem}: its first steps are outside what "
                        "the network learnt")
        return betas

    def training_loss(
        self, wav: torch.Tensor, mel: torch.Tensor, amp_dtype: Optional[torch.dtype] = None
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """DiffusionLoss(self.cfg)(self, wav, mel, amp_dtype), its loss kept per device. A config
        with the sampler loss's critic is refused: the critic is trainer state (training.fit)."""
        refuse_critic(self.cfg.diffusion, "SpecGradVocoder.training_loss")
        if not self.loss_cache or self.loss_cache[0] != wav.device:
            self.loss_cache = (wav.device, DiffusionLoss(self.cfg).to(wav.device))
        return self.loss_cache[1](self, wav, mel, amp_dtype)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor, schedule: Optional[Schedule] = None, seed: Optional[int] = 0,
                progress=None, chunk_frames: Optional[int] = None) -> torch.Tensor:
        """(K, M) or (B, K, M) denormalised log10 mel -> (K * hop,) or (B, K * hop) waveform:
        apply_gain(*sample(...)).

        schedule: WG-3 | WG-6 | PG-6 | WG-50 | LJ-3 | LJ2-3 | list of betas (default: the config's).
        seed: fixes the noise draws (None: use the global RNG).
        chunk_frames: run the denoiser in chunks of this many frames (default: the config's;
            0: never); the noise is drawn for the whole input, so the output is the same.
        TF32 (CUDA) follows inference.allow_tf32 during the call; the process' flags are restored.
        """
        wav = self.apply_gain(*self.sample(mel, schedule, seed, progress, chunk_frames))
        return wav if mel.dim() == 3 else wav[0]

    @torch.no_grad()
    def sample(self, mel: torch.Tensor, schedule: Optional[Schedule] = None, seed: Optional[int] = 0,
               progress=None, chunk_frames: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sampler alone, forward's arguments: (B, K * hop) waveform before the gain steps,
        the (B, K, M) level-matched mel it was sampled from, and the (B,) level gain that
        apply_gain() applies. A (K, M) mel is taken as a batch of one."""
        mel = check_mel(mel, self.cfg.features.n_mels).to(self.mel_stats.device).float()
        seed = check_seed(seed)
        if chunk_frames is not None:
            chunk_frames = check_whole_number(chunk_frames, "chunk_frames", "an integer (0: never chunk) or None")
        self.warn_on_mel_range(mel)
        mel, gain = self.match_level(mel)
        betas = self.schedule_betas(schedule, warn=True)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=mel.device).manual_seed(seed)
        with precision.tf32(self.cfg.inference.allow_tf32):  # this call's setting, not the process'
            response = self.prior.response(mel)
            chunk = self.cfg.inference.chunk_frames if chunk_frames is None else chunk_frames
            budget = self.cfg.inference.conditioning_cache_mb * 2**20
            if 0 < chunk < mel.shape[1]:
                predict = self.denoiser.chunked(mel, response, self.hop_length, chunk, budget)
            else:
                cond = self.denoiser.condition(mel, response, budget)  # once per utterance, reused at every step

                def predict(x, level):
                    return self.denoiser(x, cond, level)
            wav = diffusion.sample(predict, lambda: self.prior.noise(response, generator), betas, progress=progress,
                                   start=self.prior.start(mel, self.cfg.inference.start_iterations))
        return wav, mel, gain

    @torch.no_grad()
    def apply_gain(self, wav: torch.Tensor, mel: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """sample()'s (B, K * hop) waveform, (B, K, M) mel and (B,) gain -> (B, K * hop): the
        gain steps of inference.mel_gain_iterations as set now (match_mel), the level's gain,
        then one clamp, as in every inference path."""
        with precision.tf32(self.cfg.inference.allow_tf32):
            wav = self.match_mel(wav, mel)
        return (wav * gain[:, None]).clamp(-1.0, 1.0)

    def save(self, path: Union[str, Path], extra: Optional[Dict[str, Any]] = None) -> None:
        """Write {config, model, **extra} atomically (checkpoints.save)."""
        checkpoints.save(self, self.cfg, path, extra)

    @classmethod
    def from_pretrained(cls, name: str = "ljspeech", device: Union[str, torch.device] = "cpu") -> "SpecGradVocoder":
        """A model shipped with the package, offline: "ljspeech" (the latest), "ljspeech-v1", also
        as "specgrad/<name>"; unknown names raise pretrained.UnknownModelError listing them."""
        from specgrad_plugin import pretrained

        weights, config = pretrained.resolve(name)
        return cls.from_checkpoint(weights, config=config, device=device)

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], config: Optional[Union[str, Path, SpecGradConfig]] = None,
                        device: Union[str, torch.device] = "cpu", use_ema: bool = True) -> "SpecGradVocoder":
        """Load a checkpoint of any layout checkpoints.py reads: the built-in trainer's (config
        inside) or ESPnet's (``*.pth``: the config is ``config`` or the ``config.yaml`` beside it).

        Uses the EMA weights when the checkpoint has them, unless use_ema=False.
        config: a YAML path (preset or ESPnet config.yaml) or a SpecGradConfig; overrides the saved one.
        """
        weights, saved = checkpoints.read(path, use_ema)
        model = cls(checkpoints.config_for(path, saved, config))
        load_state_strict(model, weights, str(path))
        return model.to(device).eval()
