"""Encoders: audio -> latent z `[batch, time_steps, z_dims]`, from MFCCs through a GRU.

Called with the preprocessor's features dict (needs 'audio' `[batch, n_samples]` and
'f0_scaled' `[batch, time_steps, 1]`, whose length sets z's), they return a copy of the dict
with 'z' added. Positional call: (audio, f0_scaled) -> the same dict of two plus z.
"""
import keras
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training import nn
from ddsp_models.training.features import MAX_VELOCITY, N_PITCHES

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
            positive_int(f"{type(self).__name__} `{arg}`", value)
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
    to f0_scaled's time steps. Arguments as `MfccTimeDistributedRnnEncoder`'s, plus:

    Args:
      mean_aggregate: z from the mean of the RNN's outputs over time (the original's
        argument); else from its last state.
      pooling: this package's name for the same choice, 'final' or 'mean' (wins when given).
    """

    def __init__(self, rnn_channels: int = 512, rnn_type: str = "gru", z_dims: int = 512,
                 mean_aggregate: bool = False, z_time_steps: int = 250, sample_rate: int = 16000,
                 mfcc_bins: int = 30, pooling: str | None = None, name=None, **kwargs):
        pooling = ("mean" if mean_aggregate else "final") if pooling is None else pooling
        if pooling not in ("final", "mean"):
            raise ValueError(f"MfccRnnEncoder `pooling` must be 'final' or 'mean', got {pooling!r}.")
        super().__init__(rnn_channels, rnn_type, z_dims, z_time_steps, sample_rate, mfcc_bins,
                         return_sequences=pooling == "mean", name=name, **kwargs)
        self.pooling = pooling
        self.mean_aggregate = pooling == "mean"

    def compute_z(self, audio, training=None):
        """`[batch, z_dims]`."""
        z = self.rnn(self.z_norm(self.mfccs(audio)), training=training)
        if self.pooling == "mean":
            z = tf.reduce_mean(z, axis=1)
        return self.dense_out(z)


# ------------------------------------------------------------------------ MIDI encoders
def frame_inputs(layer, inputs, input_keys):
    """Tensors `[batch, time, c_i]` from a features dict (by key) or positional inputs."""
    if len(inputs) == 1 and isinstance(inputs[0], dict):
        inputs = nn.get_features(inputs[0], input_keys, layer.name)
    if len(inputs) != len(input_keys):
        raise ValueError(f"{layer.name}: expected {len(input_keys)} inputs {list(input_keys)}, got {len(inputs)}.")
    return [core.ensure_3d(x, key) for x, key in zip(inputs, input_keys)]


@register("encoders")
class HarmonicToMidiEncoder(keras.layers.Layer):
    """Synthesizer controls -> per-frame MIDI: a continuous pitch, its straight-through
    quantisation and a quantised velocity.

    Inputs (by `input_keys`, each `[batch, time, c]`): f0 in MIDI (first key, scaled by 1/127
    for the network), then log-scaled amplitude, harmonic distribution and log-scaled noise
    magnitudes (or any other controls). Network: FcStack -> Rnn -> FcStack -> Dense(2).

    Outputs (dict, `[batch, time, 1]` each):
      z_pitch: continuous MIDI pitch; with pitch_mode 'residual',
        f0_midi + pitch_range * tanh(residual); with 'logits', the softmax expectation of
        the 128 pitch logits (also returned, as 'pitch_logits' `[batch, time, 128]`);
      q_pitch: integer pitch, straight-through: round(z_pitch) with the identity gradient
        ('residual'), or the argmax of the logits with the softmax gradient ('logits');
      velocity: 127 * sigmoid(logit), continuous MIDI velocity;
      q_vel: round(velocity), straight-through.

    Args:
      net: the original DDSP's form: a layer (e.g. `nn.DilatedConvStack`) replacing the
        built-in network: concat(inputs, f0 unscaled) -> net -> layer norm -> Dense(2) ->
        (pitch, velocity logit); z_pitch = pitch (+ f0_midi with `f0_residual`), unbounded
        ('residual' mode only).
      f0_residual: with a `net`, z_pitch is f0_midi plus the network's pitch output.
      rnn_channels, rnn_type, ch, layers_per_stack: sizes of the built-in network.
      pitch_range: largest pitch offset from f0, semitones ('residual' mode).
      pitch_mode: 'residual' (a pitch offset from f0) or 'logits' (a 128-way classifier).
      input_keys: features read from a dict call; the first is f0 in MIDI.
    """

    def __init__(self, net=None, f0_residual: bool = True, rnn_channels: int = 256, rnn_type: str = "gru",
                 ch: int = 256, layers_per_stack: int = 2, pitch_range: float = 2.0, pitch_mode: str = "residual",
                 input_keys=("f0_midi", "amps", "hd", "noise"), name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if net is not None and pitch_mode != "residual":
            raise ValueError("HarmonicToMidiEncoder: a `net` works with pitch_mode='residual' only, "
                             f"got {pitch_mode!r}.")
        self.input_keys = nn.as_key_list(input_keys, "input_keys")
        if not self.input_keys:
            raise ValueError("HarmonicToMidiEncoder `input_keys` must name at least the f0 (MIDI) feature.")
        if pitch_mode not in ("residual", "logits"):
            raise ValueError(f"HarmonicToMidiEncoder `pitch_mode` must be 'residual' or 'logits', got {pitch_mode!r}.")
        self.pitch_range, self.pitch_mode = float(pitch_range), pitch_mode
        self.net, self.f0_residual = net, bool(f0_residual)
        if net is None:
            self.in_stack = nn.FcStack(ch, layers_per_stack)
            self.rnn = nn.Rnn(rnn_channels, rnn_type)
            self.out_stack = nn.FcStack(ch, layers_per_stack)
        else:
            self.norm = nn.Normalize("layer")
        self.dense_pitch = keras.layers.Dense(1 if pitch_mode == "residual" else N_PITCHES)
        self.dense_velocity = keras.layers.Dense(1)

    def build(self, *args, **kwargs):
        pass  # sub-layers build on their first call

    def call(self, *inputs, training=None):
        from ddsp_models.training import midi

        inputs = frame_inputs(self, inputs, self.input_keys)
        f0_midi = inputs[0]
        if self.net is not None:
            x = self.norm(self.net(tf.concat(inputs, axis=-1), training=training))
        else:
            x = tf.concat([f0_midi / core.MIDI_MAX] + inputs[1:], axis=-1)
            x = self.in_stack(x)
            x = self.out_stack(tf.concat([x, self.rnn(x, training=training)], axis=-1))
        velocity = MAX_VELOCITY * tf.sigmoid(self.dense_velocity(x))
        outputs = {"velocity": velocity, "q_vel": midi.straight_through_round(velocity)}
        if self.net is not None:
            z_pitch = self.dense_pitch(x) + (f0_midi if self.f0_residual else 0.0)
            outputs.update(z_pitch=z_pitch, q_pitch=midi.straight_through_round(z_pitch))
        elif self.pitch_mode == "residual":
            z_pitch = f0_midi + self.pitch_range * tf.tanh(self.dense_pitch(x))
            outputs.update(z_pitch=z_pitch, q_pitch=midi.straight_through_round(z_pitch))
        else:
            logits = self.dense_pitch(x)
            pitches = tf.range(N_PITCHES, dtype=tf.float32)
            z_pitch = tf.reduce_sum(tf.nn.softmax(logits) * pitches, axis=-1, keepdims=True)
            q_pitch = tf.reduce_sum(midi.straight_through_softmax(logits) * pitches, axis=-1, keepdims=True)
            outputs.update(pitch_logits=logits, z_pitch=z_pitch, q_pitch=q_pitch)
        return outputs


@register("encoders")
class ExpressionEncoder(keras.layers.Layer):
    """Expression latent from performance features (e.g. loudness and f0): concatenated
    inputs -> FcStack -> Rnn -> Dense(z_dims), or (the original DDSP's form, with a `net`)
    -> net -> layer norm -> Dense(z_dims). Returns `[batch, time, z_dims]`; with
    `pool_time` the mean over time, tiled back over the time steps.

    Args:
      net: a layer replacing the built-in network (e.g. `nn.DilatedConvStack`).
      z_dims: output channels (e.g. 2 x latent size for a Gaussian mean and log-variance).
      input_keys: features `[batch, time, c]` read from a dict call; 'audio' among them adds
        instance-normalised MFCCs (`mfcc_bins`, `fft_size`, `mel_bins`, 20 Hz - 8 kHz)
        resampled to the time steps of the other inputs.
      pool_time: average the latent over time (a global latent).
      rnn_channels, rnn_type, ch, layers_per_stack: sizes of the built-in network.
    """

    def __init__(self, net=None, z_dims: int = 128, input_keys=("f0_scaled", "ld_scaled"), mfcc_bins: int = 60,
                 fft_size: int = 1024, mel_bins: int = 128, pool_time: bool = True, rnn_channels: int = 128,
                 rnn_type: str = "gru", ch: int = 128, layers_per_stack: int = 1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.input_keys = nn.as_key_list(input_keys, "input_keys")
        if self.input_keys == ["audio"]:
            raise ValueError("ExpressionEncoder `input_keys` needs a frame feature besides 'audio' (it sets "
                             "the time steps).")
        self.z_dims, self.pool_time, self.net = int(z_dims), bool(pool_time), net
        self.mfcc_bins, self.fft_size, self.mel_bins = int(mfcc_bins), int(fft_size), int(mel_bins)
        if "audio" in self.input_keys:
            self.norm_mfcc = nn.Normalize("instance")
        if net is None:
            self.stack = nn.FcStack(ch, layers_per_stack)
            self.rnn = nn.Rnn(rnn_channels, rnn_type)
        else:
            self.norm = nn.Normalize("layer")
        self.dense_out = keras.layers.Dense(self.z_dims)

    def build(self, *args, **kwargs):
        pass

    def _mfccs(self, audio, time_steps: int):
        mfccs = spectral_ops.compute_mfcc(core.ensure_audio(audio, "audio"), lo_hz=20.0, hi_hz=8000.0,
                                          fft_size=self.fft_size, mel_bins=self.mel_bins, mfcc_bins=self.mfcc_bins)
        return core.resample(self.norm_mfcc(mfccs), time_steps)

    def call(self, *inputs, training=None):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            inputs = nn.get_features(inputs[0], self.input_keys, self.name)
        if len(inputs) != len(self.input_keys):
            raise ValueError(f"{self.name}: expected {len(self.input_keys)} inputs {self.input_keys}, "
                             f"got {len(inputs)}.")
        named = dict(zip(self.input_keys, inputs))
        frames = [core.ensure_3d(x, key) for key, x in named.items() if key != "audio"]
        if "audio" in named:
            frames.append(self._mfccs(named["audio"], frames[0].shape[1]))
        x = tf.concat(frames, axis=-1)
        if self.net is not None:
            z = self.dense_out(self.norm(self.net(x, training=training)))
        else:
            z = self.dense_out(self.rnn(self.stack(x), training=training))
        if self.pool_time:
            z = tf.tile(tf.reduce_mean(z, axis=1, keepdims=True), [1, x.shape[1], 1])
        return z


@register("encoders")
class OneHotEncoder(keras.layers.Layer):
    """A learned embedding of an integer label (e.g. `instrument_id` `[batch]`):
    one_hot(label, n_classes) @ W -> `[batch, z_dims]` (row `label` of W, the `embeddings`
    of a `keras.layers.Embedding`, as the original's).

    Args:
      one_hot_key: feature read from a dict call.
      vocab_size: number of labels; labels must lie in [0, vocab_size).
      n_dims: embedding size.
      skip_expand: return `[batch, n_dims]` (True) or, called with a features dict holding
        'f0_scaled', `[batch, time_steps, n_dims]` tiled over its time steps (False).
      unknown_id: a label meaning "unknown" (the feature contract's -1 instrument) that
        gets the zero embedding, or None (every label must be a class).
      n_classes, z_dims, input_key: this package's names of `vocab_size`, `n_dims`,
        `one_hot_key` (they win when given).

    Raises (at call time, also inside `tf.function`):
      tf.errors.InvalidArgumentError: a label outside [0, n_classes) (other than
        `unknown_id`); the message names the layer, `n_classes` and the labels of the batch.
    """

    def __init__(self, one_hot_key: str = "instrument", vocab_size: int = 1024, n_dims: int = 256,
                 skip_expand: bool = True, unknown_id: int | None = None, n_classes: int | None = None,
                 z_dims: int | None = None, input_key: str | None = None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        n_classes = vocab_size if n_classes is None else n_classes
        z_dims = n_dims if z_dims is None else z_dims
        input_key = one_hot_key if input_key is None else input_key
        self.skip_expand = bool(skip_expand)
        positive_int("OneHotEncoder `n_classes`", n_classes)
        if unknown_id is not None and 0 <= int(unknown_id) < n_classes:
            raise ValueError(f"OneHotEncoder `unknown_id` {unknown_id} must lie outside the classes "
                             f"[0, {n_classes}).")
        self.n_classes, self.z_dims, self.input_key = int(n_classes), int(z_dims), input_key
        self.unknown_id = None if unknown_id is None else int(unknown_id)
        # The original's Keras Embedding (its variable 'embeddings' `[n_classes, z_dims]`, its
        # uniform initialisation), read through a one-hot product so `unknown_id` gets zeros.
        self.embedding = keras.layers.Embedding(self.n_classes, self.z_dims)

    def build(self, *args, **kwargs):
        if not self.embedding.built:
            self.embedding.build()

    def check_labels(self, labels):
        """An assert op: every label in [0, n_classes) or equal to `unknown_id`."""
        valid = tf.logical_and(labels >= 0, labels < self.n_classes)
        if self.unknown_id is not None:
            valid = tf.logical_or(valid, tf.equal(labels, self.unknown_id))
        return tf.debugging.Assert(
            tf.reduce_all(valid),
            [f"OneHotEncoder {self.name} (input {self.input_key}): every id must be in "
             f"[0, n_classes) with n_classes={self.n_classes}"
             + ("" if self.unknown_id is None else f" (or the unknown id {self.unknown_id})")
             + "; ids outside:", tf.boolean_mask(labels, tf.logical_not(valid)), "batch ids:", labels],
            summarize=64, name="check_labels")

    def call(self, inputs, training=None):
        time_steps = None
        if isinstance(inputs, dict):
            if not self.skip_expand and "f0_scaled" in inputs:
                time_steps = core.ensure_3d(inputs["f0_scaled"], "f0_scaled").shape[1]
            (inputs,) = nn.get_features(inputs, [self.input_key], self.name)
        labels = tf.convert_to_tensor(inputs)
        labels = tf.reshape(tf.cast(labels, tf.int32), [tf.shape(labels)[0], -1])[:, 0]
        with tf.control_dependencies([self.check_labels(labels)]):
            one_hot = tf.one_hot(labels, self.n_classes)  # unknown_id (< 0 or >= n): zeros
        z = tf.matmul(one_hot, self.embedding.embeddings)
        return z if time_steps is None else tf.tile(z[:, tf.newaxis, :], [1, time_steps, 1])


# The original DDSP's other encoders (its signatures and behaviour).
from ddsp_models.training.codecs_original import (  # noqa: E402,F401
    AggregateFeaturesEncoder,
    MfccEncoder,
    MidiEncoder,
    ZEncoder,
)
from ddsp_models.training.encoders_inverse import (  # noqa: E402,F401
    ResnetSinusoidalEncoder,
    SinusoidalToHarmonicEncoder,
    scale_amplitudes,
)
