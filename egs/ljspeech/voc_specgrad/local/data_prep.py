#!/usr/bin/env python3
"""LJSpeech -> Kaldi data dirs tr_no_dev, dev, eval1 (the split of ESPnet and ParallelWaveGAN).

Sorted by id, the last num_dev + num_eval clips are held out: the first num_dev of
them form dev, the rest eval1. Every wav is checked first (present, readable, mono,
at --fs); on any problem the bad clips are listed by name and nothing is written,
so an earlier stage's output stays intact.
"""

import argparse
import sys
from pathlib import Path

import soundfile as sf


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db_root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder that receives tr_no_dev/ dev/ eval1/")
    p.add_argument("--num_dev", type=int, default=250)
    p.add_argument("--num_eval", type=int, default=250)
    p.add_argument("--fs", type=int, default=22050)
    args = p.parse_args()
    meta = args.db_root / "metadata.csv"
    if not meta.is_file():
        print(
            f"error: {meta} not found: --db_root must be an LJSpeech-1.1 folder (metadata.csv, wavs/)", file=sys.stderr
        )
        return 1
    rows = {}
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 3:
            print(f"error: {meta}:{n}: expected 'id|text|normalised text', got {line[:80]!r}", file=sys.stderr)
            return 1
        rows[parts[0]] = " ".join(parts[2].split())
    ids = sorted(rows)
    if len(ids) <= args.num_dev + args.num_eval:
        print(
            f"error: {meta}: {len(ids)} clips, need more than num_dev + num_eval = {args.num_dev + args.num_eval}",
            file=sys.stderr,
        )
        return 1
    problems = []
    for uid in ids:
        wav = args.db_root / "wavs" / f"{uid}.wav"
        try:
            info = sf.info(str(wav))
        except Exception as e:  # missing or unreadable: both are listed
            problems.append(f"{uid}: {wav} {'missing' if not wav.exists() else f'unreadable ({e})'}")
            continue
        if info.samplerate != args.fs or info.channels != 1:
            problems.append(
                f"{uid}: {wav} is {info.samplerate} Hz, {info.channels} channel(s); expected {args.fs} Hz mono"
            )
    if problems:
        print(f"error: {len(problems)} of {len(ids)} clips in {args.db_root} cannot be used:", file=sys.stderr)
        for line in problems[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more", file=sys.stderr)
        return 1
    held = len(ids) - args.num_dev - args.num_eval
    splits = {"tr_no_dev": ids[:held], "dev": ids[held : held + args.num_dev], "eval1": ids[held + args.num_dev :]}
    for name, subset in splits.items():
        tmp = args.out / f".{name}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        root = args.db_root.resolve()
        (tmp / "wav.scp").write_text("".join(f"{u} {root / 'wavs' / f'{u}.wav'}\n" for u in subset))
        (tmp / "text").write_text("".join(f"{u} {rows[u]}\n" for u in subset))
        (tmp / "utt2spk").write_text("".join(f"{u} LJ\n" for u in subset))
        (tmp / "spk2utt").write_text("LJ " + " ".join(subset) + "\n")
        final = args.out / name
        if final.exists():
            for f in final.iterdir():
                f.unlink()
            final.rmdir()
        tmp.rename(final)
        print(f"{final}: {len(subset)} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
