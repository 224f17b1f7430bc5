"""Using a trained model: resynthesis and timbre transfer of whole recordings, MIDI files
rendered through a MIDI model (Python API and command line).

A run folder (`run_folders.load_run`, re-exported here) gives a `LoadedRun`: the restored
model, its rates and the training data's statistics; other folder layouts (original DDSP
model folders) plug in with `register_run_loader`.

Any length: audio is read block by block (`audio_io.iter_audio_blocks`), features (CREPE f0
with Viterbi, confidence, A-weighted loudness, power) are computed on chunks of
`chunk_seconds` with `context_seconds` of audio either side (`chunked_features`), and the
model runs chunk by chunk with its GRU states carried across chunks and its synthesis
continuing phase, noise filters and reverb tails (`chunked_render`): the output of
N chunks equals the output of one pass, so chunk borders are inaudible. Only the frame
features of the whole recording (a few floats per 4 ms frame) stay in memory; audio is
held one chunk at a time and written as it is produced.

Units: audio float32 at the run's sample rate; frames at its frame rate; f0 in Hz, pitch
in MIDI notes, loudness / power in dB, velocity 0-127.

CLI (``python -m ddsp_models.training.inference --help``)::

  resynthesize --run-dir runs/ae --audio in.wav --out out.wav
  transfer     --run-dir runs/ae --audio in.wav --out out.wav [--octaves 1 --semitones 0
               --loudness-db 0 --no-auto --autotune 0.5 --quiet-db 20 --no-mute]
  midi         --run-dir runs/midiae --midi song.mid --out out.wav [--pitch-offset 0
               --tempo 1.0 --polyphony split|error]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from ddsp_models.checks import positive_float
from ddsp_models.cli_logging import configure_cli_logging
from ddsp_models.training.chunked_features import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_CONTEXT_SECONDS,
    PLOT_SECONDS,
    Features,
    compute_features,
    frame_chunks,
)
from ddsp_models.training.chunked_render import (
    ChunkRenderer,
    ControlStream,
    harmonic_amplitudes,
    midi_latent,
    noise_magnitudes,
    noise_magnitudes_tf,
    render,
    reverb_impulse_response,
    synth_processors,
)
from ddsp_models.training.features import N_PITCHES, frame_at_or_after
from ddsp_models.training.run_folders import (
    STATISTICS_FILE,
    LoadedRun,
    dataset_statistics_of,
    example_features,
    load_run,
    load_trained_model,
    read_statistics,
    register_run_loader,
    write_statistics,
)

log = logging.getLogger(__name__)

# A MIDI model that holds its pitch between notes (`MidiAutoencoder.hold_pitch`) learnt the
# release tails of its training audio: a MIDI voice keeps sounding this long after each
# note's end (then muted, as every frame off a note is for the other models).
RELEASE_SECONDS = 0.5

__all__ = [  # this module's own names, then those of the modules it puts together
    "process_audio", "resynthesize", "transfer", "midi_voices", "render_midi", "main",
    "RELEASE_SECONDS", "DEFAULT_CHUNK_SECONDS", "DEFAULT_CONTEXT_SECONDS", "PLOT_SECONDS", "Features",
    "compute_features",
    "frame_chunks", "ChunkRenderer", "ControlStream", "harmonic_amplitudes", "midi_latent",
    "noise_magnitudes", "noise_magnitudes_tf", "render", "reverb_impulse_response",
    "synth_processors",
    "STATISTICS_FILE", "LoadedRun", "dataset_statistics_of", "example_features", "load_run",
    "load_trained_model", "read_statistics", "register_run_loader", "write_statistics"]


# ------------------------------------------------------------------------ audio -> audio
class _WavSink:
    """Writes blocks to ``<path>.partial`` as they come (renamed to `path` by `close`,
    removed by `abort`); keeps the first PLOT_SECONDS for a plot."""

    def __init__(self, path: str, sample_rate: int, keep_samples: int):
        from ddsp_models.audio_io import WavWriter

        self.path = path
        self.writer = WavWriter(path + ".partial", sample_rate)
        self.keep, self.head = keep_samples, []
        self.kept = 0

    def __call__(self, block):
        self.writer.write(block)
        if self.kept < self.keep:
            self.head.append(np.asarray(block[:self.keep - self.kept], np.float32))
            self.kept += self.head[-1].size

    def close(self):
        os.replace(self.writer.close(), self.path)
        return np.concatenate(self.head) if self.head else np.zeros(0, np.float32)

    def abort(self):
        os.remove(self.writer.close())


def _transfer_features(features: Features, run: LoadedRun, octaves: float, semitones: float,
                       loudness_db: float, auto: bool, autotune: float, quiet_db: float,
                       mute: bool):
    """Adjusted frame features, per-frame output gain (None: no muting) and what was done."""
    from ddsp_models.training import postprocessing
    from ddsp_models.training.evaluation import adjust_for_timbre_transfer

    mask_on, ratio = postprocessing.detect_notes(features.loudness_db, features.f0_confidence)
    if auto and not run.statistics:
        raise ValueError(f"run {run.folder!r} has no {STATISTICS_FILE}: automatic adjustment "
                         "needs the training data's statistics (retrain with the current "
                         "pipeline, or pass --no-auto)")
    adjusted, info = adjust_for_timbre_transfer(
        features.as_dict(), octave_shift=int(octaves), loudness_shift_db=loudness_db,
        auto_adjust=auto, dataset_stats=run.statistics if auto else None,
        semitone_shift=semitones, mask_on=mask_on if auto else None, note_on_ratio=ratio,
        quiet_off_db=quiet_db, autotune=autotune)
    info["note_on_fraction"] = float(mask_on.mean()) if mask_on.size else 0.0
    gain = None
    if mute:
        # Smoothed on/off (about 20 ms ramps), so muting never clicks.
        gain = np.clip(postprocessing.smooth(mask_on.astype(np.float64), 5), 0.0, 1.0)
    return adjusted, gain, info


def process_audio(run: LoadedRun, audio, out_path: str, mode: str = "resynthesize",
                  octaves: int = 0, semitones: float = 0.0, loudness_db: float = 0.0,
                  auto: bool = True, autotune: float = 0.0, quiet_db: float = 20.0,
                  mute: bool = True, crepe_capacity: str = "tiny",
                  chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                  context_seconds: float = DEFAULT_CONTEXT_SECONDS, seed: int = 0,
                  plot: bool = True, progress: bool = True) -> dict:
    """Resynthesis or timbre transfer of a recording of any length.

    Args:
      run: a `load_run` result (a model driven by f0 and loudness / power).
      audio: a file path (any format `audio_io` reads: any rate, channels, length) or an
        iterable of float32 mono blocks at the run's sample rate (read lazily).
      out_path: output wav (same length as the input, the run's sample rate); a PNG of the
        input's and output's spectrograms (first 30 s) is written beside it.
      mode: 'resynthesize' (features as they are) or 'transfer' (the notebook's controls:
        `octaves`, `semitones`, `loudness_db` shifts; `auto` adjustment to the training
        data (pitch register, loudness quantiles, quiet parts turned down by `quiet_db`);
        `autotune` 0..1; `mute` frames off a note).
      crepe_capacity: 'tiny' or 'full'.
      chunk_seconds, context_seconds: see `compute_features`.
      seed: noise generator seed.

    Returns:
      a summary dict: paths, seconds, shifts applied, frames, timings.
    """
    from ddsp_models.audio_io import iter_audio_blocks

    if mode not in ("resynthesize", "transfer"):
        raise ValueError(f"mode must be 'resynthesize' or 'transfer', got {mode!r}")
    t0 = time.monotonic()
    name = None
    total_seconds = None
    if isinstance(audio, (str, os.PathLike)):
        name = os.fspath(audio)
        total_seconds = _duration(name)
        blocks = iter_audio_blocks(name, run.sample_rate)
    else:
        blocks = audio
    features = compute_features(blocks, run.sample_rate, run.frame_rate, crepe_capacity,
                                True, chunk_seconds, context_seconds, progress, total_seconds)
    t_features = time.monotonic() - t0
    frames = features.as_dict()
    gain, info = None, {}
    if mode == "transfer":
        frames, gain, info = _transfer_features(features, run, octaves, semitones, loudness_db,
                                                auto, autotune, quiet_db, mute)
    chunk_frames = max(1, int(round(chunk_seconds * run.frame_rate)))
    sink = _WavSink(out_path, run.sample_rate, int(PLOT_SECONDS * run.sample_rate))
    try:
        written = render(run, ControlStream(run, "synth"), frame_chunks(frames, chunk_frames),
                         features.n_samples, sink, gain=gain, seed=seed, progress=progress,
                         total_chunks=-(-features.n_frames // chunk_frames), desc=mode)
    except BaseException:
        sink.abort()
        raise
    head = sink.close()
    result = {"mode": mode, "run": run.folder, "input": name, "output": out_path,
              "seconds": features.n_samples / run.sample_rate, "samples": written,
              "frames": features.n_frames, "features_seconds": round(t_features, 2),
              "total_seconds": round(time.monotonic() - t0, 2), **info}
    if plot:
        from ddsp_models.training.plotting import plot_spectrograms

        png = os.path.splitext(out_path)[0] + ".png"
        n = min(head.size, features.head.size)
        if n > 1024:
            label = os.path.basename(name) if name else "input"
            result["spectrogram"] = plot_spectrograms(
                {f"input ({label})": features.head[:n], f"{mode}": head[:n]}, png,
                sample_rate=run.sample_rate,
                title=f"{os.path.basename(run.folder.rstrip(os.sep))}: {mode}"
                      + (f" (first {n / run.sample_rate:.0f} s)" if n < features.n_samples else ""))
    return result


def _duration(path: str) -> float | None:
    try:
        import soundfile as sf

        return float(sf.info(path).duration)
    except Exception:  # noqa: BLE001 - only for the progress bar
        return None


def resynthesize(run: LoadedRun, audio, out_path: str, **kwargs) -> dict:
    """`process_audio` in 'resynthesize' mode."""
    return process_audio(run, audio, out_path, mode="resynthesize", **kwargs)


def transfer(run: LoadedRun, audio, out_path: str, **kwargs) -> dict:
    """`process_audio` in 'transfer' mode."""
    return process_audio(run, audio, out_path, mode="transfer", **kwargs)


# --------------------------------------------------------------------------------- MIDI
def midi_voices(path, frame_rate: int = 250, pitch_offset: int = 0, tempo: float = 1.0,
                polyphony: str = "split", tail_seconds: float = 0.5) -> list[dict]:
    """Monophonic voices of a MIDI file as frame arrays.

    Each non-drum instrument track is split into voices: a note goes to the first voice
    that is silent at its start (`polyphony='split'`); with 'error' a track with overlapping
    notes raises ValueError naming it. Times are divided by `tempo` (2.0 plays twice as
    fast); pitches move by `pitch_offset` semitones.

    Returns:
      [{'track': name, 'voice': i, 'program', 'pitch', 'velocity' (float32 `[n_frames]`,
      MIDI note / velocity 0-127, 0 where silent), 'n_notes'}], all of one length
      (the last note's end plus `tail_seconds`).
    """
    import pretty_midi

    path = os.fspath(path)
    positive_float("tempo", tempo)
    if polyphony not in ("split", "error"):
        raise ValueError(f"polyphony must be 'split' or 'error', got {polyphony!r}")
    try:
        midi = pretty_midi.PrettyMIDI(path)
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable MIDI file ({error})") from error
    tracks = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not tracks:
        raise ValueError(f"{path}: no (non-drum) notes")
    end = max(n.end for inst in tracks for n in inst.notes) / tempo + tail_seconds
    n_frames = int(np.ceil(end * frame_rate))
    voices, names = [], {}
    for index, inst in enumerate(tracks):
        base = (inst.name or pretty_midi.program_to_instrument_name(inst.program)).strip() \
            or f"track{index}"
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}_{names[base]}"
        ends, lanes = [], []
        for note in sorted(inst.notes, key=lambda n: (n.start, n.pitch)):
            start, stop = note.start / tempo, note.end / tempo
            lane = next((i for i, e in enumerate(ends) if e <= start + 1e-9), None)
            if lane is None:
                if ends and polyphony == "error":
                    raise ValueError(f"{path}: track {name!r} is polyphonic (a note at "
                                     f"{note.start:.3f} s starts before the previous one ends); "
                                     "use polyphony='split' to render it as several voices")
                lane = len(ends)
                ends.append(0.0)
                lanes.append([])
            ends[lane] = stop
            lanes[lane].append((start, stop, note.pitch + int(pitch_offset), note.velocity))
        for lane_index, notes in enumerate(lanes):
            pitch = np.zeros(n_frames, np.float32)
            velocity = np.zeros(n_frames, np.float32)
            for start, stop, p, v in notes:
                if not 0 <= p < N_PITCHES:
                    raise ValueError(f"{path}: track {name!r}: pitch {p} (with offset "
                                     f"{pitch_offset}) is outside MIDI 0..{N_PITCHES - 1}")
                a = frame_at_or_after(start, frame_rate)
                b = max(frame_at_or_after(stop, frame_rate), a + 1)
                pitch[a:b], velocity[a:b] = p, v
            voices.append({"track": name, "voice": lane_index, "program": inst.program,
                           "pitch": pitch, "velocity": velocity, "n_notes": len(notes)})
    return voices


def render_midi(run: LoadedRun, midi_path, out_path: str, pitch_offset: int = 0,
                tempo: float = 1.0, polyphony: str = "split", instrument_id: int | None = None,
                chunk_seconds: float = DEFAULT_CHUNK_SECONDS, seed: int = 0,
                progress: bool = True, plot: bool = True) -> dict:
    """Renders a MIDI file through a MIDI model's midi_decoder and synthesizer.

    Every voice (`midi_voices`) is rendered (frames outside its notes muted, with 20 ms
    ramps; the reverb tail rings on; a model with `hold_pitch` gets the pitch held between
    notes and sounds `RELEASE_SECONDS` past each note's end, its learnt release); the
    voices of a track are summed into a stem ``<out>_<track>.wav``; the stems are summed
    into `out_path` (scaled down when the mix would clip; the gain is reported). Returns a
    summary dict.
    """
    from ddsp_models.audio_io import write_wav
    from ddsp_models.training import midi, postprocessing

    voices = midi_voices(midi_path, run.frame_rate, pitch_offset, tempo, polyphony)
    holds = bool(getattr(run.model, "hold_pitch", False))
    release_frames = int(round(RELEASE_SECONDS * run.frame_rate)) if holds else 0
    controls_z = midi_latent(run, instrument_id)
    n_frames = voices[0]["pitch"].size
    n_samples = n_frames * run.hop
    chunk_frames = max(1, int(round(chunk_seconds * run.frame_rate)))
    stems = {}
    for i, voice in enumerate(voices):
        on = (voice["velocity"] > 0).astype(np.float64)
        pitch = voice["pitch"]
        if holds:
            pitch = midi.hold_pitch(pitch[np.newaxis], voice["velocity"][np.newaxis]).numpy().reshape(-1)
            on = (np.convolve(on, np.ones(release_frames + 1))[:on.size] > 0).astype(np.float64)
        gain = np.clip(postprocessing.smooth(on, 5), 0.0, 1.0)  # 20 ms ramps
        blocks = []
        render(run, ControlStream(run, "midi", midi_z=controls_z),
               frame_chunks({"pitch": pitch, "velocity": voice["velocity"]}, chunk_frames),
               n_samples, blocks.append, gain=gain, seed=seed + i, progress=progress,
               total_chunks=-(-n_frames // chunk_frames),
               desc=f"{voice['track']} voice {voice['voice']}")
        audio = np.concatenate(blocks)
        stems[voice["track"]] = stems.get(voice["track"], 0.0) + audio
    mix = sum(stems.values())
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    mix_gain = 1.0 if peak <= 0.99 else 0.99 / peak
    stem_paths = {}
    base = os.path.splitext(out_path)[0]
    for track, audio in stems.items():
        stem_peak = float(np.max(np.abs(audio)))
        stem_paths[track] = write_wav(f"{base}_{track}.wav",
                                      audio * (1.0 if stem_peak <= 0.99 else 0.99 / stem_peak),
                                      run.sample_rate)
    write_wav(out_path, mix * mix_gain, run.sample_rate)
    result = {"mode": "midi", "run": run.folder, "midi": os.fspath(midi_path), "output": out_path,
              "stems": stem_paths, "seconds": n_samples / run.sample_rate,
              "voices": [{"track": v["track"], "voice": v["voice"], "n_notes": v["n_notes"]}
                         for v in voices], "mix_gain": mix_gain, "pitch_offset": pitch_offset,
              "tempo": tempo}
    if plot:
        from ddsp_models.training.plotting import plot_spectrograms

        n = int(min(mix.size, PLOT_SECONDS * run.sample_rate))
        result["spectrogram"] = plot_spectrograms(
            {"MIDI rendering": mix[:n] * mix_gain}, base + ".png", sample_rate=run.sample_rate,
            title=f"{os.path.basename(os.fspath(midi_path))} through "
                  f"{os.path.basename(run.folder.rstrip(os.sep))}")
    return result


# ---------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ddsp_models.training.inference",
        description="Use a trained run: resynthesize or transfer a recording of any length, "
                    "or render a MIDI file with a MIDI model.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, audio: bool = True):
        p.add_argument("--run-dir", required=True, help="run folder (runs/ae, runs/midiae, ...)")
        if audio:
            p.add_argument("--audio", required=True, nargs="+",
                           help="input recording(s): any format, rate, channels, length")
        p.add_argument("--out", required=True,
                       help="output wav (several inputs: a folder, one <name>.wav each)")
        p.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
                       help="audio processed per chunk (memory bound)")
        p.add_argument("--seed", type=int, default=0, help="noise seed")
        p.add_argument("--no-plot", action="store_true", help="no spectrogram PNG")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if audio:
            p.add_argument("--crepe-capacity", default="tiny", choices=("tiny", "full"))
            p.add_argument("--context-seconds", type=float, default=DEFAULT_CONTEXT_SECONDS,
                           help="audio either side of a chunk that the features see")

    common(sub.add_parser("resynthesize", help="audio -> features -> model -> audio"))
    t = sub.add_parser("transfer", help="timbre transfer with the notebook's controls")
    common(t)
    t.add_argument("--octaves", type=int, default=0, help="pitch shift, octaves")
    t.add_argument("--semitones", type=float, default=0.0, help="pitch shift, semitones")
    t.add_argument("--loudness-db", type=float, default=0.0, help="loudness shift, dB")
    t.add_argument("--no-auto", action="store_true",
                   help="no automatic adjustment to the training data")
    t.add_argument("--autotune", type=float, default=0.0, help="0..1 toward the nearest semitone")
    t.add_argument("--quiet-db", type=float, default=20.0,
                   help="dB that frames off a note are turned down (auto adjustment)")
    t.add_argument("--no-mute", action="store_true",
                   help="synthesise quiet / unpitched parts instead of muting them")
    m = sub.add_parser("midi", help="render a MIDI file with a MIDI model")
    common(m, audio=False)
    m.add_argument("--midi", required=True, help="MIDI file")
    m.add_argument("--pitch-offset", type=int, default=0, help="semitones added to every note")
    m.add_argument("--tempo", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    m.add_argument("--polyphony", choices=("split", "error"), default="split",
                   help="split polyphonic tracks into voices, or refuse them")
    m.add_argument("--instrument-id", type=int, default=None,
                   help="ZMidiAutoencoder: instrument whose latent to use")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    configure_cli_logging()
    run = load_run(args.run_dir)
    progress = not args.quiet
    if args.command == "midi":
        result = render_midi(run, args.midi, args.out, args.pitch_offset, args.tempo,
                             args.polyphony, args.instrument_id, args.chunk_seconds, args.seed,
                             progress, not args.no_plot)
        print(json.dumps(result, indent=1))
        return 0
    kwargs = dict(crepe_capacity=args.crepe_capacity, chunk_seconds=args.chunk_seconds,
                  context_seconds=args.context_seconds, seed=args.seed, plot=not args.no_plot,
                  progress=progress)
    if args.command == "transfer":
        kwargs.update(octaves=args.octaves, semitones=args.semitones, loudness_db=args.loudness_db,
                      auto=not args.no_auto, autotune=args.autotune, quiet_db=args.quiet_db,
                      mute=not args.no_mute)
    outputs = ([args.out] if len(args.audio) == 1 else
               [os.path.join(args.out, os.path.splitext(os.path.basename(a))[0] + ".wav")
                for a in args.audio])
    failed = []
    for path, out in zip(args.audio, outputs):
        try:
            result = process_audio(run, path, out, mode=args.command, **kwargs)
            print(json.dumps(result, indent=1))
        except ValueError as error:  # a bad file: report it, go on with the others
            log.error("%s: %s", path, error)
            failed.append(path)
    if failed:
        log.error("failed: %s", failed)
        return 1
    return 0


_ORIGINAL_NAMES = {
    "inference_original": ("AutoencoderInference", "parse_operative_config"),
    "inference_vst": ("VSTBaseModule", "VSTExtractFeatures", "VSTPredictControls",
                      "VSTStatelessPredictControls", "VSTSynthesize", "VSTSynthesizeHarmonic",
                      "VSTSynthesizeNoise"),
}


def __getattr__(name: str):
    """The original DDSP's inference names (`inference_original`, `inference_vst`),
    imported on first use so that importing this module stays free of TensorFlow."""
    import importlib

    for module, names in _ORIGINAL_NAMES.items():
        if name in names:
            return getattr(importlib.import_module(f"ddsp_models.training.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
