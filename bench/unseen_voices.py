"""Unseen-voice dev set: speech that Debian packages ship, scored beside Griffin-Lim.

    python bench/unseen_voices.py build --out exp/unseen_voices/data
    OMP_NUM_THREADS=1 python bench/unseen_voices.py score --data exp/unseen_voices/data \
        --model_tag specgrad/ljspeech --schedule WG-6 --seed 1234 --out exp/unseen_voices/ljspeech_wg6

``build`` downloads the packages named in SOURCES (``apt-get download``: it needs the
network and Debian's package lists, so it is a benchmark step, never a test), unpacks them
into a temporary folder and writes 22.05 kHz mono float clips of at most 8 s:
  - real voices: other speakers, languages, sample rates and codecs, each brought to the
    mean active level of the LJSpeech dev clips and dithered at the 16-bit level (one
    source has digital silence, a log-mel floor no recording has);
  - the same clips 20 dB quieter;
  - LJSpeech altered, labelled apart: the dev clips of ljspeech_mini (the last 3, never
    trained on) resynthesised by WORLD at F0 x1.0 and x0.6, band-limited through 16 kHz,
    and 20 dB quieter; the unaltered clips beside them as the anchor.
It writes DIR/wav.scp, DIR/clips.json (source package and version, files, licence, speaker
sex as judged from the F0, original rate, gain) and DIR/README.md. No third-party audio is
kept in the repository. Never train or tune on this set.

``score`` vocodes each clip's own mel (the model's LogMelExtractor) with the model and with
ESPnet's Griffin-Lim, scores both with ``specgrad_plugin.bin.score`` and writes per-clip and
per-group tables (OUT/scores.md) and OUT/scores.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402
from unseen_audio import FS, active_rms, join_words, level_gain, median_f0, read_source, world_resynthesis  # noqa: E402

from specgrad_plugin.bin import score as bin_score  # noqa: E402
from specgrad_plugin.data import read_wav, resample_audio  # noqa: E402
from specgrad_plugin.features import crop_to_hop  # noqa: E402
from specgrad_plugin.scoring import griffin_lim, scores_from_json, scores_to_json  # noqa: E402
from specgrad_plugin.vocoder import SpecGradVocoder  # noqa: E402

HOP = 256
MAX_SECONDS = 8.0
DITHER_LSB = 1.0 / 32768  # TPDF dither of +-1 LSB at 16 bits (RMS about -98 dBFS)
GROUPS = ("real voices", "real voices -20 dB", "LJSpeech altered", "LJSpeech dev (unaltered)")


@dataclass(frozen=True)
class Package:
    version: str  # the version the committed results were built from; others are used if it is gone
    licence: str  # as the package's debian/copyright states it for the audio files


SOURCES: Dict[str, Package] = {
    "alsa-utils": Package("1.2.8-1", "GPL-2 (debian/copyright, Files: *; the speaker-test voice prompts)"),
    "codec2-examples": Package("1.0.5-1", "LGPL-2.1 (debian/copyright, Files: raw/* wav/*)"),
    "ktuberling-data": Package("4:22.12.3-1", "GPL-2+ (debian/copyright, Files: *)"),
}


@dataclass(frozen=True)
class Clip:
    utt: str
    package: str
    pattern: Tuple[str, ...]  # files inside the package; globs are joined in sorted order up to MAX_SECONDS
    sex: str  # judged from the median F0 (clips.json has it); the packages do not say
    condition: str
    raw_fs: int = 0  # sample rate of headerless 16-bit little-endian .raw files
    segments: Tuple[Tuple[float, float], ...] = ()  # (start, end) seconds of one file to keep, joined


ALSA = "usr/share/sounds/alsa/"
C2 = "usr/share/codec2/"
KT = "usr/share/ktuberling/sounds/"
CLIPS: Tuple[Clip, ...] = (
    Clip("alsa_prompts_f", "alsa-utils",
         tuple(ALSA + f"{n}.wav" for n in ("Front_Left", "Front_Center", "Front_Right", "Side_Right",
                                           "Rear_Right", "Rear_Center", "Rear_Left", "Side_Left")),
         "female", "48 kHz studio prompts, English, words with digital silence between"),
    Clip("ktub_ru_m", "ktuberling-data", (KT + "ru/*.ogg",), "male", "44.1 kHz Ogg Vorbis, Russian words"),
    Clip("ktub_el_m", "ktuberling-data", (KT + "el/*.ogg",), "male", "44.1 kHz Ogg Vorbis, Greek words"),
    Clip("ktub_ca_m", "ktuberling-data", (KT + "ca/*.ogg",), "male", "22.05 kHz Ogg Vorbis, Catalan words"),
    Clip("ktub_uk_f", "ktuberling-data", (KT + "uk/*.ogg",), "female", "44.1 kHz Ogg Vorbis, Ukrainian words"),
    Clip("ktub_sr_f", "ktuberling-data", (KT + "sr/*.ogg",), "female or child", "22.05 kHz Ogg Vorbis, Serbian words"),
    # this file alternates a male and a female speaker; the cuts fall in pauses or unvoiced sounds
    Clip("c2_16k_m", "codec2-examples", (C2 + "raw/speech_orig_16k.wav",), "male", "16 kHz continuous speech",
         segments=((0.0, 2.30), (5.45, 7.78))),
    Clip("c2_16k_f", "codec2-examples", (C2 + "raw/speech_orig_16k.wav",), "female", "16 kHz continuous speech",
         segments=((2.76, 4.90), (7.98, 10.30))),
    Clip("c2_hts1_m", "codec2-examples", (C2 + "raw/hts1.raw",), "male", "8 kHz continuous speech", 8000),
    Clip("c2_hts2_f", "codec2-examples", (C2 + "raw/hts2.raw",), "female", "8 kHz continuous speech", 8000),
    Clip("c2_kristoff_m", "codec2-examples", (C2 + "raw/kristoff.raw",), "male", "8 kHz, low voice",
         8000),
    Clip("c2_cq_ref_m", "codec2-examples", (C2 + "raw/cq_ref.raw",), "male", "8 kHz", 8000),
    Clip("c2_vk5qi_m", "codec2-examples", (C2 + "wav/vk5qi.wav",), "male",
         "8 kHz, background noise (seen in its spectrogram)"),
)
# LJSpeech alterations: name -> (description)
LJ_VARIANTS = {"world_f0x1.0": "WORLD analysis and resynthesis, F0 unchanged (the resynthesis alone)",
               "world_f0x0.6": "WORLD resynthesis with F0 x 0.6",
               "band16k": "band-limited through 16 kHz (polyphase down and up again)",
               "m20db": "20 dB quieter"}


# ------------------------------------------------------------------------------ build
def lj_dev_level() -> Tuple[float, List[Path], List[np.ndarray]]:
    """(mean active RMS of the LJSpeech dev clips' first MAX_SECONDS, their paths, that audio):
    the level every clip of other speech is brought to."""
    _, dev_paths, _ = prior_study.split_clips(3)
    lj = [read_wav(p, FS, HOP)[: int(MAX_SECONDS * FS)].astype(np.float64) for p in dev_paths]
    return float(np.mean([active_rms(x, FS) for x in lj])), dev_paths, lj


def level_and_dither(wav: np.ndarray, target_rms: float, rng: np.random.Generator) -> Tuple[np.ndarray, float]:
    """(wav at target_rms's active level plus TPDF dither at the 16-bit level, the gain used)."""
    gain = level_gain(wav, target_rms)
    return wav * gain + DITHER_LSB * (rng.random(len(wav)) - rng.random(len(wav))), gain


def short_hash(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256 (clips.json's record of each source file)."""
    return prior_study.file_sha256(path)[:16]


def fetch_packages(names: Sequence[str], work: Path) -> Dict[str, str]:
    """apt-get download + dpkg-deb -x each package into work/root; -> {package: version used}."""
    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    versions = {}
    for name in names:
        pinned = f"{name}={SOURCES[name].version}"
        for request in (pinned, name):
            done = subprocess.run(["apt-get", "download", request], cwd=work, capture_output=True, text=True)
            if done.returncode == 0:
                break
        else:
            raise SystemExit(f"apt-get download {pinned}: failed ({done.stderr.strip()[-300:]}); "
                             "run 'apt-get update' first (a Debian machine with the network is needed)")
        deb = sorted(work.glob(f"{name}_*.deb"))[-1]
        versions[name] = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                                        text=True, check=True).stdout.strip()
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return versions


def write_clip(out: Path, utt: str, wav: np.ndarray) -> str:
    path = (out / "wav" / f"{utt}.wav").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(wav).max())
    if peak >= 1.0:
        raise SystemExit(f"{utt}: peak {peak:.3f} would clip; expected < 1 after the level change")
    sf.write(str(path), wav.astype(np.float32), FS, subtype="FLOAT")
    return str(path)


def real_clip(clip: Clip, root: Path, version: str, target_rms: float,
              rng: np.random.Generator) -> Tuple[np.ndarray, Dict[str, object]]:
    """One real-voice clip from the unpacked package under root: (22.05 kHz audio, its manifest entry)."""
    files = [f for pattern in clip.pattern for f in sorted(root.glob(pattern))]
    if not files:
        raise SystemExit(f"{clip.package} {version}: no file matches {clip.pattern}")
    sources = [read_source(f, clip.raw_fs) for f in files]
    if clip.segments:
        (x, fs), = sources
        sources = [(x[int(a * fs): int(b * fs)], fs) for a, b in clip.segments]
        files = files * len(sources)
    pieces = [resample_audio(x, fs, FS).astype(np.float64) for x, fs in sources]
    wav, count = join_words(pieces, FS, MAX_SECONDS)
    used = list(dict.fromkeys(files[:count]))
    rates = sorted({fs for _, fs in sources[:count]})
    wav, gain = level_and_dither(wav, target_rms, rng)
    meta = {"package": clip.package, "package_version": version, "licence": SOURCES[clip.package].licence,
            "sex": clip.sex, "condition": clip.condition, "original_fs": rates[0] if len(rates) == 1 else rates,
            "files": [str(f.relative_to(root)) for f in used],
            "sha256": [short_hash(f) for f in used],
            "median_f0_hz": round(median_f0(wav, FS), 1), "gain_db": round(20 * np.log10(gain), 2),
            "seconds": round(len(wav) / FS, 2)}
    if clip.segments:
        meta["segments_s"] = [list(seg) for seg in clip.segments]
    return wav, meta


def build(args) -> int:
    out: Path = args.out
    rng = np.random.default_rng(0)
    target, dev_paths, lj = lj_dev_level()
    entries: List[Dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="unseen_voices_") as tmp:
        versions = fetch_packages(sorted({c.package for c in CLIPS}), Path(tmp))
        for clip in CLIPS:
            wav, meta = real_clip(clip, Path(tmp) / "root", versions[clip.package], target, rng)
            entries.append({"utt": clip.utt, "group": GROUPS[0], "path": write_clip(out, clip.utt, wav), **meta})
            quiet = f"{clip.utt}_m20db"
            entries.append({"utt": quiet, "group": GROUPS[1], "path": write_clip(out, quiet, wav * 0.1),
                            **meta, "gain_db": meta["gain_db"] - 20.0})
    for path, x in zip(dev_paths, lj, strict=True):
        variants = {"world_f0x1.0": world_resynthesis(x, FS, 1.0), "world_f0x0.6": world_resynthesis(x, FS, 0.6),
                    "band16k": resample_audio(resample_audio(x, FS, 16000), 16000, FS)[: len(x)]}
        # WORLD's output level differs from its input's: back to the clip's own level
        variants = {name: y * level_gain(y, active_rms(x, FS)) for name, y in variants.items()}
        variants["m20db"] = x * 0.1
        common = {"package": "ljspeech_mini (dev clips, never trained on)", "files": [path.name],
                  "original_fs": FS, "sex": "female", "seconds": round(len(x) / FS, 2)}
        entries.append({"utt": path.stem, "group": GROUPS[3], "variant": "unaltered",
                        "path": write_clip(out, path.stem, x), **common})
        for name, y in variants.items():
            utt = f"{path.stem}_{name}"
            entries.append({"utt": utt, "group": GROUPS[2], "variant": name, "condition": LJ_VARIANTS[name],
                            "path": write_clip(out, utt, y), "median_f0_hz": round(median_f0(y, FS), 1), **common})
    (out / "wav.scp").write_text("".join(f"{e['utt']} {e['path']}\n" for e in entries))
    (out / "clips.json").write_text(json.dumps({"target_active_rms": target, "clips": entries}, indent=1))
    (out / "README.md").write_text(clip_list(entries))
    print(f"{len(entries)} clips in {out}")
    return 0


def clip_list(entries: List[Dict[str, object]]) -> str:
    """Markdown table of the real-voice clips: source, licence, speaker, rate, files."""
    lines = ["| clip | package (version) | licence | speaker | median F0 | original rate | seconds | "
             "condition | files |", "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        if e["group"] != GROUPS[0]:
            continue
        files, rates = e["files"], e["original_fs"]
        rate = " and ".join(f"{r}" for r in rates) if isinstance(rates, list) else f"{rates}"
        if len(files) == 1:
            shown = files[0] + "".join(f", {a}-{b} s" for a, b in e.get("segments_s", []))
        else:
            shown = f"{len(files)} files in {Path(files[0]).parent}/: " + ", ".join(Path(f).stem for f in files)
        lines.append(f"| {e['utt']} | {e['package']} ({e['package_version']}) | {e['licence']} | {e['sex']} | "
                     f"{e['median_f0_hz']:.0f} Hz | {rate} Hz | {e['seconds']} | {e['condition']} | "
                     f"{shown} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ score
SYSTEMS = ("specgrad", "griffin_lim")
METRICS = ("pesq", "stoi", "vuv_error", "log_f0_rmse", "mel_l1", "mcd", "mr_stft")
LABELS = {"pesq": "PESQ-wb", "stoi": "STOI", "vuv_error": "V/UV err", "log_f0_rmse": "log-F0 RMSE",
          "mel_l1": "mel-L1", "mcd": "MCD", "mr_stft": "MR-STFT"}


def vocode_all(vocoder: SpecGradVocoder, clips: Dict[str, str], schedule: str, seed: int,
               out: Path) -> Dict[str, List[str]]:
    """Both systems from each clip's own mel -> out/<system>/wav/<utt>.wav and out/<system>/wav.scp.
    Returns the warnings the model raised on each clip (mel far from its training mels ...)."""
    notes: Dict[str, List[str]] = {}
    scps: Dict[str, List[str]] = {s: [] for s in SYSTEMS}
    for i, (utt, path) in enumerate(clips.items()):
        ref = crop_to_hop(torch.from_numpy(read_wav(path, FS, HOP)), HOP)
        with torch.no_grad():
            mel = vocoder.features(ref[None])[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wavs = {"specgrad": vocoder(mel, schedule=schedule, seed=seed + i, chunk_frames=0).numpy()}
        wavs["griffin_lim"] = griffin_lim(mel, vocoder.cfg.features)
        notes[utt] = sorted({str(w.message) for w in caught})
        for system, wav in wavs.items():
            target = out / system / "wav" / f"{utt}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(target), wav.astype(np.float32), FS, subtype="FLOAT")
            scps[system].append(f"{utt} {target.resolve()}\n")
        print(f"[{i + 1}/{len(clips)}] {utt}" + (f" (warned: {len(notes[utt])})" if notes[utt] else ""), flush=True)
    for system, lines in scps.items():
        (out / system / "wav.scp").write_text("".join(lines))
    return notes


def group_of(entry: Dict[str, object]) -> List[str]:
    """The summary rows a clip counts in: its group, and for altered LJSpeech also its variant."""
    keys = [str(entry["group"])]
    if entry["group"] == GROUPS[2]:
        keys.append(f"{GROUPS[2]}: {entry['variant']}")
    return keys


def summarise(scores: Dict[str, Dict[str, Dict[str, float]]], entries: List[Dict[str, object]]):
    """{summary row: {system: {metric: mean}, 'clips': n}} over the clips of each group (NaN-skipping)."""
    members: Dict[str, List[str]] = {}
    for e in entries:
        for key in group_of(e):
            members.setdefault(key, []).append(str(e["utt"]))
    out = {}
    for key, utts in members.items():
        out[key] = {"clips": len(utts)}
        for system in SYSTEMS:
            out[key][system] = {m: float(np.nanmean([scores[system][u].get(m, np.nan) for u in utts]))
                                for m in METRICS if any(m in scores[system][u] for u in utts)}
    return out


def markdown(summary, scores, entries) -> str:
    metrics = [m for m in METRICS if m in scores["specgrad"][str(entries[0]["utt"])]]
    head = "| {} | " + " | ".join(LABELS[m] for m in metrics) + " |"
    rule = "|---" * (len(metrics) + 1) + "|"
    lines = ["Means per group (model / Griffin-Lim, same mels):", "", head.format("group (clips)"), rule]
    for key, row in summary.items():
        lines.append(f"| {key} ({row['clips']}) | " + " | ".join(
            f"{row['specgrad'][m]:.3f} / {row['griffin_lim'][m]:.3f}" for m in metrics) + " |")
    lines += ["", "Per clip (model / Griffin-Lim):", "", head.format("clip"), rule]
    for e in entries:
        u = str(e["utt"])
        lines.append(f"| {u} | " + " | ".join(
            f"{scores['specgrad'][u].get(m, np.nan):.2f} / {scores['griffin_lim'][u].get(m, np.nan):.2f}"
            for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def commit_of_repo() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def score(args) -> int:
    manifest = args.data / "clips.json"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: not found; expected the folder written by 'build'")
    entries = json.loads(manifest.read_text())["clips"]
    clips = bin_score.read_scp(args.data / "wav.scp")
    if args.limit:
        entries = entries[: args.limit]
    clips = {str(e["utt"]): clips[str(e["utt"])] for e in entries}
    if Path(args.model_tag).is_file():  # a checkpoint of one's own
        vocoder = SpecGradVocoder.from_checkpoint(args.model_tag)
    else:
        vocoder = SpecGradVocoder.from_pretrained(args.model_tag)
    args.out.mkdir(parents=True, exist_ok=True)
    notes = vocode_all(vocoder, clips, args.schedule, args.seed, args.out)
    scores = {}
    for system in SYSTEMS:
        folder = args.out / system
        rc = bin_score.main(["--ref", str(args.data / "wav.scp"), "--gen", str(folder / "wav.scp"),
                             "--out", str(folder / "score"), "--plot", "false"])
        if rc:
            raise SystemExit(f"scoring {folder} failed (exit {rc})")
        scores[system] = scores_from_json((folder / "score" / "scores.json").read_text())["utterances"]
    summary = summarise(scores, entries)
    result = {"model_tag": args.model_tag, "schedule": args.schedule, "seed": args.seed, "commit": commit_of_repo(),
              "griffin_lim": "ESPnet's, 32 iterations", "groups": summary,
              "clips": {str(e["utt"]): {"group": e["group"], **{s: scores[s][str(e["utt"])] for s in SYSTEMS},
                                        "warnings": notes[str(e["utt"])]} for e in entries}}
    (args.out / "scores.json").write_text(scores_to_json(result))
    text = markdown(summary, scores, entries)
    (args.out / "scores.md").write_text(text)
    print(text)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download the packages and write the clips (needs the network)")
    b.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score", help="vocode and score every clip, model beside Griffin-Lim")
    s.add_argument("--data", type=Path, required=True, help="the folder 'build' wrote")
    s.add_argument("--model_tag", default="specgrad/ljspeech", help="a shipped model's name or a checkpoint path")
    s.add_argument("--schedule", default="WG-6")
    s.add_argument("--seed", type=int, default=1234, help="clip i is sampled with seed + i")
    s.add_argument("--limit", type=int, default=0, help="only the first N clips (a quick look)")
    s.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    return build(args) if args.command == "build" else score(args)


if __name__ == "__main__":
    sys.exit(main())
