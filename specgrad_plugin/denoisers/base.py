"""The one interface every denoiser family implements, so that the vocoder, the losses,
the sampler, ESPnet's task and the recipe cannot tell the families apart.

    cond = denoiser.condition(mel, response)   # once per utterance (or training batch)
    eps_hat = denoiser(x_t, cond, log_snr)     # once per diffusion step
    predict = denoiser.chunked(mel, response, hop, chunk, cache_bytes)  # long inputs, chunk by chunk

mel: (B, K, M) log10 mel; response: (B, K, F) the prior's filter H = sigma * h;
x_t: (B, K * hop) noisy audio; log_snr: (B,); eps_hat: (B, K * hop) predicted noise.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn


class Denoiser(nn.Module):
    """eps_theta(x_t, c, level). Subclasses define condition(), forward(), context_frames()."""

    def condition(
        self, mel: torch.Tensor, response: torch.Tensor, cache_bytes: int = 0, source: Optional[torch.Tensor] = None
    ) -> Any:
        """What forward() takes as ``cond``: a function of the mel and the prior's response
        only, so inference computes it once per utterance. cache_bytes: memory the family
        may spend on precomputing per-step work (training passes none). source: this
        stretch of periodic_source() of the whole utterance (None: computed from ``mel``)."""
        raise NotImplementedError

    def periodic_source(self, mel: torch.Tensor) -> Optional[torch.Tensor]:
        """A (B, K * hop) signal the family derives from the whole (B, K, M) mel, such as an
        excitation at its F0 (None: the family uses none). Chunks cut it like x_t, so that
        chunked inference sees the same signal as the whole utterance."""
        return None

    def forward(self, x: torch.Tensor, cond: Any, log_snr: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def context_frames(self) -> int:
        """Mel frames on each side of a frame that can change its output (receptive field)."""
        raise NotImplementedError

    def silent_at_start(self) -> Tuple[str, ...]:
        """Names of submodules whose output starts at zero: a trained model may grow by them
        (init_from lacks their weights) and still start as the same function."""
        return ()

    def upgrade_state_dict(self, state: Dict[str, torch.Tensor], prefix: str = "") -> Dict[str, torch.Tensor]:
        """Rename, in place, the keys under ``prefix`` that older checkpoints of this family
        name otherwise; the same renaming runs inside load_state_dict."""
        return state

    def chunk_alignment(self) -> int:
        """chunked() starts every chunk's context on a multiple of this many frames."""
        return 1

    def chunked(
        self, mel: torch.Tensor, response: torch.Tensor, hop: int, chunk: int, cache_bytes: int = 0
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """predict(x, log_snr) = forward(x, condition(mel, response), log_snr), computed over
        chunks of ``chunk`` frames with context_frames() of context on both sides: the same
        output, memory bounded by the chunk plus cache_bytes. hop: samples per mel frame.

        At the first step each chunk's condition() gets what is left of cache_bytes and is
        kept for the later steps if it fits there; a chunk past the budget computes its own
        again at every step (with no budget)."""
        context, frames, align = self.context_frames(), mel.shape[1], self.chunk_alignment()
        source = self.periodic_source(mel)
        pieces = []
        for start in range(0, frames, chunk):
            stop = min(frames, start + chunk)
            lo, hi = max(0, start - context) // align * align, min(frames, stop + context)
            inputs = (mel[:, lo:hi], response[:, lo:hi], None if source is None else source[:, lo * hop : hi * hop])
            pieces.append((start, stop, lo, hi, inputs))
        kept: List[Any] = []  # from the first step on: each chunk's conditioning, None past the budget
        left = cache_bytes

        def predict(x: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
            nonlocal left
            first = not kept
            out = torch.empty_like(x)
            for i, (start, stop, lo, hi, (piece_mel, piece_response, piece_source)) in enumerate(pieces):
                if first:
                    cond = self.condition(piece_mel, piece_response, left, source=piece_source)
                    size = tensor_bytes(cond)
                    fits = size <= left
                    kept.append(cond if fits else None)
                    left -= size if fits else 0
                else:
                    cond = kept[i]
                    if cond is None:
                        cond = self.condition(piece_mel, piece_response, source=piece_source)
                y = self.forward(x[:, lo * hop : hi * hop], cond, log_snr)
                out[:, start * hop : stop * hop] = y[:, (start - lo) * hop : (stop - lo) * hop]
            return out

        return predict


def tensor_bytes(value: Any) -> int:
    """Bytes of storage held by the tensors in ``value`` (a tensor, or tuples and lists of
    them; None: 0), each storage counted once: a view holds all of its base. Meta tensors
    (shapes without data) have no address to tell their storages apart, so each counts whole."""
    storages: Dict[Any, int] = {}

    def visit(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            key = ("meta", len(storages)) if item.is_meta else storage.data_ptr()
            storages[key] = storage.nbytes()
        elif isinstance(item, (list, tuple)):
            for element in item:
                visit(element)
        elif not (item is None or isinstance(item, (bool, int, float))):
            raise TypeError(f"tensor_bytes: cannot size a {type(item).__name__} (expected tensors, "
                            "tuples or lists of them, None or numbers)")

    visit(value)
    return sum(storages.values())


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
