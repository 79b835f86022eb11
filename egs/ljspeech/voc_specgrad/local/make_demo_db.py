#!/usr/bin/env python3
"""make_demo_db.py OUT [N]: a small LJSpeech-format folder for ./run.sh --demo true.

With the shared LJSpeech sample ($SPECGRAD_DATA, or ../shared/data beside the
repository): N - 4 clips of ljspeech_mini to train on, then its last two clips
(LJ001-0031, 0032: dev, never trained on by the shipped model either) and the first two
of ljspeech_eval (LJ050-0029, 0030: eval1, never trained or tuned on), so that with
``--num_dev 2 --num_eval 2`` the demo scores clips no model here has seen. Without it,
N generated speech-like clips, so the demo runs offline on any machine.
"""

import shutil
import sys
from pathlib import Path

from specgrad_plugin.data import corpus_wavs, shared_data_dir, write_wav
from specgrad_plugin.synthetic import speech_like


def main(out: str, n: int = 12) -> int:
    out_dir = Path(out)
    if (out_dir / "metadata.csv").is_file():
        print(f"{out_dir}: demo folder exists")
        return 0
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "wavs").mkdir(parents=True)
    shared = shared_data_dir()
    if shared is not None:
        mini, held_out = corpus_wavs(shared / "ljspeech_mini"), corpus_wavs(shared / "ljspeech_eval")
        wavs = mini[: n - 4] + mini[-2:] + held_out[:2]  # sorted by id: train, dev, eval1
        meta = {}
        for src in (shared / "ljspeech_mini", shared / "ljspeech_eval"):
            for line in (src / "metadata.csv").read_text(encoding="utf-8").splitlines():
                meta[line.split("|", 1)[0]] = line
        for wav in wavs:
            shutil.copy(wav, tmp / "wavs" / wav.name)
        (tmp / "metadata.csv").write_text("".join(meta[w.stem] + "\n" for w in wavs), encoding="utf-8")
        origin = (f"{len(wavs)} LJSpeech clips from {shared}: {n - 4} to train on, dev {mini[-2].stem} "
                  f"{mini[-1].stem}, eval1 {held_out[0].stem} {held_out[1].stem}")
    else:
        lines = []
        for i in range(n):
            uid = f"LJ900-{i + 1:04d}"
            write_wav(tmp / "wavs" / f"{uid}.wav", speech_like(4.0, 22050, seed=i), 22050)
            lines.append(f"{uid}|generated clip {i + 1}.|generated clip {i + 1}.\n")
        (tmp / "metadata.csv").write_text("".join(lines), encoding="utf-8")
        origin = f"{n} generated speech-like clips (no LJSpeech sample found)"
    tmp.rename(out_dir)
    print(f"{out_dir}: {origin}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], *(int(a) for a in sys.argv[2:])))
