"""ESPnet's TTS inference with SpecGrad available as --vocoder_file.

    python -m specgrad_plugin.bin.tts_inference --train_config tts/config.yaml \\
        --model_file tts/model.pth --data_path_and_name_and_type data/text,text,text \\
        --output_dir out --vocoder_file exp/train/valid.mel_l1.best.pth \\
        --vocoder_config exp/train/config.yaml

The same as ``python -m espnet2.bin.tts_inference`` (which also works once the
plugin is installed), with the registration made explicit.
"""

from specgrad_plugin.espnet.tts_vocoder import register


def main(cmd=None) -> None:
    register()
    from espnet2.bin.tts_inference import main as espnet_main

    espnet_main(cmd)


if __name__ == "__main__":
    main()
