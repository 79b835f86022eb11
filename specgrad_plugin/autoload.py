"""Register SpecGrad with ESPnet's TTS inference when ESPnet loads, at no start-up cost.

``install()`` (run by ``import specgrad_plugin`` and by the ``specgrad_plugin.pth``
file that installation puts in site-packages) adds one finder to ``sys.meta_path``.
It does nothing until ``espnet2.tasks.tts`` or ``espnet2.bin.tts_inference`` is
imported; then it lets the module load normally and calls
``specgrad_plugin.espnet.tts_vocoder.register`` on it (the vocoder loader of TTSTask,
the ``specgrad/`` vocoder tags of Text2Speech). Without ESPnet in use nothing else is
imported.
"""

from __future__ import annotations

import importlib.util
import sys

TARGETS = ("espnet2.tasks.tts", "espnet2.bin.tts_inference")


class _RegisterOnImport:
    """A meta-path finder that only decorates the loaders of TARGETS."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS:
            return None
        sys.meta_path.remove(self)  # let the regular finders locate the module
        try:
            spec = importlib.util.find_spec(fullname)
        except Exception:  # the regular import then meets (and reports) the same problem
            return None
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _register(module)

        try:
            spec.loader.exec_module = exec_and_register
        except Exception as e:  # a loader that cannot be decorated: ESPnet loads without the plugin
            _warn_once(e)
        return spec


_warned = False


def _warn_once(error: BaseException) -> None:
    global _warned
    if not _warned:
        _warned = True
        first_line = (str(error).strip().splitlines() or [""])[0]
        print(f"specgrad_plugin: SpecGrad is not registered with ESPnet, which works without it "
              f"({type(error).__name__}: {first_line})", file=sys.stderr)


def _register(module) -> None:
    """Never breaks ESPnet: any failure (another ESPnet version, a broken install) is one line
    on stderr, printed once per process, and ESPnet goes on as if the plugin were absent."""
    try:
        from specgrad_plugin.espnet.tts_vocoder import register

        register(module)
    except Exception as e:
        _warn_once(e)


def install() -> None:
    """Idempotent. Registers at once with the targets already imported."""
    for name in TARGETS:
        if name in sys.modules:
            _register(sys.modules[name])
    if not all(name in sys.modules for name in TARGETS) and not any(
        isinstance(f, _RegisterOnImport) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _RegisterOnImport())
