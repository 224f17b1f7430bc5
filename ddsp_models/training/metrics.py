"""Resynthesis and transcription metrics: pure functions of arrays (no model, no dataset).

Conventions: audio float32 `[batch, n_samples]` (1-D `[n_samples]` is one example) at
`sample_rate` Hz; frame features `[batch, n_frames]` (or `[batch, n_frames, 1]`) at
`frame_rate` Hz; piano rolls `[n_frames, 128]` (MIDI pitch on the last axis; a value > 0
means the note sounds, the value is its velocity in whatever unit the roll uses).

Audio metrics (`audio_metrics`, one value per example):
  spectral_loss     multi-scale `losses.SpectralLoss` (default arguments unless one is given)
                    between the example's audio and its resynthesis.
  loudness_l1_db    mean over frames of |loudness(resynthesis) - loudness_db|, dB, loudness
                    from `spectral_ops.compute_loudness(audio, sample_rate, frame_rate)` with
                    the defaults the features stage uses (A-weighted, n_fft 512, centred).
  f0_l1_semitones   CREPE (Viterbi) f0 of the resynthesis vs. the reference `f0_hz`, mean
                    |hz_to_midi(f0_gen) - hz_to_midi(f0_ref)| over the *confident frames*:
                    frames whose reference `f0_confidence >= min_f0_confidence`. NaN when an
                    example has no confident frame.
  f0_outlier_ratio  among the confident frames, the fraction where the resynthesis is an
                    outlier: its own CREPE confidence < min_f0_confidence, OR its pitch is more
                    than `outlier_semitones` away from the reference. NaN when there are no
                    confident frames. (Silence -> 1; a perfect resynthesis -> 0.)
  n_confident_frames  number of confident frames (float).

Note metrics (`note_metrics`): notes are maximal runs of active frames per pitch (split at
onsets when onset rolls are given); `mir_eval.transcription` matches them with a 50 ms onset
tolerance and 50 cents pitch tolerance, with offsets (`note_*`: offset within max(50 ms, 20%
of the note)) and without (`note_onset_*`). Frame metrics compare the two boolean rolls cell
by cell (exact pitch). Empty sets follow one rule everywhere: precision = matched / n_est and
recall = matched / n_ref with 0 / 0 := 1 (nothing to find / nothing claimed), F1 =
2 p r / (p + r) (0 when p + r = 0). So two empty rolls give 1, 1, 1; an empty estimate of a
non-empty reference gives precision 1, recall 0, F1 0; notes estimated where the reference has
none give precision 0, recall 1, F1 0.
"""
from __future__ import annotations

import numpy as np

from ddsp_models import core
from ddsp_models.checks import positive_float, positive_int
from ddsp_models.training.features import (
    N_PITCHES,
    NOTE_ONSETS,
    NOTE_VELOCITIES,
    as_array,
    reference_pianoroll,
)

AUDIO_METRIC_NAMES = ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio",
                      "n_confident_frames")


# --------------------------------------------------------------------------- helpers
def _batch_audio(audio, name: str) -> np.ndarray:
    audio = as_array(audio, name)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ValueError(f"{name}: expected [batch, n_samples] audio, got shape {audio.shape}")
    return audio


def _batch_frames(x, name: str, batch: int, n_frames: int | None = None) -> np.ndarray:
    """`[n_frames]`, `[batch, n_frames]` or `[batch, n_frames, 1]` -> `[batch, n_frames]`."""
    x = as_array(x, name)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != batch:
        raise ValueError(f"{name}: expected [{batch}, n_frames] frames, got shape {x.shape}")
    if n_frames is not None and x.shape[1] != n_frames:
        raise ValueError(f"{name}: expected {n_frames} frames, got {x.shape[1]}")
    return x


def _fit(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or edge-pad the last axis of `[batch, m]` to n_frames (centred framing gives +1)."""
    if x.shape[1] >= n_frames:
        return x[:, :n_frames]
    return np.pad(x, [(0, 0), (0, n_frames - x.shape[1])], mode="edge")


def hz_to_midi_np(f0_hz) -> np.ndarray:
    """`core.hz_to_midi` as numpy (0 Hz -> 0)."""
    return core.hz_to_midi(np.asarray(f0_hz, np.float32)).numpy()


def midi_to_hz_np(pitches) -> np.ndarray:
    """`core.midi_to_hz` as numpy."""
    return core.midi_to_hz(np.asarray(pitches, np.float32)).numpy()


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with 0 / 0 := 1 (see the module docstring)."""
    return 1.0 if denominator == 0 else float(numerator) / float(denominator)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------- audio metrics
def audio_metrics(audio, audio_gen, f0_hz, f0_confidence, loudness_db=None,
                  sample_rate: int = 16000, frame_rate: int = 250, crepe_capacity: str = "tiny",
                  min_f0_confidence: float = 0.85, outlier_semitones: float = 1.0,
                  spectral_loss=None, viterbi: bool = True) -> dict:
    """Per-example resynthesis metrics (definitions in the module docstring).

    Args:
      audio: reference audio `[batch, n_samples]` (or `[n_samples]`).
      audio_gen: resynthesis, same shape.
      f0_hz, f0_confidence: reference CREPE f0 (Hz) and confidence `[batch, n_frames]`.
      loudness_db: reference loudness `[batch, n_frames]`; None: computed from `audio`.
      crepe_capacity, viterbi: CREPE used on the resynthesis.
      min_f0_confidence: reference (and resynthesis) confidence threshold.
      outlier_semitones: pitch error above which a confident frame is an outlier.
      spectral_loss: a `losses.SpectralLoss` (or any callable (target, audio) -> scalar);
        None: `SpectralLoss()` with its defaults.

    Returns:
      {name: float32 `[batch]`} for the names in `AUDIO_METRIC_NAMES`.
    """
    from ddsp_models import crepe, losses, spectral_ops

    audio = _batch_audio(audio, "audio")
    audio_gen = _batch_audio(audio_gen, "audio_gen")
    if audio.shape != audio_gen.shape:
        raise ValueError(f"audio_gen: shape {audio_gen.shape} differs from audio's {audio.shape}")
    if not np.all(np.isfinite(audio_gen)):
        raise ValueError("audio_gen: contains NaN or inf")
    batch, n_samples = audio.shape
    f0_hz = _batch_frames(f0_hz, "f0_hz", batch)
    n_frames = f0_hz.shape[1]
    f0_confidence = _batch_frames(f0_confidence, "f0_confidence", batch, n_frames)

    # Spectral loss, one example at a time (the loss averages over its batch).
    if spectral_loss is None:
        spectral_loss = losses.SpectralLoss()
    spectral = np.array([float(spectral_loss(audio[i:i + 1], audio_gen[i:i + 1]))
                         for i in range(batch)],
                        np.float32)

    # Loudness as the features stage computes it.
    def loudness_of(x):
        value = spectral_ops.compute_loudness(x, sample_rate, frame_rate, use_tf=False)
        return _fit(np.asarray(value, np.float32).reshape(batch, -1), n_frames)

    if loudness_db is None:
        loudness_ref = loudness_of(audio)
    else:
        loudness_ref = _batch_frames(loudness_db, "loudness_db", batch, n_frames)
    loudness_l1 = np.mean(np.abs(loudness_of(audio_gen) - loudness_ref), axis=1)

    # Pitch of the resynthesis.
    f0_gen, conf_gen = crepe.compute_f0(audio_gen, sample_rate=sample_rate, frame_rate=frame_rate,
                                        viterbi=viterbi, capacity=crepe_capacity)
    f0_gen = _fit(np.asarray(f0_gen, np.float32).reshape(batch, -1), n_frames)
    conf_gen = _fit(np.asarray(conf_gen, np.float32).reshape(batch, -1), n_frames)
    confident = f0_confidence >= min_f0_confidence
    n_confident = confident.sum(axis=1)
    error = np.abs(hz_to_midi_np(f0_gen) - hz_to_midi_np(f0_hz))
    outlier = (conf_gen < min_f0_confidence) | (error > outlier_semitones)
    with np.errstate(invalid="ignore", divide="ignore"):
        f0_l1 = np.where(n_confident > 0, (error * confident).sum(axis=1) / n_confident, np.nan)
        outliers = np.where(n_confident > 0, (outlier & confident).sum(axis=1) / n_confident,
                            np.nan)
    return {
        "spectral_loss": spectral,
        "loudness_l1_db": loudness_l1.astype(np.float32),
        "f0_l1_semitones": f0_l1.astype(np.float32),
        "f0_outlier_ratio": outliers.astype(np.float32),
        "n_confident_frames": n_confident.astype(np.float32),
    }


# ------------------------------------------------------------------------ note metrics
def _pianoroll(x, name: str) -> np.ndarray:
    roll = as_array(x, name)
    if roll.ndim != 2 or roll.shape[1] != N_PITCHES:
        raise ValueError(f"{name}: expected a [n_frames, {N_PITCHES}] piano roll, got shape "
                         f"{roll.shape}")
    return roll


def pianoroll_to_notes(pianoroll, frame_rate: float = 250, min_frames: int = 1, onsets=None):
    """Notes of a frame-wise piano roll.

    A note is a maximal run of consecutive frames where `pianoroll[:, pitch] > 0`; with
    `onsets` (`[n_frames, 128]`, > 0 at a note's first frame) a run is also split where a new
    onset starts inside it. Runs shorter than `min_frames` are dropped. Frame i spans
    [i / frame_rate, (i + 1) / frame_rate) s.

    Returns:
      (intervals float64 `[n, 2]` (onset, offset) s, pitches int `[n]` MIDI, velocities
      float64 `[n]` (mean roll value over the note)), sorted by onset then pitch.
    """
    roll = _pianoroll(pianoroll, "pianoroll")
    positive_float("frame_rate", frame_rate)
    min_frames = positive_int("min_frames", min_frames)
    starts_extra = None if onsets is None else _pianoroll(onsets, "onsets") > 0
    if starts_extra is not None and starts_extra.shape != roll.shape:
        raise ValueError(f"onsets: shape {starts_extra.shape} differs from the roll's {roll.shape}")
    active = roll > 0
    notes = []
    for pitch in np.flatnonzero(active.any(axis=0)):
        column = active[:, pitch]
        padded = np.concatenate([[False], column, [False]])
        change = np.flatnonzero(padded[1:] != padded[:-1])
        for start, stop in zip(change[::2], change[1::2]):
            cuts = [start]
            if starts_extra is not None:
                inner = np.flatnonzero(starts_extra[start + 1:stop, pitch]) + start + 1
                cuts += [int(i) for i in inner]
            cuts.append(stop)
            for a, b in zip(cuts[:-1], cuts[1:]):
                if b - a >= int(min_frames):
                    notes.append((a / frame_rate, b / frame_rate, int(pitch),
                                  float(roll[a:b, pitch].mean())))
    notes.sort(key=lambda n: (n[0], n[2]))
    intervals = np.array([[n[0], n[1]] for n in notes], np.float64).reshape(-1, 2)
    pitches = np.array([n[2] for n in notes], np.int64)
    velocities = np.array([n[3] for n in notes], np.float64)
    return intervals, pitches, velocities


def _match_count(ref, est, offset_ratio, onset_tolerance, pitch_tolerance_cents) -> int:
    import mir_eval

    if len(ref[0]) == 0 or len(est[0]) == 0:
        return 0
    matches = mir_eval.transcription.match_notes(
        ref[0], midi_to_hz_np(ref[1]), est[0], midi_to_hz_np(est[1]),
        onset_tolerance=onset_tolerance,
        pitch_tolerance=pitch_tolerance_cents, offset_ratio=offset_ratio, offset_min_tolerance=0.05)
    return len(matches)


def note_metrics(reference, estimate, frame_rate: float = 250, min_frames: int = 1,
                 onset_tolerance: float = 0.05, pitch_tolerance_cents: float = 50.0) -> dict:
    """Note- and frame-level transcription scores of one example.

    Args:
      reference: ground-truth `[n_frames, 128]` roll, or one example's features dict (roll
        from `reference_pianoroll`; its `note_onsets` split repeated notes).
      estimate: estimated `[n_frames, 128]` roll (e.g. a MidiAutoencoder's 'pianoroll').
      frame_rate: frames per second of both rolls.
      min_frames: shortest note kept (frames).

    Returns:
      dict of floats: note_precision/recall/f1 (onset and offset matched),
      note_onset_precision/recall/f1 (onset only), frame_precision/recall/f1,
      n_ref_notes, n_est_notes, n_matched_notes, n_matched_onset_notes. Rules for empty
      rolls: module docstring (0 / 0 := 1).
    """
    onsets = None
    if isinstance(reference, dict):
        onsets = reference.get(NOTE_ONSETS)
        ref_roll = _pianoroll(reference_pianoroll(reference), NOTE_VELOCITIES)
    else:
        ref_roll = _pianoroll(reference, "reference")
    est_roll = _pianoroll(estimate, "estimate")
    if est_roll.shape != ref_roll.shape:
        raise ValueError(f"estimate: shape {est_roll.shape} differs from the reference's "
                         f"{ref_roll.shape}")
    ref = pianoroll_to_notes(ref_roll, frame_rate, min_frames, onsets=onsets)
    est = pianoroll_to_notes(est_roll, frame_rate, min_frames)
    n_ref, n_est = len(ref[1]), len(est[1])
    result = {"n_ref_notes": float(n_ref), "n_est_notes": float(n_est)}
    for prefix, offset_ratio in (("note_", 0.2), ("note_onset_", None)):
        matched = _match_count(ref, est, offset_ratio, onset_tolerance, pitch_tolerance_cents)
        precision, recall = _ratio(matched, n_est), _ratio(matched, n_ref)
        result.update({f"{prefix}precision": precision, f"{prefix}recall": recall,
                       f"{prefix}f1": _f1(precision, recall)})
        result["n_matched_notes" if offset_ratio else "n_matched_onset_notes"] = float(matched)
    ref_active, est_active = ref_roll > 0, est_roll > 0
    hits = float(np.sum(ref_active & est_active))
    precision, recall = _ratio(hits, est_active.sum()), _ratio(hits, ref_active.sum())
    result.update(frame_precision=precision, frame_recall=recall, frame_f1=_f1(precision, recall))
    return result


__all__ = ["AUDIO_METRIC_NAMES", "audio_metrics", "note_metrics", "pianoroll_to_notes", "as_array",
           "hz_to_midi_np", "midi_to_hz_np"]
