"""SpecGrad: a diffusion vocoder with spectrally shaped noise, as an ESPnet plugin.

Importing the package is cheap: torch and ESPnet load only with the submodules.
It also arranges that ESPnet's TTS inference accepts SpecGrad checkpoints as
``--vocoder_file`` (see specgrad_plugin.autoload).
"""

from specgrad_plugin.autoload import install as _install_espnet_hook
from specgrad_plugin.version import __version__

_install_espnet_hook()

__all__ = ["__version__"]
