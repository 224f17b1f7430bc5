"""Evaluators and the evaluation / sampling loops, under the original DDSP's gin names.

Its eval/*.gin files list evaluator classes (``evaluate.evaluator_classes = [@BasicEvaluator,
@F0LdEvaluator]``); `evaluate` and `sample` (gin: ``evaluate.*``, ``sample.*``, with the
original's arguments) build each as ``evaluator_class(sample_rate, frame_rate)``, run the model
on the provider's batches and, per batch, call ``evaluator.evaluate(batch, outputs, losses)``
(metrics) or ``evaluator.sample(batch, outputs, step)`` (audio / image summaries); ``flush(step)``
returns the metrics' means as {tag: float} and writes them as scalars to the default
`tf.summary` writer, if any. `run_evaluators` is the same loop over given batches and a built
model (the `pipelines.evaluate` stage uses it for evaluators named in a run's gin files).

Metric tags (means over the examples):
  BasicEvaluator          losses/<name>: every loss of the model's call.
  F0LdEvaluator           metrics/loudness/loudness_db: mean |loudness(audio_gen) -
                          loudness_db| (dB; `spectral_ops.compute_loudness` at the rates);
                          metrics/f0/{f0_dist, raw_pitch_accuracy, raw_chroma_accuracy}: the
                          model's 'f0_hz' vs the batch's on frames with confidence >= 0.85
                          (semitones; fraction within 50 cents, also modulo octaves), examples
                          without such a frame skipped; without a model f0 (and
                          `run_f0_crepe`), metrics/f0_crepe/{f0_dist, outlier_ratio}: CREPE on
                          audio_gen, an example is an outlier when it has no confident CREPE
                          frame or f0_dist > 12 semitones.
  TWMEvaluator            metrics/f0_twm/*: as metrics/f0, with f0 = the sinusoid (among
                          'sin_freqs') that the two-way mismatch error rates best.
  MidiAutoencoderEvaluator  metrics/midi_learned/*: `metrics.note_metrics` of the
                          model's 'pianoroll' against the features' notes.
  MidiHeuristicEvaluator  metrics/midi_heuristic/*: the same for the notes of
                          `heuristics.segment_notes_batch` (gin-configurable heuristics).
"""
import logging
import os
import time

import numpy as np
import tensorflow as tf

from ddsp_models.gin_utils import register
from ddsp_models.training import evaluation, heuristics, summaries
from ddsp_models.training.metrics import note_metrics

log = logging.getLogger(__name__)

MIN_F0_CONFIDENCE = 0.85
OUTLIER_SEMITONES = 12.0
PITCH_TOLERANCE_CENTS = 50.0


def _numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _frames(value, n_examples: int) -> np.ndarray:
    """`[batch, n_frames(, 1)]` -> float64 `[batch, n_frames]`."""
    return _numpy(value).astype(np.float64).reshape(n_examples, -1)


class _Means:
    """Running means of named values (NaN ignored), reset by `flush`."""

    def __init__(self, prefix: str = ""):
        self.prefix, self.accumulator = prefix, evaluation.MetricsAccumulator()

    def add(self, **values) -> None:
        self.accumulator.add({name: np.asarray(value, np.float64) for name, value in values.items()})

    def flush(self, step: int) -> dict:
        means = {f"{self.prefix}{name}": stats["mean"] for name, stats in self.accumulator.summary().items()}
        self.accumulator = evaluation.MetricsAccumulator()
        for tag, value in means.items():
            if value is not None:
                summaries.scalar_summary(tag, value, step)  # no-op without a default writer
        return means


def f0_scores(f0_ref, f0_est, confidence, min_confidence: float = MIN_F0_CONFIDENCE) -> dict:
    """Per-example f0 agreement on the reference's confident frames.

    Args:
      f0_ref, f0_est, confidence: `[batch, n_frames(, 1)]` (Hz, Hz, [0, 1]); f0_est is resampled
        (nearest) to the reference's frames when their counts differ.

    Returns:
      {'f0_dist': mean |midi(est) - midi(ref)| (semitones), 'raw_pitch_accuracy': fraction
      within 50 cents, 'raw_chroma_accuracy': the same modulo octaves}, each `[batch]`, NaN
      for examples without a confident frame.
    """
    from ddsp_models import core

    n = _numpy(f0_ref).shape[0]
    f0_ref, confidence = _frames(f0_ref, n), _frames(confidence, n)
    f0_est = _frames(f0_est, n)
    if f0_est.shape[1] != f0_ref.shape[1]:
        index = np.minimum(np.arange(f0_ref.shape[1]) * f0_est.shape[1] // f0_ref.shape[1], f0_est.shape[1] - 1)
        f0_est = f0_est[:, index]
    cents = 100.0 * (np.asarray(core.hz_to_midi(f0_est)) - np.asarray(core.hz_to_midi(f0_ref)))
    chroma = np.abs((cents + 600.0) % 1200.0 - 600.0)
    keep = confidence >= min_confidence
    count = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        def mean(x):
            return np.where(count > 0, (x * keep).sum(axis=1) / count, np.nan)
        return {"f0_dist": mean(np.abs(cents) / 100.0),
                "raw_pitch_accuracy": mean(np.abs(cents) <= PITCH_TOLERANCE_CENTS),
                "raw_chroma_accuracy": mean(chroma <= PITCH_TOLERANCE_CENTS)}


# ------------------------------------------------------------------------ evaluators
class BaseEvaluator:
    """Base class: `evaluate` (metrics), `sample` (summaries), `flush` (-> {tag: mean}).

    Args:
      sample_rate: audio rate, Hz.
      frame_rate: feature frame rate, Hz.
    """

    def __init__(self, sample_rate: int, frame_rate: int):
        self.set_rates(sample_rate, frame_rate)

    def set_rates(self, sample_rate: int, frame_rate: int) -> None:
        self._sample_rate, self._frame_rate = int(sample_rate), int(frame_rate)

    def evaluate(self, batch: dict, outputs: dict, losses: dict) -> None:
        raise NotImplementedError

    def sample(self, batch: dict, outputs: dict, step: int) -> None:
        """Writes summaries of the first example (none by default)."""

    def flush(self, step: int) -> dict:
        raise NotImplementedError


@register("evaluators")
class BasicEvaluator(BaseEvaluator):
    """Means of the model's losses; samples: the original and generated audio and their
    spectrograms."""

    def __init__(self, sample_rate: int, frame_rate: int):
        super().__init__(sample_rate, frame_rate)
        self._losses = _Means("losses/")

    def evaluate(self, batch, outputs, losses):
        self._losses.add(**{name: float(value) for name, value in (losses or {}).items()})

    def sample(self, batch, outputs, step):
        from ddsp_models.training import plotting

        audio, audio_gen = _numpy(batch["audio"])[0], _numpy(outputs["audio_gen"])[0]
        summaries.audio_summary("audio_original", audio, self._sample_rate, step)
        summaries.audio_summary("audio_generated", audio_gen, self._sample_rate, step)
        png = summaries.figure_png(plotting.plot_spectrograms, {"original": audio, "generated": audio_gen},
                                   sample_rate=self._sample_rate)
        summaries.image_summary("spectrograms", png, step)

    def flush(self, step):
        return self._losses.flush(step)


@register("evaluators")
class F0LdEvaluator(BaseEvaluator):
    """Loudness and f0 metrics of the generated audio (module docstring).

    Args:
      run_f0_crepe: track the generated audio's f0 with CREPE when the model outputs none.
      crepe_capacity: CREPE used then ('full' as the original).
    """

    def __init__(self, sample_rate: int, frame_rate: int, run_f0_crepe: bool = True,
                 crepe_capacity: str = "full"):
        super().__init__(sample_rate, frame_rate)
        self.run_f0_crepe, self.crepe_capacity = bool(run_f0_crepe), crepe_capacity
        self._loudness, self._f0, self._f0_crepe = _Means("metrics/loudness/"), _Means("metrics/f0/"), \
            _Means("metrics/f0_crepe/")

    def evaluate(self, batch, outputs, losses):
        from ddsp_models import spectral_ops

        audio_gen = _numpy(outputs["audio_gen"])
        n = audio_gen.shape[0]

        def loudness(audio):
            return _frames(spectral_ops.compute_loudness(audio, sample_rate=self._sample_rate,
                                                         frame_rate=self._frame_rate), n)

        reference = _frames(batch["loudness_db"], n) if "loudness_db" in batch else loudness(_numpy(batch["audio"]))
        generated = loudness(audio_gen)
        frames = min(reference.shape[1], generated.shape[1])
        self._loudness.add(loudness_db=np.abs(reference[:, :frames] - generated[:, :frames]).mean(axis=1))
        if "f0_hz" in outputs and "f0_hz" in batch:
            self._f0.add(**f0_scores(batch["f0_hz"], outputs["f0_hz"], batch["f0_confidence"]))
        elif self.run_f0_crepe:
            self._add_crepe(batch, audio_gen)

    def _add_crepe(self, batch, audio_gen):
        from ddsp_models import crepe

        f0_gen, conf_gen = crepe.compute_f0(audio_gen, sample_rate=self._sample_rate, frame_rate=self._frame_rate,
                                            viterbi=True, capacity=self.crepe_capacity)
        dist = f0_scores(batch["f0_hz"], f0_gen, batch["f0_confidence"])["f0_dist"]
        tracked = np.asarray(conf_gen).reshape(len(dist), -1).max(axis=1) >= MIN_F0_CONFIDENCE
        valid = ~np.isnan(dist)  # the reference had confident frames
        outlier = ~tracked | (np.nan_to_num(dist, nan=np.inf) > OUTLIER_SEMITONES)
        self._f0_crepe.add(f0_dist=np.where(valid & ~outlier, dist, np.nan),
                           outlier_ratio=np.where(valid, outlier.astype(np.float64), np.nan))

    def sample(self, batch, outputs, step):
        from ddsp_models.training import plotting

        if "f0_hz" in outputs and "f0_hz" in batch:
            curves = {"original": _numpy(batch["f0_hz"])[0].reshape(-1),
                      "generated": _numpy(outputs["f0_hz"])[0].reshape(-1)}
            png = summaries.figure_png(plotting.plot_f0, curves, frame_rate=self._frame_rate)
            summaries.image_summary("f0_harmonic", png, step)

    def flush(self, step):
        out = self._loudness.flush(step)
        out.update(self._f0.flush(step))
        if self.run_f0_crepe:
            out.update(self._f0_crepe.flush(step))
        return out


@register("evaluators")
class TWMEvaluator(BaseEvaluator):
    """f0 of the model's sinusoids by two-way mismatch, scored against the batch's f0.

    Args:
      processor_name: prefix of the sinusoid controls ('<name>/controls/frequencies');
        outputs naming them 'sin_freqs' / 'sin_amps' (`InverseSynthesis`) work too.
      noisy: scale the amplitudes by (1 - 'noise_ratios').
    """

    def __init__(self, sample_rate: int, frame_rate: int, processor_name: str = "sinusoidal", noisy: bool = False):
        super().__init__(sample_rate, frame_rate)
        self.processor_name, self.noisy = processor_name, bool(noisy)
        self._f0 = _Means("metrics/f0_twm/")

    def _controls(self, outputs, name: str, alias: str):
        key = f"{self.processor_name}/controls/{name}"
        if key in outputs:
            return outputs[key]
        if alias in outputs:
            return outputs[alias]
        raise ValueError(f"TWMEvaluator: the outputs need {key!r} or {alias!r}; they hold {sorted(outputs)}")

    def twm_f0(self, outputs) -> np.ndarray:
        """f0 `[batch, n_frames, 1]` (Hz): the candidate sinusoid with the least TWM error."""
        from ddsp_models.inverse_losses import InverseTWMLoss

        freqs = tf.convert_to_tensor(self._controls(outputs, "frequencies", "sin_freqs"), tf.float32)
        amps = tf.convert_to_tensor(self._controls(outputs, "amplitudes", "sin_amps"), tf.float32)
        if self.noisy:
            amps = amps * (1.0 - tf.convert_to_tensor(self._controls(outputs, "noise_ratios", "noise_ratios")))
        errors = InverseTWMLoss().get_errors(freqs, freqs, amps)
        best = tf.argmin(errors, axis=-1)[..., tf.newaxis]
        return tf.gather(freqs, best, batch_dims=2).numpy()

    def evaluate(self, batch, outputs, losses):
        self._f0.add(**f0_scores(batch["f0_hz"], self.twm_f0(outputs), batch["f0_confidence"]))

    def flush(self, step):
        return self._f0.flush(step)


class _MidiEvaluator(BaseEvaluator):
    """Note metrics of estimated rolls against the features' notes."""

    tag = ""

    def __init__(self, sample_rate: int, frame_rate: int):
        super().__init__(sample_rate, frame_rate)
        self._notes = _Means(f"metrics/midi_{self.tag}/")

    def _add_rolls(self, features, rolls):
        per_example = []
        for i, roll in enumerate(rolls):
            reference = {key: _numpy(features[key])[i] for key in
                         ("note_active_velocities", "note_active_frame_indices", "note_onsets") if key in features}
            per_example.append(note_metrics(reference, roll, self._frame_rate))
        self._notes.add(**{name: [m[name] for m in per_example] for name in per_example[0]})

    def flush(self, step):
        return self._notes.flush(step)


@register("evaluators")
class MidiAutoencoderEvaluator(_MidiEvaluator):
    """Note metrics of a MidiAutoencoder's 'pianoroll' (`[batch, n_frames, 128]`).

    Args:
      db_key, f0_key: the features' loudness and f0 keys (the original's arguments, for its
        sample summaries).
    """

    tag = "learned"

    def __init__(self, sample_rate: int, frame_rate: int, db_key: str = "loudness_db", f0_key: str = "f0_hz"):
        super().__init__(sample_rate, frame_rate)
        self.db_key, self.f0_key = db_key, f0_key

    def evaluate(self, batch, outputs, losses):
        features = {**batch, **outputs}
        if "pianoroll" not in outputs:
            raise ValueError(f"MidiAutoencoderEvaluator: the outputs need 'pianoroll'; they hold {sorted(outputs)}")
        self._add_rolls(features, _numpy(outputs["pianoroll"]))

    def sample(self, batch, outputs, step):
        for key in ("midi_audio", "synth_audio"):
            if outputs.get(key) is not None:
                summaries.audio_summary(key, _numpy(outputs[key])[0], self._sample_rate, step)


@register("evaluators")
class MidiHeuristicEvaluator(_MidiEvaluator):
    """Note metrics of the notes `heuristics.segment_notes_batch` finds in the outputs."""

    tag = "heuristic"

    def evaluate(self, batch, outputs, losses):
        features = {**batch, **outputs}
        n_frames = _numpy(features["f0_hz"]).shape[1]
        notes = heuristics.segment_notes_batch(controls_batch=outputs, frame_rate=self._frame_rate)
        self._add_rolls(features, [heuristics.notes_to_pianoroll(s, n_frames, self._frame_rate) for s in notes])


# ------------------------------------------------------------------------ loops
def prepare_batch(model, batch: dict) -> dict:
    """A batch with audio rendered from its controls where it has none (the original's
    synthetic notes), with confident f0 and loudness computed, as the original does."""
    if "audio" in batch or not hasattr(model, "with_audio"):
        return batch
    from ddsp_models import spectral_ops

    batch = model.with_audio(dict(batch))
    batch["f0_confidence"] = tf.ones_like(batch["f0_hz"])[..., 0]
    batch["loudness_db"] = spectral_ops.compute_loudness(batch["audio"])
    return batch


def run_evaluators(model, batches, evaluator_classes, sample_rate: int, frame_rate: int, mode: str = "eval",
                   step: int = 0, num_batches: int | None = None) -> dict:
    """One pass of `evaluator_classes` over feature batches with a built model.

    Args:
      mode: 'eval' (metrics), 'sample' (summaries) or 'both'.
      num_batches: at most this many batches (None: all).

    Returns:
      {tag: mean} of every evaluator's metrics (empty in 'sample' mode).
    """
    if mode not in ("eval", "sample", "both"):
        raise ValueError(f"run_evaluators `mode` must be 'eval', 'sample' or 'both', got {mode!r}")
    evaluators = [cls(sample_rate, frame_rate) for cls in evaluator_classes]
    n = 0
    for batch in batches:
        if num_batches is not None and n >= num_batches:
            break
        batch = prepare_batch(model, dict(batch))
        outputs, losses = model(batch, return_losses=True, training=False)
        outputs = dict(outputs, audio_gen=model.get_audio_from_outputs(outputs))
        for evaluator in evaluators:
            if mode in ("eval", "both"):
                evaluator.evaluate(batch, outputs, losses)
            if mode in ("sample", "both"):
                evaluator.sample(batch, outputs, step)
        n += 1
    if n == 0:
        raise ValueError("run_evaluators: no batch to evaluate")
    metrics = {}
    if mode in ("eval", "both"):
        for evaluator in evaluators:
            metrics.update(evaluator.flush(step))
    return metrics


def bound_evaluator_classes(name: str = "evaluate") -> list:
    """The evaluator classes gin binds to ``<name>.evaluator_classes`` (e.g. by including
    eval/basic_f0_ld.gin), [] when unbound."""
    from ddsp_models.training.config import query_binding

    classes = query_binding(f"{name}.evaluator_classes", default=[])
    return list(classes) if isinstance(classes, (list, tuple)) else [classes]


@register("eval_util")
def evaluate_or_sample(data_provider, model, evaluator_classes, mode: str = "eval",
                       save_dir: str = "/tmp/ddsp/training", restore_dir: str = "", batch_size: int = 32,
                       num_batches: int = 50, repeats: int = -1, ckpt_delay_secs: float = 0,
                       run_once: bool = False, run_until_step: int = 0,
                       evaluate_and_sample: bool = False) -> dict:
    """The original's evaluation loop (gin ``eval_util.evaluate_or_sample``): for each new
    checkpoint in `restore_dir` (default `save_dir`; the current weights when there is none,
    with a warning), one pass over `num_batches` unshuffled batches (< 1: all) of
    `batch_size` examples, writing TensorBoard summaries under `save_dir`/summaries/eval.

    Args:
      mode: 'eval' (metrics) or 'sample' (the evaluators' samples); `evaluate_and_sample`
        does both.
      repeats: passes through the dataset (-1: endless).
      ckpt_delay_secs: seconds to wait for a new checkpoint (at least 1).
      run_once: stop after one pass; run_until_step: stop at a checkpoint of at least this
        step (ignored when <= 0).

    Returns:
      {metric tag: mean} of the last pass (empty in 'sample' mode).
    """
    if mode not in ("eval", "sample"):
        raise ValueError(f"evaluate_or_sample `mode` must be 'eval' or 'sample', got {mode!r}.")
    from ddsp_models.training.checkpoints import checkpoint_step

    restore_dir = restore_dir or save_dir
    writer = tf.summary.create_file_writer(os.path.join(save_dir, "summaries", "eval"))
    dataset = data_provider.get_batch(batch_size, shuffle=False, repeats=repeats)
    mode = "both" if evaluate_and_sample else mode
    limit = num_batches if num_batches >= 1 else None
    seen, metrics = None, {}
    while True:
        checkpoint = tf.train.latest_checkpoint(restore_dir) if os.path.isdir(restore_dir) else None
        if checkpoint is not None and checkpoint == seen:
            time.sleep(max(float(ckpt_delay_secs), 1.0))
            continue
        step = 0
        if checkpoint is None:
            log.warning("no checkpoint in %s: evaluating the model's current weights", restore_dir)
        else:
            first = next(iter(dataset))
            model.restore(checkpoint, build_inputs=prepare_batch(model, dict(first)))
            step = checkpoint_step(checkpoint)
        with writer.as_default():
            metrics = run_evaluators(model, dataset, evaluator_classes, data_provider.sample_rate,
                                     data_provider.frame_rate, mode, step, limit)
        writer.flush()
        seen = checkpoint
        if run_once or checkpoint is None or 0 < run_until_step <= step:
            return metrics


@register("eval_util")
def evaluate(data_provider, model, evaluator_classes, save_dir: str = "/tmp/ddsp/training", restore_dir: str = "",
             batch_size: int = 32, num_batches: int = 50, repeats: int = -1, ckpt_delay_secs: float = 0,
             run_once: bool = False, run_until_step: int = 0, evaluate_and_sample: bool = False) -> dict:
    """Evaluates `model` on `data_provider` with `evaluator_classes` (the original's
    arguments); returns the last pass's {tag: mean} (module docstring)."""
    return evaluate_or_sample(data_provider, model, evaluator_classes, "eval", save_dir, restore_dir, batch_size,
                               num_batches, repeats, ckpt_delay_secs, run_once, run_until_step, evaluate_and_sample)


@register("eval_util")
def sample(data_provider, model, evaluator_classes, save_dir: str = "/tmp/ddsp/training", restore_dir: str = "",
           batch_size: int = 16, num_batches: int = 1, ckpt_delay_secs: float = 0, run_once: bool = False,
           run_until_step: int = 0, evaluate_and_sample: bool = False) -> dict:
    """As `evaluate`, writing the evaluators' samples (summaries) instead of metrics."""
    return evaluate_or_sample(data_provider, model, evaluator_classes, "sample", save_dir, restore_dir, batch_size,
                               num_batches, -1, ckpt_delay_secs, run_once, run_until_step, evaluate_and_sample)
