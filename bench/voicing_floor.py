"""How low V/UV error and log-F0 RMSE can go: the metrics on the reference itself, changed
in ways a mel vocoder cannot see or a listener cannot hear, beside a model's and Griffin-Lim's
scores split into their parts.

    python bench/voicing_floor.py --split eval --name ljspeech-v2 --out docs/voicing_floor/floor_eval_v2.json
    python bench/voicing_floor.py --split dev --checkpoint exp/.../checkpoint.pt --out /tmp/floor_dev.json
    python bench/voicing_floor.py --unseen exp/unseen_voices/data --name ljspeech-v3 --out /tmp/floor_unseen.json

The scores are specgrad_plugin.scoring's (WORLD DIO 40-800 Hz with StoneMask, frames aligned
by DTW on the mel-cepstra, ESPnet's definitions); ``--f0 harvest`` reads every F0 track with
WORLD Harvest instead (scoring.harvest_f0), a second reading of the same outputs. The
reference's changes:
- ``highpass``: zero-phase 4th-order Butterworth high-pass at HIGHPASS_HZ, below the mel's
  lowest band (fmin 80 Hz): what no mel vocoder can know about the recording;
- ``noise``: white noise at NOISE_DBFS, under the recording's own noise floor;
- the phase alone: no mel carries the recording's phase, so even a vocoder that got every
  magnitude right would choose its own. ``rotated``: every component's phase turned by
  ROTATION_DEG (180 would be the sign, which DIO does not see); ``allpass``: a random all-pass
  filter whose phase response is drawn uniformly at knots ALLPASS_KNOT_HZ apart and
  interpolated between them (group delay under 1 / ALLPASS_KNOT_HZ), ALLPASS_DRAWS draws per
  clip. Both keep the clip's magnitude spectrum exactly; the mel, frame by frame, moves a
  little (the column mel_l1). ``delayed``: the recording DELAY_MS later on the same frame
  grid, the waveform itself kept, since where the voice's pulses fall against the frames is
  not in the mel either.
Each row also splits the error into its parts: V->UV and UV->V frames; gross pitch errors
(frames voiced in both whose F0 differs by more than GROSS_RATIO, Chu and Alwan's GPE) and
the log-F0 RMSE without them; the frames where DIO calls the reference voiced below the
mel's fmin (mains hum in the pauses of a recording, not the speaker's voice), and the V/UV
error on the other frames. ``lost_at_edges`` and ``lost_inside`` are the shares of the
reference's voiced frames rendered unvoiced, among those within EDGE_FRAMES of its nearest
voicing change (onsets and offsets) and among those INSIDE_FRAMES or more inside a voiced
stretch (each clip's share, averaged over clips like every column). ``vuv_error_near_changes``
is the part of the V/UV error, in both directions, on frames within NEAR_FRAMES of the
reference's nearest voicing change (a share of all frames, so it is at most ``vuv_error``);
the rest of the error lies farther inside voiced or unvoiced stretches (a voiced frame 5 from
a change counts in this column and in ``lost_inside``). The JSON's ``errors_by_distance``
gives, per system, the frames and errors by side and distance from the nearest change,
pooled over clips. ``frame_sync_excess_db`` is how much more of the output's energy repeats
every hop than of the reference's, in dB (scoring.frame_synchronous_share): a buzz at
multiples of fs / hop, 86 Hz at 22.05 kHz. ``mel_l1`` is scoring.mel_l1 against the
reference: how far the system's own mel is from the one a vocoder would be given.

With a model, three more columns read both F0 tracks on the mel's own frame grid (a vocoder
keeps the timing; no DTW): ``voiced_at_level_floor``, the share of the reference's frames
that are voiced and quiet enough that the prior's frame level sits at its lower clip
(prior.min_level: the noise there is louder than the speech), and the shares of the
reference's voiced frames rendered unvoiced at that floor (``lost_at_level_floor``) and
above it (``lost_above_level_floor``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import prior_study  # noqa: E402

from specgrad_plugin.scoring import (  # noqa: E402
    aligned_f0,
    f0_errors,
    frame_synchronous_share,
    griffin_lim,
    harvest_f0,
    mel_cepstra,
    mel_l1,
    scores_to_json,
    world_f0,
)

HIGHPASS_HZ = 70.0
NOISE_DBFS = -60.0
ROTATION_DEG = 90.0
ALLPASS_KNOT_HZ = 1000.0
ALLPASS_DRAWS = 4  # the row is their mean, like a model's sampling seeds
DELAY_MS = 1.0
GROSS_RATIO = 0.2  # |f_gen / f_ref - 1| above this is a gross pitch error
COLUMNS = ("vuv_error", "v_to_uv", "uv_to_v", "log_f0_rmse", "gross_pitch_error", "fine_log_f0_rmse",
           "ref_voiced_below_fmin", "vuv_error_elsewhere", "lost_at_edges", "lost_inside", "vuv_error_near_changes",
           "frame_sync_excess_db", "mel_l1",
           "voiced_at_level_floor", "lost_at_level_floor", "lost_above_level_floor")
F0_TRACKERS = {"dio": world_f0, "harvest": harvest_f0}  # dio: ESPnet's metrics; harvest: a second reading
EDGE_FRAMES, INSIDE_FRAMES = 2, 5  # a voiced frame this close to / this far from the reference's nearest voicing change
NEAR_FRAMES = 5  # a frame (voiced or not) this close to the reference's nearest voicing change


def system_row(ref: np.ndarray, wav: np.ndarray, features, fmin: float,
               at_floor: Optional[np.ndarray] = None, ref_f0: Optional[np.ndarray] = None,
               track: Callable[..., np.ndarray] = world_f0, ref_mcep: Optional[np.ndarray] = None,
               ) -> Dict[str, object]:
    """f0_parts of wav against ref, the excess of wav's frame-synchronous share over ref's (dB),
    scoring.mel_l1 with the LogMelExtractor features, given at_floor ((K,) bool: the mel frames
    whose prior level is at its clip) level_floor_parts, and errors_by_distance under
    "by_distance". track: the F0 tracker (F0_TRACKERS); ref_f0 and ref_mcep: ref's track and
    scoring.mel_cepstra, computed once per clip by the caller."""
    fs, hop = features.cfg.fs, features.cfg.hop_length
    shares = [max(frame_synchronous_share(x, hop), 1e-12) for x in (wav, ref)]  # a silent clip: no -inf
    excess = 10 * np.log10(shares[0] / shares[1])
    tracks = (ref_f0 if ref_f0 is not None else track(ref, fs, hop), track(wav, fs, hop))  # each once
    floor = level_floor_parts(*tracks, at_floor) if at_floor is not None \
        else dict.fromkeys(("voiced_at_level_floor", "lost_at_level_floor", "lost_above_level_floor"), float("nan"))
    aligned = aligned_f0(ref, wav, fs, hop, tracks, ref_mcep)[:2]
    return {**f0_parts(*aligned, fmin), "frame_sync_excess_db": float(excess), **floor,
            "mel_l1": mel_l1(ref, wav, features), "by_distance": errors_by_distance(*aligned)}


def level_floor_parts(ref_f0: np.ndarray, gen_f0: np.ndarray, at_floor: np.ndarray) -> Dict[str, float]:
    """The reference's voiced frames at the prior's level floor and how many of them, and of the
    others, the output loses: F0 tracks on one frame grid (0 = unvoiced), (K,) bool at_floor."""
    n = min(len(ref_f0), len(gen_f0), len(at_floor))
    rv, gv, floor = ref_f0[:n] > 0, gen_f0[:n] > 0, at_floor[:n]

    def lost(mask: np.ndarray) -> float:
        return float(np.mean(~gv[mask])) if mask.any() else float("nan")

    return {"voiced_at_level_floor": float(np.mean(rv & floor)), "lost_at_level_floor": lost(rv & floor),
            "lost_above_level_floor": lost(rv & ~floor)}


def frames_at_level_floor(vocoder, mel) -> np.ndarray:
    """(K,) bool: the frames of a (K, M) mel whose prior level sits at its lower clip
    (prior.min_level), read after the level matching that forward() applies first."""
    matched, _ = vocoder.match_level(mel[None].float())
    level = vocoder.prior.level(matched)[0].detach().numpy()
    return level <= vocoder.cfg.prior.min_level * (1 + 1e-6)


def frames_from_changes(voiced: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each frame's distance in frames to the last change of voicing before it and to the next
    one after it (1 for the frames on either side of a change; inf where there is none). A
    clip's ends are not changes."""
    changes = np.flatnonzero(voiced[1:] != voiced[:-1])  # a change between frames c and c + 1
    k = np.arange(len(voiced))
    i = np.searchsorted(changes, k)  # changes[i - 1] < k <= changes[i]
    padded = np.concatenate([[-np.inf], changes, [np.inf]])
    return k - padded[i], padded[i + 1] - k + 1


def frames_to_voicing_change(voiced: np.ndarray) -> np.ndarray:
    """Each frame's distance in frames to the nearest change of voicing between two frames (1 for
    the frames on either side of one; inf where there is none). A clip's ends are not changes."""
    return np.minimum(*frames_from_changes(voiced))


def errors_by_distance(ref_f0: np.ndarray, gen_f0: np.ndarray, reach: int = NEAR_FRAMES) -> Dict[str, List[int]]:
    """[frames, V/UV errors] of two aligned F0 tracks (0 = unvoiced), by where each frame lies
    against the reference's voicing changes: "voiced after onset d", "voiced before offset d",
    "unvoiced after offset d", "unvoiced before onset d" for the nearest change d <= reach
    frames away (1: the frame next to it; a tie goes to the change before), else "voiced
    farther" or "unvoiced farther". A clip's ends are not changes."""
    rv, gv = ref_f0 > 0, gen_f0 > 0
    after, before = frames_from_changes(rv)
    counts: Dict[str, List[int]] = {}
    for k in range(len(rv)):
        voicing = "voiced" if rv[k] else "unvoiced"
        if min(after[k], before[k]) > reach:
            key = f"{voicing} farther"
        elif after[k] <= before[k]:
            key = f"{voicing} after {'onset' if rv[k] else 'offset'} {int(after[k])}"
        else:
            key = f"{voicing} before {'offset' if rv[k] else 'onset'} {int(before[k])}"
        row = counts.setdefault(key, [0, 0])
        row[0] += 1
        row[1] += int(rv[k] != gv[k])
    return counts


def f0_parts(ref_f0: np.ndarray, gen_f0: np.ndarray, fmin: float) -> Dict[str, float]:
    """scoring.f0_errors of two aligned F0 tracks (0 = unvoiced), and their parts."""
    rv, gv = ref_f0 > 0, gen_f0 > 0
    distance = frames_to_voicing_change(rv)
    edges, inside = rv & (distance <= EDGE_FRAMES), rv & (distance >= INSIDE_FRAMES)
    both = rv & gv
    hum = rv & (ref_f0 < fmin)
    log_ratio = np.log(gen_f0[both] / ref_f0[both]) if both.any() else np.zeros(0)
    gross = np.abs(np.exp(log_ratio) - 1.0) > GROSS_RATIO
    fine = log_ratio[~gross]
    return {**f0_errors(ref_f0, gen_f0), "v_to_uv": float(np.mean(rv & ~gv)), "uv_to_v": float(np.mean(~rv & gv)),
            "gross_pitch_error": float(np.mean(gross)) if both.any() else float("nan"),
            "fine_log_f0_rmse": float(np.sqrt(np.mean(fine**2))) if fine.size else float("nan"),
            "ref_voiced_below_fmin": float(np.mean(hum)),
            "vuv_error_elsewhere": float(np.mean((rv != gv)[~hum])) if (~hum).any() else float("nan"),
            "lost_at_edges": float(np.mean(~gv[edges])) if edges.any() else float("nan"),
            "lost_inside": float(np.mean(~gv[inside])) if inside.any() else float("nan"),
            "vuv_error_near_changes": float(np.mean((rv != gv) & (distance <= NEAR_FRAMES)))}


def with_phase(x: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """(N,) x with each rfft bin's phase advanced by (N // 2 + 1,) phase, DC (and for an even N
    the Nyquist bin) left as they are, so that the output stays real: |X(f)| is kept exactly."""
    phase = np.array(phase, dtype=np.float64)
    phase[0] = 0.0
    if len(x) % 2 == 0:
        phase[-1] = 0.0
    return np.fft.irfft(np.fft.rfft(x) * np.exp(1j * phase), len(x))


def rotated_phase(x: np.ndarray, degrees: float) -> np.ndarray:
    """(N,) x with every component between DC and Nyquist turned by `degrees`: cos(w t) becomes
    cos(w t + theta), as Re(e^{i theta} (x + i H x)) with H the Hilbert transform, except that
    DC and Nyquist keep their values (that product would scale them by cos theta)."""
    return with_phase(x, np.full(len(x) // 2 + 1, np.deg2rad(degrees)))


def random_allpass(x: np.ndarray, fs: int, knot_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(N,) x through an all-pass whose phase is 0 at DC, drawn uniformly in [0, 2 pi) at
    knot_hz, 2 knot_hz, ... Hz and interpolated linearly between: X(f) e^{i phi(f)}, circular
    over the clip. |X(f)| is kept; the group delay -dphi/dw is under 1 / knot_hz."""
    freqs = np.fft.rfftfreq(len(x), 1.0 / fs)
    knots = np.arange(0.0, fs / 2 + knot_hz, knot_hz)
    drawn = np.concatenate([[0.0], rng.uniform(0.0, 2 * np.pi, len(knots) - 1)])
    return with_phase(x, np.interp(freqs, knots, drawn))


def delayed(x: np.ndarray, samples: int) -> np.ndarray:
    """(N,) x `samples` later, zeros in front, the same length."""
    return np.concatenate([np.zeros(samples, dtype=x.dtype), x[:len(x) - samples]])


def changed_references(ref: np.ndarray, fs: int, seed: int) -> Dict[str, List[np.ndarray]]:
    """Each change of the reference by its row's name: one or more (N,) float32 signals."""
    from scipy.signal import butter, sosfiltfilt

    highpass = sosfiltfilt(butter(4, HIGHPASS_HZ, "highpass", fs=fs, output="sos"), ref)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(ref)) * 10 ** (NOISE_DBFS / 20)
    changed = {f"reference, high-passed at {HIGHPASS_HZ:g} Hz": highpass,
               f"reference + white noise at {NOISE_DBFS:g} dBFS": ref + noise,
               f"reference, phase turned by {ROTATION_DEG:g} degrees": rotated_phase(ref, ROTATION_DEG),
               f"reference, random all-pass (knots {ALLPASS_KNOT_HZ:g} Hz apart)":
                   [random_allpass(ref, fs, ALLPASS_KNOT_HZ, rng) for _ in range(ALLPASS_DRAWS)],
               f"reference delayed by {DELAY_MS:g} ms": delayed(ref, round(DELAY_MS * fs / 1000))}
    return {name: [w.astype(np.float32) for w in (wav if isinstance(wav, list) else [wav])]
            for name, wav in changed.items()}


def mean_rows(rows: Dict[str, List[Dict[str, float]]]) -> Dict[str, Dict[str, float]]:
    return {name: {k: float(np.nanmean([r[k] for r in values])) for k in COLUMNS} for name, values in rows.items()}


def pooled_by_distance(rows: Dict[str, List[dict]]) -> Dict[str, Dict[str, dict]]:
    """Each system's errors_by_distance summed over its rows: frames, errors and their ratio."""
    pooled: Dict[str, Dict[str, dict]] = {}
    for name, values in rows.items():
        total: Dict[str, List[int]] = {}
        for row in values:
            for key, (frames, errors) in row["by_distance"].items():
                t = total.setdefault(key, [0, 0])
                t[0] += frames
                t[1] += errors
        pooled[name] = {key: {"frames": f, "errors": e, "rate": e / f} for key, (f, e) in sorted(total.items())}
    return pooled


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("train", "dev", "eval"), default="dev")
    p.add_argument("--unseen", type=Path, default=None,
                   help="instead of --split: the real voices of a set built by bench/unseen_voices.py build")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--name", help="a shipped model to score beside the floor (ljspeech, ljspeech-v1, ...)")
    which.add_argument("--checkpoint", type=Path)
    p.add_argument("--schedule", default="WG-6")
    p.add_argument("--seeds", default="1234,2234", help="sampling seeds; clip i uses seed + i")
    p.add_argument("--f0", choices=sorted(F0_TRACKERS), default="dio",
                   help="the F0 tracker of every column: dio (ESPnet's metrics) or harvest")
    p.add_argument("--out", type=Path, required=True, help="JSON; the Markdown table goes beside it (.md)")
    args = p.parse_args(argv)
    track = F0_TRACKERS[args.f0]
    from specgrad_plugin.config import FeatureConfig
    from specgrad_plugin.features import LogMelExtractor
    from specgrad_plugin.vocoder import SpecGradVocoder

    if args.unseen:
        clips = json.loads((args.unseen / "clips.json").read_text())["clips"]
        paths = [Path(c["path"]) for c in clips if c["group"] == "real voices"]
    else:
        train, dev, evaluation = prior_study.split_clips(3)
        paths = {"train": train, "dev": dev, "eval": evaluation}[args.split]
    refs = prior_study.load_refs(paths, 0)
    vocoder = None
    if args.name:
        vocoder = SpecGradVocoder.from_pretrained(args.name)
    elif args.checkpoint:
        vocoder = SpecGradVocoder.from_checkpoint(args.checkpoint)
    features = vocoder.features if vocoder is not None else LogMelExtractor(FeatureConfig())
    fs, hop, fmin = features.cfg.fs, features.cfg.hop_length, features.cfg.fmin
    rows: Dict[str, List[Dict[str, float]]] = {}
    for i, ref_t in enumerate(refs):
        ref = ref_t.numpy()
        mel = features(ref_t[None])[0]
        systems = changed_references(ref, fs, seed=i)
        systems["Griffin-Lim (32 it.)"] = [griffin_lim(mel, features.cfg)]
        at_floor, ref_f0, ref_mcep = None, track(ref, fs, hop), mel_cepstra(ref, fs, hop=hop)
        if vocoder is not None:  # one row, its mean over clips and sampling seeds
            at_floor = frames_at_level_floor(vocoder, mel)
            label = f"{args.name or '/'.join(args.checkpoint.parts[-3:])} {args.schedule}"
            for seed in (int(s) for s in args.seeds.split(",")):
                wav = vocoder(mel, schedule=args.schedule, seed=seed + i, chunk_frames=0).numpy()
                rows.setdefault(label, []).append(system_row(ref, wav, features, fmin, at_floor, ref_f0, track,
                                                                 ref_mcep))
        for name, wavs in systems.items():
            rows.setdefault(name, []).extend(system_row(ref, wav, features, fmin, at_floor, ref_f0, track,
                                                       ref_mcep) for wav in wavs)
    result = {"split": "unseen-voice set, real voices" if args.unseen else args.split,
              "clips": [p.stem for p in paths], "seeds": args.seeds, "f0": args.f0, "rows": mean_rows(rows),
              # the V/UV error rate by the distance to the reference's nearest voicing change
              "errors_by_distance": pooled_by_distance(rows),
              # each system's rows in clip order (the model's: each clip's sampling seeds in turn;
              # the all-pass's: each clip's draws in turn)
              "clip_rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(scores_to_json(result))
    lines = ["| system | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + " |"
              for name, row in result["rows"].items()]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
