#!/usr/bin/env python3
"""make_shared_db.py OUT: the project's shared LJSpeech clips as one LJSpeech-format folder.

ljspeech_mini (LJ001-0001 .. 0032) followed by ljspeech_eval (LJ050-0029 .. 0033), from
$SPECGRAD_DATA or ../shared/data. Sorted by id the eval clips come last, so
``data_prep.py --num_dev 3 --num_eval 5`` gives tr_no_dev = LJ001-0001 .. 0029,
dev = LJ001-0030 .. 0032 and eval1 = exactly ljspeech_eval: the split of
bench/prior_study.py, and eval1 is never trained or tuned on.
"""

import shutil
import sys
from pathlib import Path

from specgrad_plugin.data import corpus_wavs, shared_data_dir


def main(out: str) -> int:
    out_dir = Path(out)
    if (out_dir / "metadata.csv").is_file():
        print(f"{out_dir}: shared folder exists")
        return 0
    shared = shared_data_dir()
    if shared is None:
        print("error: no shared LJSpeech clips: set SPECGRAD_DATA to the folder holding ljspeech_mini/ "
              "and ljspeech_eval/", file=sys.stderr)
        return 1
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "wavs").mkdir(parents=True)
    lines = []
    for name in ("ljspeech_mini", "ljspeech_eval"):
        src = shared / name
        meta = {line.split("|", 1)[0]: line for line in (src / "metadata.csv").read_text(encoding="utf-8").splitlines()}
        for wav in corpus_wavs(src):
            shutil.copy(wav, tmp / "wavs" / wav.name)
            lines.append(meta[wav.stem] + "\n")
    (tmp / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    tmp.rename(out_dir)
    print(f"{out_dir}: {len(lines)} clips from {shared}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
