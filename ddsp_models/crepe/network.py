"""The CREPE network (Keras 3) and its inference-only frozen form.

CREPE (Kim et al., 2018) maps one 1024-sample frame of 16 kHz audio, normalised to zero
mean and unit standard deviation, to 360 sigmoid activations over pitch bins 20 cents
apart (see `ddsp_models.crepe.decoding`). The network is six blocks of
conv (relu) -> batch-norm -> max-pool(2) -> dropout, then flatten and a dense layer; the
capacity ('tiny' .. 'full') multiplies the channel counts.

`build_crepe_model` is the trainable Keras model (layer names as in the original CREPE
Keras model, so checkpoints map one to one); `FrozenCrepeNetwork` is the same maths with
constant, pre-transformed weights for `compute_f0` (speed measurements:
``benchmarks/crepe.py``).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ddsp_models import core

MODEL_SAMPLE_RATE = 16000  # Hz, the only rate the network was trained on.
FRAME_SIZE = 1024  # samples per frame (64 ms at 16 kHz).
N_PITCH_BINS = 360
CAPACITY_MULTIPLIERS = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
BASE_FILTERS = (32, 4, 4, 4, 8, 16)
KERNEL_WIDTHS = (512, 64, 64, 64, 64, 64)
STRIDES = (4, 1, 1, 1, 1, 1)
BATCH_NORM_EPSILON = 1e-3
DROPOUT_RATE = 0.25
# Layers `compute_f0` computes as FFT convolutions, per capacity (chosen by
# `benchmarks/crepe.py --explore`: with few channels the FFTs cost what they save).
_ALL_FFT = ("conv2", "conv3", "conv4", "conv5", "conv6")
FFT_LAYERS = {"tiny": (), "small": ("conv2",), "medium": ("conv2",), "large": _ALL_FFT,
              "full": _ALL_FFT}


def layer_names() -> list[str]:
    """Names of the network's layers, in order (valid ``activation_layer`` values)."""
    names = []
    for i in range(1, 7):
        names += [f"conv{i}", f"conv{i}-BN", f"conv{i}-maxpool", f"conv{i}-dropout"]
    return names + ["transpose", "flatten", "classifier"]


def check_capacity(capacity) -> str:
    """`capacity` when it names a CREPE size, else ValueError listing the sizes."""
    if capacity not in CAPACITY_MULTIPLIERS:
        raise ValueError(
            f"capacity must be one of {sorted(CAPACITY_MULTIPLIERS)}, got {capacity!r}."
        )
    return capacity


def filter_counts(capacity: str) -> list[int]:
    """Output channels of the six conv layers for `capacity`."""
    m = CAPACITY_MULTIPLIERS[check_capacity(capacity)]
    return [m * f for f in BASE_FILTERS]


def normalize_frames(frames):
    """Zero mean, unit std over the last axis; std floored at 1e-8 (gradient-safe)."""
    mean = tf.reduce_mean(frames, axis=-1, keepdims=True)
    centred = frames - mean
    variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred / tf.sqrt(tf.maximum(variance, 1e-16))


@keras.saving.register_keras_serializable(package="ddsp_models.crepe")
class PolyphaseConv2D(keras.layers.Conv2D):
    """Conv2D over [batch, height, 1, channels] with a stride along height, computed as
    a stride-1 convolution over the `stride` polyphase components of the input.

    A stride-s convolution with a kernel of K taps equals a stride-1 convolution with
    K/s taps over the input reshaped to [batch, height/s, s*channels]. Same weights
    (kernel [K, 1, in, out]) and outputs as `keras.layers.Conv2D` with padding 'same'.
    For CREPE's first layer (1 input channel, 512 taps, stride 4) oneDNN runs this form
    ~5-10x faster than the strided single-channel convolution.
    """

    def convolution_op(self, inputs, kernel):
        stride = self.strides[0]
        taps, width, in_channels, out_channels = kernel.shape
        height = inputs.shape[1]
        if (self.padding != "same" or width != 1 or self.strides[1] != 1 or taps % stride
                or self.data_format != "channels_last" or height is None
                or tuple(self.dilation_rate) != (1, 1)):
            return super().convolution_op(inputs, kernel)
        n_out = -(-height // stride)
        total_pad = max((n_out - 1) * stride + taps - height, 0)
        left = total_pad // 2
        n_rows = n_out - 1 + taps // stride  # polyphase rows the outputs read
        right = n_rows * stride - height - left
        x = tf.pad(inputs[:, :, 0, :], [[0, 0], [left, max(right, 0)], [0, 0]])
        x = tf.reshape(x[:, : n_rows * stride], [-1, n_rows, stride * in_channels])
        k = tf.reshape(kernel, [taps // stride, stride * in_channels, out_channels])
        y = tf.nn.conv1d(x, k, stride=1, padding="VALID")
        return y[:, :, None, :]


def build_crepe_model(capacity: str = "full", weights: dict | None = None) -> keras.Model:
    """Builds the CREPE network (Keras functional model, float32).

    Args:
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      weights: optional {layer name: [arrays in Keras order]} (see `load_crepe_weights`).

    Returns:
      Model: normalised frames [n_frames, 1024] -> activations [n_frames, 360] in (0, 1).
      Layer names follow the original CREPE Keras model ('conv1', 'conv1-BN', ...,
      'classifier').
    """
    filters = filter_counts(capacity)
    frames = keras.Input(shape=(FRAME_SIZE,), name="input", dtype="float32")
    y = keras.layers.Reshape((FRAME_SIZE, 1, 1), name="input-reshape")(frames)
    for i, (f, w, s) in enumerate(zip(filters, KERNEL_WIDTHS, STRIDES), start=1):
        conv_class = PolyphaseConv2D if s > 1 else keras.layers.Conv2D
        y = conv_class(
            f, (w, 1), strides=(s, 1), padding="same", activation="relu", name=f"conv{i}"
        )(y)
        y = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"conv{i}-BN")(y)
        y = keras.layers.MaxPooling2D((2, 1), strides=(2, 1), padding="valid", name=f"conv{i}-maxpool")(y)
        y = keras.layers.Dropout(DROPOUT_RATE, name=f"conv{i}-dropout")(y)
    y = keras.layers.Permute((2, 1, 3), name="transpose")(y)
    y = keras.layers.Flatten(name="flatten")(y)
    y = keras.layers.Dense(N_PITCH_BINS, activation="sigmoid", name="classifier")(y)
    model = keras.Model(frames, y, name=f"crepe_{capacity}")
    if weights is not None:
        set_crepe_weights(model, weights)
    return model


def set_crepe_weights(model: keras.Model, weights: dict) -> None:
    """Assigns {layer name: [arrays]} to `model`, checking every name and shape."""
    expected = {layer.name for layer in model.layers if layer.weights}
    missing = expected - set(weights)
    if missing:
        raise ValueError(f"CREPE weights lack layers {sorted(missing)}.")
    for name in sorted(expected):
        layer = model.get_layer(name)
        arrays = weights[name]
        shapes = [tuple(v.shape) for v in layer.weights]
        if [tuple(a.shape) for a in arrays] != shapes:
            raise ValueError(
                f"CREPE weights for layer {name!r} have shapes "
                f"{[tuple(a.shape) for a in arrays]}, the model expects {shapes} "
                "(wrong capacity?)."
            )
        layer.set_weights([np.asarray(a, np.float32) for a in arrays])


class FrozenCrepeNetwork(tf.Module):
    """Inference-only CREPE forward pass with constant, pre-transformed weights.

    Same maths as `build_crepe_model` (relu(conv) -> batch-norm -> max-pool; dropout off),
    computed from a built model's weights with:
      * the stride-4 first layer as a stride-1 convolution over 4 polyphase channels,
      * batch-norm folded into one scale and shift per channel,
      * layers listed in `fft_layers` as FFT convolutions: the kernels' spectra are
        computed once, so a layer costs an rFFT of the input channels, one complex
        matmul per frequency ([frames, C_in] x [C_in, C_out]) and an irFFT of the
        output channels. For 'full', conv2 (1024 -> 128 channels, 64 taps, 76% of
        the network's FLOPs) drops from 2.15 GFLOP to ~0.1 GFLOP per frame.
    Outputs match the Keras model to ~1e-6 (float32 FFT rounding).

    Call: raw frames float32 [n, 1024] -> activations [n, 360] (normalises each frame).
    """

    def __init__(self, model: keras.Model, fft_layers=("conv2",), jit_compile: bool = False):
        super().__init__(name=f"frozen_{model.name.replace('-', '_')}")
        self.fft_layers = tuple(fft_layers)
        self._convs = []
        length = FRAME_SIZE
        for i, stride in enumerate(STRIDES, start=1):
            kernel, bias = model.get_layer(f"conv{i}").get_weights()
            gamma, beta, mean, variance = model.get_layer(f"conv{i}-BN").get_weights()
            scale = gamma / np.sqrt(variance + BATCH_NORM_EPSILON)
            taps, _, in_channels, out_channels = kernel.shape
            kernel = kernel[:, 0].reshape(taps // stride, stride * in_channels, out_channels)
            n_out = -(-length // stride)
            total_pad = max((n_out - 1) * stride + taps - length, 0)
            rows = n_out - 1 + taps // stride
            layer = dict(stride=stride, n_out=n_out, left=total_pad // 2, rows=rows,
                         right=rows * stride - length - total_pad // 2,
                         bias=tf.constant(bias), scale=tf.constant(scale),
                         shift=tf.constant(beta - mean * scale), fft=f"conv{i}" in self.fft_layers)
            if layer["fft"]:
                size = core.next_fast_fft_length(rows)
                padded = np.zeros((size,) + kernel.shape[1:], np.float32)
                padded[: kernel.shape[0]] = kernel
                # correlation = convolution with the conjugate spectrum: [freq, in, out]
                layer.update(size=size, spectrum=tf.constant(np.conj(np.fft.rfft(padded, axis=0)).astype(np.complex64)))
            else:
                layer["kernel"] = tf.constant(kernel)
            self._convs.append(layer)
            length = n_out // 2
        dense_kernel, dense_bias = model.get_layer("classifier").get_weights()
        self._dense_kernel = tf.constant(dense_kernel)
        self._dense_bias = tf.constant(dense_bias)
        self._compiled = tf.function(
            self.forward, input_signature=[tf.TensorSpec([None, FRAME_SIZE], tf.float32)],
            reduce_retracing=True, jit_compile=jit_compile)

    @staticmethod
    def _conv(x, layer):
        x = tf.pad(x, [[0, 0], [layer["left"], max(layer["right"], 0)], [0, 0]])
        if layer["stride"] > 1:
            x = tf.reshape(x[:, : layer["rows"] * layer["stride"]],
                           [-1, layer["rows"], layer["stride"] * x.shape[-1]])
        if not layer["fft"]:
            return tf.nn.conv1d(x, layer["kernel"], stride=1, padding="VALID")
        spectrum = tf.signal.rfft(tf.transpose(x, [0, 2, 1]), fft_length=[layer["size"]])
        product = tf.matmul(tf.transpose(spectrum, [2, 0, 1]), layer["spectrum"])  # [f, n, out]
        y = tf.signal.irfft(tf.transpose(product, [1, 2, 0]), fft_length=[layer["size"]])
        return tf.transpose(y[:, :, : layer["n_out"]], [0, 2, 1])

    def __call__(self, frames):
        """Raw frames float32 [n, 1024] -> activations [n, 360] (compiled graph)."""
        return self._compiled(frames)

    def forward(self, frames):
        """Uncompiled forward pass (eager or inside a caller's tf.function)."""
        x = normalize_frames(frames)[:, :, None]
        for layer in self._convs:
            x = tf.nn.relu(self._conv(x, layer) + layer["bias"])
            x = x * layer["scale"] + layer["shift"]
            x = tf.nn.max_pool1d(x, 2, 2, "VALID")
        x = tf.reshape(x, [-1, x.shape[1] * x.shape[2]])
        return tf.sigmoid(tf.matmul(x, self._dense_kernel) + self._dense_bias)
