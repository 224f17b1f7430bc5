"""DVC stage ``prepare``: sources -> mono 16 kHz clips with splits, notes and a manifest.

Sources (``data.source`` in params.yaml):

- ``builtin``: `ddsp_models.training.melodies` melodies (one MIDI file each, kept under
  ``<out>/midi/``) rendered with FluidSynth; note annotations come from the MIDI.
- a folder: every audio file below it (wav, flac, ogg, mp3, aiff, ...; any rate and channel
  count), decoded, averaged to mono and resampled. A MIDI file beside a recording with the
  same stem (``take1.wav`` + ``take1.mid``) is read as its (aligned) note annotations; the
  first sub-folder of a file names its instrument.

Each source is cut into ``clip_seconds`` clips every ``hop_seconds`` (a last partial clip of
at least half a clip is zero-padded), clips quieter than ``silence_db`` (RMS, dBFS) are
dropped, and every clip of a source lands in the same split, chosen by a hash of the
source's name (`assign_splits`) among the sources that gave clips (bad, too short or
silent files never take a split's place). Outputs under ``--out-dir`` (data/clips):
``{train,valid,test}/<id>.wav`` (float32), ``<id>.notes.json`` beside MIDI-labelled clips,
``manifest.jsonl`` (one clip per line) and ``report.json`` (counts, bad and silent files).

CLI: ``python -m pipelines.prepare --params params.yaml --out-dir data/clips``.
"""
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sys

import numpy as np
from tqdm import tqdm

from ddsp_models.audio_io import clipping_warning, load_audio, rms_db, write_wav
from ddsp_models.training import flow_utils, melodies
from ddsp_models.training.features import SPLITS
from ddsp_models.training.params import load_params

log = logging.getLogger("pipelines.prepare")

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".m4a", ".opus")
MIDI_EXTENSIONS = (".mid", ".midi")


@dataclasses.dataclass
class Source:
    """One source recording: its name (relative path), mono audio and optional notes."""
    name: str
    audio: np.ndarray
    instrument: str
    program: int = -1
    notes: list | None = None
    annotation_error: dict | None = None  # {'file', 'error'}: a MIDI file that did not read


def source_hash(source_name: str) -> float:
    """A stable number in [0, 1) from a source's name (SHA-1)."""
    digest = hashlib.sha1(source_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_counts(n_sources: int, fractions: dict) -> dict:
    """Sources per split: ``n * fraction`` rounded by largest remainders, then every split
    with a positive fraction gets at least one source when there are enough sources."""
    wanted = {s: float(fractions.get(s, 0.0)) * n_sources for s in SPLITS}
    counts = {s: int(np.floor(w)) for s, w in wanted.items()}
    for s in sorted(SPLITS, key=lambda s: counts[s] - wanted[s])[:n_sources - sum(counts.values())]:
        counts[s] += 1
    for s in SPLITS:
        if fractions.get(s, 0.0) > 0 and counts[s] == 0:
            donor = max(SPLITS, key=lambda d: counts[d])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[s] += 1
    return counts


def assign_splits(source_names, fractions: dict) -> dict:
    """Source name -> split. Sources are ordered by `source_hash` of their name and cut
    into train / valid / test runs of `split_counts` sizes: the same names always give the
    same splits, all clips of a source share one split, and a new source moves at most
    the sources next to a cut."""
    names = sorted(set(source_names), key=lambda n: (source_hash(n), n))
    counts = split_counts(len(names), fractions)
    splits, start = {}, 0
    for split in SPLITS:
        for name in names[start:start + counts[split]]:
            splits[name] = split
        start += counts[split]
    return splits


def clip_starts(n_samples: int, clip: int, hop: int) -> list[int]:
    """Start samples of clips of ``clip`` samples every ``hop``. Samples after the last full
    clip get one more (zero-padded) clip when it would hold at least ``clip // 2`` samples;
    a source shorter than a clip gives one padded clip."""
    if n_samples <= 0:
        return []
    if n_samples < clip:
        return [0]
    starts = list(range(0, n_samples - clip + 1, hop))
    uncovered = n_samples - (starts[-1] + clip)
    tail = starts[-1] + hop
    if uncovered > 0 and n_samples - tail >= clip // 2:
        starts.append(tail)
    return starts


def _clip_id(source_name: str, index: int) -> str:
    stem = os.path.splitext(source_name)[0].replace("/", "__")
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}-{index:03d}"


def _midi_notes(path: str) -> tuple[list[dict], int]:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(path)
    programs = [t.program for t in midi.instruments if not t.is_drum and t.notes]
    return melodies.note_list(midi), (programs[0] if programs else -1)


def builtin_jobs(params: dict, out_dir: str):
    """(name, loader) pairs for the built-in melodies; loaders render and save the MIDI."""
    instruments = list(params["instruments"])
    if not instruments:
        raise ValueError("data.instruments must name at least one instrument")
    for name in instruments:
        melodies.instrument_spec(name)  # fail early on unknown names
    midi_dir = os.path.join(out_dir, "midi")

    def loader(index: int, instrument: str, name: str):
        midi = melodies.generate_melody(
            instrument, float(params["melody_seconds"]), seed=int(params["seed"]) * 100003 + index)
        os.makedirs(midi_dir, exist_ok=True)
        midi.write(os.path.join(midi_dir, name))
        audio = melodies.render_melody(
            midi, int(params["sample_rate"]), params["soundfont"],
            duration=float(params["melody_seconds"]), gain=float(params["render_gain"]))
        return Source(name, audio, instrument, melodies.INSTRUMENTS[instrument].program,
                      melodies.note_list(midi))

    for i in range(int(params["n_melodies"])):
        instrument = instruments[i % len(instruments)]
        name = f"melody_{i:04d}_{instrument}.mid"
        yield name, (lambda i=i, instrument=instrument, name=name: loader(i, instrument, name))


def folder_jobs(params: dict, root: str):
    """(name, loader) pairs for every audio file below ``root`` (sorted, recursive)."""
    if not os.path.isdir(root):
        raise ValueError(f"data.source {root!r} is neither 'builtin' nor a folder")
    paths = []
    for folder, _, files in os.walk(root):
        paths += [os.path.join(folder, f) for f in files
                  if f.lower().endswith(AUDIO_EXTENSIONS)]

    def loader(path: str, name: str):
        audio = load_audio(path, int(params["sample_rate"]))
        parts = name.split("/")
        instrument = parts[0] if len(parts) > 1 else "unknown"
        program = (melodies.INSTRUMENTS[instrument].program
                   if instrument in melodies.INSTRUMENTS else -1)
        notes, annotation_error = None, None
        for ext in MIDI_EXTENSIONS:
            midi_path = os.path.splitext(path)[0] + ext
            if os.path.isfile(midi_path):
                try:
                    notes, midi_program = _midi_notes(midi_path)
                except Exception as error:  # noqa: BLE001 - keep the audio, report the MIDI
                    annotation_error = {
                        "file": os.path.relpath(midi_path, root).replace(os.sep, "/"),
                        "error": f"{type(error).__name__}: {error} (the recording is kept "
                                 "without note annotations)"}
                    break
                program = midi_program if midi_program >= 0 else program
                break
        return Source(name, audio, instrument, program, notes, annotation_error)

    for path in sorted(paths):
        name = os.path.relpath(path, root).replace(os.sep, "/")
        yield name, (lambda path=path, name=name: loader(path, name))


STAGING = "_staging"       # clips of the sources read so far, before the splits are known


def check_source(src: Source, sample_rate: int, clip: int) -> list[str]:
    """Rejects a source too short to make a clip (ValueError naming its length) and
    returns warnings about a usable one (clipping)."""
    if len(src.audio) < clip // 2:
        raise ValueError(f"{len(src.audio) / sample_rate:.2f} s of audio is shorter than half "
                         f"a clip ({clip / 2 / sample_rate:.2f} s, data.clip_seconds / 2): "
                         "too short to use")
    warning = clipping_warning(src.audio)
    return [warning] if warning else []


def prepare(params: dict, out_dir: str, progress: bool = True) -> dict:
    """Runs the stage: writes clips, notes, manifest and report under ``out_dir`` (which is
    emptied first); returns the report dict.

    Every source is read first (its clips staged), then the splits are assigned over the
    sources that gave clips, so bad or silent files never leave a split empty. Bad files
    (``bad_files``: unreadable, empty, non-audio, non-finite, too short), silent ones
    (``silent_files``), unreadable annotations (``bad_annotations``; the audio is kept)
    and ``warnings`` (clipped audio, kept) are named in the report with the reason.
    """
    sample_rate = int(params["sample_rate"])
    clip = int(round(float(params["clip_seconds"]) * sample_rate))
    hop = int(round(float(params["hop_seconds"]) * sample_rate))
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    for split in SPLITS:
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    staging = os.path.join(out_dir, STAGING)
    os.makedirs(staging, exist_ok=True)

    source = str(params["source"])
    jobs = list(builtin_jobs(params, out_dir) if source == "builtin"
                else folder_jobs(params, source))
    report = {"source": source, "n_sources": len(jobs), "n_clips": 0,
              "clips_per_split": {s: 0 for s in SPLITS},
              "sources_per_split": {s: 0 for s in SPLITS},
              "dropped_silent_clips": 0, "bad_files": [], "silent_files": [],
              "bad_annotations": [], "warnings": []}
    staged = {}  # source name -> manifest rows (without split) of its kept clips
    bar = tqdm(jobs, desc="prepare", unit="file", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for name, load in bar:
        try:
            src = load()
            for warning in check_source(src, sample_rate, clip):
                log.warning("%s: %s", name, warning)
                report["warnings"].append({"file": name, "warning": warning})
        except Exception as error:  # noqa: BLE001 - a bad file must not stop the stage
            reason = f"{type(error).__name__}: {error}"
            log.warning("skipping %s: %s", name, reason)
            report["bad_files"].append({"file": name, "error": reason})
            continue
        if src.annotation_error is not None:
            log.warning("%s: %s", src.annotation_error["file"], src.annotation_error["error"])
            report["bad_annotations"].append(src.annotation_error)
        rows = []
        for k, start in enumerate(clip_starts(len(src.audio), clip, hop)):
            audio = src.audio[start:start + clip]
            audio = np.pad(audio, (0, clip - len(audio)))
            level = rms_db(audio)
            if level < float(params["silence_db"]):
                report["dropped_silent_clips"] += 1
                continue
            clip_id = _clip_id(src.name, k)
            write_wav(os.path.join(staging, f"{clip_id}.wav"), audio, sample_rate, subtype="FLOAT")
            if src.notes is not None:
                notes = melodies.clip_notes(src.notes, start / sample_rate, clip / sample_rate)
                with open(os.path.join(staging, f"{clip_id}.notes.json"), "w") as f:
                    json.dump({"id": clip_id, "instrument": src.instrument,
                               "program": src.program, "notes": notes}, f, indent=1)
            rows.append({"id": clip_id, "source": src.name, "offset": start / sample_rate,
                         "duration": clip / sample_rate, "instrument": src.instrument,
                         "program": src.program, "rms_db": round(level, 2),
                         "has_notes": src.notes is not None})
        if rows:
            staged[src.name] = rows
        else:
            report["silent_files"].append(src.name)
    bar.close()

    # Splits over the sources that gave clips (every split gets one when there are >= 3).
    split_of = assign_splits(list(staged), params["splits"])
    manifest = []
    for name, rows in staged.items():
        split = split_of[name]
        report["sources_per_split"][split] += 1
        for row in rows:
            clip_id = row.pop("id")
            has_notes = row.pop("has_notes")
            rel_wav = f"{split}/{clip_id}.wav"
            os.replace(os.path.join(staging, f"{clip_id}.wav"), os.path.join(out_dir, rel_wav))
            rel_notes = None
            if has_notes:
                rel_notes = f"{split}/{clip_id}.notes.json"
                os.replace(os.path.join(staging, f"{clip_id}.notes.json"),
                           os.path.join(out_dir, rel_notes))
            manifest.append({"id": clip_id, "split": split, "path": rel_wav,
                             "notes": rel_notes, **row})
            report["clips_per_split"][split] += 1
    shutil.rmtree(staging, ignore_errors=True)
    report["n_clips"] = len(manifest)
    with open(os.path.join(out_dir, "manifest.jsonl"), "w") as f:
        for row in manifest:
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    empty = [s for s in SPLITS
             if params["splits"].get(s, 0) > 0 and not report["clips_per_split"][s]]
    if empty:
        log.warning("splits %s got no clips (%d usable sources; every split with a positive "
                    "fraction gets one from 3 sources on)", empty, len(staged))
    return report


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--out-dir": "output folder of the clips (emptied first)"})
    args = flow_utils.parse_stage_args(parser, argv)
    report = prepare(load_params(args.params)["data"], args.out_dir)
    log.info("%d clips from %d sources %s; %d silent clips dropped; bad files: %s",
             report["n_clips"], report["n_sources"], report["clips_per_split"],
             report["dropped_silent_clips"], [b["file"] for b in report["bad_files"]] or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
