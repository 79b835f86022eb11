#!/usr/bin/env bash
# make_hf_repo.sh PACKED.zip OUT_DIR USER/NAME TRAIN_WAV_SCP CORPUS [RESULTS.md [DATASETS]]: the
# folder a Hugging Face model repo holds (ESPnet layout: meta.yaml at the root, the packed
# exp files at their paths) plus a model card with YAML front matter: the package's licence,
# the training data (utterances and hours of TRAIN_WAV_SCP, described as CORPUS) and, when
# given, DATASETS (comma-separated Hugging Face dataset ids). Builds files only: no network.
set -euo pipefail
usage="usage: $0 PACKED.zip OUT_DIR USER/NAME TRAIN_WAV_SCP CORPUS [RESULTS.md [DATASETS]]"
[ $# -ge 5 ] || { echo "${usage}" 1>&2; exit 1; }
zip=$1; out=$2; repo=$3; train_scp=$4; corpus=$5; results=${6:-}; datasets=${7:-}
[ -f "${train_scp}" ] || { echo "$0: ${train_scp} not found (run stage 0 first)" 1>&2; exit 1; }
[ -f "${zip}" ] || { echo "$0: ${zip} not found (run stage 7 first)" 1>&2; exit 1; }
rm -rf "${out}"; mkdir -p "${out}"
python3 -m specgrad_plugin.packing "${zip}" "${out}"  # refuses members that escape ${out}
version=$(python3 -c 'import specgrad_plugin; print(specgrad_plugin.__version__)')
hours=$(python3 -c '
import sys, soundfile as sf
lines = [line.split(maxsplit=1) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
print(f"{len(lines)} utterances, {sum(sf.info(p.strip()).duration for _, p in lines) / 3600:.2f} h")' "${train_scp}")
{
    echo "---"
    printf 'tags:\n- espnet\n- audio\n- text-to-speech\n- vocoder\n- specgrad\nlanguage: en\n'
    if [ -n "${datasets}" ]; then echo "datasets:"; tr ',' '\n' <<< "${datasets}" | sed 's/^ */- /'; fi
    echo "license: apache-2.0"
    echo "---"
    cat <<CARD

# SpecGrad vocoder ${repo}

A SpecGrad diffusion vocoder (Koizumi et al., Interspeech 2022) trained with the
specgrad_plugin package (version ${version}) and ESPnet, on 22.05 kHz, 80-band log10
mels, hop 256, 80-7600 Hz: the features of ESPnet's LJSpeech TTS recipes.

- Training data: ${hours} of ${corpus}.
- Licence: Apache-2.0, the package's (the training data's own terms apply to the data).

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
