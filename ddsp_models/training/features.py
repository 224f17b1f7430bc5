"""The features of one clip (the contract of the ``features`` stage, the TFDS dataset and
the models' inputs).

At ``frame_rate`` Hz over ``n_frames = n_samples * frame_rate // sample_rate`` frames:

- ``audio`` float32 ``[n_samples]`` (mono, ``sample_rate`` Hz),
- `FRAME_FEATURES`: ``f0_hz``, ``f0_confidence`` float32 ``[n_frames]`` (CREPE,
  Viterbi-decoded), ``loudness_db`` (A-weighted), ``power_db`` float32 ``[n_frames]``,
- ``instrument_id`` int64 scalar (General MIDI program, -1 when unknown),
- for clips with note annotations, `MIDI_FEATURES`, each float32 ``[n_frames, 128]``
  (MIDI pitch on the last axis): ``note_active_velocities`` (MIDI velocity 1..127 where a
  note sounds, 0 elsewhere: the unit the MIDI models, `ddsp_models.training.midi` and the
  decoders read), ``note_active_frame_indices`` (1 where a note sounds), ``note_onsets``
  (1 at a note's first frame), ``note_offsets`` (1 at its last frame). Frame ``i`` is at
  ``i / frame_rate`` s and a note sounds on the frames with ``start <= t < end``; cut
  boundaries (a note entering or leaving the clip) get no onset / offset.
"""
import numpy as np

N_PITCHES = 128
FRAME_FEATURES = ("f0_hz", "f0_confidence", "loudness_db", "power_db")
MIDI_FEATURES = ("note_active_velocities", "note_active_frame_indices", "note_onsets",
                 "note_offsets")
FEATURE_VERSION = 2  # bump when this module's maths changes: the features stage recomputes


def n_frames_of(n_samples: int, sample_rate: int, frame_rate: int) -> int:
    """Frames covering ``n_samples``: ``n_samples * frame_rate // sample_rate``."""
    return int(n_samples) * int(frame_rate) // int(sample_rate)


def fit_frames(x, n_frames: int, name: str) -> np.ndarray:
    """A frame feature as float32 ``[n_frames]``: trims or edge-pads up to 2 frames of
    difference (centred vs. uncentred framing); more is an error naming ``name``."""
    x = np.asarray(x, np.float32).reshape(-1)
    if abs(len(x) - n_frames) > 2:
        raise ValueError(f"{name}: got {len(x)} frames, expected {n_frames}")
    if len(x) >= n_frames:
        return x[:n_frames]
    return np.pad(x, (0, n_frames - len(x)), mode="edge")


def _first_frame_at_or_after(t: float, frame_rate: int) -> int:
    return int(np.ceil(t * frame_rate - 1e-6))


def midi_frame_features(notes: list[dict], n_frames: int, frame_rate: int = 250) -> dict:
    """The MIDI feature contract from clip-relative notes (module docstring).

    Args:
      notes: dicts with ``pitch`` (0..127), ``velocity`` (1..127), ``start``/``end`` (s,
        relative to the clip) and optional ``onset``/``offset`` flags (False where the
        clip boundary cut the note; default True).
      n_frames: frames of the clip.
      frame_rate: frames per second.

    Returns:
      dict of float32 ``[n_frames, 128]`` arrays named as `MIDI_FEATURES`.
    """
    velocities = np.zeros((n_frames, N_PITCHES), np.float32)
    active = np.zeros((n_frames, N_PITCHES), np.float32)
    onsets = np.zeros((n_frames, N_PITCHES), np.float32)
    offsets = np.zeros((n_frames, N_PITCHES), np.float32)
    for note in notes:
        pitch = int(note["pitch"])
        if not 0 <= pitch < N_PITCHES:
            raise ValueError(f"note pitch must be in 0..127, got {pitch}")
        first = max(_first_frame_at_or_after(float(note["start"]), frame_rate), 0)
        stop = min(_first_frame_at_or_after(float(note["end"]), frame_rate), n_frames)
        if stop <= first:
            continue
        velocity = float(note["velocity"])
        if not 0.0 < velocity <= 127.0:
            raise ValueError(f"note velocity must be in 1..127 (MIDI), got {note['velocity']} "
                             f"(pitch {pitch} at {note['start']} s)")
        velocities[first:stop, pitch] = np.maximum(velocities[first:stop, pitch], velocity)
        active[first:stop, pitch] = 1.0
        if note.get("onset", True):
            onsets[first, pitch] = 1.0
        if note.get("offset", True):
            offsets[stop - 1, pitch] = 1.0
    return dict(zip(MIDI_FEATURES, (velocities, active, onsets, offsets)))


def compute_clip_features(audio: np.ndarray, sample_rate: int = 16000, frame_rate: int = 250,
                          crepe_capacity: str = "tiny", crepe_viterbi: bool = True,
                          notes: list[dict] | None = None, instrument_id: int = -1) -> dict:
    """All features of one mono clip ``audio`` float32 ``[n_samples]`` at ``sample_rate``
    Hz (module docstring); ``notes`` (clip-relative, `midi_frame_features`) add the MIDI
    features."""
    from ddsp_models import crepe, spectral_ops

    audio = np.asarray(audio, np.float32).reshape(-1)
    n_frames = n_frames_of(len(audio), sample_rate, frame_rate)
    if n_frames < 1:
        raise ValueError(f"audio of {len(audio)} samples is shorter than one frame")
    f0_hz, f0_confidence = crepe.compute_f0(audio, sample_rate=sample_rate, frame_rate=frame_rate,
                                            viterbi=crepe_viterbi, capacity=crepe_capacity)
    loudness = spectral_ops.compute_loudness(audio, sample_rate, frame_rate)
    power = spectral_ops.compute_power(audio, sample_rate, frame_rate)
    features = {
        "audio": audio,
        "f0_hz": fit_frames(f0_hz, n_frames, "f0_hz"),
        "f0_confidence": fit_frames(f0_confidence, n_frames, "f0_confidence"),
        "loudness_db": fit_frames(loudness, n_frames, "loudness_db"),
        "power_db": fit_frames(power, n_frames, "power_db"),
        "instrument_id": np.int64(instrument_id),
    }
    if notes is not None:
        features.update(midi_frame_features(notes, n_frames, frame_rate))
    return features
