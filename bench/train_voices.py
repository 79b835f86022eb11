"""Training voices: speakers other than LJSpeech's, from a Debian package, to train on.

    python bench/train_voices.py build --out exp/train_voices/data
    OMP_NUM_THREADS=1 python bench/prior_study.py train --init ljspeech-v3 \
        --variant finetune_sampler_low_pitch_down --extra_clips exp/train_voices/data/wav.scp ...

``build`` downloads ktuberling-data (``apt-get download``: a benchmark step that needs the
network, never a test) and writes 22.05 kHz mono float clips of at most 8 s, up to
CLIPS_PER_VOICE per voice, each brought to the mean active level of the LJSpeech dev clips:
one speaker per language folder, the languages that bench/unseen_voices.py does not score
(its dev set takes Russian, Greek, Catalan, Ukrainian and Serbian from the same package).
Only sources at 22.05 kHz or more are used, so every clip keeps the band a 22.05 kHz mel
shows. A file whose bytes equal any file in the dev set's languages (any of their folders,
sr@latin included) is refused; that the speakers of two folders differ is assumed, not
checked. It writes DIR/wav.scp, DIR/clips.json (package version, licence, files and their
hashes, source rates, median F0, gain) and DIR/README.md. No third-party audio is kept in the
repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402
import unseen_voices  # noqa: E402
from unseen_audio import FS, join_words, median_f0, read_source, trim_silence  # noqa: E402

from specgrad_plugin.data import resample_audio  # noqa: E402

PACKAGE = "ktuberling-data"
CLIPS_PER_VOICE = 3
MIN_SOURCE_FS = 22050
# language folder -> speaker sex as judged from the median F0 (the package does not say)
VOICES: Dict[str, str] = {"da": "male", "de": "male", "en": "female", "fr": "male", "ga": "male",
                          "lt": "male", "ro": "female", "sl": "male", "wa": "male"}


def language(folder_name: str) -> str:
    """A ktuberling folder's language: sr@latin, sr@ijekavian ... are sr (one speaker)."""
    return folder_name.split("@")[0]


def dev_set_languages() -> Set[str]:
    """The ktuberling languages bench/unseen_voices.py scores (never trained on)."""
    return {language(Path(p).parts[-2]) for c in unseen_voices.CLIPS if c.package == PACKAGE for p in c.pattern}


def refused_hashes(sounds: Path, dev_languages: Set[str]) -> Set[str]:
    """The short hashes of every file in every folder of sounds/ whose language is a dev one."""
    return {unseen_voices.short_hash(f) for d in sounds.iterdir() if d.is_dir() and language(d.name) in dev_languages
            for f in d.iterdir() if f.is_file()}


def voice_clips(folder: Path, refused: Set[str], target_rms: float, rng: np.random.Generator,
                trim_db: Optional[float] = None) -> List[Tuple[np.ndarray, List[Path], float]]:
    """Up to CLIPS_PER_VOICE (clip, its files, its gain): 22.05 kHz, at target_rms, dithered.
    With trim_db, each word loses its leading and trailing frames more than trim_db below its
    loudest frame before the words are joined (the package's files carry long silences)."""
    files = sorted(folder.glob("*.ogg")) + sorted(folder.glob("*.wav"))
    same = [f.name for f in files if unseen_voices.short_hash(f) in refused]
    if same:
        raise SystemExit(f"{folder}: {same[:3]} equal files of the unseen-voice dev set; expected none")
    used = [f for f in files if sf.info(str(f)).samplerate >= MIN_SOURCE_FS]
    if not used:
        raise SystemExit(f"{folder}: no .ogg or .wav source at >= {MIN_SOURCE_FS} Hz; expected at least one")
    pieces = [resample_audio(x, fs, FS).astype(np.float64) for x, fs in (read_source(f, 0) for f in used)]
    if trim_db is not None:
        pieces = [trim_silence(x, FS, trim_db) for x in pieces]
    clips = []
    while pieces and len(clips) < CLIPS_PER_VOICE:
        wav, count = join_words(pieces, FS, unseen_voices.MAX_SECONDS)
        wav, gain = unseen_voices.level_and_dither(wav, target_rms, rng)
        clips.append((wav, used[:count], gain))
        pieces, used = pieces[count:], used[count:]
    return clips


def build(args) -> int:
    out: Path = args.out
    dev_languages = dev_set_languages()
    clash = sorted({language(v) for v in VOICES} & dev_languages)
    if clash:
        raise SystemExit(f"VOICES {clash} are in the unseen-voice dev set; expected disjoint languages")
    rng = np.random.default_rng(0)
    target, _, _ = unseen_voices.lj_dev_level()
    entries: List[Dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="train_voices_") as tmp:
        versions = unseen_voices.fetch_packages([PACKAGE], Path(tmp))
        sounds = Path(tmp) / "root" / unseen_voices.KT
        refused = refused_hashes(sounds, dev_languages)
        for lang, sex in VOICES.items():
            if not (sounds / lang).is_dir():
                raise SystemExit(f"{PACKAGE} {versions[PACKAGE]}: no folder {lang}/ in {unseen_voices.KT}; "
                                 f"expected one per VOICES entry")
            for i, (wav, files, gain) in enumerate(voice_clips(sounds / lang, refused, target, rng, args.trim_db)):
                utt = f"ktub_{lang}_{i}"
                entries.append({
                    "utt": utt, "path": unseen_voices.write_clip(out, utt, wav), "package": PACKAGE,
                    "package_version": versions[PACKAGE], "licence": unseen_voices.SOURCES[PACKAGE].licence,
                    "language_folder": lang, "sex": sex, "files": [str(f.relative_to(Path(tmp) / "root"))
                                                                   for f in files],
                    "sha256": [unseen_voices.short_hash(f) for f in files],
                    "original_fs": sorted({sf.info(str(f)).samplerate for f in files}),
                    "median_f0_hz": round(median_f0(wav, FS), 1), "gain_db": round(20 * np.log10(gain), 2),
                    "seconds": round(len(wav) / FS, 2)})
    (out / "wav.scp").write_text("".join(f"{e['utt']} {e['path']}\n" for e in entries))
    (out / "clips.json").write_text(json.dumps({"target_active_rms": target, "trim_db": args.trim_db,
                                                "clips": entries}, indent=1))
    rows = ["| clip | language folder | speaker | median F0 | seconds | files |", "|---|---|---|---|---|---|"]
    rows += [f"| {e['utt']} | {e['language_folder']} | {e['sex']} | {e['median_f0_hz']:.0f} Hz | {e['seconds']} | "
             f"{len(e['files'])} |" for e in entries]
    trimmed = "" if args.trim_db is None else f", each word's edge silences cut at {args.trim_db:g} dB"
    (out / "README.md").write_text(f"Training voices from {PACKAGE} {versions[PACKAGE]} "
                                   f"({unseen_voices.SOURCES[PACKAGE].licence}){trimmed}.\n\n" + "\n".join(rows) + "\n")
    print(f"{len(entries)} clips, {sum(e['seconds'] for e in entries):.0f} s, in {out}")
    return 0


def frame_means(paths: List[Path]) -> np.ndarray:
    """The mean over the 80 bands of every mel frame (the shipped features) of the clips."""
    import torch

    from specgrad_plugin.config import FeatureConfig
    from specgrad_plugin.data import read_wav
    from specgrad_plugin.features import LogMelExtractor, crop_to_hop

    extractor = LogMelExtractor(FeatureConfig())
    with torch.no_grad():
        return np.concatenate([
            extractor(crop_to_hop(torch.from_numpy(read_wav(p, FS, unseen_voices.HOP)), unseen_voices.HOP)[None])[0]
            .mean(dim=-1).numpy() for p in paths])


def level(args) -> int:
    """How many of the clips' mel frames lie below LJSpeech's training clips' 1st percentile."""
    train_paths, _, _ = prior_study.split_clips(3)
    lj = frame_means(list(train_paths))
    floor = float(np.percentile(lj, 1))
    clips = frame_means([Path(line.split(maxsplit=1)[1]) for line in
                         (args.data / "wav.scp").read_text().splitlines() if line.strip()])
    result = {"data": str(args.data), "lj_train_clips": len(train_paths), "lj_1st_percentile": floor,
              "lj_median": float(np.median(lj)), "frames": int(len(clips)),
              "share_below": float((clips < floor).mean()), "median": float(np.median(clips))}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download the package and write the clips (needs the network)")
    b.add_argument("--out", type=Path, default=Path("exp/train_voices/data"))
    b.add_argument("--trim_db", type=float, default=None,
                   help="cut each word's leading and trailing frames this many dB below its loudest "
                        "(default: keep the package's silences)")
    lv = sub.add_parser("level", help="the share of the clips' mel frames below LJSpeech's 1st percentile")
    lv.add_argument("--data", type=Path, required=True, help="the folder 'build' wrote")
    lv.add_argument("--out", type=Path, default=None, help="also write the numbers here (.json)")
    args = p.parse_args(argv)
    return build(args) if args.command == "build" else level(args)


if __name__ == "__main__":
    sys.exit(main())
