"""ESPnet's TTS inference with SpecGrad available as --vocoder_file or --vocoder_tag specgrad/<name>.

    python -m specgrad_plugin.bin.tts_inference --train_config tts/config.yaml \\
        --model_file tts/model.pth --data_path_and_name_and_type data/text,text,text \\
        --output_dir out --vocoder_file exp/train/valid.pesq.best.pth \\
        --vocoder_config exp/train/config.yaml

The same as ``python -m espnet2.bin.tts_inference`` (which also works once the
plugin is installed), with the registration made explicit.
"""

import sys

from specgrad_plugin import pretrained, runtime
from specgrad_plugin.espnet.tts_vocoder import register


def main(cmd=None) -> None:
    import espnet2.bin.tts_inference as tts_inference

    register()
    register(tts_inference)  # Text2Speech resolves --vocoder_tag specgrad/<name>
    runtime.tune_cpu_allocator()  # docs/speed.md; $SPECGRAD_MALLOC=default opts out
    from specgrad_plugin.espnet.task import USER_ERRORS

    try:
        tts_inference.main(list(sys.argv[1:] if cmd is None else cmd))
    except pretrained.UnknownModelError as e:
        print(f"error: --vocoder_tag: {e}", file=sys.stderr)
        sys.exit(2)
    except USER_ERRORS as e:  # e.g. a TTS model whose mel settings are not the vocoder's
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
