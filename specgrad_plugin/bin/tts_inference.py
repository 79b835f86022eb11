"""ESPnet's TTS inference with SpecGrad available as --vocoder_file or --vocoder_tag specgrad/<name>.

    python -m specgrad_plugin.bin.tts_inference --train_config tts/config.yaml \\
        --model_file tts/model.pth --data_path_and_name_and_type data/text,text,text \\
        --output_dir out --vocoder_file exp/train/valid.pesq.best.pth \\
        --vocoder_config exp/train/config.yaml

The same as ``python -m espnet2.bin.tts_inference`` (which also works once the
plugin is installed), with the registration made explicit.
"""

import sys

from specgrad_plugin import runtime
from specgrad_plugin.espnet.tts_vocoder import expand_vocoder_tag, register


def main(cmd=None) -> None:
    import espnet2.bin.tts_inference as tts_inference

    register()
    register(tts_inference)
    runtime.tune_cpu_allocator()  # docs/speed.md; $SPECGRAD_MALLOC=default opts out
    tts_inference.main(expand_vocoder_tag(list(sys.argv[1:] if cmd is None else cmd)))


if __name__ == "__main__":
    main()
