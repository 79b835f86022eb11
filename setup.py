"""specgrad_plugin: SpecGrad (Koizumi et al., Interspeech 2022) as an ESPnet vocoder plugin."""

from pathlib import Path

from setuptools import find_packages, setup

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
    "setuptools<81",
]
eval_requires = [
    "pesq==0.0.4",
    "pystoi==0.4.1",
    "auraloss==0.4.0",
]
test_requires = eval_requires + ["pytest>=7", "ruff"]

setup(
    name="specgrad_plugin",
    version=version["__version__"],
    description="SpecGrad diffusion vocoder with spectrally shaped noise, as an ESPnet plugin",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["specgrad_plugin", "specgrad_plugin.*"]),
    install_requires=install_requires,
    extras_require={"eval": eval_requires, "test": test_requires},
)
