"""Small fixtures for tests and the recipe's smoke run: a random-weight ESPnet TTS exp,
Kaldi-style data dirs. Nothing here downloads anything."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Tuple

import numpy as np
import torch
import yaml

from specgrad_plugin.data import write_wav

TINY_TACOTRON2 = dict(
    embed_dim=16, elayers=1, eunits=16, econv_layers=1, econv_chans=16, econv_filts=3, atype="location",
    adim=16, aconv_chans=4, aconv_filts=5, dlayers=1, dunits=16, prenet_layers=1, prenet_units=16,
    postnet_layers=1, postnet_chans=16, postnet_filts=3, reduction_factor=1,
)


def make_tts_exp(out_dir: Path, feats: Dict[str, int], seed: int = 0) -> Tuple[Path, Path]:
    """A Tacotron2 TTS model with random weights built by ESPnet's TTSTask; returns (config, model).

    feats: LogMelFbank settings (fs, n_fft, hop_length, n_mels, fmin, fmax, win_length).
    """
    from espnet2.tasks.tts import TTSTask

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = out_dir / "tokens.txt"
    symbols = ["<blank>", "<unk>", *"abcdefghijklmnopqrstuvwxyz", "<space>", ".", "<sos/eos>"]
    tokens.write_text("\n".join(symbols) + "\n")
    feats_conf = yaml.safe_dump(dict(feats), default_flow_style=True).strip()  # None -> null, as ESPnet reads it
    args = TTSTask.get_parser().parse_args([
        "--output_dir", str(out_dir), "--token_list", str(tokens), "--token_type", "char",
        "--feats_extract", "fbank", "--feats_extract_conf", feats_conf,
        "--normalize", "none", "--tts", "tacotron2", "--tts_conf", str(TINY_TACOTRON2),
    ])
    torch.manual_seed(seed)
    model = TTSTask.build_model(args)
    config, weights = out_dir / "config.yaml", out_dir / "model.pth"
    with open(config, "w", encoding="utf-8") as f:
        yaml.safe_dump(yaml.safe_load(yaml.safe_dump(vars(args), default_flow_style=False)), f)
    torch.save(model.state_dict(), weights)
    return config, weights


def make_data_dir(out_dir: Path, clips: Iterable[Tuple[str, np.ndarray]], fs: int) -> Path:
    """wav/ + a sorted Kaldi wav.scp for (utt_id, samples) pairs."""
    out_dir = Path(out_dir)
    lines = []
    for uid, wav in clips:
        path = out_dir / "wav" / f"{uid}.wav"
        write_wav(path, wav, fs)
        lines.append(f"{uid} {path.resolve()}")
    (out_dir / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    return out_dir / "wav.scp"
