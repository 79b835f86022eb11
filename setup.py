"""specgrad_plugin: SpecGrad (Koizumi et al., Interspeech 2022) as an ESPnet vocoder plugin."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

# specgrad_plugin.pth goes to the root of site-packages: Python runs its import line at
# start-up, which lets the unmodified espnet2.bin.tts_inference load SpecGrad vocoders
# (specgrad_plugin/autoload.py; the import costs about a millisecond).
AUTOLOAD = "specgrad_plugin.pth"
AUTOLOAD_LINE = "import specgrad_plugin\n"  # generated here, not tracked: one line of Python


class BuildPyWithAutoload(build_py):
    """Regular wheels: files at the wheel root land in site-packages."""

    def run(self):
        super().run()
        (Path(self.build_lib) / AUTOLOAD).write_text(AUTOLOAD_LINE)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / AUTOLOAD)]


class EditableWheelWithAutoload(editable_wheel):
    """Editable installs (PEP 660) keep only what the strategy writes: add the .pth there too."""

    def _select_strategy(self, name, tag, build_lib):
        strategy = super()._select_strategy(name, tag, build_lib)

        class WithAutoload:
            def __call__(self, wheel, files, mapping):
                strategy(wheel, files, mapping)
                wheel.writestr(AUTOLOAD, AUTOLOAD_LINE)

            def __enter__(self):
                strategy.__enter__()
                return self

            def __exit__(self, *exc):
                return strategy.__exit__(*exc)

        return WithAutoload()


version = {}
exec((Path(__file__).parent / "specgrad_plugin" / "version.py").read_text(), version)

# Known-good pins on CPU-only machines (torch 2.13/2.14 do not resolve with espnet's
# setuptools cap; pyworld/pysptk need setuptools < 81).
install_requires = [
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "espnet==202511",
    "espnet_model_zoo==0.1.7",
    "numpy>=2",
    "scipy",
    "soundfile>=0.12",
    "pyyaml",
    "kaldiio",
    "matplotlib",  # validation spectrogram PNGs
    "tensorboard",  # ESPnet's trainer logs to it by default
    "tqdm",
    "setuptools<81",
]
# Objective scores (specgrad_plugin.scoring). DistillMOS, the no-reference MOS, is
# optional: pip install --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0
eval_requires = [
    "pesq==0.0.4",
    "pystoi==0.4.1",
    "auraloss==0.4.0",
    "pysptk==1.0.1",
    "pyworld==0.3.5",
    "fastdtw==0.3.4",
]
# ONNX export (python -m specgrad_plugin.bin.export) and inference without torch
# (specgrad_plugin.onnx_vocoder): pip install 'specgrad_plugin[onnx]'. The tests need them too.
onnx_requires = ["onnx==1.23.2", "onnxruntime==1.32.0"]
# wheel: tests/test_packaging.py builds the wheel offline with the installed setuptools, which
# before 70.1 takes bdist_wheel from this package (0.46 dropped it).
test_requires = eval_requires + onnx_requires + ["pytest>=7", "pytest-xdist>=3", "ruff", "wheel<0.46"]

setup(
    name="specgrad_plugin",
    version=version["__version__"],
    description="SpecGrad diffusion vocoder with spectrally shaped noise, as an ESPnet plugin",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["specgrad_plugin", "specgrad_plugin.*"]),
    # the model presets, and the models shipped with the package (specgrad_plugin/pretrained/<name>/:
    # weights, config, model card and the scores it cites)
    package_data={"specgrad_plugin": ["presets/*.yaml", "pretrained/*/model.pth", "pretrained/*/config.yaml",
                                      "pretrained/*/*.md", "pretrained/*/*.json", "pretrained/*/*.png"]},
    install_requires=install_requires,
    extras_require={"eval": eval_requires, "onnx": onnx_requires, "test": test_requires},
    cmdclass={"build_py": BuildPyWithAutoload, "editable_wheel": EditableWheelWithAutoload},
)
