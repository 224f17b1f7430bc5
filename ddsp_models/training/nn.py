"""Network layers: fully connected stacks, RNNs, dilated convolutions, normalisation, and the
output-splitting base class of the decoders (the 2-D ResNet is in `resnet`).

Shapes: sequences are `[batch, time, channels]`, float32. Layers with several sub-layers keep
each one as a named attribute (``stack_0``, ``stack_1``, ...), so Keras collects their weights
and `tf.train.Checkpoint` saves them (Keras 3 does not checkpoint plain lists of layers).

`Rnn`'s GRU is `gru.FastGRU` (a faster CPU time loop with the Keras GRU's weights and maths);
`gru.carry_rnn_states` makes `Rnn` layers continue from their previous call's state.
"""
import inspect
import math

import keras
import tensorflow as tf

from ddsp_models import checks, core
from ddsp_models.gin_utils import register
from ddsp_models.training import gru, precision
from ddsp_models.training.gru import FastGRU

NORM_TYPES = (None, "instance", "layer", "group")


# ----------------------------------------------------------------------------- helpers
def get_nonlinearity(nonlinearity):
    """A callable activation from a name ('relu', 'leaky_relu', 'tanh', ...) or a callable.

    Names are looked up in `tf.nn` first (so 'leaky_relu' has slope 0.2 below zero, as in
    the original DDSP), then in `keras.activations`.
    """
    if callable(nonlinearity):
        return nonlinearity
    if not isinstance(nonlinearity, str):
        raise TypeError(f"`nonlinearity` must be a name or a callable, got {nonlinearity!r}.")
    function = getattr(tf.nn, nonlinearity, None)
    if callable(function):
        return function
    try:
        return keras.activations.get(nonlinearity)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`nonlinearity`: unknown activation {nonlinearity!r}.") from error


def split_to_dict(tensor, tensor_splits):
    """Splits the last axis of `tensor` into a dict, in order.

    Args:
      tensor: `[..., n_channels]`.
      tensor_splits: sequence of (key, size) pairs; the sizes must add up to n_channels.

    Returns:
      {key: tensor[..., start:start + size]}.

    Raises:
      ValueError: when the sizes do not add up to the last axis, or a pair is malformed.
    """
    splits = check_splits(tensor_splits, "tensor_splits")
    sizes = [size for _, size in splits]
    n_channels = tensor.shape[-1]
    if n_channels is not None and sum(sizes) != n_channels:
        raise ValueError(
            f"split_to_dict: `tensor_splits` {splits} add up to {sum(sizes)} channels, but the "
            f"tensor's last axis has {n_channels} (shape {tensor.shape.as_list()}).")
    pieces = tf.split(tensor, sizes, axis=-1)
    return dict(zip([key for key, _ in splits], pieces))


def check_splits(splits, name: str):
    """Validated list of (key, size) pairs."""
    if isinstance(splits, dict):
        splits = list(splits.items())
    try:
        pairs = [(key, size) for key, size in splits]
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a sequence of (key, size) pairs, got {splits!r}.") from error
    for key, size in pairs:
        if not isinstance(key, str):
            raise ValueError(f"`{name}`: each entry must be (str key, size), got ({key!r}, {size!r}).")
        checks.positive_int(f"`{name}` size of {key!r}", size)
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"`{name}` repeats a key: {keys}.")
    return pairs


def as_key_list(keys, name: str):
    """A list of keys from a tuple/list of strings or a single string ('z' -> ['z'])."""
    if keys is None:
        return None
    if isinstance(keys, str):
        return [keys]
    keys = list(keys)
    if not all(isinstance(key, str) for key in keys):
        raise ValueError(f"`{name}` must be strings, got {keys!r}.")
    return keys


def get_features(features: dict, keys, owner: str):
    """[features[key] for key in keys]; ValueError naming the missing key and those present."""
    if not isinstance(features, dict):
        raise TypeError(f"{owner}: expected a dict of features, got {type(features).__name__}.")
    values = []
    for key in keys:
        if key not in features:
            raise ValueError(f"{owner}: input key '{key}' is missing; the features hold "
                             f"{sorted(features)}.")
        values.append(features[key])
    return values


def set_layers(owner: keras.layers.Layer, prefix: str, layers) -> list:
    """Assigns layers as attributes `prefix_0`, `prefix_1`, ... and returns their names."""
    names = []
    for index, layer in enumerate(layers):
        name = f"{prefix}_{index}"
        setattr(owner, name, layer)
        names.append(name)
    return names


def get_layers(owner: keras.layers.Layer, names) -> list:
    return [getattr(owner, name) for name in names]


# --------------------------------------------------------------------- fully connected
@register("nn")
class Fc(keras.layers.Layer):
    """Dense(ch) -> LayerNormalization (over channels) -> nonlinearity. `[..., in] -> [..., ch]`."""

    def __init__(self, ch: int = 128, nonlinearity="leaky_relu", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.ch = int(ch)
        self.dense = keras.layers.Dense(self.ch)
        self.norm = keras.layers.LayerNormalization()
        self.nonlinearity = get_nonlinearity(nonlinearity)

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.ch,))

    def call(self, x):
        return self.nonlinearity(self.norm(self.dense(x)))


@register("nn")
class FcStack(keras.layers.Layer):
    """`layers` Fc layers of width `ch`. `[..., in] -> [..., ch]`; with `layers=0` the
    identity `[..., in] -> [..., in]` (as the original DDSP, e.g. its tiny_instrument.gin)."""

    def __init__(self, ch: int = 256, layers: int = 2, nonlinearity="leaky_relu", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        checks.non_negative_int("FcStack `layers`", layers)
        self.ch = int(ch)
        self._fc_names = set_layers(self, "fc", [Fc(ch, nonlinearity) for _ in range(layers)])

    @property
    def fc_layers(self):
        return get_layers(self, self._fc_names)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.fc_layers:
            layer.build(shape)
            shape = shape[:-1] + (self.ch,)

    def call(self, x):
        for layer in self.fc_layers:
            x = layer(x)
        return x


# ---------------------------------------------------------------------------------- RNN
@register("nn")
class Rnn(keras.layers.Layer):
    """A GRU or LSTM over `[batch, time, channels]` -> `[batch, time, dims]` (or `[batch, dims]`).

    Args:
      dims: units (per direction).
      rnn_type: 'gru' or 'lstm'.
      return_sequences: every step's output (True) or only the last one.
      bidir: run both directions and concatenate (`[..., 2 * dims]`).
      fast_gru: for 'gru', use `FastGRU` (True) or the plain `keras.layers.GRU` (False); both
        compute the same function with the same weights. LSTMs always use Keras.
      recurrence: `FastGRU`'s loop implementation.
    """

    def __init__(self, dims: int, rnn_type: str = "gru", return_sequences: bool = True, bidir: bool = False,
                 fast_gru: bool = True, recurrence: str = "xla_loop", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        # Under mixed precision the recurrence stays float32 (training/precision.py).
        rnn_dtype = "float32" if precision.is_mixed(self.dtype_policy) else None
        if rnn_type == "gru":
            layer = (FastGRU(dims, recurrence=recurrence, return_sequences=return_sequences,
                             dtype=rnn_dtype) if fast_gru
                     else keras.layers.GRU(dims, return_sequences=return_sequences, dtype=rnn_dtype))
        elif rnn_type == "lstm":
            layer = keras.layers.LSTM(dims, return_sequences=return_sequences, dtype=rnn_dtype)
        else:
            raise ValueError(f"Rnn `rnn_type` must be 'gru' or 'lstm', got {rnn_type!r}.")
        self.dims, self.rnn_type, self.bidir = int(dims), rnn_type, bool(bidir)
        self.rnn = keras.layers.Bidirectional(layer) if bidir else layer

    def build(self, input_shape):
        self.rnn.build(tuple(input_shape))

    def call(self, x, training=None):
        carry = gru.active_rnn_states()
        if carry is None:
            return tf.cast(self.rnn(x, training=training), self.compute_dtype)
        return carry.run(self, x, training)


@register("nn")
class RnnFc(keras.layers.Layer):
    """`n_rnn` RNNs of `rnn_feat` units, then `Fc(out_feat, nonlinearity)` (the original
    DDSP's layer, its maths included).

    As in the original, `bidir` fills the RNNs' `return_sequences` slot: the RNNs are never
    bidirectional; with `bidir=False` (the default) each returns only its last step, so
    `[batch, time, in] -> [batch, out_feat]` (and `n_rnn > 1` fails, as there); with
    `bidir=True` every step: `[batch, time, in] -> [batch, time, out_feat]`.

    Args:
      rnn_feat: units of each RNN.
      out_feat: channels of the Fc layer (Dense -> LayerNormalization -> nonlinearity).
      rnn_type: 'lstm' or 'gru'.
      nonlinearity: the Fc layer's activation.
      bidir: every step's output (True) or only the last (False), see above.
      n_rnn: number of RNNs in a row.
    """

    def __init__(self, rnn_feat, out_feat, rnn_type: str = "lstm", nonlinearity="sigmoid",
                 bidir: bool = False, n_rnn: int = 1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        checks.positive_int("RnnFc `n_rnn`", n_rnn)
        self._rnn_names = set_layers(self, "rnn", [Rnn(rnn_feat, rnn_type, return_sequences=bool(bidir))
                                                   for _ in range(n_rnn)])
        self.fc = Fc(out_feat, nonlinearity)

    def build(self, input_shape):
        pass  # sub-layers build on their first call

    def call(self, x, training=None):
        for rnn in get_layers(self, self._rnn_names):
            x = rnn(x, training=training)
        return self.fc(x)


# ------------------------------------------------------------------------ normalisation
def normalize_op(x, norm_type: str = "layer", eps: float = 1e-5, n_groups: int = 32):
    """Zero mean, unit variance normalisation of `[batch, ..., channels]` (no learned terms).

    Statistics are taken per example over every axis but the batch and channel axes, and:
      'instance': per channel;  'layer': over all channels together;
      'group': per group of channels (`n_groups` contiguous groups, fewer when the channel
      count is not a multiple; at least one channel each); None: `x` unchanged.
    The arguments' order is the original DDSP's (x, norm_type, eps).
    """
    if norm_type is None:
        return x
    if norm_type not in ("instance", "layer", "group"):
        raise ValueError(f"`norm_type` must be 'instance', 'layer' or 'group', got {norm_type!r}.")
    x = core.tf_float32(x, "x")
    if x.shape.rank is None or x.shape.rank < 2:
        raise ValueError(f"normalize_op needs `x` of rank >= 2 [batch, ..., channels], got {x.shape}.")
    channels = x.shape[-1]
    inner_axes = list(range(1, x.shape.rank - 1))
    if norm_type == "instance":
        mean, variance = tf.nn.moments(x, inner_axes, keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + eps)
    if norm_type == "layer":
        mean, variance = tf.nn.moments(x, inner_axes + [x.shape.rank - 1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + eps)
    groups = math.gcd(int(channels), int(n_groups))
    shape = tf.shape(x)
    grouped = tf.reshape(x, tf.concat([shape[:-1], [groups, channels // groups]], axis=0))
    mean, variance = tf.nn.moments(grouped, inner_axes + [x.shape.rank], keepdims=True)
    grouped = (grouped - mean) * tf.math.rsqrt(variance + eps)
    return tf.reshape(grouped, shape)


@register("nn")
class Normalize(keras.layers.Layer):
    """`normalize_op` followed by a learned per-channel scale (init 1) and shift (init 0).

    Args:
      norm_type: None (scale and shift only, as the original), 'instance', 'layer' or
        'group' (see `normalize_op`).
      n_groups: groups for 'group'.
    """

    def __init__(self, norm_type: str = "layer", n_groups: int = 32, eps: float = 1e-5, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if norm_type not in NORM_TYPES:
            raise ValueError(f"Normalize `norm_type` must be one of {NORM_TYPES}, got {norm_type!r}.")
        self.norm_type, self.n_groups, self.eps = norm_type, int(n_groups), float(eps)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")
        self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros")

    def call(self, x):
        normed = normalize_op(x, self.norm_type, eps=self.eps, n_groups=self.n_groups)
        return normed * self.scale + self.shift


# ---------------------------------------------------------------------- output splits
@register("nn")
class OutputSplitsLayer(keras.layers.Layer):
    """Base class: inputs -> `compute_output` -> Dense(sum of splits) -> dict of named splits.

    Called with positional tensors, or with one dict of features from which `input_keys` are
    taken (in order; a missing key raises ValueError naming it and the keys present).
    Subclasses implement `compute_output(*inputs, training=None) -> [batch, time, channels]`
    (the `training` argument may be left out).

    Args:
      input_keys: feature names to read from a dict input.
      output_splits: (key, size) pairs; the output dict holds `[batch, time, size]` per key.
    """

    def __init__(self, input_keys=None, output_splits=(("amps", 1), ("harmonic_distribution", 40)), name=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.input_keys = as_key_list(input_keys, "input_keys")
        self.output_splits = check_splits(output_splits, "output_splits")
        self.n_out = sum(size for _, size in self.output_splits)
        self.dense_out = keras.layers.Dense(self.n_out)

    def build(self, *args, **kwargs):
        pass  # sub-layers build on their first call

    def _inputs_from(self, inputs):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            if self.input_keys is None:
                raise ValueError(f"{self.name}: called with a dict but `input_keys` is None.")
            return get_features(inputs[0], self.input_keys, self.name)
        return list(inputs)

    def call(self, *inputs, training=None):
        inputs = [core.ensure_3d(x, f"input {i}") for i, x in enumerate(self._inputs_from(inputs))]
        if "training" in inspect.signature(self.compute_output).parameters:
            outputs = self.compute_output(*inputs, training=training)
        else:  # original-style subclasses: compute_output(*inputs)
            outputs = self.compute_output(*inputs)
        # Controls for the synthesizers are float32 under every precision (precision.py).
        return split_to_dict(tf.cast(self.dense_out(outputs), "float32"), self.output_splits)

    def compute_output(self, *inputs, training=None):
        raise NotImplementedError("OutputSplitsLayer subclasses implement compute_output(*inputs, training=None).")


@register("nn")
class FcStackOut(keras.layers.Layer):
    """FcStack(ch, layers) -> Dense(n_out): `[..., in] -> [..., n_out]` (a linear output).

    Args:
      ch: width of the Fc layers.
      layers: number of Fc layers.
      n_out: output channels.
    """

    def __init__(self, ch: int = 256, layers: int = 2, n_out: int = 32, nonlinearity="leaky_relu", name=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_out = checks.positive_int("FcStackOut `n_out`", n_out)
        self.stack = FcStack(ch, layers, nonlinearity)
        self.dense_out = keras.layers.Dense(n_out)

    def build(self, input_shape):
        pass  # sub-layers build on their first call

    def call(self, x):
        return self.dense_out(self.stack(x))


@register("nn")
class RnnSandwich(keras.layers.Layer):
    """FcStack -> Rnn -> FcStack (the original DDSP's "RNN sandwich"), `[batch, time, in]
    -> [batch, time, fc_stack_ch]`.

    Args:
      fc_stack_ch, fc_stack_layers: width and depth of both Fc stacks.
      rnn_ch, rnn_type: units and kind ('gru' | 'lstm') of the recurrent layer.
    """

    def __init__(self, fc_stack_ch: int = 256, fc_stack_layers: int = 2, rnn_ch: int = 512,
                 rnn_type: str = "gru", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.fc_in = FcStack(fc_stack_ch, fc_stack_layers)
        self.rnn = Rnn(rnn_ch, rnn_type)
        self.fc_out = FcStack(fc_stack_ch, fc_stack_layers)

    def build(self, input_shape):
        pass  # sub-layers build on their first call

    def call(self, x, training=None):
        return self.fc_out(self.rnn(self.fc_in(x), training=training))


# The rest of the original DDSP's `training.nn` API (its signatures and behaviour).
from ddsp_models.training.nn_original import (  # noqa: E402,F401
    ConditionalNorm,
    ConditionalScaleAndShift,
    DictLayer,
    PolyphaseResample,
    ensure_4d,
    get_norm,
    get_note_lengths,
    get_note_mask,
    get_note_mask_from_onset,
    get_note_moments,
    get_short_note_loss_mask,
    gin_register_keras_layers,
    inv_ensure_4d,
    polyphase_resample,
    pool_over_notes,
    straight_through_choice,
    straight_through_int_quantization,
    straight_through_softmax,
)
from ddsp_models.training.nn_original_layers import (  # noqa: E402,F401
    Identity,
    NormReluConv,
    ResidualLayer,
    ResidualStack,
    ResNet,
    SingleGru,
    StatelessRnn,
    VectorQuantization,
    get_embedding,
)

gin_register_keras_layers()
from ddsp_models.training.nn_dilated import DilatedConvStack, SpectralNormalization  # noqa: E402,F401
from ddsp_models.training.resnet import ResidualBlock2D, ResNet2D  # noqa: E402,F401
