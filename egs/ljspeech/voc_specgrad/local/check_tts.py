#!/usr/bin/env python3
"""check_tts.py TTS_CONFIG VOCODER_CONFIG: exit 1, naming both values, if the TTS model's mel
settings (ESPnet config.yaml, feats_extract_conf) differ from the vocoder's."""

import sys

import yaml
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import SpecGradConfig
from specgrad_plugin.espnet.tts_vocoder import check_tts_features


def main(tts_config: str, vocoder_config: str) -> int:
    with open(tts_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if conf.get("feats_extract") != "fbank":
        print(f"error: {tts_config}: feats_extract={conf.get('feats_extract')!r}, expected fbank (log-mel)",
              file=sys.stderr)
        return 1
    params = LogMelFbank(**(conf.get("feats_extract_conf") or {})).get_parameters()
    try:
        check_tts_features(params, SpecGradConfig.from_yaml(vocoder_config).features, source=tts_config)
    except SpecGradInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{tts_config}: mel settings match the vocoder ({params})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
