"""The learning-curve figure of bench/prior_study.py's report: each run's dev metrics
against training CPU core-minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional


def plot_curves(curves, path: Path, floor: Optional[Dict[str, float]] = None,
                panels: Optional[List[str]] = None) -> None:
    """Each run's dev curve against core-minutes; floor: Griffin-Lim's dev scores (GL-32/<metric>),
    drawn as a line on the panels of the same metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels or ["snr_t5", "snr_t20", "snr_t50", "WG-6/mel_l1", "WG-6/mr_stft", "WG-3/mel_l1"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, key in zip(axes.flat, panels, strict=True):
        for variant, rows in curves.items():
            ax.plot([r["core_min"] for r in rows], [r[key] for r in rows], marker="o",
                    label=variant, linestyle=":" if variant.startswith("sg_") else "-")
        metric = key.split("/")[-1]
        if floor and f"GL-32/{metric}" in floor:
            ax.axhline(floor[f"GL-32/{metric}"], color="black", linestyle="--", label="Griffin-Lim (32 it.)")
        higher = key.startswith("snr") or metric in ("stoi", "pesq")
        ax.set_title(key + (" (dB)" if key.startswith("snr") else "") + (", higher is better" if higher
                                                                          else ", lower is better"))
        ax.set_xlabel("training CPU core-minutes")
        ax.grid(alpha=0.3)
    axes.flat[panels.index("WG-6/mel_l1") if "WG-6/mel_l1" in panels else 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
