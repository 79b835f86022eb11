"""Model presets shipped in the package, chosen by name or given as a YAML file.

    SpecGradConfig.from_preset("frame")                  # or "base", "tiny"
    python -m specgrad_plugin.bin.train --preset frame ...
    preset: frame                                        # in an ESPnet training config

A preset is a :class:`specgrad_plugin.config.SpecGradConfig` written out as YAML:

- ``frame``: the frame-rate denoiser family (ConvNeXt over STFT frames), the CPU default;
- ``base``: the published WaveNet size (a GPU is expected for training);
- ``tiny``: a small WaveNet for quick CPU runs and tests.

``specgrad/<name>`` names the config of a model shipped in ``specgrad_plugin/pretrained``,
to continue from it with the same architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Union

ROOT = Path(__file__).resolve().parent
DESCRIPTIONS = {
    "frame": "frame-rate denoiser (ConvNeXt over STFT frames), the CPU default",
    "base": "WaveNet denoiser, the published size",
    "tiny": "small WaveNet denoiser for quick CPU runs and tests",
}


class UnknownPresetError(ValueError):
    """A preset that is neither a shipped name nor an existing file."""


def names() -> List[str]:
    return sorted(DESCRIPTIONS)


def resolve(preset: Union[str, Path]) -> Path:
    """A preset name ('frame'), a pretrained tag ('specgrad/ljspeech') or a YAML path -> the YAML file.

    An existing file wins over a name, so a local ``frame`` file is still usable by its path."""
    path = Path(preset)
    if path.is_file():
        return path
    text = str(preset)
    if text in DESCRIPTIONS:
        return ROOT / f"{text}.yaml"
    from specgrad_plugin import pretrained

    if pretrained.is_tag(text):
        try:
            return pretrained.resolve(text)[1]
        except pretrained.UnknownModelError as e:
            raise UnknownPresetError(f"preset {text!r}: {e}") from None
    raise UnknownPresetError(
        f"preset {text!r}: no such file, and not a preset name; expected a YAML path, one of "
        + ", ".join(names())
        + f", or a shipped model's tag ({', '.join(pretrained.TAG_PREFIX + n for n in pretrained.available())})"
    )
