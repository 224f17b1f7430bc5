"""MIDI melodies and note lists: the built-in dataset of the ``prepare`` stage, and the
note annotations of clips.

The built-in dataset: monophonic MIDI melodies for a few General MIDI instruments. Each
melody is a sequence of phrases (legato or detached notes, a rest between phrases)
drawn from a major or minor scale inside the instrument's comfortable range, with phrase-
level dynamics (velocity crescendo / diminuendo) and vibrato as MIDI pitch bends on longer
notes. `render_melody` synthesises one with FluidSynth through a General MIDI SoundFont
(pretty_midi's bundled ``TimGM6mb.sf2`` by default).

`note_list` reads the notes of any MIDI file; `clip_notes` cuts them to a clip.
Times are in seconds, pitches are MIDI note numbers, velocities 1..127.
"""
import dataclasses
import os

import numpy as np
import pretty_midi

# Pitch-bend units per cent with the General MIDI default bend range of +-2 semitones.
_BEND_PER_CENT = 8192 / 200.0


@dataclasses.dataclass(frozen=True)
class InstrumentSpec:
    """A General MIDI instrument and how melodies for it are drawn.

    Attributes:
      program: General MIDI program number, 0-based (40 = violin).
      low, high: MIDI pitch range of the melodies (inclusive).
      vibrato_cents: peak vibrato depth in cents (0: none).
      vibrato_hz: vibrato rate in Hz.
      legato: probability that a phrase is played legato.
    """
    program: int
    low: int
    high: int
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    legato: float = 0.6


INSTRUMENTS = {
    "violin": InstrumentSpec(40, 55, 88, vibrato_cents=25.0, vibrato_hz=5.8, legato=0.7),
    "viola": InstrumentSpec(41, 48, 79, vibrato_cents=25.0, vibrato_hz=5.5, legato=0.7),
    "cello": InstrumentSpec(42, 36, 69, vibrato_cents=25.0, vibrato_hz=5.2, legato=0.7),
    "flute": InstrumentSpec(73, 60, 93, vibrato_cents=15.0, vibrato_hz=5.0, legato=0.6),
    "clarinet": InstrumentSpec(71, 50, 84, vibrato_cents=0.0, legato=0.6),
    "oboe": InstrumentSpec(68, 58, 88, vibrato_cents=12.0, vibrato_hz=5.5, legato=0.6),
    "bassoon": InstrumentSpec(70, 34, 67, vibrato_cents=10.0, vibrato_hz=5.0, legato=0.6),
    "trumpet": InstrumentSpec(56, 55, 82, vibrato_cents=10.0, vibrato_hz=5.5, legato=0.4),
    "trombone": InstrumentSpec(57, 40, 72, vibrato_cents=8.0, vibrato_hz=5.0, legato=0.5),
    "french_horn": InstrumentSpec(60, 41, 77, vibrato_cents=0.0, legato=0.6),
    "alto_sax": InstrumentSpec(65, 49, 81, vibrato_cents=18.0, vibrato_hz=5.5, legato=0.6),
}

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Note lengths in beats and their odds.
_BEATS = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
_BEAT_ODDS = np.array([0.3, 0.35, 0.1, 0.17, 0.08])
# Melodic steps in scale degrees and their odds (mostly steps, some leaps).
_STEPS = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
_STEP_ODDS = np.array([0.04, 0.05, 0.14, 0.22, 0.1, 0.22, 0.14, 0.05, 0.04])


def default_soundfont() -> str:
    """Path of pretty_midi's bundled General MIDI SoundFont (TimGM6mb.sf2)."""
    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


def instrument_spec(name: str) -> InstrumentSpec:
    """The `InstrumentSpec` of a named instrument; ValueError naming the known ones."""
    if name not in INSTRUMENTS:
        raise ValueError(f"instrument {name!r} unknown; expected one of {sorted(INSTRUMENTS)}")
    return INSTRUMENTS[name]


def _scale_pitches(low: int, high: int, tonic: int, mode: str) -> np.ndarray:
    steps = _SCALES[mode]
    return np.array([p for p in range(low, high + 1) if (p - tonic) % 12 in steps])


def _add_vibrato(instrument: pretty_midi.Instrument, start: float, end: float,
                 spec: InstrumentSpec, rng: np.random.Generator, bend_rate: float = 60.0):
    """Sinusoidal pitch bends over [start, end) after a short delay, back to 0 at the end."""
    delay = 0.15 + 0.1 * rng.random()
    if spec.vibrato_cents <= 0 or end - start < delay + 0.2:
        return
    depth = spec.vibrato_cents * (0.6 + 0.4 * rng.random())
    rate = spec.vibrato_hz * (0.9 + 0.2 * rng.random())
    times = np.arange(start + delay, end - 0.02, 1.0 / bend_rate)
    ramp = np.clip((times - start - delay) / 0.3, 0.0, 1.0)  # vibrato fades in over 0.3 s
    cents = depth * ramp * np.sin(2 * np.pi * rate * (times - start - delay))
    for t, c in zip(times, cents):
        instrument.pitch_bends.append(
            pretty_midi.PitchBend(int(np.clip(round(c * _BEND_PER_CENT), -8192, 8191)), float(t)))
    instrument.pitch_bends.append(pretty_midi.PitchBend(0, float(end - 0.01)))


def generate_melody(instrument: str, duration: float, seed: int,
                    tempo_range=(72.0, 132.0)) -> pretty_midi.PrettyMIDI:
    """A random monophonic melody for ``instrument`` lasting about ``duration`` seconds.

    Phrases of 3-9 notes move by scale steps (occasional leaps) within the instrument range;
    a phrase is legato (each note ends where the next starts) or detached (notes held for
    55-90 % of their length); phrases are separated by rests of 0.25-1.2 s and start at
    0.1-0.4 s. Velocities follow a phrase-level crescendo or diminuendo with jitter.
    Vibrato: pitch bends (range +-2 semitones) on notes longer than ~0.35 s.

    Args:
      instrument: a key of `INSTRUMENTS`.
      duration: target length in seconds; no note ends after it.
      seed: random seed (same seed, same melody).
      tempo_range: tempo bounds in beats per minute.
    """
    spec = instrument_spec(instrument)
    if duration <= 1.0:
        raise ValueError(f"duration must be > 1 s, got {duration}")
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(0, 12))
    pitches = _scale_pitches(spec.low, spec.high, tonic, str(rng.choice(list(_SCALES))))
    beat = 60.0 / rng.uniform(*tempo_range)

    midi = pretty_midi.PrettyMIDI(initial_tempo=60.0 / beat)
    track = pretty_midi.Instrument(program=spec.program, name=instrument)
    index = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
    time = float(rng.uniform(0.1, 0.4))
    while True:
        n_notes = int(rng.integers(3, 10))
        legato = rng.random() < spec.legato
        v_start, v_end = rng.integers(40, 121, size=2)
        phrase_end = time
        for k in range(n_notes):
            length = float(rng.choice(_BEATS, p=_BEAT_ODDS)) * beat
            if time + length > duration - 0.05:
                break
            step = int(rng.choice(_STEPS, p=_STEP_ODDS))
            index = int(np.clip(index + step, 0, len(pitches) - 1))
            held = length if legato else length * rng.uniform(0.55, 0.9)
            velocity = v_start + (v_end - v_start) * k / max(n_notes - 1, 1)
            velocity = int(np.clip(velocity + rng.normal(0, 5), 20, 127))
            note = pretty_midi.Note(velocity, int(pitches[index]), time, time + held)
            track.notes.append(note)
            _add_vibrato(track, note.start, note.end, spec, rng)
            time += length
            phrase_end = note.end
        else:
            time = phrase_end + float(rng.uniform(0.25, 1.2))
            if time < duration - 0.5:
                continue
        break
    if not track.notes:  # a very slow draw: at least one note
        track.notes.append(pretty_midi.Note(80, int(pitches[index]), 0.1, min(1.0, duration)))
    track.pitch_bends.sort(key=lambda b: b.time)
    midi.instruments.append(track)
    return midi


def render_melody(midi: pretty_midi.PrettyMIDI, sample_rate: int = 16000,
                  soundfont: str | None = None, duration: float | None = None,
                  gain: float = 6.0) -> np.ndarray:
    """Synthesises ``midi`` with FluidSynth; returns float32 mono audio ``[n_samples]``.

    Levels are kept absolute (no peak normalisation) so velocities stay audible as
    dynamics: the raw 16-bit-scaled output is multiplied by ``gain`` and clipped to [-1, 1].
    ``duration`` (seconds) trims or zero-pads the result (default: render length).
    """
    soundfont = soundfont or default_soundfont()
    if not os.path.isfile(soundfont):
        raise ValueError(f"soundfont {soundfont!r} is not a file")
    audio = midi.fluidsynth(fs=sample_rate, synthesizer=soundfont, normalize=False)
    audio = np.clip(np.asarray(audio, np.float64) * gain, -1.0, 1.0).astype(np.float32)
    if duration is not None:
        n = int(round(duration * sample_rate))
        audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    return audio


def note_list(midi: pretty_midi.PrettyMIDI) -> list[dict]:
    """All notes as dicts: pitch, velocity, start, end (s), program, instrument name."""
    notes = []
    for track in midi.instruments:
        for note in track.notes:
            notes.append({"pitch": int(note.pitch), "velocity": int(note.velocity),
                          "start": float(note.start), "end": float(note.end),
                          "program": int(track.program), "is_drum": bool(track.is_drum)})
    return sorted(notes, key=lambda n: (n["start"], n["pitch"]))


def clip_notes(notes: list[dict], start: float, duration: float) -> list[dict]:
    """Notes overlapping [start, start + duration) (seconds), with times relative to the
    clip start and cut to [0, duration]; ``onset``/``offset`` tell whether the note really
    starts/ends inside the clip (False where the cut made the boundary)."""
    out = []
    for note in notes:
        s, e = note["start"] - start, note["end"] - start
        if e <= 0.0 or s >= duration:
            continue
        out.append({"pitch": note["pitch"], "velocity": note["velocity"],
                    "start": round(max(s, 0.0), 6), "end": round(min(e, duration), 6),
                    "onset": bool(s >= 0.0), "offset": bool(e <= duration),
                    "program": note.get("program", -1)})
    return out
