"""Evaluation of resynthesis models: audio and note metrics, their summary, timbre transfer.

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

import contextlib
import logging
import time

import numpy as np

from ddsp_models import core, seeding
from ddsp_models.training.features import N_PITCHES, NOTE_ACTIVE, NOTE_ONSETS, NOTE_VELOCITIES, \
    reference_pianoroll

log = logging.getLogger(__name__)

DEFAULT_QUIET_DB = -50.0  # compute_loudness dB; a 0.5-amplitude sine is about +10 dB.
AUDIO_METRIC_NAMES = ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio",
                      "n_confident_frames")


# --------------------------------------------------------------------------- helpers
def _numpy(value, name: str) -> np.ndarray:
    """A tensor / array / list as a float32 numpy array (ValueError naming `name`)."""
    if value is None:
        raise ValueError(f"{name}: expected an array, got None")
    if hasattr(value, "numpy"):
        value = value.numpy()
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__}") from error


def _batch_audio(audio, name: str) -> np.ndarray:
    audio = _numpy(audio, name)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ValueError(f"{name}: expected [batch, n_samples] audio, got shape {audio.shape}")
    return audio


def _batch_frames(x, name: str, batch: int, n_frames: int | None = None) -> np.ndarray:
    """`[n_frames]`, `[batch, n_frames]` or `[batch, n_frames, 1]` -> `[batch, n_frames]`."""
    x = _numpy(x, name)
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


def _hz_to_midi_np(f0_hz) -> np.ndarray:
    """`core.hz_to_midi` as numpy (0 Hz -> 0)."""
    return core.hz_to_midi(np.asarray(f0_hz, np.float32)).numpy()


def _midi_to_hz_np(pitches) -> np.ndarray:
    """`core.midi_to_hz` as numpy."""
    return core.midi_to_hz(np.asarray(pitches, np.float32)).numpy()


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with 0 / 0 := 1 (see the module docstring)."""
    return 1.0 if denominator == 0 else float(numerator) / float(denominator)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------- audio metrics
def audio_metrics(audio, audio_gen, f0_hz, f0_confidence, loudness_db=None, sample_rate: int = 16000,
                  frame_rate: int = 250, crepe_capacity: str = "tiny", min_f0_confidence: float = 0.85,
                  outlier_semitones: float = 1.0, spectral_loss=None, viterbi: bool = True) -> dict:
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
    spectral = np.array([float(spectral_loss(audio[i:i + 1], audio_gen[i:i + 1])) for i in range(batch)],
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
    error = np.abs(_hz_to_midi_np(f0_gen) - _hz_to_midi_np(f0_hz))
    outlier = (conf_gen < min_f0_confidence) | (error > outlier_semitones)
    with np.errstate(invalid="ignore", divide="ignore"):
        f0_l1 = np.where(n_confident > 0, (error * confident).sum(axis=1) / n_confident, np.nan)
        outliers = np.where(n_confident > 0, (outlier & confident).sum(axis=1) / n_confident, np.nan)
    return {
        "spectral_loss": spectral,
        "loudness_l1_db": loudness_l1.astype(np.float32),
        "f0_l1_semitones": f0_l1.astype(np.float32),
        "f0_outlier_ratio": outliers.astype(np.float32),
        "n_confident_frames": n_confident.astype(np.float32),
    }


# ------------------------------------------------------------------------ note metrics
def _pianoroll(x, name: str) -> np.ndarray:
    roll = _numpy(x, name)
    if roll.ndim != 2 or roll.shape[1] != N_PITCHES:
        raise ValueError(f"{name}: expected a [n_frames, {N_PITCHES}] piano roll, got shape {roll.shape}")
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
    if frame_rate <= 0:
        raise ValueError(f"frame_rate: must be > 0, got {frame_rate}")
    if int(min_frames) < 1:
        raise ValueError(f"min_frames: must be >= 1, got {min_frames}")
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
                cuts += [int(i) for i in np.flatnonzero(starts_extra[start + 1:stop, pitch]) + start + 1]
            cuts.append(stop)
            for a, b in zip(cuts[:-1], cuts[1:]):
                if b - a >= int(min_frames):
                    notes.append((a / frame_rate, b / frame_rate, int(pitch), float(roll[a:b, pitch].mean())))
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
        ref[0], _midi_to_hz_np(ref[1]), est[0], _midi_to_hz_np(est[1]), onset_tolerance=onset_tolerance,
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
        raise ValueError(f"estimate: shape {est_roll.shape} differs from the reference's {ref_roll.shape}")
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


# -------------------------------------------------------------------------- summaries
class MetricsAccumulator:
    """Collects per-example metric values and summarises them.

    `add({name: values})` appends the values (scalar or any shape; flattened). `summary()`
    gives, per name, {'mean', 'median', 'std' (population), 'n' (finite values), 'n_nan'
    (NaN / inf values, ignored by the statistics)} as plain Python floats / ints; the
    statistics are None when a metric has no finite value (JSON has no NaN). `flat()` gives
    {name: mean} plus {'n_examples': examples added} for DVC-style metrics files.
    """

    def __init__(self):
        self._values: dict[str, list[np.ndarray]] = {}
        self.n_examples = 0

    def add(self, metrics: dict) -> None:
        if not isinstance(metrics, dict):
            raise TypeError(f"metrics: expected a dict of per-example arrays, got {type(metrics).__name__}")
        sizes = set()
        for name, value in metrics.items():
            array = _numpy(value, f"metrics[{name!r}]").reshape(-1)
            self._values.setdefault(str(name), []).append(array)
            sizes.add(array.size)
        if sizes:
            self.n_examples += max(sizes)

    def values(self, name: str) -> np.ndarray:
        """All values of `name` added so far (float32 1-D)."""
        if name not in self._values:
            raise KeyError(f"no metric {name!r} (have {sorted(self._values)})")
        return np.concatenate(self._values[name])

    def summary(self) -> dict:
        result = {}
        for name in sorted(self._values):
            values = self.values(name).astype(np.float64)
            finite = values[np.isfinite(values)]
            stats = {"mean": None, "median": None, "std": None}
            if finite.size:
                stats = {"mean": float(finite.mean()), "median": float(np.median(finite)),
                         "std": float(finite.std())}
            result[name] = {**stats, "n": int(finite.size), "n_nan": int(values.size - finite.size)}
        return result

    def flat(self) -> dict:
        flat = {name: stats["mean"] for name, stats in self.summary().items()}
        flat["n_examples"] = int(self.n_examples)
        return flat


# ------------------------------------------------------------------------ evaluation
def _feature_rolls(batch: dict, index: int) -> dict:
    return {key: _numpy(batch[key], key)[index] for key in
            (NOTE_VELOCITIES, NOTE_ACTIVE, NOTE_ONSETS) if key in batch}


def evaluate_model(model, batches, sample_rate: int = 16000, frame_rate: int = 250,
                   crepe_capacity: str = "tiny", midi: bool = False, min_f0_confidence: float = 0.85,
                   outlier_semitones: float = 1.0, spectral_loss=None, max_batches: int | None = None,
                   log_every_s: float = 10.0, return_accumulator: bool = False,
                   seed: int | None = 0):
    """Metrics of a model over feature batches.

    For each batch (dict of numpy arrays / tensors with 'audio', 'f0_hz', 'f0_confidence' and
    optional 'loudness_db'): `outputs = model(batch, training=False)`, audio =
    `model.get_audio_from_outputs(outputs)` (for a MidiAutoencoder, 'midi_audio', the audio
    resynthesised from MIDI), and `audio_metrics`. With `midi=True`, also `note_metrics`
    per example between the ground truth (features' note_active_velocities where
    note_active_frame_indices > 0, split at note_onsets) and the model's
    `outputs['pianoroll']` `[batch, n_frames, 128]` (velocity at round(q_pitch) where
    q_vel > 0). A progress line (batches, examples, examples/s) is logged every
    `log_every_s` seconds and at the end. The model's random draws (filtered noise, noise
    reverb) are seeded by `[seed, batch index]` (`seeding.seed_scope`), so evaluating the same
    weights on the same batches twice gives the same metrics; `seed=None` draws fresh noise.

    Returns:
      `MetricsAccumulator.summary()` ({metric: {'mean','median','std','n','n_nan'}}); with
      `return_accumulator`, (summary, accumulator).
    """
    accumulator = MetricsAccumulator()
    start = last_log = time.monotonic()
    n_batches = 0
    for batch in batches:
        if max_batches is not None and n_batches >= max_batches:
            break
        if not isinstance(batch, dict):
            raise TypeError(f"batches: each batch must be a dict of features, got {type(batch).__name__}")
        for key in ("audio", "f0_hz", "f0_confidence"):
            if key not in batch:
                raise ValueError(f"batches: batch {n_batches} lacks {key!r} (have {sorted(batch)})")
        with (seeding.seed_scope([seed, n_batches]) if seed is not None
              else contextlib.nullcontext()):
            outputs = model(batch, training=False)
        audio_gen = model.get_audio_from_outputs(outputs)
        metrics = audio_metrics(batch["audio"], audio_gen, batch["f0_hz"], batch["f0_confidence"],
                                batch.get("loudness_db"), sample_rate=sample_rate, frame_rate=frame_rate,
                                crepe_capacity=crepe_capacity, min_f0_confidence=min_f0_confidence,
                                outlier_semitones=outlier_semitones, spectral_loss=spectral_loss)
        if midi:
            if "pianoroll" not in outputs:
                raise ValueError("model: midi=True needs a model output 'pianoroll' [batch, n_frames, 128]")
            est = _numpy(outputs["pianoroll"], "outputs['pianoroll']")
            per_note = [note_metrics(_feature_rolls(batch, i), est[i], frame_rate) for i in range(est.shape[0])]
            for name in per_note[0]:
                metrics[name] = np.array([m[name] for m in per_note], np.float32)
        accumulator.add(metrics)
        n_batches += 1
        now = time.monotonic()
        if now - last_log >= log_every_s:
            last_log = now
            log.info("evaluate: %d batches, %d examples, %.2f examples/s", n_batches,
                     accumulator.n_examples, accumulator.n_examples / max(now - start, 1e-9))
    if n_batches == 0:
        raise ValueError("batches: no batch to evaluate")
    elapsed = time.monotonic() - start
    log.info("evaluate: done, %d batches, %d examples in %.1f s (%.2f examples/s)", n_batches,
             accumulator.n_examples, elapsed, accumulator.n_examples / max(elapsed, 1e-9))
    summary = accumulator.summary()
    return (summary, accumulator) if return_accumulator else summary


# --------------------------------------------------------------------- timbre transfer
def compute_dataset_statistics(batches, min_f0_confidence: float = 0.85, quiet_db: float = DEFAULT_QUIET_DB,
                               quantiles=(0.05, 0.25, 0.5, 0.75, 0.95), trim_end: int = 20) -> dict:
    """Pitch, loudness and power statistics of a dataset, for timbre transfer and export.

    Args:
      batches: iterable of feature dicts with 'f0_hz', 'f0_confidence', 'loudness_db' and
        optionally 'power_db' (`[batch, n_frames]`, `[n_frames]` or `[batch, n_frames, 1]`).
      min_f0_confidence: frames at or above it count for the confident-pitch statistics.
      quiet_db: frames with loudness_db >= quiet_db (non-quiet) count for mean loudness.
      trim_end: frames dropped at the end of each example for the note statistics (the
        last frames of a clip see padding).

    Returns (plain floats / lists, None where no frame counts; JSON-ready):
      'mean_pitch', 'min_pitch', 'max_pitch' (MIDI, confident frames), 'mean_loudness_db'
      (non-quiet frames), 'loudness_quantiles' {str(q): dB}, 'n_pitch_frames',
      'n_loudness_frames', 'min_f0_confidence', 'quiet_db';
      note statistics over the frames `postprocessing.detect_notes` marks as notes (per
      example; an example without any keeps all its frames): 'mean_pitch_note',
      'mean_min_pitch_note', 'mean_max_pitch_note', 'min_pitch_note', 'max_pitch_note',
      'std_pitch_note', the same for 'power_note' (dB) and 'loudness_note' (dB),
      'loudness_transform' and 'power_transform' (`QuantileTransform.to_dict()` of the
      note frames' loudness / power, None without power), 'n_examples', 'n_note_frames'.
    """
    from ddsp_models.training import postprocessing

    pitches, loudness = [], []
    notes = {"f0_hz": [], "f0_confidence": [], "loudness_db": [], "power_db": []}
    has_power = True
    for i, batch in enumerate(batches):
        for key in ("f0_hz", "f0_confidence", "loudness_db"):
            if key not in batch:
                raise ValueError(f"batches: batch {i} lacks {key!r} (have {sorted(batch)})")
        f0_2d = _numpy(batch["f0_hz"], "f0_hz")
        f0_2d = f0_2d.reshape(-1, f0_2d.shape[-2] if f0_2d.ndim == 3 and f0_2d.shape[-1] == 1
                              else f0_2d.shape[-1])
        for key in notes:
            if key == "power_db" and (key not in batch or not has_power):
                has_power = False
                continue
            notes[key].append(_numpy(batch[key], key).reshape(f0_2d.shape))
        f0 = f0_2d.reshape(-1)
        confidence = _numpy(batch["f0_confidence"], "f0_confidence").reshape(-1)
        ld = _numpy(batch["loudness_db"], "loudness_db").reshape(-1)
        keep = (confidence >= min_f0_confidence) & (f0 > 0)
        pitches.append(_hz_to_midi_np(f0[keep]))
        loudness.append(ld[ld >= quiet_db])
    pitches = np.concatenate(pitches) if pitches else np.zeros(0)
    loudness = np.concatenate(loudness).astype(np.float64) if loudness else np.zeros(0)
    stats = {
        "mean_pitch": float(pitches.mean()) if pitches.size else None,
        "min_pitch": float(pitches.min()) if pitches.size else None,
        "max_pitch": float(pitches.max()) if pitches.size else None,
        "mean_loudness_db": float(loudness.mean()) if loudness.size else None,
        "loudness_quantiles": {str(q): (float(np.quantile(loudness, q)) if loudness.size else None)
                               for q in quantiles},
        "n_pitch_frames": int(pitches.size),
        "n_loudness_frames": int(loudness.size),
        "min_f0_confidence": float(min_f0_confidence),
        "quiet_db": float(quiet_db),
    }
    stats.update(_note_statistics(notes, has_power, trim_end, postprocessing))
    return stats


def _note_statistics(notes: dict, has_power: bool, trim_end: int, postprocessing) -> dict:
    """The note part of `compute_dataset_statistics` (examples of different lengths are
    handled one length group at a time)."""
    if not notes["f0_hz"]:
        empty = postprocessing.note_range_statistics(np.zeros((0, 1)), np.zeros((0, 1), bool), "x")
        result = {}
        for prefix in ("pitch_note", "power_note", "loudness_note"):
            result.update({k.replace("_x", f"_{prefix}"): v for k, v in empty.items()})
        return {**result, "loudness_transform": None, "power_transform": None,
                "n_examples": 0, "n_note_frames": 0}
    rows = {key: [r for a in arrays for r in a] for key, arrays in notes.items()}
    trim = lambda row: row[:-trim_end] if trim_end and row.size > trim_end else row  # noqa: E731
    for key in rows:
        rows[key] = [trim(r) for r in rows[key]]
    ld_all = np.concatenate(rows["loudness_db"]).astype(np.float64)
    masks = []
    for ld, conf in zip(rows["loudness_db"], rows["f0_confidence"]):
        mask, _ = postprocessing.detect_notes(ld, conf, mean_db=float(ld_all.mean()))
        masks.append(mask if mask.any() else np.ones_like(mask))
    result = {}
    pitch_rows = [_hz_to_midi_np(f0).astype(np.float64) for f0 in rows["f0_hz"]]
    for prefix, values in (("pitch_note", pitch_rows), ("loudness_note", rows["loudness_db"]),
                           ("power_note", rows["power_db"] if has_power else None)):
        if values is None:
            result.update({f"{k}_{prefix}": None for k in ("mean", "min", "max", "std", "mean_min",
                                                           "mean_max")})
            continue
        per_example = [postprocessing.note_range_statistics(v[None], m[None], prefix)
                       for v, m in zip(values, masks)]
        on = np.concatenate([np.asarray(v, np.float64)[m] for v, m in zip(values, masks)])
        result.update({f"mean_{prefix}": float(on.mean()), f"min_{prefix}": float(on.min()),
                       f"max_{prefix}": float(on.max()), f"std_{prefix}": float(on.std()),
                       f"mean_min_{prefix}": float(np.mean([p[f"mean_min_{prefix}"] for p in per_example])),
                       f"mean_max_{prefix}": float(np.mean([p[f"mean_max_{prefix}"] for p in per_example]))})
    on_ld = np.concatenate([np.asarray(v, np.float64)[m] for v, m in zip(rows["loudness_db"], masks)])
    result["loudness_transform"] = postprocessing.QuantileTransform.fit(on_ld).to_dict()
    result["power_transform"] = None
    if has_power:
        on_pw = np.concatenate([np.asarray(v, np.float64)[m] for v, m in zip(rows["power_db"], masks)])
        result["power_transform"] = postprocessing.QuantileTransform.fit(on_pw).to_dict()
    result["n_examples"] = len(masks)
    result["n_note_frames"] = int(sum(int(m.sum()) for m in masks))
    return result


def adjust_for_timbre_transfer(features: dict, octave_shift: int = 0, loudness_shift_db: float = 0.0,
                               auto_adjust: bool = False, dataset_stats: dict | None = None,
                               min_f0_confidence: float | None = None, quiet_db: float | None = None,
                               semitone_shift: float = 0.0, mask_on=None, note_on_ratio=None,
                               quiet_off_db: float = 20.0, autotune: float = 0.0):
    """Shift a clip's pitch and loudness before resynthesising it with another model.

    f0_hz is multiplied by 2 ** (octaves + semitone_shift / 12); loudness_db and power_db
    (when present) get loudness dB added on every frame. Other features are passed through
    unchanged (not recomputed). With `auto_adjust` (needs `dataset_stats` from
    `compute_dataset_statistics`), before the given shifts:
      without a note mask (`mask_on` None): octaves += round((dataset mean_pitch - clip
        mean MIDI pitch on frames with f0_confidence >= min_f0_confidence) / 12) (0 when the
        clip has no such frame); dB += dataset mean_loudness_db - clip mean loudness_db on
        frames >= quiet_db (0 when the clip has none);
      with `mask_on` (bool `[n_frames]`, e.g. from `postprocessing.detect_notes`) and a
        dataset 'loudness_transform' (the DDSP notebook's adjustment): octaves +=
        round((mean_pitch - clip mean pitch on note frames) / 12); the note frames' loudness
        (and power, with a 'power_transform') is mapped through the clip's own quantile
        transform and the dataset's inverse one; frames off a note are turned down by
        quiet_off_db * (1 - note_on_ratio) dB.
    A dataset statistic set to None is not adjusted. `autotune` in [0, 1] then moves the
    pitch of the note frames (all confident frames without a mask) toward the nearest
    semitone. `min_f0_confidence` and `quiet_db` default to the values stored in
    dataset_stats (else 0.85 and DEFAULT_QUIET_DB). Statistics are taken over all frames
    given, so pass one clip or recording.

    Returns:
      (new features dict (numpy float32, shapes kept), {'octave_shift': int,
      'semitone_shift': float, 'loudness_shift_db': float (mean dB change of the frames
      adjusted automatically plus the manual shift), 'autotune': float}).
    """
    from ddsp_models.training import postprocessing

    if not isinstance(features, dict):
        raise TypeError(f"features: expected a dict, got {type(features).__name__}")
    if "f0_hz" not in features:
        raise ValueError(f"features: need 'f0_hz' (have {sorted(features)})")
    if int(octave_shift) != octave_shift:
        raise ValueError(f"octave_shift: must be a whole number of octaves, got {octave_shift}")
    octaves, shift_db = int(octave_shift), float(loudness_shift_db)
    f0 = _numpy(features["f0_hz"], "f0_hz")
    adjusted = dict(features)
    stats = dataset_stats or {}
    min_conf = stats.get("min_f0_confidence", 0.85) if min_f0_confidence is None else min_f0_confidence
    if auto_adjust:
        if not dataset_stats:
            raise ValueError("dataset_stats: auto_adjust needs the output of compute_dataset_statistics")
        quiet = stats.get("quiet_db", DEFAULT_QUIET_DB) if quiet_db is None else quiet_db
        flat_f0 = f0.reshape(-1)
        if mask_on is not None:
            mask = np.asarray(mask_on, bool).reshape(-1)
            if mask.size != flat_f0.size:
                raise ValueError(f"mask_on: {mask.size} frames, f0_hz has {flat_f0.size}")
        if stats.get("mean_pitch") is not None:
            if mask_on is not None:
                keep = mask & (flat_f0 > 0)
            else:
                if "f0_confidence" not in features:
                    raise ValueError("features: auto_adjust needs 'f0_confidence'")
                confidence = _numpy(features["f0_confidence"], "f0_confidence").reshape(-1)
                keep = (confidence >= min_conf) & (flat_f0 > 0)
            if keep.any():
                clip_pitch = float(_hz_to_midi_np(flat_f0[keep]).mean())
                octaves += int(np.round((stats["mean_pitch"] - clip_pitch) / 12.0))
        if stats.get("mean_loudness_db") is not None:
            if "loudness_db" not in features:
                raise ValueError("features: auto_adjust needs 'loudness_db'")
            ld = _numpy(features["loudness_db"], "loudness_db")
            if mask_on is not None and stats.get("loudness_transform"):
                ratio = (np.ones(mask.size) if note_on_ratio is None
                         else np.asarray(note_on_ratio, np.float64).reshape(-1))
                for key, transform_key in (("loudness_db", "loudness_transform"),
                                           ("power_db", "power_transform")):
                    if key not in features or not stats.get(transform_key):
                        continue
                    values = _numpy(features[key], key)
                    new = _quantile_match(values.reshape(-1), mask, stats[transform_key],
                                          postprocessing)
                    new[~mask] -= quiet_off_db * (1.0 - np.clip(ratio[~mask], 0.0, 1.0))
                    adjusted[key] = new.reshape(values.shape).astype(np.float32)
                shift_db += float(np.mean(adjusted["loudness_db"] - ld))
            else:
                loud = ld.reshape(-1)[ld.reshape(-1) >= quiet]
                if loud.size:
                    shift_db += float(stats["mean_loudness_db"]) - float(loud.astype(np.float64).mean())
                    delta = shift_db - float(loudness_shift_db)
                    for key in ("loudness_db", "power_db"):
                        if key in features:
                            adjusted[key] = (_numpy(features[key], key) + np.float32(delta)).astype(np.float32)
    manual_db = float(loudness_shift_db)
    for key in ("loudness_db", "power_db"):
        if key in adjusted:
            adjusted[key] = (_numpy(adjusted[key], key) + np.float32(manual_db)).astype(np.float32)
    pitch = _hz_to_midi_np(f0).astype(np.float64) + 12.0 * octaves + float(semitone_shift)
    if autotune:
        if mask_on is not None:
            tune_mask = np.asarray(mask_on, bool).reshape(f0.shape)
        elif "f0_confidence" in features:
            tune_mask = _numpy(features["f0_confidence"], "f0_confidence").reshape(f0.shape) >= min_conf
        else:
            tune_mask = None
        pitch = postprocessing.autotune(pitch, autotune, tune_mask)
    new_f0 = np.where(f0 > 0, _midi_to_hz_np(pitch), 0.0)
    adjusted["f0_hz"] = new_f0.astype(np.float32)
    return adjusted, {"octave_shift": octaves, "semitone_shift": float(semitone_shift),
                      "loudness_shift_db": shift_db, "autotune": float(autotune)}


def _quantile_match(values: np.ndarray, mask: np.ndarray, dataset_transform: dict,
                    postprocessing) -> np.ndarray:
    """The note frames of `values` moved onto the dataset's distribution (clip transform,
    then the dataset's inverse); other frames unchanged. float64 `[n]`."""
    out = values.astype(np.float64).copy()
    if not mask.any():
        return out
    own = postprocessing.QuantileTransform.fit(out[mask])
    target = postprocessing.QuantileTransform.from_dict(dataset_transform)
    out[mask] = target.inverse_transform(own.transform(out[mask]))
    return out


__all__ = ["AUDIO_METRIC_NAMES", "DEFAULT_QUIET_DB", "audio_metrics", "note_metrics", "pianoroll_to_notes",
           "reference_pianoroll", "MetricsAccumulator", "evaluate_model", "compute_dataset_statistics",
           "adjust_for_timbre_transfer"]
