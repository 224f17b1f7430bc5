"""Training losses: multi-scale spectral loss, parameter losses, CREPE embedding loss, groups.

A loss is a Keras layer returning a float32 scalar; `get_losses_dict(...)` returns
`{loss.name: scalar}` so models can sum and log losses by name. Names, defaults and argument
order follow the original DDSP 3.7.0 `ddsp.losses` (tests/test_golden_dsp.py compares).

`loss_type` everywhere: 'L1' (mean absolute difference), 'L2' (mean squared difference) or
'COSINE' (mean over vectors along the last axis of 1 - cosine similarity).
"""
import functools
import inspect
from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.checks import non_negative_float, positive_int
from ddsp_models.core import DB_RANGE, hz_to_midi, safe_divide, safe_log, tf_float32
from ddsp_models.crepe_wrappers import EmbeddingCREPE as PretrainedCREPE  # the original's losses.PretrainedCREPE
from ddsp_models.gin_utils import register

TensorDict = Dict[str, tf.Tensor]
LOSS_TYPES = ("L1", "L2", "COSINE")
SPECTRAL_OVERLAP = 0.75  # overlap of the STFT frames of SpectralLoss.
# Loudness term of SpectralLoss: compute_loudness's defaults (passed explicitly, so gin
# bindings of compute_loudness do not change the loss); the frame size is the loss's
# `loudness_n_fft` (the original's 2048 by default).
LOUDNESS_ARGS = dict(sample_rate=16000, frame_rate=250, range_db=DB_RANGE, ref_db=0.0,
                     use_tf=True, padding="center")
# The original's factor per CREPE layer (PretrainedCREPEEmbeddingLoss's weight is 20 x it).
CREPE_EMBEDDING_SCALES = {
    "conv1-BN": 1.3, "conv1-maxpool": 1.0, "conv2-BN": 1.4, "conv2-maxpool": 1.1, "conv3-BN": 1.9,
    "conv3-maxpool": 1.6, "conv4-BN": 1.5, "conv4-maxpool": 1.4, "conv5-BN": 1.9, "conv5-maxpool": 1.7,
    "conv6-BN": 30, "conv6-maxpool": 25, "classifier": 130,
}


def check_loss_type(loss_type) -> str:
    upper = loss_type.upper() if isinstance(loss_type, str) else None
    if upper not in LOSS_TYPES:
        raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {loss_type!r}.")
    return upper


def _broadcasts(shape_a, shape_b) -> bool:
    """Whether two static shapes broadcast numpy-style (unknown sizes count as compatible)."""
    for x, y in zip(reversed(shape_a), reversed(shape_b)):
        if x is not None and y is not None and x != y and 1 not in (x, y):
            return False
    return True


def _align_weights(weights: tf.Tensor, shape) -> tf.Tensor:
    """Weights as given when they broadcast against `shape` (the original's rule); otherwise
    lower-rank weights are batch-first (`[batch]` per example, `[batch, time]` ...) and get
    trailing unit axes."""
    rank = len(shape)
    if weights.shape.rank is None or weights.shape.rank >= rank or \
            _broadcasts(weights.shape.as_list(), list(shape)):
        return weights
    for _ in range(rank - weights.shape.rank):
        weights = weights[..., tf.newaxis]
    return weights


def mean_difference(target, value, loss_type: str = "L1", weights=None) -> tf.Tensor:
    """Mean difference of two same-shape tensors.

    Args:
      target, value: tensors of one shape.
      loss_type: 'L1' mean(|d * w|), 'L2' mean(d^2 * w) with d = target - value, or 'COSINE'
        mean(w * (1 - cos)) over vectors along the last axis.
      weights: None, or weights that broadcast against the elements (numpy rules, as the
        original; for COSINE against `[..., 1]`); lower-rank weights that do not broadcast
        are read batch-first, e.g. `[batch]` per example.

    Raises:
      ValueError: for an unknown loss_type.
    """
    loss_type = check_loss_type(loss_type)
    target = tf_float32(target, "target")
    value = tf_float32(value, "value")
    return _mean_difference(target, value, loss_type, None if weights is None else tf_float32(weights, "weights"))


def _mean_difference(target: tf.Tensor, value, loss_type: str, weights=None) -> tf.Tensor:
    """mean_difference for checked inputs; for 'L1'/'L2', `value=None` means `target` already
    holds target - value (saves a pass when it is at hand)."""
    if loss_type == "COSINE":
        dot = tf.reduce_sum(target * value, axis=-1, keepdims=True)
        norms = tf.norm(target, axis=-1, keepdims=True) * tf.norm(value, axis=-1, keepdims=True)
        distance = 1.0 - safe_divide(dot, norms)
        if weights is not None:
            distance = distance * _align_weights(weights, distance.shape.as_list())
        return tf.reduce_mean(distance)
    difference = target if value is None else target - value
    if weights is not None:
        weights = _align_weights(weights, difference.shape.as_list())
    if loss_type == "L1":
        return tf.reduce_mean(tf.abs(difference if weights is None else difference * weights))
    squared = difference ** 2
    return tf.reduce_mean(squared if weights is None else squared * weights)


def amp_loss(amp, amp_target, loss_type: str = "L1", weights=None, log: bool = False, amin: float = 1e-5):
    """mean_difference of two amplitudes; with `log`, of log10(max(amplitude, amin))."""
    if log:
        amp = core.log10(tf.maximum(amin, tf_float32(amp, "amp")))
        amp_target = core.log10(tf.maximum(amin, tf_float32(amp_target, "amp_target")))
    return mean_difference(amp, amp_target, loss_type, weights)


def freq_loss(f_hz, f_hz_target, loss_type: str = "L1", weights=None):
    """mean_difference of two frequencies (Hz) in MIDI note numbers."""
    return mean_difference(hz_to_midi(f_hz), hz_to_midi(f_hz_target), loss_type, weights)


@functools.lru_cache(maxsize=None)
def _call_argument_names(loss_class) -> tuple:
    return tuple(inspect.signature(loss_class.call).parameters)[1:]  # without self


def _as_tensor(value, name: str):
    """Positional loss input -> tensor (float32 unless already a tensor); dicts unchanged."""
    if isinstance(value, (dict, tf.Tensor, tf.Variable, keras.Variable)):
        return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be a numeric array or tensor, got {type(value).__name__} {value!r}.")
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value
    return tf_float32(value, name)


def _check_weights(weights, reference: tf.Tensor):
    if weights is None:
        return None
    weights = tf_float32(weights, "weights")
    if weights.shape.rank is not None and weights.shape.rank > reference.shape.rank:
        raise ValueError(f"`weights` of shape {weights.shape.as_list()} has more axes than the compared "
                         f"tensors {reference.shape.as_list()}.")
    return weights


def check_same_shape(target: tf.Tensor, value: tf.Tensor, target_name: str, value_name: str) -> None:
    if target.shape.is_fully_defined() and value.shape.is_fully_defined() and target.shape != value.shape:
        raise ValueError(f"`{target_name}` {target.shape.as_list()} and `{value_name}` "
                         f"{value.shape.as_list()} must have the same shape.")


class Loss(keras.layers.Layer):
    """Base class: a Keras layer whose call returns a scalar loss."""

    def __init__(self, name: str | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # losses compute in float32 under every precision
        super().__init__(name=name, **kwargs)

    def __call__(self, *args, **kwargs):
        # Keras 3 takes only tensors positionally: convert numbers and lists here, with errors
        # naming the argument (dicts of tensors, e.g. for LossGroup, pass through).
        names = _call_argument_names(type(self))
        args = tuple(_as_tensor(arg, names[i] if i < len(names) else f"argument {i}")
                     for i, arg in enumerate(args))
        return super().__call__(*args, **kwargs)

    def build(self, *args, **kwargs):
        # No weights of its own; sub-layers (e.g. CREPE) build on their first call.
        self.built = True

    def get_losses_dict(self, *args, **kwargs) -> dict:
        """Calls the loss; returns `{self.name: scalar}`, or the call's own dict of named
        scalars for a loss made of several terms (e.g. the original's
        HarmonicConsistencyLoss: amplitude, distribution and f0 terms)."""
        value = self(*args, **kwargs)
        if isinstance(value, dict):
            return dict(value)
        return {self.name: value}


@register("losses")
class SpectralLoss(Loss):
    """Multi-scale spectrogram loss between target and generated audio.

    For each FFT size (Hann window, 75% overlap, end padded) the STFT magnitude of both
    signals is computed once and compared with `loss_type`, as selected by the weights:
      mag_weight: magnitudes;
      delta_time_weight: their differences between consecutive frames;
      delta_freq_weight: their differences between consecutive frequency bins;
      cumsum_freq_weight: their cumulative sums over frequency (an earth-mover-like term
        that keeps growing as a partial moves further from its target);
      logmag_weight: natural-log magnitudes (floored at 1e-5);
    and, once for the whole signal, loudness_weight: A-weighted loudness in dB
    (spectral_ops.compute_loudness with `loudness_n_fft`-sample frames, the original's 2048 by
    default, and its other defaults: 16 kHz audio, 250 Hz, 80 dB range, 'center' framing;
    512 is the frame of the features' loudness and of the loudness metric). Terms whose
    weight is 0 are not computed. The loss is the weighted sum over terms and scales.

    Call: `loss(target_audio, audio, weights=None)` with audio `[batch, n_samples]` and
    optional weights (see mean_difference; `[batch]` weighs each example). Returns a float32
    scalar.
    """

    def __init__(self, fft_sizes=(2048, 1024, 512, 256, 128, 64), loss_type: str = "L1",
                 mag_weight: float = 1.0, delta_time_weight: float = 0.0, delta_freq_weight: float = 0.0,
                 cumsum_freq_weight: float = 0.0, logmag_weight: float = 0.0, loudness_weight: float = 0.0,
                 loudness_n_fft: int = 2048, name: str = "spectral_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(fft_sizes, (int, str)) or not fft_sizes:
            raise ValueError(f"`fft_sizes` must be a non-empty sequence of FFT sizes, got {fft_sizes!r}.")
        self.fft_sizes = tuple(int(size) for size in fft_sizes)
        for size in self.fft_sizes:
            if size < 4 or size % 4:
                raise ValueError(f"`fft_sizes` entries must be multiples of 4 (75% overlap), got {size}.")
        self.loss_type = check_loss_type(loss_type)
        self.mag_weight = non_negative_float("`mag_weight`", mag_weight)
        self.delta_time_weight = non_negative_float("`delta_time_weight`", delta_time_weight)
        self.delta_freq_weight = non_negative_float("`delta_freq_weight`", delta_freq_weight)
        self.cumsum_freq_weight = non_negative_float("`cumsum_freq_weight`", cumsum_freq_weight)
        self.logmag_weight = non_negative_float("`logmag_weight`", logmag_weight)
        self.loudness_weight = non_negative_float("`loudness_weight`", loudness_weight)
        self.loudness_n_fft = positive_int("`loudness_n_fft`", loudness_n_fft)

    def get_config(self):
        config = super().get_config()
        config.update(fft_sizes=self.fft_sizes, loss_type=self.loss_type, mag_weight=self.mag_weight,
                      delta_time_weight=self.delta_time_weight, delta_freq_weight=self.delta_freq_weight,
                      cumsum_freq_weight=self.cumsum_freq_weight, logmag_weight=self.logmag_weight,
                      loudness_weight=self.loudness_weight, loudness_n_fft=self.loudness_n_fft)
        return config

    def _spectral_terms(self):
        """(weight, transform of a magnitude spectrogram, is the transform linear) per active term."""
        terms = (
            (self.mag_weight, lambda mag: mag, True),
            (self.delta_time_weight, lambda mag: mag[:, 1:, :] - mag[:, :-1, :], True),
            (self.delta_freq_weight, lambda mag: mag[:, :, 1:] - mag[:, :, :-1], True),
            (self.cumsum_freq_weight, lambda mag: tf.cumsum(mag, axis=2), True),
            (self.logmag_weight, safe_log, False),
        )
        return [term for term in terms if term[0] > 0.0]

    def call(self, target_audio, audio, weights=None):
        target_audio = spectral_ops.check_audio(target_audio, "target_audio")
        audio = spectral_ops.check_audio(audio, "audio")
        check_same_shape(target_audio, audio, "target_audio", "audio")
        weights = _check_weights(weights, audio)
        loss = tf.constant(0.0)
        terms = self._spectral_terms()
        for size in self.fft_sizes if terms else ():
            target_mag = spectral_ops.compute_mag(target_audio, size=size, overlap=SPECTRAL_OVERLAP, pad_end=True)
            value_mag = spectral_ops.compute_mag(audio, size=size, overlap=SPECTRAL_OVERLAP, pad_end=True)
            # L1/L2 of a linear transform T: T(target) - T(value) = T(target - value), one pass less.
            any_linear = any(linear for _, _, linear in terms)
            difference = target_mag - value_mag if self.loss_type != "COSINE" and any_linear else None
            for weight, transform, linear in terms:
                if linear and difference is not None:
                    term = _mean_difference(transform(difference), None, self.loss_type, weights)
                else:
                    term = _mean_difference(transform(target_mag), transform(value_mag), self.loss_type, weights)
                loss += weight * term
        if self.loudness_weight > 0.0:
            target = spectral_ops.compute_loudness(target_audio, n_fft=self.loudness_n_fft, **LOUDNESS_ARGS)
            value = spectral_ops.compute_loudness(audio, n_fft=self.loudness_n_fft, **LOUDNESS_ARGS)
            loss += self.loudness_weight * _mean_difference(target, value, self.loss_type, weights)
        return loss


@register("losses")
class ParamLoss(Loss):
    """Weighted difference between predicted and target parameters (any same shape).

    Call: `loss(pred, target, weights=None)` (weights: see mean_difference). Returns
    weight * mean difference under `loss_type`.
    """

    def __init__(self, weight: float = 1.0, loss_type: str = "L1", name: str = "param_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = non_negative_float("`weight`", weight)
        self.loss_type = check_loss_type(loss_type)

    def get_config(self):
        config = super().get_config()
        config.update(weight=self.weight, loss_type=self.loss_type)
        return config

    def call(self, pred, target, weights=None):
        pred = tf_float32(pred, "pred")
        target = tf_float32(target, "target")
        check_same_shape(pred, target, "pred", "target")
        weights = _check_weights(weights, pred)
        return self.weight * _mean_difference(pred, target, self.loss_type, weights)


@register("losses")
class EmbeddingLoss(Loss):
    """Difference between the embeddings of target and generated audio by a pretrained model.

    Args:
      weight: factor of the loss (0 skips the model).
      loss_type: see mean_difference.
      pretrained_model: a callable layer, audio `[batch, n_samples]` -> embeddings.

    Call: `loss(target_audio, audio)`.
    """

    def __init__(self, weight: float = 1.0, loss_type: str = "L1", pretrained_model=None,
                 name: str = "embedding_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = non_negative_float("`weight`", weight)
        self.loss_type = check_loss_type(loss_type)
        self.pretrained_model = pretrained_model

    def call(self, target_audio, audio):
        if self.weight <= 0.0:
            return tf.constant(0.0)
        target_audio = spectral_ops.check_audio(target_audio, "target_audio")
        audio = spectral_ops.check_audio(audio, "audio")
        check_same_shape(target_audio, audio, "target_audio", "audio")
        target = self.pretrained_model(target_audio)
        value = self.pretrained_model(audio)
        return self.weight * _mean_difference(target, value, self.loss_type)


@register("losses")
class PretrainedCREPEEmbeddingLoss(EmbeddingLoss):
    """EmbeddingLoss of frozen pretrained CREPE (losses.PretrainedCREPE), as the original.

    Both signals are cut into non-overlapping 1024-sample frames (16 kHz audio, 512 zeros on
    each end), normalised per frame, and the activations of `activation_layer` compared with
    `loss_type`. The loss is multiplied by 20 * CREPE_EMBEDDING_SCALES[activation_layer] *
    weight (2600 x weight for 'classifier'), the original's per-layer normalisation.
    Differentiable w.r.t. the audio.

    Call: `loss(target_audio, audio)` with audio `[batch, n_samples]`.
    """

    def __init__(self, weight: float = 1.0, loss_type: str = "L1", model_capacity: str = "tiny",
                 activation_layer: str = "classifier", name: str = "pretrained_crepe_embedding_loss", **kwargs):
        if activation_layer not in CREPE_EMBEDDING_SCALES:
            raise ValueError(f"`activation_layer` must be one of {sorted(CREPE_EMBEDDING_SCALES)}, got "
                             f"{activation_layer!r}.")
        weight = non_negative_float("`weight`", weight)
        super().__init__(weight=20.0 * CREPE_EMBEDDING_SCALES[activation_layer] * weight, loss_type=loss_type,
                         name=name, pretrained_model=PretrainedCREPE(model_capacity=model_capacity,
                                                                     activation_layer=activation_layer),
                         **kwargs)
        self.model_capacity = model_capacity
        self.activation_layer = activation_layer


def _lookup(outputs: dict, key: str, loss_name: str):
    """outputs[key], where 'a/b' may also address outputs['a']['b'] (nested dicts)."""
    if key in outputs:
        return outputs[key]
    node = outputs
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            available = sorted(str(k) for k in outputs)
            raise ValueError(f"LossGroup: loss '{loss_name}' needs input '{key}', which is not in the "
                           f"outputs (top-level keys: {available}).")
        node = node[part]
    return node


@register("losses")
class LossGroup(Loss):
    """A set of losses, each reading its inputs from a (nested) dict of tensors by key.

    Args:
      dag: list of `(loss, input_keys)`: `loss` a Loss layer (or the name of one passed as a
        keyword argument), `input_keys` a key or list of keys into the outputs dict, passed
        positionally to the loss. Keys may be nested paths 'a/b' (outputs['a']['b']).
      **kwarg_losses: losses referenced by name in `dag` (for gin configs).

    Call / get_losses_dict: `group(outputs)` -> `{loss.name: scalar}` for every loss.
    """

    def __init__(self, dag, name: str = "loss_group", **kwarg_losses):
        super().__init__(name=name)
        if isinstance(dag, (str, dict)) or not isinstance(dag, (list, tuple)):
            raise ValueError(f"`dag` must be a list of (loss, [input_keys]) pairs, got {type(dag).__name__}.")
        for key, value in kwarg_losses.items():
            if not isinstance(value, keras.layers.Layer):
                raise TypeError(f"LossGroup keyword `{key}` must be a Loss layer, got {type(value).__name__}.")
        self.losses_and_keys = []
        for index, node in enumerate(dag):
            if not isinstance(node, (list, tuple)) or len(node) not in (2, 3):
                raise ValueError(f"`dag` entry {index} must be a (loss, [input_keys]) pair, got {node!r}.")
            loss, keys = node[0], node[1]  # a third element (output keys) is not needed
            if isinstance(loss, str):
                if loss not in kwarg_losses:
                    raise ValueError(f"`dag` entry {index} names loss '{loss}', which is not among the keyword "
                                     f"losses {sorted(kwarg_losses)}.")
                loss = kwarg_losses[loss]
            if not isinstance(loss, keras.layers.Layer):
                raise TypeError(f"`dag` entry {index} must hold a Loss layer, got {type(loss).__name__}.")
            keys = [keys] if isinstance(keys, str) else list(keys)
            if not all(isinstance(k, str) for k in keys):
                raise ValueError(f"`dag` entry {index} ({loss.name}): input keys must be strings, got {keys!r}.")
            self.losses_and_keys.append((loss, keys))
        names = [loss.name for loss, _ in self.losses_and_keys]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"LossGroup losses need distinct names; repeated: {duplicates}.")
        # Attribute assignment lets Keras track the losses' weights (e.g. CREPE's).
        self.loss_layers = [loss for loss, _ in self.losses_and_keys]

    @property
    def loss_names(self) -> list:
        return [loss.name for loss in self.loss_layers]

    @property
    def dag(self) -> list:
        """The nodes as the original's DAGLayer keeps them: `[loss name, [input keys]]`."""
        return [[loss.name, list(keys)] for loss, keys in self.losses_and_keys]

    def call(self, outputs):
        if not isinstance(outputs, dict):
            raise TypeError(f"LossGroup expects a dict of tensors, got {type(outputs).__name__}.")
        return {loss.name: loss(*[_lookup(outputs, key, loss.name) for key in keys])
                for loss, keys in self.losses_and_keys}

    def get_losses_dict(self, outputs) -> dict:
        """`{loss.name: scalar}` for every loss of the group."""
        return self(outputs)


# The original's experimental losses live in consistency_losses (which imports this module);
# they are reachable as losses.<name>, imported on first use.
_CONSISTENCY_LOSSES = ("FilteredNoiseConsistencyLoss", "HarmonicConsistencyLoss", "WassersteinConsistencyLoss",
                       "wasserstein_distance", "KDEConsistencyLoss", "TWMLoss", "HmmTranscriber")


def __getattr__(name):
    if name in _CONSISTENCY_LOSSES:
        from ddsp_models import consistency_losses

        return getattr(consistency_losses, name)
    raise AttributeError(f"module 'ddsp_models.losses' has no attribute {name!r}")
