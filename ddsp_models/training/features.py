"""The feature contract: names, shapes, units and frame counts of the features every part of
the project writes or reads (the `features` and `dataset` stages, the TFDS builder, the data
providers, the models, evaluation and inference).

One example (a clip of ``n_samples`` at `SAMPLE_RATE` Hz, frames at `FRAME_RATE` Hz):

==============================  =====================  ========================================
key                             shape, dtype           meaning
==============================  =====================  ========================================
``audio``                       ``[n_samples]`` f32    mono audio in [-1, 1]
``f0_hz``                       ``[n_frames]`` f32     fundamental frequency (CREPE), Hz
``f0_confidence``               ``[n_frames]`` f32     CREPE confidence in [0, 1]
``loudness_db``                 ``[n_frames]`` f32     A-weighted loudness, dB
``power_db``                    ``[n_frames]`` f32     frame power, dB
``instrument_id``               ``[]`` int64           General MIDI program, -1 unknown
``note_active_velocities``      ``[n_frames, 128]``    MIDI velocity 1..127 where a note sounds
``note_active_frame_indices``   ``[n_frames, 128]``    1 where a note sounds, else 0
``note_onsets``                 ``[n_frames, 128]``    1 at a note's first frame
``note_offsets``                ``[n_frames, 128]``    1 at a note's last frame
==============================  =====================  ========================================

The last axis of the note rolls is the MIDI pitch (`N_PITCHES` = 128 note numbers 0..127).
Batches put the batch axis first. ``n_frames = floor(n_samples * frame_rate / sample_rate)``
(`n_frames_of`): 4 s at 16 kHz and 250 Hz = 64000 samples = 1000 frames; frame ``i`` is at
``i / frame_rate`` s. Features computed with other framings (centred frames: one frame more)
are brought to that count by `fit_frames`. Velocities keep MIDI units everywhere (0 = silent,
`MAX_VELOCITY` = 127); networks read them scaled by ``1 / MAX_VELOCITY``.

Only numpy is imported here, so the pipeline stages can use the contract without TensorFlow.
"""
from __future__ import annotations

import numbers
import sys
from fractions import Fraction

import numpy as np

from ddsp_models.checks import positive_float

SAMPLE_RATE = 16000  # Hz, default audio rate
FRAME_RATE = 250  # Hz, default rate of the frame features
SPLITS = ("train", "valid", "test")  # dataset splits, in this order

AUDIO = "audio"
INSTRUMENT_ID = "instrument_id"
UNKNOWN_INSTRUMENT = -1  # instrument_id of clips whose instrument is not known
FRAME_FEATURES = ("f0_hz", "f0_confidence", "loudness_db", "power_db")
MIDI_FEATURES = ("note_active_velocities", "note_active_frame_indices", "note_onsets",
                 "note_offsets")
NOTE_VELOCITIES, NOTE_ACTIVE, NOTE_ONSETS, NOTE_OFFSETS = MIDI_FEATURES

N_PITCHES = 128  # MIDI note numbers 0..127: the last axis of every note roll
MAX_VELOCITY = 127.0  # MIDI velocity of the loudest note; note rolls hold 1..127 (0 = silent)
# Bump when the features' maths changes (the note rolls here, or f0 / loudness / power in
# `ddsp_models.training.feature_extraction`): the features stage then recomputes its clips.
FEATURE_VERSION = 3  # 3: loudness and power with the original DDSP defaults (80 dB range, 512-sample power frames)


# ---------------------------------------------------------------------------- frames
def n_frames_of(n_samples: int, sample_rate: float = SAMPLE_RATE,
                frame_rate: float = FRAME_RATE) -> int:
    """Frames of a clip of `n_samples` at `sample_rate` Hz: floor(n_samples * frame_rate /
    sample_rate) (exact, also for non-integer rates)."""
    positive_float("sample_rate (Hz)", sample_rate)
    positive_float("frame_rate (Hz)", frame_rate)
    return int(int(n_samples) * _exact(frame_rate) // _exact(sample_rate))


def _exact(rate) -> Fraction:
    return Fraction(rate) if isinstance(rate, numbers.Rational) else Fraction(float(rate))


def fit_frames(x, n_frames: int, name: str, tolerance: int = 2) -> np.ndarray:
    """A frame feature as float32 ``[n_frames]``: trims, or repeats the last value, when it
    has up to `tolerance` frames too many or too few (centred vs. uncentred framing); a
    larger difference is a ValueError naming `name` (a wrong frame or sample rate)."""
    x = np.asarray(x, np.float32).reshape(-1)
    if abs(len(x) - n_frames) > tolerance:
        raise ValueError(f"{name}: got {len(x)} frames, expected {n_frames}")
    if len(x) >= n_frames:
        return x[:n_frames]
    return np.pad(x, (0, n_frames - len(x)), mode="edge")


def frame_at_or_after(seconds: float, frame_rate: float = FRAME_RATE) -> int:
    """Index of the first frame at or after time `seconds` (frame i is at i / frame_rate s;
    a microsecond of slack absorbs rounding in note times)."""
    return int(np.ceil(seconds * frame_rate - 1e-6))


# ------------------------------------------------------------------------ note rolls
def midi_frame_features(notes: list[dict], n_frames: int, frame_rate: float = FRAME_RATE) -> dict:
    """The note rolls (`MIDI_FEATURES`) of one clip from its notes.

    A note sounds on the frames whose time t satisfies ``start <= t < end``; it gets an
    onset (offset) on its first (last) frame unless the clip boundary cut it there.

    Args:
      notes: dicts with ``pitch`` (0..127), ``velocity`` (1..127), ``start``/``end`` (s,
        relative to the clip) and optional ``onset``/``offset`` flags (False where the
        clip boundary cut the note; default True).
      n_frames: frames of the clip.
      frame_rate: frames per second.

    Returns:
      dict of float32 ``[n_frames, 128]`` arrays named as `MIDI_FEATURES`; overlapping notes
      of one pitch keep the larger velocity.
    """
    velocities = np.zeros((n_frames, N_PITCHES), np.float32)
    active = np.zeros((n_frames, N_PITCHES), np.float32)
    onsets = np.zeros((n_frames, N_PITCHES), np.float32)
    offsets = np.zeros((n_frames, N_PITCHES), np.float32)
    for note in notes:
        pitch = int(note["pitch"])
        if not 0 <= pitch < N_PITCHES:
            raise ValueError(f"note pitch must be in 0..{N_PITCHES - 1}, got {pitch}")
        first = max(frame_at_or_after(float(note["start"]), frame_rate), 0)
        stop = min(frame_at_or_after(float(note["end"]), frame_rate), n_frames)
        if stop <= first:
            continue
        velocity = float(note["velocity"])
        if not 0.0 < velocity <= MAX_VELOCITY:
            raise ValueError(f"note velocity must be in 1..{MAX_VELOCITY:g} (MIDI), got "
                             f"{note['velocity']} (pitch {pitch} at {note['start']} s)")
        velocities[first:stop, pitch] = np.maximum(velocities[first:stop, pitch], velocity)
        active[first:stop, pitch] = 1.0
        if note.get("onset", True):
            onsets[first, pitch] = 1.0
        if note.get("offset", True):
            offsets[stop - 1, pitch] = 1.0
    return dict(zip(MIDI_FEATURES, (velocities, active, onsets, offsets)))


def empty_midi_features(n_frames: int, batch_size: int | None = None) -> dict:
    """All-zero note rolls (`MIDI_FEATURES`), float32 ``[n_frames, 128]`` or
    ``[batch_size, n_frames, 128]``: a clip without notes."""
    shape = (n_frames, N_PITCHES) if batch_size is None else (batch_size, n_frames, N_PITCHES)
    return {key: np.zeros(shape, np.float32) for key in MIDI_FEATURES}


def reference_pianoroll(features: dict):
    """The ground-truth piano roll of features: `note_active_velocities` where
    `note_active_frame_indices` > 0 (the velocities alone when the indices are absent).

    Args:
      features: dict holding ``note_active_velocities`` ``[..., n_frames, 128]`` (and
        optionally ``note_active_frame_indices`` of the same shape): numpy arrays (or
        lists), or TensorFlow tensors.

    Returns:
      float32 ``[..., n_frames, 128]``, MIDI velocity where a note sounds, 0 elsewhere: a
      numpy array, or a tensor when the velocities are a tensor (differentiable in them).
    """
    if NOTE_VELOCITIES not in features:
        raise ValueError(f"features: need {NOTE_VELOCITIES!r} [n_frames, {N_PITCHES}] "
                         f"(have {sorted(features)})")
    velocities = features[NOTE_VELOCITIES]
    active = features.get(NOTE_ACTIVE)
    if _is_tensor(velocities):
        import tensorflow as tf

        roll = tf.cast(velocities, tf.float32)
        _check_roll(roll.shape, NOTE_VELOCITIES)
        if active is not None:
            active = tf.cast(active, tf.float32)
            _check_roll(active.shape, NOTE_ACTIVE)
            roll = roll * tf.cast(active > 0.0, tf.float32)
        return roll
    roll = as_array(velocities, NOTE_VELOCITIES)
    _check_roll(roll.shape, NOTE_VELOCITIES)
    if active is not None:
        active = as_array(active, NOTE_ACTIVE)
        _check_roll(active.shape, NOTE_ACTIVE)
        roll = roll * (active > 0)
    return roll


def _is_tensor(x) -> bool:
    """Whether `x` is a TensorFlow tensor (without importing TensorFlow)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and tf.is_tensor(x)


def as_array(value, name: str) -> np.ndarray:
    """A tensor / array / list as a float32 numpy array (ValueError naming `name`)."""
    if value is None:
        raise ValueError(f"{name}: expected an array, got None")
    if hasattr(value, "numpy"):
        value = value.numpy()
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__}") from error


def _check_roll(shape, name: str) -> None:
    shape = tuple(shape)
    if len(shape) < 2 or shape[-1] != N_PITCHES:
        raise ValueError(f"{name}: expected a [..., n_frames, {N_PITCHES}] note roll, "
                         f"got shape {shape}")
