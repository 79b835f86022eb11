#!/usr/bin/env python3
"""make_demo_db.py OUT: the LJSpeech-format folder that ./run.sh --demo true runs on.

The demo corpus shipped beside the recipe (demo/: 12 LJ Speech clips as FLAC, its README
says which) expanded to 16-bit WAV under OUT, the layout data_prep.py reads. The same
clips on every machine, with or without the shared data; with ``--num_dev 2 --num_eval 2``
dev and eval1 are clips no model here was trained on.
"""

import shutil
import sys
from pathlib import Path

import soundfile as sf

DEMO = Path(__file__).resolve().parents[1] / "demo"


def main(out: str) -> int:
    out_dir = Path(out)
    meta = DEMO / "metadata.csv"
    if not meta.is_file():
        print(f"error: {meta} not found: the demo corpus ships with the recipe (git checkout demo/)", file=sys.stderr)
        return 1
    made = out_dir / "metadata.csv"
    if made.is_file() and made.read_bytes() == meta.read_bytes():
        print(f"{out_dir}: demo folder exists")
        return 0
    shutil.rmtree(out_dir, ignore_errors=True)  # another corpus, or an interrupted expansion
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "wavs").mkdir(parents=True)
    ids = [line.split("|", 1)[0] for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    for uid in ids:
        audio, fs = sf.read(str(DEMO / "wavs" / f"{uid}.flac"), dtype="int16")
        sf.write(str(tmp / "wavs" / f"{uid}.wav"), audio, fs, subtype="PCM_16")
    shutil.copy(meta, tmp / "metadata.csv")
    tmp.rename(out_dir)
    print(f"{out_dir}: {len(ids)} LJ Speech clips from {DEMO}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
