#!/usr/bin/env bash
# make_hf_repo.sh PACKED.zip OUT_DIR USER/NAME [RESULTS.md]: the folder a Hugging Face model
# repo holds (ESPnet layout: meta.yaml at the root, the packed exp files at their paths)
# plus a model card with YAML front matter. Builds files only: no network.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 PACKED.zip OUT_DIR USER/NAME [RESULTS.md]" 1>&2; exit 1; }
zip=$1; out=$2; repo=$3; results=${4:-}
[ -f "${zip}" ] || { echo "$0: ${zip} not found (run stage 7 first)" 1>&2; exit 1; }
rm -rf "${out}"; mkdir -p "${out}"
python3 -m specgrad_plugin.packing "${zip}" "${out}"  # refuses members that escape ${out}
{
    cat <<CARD
---
tags:
- espnet
- audio
- text-to-speech
- vocoder
- specgrad
language: en
datasets:
- ljspeech
license: cc-by-4.0
---

# SpecGrad vocoder trained on LJSpeech (${repo})

A SpecGrad diffusion vocoder (Koizumi et al., Interspeech 2022) trained with
[specgrad_plugin](https://github.com/) and ESPnet on LJSpeech (22.05 kHz, 80-band
log10 mel, hop 256, 80-7600 Hz): the features of ESPnet's LJSpeech TTS recipes.

## Use with ESPnet

\`\`\`python
import specgrad_plugin  # registers the vocoder (automatic after pip install)
from espnet_model_zoo.downloader import ModelDownloader
from espnet2.bin.tts_inference import Text2Speech

d = ModelDownloader()
vocoder = d.download_and_unpack("${repo}")  # vocoder_file, vocoder_config
tts = Text2Speech(**d.download_and_unpack("<an LJSpeech TTS model>"), **vocoder)
wav = tts("Hello world.")["wav"]
\`\`\`

## Results

CARD
    if [ -n "${results}" ] && [ -f "${results}" ]; then cat "${results}"; else echo "(no RESULTS.md)"; fi
} > "${out}/README.md"
echo "$0: ${out} ready (meta.yaml, exp files, README.md)"
