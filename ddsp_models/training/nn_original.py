"""The rest of the original DDSP's ``training.nn`` API, with its signatures and behaviour.

`ddsp_models.training.nn` re-exports everything here, so code written against the original
(``nn.DictLayer``, ``nn.ResNet``, ``nn.get_note_mask``, ...) runs unchanged. This package's
own models use `nn`'s layers and `training.midi`'s note helpers; the note functions here
keep the original's conventions instead (a region per pitch *change*, silent regions
counted and then masked; ``pool_over_notes`` returning ``(mean, std)``).

Shapes: sequences `[batch, time, channels]`; images `[batch, time, freq, channels]`;
note masks `[batch, time, regions]`. float32 throughout.
"""
import inspect

import gin
import keras
import tensorflow as tf

from ddsp_models import core, seeding
from ddsp_models.gin_utils import register
from ddsp_models.training import nn


# ----------------------------------------------------------------------------- gin
def gin_register_keras_layers():
    """Makes every Keras layer (``@tf.keras.layers.Dense()``, ...) and ``tf.keras.Sequential``
    referenceable from gin configs, as the original does on import. Idempotent."""
    candidates = [("tf.keras.Sequential", keras.Sequential)]
    candidates += [(f"tf.keras.layers.{name}", value)
                   for name, value in inspect.getmembers(keras.layers)
                   if inspect.isclass(value) and issubclass(value, keras.layers.Layer)]
    for selector, cls in candidates:
        try:
            gin.get_configurable(selector)
        except ValueError:  # not registered yet
            gin.external_configurable(cls, selector)


# ---------------------------------------------------------------------------- shapes
def ensure_4d(x):
    """`[batch, ch]` -> `[batch, 1, 1, ch]`; `[batch, time, ch]` -> `[batch, time, 1, ch]`."""
    if len(x.shape) == 2:
        return x[:, tf.newaxis, tf.newaxis, :]
    if len(x.shape) == 3:
        return x[:, :, tf.newaxis, :]
    return x


def inv_ensure_4d(x, n_dims):
    """Undoes `ensure_4d` for an input of rank `n_dims`."""
    if n_dims == 2:
        return x[:, 0, 0, :]
    if n_dims == 3:
        return x[:, :, 0, :]
    return x


# ------------------------------------------------------------------------ DictLayer
def _lookup(key: str, features: dict):
    """``features['a']['b']`` for key ``'a/b'``; KeyError when absent."""
    value = features
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


class DictLayer(keras.layers.Layer):
    """A layer called with tensors or dicts of tensors that returns a dict.

    The input keys default to `call`'s required argument names (arguments with defaults
    are looked up too and fall back to their default); the output keys default to `call`'s
    return annotation (a list of names). Called with dicts, the input keys are read from
    the merged dicts (``'a/b'`` reads a nested entry); tensors passed positionally come
    first. A `call` that returns a dict is returned as it is; otherwise its outputs are
    zipped with the output keys.

    Args:
      input_keys: keys to read (overrides the argument names; then defaults are not used).
      output_keys: names of the outputs (overrides the return annotation).
    """

    def __init__(self, input_keys=None, output_keys=None, **kwargs):
        super().__init__(**kwargs)
        if not input_keys:
            input_keys = self.get_argument_names("call")
            self.default_input_keys = list(self.get_default_argument_names("call"))
            self.default_input_values = list(self.get_default_argument_values("call"))
        else:
            self.default_input_keys, self.default_input_values = [], []
        self.input_keys = list(input_keys)
        self.output_keys = list(output_keys or self.get_return_annotations("call"))

    @property
    def all_input_keys(self):
        return self.input_keys + self.default_input_keys

    @property
    def n_inputs(self):
        return len(self.all_input_keys)

    def build(self, *args, **kwargs):
        self.built = True  # sub-layers build on their first call

    def __call__(self, *inputs, **kwargs):
        merged = {}
        for value in inputs:
            if isinstance(value, dict):
                merged.update(value)
        tensors = [v for v in inputs if not isinstance(v, dict)]
        for key in self.all_input_keys:
            if key in kwargs:
                merged[key] = kwargs.pop(key)
        for key in self.input_keys:
            try:
                tensors.append(_lookup(key, merged))
            except KeyError:
                pass
        for key, default in zip(self.default_input_keys, self.default_input_values):
            try:
                tensors.append(_lookup(key, merged))
            except KeyError:
                if len(tensors) < self.n_inputs:
                    tensors.append(default)
        if len(tensors) != self.n_inputs:
            raise TypeError(f"{self.name}: got {len(tensors)} input tensors (arguments, dict "
                            f"entries and defaults) but expects {self.n_inputs}: input keys "
                            f"{self.input_keys}, default keys {self.default_input_keys}, dict "
                            f"keys {sorted(merged)}")
        outputs = super().__call__(*tensors, **kwargs)
        if isinstance(outputs, dict):
            return outputs
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if len(outputs) != len(self.output_keys):
            raise ValueError(f"{self.name}: output keys {self.output_keys} do not match the "
                             f"{len(outputs)} outputs of call()")
        return dict(zip(self.output_keys, outputs))

    def _spec(self, method):
        return inspect.getfullargspec(getattr(self, method))

    def get_argument_names(self, method):
        """Required argument names of `method` (without self)."""
        spec = self._spec(method)
        n_defaults = len(spec.defaults or ())
        return spec.args[1:len(spec.args) - n_defaults]

    def get_default_argument_names(self, method):
        spec = self._spec(method)
        return spec.args[len(spec.args) - len(spec.defaults or ()):] if spec.defaults else []

    def get_default_argument_values(self, method):
        return list(self._spec(method).defaults or [])

    def get_return_annotations(self, method):
        annotation = self._spec(method).annotations.get("return", [])
        return list(annotation) if isinstance(annotation, (list, tuple)) else [annotation]


# ------------------------------------------------------------- straight-through estimators
def straight_through_softmax(logits):
    """A one-hot sample of the softmax distribution of `logits` (`[..., n]`); the gradient
    is that of the sampled class's probability. Returns (sample, probs)."""
    logits = core.tf_float32(logits, "logits")
    probs = tf.nn.softmax(logits)
    uniform = seeding.uniform(tf.shape(logits), 1e-20, 1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))  # argmax(logits + gumbel) ~ softmax
    sample = tf.one_hot(tf.argmax(logits + gumbel, axis=-1), tf.shape(logits)[-1])
    p_sample = probs * sample
    return tf.stop_gradient(sample - p_sample) + p_sample, probs


def straight_through_choice(logits, values):
    """One of `values` (`[..., n]`) picked by a `straight_through_softmax` sample: `[..., 1]`."""
    choice, _ = straight_through_softmax(logits)
    return tf.reduce_sum(choice * values, axis=-1, keepdims=True)


def straight_through_int_quantization(x):
    """round(x) forward, the identity's gradient backward."""
    return x + tf.stop_gradient(tf.math.round(x) - x)


# ----------------------------------------------------------------------- note masks
def _region_mask(edges, max_regions):
    """`[batch, time]` 0/1 region starts -> one-hot region membership `[b, t, max_regions]`."""
    index = tf.cumsum(tf.cast(edges, tf.int32), axis=1) - 1
    return tf.cast(index[..., tf.newaxis] == tf.range(max_regions)[tf.newaxis, tf.newaxis, :],
                   tf.float32)


def get_note_mask(q_pitch, max_regions=100, note_on_only=True):
    """Regions of constant quantised pitch (or velocity): `[batch, time, max_regions]`.

    Frame 0 starts region 0; every change of value at frames 1 .. time-2 starts the next
    (the last frame always stays in the region before it). With `note_on_only`, regions
    whose mean value is not positive (silences) are zeroed but keep their index.
    """
    q_pitch = core.tf_float32(q_pitch, "q_pitch")
    if len(q_pitch.shape) == 3:
        q_pitch = q_pitch[:, :, 0]
    changes = tf.abs(q_pitch[:, 1:] - q_pitch[:, :-1]) > 0
    edges = tf.concat([tf.ones_like(q_pitch[:, :1], tf.bool), changes[:, :-1],
                       tf.zeros_like(q_pitch[:, :1], tf.bool)], axis=1)
    note_mask = _region_mask(edges, max_regions)
    if note_on_only:
        pitches = get_note_moments(q_pitch, note_mask, return_std=False)
        note_mask *= tf.cast(pitches > 0.0, tf.float32)[:, tf.newaxis, :]
    return note_mask


def get_note_mask_from_onset(q_pitch, onset, max_regions=100, note_on_only=True):
    """Regions started by `onset` (1 at onsets; frame 0 always starts one):
    `[batch, time, max_regions]`; with `note_on_only`, frames of pitch <= 0 are zeroed."""
    q_pitch = core.tf_float32(q_pitch, "q_pitch")
    onset = core.tf_float32(onset, "onset")
    if len(q_pitch.shape) == 3:
        q_pitch = q_pitch[:, :, 0]
    if len(onset.shape) == 3:
        onset = onset[:, :, 0]
    edges = tf.concat([tf.ones_like(onset[:, :1]), onset[:, 1:]], axis=1)
    note_mask = _region_mask(edges, max_regions)
    if note_on_only:
        note_mask *= tf.cast(q_pitch > 0.0, tf.float32)[:, :, tf.newaxis]
    return note_mask


def get_note_lengths(note_mask):
    """Frames per region: `[batch, time, regions]` -> `[batch, regions]`."""
    return tf.reduce_sum(note_mask, axis=1)


def get_note_moments(x, note_mask, return_std=True):
    """Mean (and standard deviation) of `x` (`[batch, time(, dims)]`) over each region:
    `[batch, regions(, dims)]`; empty regions give 0. Returns mean, or (mean, std)."""
    x = core.tf_float32(x, "x")
    is_2d = len(x.shape) == 2
    if is_2d:
        x = x[:, :, tf.newaxis]
    mask = note_mask[..., tf.newaxis]  # [b, t, n, 1]
    lengths = tf.reduce_sum(mask, axis=1)  # [b, n, 1]
    mean = core.safe_divide(tf.reduce_sum(x[:, :, tf.newaxis, :] * mask, axis=1), lengths)
    deviation = (x[:, :, tf.newaxis, :] - mean[:, tf.newaxis, :, :]) * mask
    std = core.safe_divide(tf.reduce_sum(deviation ** 2.0, axis=1), lengths) ** 0.5
    if is_2d:
        mean, std = mean[:, :, 0], std[:, :, 0]
    return (mean, std) if return_std else mean


def pool_over_notes(x, note_mask, return_std=True):
    """Each frame gets its region's mean of `x` (`[batch, time, dims]`), and std: returns
    mean or (mean, std), each `[batch, time, dims]`."""
    mean, std = get_note_moments(x, note_mask, return_std=True)
    spread = lambda v: tf.reduce_sum(v[:, tf.newaxis] * note_mask[..., tf.newaxis], axis=2)  # noqa: E731
    return (spread(mean), spread(std)) if return_std else spread(mean)


def get_short_note_loss_mask(note_mask, note_lengths, note_pitches, min_length=40):
    """`[batch, time]`: 1 on frames of sounding regions (pitch > 0) shorter than
    `min_length` frames."""
    short = tf.cast(tf.logical_and(note_lengths < min_length, note_pitches > 0.0), tf.float32)
    return tf.reduce_sum(note_mask * short[:, tf.newaxis, :], axis=-1)


# ---------------------------------------------------------------------- normalisation
def get_norm(norm_type, conditional, shift_only):
    """`ConditionalNorm` when `conditional`, else `nn.Normalize`."""
    if conditional:
        return ConditionalNorm(norm_type=norm_type, shift_only=shift_only)
    return nn.Normalize(norm_type)


class ConditionalScaleAndShift(keras.layers.Layer):
    """Called on (x `[..., ch]`, z): x * scale + shift with [scale, shift] = Dense(2 ch)(z)
    (only + Dense(ch)(z) with `shift_only`)."""

    def __init__(self, shift_only=False, **kwargs):
        super().__init__(**kwargs)
        self.shift_only = shift_only
        self.dense = None

    def build(self, input_shapes):
        self.x_ch = int(input_shapes[0][-1])
        self.dense = keras.layers.Dense(self.x_ch if self.shift_only else 2 * self.x_ch)
        self.dense.build(tuple(input_shapes[1]))

    def call(self, inputs):
        x, z = inputs
        if self.shift_only:
            return x + self.dense(z)
        scale_shift = self.dense(z)
        return x * scale_shift[..., :self.x_ch] + scale_shift[..., self.x_ch:]


@register("nn")
class ConditionalNorm(keras.layers.Layer):
    """`nn.normalize_op` of x, then `ConditionalScaleAndShift` by z; called on (x, z)."""

    def __init__(self, norm_type="instance", shift_only=False, **kwargs):
        super().__init__(**kwargs)
        self.norm_type = norm_type
        self.conditional_scale_and_shift = ConditionalScaleAndShift(shift_only=shift_only)

    def build(self, *args, **kwargs):
        self.built = True

    def call(self, inputs):
        x, z = inputs
        return self.conditional_scale_and_shift([nn.normalize_op(x, self.norm_type), z])


# ------------------------------------------------------------------------ resampling
def polyphase_resample(x, stride=2, resample_type="down", trim_or_pad="pad"):
    """Trades time for channels: 'down' `[b, t, ch]` -> `[b, t / stride, ch * stride]`
    (time padded or trimmed to a multiple of stride), 'up' `[b, t, ch]` ->
    `[b, t * stride, ch / stride]` (channels padded or trimmed). 4-D `[b, t, 1, ch]` too."""
    is_4d = len(x.shape) == 4
    if is_4d:
        x = x[:, :, 0, :]
    n_time, n_ch = x.shape[1], x.shape[2]
    if resample_type == "down":
        extra = n_time % stride
        if trim_or_pad == "pad" and extra:
            x = tf.pad(x, [[0, 0], [0, stride - extra], [0, 0]])
        elif extra:
            x = x[:, :-extra, :]
        x = tf.reshape(x, [-1, x.shape[1] // stride, n_ch * stride])
    elif resample_type == "up":
        extra = n_ch % stride
        if trim_or_pad == "pad" and extra:
            x = tf.pad(x, [[0, 0], [0, 0], [0, stride - extra]])
        elif extra:
            x = x[:, :, :-extra]
        x = tf.reshape(x, [-1, n_time * stride, x.shape[2] // stride])
    else:
        raise ValueError(f"`resample_type` must be 'up' or 'down', got {resample_type!r}")
    return x[:, :, tf.newaxis, :] if is_4d else x


@register("nn")
class PolyphaseResample(keras.layers.Layer):
    """`polyphase_resample` as a layer."""

    def __init__(self, stride=2, resample_type="down", trim_or_pad="pad", **kwargs):
        super().__init__(**kwargs)
        self.stride, self.resample_type, self.trim_or_pad = stride, resample_type, trim_or_pad

    def call(self, x):
        return polyphase_resample(x, self.stride, self.resample_type, self.trim_or_pad)
