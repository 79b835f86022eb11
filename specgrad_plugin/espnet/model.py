"""ESPnetSpecGradModel: the AbsESPnetModel that ESPnet's trainer drives.

It holds the vocoder, an EMA copy of it (saved in every ESPnet checkpoint, so
``*.pth`` files carry both), and cuts random training segments from full-length
utterances: each segment is taken with two frames of context on both sides of a
reflect-padded clip, so its mel frames equal those of the whole clip on its frame grid
(``any_sample_crops``: a segment may start at any sample, its mel computed from it;
``speed_factors``: in training each utterance is first played at one of these speeds,
drawn uniformly, as the built-in trainer's SegmentDataset keeps a copy at each).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from specgrad_plugin import precision, shaping
from specgrad_plugin.checkpoints import CheckpointError
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import SpecGradConfig, TrainConfig
from specgrad_plugin.critic import refuse_critic
from specgrad_plugin.data import mel_context_frames, speed_perturb, training_crop
from specgrad_plugin.loss import DiffusionLoss
from specgrad_plugin.priors import DEFAULT_ENERGY_RANGE
from specgrad_plugin.training import ema_update, make_ema
from specgrad_plugin.vocoder import SpecGradVocoder

# Frame energies are histogrammed on these log-spaced edges during collect-stats;
# ESPnet sums the per-frame one-hot vectors, giving the training set's histogram.
ENERGY_BINS = torch.logspace(-3, 2, 201)


class ESPnetSpecGradModel(AbsESPnetModel):
    """The vocoder, its EMA copy and its training loss, as ESPnet's trainer drives them:
    ``forward(speech, speech_lengths)`` cuts one segment per utterance and returns the loss.

    Args:
        features, prior, diffusion, denoiser, inference: SpecGradConfig's sections (the
            preset's, overridden by model_conf; None: the defaults).
        segment_frames: frames per training segment (segment_frames * hop samples).
        any_sample_crops: segments start at any sample (else on the clip's frame grid).
        speed_factors: each utterance is played at one of these speeds, drawn uniformly
            (None: [1.0], the clips as they are).
        prior_stats_file: collect-stats' energy_hist_stats.npz, the corpus' frame-energy
            range (None: LJSpeech's, with a warning).
        mel_stats_file: collect-stats' feats_stats.npz, the training mels' mean and std
            per band, which the vocoder's input warnings compare with.
        init_from: fine-tune from a shipped model's tag (specgrad/<name>) or a checkpoint.
    """

    def __init__(
        self,
        features: Optional[Dict[str, Any]] = None,
        prior: Optional[Dict[str, Any]] = None,
        diffusion: Optional[Dict[str, Any]] = None,
        denoiser: Optional[Dict[str, Any]] = None,
        inference: Optional[Dict[str, Any]] = None,
        segment_frames: int = TrainConfig.segment_frames,
        any_sample_crops: bool = TrainConfig.any_sample_crops,
        speed_factors: Optional[List[float]] = None,  # None: TrainConfig's
        prior_stats_file: Optional[str] = None,
        mel_stats_file: Optional[str] = None,
        init_from: Optional[str] = None,
    ) -> None:
        super().__init__()
        sections = dict(features=features, prior=prior, diffusion=diffusion, denoiser=denoiser, inference=inference)
        crops = dict(segment_frames=segment_frames, any_sample_crops=any_sample_crops)
        if speed_factors is not None:
            crops["speed_factors"] = speed_factors
        # the crop keys are the train section's: its defaults and its checks, in one place
        self.cfg = SpecGradConfig.from_dict({**{k: v for k, v in sections.items() if v}, "train": crops},
                                            source="model_conf")
        self.segment_frames = self.cfg.train.segment_frames
        self.warned_short_clips = False
        self.any_sample_crops = self.cfg.train.any_sample_crops
        self.speed_factors = [float(f) for f in self.cfg.train.speed_factors]
        # ESPnet's optimiser would step the critic with the vocoder's loss, and its
        # checkpoints would not hold the critic's own optimiser
        refuse_critic(self.cfg.diffusion, "model_conf")
        self.vocoder = SpecGradVocoder(self.cfg)
        self.loss = DiffusionLoss(self.cfg)
        if prior_stats_file:
            self.vocoder.prior.set_level_statistics(*energy_range_from_stats(prior_stats_file))
        else:
            logging.warning("no prior_stats_file in model_conf: the frame level uses LJSpeech's energy range %s, "
                            "not this corpus' (collect-stats writes energy_hist_stats.npz)", DEFAULT_ENERGY_RANGE)
        if mel_stats_file:
            self.vocoder.set_mel_statistics(*mel_mean_std_from_stats(mel_stats_file, self.vocoder.cfg.features.n_mels))
        if init_from:
            self.load_initial_weights(init_from)
        self.ema = make_ema(self.vocoder)
        # From trained weights the average continues from them: no warm-up, which would make
        # the "EMA" of a short fine-tuning little more than its last raw steps.
        self.ema_warmup = not init_from
        self.amp_dtype: Optional[torch.dtype] = None  # set by DiffusionTrainer for --use_amp
        self.register_buffer("nonfinite_losses", torch.zeros((), dtype=torch.long))
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.context = mel_context_frames(self.cfg.features.n_fft, self.cfg.features.hop_length)

    def load_initial_weights(self, source: str) -> None:
        """Fine-tuning: start from a shipped model (specgrad/<name>) or a checkpoint's EMA
        weights, its level and mel statistics included (the noise levels it learnt with).
        The architecture must match model_conf (an error names the differing weights), but
        for modules that model_conf adds and whose output starts at zero (Denoiser.silent_at_start)."""
        from specgrad_plugin import pretrained
        from specgrad_plugin.checkpoints import change_summary, identity_changes, load_grown, model_identity

        if pretrained.is_tag(source):
            start = SpecGradVocoder.from_pretrained(source)
        else:
            start = SpecGradVocoder.from_checkpoint(source)
        if start.cfg.denoiser.kind != self.cfg.denoiser.kind:  # before the lists of differing weights
            raise CheckpointError(f"model_conf init_from={source}: a {start.cfg.denoiser.kind} denoiser, this "
                                  f"config's is {self.cfg.denoiser.kind}; expected the same family (model_conf "
                                  f"preset: {source if pretrained.is_tag(source) else 'its config.yaml'} starts "
                                  "from its config)")
        grown = load_grown(self.vocoder, start.state_dict(), f"model_conf init_from={source}")
        own, theirs = model_identity(self.cfg.to_dict()), model_identity(start.cfg.to_dict())
        changed = identity_changes(theirs, own)
        if changed:  # grown modules and other inference settings are allowed, but never unsaid
            logging.warning("model_conf init_from=%s: this run's config differs from the source's in %d keys (%s); "
                            "the fine-tuned model computes with this run's. To keep the source's, start from its "
                            "preset (preset: %s)", source, len(changed),
                            change_summary(theirs, own, most=6, labels=("there", "here")),
                            source if pretrained.is_tag(source) else "its config.yaml")
        logging.info("initialised from %s%s", source, f"; new and silent at the start: {grown}" if grown else "")

    def update_ema(self, decay: float) -> None:
        ema_update(self.ema, self.vocoder, decay, int(self.ema_updates), warmup=self.ema_warmup)
        self.ema_updates += 1

    def draw_speed(self) -> float:
        """One of speed_factors, uniformly; no random draw when there is one (crops stay as before)."""
        if len(self.speed_factors) == 1:
            return self.speed_factors[0]
        return self.speed_factors[int(torch.randint(len(self.speed_factors), ()))]

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, K * hop) audio -> (B, K, M) log10 mel in float32, also inside ESPnet's --use_amp
        autocast: bf16 would round the training mels, and fp16 underflows the log's floor
        (1e-10) to -inf on padded audio."""
        with precision.float32_only(wav.device):
            return self.vocoder.features(wav.float())

    def segments(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Random segments (train) or centred ones (eval): (B, S * hop) audio and (B, S, M) mels."""
        hop, frames, ctx = self.cfg.features.hop_length, self.segment_frames, self.context
        # before speed_perturb: a slowed copy may reach the crop, so "partly"
        if self.training and not self.warned_short_clips and max(lengths.tolist()) < frames * hop:
            self.warned_short_clips = True  # once: the data, not the step, is the problem
            logging.warning("segment_frames=%d (%.2f s) is longer than every clip of a training batch (the longest "
                            "%.2f s): its crops are partly zero padding; expected segment_frames under the clips' "
                            "length", frames, frames * hop / self.cfg.features.fs,
                            max(lengths.tolist()) / self.cfg.features.fs)
        pieces = []
        for wav, length in zip(speech, lengths.tolist(), strict=True):
            clip = speed_perturb(wav[:length], self.draw_speed() if self.training else 1.0)
            pieces.append(training_crop(clip, frames, hop, ctx, self.any_sample_crops, self.training))
        batch = torch.stack(pieces)
        mel = self.mel(batch)[:, ctx : ctx + frames]
        return batch[:, ctx * hop : (ctx + frames) * hop], mel

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        wav, mel = self.segments(speech, speech_lengths)
        loss, stats = self.loss(self.vocoder, wav, mel, self.amp_dtype)
        batch = torch.tensor(speech.shape[0], device=speech.device)
        if not torch.isfinite(loss):
            # ESPnet's trainer then finds a non-finite gradient norm and skips the update.
            self.nonfinite_losses += 1
            # Every key is reported each step; ESPnet's averages skip the non-finite values.
            nan = torch.tensor(float("nan"))
            return force_gatherable((loss, {"loss": nan, "mse": nan, "nonfinite": torch.tensor(1.0)}, batch),
                                    loss.device)
        out = {k: torch.tensor(v) for k, v in stats.items()}
        out["nonfinite"] = torch.tensor(0.0)  # averaged per epoch: the fraction of skipped steps
        return force_gatherable((loss, out, batch), loss.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        """Whole-utterance mels, and a one-hot histogram row of each frame's energy E_k."""
        mels, lengths = [], []
        hop = self.cfg.features.hop_length
        for wav, length in zip(speech, speech_lengths.tolist(), strict=True):
            usable = max(length - length % hop, hop)
            mels.append(self.mel(wav[None, :usable])[0])
            lengths.append(mels[-1].shape[0])
        feats = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)
        lens = torch.tensor(lengths, device=speech.device)
        energy = shaping.frame_energy(feats)
        index = torch.bucketize(energy, ENERGY_BINS.to(energy.device)).clamp(1, len(ENERGY_BINS) - 1) - 1
        hist = torch.nn.functional.one_hot(index, len(ENERGY_BINS) - 1).float()
        return {"feats": feats, "feats_lengths": lens, "energy_hist": hist, "energy_hist_lengths": lens}


def _load_stats(path: str, kind: str, size: int) -> Dict[str, np.ndarray]:
    """collect-stats' count, sum and sum_square, each sum of ``size`` finite values, or
    SpecGradInputError naming the file (another stats file, another feature setting)."""
    try:
        stats = np.load(path)
        stats = {k: stats[k] for k in ("count", "sum", "sum_square")}
    except (OSError, KeyError, ValueError) as e:
        raise SpecGradInputError(f"{path}: not a {kind} from collect-stats ({e})") from None
    if stats["sum"].shape != (size,) or stats["sum_square"].shape != (size,):
        raise SpecGradInputError(f"{path}: sums of shape {stats['sum'].shape}, expected ({size},): the {kind} of "
                                 "another feature setting, or another stats file")
    if not all(np.isfinite(v).all() for v in stats.values()) or not float(stats["count"]) > 0:
        raise SpecGradInputError(f"{path}: count {stats['count']} and NaN/inf or no frames in its sums; expected "
                                 f"the {kind} of a collect-stats run that read frames")
    return stats


def mel_mean_std_from_stats(path: str, n_mels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std of the training mels from collect-stats' feats_stats.npz."""
    stats = _load_stats(path, "feats_stats.npz", n_mels)
    mean = stats["sum"] / stats["count"]
    std = np.sqrt(np.maximum(stats["sum_square"] / stats["count"] - mean**2, 1e-12))
    return torch.from_numpy(mean), torch.from_numpy(std)


def energy_range_from_stats(path: str) -> Tuple[float, float]:
    """E_min, E_max from collect-stats' energy_hist_stats.npz (the lowest and highest occupied bins)."""
    counts = _load_stats(path, "energy_hist_stats.npz", len(ENERGY_BINS) - 1)["sum"]
    occupied = np.nonzero(counts > 0)[0]
    if occupied.size == 0:
        raise SpecGradInputError(f"{path}: empty energy histogram (no frames were collected)")
    edges = ENERGY_BINS.numpy()
    return float(edges[occupied[0]]), float(edges[occupied[-1] + 1])
