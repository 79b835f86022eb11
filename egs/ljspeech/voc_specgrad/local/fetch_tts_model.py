#!/usr/bin/env python3
"""fetch_tts_model.py TAG OUT_DIR: download and unpack an ESPnet model-zoo TTS model (network)
and print the shell assignments stage 5 reads: tts_config=...; tts_model_file=..."""

import shlex
import sys

from espnet_model_zoo.downloader import ModelDownloader


def main(tag: str, out_dir: str) -> int:
    files = ModelDownloader(out_dir).download_and_unpack(tag)
    print(f"tts_config={shlex.quote(files['train_config'])}; tts_model_file={shlex.quote(files['model_file'])}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
