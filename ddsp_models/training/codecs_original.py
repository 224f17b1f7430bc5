"""Encoders and a decoder of the original DDSP that this package's models do not use, with
the original's arguments and maths (re-exported by `encoders` and `decoders`).

All are `nn.DictLayer`s: called with feature dicts (or tensors in argument order), they
return dicts. Shapes: frame features `[batch, time, channels]`, audio `[batch, n_samples]`.

- `ZEncoder`: base of encoders that compute a latent ``z`` from inputs named by
  `compute_z`'s arguments; ``z`` (`[batch, z_time, dims]` or `[batch, dims]`) is resampled
  to the frames of ``f0_scaled``.
- `AggregateFeaturesEncoder`, `MfccEncoder`: time-averaged f0/loudness embedding; MFCCs.
- `MidiEncoder` / `MidiDecoder`: (f0 MIDI, loudness dB) <-> (z_pitch, z_vel) through a
  given network (`net`), layer norm and a 2-channel Dense output.
"""
import keras
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.gin_utils import register
from ddsp_models.training import nn


class ZEncoder(nn.DictLayer):
    """Base class: subclasses implement ``compute_z(*inputs) -> z``; the output is
    ``{'z': [batch, time, dims]}`` with time = the frames of ``f0_scaled`` (read as the last
    input)."""

    def __init__(self, input_keys=None, **kwargs):
        input_keys = list(input_keys or self.get_argument_names("compute_z"))
        super().__init__(input_keys, output_keys=["z"], **kwargs)
        self.input_keys.append("f0_scaled")  # only its number of frames is used

    def call(self, *args, **unused_kwargs):
        time_steps = int(args[-1].shape[1])
        return self.expand_z(self.compute_z(*args[:-1]), time_steps)

    def expand_z(self, z, time_steps):
        """`[batch, dims]` or `[batch, z_time, dims]` -> `[batch, time_steps, dims]`
        (`core.resample`, linear)."""
        if len(z.shape) == 2:
            z = z[:, tf.newaxis, :]
        return z if int(z.shape[1]) == time_steps else core.resample(z, time_steps)

    def compute_z(self, *inputs):
        raise NotImplementedError


@register("encoders")
class AggregateFeaturesEncoder(ZEncoder):
    """z = time mean of Dense(ch)(concat(f0_scaled, ld_scaled)), repeated over time."""

    def __init__(self, ch=512, **kwargs):
        super().__init__(**kwargs)
        self.fc = keras.layers.Dense(ch)

    def compute_z(self, f0_scaled, ld_scaled):
        z = self.fc(tf.concat([f0_scaled, ld_scaled], axis=-1))
        return tf.reduce_mean(z, axis=1, keepdims=True)


@register("encoders")
class MfccEncoder(ZEncoder):
    """z = instance-normalised MFCCs of audio: for each (fft_size, mel_bins, mfcc_bins)
    triple (20 Hz - 8 kHz, overlap 0.75), resampled to `time_steps` and concatenated."""

    def __init__(self, fft_sizes=(1024,), mel_bins=(128,), mfcc_bins=(30,), time_steps=250,
                 **kwargs):
        super().__init__(**kwargs)
        as_tuple = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,)  # noqa: E731
        self.fft_sizes, self.mel_bins = as_tuple(fft_sizes), as_tuple(mel_bins)
        self.mfcc_bins, self.time_steps = as_tuple(mfcc_bins), time_steps
        if not len(self.fft_sizes) == len(self.mel_bins) == len(self.mfcc_bins):
            raise ValueError(f"MfccEncoder: fft_sizes {self.fft_sizes}, mel_bins {self.mel_bins} "
                             f"and mfcc_bins {self.mfcc_bins} must have one entry each per MFCC")
        self.norm_out = nn.Normalize("instance")

    def compute_z(self, audio):
        mfccs = [core.resample(spectral_ops.compute_mfcc(audio, lo_hz=20.0, hi_hz=8000.0,
                                                         fft_size=fft, mel_bins=mel,
                                                         mfcc_bins=bins), self.time_steps)
                 for fft, mel, bins in zip(self.fft_sizes, self.mel_bins, self.mfcc_bins)]
        return self.norm_out(tf.concat(mfccs, axis=-1))


@register("encoders")
class MidiEncoder(nn.DictLayer):
    """(f0_midi, loudness) `[batch, time, 1]` each -> net -> layer norm -> Dense(2) ->
    z_pitch (+ f0_midi with `f0_residual`) and z_vel, each `[batch, time, 1]`."""

    def __init__(self, net=None, f0_residual=True, **kwargs):
        super().__init__(**kwargs)
        if net is None:
            raise ValueError("MidiEncoder: `net` (e.g. @nn.DilatedConvStack()) is required")
        self.net, self.f0_residual = net, f0_residual
        self.dense_out = keras.layers.Dense(2)
        self.norm = nn.Normalize("layer")

    def call(self, f0_midi, loudness) -> ["z_pitch", "z_vel"]:  # noqa: F821 - output names
        x = self.dense_out(self.norm(self.net(tf.concat([f0_midi, loudness], axis=-1))))
        z_pitch, z_vel = x[..., 0:1], x[..., 1:2]
        return (z_pitch + f0_midi if self.f0_residual else z_pitch), z_vel


@register("decoders")
class MidiDecoder(nn.DictLayer):
    """z_pitch `[batch, time, 1]` (and optional latent z) -> net (``net([z_pitch, z])``
    with z) -> layer norm (`norm`) -> Dense(2) -> f0_midi (+ z_pitch with `f0_residual`) and
    loudness (dB, ``30 x - 70`` with `center_loudness`). z_vel is accepted but not used."""

    def __init__(self, net=None, f0_residual=True, center_loudness=True, norm=True, **kwargs):
        super().__init__(**kwargs)
        if net is None:
            raise ValueError("MidiDecoder: `net` (e.g. @nn.DilatedConvStack()) is required")
        self.net, self.f0_residual, self.center_loudness = net, f0_residual, center_loudness
        self.dense_out = keras.layers.Dense(2)
        self.norm = nn.Normalize("layer") if norm else None

    def call(self, z_pitch, z_vel=None, z=None) -> ["f0_midi", "loudness"]:  # noqa: F821
        del z_vel  # as the original: velocity is not decoded
        x = self.net(z_pitch) if z is None else self.net([z_pitch, z])
        if self.norm is not None:
            x = self.norm(x)
        x = self.dense_out(x)
        f0_midi, loudness = x[..., 0:1], x[..., 1:2]
        if self.f0_residual:
            f0_midi += z_pitch
        if self.center_loudness:
            loudness = loudness * 30.0 - 70.0
        return f0_midi, loudness
