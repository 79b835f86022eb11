"""Reference vs generated log-mel spectrograms as a PNG (validation samples, scoring)."""

from __future__ import annotations

from pathlib import Path

import torch


def plot_spectrograms(reference: torch.Tensor, generated: torch.Tensor, path: Path, title: str,
                      label: str = "SpecGrad") -> None:
    """Reference and generated log10 mels, one above the other, written to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    low = float(reference.min())
    for ax, mel, name in zip(axes, (reference, generated), ("reference", label), strict=True):
        ax.imshow(mel.T.numpy(), origin="lower", aspect="auto", vmin=low, vmax=float(reference.max()))
        ax.set_ylabel(f"{name}\nmel band")
    axes[-1].set_xlabel("frame")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
