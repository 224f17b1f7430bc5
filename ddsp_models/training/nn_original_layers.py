"""The original DDSP's ``training.nn`` layers that this package's models do not use:
its ResNet, stateless RNN, utility layers and vector quantisation, with the
original's constructor arguments and maths (re-exported by `ddsp_models.training.nn`).

Shapes: sequences `[batch, time, channels]`; images `[batch, time, freq, channels]`.
"""
import keras
import tensorflow as tf

from ddsp_models import losses
from ddsp_models.gin_utils import register
from ddsp_models.training import nn
from ddsp_models.training.nn_original import ensure_4d, get_norm


def _lazy_build(layer):
    layer.built = True


# ----------------------------------------------------------------------------- ResNet
@register("nn")
class NormReluConv(keras.layers.Layer):
    """`nn.Normalize(norm_type)` -> relu -> Conv2D(ch, (k, k), strides (1, s), 'same'):
    frequency (axis 2) is strided, time is not."""

    def __init__(self, ch, k, s, norm_type, **kwargs):
        super().__init__(**kwargs)
        self.norm = nn.Normalize(norm_type)
        self.conv = keras.layers.Conv2D(ch, (k, k), (1, s), padding="same")

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, x):
        return self.conv(tf.nn.relu(self.norm(x)))


@register("nn")
class ResidualLayer(keras.layers.Layer):
    """Bottleneck residual layer: relu(norm(x)) -> Conv1x1(ch) -> NormReluConv(ch, 3,
    stride) -> NormReluConv(4 ch, 1, 1), plus x (or a strided Conv1x1(4 ch) of relu(norm(x))
    when `shortcut`). `conditional`: called on (x, z), the first norm is a `ConditionalNorm`."""

    def __init__(self, ch, stride, shortcut, norm_type, conditional, shift_only, **kwargs):
        super().__init__(**kwargs)
        self.shortcut, self.conditional = shortcut, conditional
        self.norm_input = get_norm(norm_type, conditional, shift_only)
        if shortcut:
            self.conv_proj = keras.layers.Conv2D(4 * ch, (1, 1), (1, stride), padding="same",
                                                 name="conv_proj")
        self.conv_in = keras.layers.Conv2D(ch, (1, 1), (1, 1), padding="same")
        self.norm_relu_conv_0 = NormReluConv(ch, 3, stride, norm_type)
        self.norm_relu_conv_1 = NormReluConv(4 * ch, 1, 1, norm_type)

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, inputs):
        if self.conditional:
            x, z = inputs
            residual = x
            x = tf.nn.relu(self.norm_input((ensure_4d(x), ensure_4d(z))))
        else:
            residual = inputs
            x = tf.nn.relu(self.norm_input(ensure_4d(inputs)))
        if self.shortcut:
            residual = self.conv_proj(x)
        x = self.norm_relu_conv_1(self.norm_relu_conv_0(self.conv_in(x)))
        return x + residual


@register("nn")
class ResidualStack(keras.layers.Layer):
    """Stacks of `ResidualLayer`s: for each (ch, n_layers, stride) of (filters, block_sizes,
    strides), one strided layer with a projection shortcut then n_layers - 1 plain ones;
    then Normalize and the nonlinearity. Output channels: 4 * filters[-1]."""

    def __init__(self, filters, block_sizes, strides, norm_type, conditional=False,
                 shift_only=False, nonlinearity="relu", **kwargs):
        super().__init__(**kwargs)
        self.conditional = conditional
        blocks = []
        for ch, n_layers, stride in zip(filters, block_sizes, strides):
            blocks.append(ResidualLayer(ch, stride, True, norm_type, conditional, shift_only))
            blocks += [ResidualLayer(ch, 1, False, norm_type, conditional, shift_only)
                       for _ in range(1, n_layers)]
        self._block_names = nn.set_layers(self, "block", blocks)
        self.norm = nn.Normalize(norm_type)
        self.nonlinearity = nn.get_nonlinearity(nonlinearity)

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, inputs):
        x, z = inputs if self.conditional else (inputs, None)
        for block in nn.get_layers(self, self._block_names):
            x = block([x, z] if self.conditional else x)
        return self.nonlinearity(self.norm(x))


@register("nn")
class ResNet(keras.layers.Layer):
    """The original's 2-D ResNet: Conv2D(64, 7x7, stride (1, 2)) -> MaxPool (1, 3) stride
    (1, 2) -> ResidualStack([ch, 2 ch, 4 ch], blocks, [1, 2, 2]) -> ResidualStack([8 ch],
    [3], [2]); size 'small' (ch 32, blocks [2, 3, 4]), 'medium' (32, [3, 4, 6]) or 'large'
    (64, [3, 4, 6]). `[b, t, f, c]` -> `[b, t, f / 32, 32 ch]`."""

    SIZES = {"small": (32, [2, 3, 4]), "medium": (32, [3, 4, 6]), "large": (64, [3, 4, 6])}

    def __init__(self, size="large", norm_type="layer", conditional=False, shift_only=False,
                 **kwargs):
        super().__init__(**kwargs)
        if size not in self.SIZES:
            raise ValueError(f"ResNet `size` must be one of {sorted(self.SIZES)}, got {size!r}")
        ch, blocks = self.SIZES[size]
        self.conditional = conditional
        self.conv_in = keras.layers.Conv2D(64, (7, 7), (1, 2), padding="same")
        self.pool = keras.layers.MaxPool2D(pool_size=(1, 3), strides=(1, 2), padding="same")
        self.stack_0 = ResidualStack([ch, 2 * ch, 4 * ch], blocks, [1, 2, 2], norm_type,
                                     conditional, shift_only)
        self.stack_1 = ResidualStack([8 * ch], [3], [2], norm_type, conditional, shift_only)

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, inputs):
        x, z = inputs if self.conditional else (inputs, None)
        x = self.pool(self.conv_in(x))
        for stack in (self.stack_0, self.stack_1):
            x = stack([x, z] if self.conditional else x)
        return x


# ------------------------------------------------------------------------------ RNNs
@register("nn")
class StatelessRnn(keras.layers.Layer):
    """A unidirectional GRU/LSTM whose state is passed in and out (streaming):
    ``call(x [b, t, in], state) -> (y [b, t, dims], new_state)``; a GRU's state is
    `[b, dims]`, an LSTM's the pair [h, c]."""

    def __init__(self, dims, rnn_type, **kwargs):
        super().__init__(**kwargs)
        if rnn_type not in ("gru", "lstm"):
            raise ValueError(f"StatelessRnn `rnn_type` must be 'gru' or 'lstm', got {rnn_type!r}")
        self.rnn_type = rnn_type
        layer = nn.FastGRU if rnn_type == "gru" else keras.layers.LSTM
        self.rnn = layer(dims, return_sequences=True, return_state=True)

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, x, state):
        initial = list(state) if isinstance(state, (list, tuple)) else [state]
        y, *new_state = self.rnn(x, initial_state=initial)
        return y, (new_state[0] if self.rnn_type == "gru" else new_state)


@register("nn")
class SingleGru(keras.layers.Layer):
    """GRU(gru_dim, return_sequences) -> LayerNormalization."""

    def __init__(self, gru_dim=128, **kwargs):
        super().__init__(**kwargs)
        self.gru = nn.FastGRU(gru_dim, return_sequences=True)
        self.norm = keras.layers.LayerNormalization()

    def build(self, *args, **kwargs):
        _lazy_build(self)

    def call(self, x):
        return self.norm(self.gru(x))


# --------------------------------------------------------------------------- utilities
@register("nn")
class Identity(keras.layers.Layer):
    """Returns its input."""

    def call(self, x):
        return x


def get_embedding(vocab_size=1024, n_dims=256):
    """An embedding layer: integer ids -> `[..., n_dims]` learned vectors."""
    return keras.layers.Embedding(input_dim=vocab_size, output_dim=n_dims)


# --------------------------------------------------------------- vector quantisation
@register("nn")
class VectorQuantization(keras.layers.Layer):
    """Vector quantisation with exponential-moving-average codebooks.

    Each input vector (split into `num_heads` equal parts, each quantised separately) is
    replaced by its nearest of `k` centroids (squared distance), with a straight-through
    gradient. Centroids are ``sums / counts``, both non-trainable; in training the counts and
    sums of the batch's assignments move them by ``(1 - gamma)``, and centroids whose count
    * k is at most ``restart_threshold`` * batch vectors restart at batch vectors (or
    uniform noise). ``call(x [..., depth]) -> (z_q [..., depth], codes [..., num_heads])``.
    """

    def __init__(self, k, gamma=0.99, restart_threshold=0.0, num_heads=1,
                 commitment_loss_weight=0.2, **kwargs):
        super().__init__(**kwargs)
        self.k, self.gamma, self.restart_threshold = k, gamma, restart_threshold
        self.num_heads, self.commitment_loss_weight = num_heads, commitment_loss_weight

    def build(self, input_shape):
        self.depth = int(input_shape[-1])
        if self.depth % self.num_heads:
            raise ValueError(f"VectorQuantization: input depth {self.depth} is not a multiple of "
                             f"num_heads {self.num_heads}")
        self.counts = self.add_weight(name="counts", shape=(self.k,), initializer="zeros",
                                      trainable=False, aggregation="mean")
        self.sums = self.add_weight(name="sums", shape=(self.k, self.depth // self.num_heads),
                                    initializer="zeros", trainable=False, aggregation="mean")

    def _centroids(self):
        return tf.math.divide_no_nan(tf.convert_to_tensor(self.sums),
                                     tf.convert_to_tensor(self.counts)[:, tf.newaxis])

    def call(self, x, training=False):
        flat = tf.reshape(x, (-1, self.depth))
        flat = tf.concat(tf.split(flat, self.num_heads, axis=1), axis=0)  # heads as rows
        centroids = self._centroids()
        if training:
            n = tf.cast(tf.shape(flat)[0], tf.float32)
            keep = tf.convert_to_tensor(self.counts) * self.k > self.restart_threshold * n
            restart = tf.squeeze(tf.where(tf.logical_not(keep)), -1)
            n_replace = tf.minimum(tf.shape(restart)[0], tf.shape(flat)[0])
            restarted = tf.tensor_scatter_nd_update(
                tf.random.uniform([self.k, self.depth // self.num_heads]),
                restart[:n_replace, tf.newaxis], tf.random.shuffle(flat)[:n_replace])
            centroids = tf.where(keep[:, tf.newaxis], centroids, restarted)
        distances = (tf.reduce_sum(flat ** 2, axis=1, keepdims=True)
                     - 2.0 * tf.matmul(flat, centroids, transpose_b=True)
                     + tf.reduce_sum(centroids ** 2, axis=1)[tf.newaxis, :])
        codes = tf.argmin(distances, axis=1)
        z = tf.gather(centroids, codes)
        z = tf.reshape(tf.concat(tf.split(z, self.num_heads, axis=0), axis=1), tf.shape(x))
        z = x + tf.stop_gradient(z - x)
        if training:
            one_hot = tf.one_hot(codes, self.k)
            counts = tf.reduce_sum(one_hot, axis=0)
            sums = tf.matmul(one_hot, flat, transpose_a=True)
            self.counts.assign_sub((1.0 - self.gamma) * (self.counts - counts))
            self.sums.assign_sub((1.0 - self.gamma) * (self.sums - sums))
        codes = tf.stack(tf.split(codes, self.num_heads, axis=0), axis=1)
        codes = tf.reshape(codes, tf.concat([tf.shape(x)[:-1], [self.num_heads]], axis=0))
        return z, codes

    def unquantize(self, c):
        """Codes `[..., num_heads]` -> vectors `[..., depth]`."""
        z = tf.gather(self._centroids(), c)
        return tf.reshape(z, tf.concat([tf.shape(c)[:-1], [self.depth]], axis=0))

    def committment_loss(self, z, z_q):
        """commitment_loss_weight * mean((z - stop_gradient(z_q))^2)."""
        return self.commitment_loss_weight * losses.mean_difference(
            z, tf.stop_gradient(z_q), "L2")

    def get_losses_dict(self, z, z_q):
        return {self.name + "_commitment_loss": self.committment_loss(z, z_q)}
