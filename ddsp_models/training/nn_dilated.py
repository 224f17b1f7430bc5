"""The original DDSP's dilated convolution stack and its spectral normalisation, with the
original's arguments, maths and variable layout (re-exported by `ddsp_models.training.nn`).

Tensors run as images `[batch, time, 1, channels]` through (k x 1) 2-D convolutions, as in
the original, so an original checkpoint's kernels (`[k, 1, in, out]`) load unchanged
(`ddsp_models.compat.checkpoints` maps its ``conv_in``, ``layers/<i>``, ``norms/<i>`` and
``resample_layers/<i>`` onto this layer's ``conv_in``, ``layer_<i>``, ``norm_<i>`` and
``resample_layer_<i>``).
"""
import keras
import tensorflow as tf

from ddsp_models import checks, core
from ddsp_models.gin_utils import register
from ddsp_models.training import nn
from ddsp_models.training.nn_original import ConditionalNorm, ensure_4d


class SpectralNormalization(keras.layers.Layer):
    """Wraps a layer with a `kernel` (or `embeddings`); in training calls, first divides that
    kernel in place by its largest singular value, estimated by `power_iterations` steps of
    power iteration from the stored left vector `sn_u` (`[1, out]`, updated each step):
    v = l2_normalize(u W^T), u = l2_normalize(v W), sigma = v W u^T, with W the kernel
    reshaped to `[-1, out]`. Outside training it calls the layer unchanged (the original's
    maths and variable names: ``layer``, ``sn_u``)."""

    def __init__(self, layer, power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("SpectralNormalization `power_iterations`", power_iterations)
        self.layer, self.power_iterations = layer, power_iterations

    def build(self, input_shape):
        self.layer.build(tuple(input_shape))
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None:
            kernel = getattr(self.layer, "embeddings", None)
        if kernel is None:
            raise AttributeError(f"SpectralNormalization: {type(self.layer).__name__} has no "
                                 "`kernel` nor `embeddings`")
        self._w = kernel
        self.sn_u = self.add_weight(
            name="sn_u", shape=(1, int(kernel.shape[-1])), trainable=False,
            initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def normalize_weights(self):
        """Divides the kernel by its estimated spectral norm (in place) and updates `sn_u`."""
        w = tf.reshape(tf.convert_to_tensor(self._w), [-1, int(self._w.shape[-1])])
        u = tf.convert_to_tensor(self.sn_u)
        for _ in range(self.power_iterations):
            v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))
            u = tf.math.l2_normalize(tf.matmul(v, w))
        sigma = tf.matmul(tf.matmul(v, w), u, transpose_b=True)
        self._w.assign(tf.convert_to_tensor(self._w) / sigma)
        self.sn_u.assign(u)

    def call(self, inputs, training=None):
        if training:
            self.normalize_weights()
        return self.layer(inputs)


class _ReluConv(keras.layers.Layer):
    """relu -> `conv` (the original's ``Sequential([Activation(relu), conv])``)."""

    def __init__(self, conv, **kwargs):
        super().__init__(**kwargs)
        self.conv = conv

    def build(self, input_shape):
        self.conv.build(tuple(input_shape))

    def call(self, x, training=None):
        return self.conv(tf.nn.relu(x), training=training)


@register("nn")
class DilatedConvStack(keras.layers.Layer):
    """Residual stacks of dilated convolutions over time (the original DDSP's maths),
    `[batch, time, in]` (or `[batch, time, 1, in]`) -> `[batch, time', ch]`.

    x = conv_in(x) (k taps, `ch` channels); then for each of `stacks` stacks of
    `layers_per_stack` layers j = 0 .. layers_per_stack - 1:
        x = x + norm(conv_j(relu(x)))
    with conv_j of dilation `dilation ** j` (a negative `dilation` d counts down:
    `(-d) ** (layers_per_stack - 1 - j)`), 'same' padding. `norm` is `nn.Normalize(norm_type)`
    (learned per-channel scale and shift; only those when `norm_type` is None), or with
    `conditional` `ConditionalNorm`: normalize_op(y) * scale + shift with
    [scale, shift] = Dense(2 ch)(z) (`shift_only`: + Dense(ch)(z)). There is no nonlinearity
    after the residual sum. z `[batch, time_z, n]` must have time_z 1 or the current time
    length; another length is linearly resampled to it (an addition: the original raises).

    Resampling (`resample_type` 'downsample': Conv(ch, resample_stride taps, stride
    resample_stride); 'upsample': ConvTranspose(ch, 2 resample_stride taps, stride
    resample_stride)) happens after every `stacks_per_resample` stacks
    (`resample_after_convolve`) or before the first of each group of `stacks_per_resample`
    stacks; time' = time * or / resample_stride ** (number of resampling layers).

    Args (the original's order and defaults):
      ch: channels of every convolution.
      layers_per_stack: convolutions per stack.
      stacks: number of stacks.
      kernel_size: taps of conv_in and each dilated convolution.
      dilation: dilation base (non-zero integer).
      norm_type: None, 'instance', 'layer' or 'group' (32 groups).
      resample_type: None, 'downsample' or 'upsample'.
      resample_stride: time factor of each resampling layer.
      stacks_per_resample: stacks per resampling layer.
      resample_after_convolve: resample after (True) or before (False) the convolutions.
      spectral_norm: wrap every convolution in `SpectralNormalization`.
      ortho_init: orthogonal initial kernels (else Glorot uniform).
      shift_only: the conditioning only shifts.
      conditional: called on (x, z) and conditioned by z.
    """

    def __init__(self, ch: int = 256, layers_per_stack: int = 5, stacks: int = 2,
                 kernel_size: int = 3, dilation: int = 2, norm_type=None, resample_type=None,
                 resample_stride: int = 1, stacks_per_resample: int = 1,
                 resample_after_convolve: bool = True, spectral_norm: bool = False,
                 ortho_init: bool = False, shift_only: bool = False, conditional: bool = False,
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        for arg, value in (("ch", ch), ("layers_per_stack", layers_per_stack), ("stacks", stacks),
                           ("kernel_size", kernel_size), ("resample_stride", resample_stride),
                           ("stacks_per_resample", stacks_per_resample)):
            checks.positive_int(f"DilatedConvStack `{arg}`", value)
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation == 0:
            raise ValueError(f"DilatedConvStack `dilation` must be a non-zero integer, got {dilation!r}.")
        if norm_type not in nn.NORM_TYPES:
            raise ValueError(f"DilatedConvStack `norm_type` must be one of {nn.NORM_TYPES}, got {norm_type!r}.")
        if resample_type not in (None, "downsample", "upsample"):
            raise ValueError("DilatedConvStack `resample_type` must be None, 'downsample' or 'upsample', "
                             f"got {resample_type!r}.")
        self.ch, self.layers_per_stack, self.stacks = ch, layers_per_stack, stacks
        self.kernel_size, self.dilation, self.norm_type = kernel_size, dilation, norm_type
        self.resample_type, self.resample_stride = resample_type, resample_stride
        self.stacks_per_resample = stacks_per_resample
        self.resample_after_convolve = bool(resample_after_convolve)
        self.conditional, self.shift_only = bool(conditional), bool(shift_only)
        initializer = "orthogonal" if ortho_init else "glorot_uniform"

        def conv(taps, stride=1, dilation_rate=1, transpose=False):
            layer_class = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
            layer = layer_class(ch, (taps, 1), (stride, 1), dilation_rate=(dilation_rate, 1),
                                padding="same", kernel_initializer=initializer)
            return SpectralNormalization(layer) if spectral_norm else layer

        def resample_layer():
            if resample_type == "downsample":
                return conv(resample_stride, resample_stride)
            return conv(2 * resample_stride, resample_stride, transpose=True)

        def dilation_of(j):
            if dilation > 0:
                return dilation ** j
            return (-dilation) ** (layers_per_stack - j - 1)

        self.conv_in = conv(kernel_size)
        layers, norms, resamplers = [], [], []
        for i in range(stacks):
            if resample_type and not self.resample_after_convolve and i % stacks_per_resample == 0:
                resamplers.append(resample_layer())
            for j in range(layers_per_stack):
                layers.append(_ReluConv(conv(kernel_size, dilation_rate=dilation_of(j))))
                norms.append(ConditionalNorm(norm_type=norm_type, shift_only=shift_only)
                             if self.conditional else nn.Normalize(norm_type))
            if resample_type and self.resample_after_convolve and (i + 1) % stacks_per_resample == 0:
                resamplers.append(resample_layer())
        self._layer_names = nn.set_layers(self, "layer", layers)
        self._norm_names = nn.set_layers(self, "norm", norms)
        self._resample_names = nn.set_layers(self, "resample_layer", resamplers)
        # Layers between resamplings, as the original counts them.
        self.layers_per_resample = len(layers) // len(resamplers) if resamplers else 0
        n_used = -(-len(layers) // self.layers_per_resample) if resamplers else 0
        if resamplers and not self.resample_after_convolve and n_used > len(resamplers):
            raise ValueError(f"DilatedConvStack: stacks={stacks} is not a multiple of "
                             f"stacks_per_resample={stacks_per_resample} (resampling before "
                             "the convolutions needs one)")

    def build(self, *args, **kwargs):
        self.built = True  # sub-layers build on their first call

    def _resample(self, x, i, training):
        return getattr(self, self._resample_names[i // self.layers_per_resample])(x, training=training)

    def _conditioning(self, z, n_time):
        if z.shape[1] in (1, n_time) or z.shape[1] is None or n_time is None:
            return z
        return ensure_4d(core.resample(z[:, :, 0, :], n_time))

    def call(self, inputs, training=None):
        if self.conditional:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise ValueError("DilatedConvStack(conditional=True) must be called with (x, conditioning z).")
            x, z = ensure_4d(core.tf_float32(inputs[0], "x")), ensure_4d(core.tf_float32(inputs[1], "z"))
        else:
            x, z = ensure_4d(core.tf_float32(inputs, "x")), None
        x = self.conv_in(x, training=training)
        resampling = bool(self._resample_names)
        for i, (layer_name, norm_name) in enumerate(zip(self._layer_names, self._norm_names)):
            if resampling and not self.resample_after_convolve and i % self.layers_per_resample == 0:
                x = self._resample(x, i, training)
            y = getattr(self, layer_name)(x, training=training)
            norm = getattr(self, norm_name)
            x = x + (norm([y, self._conditioning(z, y.shape[1])]) if self.conditional else norm(y))
            if resampling and self.resample_after_convolve and (i + 1) % self.layers_per_resample == 0:
                x = self._resample(x, i, training)
        return x[:, :, 0, :]
