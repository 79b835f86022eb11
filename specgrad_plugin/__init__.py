"""SpecGrad: a diffusion vocoder with spectrally shaped noise, as an ESPnet plugin.

Importing the package is cheap: submodules (which import torch and ESPnet) load
on first use.
"""

from specgrad_plugin.version import __version__

__all__ = ["__version__"]
