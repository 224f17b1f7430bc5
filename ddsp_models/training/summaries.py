"""TensorBoard summaries to hear and see a model: audio, spectrograms, f0, piano rolls,
sinusoids vs harmonics, and the operative gin config as text.

Everything is written with TensorFlow's own summary ops (`tf.summary.experimental.
write_raw_pb` and `tf.summary.write`), so the optional ``tensorboard`` package is only
needed to view them (``pip install -e ".[tensorboard]"``, then ``tensorboard --logdir
runs/<run>/summaries``): TensorBoard shows them in its Audio, Images and Text tabs.

`ValidationSummaries` is what the training loop uses: it keeps one fixed batch of
validation examples and, at a step, runs the model on it and writes

==============================  ===========================================================
tag                             what
==============================  ===========================================================
``audio/<i>_original``          the target clip i (wav, the dataset's sample rate)
``audio/<i>_resynthesis``       the model's audio (`model.get_audio_from_outputs`)
``audio/<i>_synthcoder``        MIDI models: the inner (f0/loudness -> synth) branch's audio
``audio/<i>_sinusoids``         InverseSynthesis: the sinusoidal branch's audio
``spectrogram/<i>``             target and resynthesis spectrograms on one colour scale
``f0/<i>``                      target f0 vs the resynthesis' f0 (CREPE) and the model's own
                                f0 control where it predicts one (MIDI decoder, harmonic
                                encoder), in MIDI pitch
``pianoroll/<i>``               MIDI models: ground-truth vs predicted notes
``sinusoids/<i>``               InverseSynthesis: fitted sinusoids vs harmonics over the
                                target's spectrogram
``config/operative_config``     the gin settings in force (once per training call)
==============================  ===========================================================

``<i>`` counts examples from 1. Images are PNGs of the `ddsp_models.training.plotting` figures.
"""
from __future__ import annotations

import io
import logging
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training import plotting

logger = logging.getLogger(__name__)

_TEXT_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def _numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels read from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG (bad signature)")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def image_summary(tag: str, png: bytes, step: int) -> None:
    """A PNG as a TensorBoard image at `step` (to the default summary writer)."""
    width, height = png_size(png)
    summary = tf.compat.v1.Summary()
    summary.value.add(tag=tag, image=tf.compat.v1.Summary.Image(
        height=height, width=width, colorspace=4, encoded_image_string=png))
    tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step, name=tag)


def figure_png(plot_fn, *args, **kwargs) -> bytes:
    """The PNG bytes of a `ddsp_models.training.plotting` function called with a buffer as its
    `path`: ``figure_png(plotting.plot_f0, curves, frame_rate=250)``."""
    buffer = io.BytesIO()
    plot_fn(*args, path=buffer, **kwargs)
    return buffer.getvalue()


def wav_bytes(audio, sample_rate: int) -> bytes:
    """16-bit PCM mono wav of `audio` `[n_samples]` (clipped to [-1, 1])."""
    audio = np.clip(np.asarray(_numpy(audio), np.float32).reshape(-1), -1.0, 1.0)
    return tf.audio.encode_wav(audio[:, None], int(sample_rate)).numpy()


def audio_summary(tag: str, audio, sample_rate: int, step: int) -> None:
    """One clip `[n_samples]` as TensorBoard audio (wav) at `step`."""
    audio = np.asarray(_numpy(audio), np.float32).reshape(-1)
    if audio.size == 0:
        raise ValueError(f"audio_summary {tag!r}: empty audio")
    summary = tf.compat.v1.Summary()
    summary.value.add(tag=tag, audio=tf.compat.v1.Summary.Audio(
        sample_rate=float(sample_rate), num_channels=1, length_frames=audio.size,
        encoded_audio_string=wav_bytes(audio, sample_rate), content_type="audio/wav"))
    tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step, name=tag)


def scalar_summary(tag: str, value, step: int) -> None:
    """A scalar for TensorBoard's Scalars tab at `step` (TF's own summary op: the optional
    `tensorboard` package, which `tf.summary.scalar` needs, is not required)."""
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=_SCALAR_METADATA)


def text_summary(tag: str, markdown: str, step: int) -> None:
    """Markdown text for TensorBoard's Text tab at `step`."""
    tf.summary.write(tag, tf.constant(markdown), step=step, metadata=_TEXT_METADATA)


def config_summary(config_text: str, step: int, tag: str = "config/operative_config") -> None:
    """A gin config as text: comment lines as markdown, the bindings as a code block."""
    lines = []
    for line in config_text.splitlines():
        lines.append(line.lstrip("# ") if line.startswith("#") else "    " + line)
    text_summary(tag, "\n".join(lines), step)


def _masked(f0_hz, confidence=None, min_confidence: float = 0.0,
            n_frames: int | None = None) -> np.ndarray:
    """f0 `[n_frames]` with NaN where the confidence is below `min_confidence`, taken at
    `n_frames` evenly spaced frames (nearest) when given (a model's controls may have
    another frame rate than the dataset's)."""
    f0 = np.asarray(_numpy(f0_hz), np.float32).reshape(-1).copy()
    if confidence is not None:
        conf = np.asarray(_numpy(confidence), np.float32).reshape(-1)[:f0.size]
        f0[:conf.size][conf < min_confidence] = np.nan
    if n_frames is not None and f0.size != n_frames:
        f0 = f0[np.minimum((np.arange(n_frames) * f0.size) // n_frames, f0.size - 1)]
    return f0


@register("summaries", allowlist=["crepe_capacity", "min_confidence"])
class ValidationSummaries:
    """Writes the summaries of the module docstring for a fixed batch of examples.

    Args:
      batch: feature dict (numpy or tensors) with at least ``'audio'`` `[n, n_samples]`;
        ``'f0_hz'`` (and ``'f0_confidence'``) `[n, n_frames]` enable the f0 plots, note
        features (``note_active_velocities``, ``note_active_frame_indices``) the
        ground-truth piano roll.
      log_dir: folder of the event files (e.g. ``<save_dir>/summaries/valid``).
      sample_rate: Hz of the audio.
      frame_rate: frames per second of the frame features (None: n_frames of ``'f0_hz'``
        over the clip length, else 250).
      crepe_capacity: CREPE size for the f0 of the resynthesis (None: not computed); when
        its weights are missing the curve is left out with one warning.
      min_confidence: frames with a lower f0 confidence (dataset or CREPE) are gaps.

    Raises:
      ValueError: naming the missing key when the batch has no ``'audio'``.
    """

    def __init__(self, batch: dict, log_dir, sample_rate: int = 16000,
                 frame_rate: float | None = None, crepe_capacity: str | None = "tiny",
                 min_confidence: float = 0.5):
        if not isinstance(batch, dict) or "audio" not in batch:
            keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(f"ValidationSummaries: the batch needs 'audio' [n, n_samples] "
                             f"(have {keys}); for zipped training data bind "
                             "train.eval_data_provider to a provider of plain examples")
        self.batch = {k: v for k, v in batch.items() if k != "id"}
        self.ids = [x.decode() if isinstance(x, bytes) else str(x)
                    for x in _numpy(batch["id"]).reshape(-1)] if "id" in batch else None
        self.audio = np.asarray(_numpy(batch["audio"]), np.float32)
        if self.audio.ndim != 2:
            raise ValueError(f"ValidationSummaries: 'audio' must be [n, n_samples], got "
                             f"shape {self.audio.shape}")
        self.sample_rate = int(sample_rate)
        if frame_rate is None:
            seconds = self.audio.shape[1] / self.sample_rate
            frame_rate = (np.asarray(_numpy(batch["f0_hz"])).shape[1] / seconds
                          if "f0_hz" in batch else 250)
        self.frame_rate = float(frame_rate)
        self.seconds = self.audio.shape[1] / self.sample_rate
        self.n_frames = max(1, int(round(self.seconds * self.frame_rate)))
        self.crepe_capacity = crepe_capacity
        self.min_confidence = float(min_confidence)
        self.log_dir = os.fspath(log_dir)
        self.writer = tf.summary.create_file_writer(self.log_dir)
        self._config_written = False

    @classmethod
    def from_provider(cls, provider, n_examples: int, log_dir, **kwargs) -> "ValidationSummaries":
        """The first `n_examples` of `provider` (unshuffled), at its sample and frame
        rates."""
        positive_int("n_examples", n_examples)
        dataset = provider.get_batch(n_examples, shuffle=False, repeats=1, drop_remainder=False)
        batch = next(iter(dataset))
        kwargs.setdefault("sample_rate", getattr(provider, "sample_rate", 16000))
        kwargs.setdefault("frame_rate", getattr(provider, "frame_rate", None))
        return cls({k: v.numpy() for k, v in batch.items()}, log_dir, **kwargs)

    # ------------------------------------------------------------------ pieces
    def _crepe_f0(self, audio_gen):
        if not self.crepe_capacity:
            return None
        from ddsp_models import crepe

        try:  # at most 100 frames/s (CREPE's own hop, the cost); the plot resamples
            f0, confidence = crepe.compute_f0(audio_gen, sample_rate=self.sample_rate,
                                              frame_rate=min(100.0, self.frame_rate),
                                              viterbi=True, capacity=self.crepe_capacity)
        except (OSError, ValueError) as error:  # weights missing / unreadable
            logger.warning("summaries: no CREPE f0 of the resynthesis (%s); f0 plots show the "
                           "target only", error)
            self.crepe_capacity = None
            return None
        return f0, confidence

    def _f0_curves(self, i: int, outputs: dict, crepe_f0) -> dict:
        curves = {}
        n = self.n_frames
        if "f0_hz" in self.batch:
            confidence = self.batch["f0_confidence"][i] if "f0_confidence" in self.batch else None
            curves["target (dataset)"] = _masked(self.batch["f0_hz"][i], confidence,
                                                 self.min_confidence, n)
        if crepe_f0 is not None:
            curves["resynthesis (CREPE)"] = _masked(crepe_f0[0][i], crepe_f0[1][i],
                                                    self.min_confidence, n)
        if "f0_hz_pred" in outputs:  # MIDI models: the MIDI decoder's f0
            curves["MIDI decoder f0"] = _masked(outputs["f0_hz_pred"][i], n_frames=n)
        elif "harm_audio" in outputs and "f0_hz" in outputs:  # InverseSynthesis
            curves["harmonic encoder f0"] = _masked(outputs["f0_hz"][i], n_frames=n)
        return curves

    def _pianorolls(self, i: int, outputs: dict):
        if "pianoroll" not in outputs:
            return None
        from ddsp_models.training.features import NOTE_ACTIVE, NOTE_VELOCITIES, reference_pianoroll

        estimate = np.asarray(_numpy(outputs["pianoroll"][i]), np.float32)
        try:
            reference = reference_pianoroll({k: _numpy(self.batch[k][i]) for k in
                                             (NOTE_VELOCITIES, NOTE_ACTIVE) if k in self.batch})
        except ValueError:  # no note annotations: the prediction alone
            reference = np.zeros_like(estimate)
        return reference, estimate

    # ------------------------------------------------------------------ all
    def write(self, model, step: int, config_text: str | None = None) -> list[str]:
        """Runs `model` on the batch and writes every summary at `step`.

        Args:
          model: a `ddsp_models.training.models.Model`.
          step: the training step.
          config_text: gin config to write as text (default: `gin.operative_config_str()`
            the first time `write` is called, not again).

        Returns:
          the tags written.
        """
        import time

        start = time.perf_counter()
        outputs = model(self.batch, training=False)
        audio_gen = np.asarray(_numpy(model.get_audio_from_outputs(outputs)), np.float32)
        crepe_f0 = self._crepe_f0(audio_gen)
        extra_audio = {}
        if "synth_audio" in outputs and "midi_audio" in outputs:
            extra_audio["synthcoder"] = _numpy(outputs["synth_audio"])
        if "sin_audio" in outputs and "harm_audio" in outputs:
            extra_audio["sinusoids"] = _numpy(outputs["sin_audio"])
        tags = []
        with self.writer.as_default():
            for i in range(self.audio.shape[0]):
                n = i + 1
                label = f" ({self.ids[i]})" if self.ids else ""
                clips = {"original": self.audio[i], "resynthesis": audio_gen[i],
                         **{name: audio[i] for name, audio in extra_audio.items()}}
                for name, clip in clips.items():
                    tags.append(f"audio/{n}_{name}")
                    audio_summary(tags[-1], clip, self.sample_rate, step)
                tags.append(f"spectrogram/{n}")
                image_summary(tags[-1], figure_png(
                    plotting.plot_spectrograms, {"original": self.audio[i],
                                                 "resynthesis": audio_gen[i]},
                    sample_rate=self.sample_rate, title=f"step {step}, example {n}{label}"), step)
                curves = self._f0_curves(i, outputs, crepe_f0)
                if curves:
                    tags.append(f"f0/{n}")
                    image_summary(tags[-1], figure_png(
                        plotting.plot_f0, curves, frame_rate=self.frame_rate,
                        title=f"f0, step {step}, example {n}{label}"), step)
                rolls = self._pianorolls(i, outputs)
                if rolls is not None:
                    tags.append(f"pianoroll/{n}")
                    image_summary(tags[-1], figure_png(
                        plotting.plot_pianorolls, *rolls, frame_rate=self.frame_rate,
                        title=f"notes, step {step}, example {n}{label}"), step)
                if all(k in outputs for k in ("sin_freqs", "sin_amps", "harm_sin_freqs",
                                              "harm_sin_amps")):
                    tags.append(f"sinusoids/{n}")
                    image_summary(tags[-1], figure_png(
                        plotting.plot_sinusoids_vs_harmonics, self.audio[i],
                        _numpy(outputs["sin_freqs"][i]), _numpy(outputs["sin_amps"][i]),
                        _numpy(outputs["harm_sin_freqs"][i]), _numpy(outputs["harm_sin_amps"][i]),
                        sample_rate=self.sample_rate,
                        frame_rate=int(outputs["sin_freqs"].shape[1]) / self.seconds,
                        title=f"step {step}, example {n}{label}"), step)
            if config_text is None and not self._config_written:
                import gin

                config_text = gin.operative_config_str()
            if config_text:
                tags.append("config/operative_config")
                config_summary(config_text, step)
                self._config_written = True
            self.writer.flush()
        logger.info("step %d: %d validation summaries (audio, images) in %.1f s -> %s", step,
                    len(tags), time.perf_counter() - start, self.log_dir)
        return tags


def latest_images(log_dir, prefix: str = "") -> dict:
    """The newest image of each tag starting with `prefix` in the event files of
    `log_dir`: ``{tag: (step, png bytes)}`` (empty when there are none). Only the newest
    event file holding such images is read (each training call starts a new file)."""
    import glob

    paths = glob.glob(os.path.join(os.fspath(log_dir), "events.out.tfevents.*"))
    for path in sorted(paths, key=os.path.getmtime, reverse=True):
        found = {}
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("image") and value.tag.startswith(prefix):
                    if value.tag not in found or event.step >= found[value.tag][0]:
                        found[value.tag] = (int(event.step), value.image.encoded_image_string)
        if found:
            return found
    return {}
