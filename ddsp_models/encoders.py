"""Encoders: audio -> latent z `[batch, time_steps, z_dims]`, from MFCCs through a GRU.

Called with the preprocessor's features dict (needs 'audio' `[batch, n_samples]` and
'f0_scaled' `[batch, time_steps, 1]`, whose length sets z's), they return a copy of the dict
with 'z' added. Positional call: (audio, f0_scaled) -> the same dict of two plus z.
"""
import keras
import tensorflow as tf

from ddsp_models import core, nn, spectral_ops
from ddsp_models.gin_utils import register

# z_time_steps -> (fft_size, overlap) giving exactly z_time_steps MFCC frames for 4 s at
# 16 kHz (64000 samples), as in the original DDSP.
Z_AUDIO_SPEC = {63: (2048, 0.5), 125: (1024, 0.5), 250: (1024, 0.75), 500: (512, 0.75), 1000: (256, 0.75)}
MIN_FFT_SIZE = 256


def mfcc_frame_spec(z_time_steps: int, n_samples: int) -> tuple:
    """(fft_size, overlap) of the MFCC frames for `z_time_steps` frames per example.

    The original table (`Z_AUDIO_SPEC`) when it has `z_time_steps`; otherwise hop =
    ceil(n_samples / z_time_steps) (so n_samples audio gives z_time_steps frames or one
    fewer) and fft_size the smallest power of two >= max(2 hop, 256).
    """
    if z_time_steps in Z_AUDIO_SPEC:
        return Z_AUDIO_SPEC[z_time_steps]
    hop = max(1, -(-int(n_samples) // int(z_time_steps)))
    fft_size = MIN_FFT_SIZE
    while fft_size < 2 * hop:
        fft_size *= 2
    return fft_size, 1.0 - hop / fft_size


class _MfccEncoder(keras.layers.Layer):
    """MFCCs (30 coefficients, 128 mels, 20 Hz - 8 kHz) -> instance norm -> GRU/LSTM."""

    def __init__(self, rnn_channels: int = 512, rnn_type: str = "gru", z_dims: int = 32, z_time_steps: int = 250,
                 sample_rate: int = 16000, mfcc_bins: int = 30, return_sequences: bool = True, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        for arg, value in (("rnn_channels", rnn_channels), ("z_dims", z_dims), ("z_time_steps", z_time_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__} `{arg}` must be a positive integer, got {value!r}.")
        self.z_dims, self.z_time_steps = z_dims, z_time_steps
        self.sample_rate, self.mfcc_bins = sample_rate, mfcc_bins
        self.z_norm = nn.Normalize("instance")
        self.rnn = nn.Rnn(rnn_channels, rnn_type, return_sequences=return_sequences)
        self.dense_out = keras.layers.Dense(z_dims)

    def build(self, *args, **kwargs):
        pass  # sub-layers build on their first call

    def mfccs(self, audio):
        """`[batch, n_frames, mfcc_bins]` of `[batch, n_samples]` audio."""
        audio = spectral_ops.check_audio(audio)
        fft_size, overlap = mfcc_frame_spec(self.z_time_steps, audio.shape[1])
        return spectral_ops.compute_mfcc(audio, lo_hz=20.0, hi_hz=8000.0, fft_size=fft_size, mel_bins=128,
                                         mfcc_bins=self.mfcc_bins, overlap=overlap, pad_end=True,
                                         sample_rate=self.sample_rate)

    def call(self, *inputs, training=None):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            features = dict(inputs[0])
        elif len(inputs) == 2:
            features = {"audio": inputs[0], "f0_scaled": inputs[1]}
        else:
            raise ValueError(f"{type(self).__name__} takes a features dict or (audio, f0_scaled).")
        audio, f0_scaled = nn.get_features(features, ["audio", "f0_scaled"], type(self).__name__)
        time_steps = core.ensure_3d(f0_scaled, "f0_scaled").shape[1]
        z = self.compute_z(audio, training=training)
        features["z"] = self.expand_z(z, time_steps)
        return features

    def expand_z(self, z, time_steps: int):
        """`[batch, z_dims]` (tiled) or `[batch, n, z_dims]` (resampled) -> `[batch, time_steps, z_dims]`."""
        if z.shape.rank == 2:
            return tf.tile(z[:, tf.newaxis, :], [1, time_steps, 1])
        return z if z.shape[1] == time_steps else core.resample(z, time_steps)

    def compute_z(self, audio, training=None):
        raise NotImplementedError


@register("encoders")
class MfccTimeDistributedRnnEncoder(_MfccEncoder):
    """z(t) from MFCCs: instance-normalised MFCC frames -> Rnn(rnn_channels) -> Dense(z_dims),
    then linearly resampled from z_time_steps frames to f0_scaled's time steps.

    Args:
      rnn_channels: GRU/LSTM units.
      rnn_type: 'gru' or 'lstm'.
      z_dims: z channels.
      z_time_steps: MFCC frames per 4 s example (63, 125, 250, 500, 1000 as the original, or
        any other count, see `mfcc_frame_spec`).
    """

    def __init__(self, rnn_channels: int = 512, rnn_type: str = "gru", z_dims: int = 32, z_time_steps: int = 250,
                 sample_rate: int = 16000, mfcc_bins: int = 30, name=None, **kwargs):
        super().__init__(rnn_channels, rnn_type, z_dims, z_time_steps, sample_rate, mfcc_bins,
                         return_sequences=True, name=name, **kwargs)

    def compute_z(self, audio, training=None):
        """`[batch, n_frames, z_dims]`."""
        z = self.z_norm(self.mfccs(audio))
        return self.dense_out(self.rnn(z, training=training))


@register("encoders")
class MfccRnnEncoder(_MfccEncoder):
    """A global z (constant over time): MFCC frames -> Rnn -> final state -> Dense(z_dims), tiled
    to f0_scaled's time steps. Same arguments as `MfccTimeDistributedRnnEncoder`, plus:

    Args:
      pooling: 'final' (the RNN's last state) or 'mean' (the mean of its outputs over time).
    """

    def __init__(self, rnn_channels: int = 512, rnn_type: str = "gru", z_dims: int = 32, z_time_steps: int = 250,
                 sample_rate: int = 16000, mfcc_bins: int = 30, pooling: str = "final", name=None, **kwargs):
        if pooling not in ("final", "mean"):
            raise ValueError(f"MfccRnnEncoder `pooling` must be 'final' or 'mean', got {pooling!r}.")
        super().__init__(rnn_channels, rnn_type, z_dims, z_time_steps, sample_rate, mfcc_bins,
                         return_sequences=pooling == "mean", name=name, **kwargs)
        self.pooling = pooling

    def compute_z(self, audio, training=None):
        """`[batch, z_dims]`."""
        z = self.rnn(self.z_norm(self.mfccs(audio)), training=training)
        if self.pooling == "mean":
            z = tf.reduce_mean(z, axis=1)
        return self.dense_out(z)
