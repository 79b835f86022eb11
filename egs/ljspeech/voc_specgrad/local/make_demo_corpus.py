#!/usr/bin/env python3
"""make_demo_corpus.py SHARED OUT: the demo corpus shipped in demo/ (how it was made).

From the shared LJSpeech sample (SHARED holds ljspeech_mini/ and ljspeech_eval/), the
shortest clips as FLAC in LJSpeech's layout (wavs/<id>.flac, metadata.csv):
- the 8 shortest of LJ001-0001 .. 0029 to fine-tune on;
- the 2 shortest of LJ001-0030 .. 0032 as dev (no shipped model trained on them);
- the 2 shortest of ljspeech_eval as eval1 (never trained or tuned on).
Sorted by id they come in that order, so ``data_prep.py --num_dev 2 --num_eval 2`` splits
them so. run.sh --demo true expands them to WAV with make_demo_db.py.
"""

import sys
from pathlib import Path

import soundfile as sf

from specgrad_plugin.data import corpus_wavs

TRAIN, DEV, EVAL = 8, 2, 2
FIRST_DEV_ID = "LJ001-0030"  # the shipped model trained on the ids before it


def shortest(wavs, n):
    return sorted(wavs, key=lambda w: (sf.info(str(w)).frames, w.stem))[:n]


def main(shared: str, out: str) -> int:
    mini, held_out = corpus_wavs(Path(shared) / "ljspeech_mini"), corpus_wavs(Path(shared) / "ljspeech_eval")
    if not mini or not held_out:
        print(f"error: {shared}: expected ljspeech_mini/ and ljspeech_eval/ with wavs/*.wav", file=sys.stderr)
        return 1
    picked = (shortest([w for w in mini if w.stem < FIRST_DEV_ID], TRAIN)
              + shortest([w for w in mini if w.stem >= FIRST_DEV_ID], DEV) + shortest(held_out, EVAL))
    picked = sorted(picked, key=lambda w: w.stem)
    meta = {}
    for src in (Path(shared) / "ljspeech_mini", Path(shared) / "ljspeech_eval"):
        for line in (src / "metadata.csv").read_text(encoding="utf-8").splitlines():
            meta[line.split("|", 1)[0]] = line
    (Path(out) / "wavs").mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    for wav in picked:
        audio, fs = sf.read(str(wav), dtype="int16")
        sf.write(str(Path(out) / "wavs" / f"{wav.stem}.flac"), audio, fs, format="FLAC", subtype="PCM_16")
        seconds += len(audio) / fs
    (Path(out) / "metadata.csv").write_text("".join(meta[w.stem] + "\n" for w in picked), encoding="utf-8")
    print(f"{out}: {len(picked)} clips, {seconds:.1f} s: {' '.join(w.stem for w in picked)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
