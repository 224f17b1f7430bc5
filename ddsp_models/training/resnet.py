"""The 2-D ResNet of the DDSP-inv sinusoidal encoder (`encoders.ResnetSinusoidalEncoder`):
pre-activation bottleneck blocks over `[batch, time, freq, channels]` spectrogram images.

gin names stay `nn.ResidualBlock2D` / `nn.ResNet2D` (`ddsp_models.training.nn` re-exports them).
"""
import keras
import tensorflow as tf

from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training.nn import Normalize, get_layers, set_layers


@register("nn")
class ResidualBlock2D(keras.layers.Layer):
    """Pre-activation bottleneck block over `[batch, time, freq, channels]` images.

    norm -> relu -> Conv1x1(ch) -> norm -> relu -> Conv3x3(ch, stride (1, freq_stride)) ->
    norm -> relu -> Conv1x1(4 ch), plus a shortcut (identity, or a strided Conv1x1 when the
    shape changes). Time is never strided, so the frame rate is kept. Normalisation is per
    example (`Normalize('layer')`), so results do not depend on the rest of the batch.

    Args:
      ch: bottleneck channels (the block outputs 4 * ch).
      freq_stride: stride along the frequency axis (1 or 2).
    """

    def __init__(self, ch: int = 16, freq_stride: int = 1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        for arg, value in (("ch", ch), ("freq_stride", freq_stride)):
            positive_int(f"ResidualBlock2D `{arg}`", value)
        self.ch, self.freq_stride = ch, freq_stride
        self.norm_in = Normalize("layer")
        self.conv_in = keras.layers.Conv2D(ch, 1)
        self.norm_mid = Normalize("layer")
        self.conv_mid = keras.layers.Conv2D(ch, 3, strides=(1, freq_stride), padding="same")
        self.norm_out = Normalize("layer")
        self.conv_out = keras.layers.Conv2D(4 * ch, 1)
        self.shortcut = None

    def build(self, input_shape):
        if input_shape[-1] != 4 * self.ch or self.freq_stride != 1:
            self.shortcut = keras.layers.Conv2D(4 * self.ch, 1, strides=(1, self.freq_stride))

    def call(self, x):
        y = tf.nn.relu(self.norm_in(x))
        shortcut = x if self.shortcut is None else self.shortcut(y)
        y = self.conv_in(y)
        y = self.conv_mid(tf.nn.relu(self.norm_mid(y)))
        y = self.conv_out(tf.nn.relu(self.norm_out(y)))
        return shortcut + y


RESNET_SIZES = {  # size -> (first conv channels, [(bottleneck ch, blocks), ...] per stage)
    "tiny": (8, [(4, 1), (8, 1)]),
    "small": (16, [(8, 1), (16, 2), (32, 2)]),
    "large": (64, [(32, 2), (64, 3), (128, 4), (256, 2)]),
}


@register("nn")
class ResNet2D(keras.layers.Layer):
    """A small 2-D ResNet over `[batch, time, freq, channels]` (e.g. log-mel images).

    Conv 7x7 (stride 1 in time, 2 in frequency) -> stages of `ResidualBlock2D`s (the first
    block of each stage after the first halves the frequency axis) -> norm -> relu.
    Output `[batch, time, ceil(freq / 2^n_stages), 4 * last_ch]`.

    Args:
      size: 'tiny', 'small' or 'large' (see `RESNET_SIZES`); ignored when `stages` is given.
      first_ch: channels of the first convolution (with `stages`).
      stages: [(bottleneck channels, number of blocks), ...].
    """

    def __init__(self, size: str = "small", first_ch: int | None = None, stages=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if stages is None:
            if size not in RESNET_SIZES:
                raise ValueError(f"ResNet2D `size` must be one of {sorted(RESNET_SIZES)}, got {size!r}.")
            first_ch, stages = RESNET_SIZES[size]
        stages = [tuple(int(v) for v in stage) for stage in stages]
        if not stages or any(len(s) != 2 or min(s) < 1 for s in stages):
            raise ValueError(f"ResNet2D `stages` must be [(channels, blocks), ...] of positive integers, "
                             f"got {stages!r}.")
        self.size, self.first_ch, self.stages = size, int(first_ch or 16), stages
        self.conv_in = keras.layers.Conv2D(self.first_ch, 7, strides=(1, 2), padding="same")
        blocks = []
        for index, (ch, n_blocks) in enumerate(stages):
            for block in range(n_blocks):
                stride = 2 if (index > 0 and block == 0) else 1
                blocks.append(ResidualBlock2D(ch, stride))
        self._block_names = set_layers(self, "block", blocks)
        self.norm_out = Normalize("layer")

    def call(self, x):
        x = self.conv_in(x)
        for layer in get_layers(self, self._block_names):
            x = layer(x)
        return tf.nn.relu(self.norm_out(x))
