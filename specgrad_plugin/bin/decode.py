"""Vocode a set of utterances, in the style of espnet2.bin.tts_inference.

    python -m specgrad_plugin.bin.decode --train_config exp/train/config.yaml \\
        --model_file exp/train/valid.pesq.best.pth \\
        --data_path_and_name_and_type dump/raw/dev/wav.scp,speech,sound \\
        --output_dir exp/decode_dev --schedule WG-6
    python -m specgrad_plugin.bin.decode --model_tag specgrad/ljspeech ...   # the shipped model

Inputs: ``wav.scp`` of type ``sound`` (analysis-synthesis: the mel is computed here),
or a feature list of denormalised log10 mels, type ``npy`` or ``kaldi_ark`` (e.g. an
ESPnet TTS decode's ``denorm/feats.scp``). Writes ``wav/<utt>.wav`` and ``wav.scp``
(each wav written to a temporary name, then renamed); finished wavs are skipped on a
rerun with the same settings (``decode_settings.json``: the weights' digest, the config, the
schedule, the seed and the options that change the audio), and a rerun with other settings is
refused, not mixed with them, unless --overwrite. A bad utterance is reported on one line
and listed in ``failed.txt``; the others still finish, and the exit status is 1.

--batch_size N vocodes N utterances together, each as it would be alone (specgrad_plugin.batched),
grouped by length (within runs of 8 N utterances) so that little of a batch is padding.
--streaming feeds each mel to a StreamingVocoder --stream_chunk_frames at a time (same audio as
without it, but for a mel far from the training level, whose level a stream reads block by
block: specgrad_plugin.streaming) and reports the look-ahead, the time to the first audio and
the RTF per chunk.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from espnet2.utils.types import str2bool
from tqdm import tqdm

from specgrad_plugin import runtime
from specgrad_plugin.batched import vocode_batch
from specgrad_plugin.bin import one_line_write_errors
from specgrad_plugin.checkpoints import CheckpointError, change_summary, saved_identity
from specgrad_plugin.checks import InputMelWarning, SpecGradInputError, check_one_mel, check_seed
from specgrad_plugin.config import ConfigError
from specgrad_plugin.data import read_scp, read_wav, write_wav
from specgrad_plugin.diffusion import inference_betas
from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.vocoder import SpecGradVocoder


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", type=Path, default=None, help="config.yaml of the run (or a preset)")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model_file", type=Path, help="checkpoint (*.pth of ESPnet, or checkpoint.pt)")
    model.add_argument("--model_tag", help="a model shipped with the package: specgrad/ljspeech (the latest) or a "
                       "version, specgrad/ljspeech-v2; python -m specgrad_plugin.pretrained lists them")
    p.add_argument("--data_path_and_name_and_type", required=True,
                   help="PATH,NAME,TYPE with TYPE sound (wav.scp), npy or kaldi_ark (feats.scp)")
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument("--schedule", default=None,
                   help="WG-3 | WG-6 | PG-6 | WG-50 | LJ-3 | LJ2-3 | b1,b2,... (default: config's)")
    p.add_argument("--batch_size", type=int, default=1,
                   help="utterances vocoded together, each as it would be alone (same --seed, same audio)")
    p.add_argument("--streaming", action="store_true",
                   help="feed each mel in chunks to a StreamingVocoder (same noise, same audio as without, but "
                   "for mels far from the training level, read block by block); "
                   "reports the look-ahead, the time to the first audio and the RTF per chunk")
    p.add_argument("--stream_chunk_frames", type=int, default=32, help="mel frames per push with --streaming")
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--use_ema", type=str2bool, default=True)
    p.add_argument("--overwrite", action="store_true",
                   help="re-vocode utterances whose wav exists (needed when the settings differ from theirs)")
    p.add_argument("--resample", action="store_true", help="resample wavs at another rate (default: an error)")
    p.add_argument("--log_level", default="INFO")
    return p


def mel_sources(
    spec: str, vocoder: SpecGradVocoder, resample: bool = False
) -> Tuple[List[str], Callable[[str], torch.Tensor]]:
    """Utterance ids and a loader id -> (K, M) log10 mel, for a PATH,NAME,TYPE triple."""
    try:
        path, _, kind = spec.split(",")
    except ValueError:
        raise SpecGradInputError(f"--data_path_and_name_and_type {spec!r}: expected PATH,NAME,TYPE") from None
    if not Path(path).is_file():
        raise SpecGradInputError(f"{path}: file not found")
    cfg = vocoder.cfg.features
    if kind == "sound":
        entries = read_scp(path)

        def load_sound(uid: str) -> torch.Tensor:
            wav = read_wav(entries[uid], cfg.fs, cfg.hop_length, resample=resample, n_fft=cfg.n_fft)
            wav = torch.from_numpy(wav)
            with torch.no_grad():
                return vocoder.features(crop_to_hop(wav, cfg.hop_length)[None].to(vocoder.mel_stats.device))[0]

        return list(entries), load_sound
    if kind in ("npy", "kaldi_ark"):
        from espnet2.train.dataset import DATA_TYPES

        read_scp(path)  # a text list of 'utt_id path' lines, each id once, or one line naming what is wrong
        reader = DATA_TYPES[kind]["func"](path)

        def load_feats(uid: str) -> torch.Tensor:
            try:
                return torch.from_numpy(np.array(reader[uid], dtype=np.float32))  # a writable copy
            except (ValueError, OSError) as e:
                if "contains pickled" in str(e):  # numpy: a file that is not an array; never unpickled
                    raise SpecGradInputError(f"utterance {uid}: not an .npy array (a wav.scp is TYPE sound, an "
                                             "audio file is listed in one)") from None
                raise SpecGradInputError(f"utterance {uid}: not readable as {kind} features ({e})") from None

        return list(reader.keys()), load_feats
    raise SpecGradInputError(f"--data_path_and_name_and_type type {kind!r}: expected sound, npy or kaldi_ark")


@contextlib.contextmanager
def utterances_named_in_warnings(vocoder: SpecGradVocoder, uids: List[str], shown: set):
    """Warnings raised while vocoding ``uids``, re-issued from where they were raised: the
    vocoder's warnings about an input mel with the utterances named (a batch's check covers
    all of it, so a batch of several names them all), each batch checked afresh so that every
    utterance that departs is named, not only the first; any other warning as it was, once per
    run (``shown``: what this run re-issued; Python's own once-only registry is reset by the
    filter change each batch makes)."""
    vocoder.input_warnings.warned.clear()
    recorded: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                recorded = list(caught)
    finally:  # also when the batch fails: what was said about it still reaches the user
        who = f"utterance {uids[0]}" if len(uids) == 1 else f"one or more of utterances {', '.join(uids)}"
        for w in recorded:
            text = str(w.message)
            if issubclass(w.category, InputMelWarning):
                warnings.warn_explicit(f"{who}: {text}", w.category, w.filename, w.lineno)
            elif (text, w.category, w.filename, w.lineno) not in shown:
                shown.add((text, w.category, w.filename, w.lineno))
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


SETTINGS_FILE = "decode_settings.json"


def decode_settings(vocoder: SpecGradVocoder, args, device: str) -> Dict[str, Any]:
    """What decides a decode's audio: a digest of the weights as loaded (EMA or not), the config
    (kept whole, compared on checkpoints.model_identity), the schedule, the seed, the
    device (its noise generator) and streaming. ``model`` names where the weights came from and
    is not compared (a moved file is the same model); --resample and --batch_size are not kept
    (they change no wav that exists)."""
    digest = hashlib.sha256()
    for key, value in sorted(vocoder.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    settings = {"model": args.model_tag or str(args.model_file), "weights_sha256": digest.hexdigest(),
                "config": vocoder.cfg.to_dict(), "schedule": vocoder.chosen_schedule(args.schedule),
                "seed": args.seed, "device": device,
                "stream_chunk_frames": args.stream_chunk_frames if args.streaming else None}
    return json.loads(json.dumps(settings, default=str))


def settings_change(record: Path, settings: Dict[str, Any]) -> str:
    """'' when ``record`` holds ``settings`` (``model`` aside), else what differs."""
    if not record.is_file():
        return f"{record.name} is missing (a decode before package 0.3.0, or not one), so what made them is unknown"
    try:
        before = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"{record} is not readable ({e})"
    try:
        # whole configs, each read as today's config classes read it: a key added since counts at its default
        config_change = change_summary(saved_identity(before.get("config"), str(record)),
                                       saved_identity(settings["config"], "this decode's config"))
    except CheckpointError as e:
        return str(e)
    changed = [key for key in settings if key not in ("model", "config") and before.get(key) != settings[key]]
    if not changed and not config_change:
        return ""
    values = "".join(f"; {key}: {before.get(key)!r} then, {settings[key]!r} now" for key in changed
                     if key != "weights_sha256")
    models = f"; model: {before.get('model')} then, {settings['model']} now" if before.get("model") != settings[
        "model"] else ""
    return (f"they were made with other {', '.join(changed + (['config'] if config_change else []))}{models}"
            f"{values}" + (f"; config {config_change}" if config_change else ""))


def length_sorted_batches(todo: List[str], load_one: Callable[[str], Optional[Tuple[str, torch.Tensor]]],
                          batch_size: int, window: int = 8) -> Iterator[List[Tuple[str, torch.Tensor]]]:
    """Batches of up to batch_size (uid, mel) pairs; each run of batch_size * window utterances is
    loaded, then sorted by length, so that a batch's shorter mels wait little on its longest.
    load_one returns None for an utterance it could not load (and records why)."""
    for start in range(0, len(todo), batch_size * window):
        loaded = [item for item in map(load_one, todo[start : start + batch_size * window]) if item is not None]
        if batch_size > 1:
            loaded.sort(key=lambda item: item[1].shape[0])
        for first in range(0, len(loaded), batch_size):
            yield loaded[first : first + batch_size]


def check_streaming(vocoder: SpecGradVocoder, args) -> None:
    """--streaming's preconditions, as a ValueError naming the option."""
    from specgrad_plugin.export import unsupported_reason

    if args.ngpu > 0:
        raise ValueError(f"--streaming runs on the CPU; got --ngpu {args.ngpu}, expected 0")
    if args.batch_size != 1:
        raise ValueError(f"--streaming vocodes one utterance at a time; got --batch_size {args.batch_size}, "
                         "expected 1")
    if args.stream_chunk_frames < 1:
        raise ValueError(f"--stream_chunk_frames {args.stream_chunk_frames}: expected at least 1 frame")
    reason = unsupported_reason(vocoder)
    if reason:
        raise ValueError(f"--streaming: {reason}")


def stream_one(vocoder: SpecGradVocoder, mel: torch.Tensor, args, stats: Dict[str, list]) -> torch.Tensor:
    """Vocode one (K, M) mel through a StreamingVocoder fed --stream_chunk_frames at a time, with
    the noise that vocoding it whole with --seed draws (so the audio is the same)."""
    from specgrad_plugin.export import draw_white_noise
    from specgrad_plugin.streaming import StreamingVocoder, timed_stream

    vocoder.warn_on_mel_range(mel[None])  # the stream reads the mel in parts; decode has it whole, as offline
    steps = len(vocoder.schedule_betas(args.schedule))
    noise = draw_white_noise(1, mel.shape[0] * vocoder.hop_length, steps, args.seed)
    stream = StreamingVocoder(vocoder, args.schedule, noise=noise)
    stats["lookahead"] = [stream.lookahead_frames, stream.lookahead_ms]  # the same for every utterance
    result = timed_stream(stream, mel.cpu().float(), args.stream_chunk_frames)
    stats["first_audio_s"].append(result["first_audio_s"])
    stats["chunk_rtf"].extend(result["chunk_rtf"])
    return result["wav"]


def streaming_summary(args, stats: Dict[str, list]) -> str:
    (frames, ms), first, rtf = stats["lookahead"], stats["first_audio_s"], sorted(stats["chunk_rtf"])
    return (f"streaming: look-ahead {frames} frames ({ms:.0f} ms); chunks of "
            f"{args.stream_chunk_frames} frames; compute to the first audio {sum(first) / len(first):.2f} s "
            f"(mean of {len(first)}); RTF per chunk median {rtf[len(rtf) // 2]:.3f}, max {rtf[-1]:.3f}")


@one_line_write_errors
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    device = "cuda" if args.ngpu > 0 else "cpu"
    runtime.tune_cpu_allocator()  # docs/speed.md; $SPECGRAD_MALLOC=default opts out
    try:
        if args.ngpu > 0 and not torch.cuda.is_available():
            raise ValueError(f"--ngpu {args.ngpu}: torch sees no CUDA device here; expected --ngpu 0")
        if args.model_tag:
            vocoder = SpecGradVocoder.from_pretrained(args.model_tag, device=device)
        else:
            vocoder = SpecGradVocoder.from_checkpoint(args.model_file, args.train_config, device=device,
                                                      use_ema=args.use_ema)
        ids, load = mel_sources(args.data_path_and_name_and_type, vocoder, args.resample)
        if not ids:
            raise SpecGradInputError(f"{args.data_path_and_name_and_type.split(',')[0]}: no utterances; "
                                     "expected one 'id path' line per utterance")
        check_seed(args.seed, "--seed")
        if args.schedule is not None:
            inference_betas(args.schedule)
        if args.streaming:
            check_streaming(vocoder, args)
        if args.batch_size < 1:
            raise ValueError(f"--batch_size {args.batch_size}: expected at least 1 utterance")
    except (ConfigError, CheckpointError, SpecGradInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wav_dir = args.output_dir / "wav"
    settings, record = decode_settings(vocoder, args, device), args.output_dir / SETTINGS_FILE
    existing = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
    change = settings_change(record, settings) if existing else ""
    if change and not args.overwrite:
        print(f"error: {wav_dir} already holds {len(existing)} wavs, but {change}; pass --overwrite to "
              "re-vocode, or another --output_dir", file=sys.stderr)
        return 2
    if change:  # --overwrite: none of them may outlive the record that would misdescribe them
        logging.info("--overwrite: removing the %d wavs made with other settings", len(existing))
        for stale in existing:
            stale.unlink()
    wav_dir.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    tmp.replace(record)
    for stale in wav_dir.glob("*.tmp"):  # left by a run killed while writing
        stale.unlink()
    todo = [u for u in ids if args.overwrite or not (wav_dir / f"{u}.wav").is_file()]
    if len(todo) < len(ids):
        logging.info("skipping %d utterances already vocoded", len(ids) - len(todo))
    failed: Dict[str, str] = {}
    seconds_audio, seconds_spent = 0.0, 0.0
    stream_stats: Dict[str, list] = {"first_audio_s": [], "chunk_rtf": []}

    def load_one(uid: str) -> Optional[Tuple[str, torch.Tensor]]:
        try:
            return uid, check_one_mel(load(uid), vocoder.cfg.features.n_mels, name=f"utterance {uid}")
        except SpecGradInputError as e:
            failed[uid] = str(e) if uid in str(e) else f"utterance {uid}: {e}"
        except Exception as e:  # one line per bad utterance, whatever the reader raised
            failed[uid] = f"utterance {uid}: {type(e).__name__}: {e}"
        logging.error("%s", failed[uid])
        return None

    batches = length_sorted_batches(todo, load_one, args.batch_size)
    shown_warnings: set = set()
    for batch in tqdm(batches, desc="vocoding", unit="batch", total=-(-len(todo) // args.batch_size)):
        tic = time.perf_counter()
        try:
            with utterances_named_in_warnings(vocoder, [uid for uid, _ in batch], shown_warnings):
                if args.streaming:
                    wavs = [stream_one(vocoder, batch[0][1], args, stream_stats)]
                else:  # each utterance as its one-by-one vocoding with --seed (specgrad_plugin.batched)
                    wavs = vocode_batch(vocoder, [mel for _, mel in batch], schedule=args.schedule, seed=args.seed)
        except SpecGradInputError as e:
            for uid, _ in batch:
                failed[uid] = str(e)
                logging.error("%s: %s", uid, e)
            continue
        seconds_spent += time.perf_counter() - tic
        for (uid, _), wav in zip(batch, wavs, strict=True):
            write_wav(wav_dir / f"{uid}.wav", wav, vocoder.fs)
            seconds_audio += wav.shape[-1] / vocoder.fs
    with open(args.output_dir / "wav.scp", "w", encoding="utf-8") as f:
        for uid in ids:
            if (wav_dir / f"{uid}.wav").is_file():
                f.write(f"{uid} {(wav_dir / f'{uid}.wav').resolve()}\n")
    if seconds_audio:
        print(f"RTF {seconds_spent / seconds_audio:.3f} ({seconds_spent:.1f} s for {seconds_audio:.1f} s of audio, "
              f"{device}, schedule {vocoder.chosen_schedule(args.schedule)})")
    if stream_stats["first_audio_s"]:
        print(streaming_summary(args, stream_stats))
    report = args.output_dir / "failed.txt"
    report.unlink(missing_ok=True)  # a rerun that fixed everything leaves no stale list
    if failed:
        report.write_text("".join(f"{u} {m}\n" for u, m in failed.items()))
        print(f"{len(failed)} of {len(ids)} utterances failed; listed in {report}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
