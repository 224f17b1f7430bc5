"""The original DDSP's two CREPE wrappers, on this project's CREPE network (ddsp_models.crepe).

`PitchCREPE` is `spectral_ops.PretrainedCREPE` (batched pitch and confidence in TF) and
`EmbeddingCREPE` is `losses.PretrainedCREPE` (activations of one layer, for embedding
losses); both keep the original's constructor arguments, framing and normalisation.
Audio is float32 `[batch, n_samples]` at 16 kHz.
"""
import keras
import numpy as np
import tensorflow as tf

from ddsp_models import crepe
from ddsp_models.crepe.decoding import SELF_EMISSION

FRAME_SIZE = crepe.FRAME_SIZE  # 1024 samples
CAPACITIES = tuple(crepe.CAPACITY_MULTIPLIERS)


def _network(capacity: str) -> keras.Model:
    """A fresh copy of the pretrained network (so trainability is per wrapper)."""
    return crepe.build_crepe_model(capacity, crepe.load_crepe_weights(capacity))


# The HMM of the original's spectral_ops.PretrainedCREPE (tensorflow-probability there): every
# jump possible (weight max(12 - |jump|, MIN_TRANSITION)), the activations scored as the counts
# of a one-draw multinomial whose state s favours bin s (SELF_EMISSION).
MIN_TRANSITION = 1e-5


def hmm_viterbi_path(acts: np.ndarray) -> np.ndarray:
    """Viterbi path of the original's `PretrainedCREPE.create_hmm` model, in numpy (float64).

    Uniform prior; transitions max(12 - |i - j|, 1e-5) normalised per source state; the
    observation log-likelihood of state s is sum_k a_k log p_sk with p_ss = 0.1 + 0.9 / 360
    and p_sk = 0.9 / 360 otherwise (a multinomial of one draw with the activations as
    counts; the terms equal for every state are dropped). Unlike `crepe.viterbi_decode`
    (the crepe package's HMM) every jump is possible and the whole activation vector counts.

    Args:
      acts: activations `[batch, n_frames, 360]`.

    Returns:
      int64 bin path `[batch, n_frames]`.
    """
    acts = np.asarray(acts, np.float64)
    batch, n_frames, n_bins = acts.shape
    bins = np.arange(n_bins)
    transition = np.maximum(12.0 - np.abs(bins[:, None] - bins[None, :]), MIN_TRANSITION)
    log_transition = np.log(transition / transition.sum(axis=1, keepdims=True))  # [from, to]
    other = (1.0 - SELF_EMISSION) / n_bins
    log_obs = acts * (np.log(SELF_EMISSION + other) - np.log(other))
    path = np.zeros((batch, n_frames), np.int64)
    for b in range(batch):
        score = np.log(1.0 / n_bins) + log_obs[b, 0]
        pointers = np.zeros((n_frames, n_bins), np.int64)
        for t in range(1, n_frames):
            candidates = score[:, None] + log_transition
            pointers[t] = np.argmax(candidates, axis=0)
            score = candidates[pointers[t], bins] + log_obs[b, t]
        path[b, -1] = np.argmax(score)
        for t in range(n_frames - 1, 0, -1):
            path[b, t - 1] = pointers[t, path[b, t]]
    return path


class PitchCREPE(keras.Model):
    """Pretrained CREPE that predicts pitch and confidence of batches entirely in TF.

    Args:
      model_size_or_path: a capacity ('tiny', 'small', 'medium', 'large', 'full') or the path
        of a saved Keras model mapping `[n, 1024]` frames to `[n, 360]` activations.
      hop_size: samples between frames (at 16 kHz).
    """

    def __init__(self, model_size_or_path, hop_size: int = 160, **kwargs):
        super().__init__(**kwargs)
        self.hop_size = int(hop_size)
        self.frame_size = FRAME_SIZE
        self.sample_rate = crepe.MODEL_SAMPLE_RATE
        if model_size_or_path in CAPACITIES:
            self.core_model = _network(model_size_or_path)
        else:
            self.core_model = keras.models.load_model(model_size_or_path)
        self.core_model.trainable = False
        self.model_size_or_path = model_size_or_path

    @classmethod
    def activations_to_f0_and_confidence(cls, activations, centers=None):
        """(f0 in Hz `[n]`, confidence `[n, 1]`) from activations `[n, 360]`: the
        activation-weighted mean of the cents of bins center - 4 .. center + 5 (clipped to
        the 360 bins); center is the argmax unless given."""
        activations = tf.convert_to_tensor(activations, tf.float32)
        cent_mapping = tf.cast(tf.linspace(0.0, 7180.0, 360) + crepe.CENTS_OFFSET, tf.float32)
        confidence = tf.reduce_max(activations, axis=-1, keepdims=True)
        if centers is None:
            centers = tf.math.argmax(activations, axis=-1)
        centers = tf.cast(centers, tf.int32)
        index = tf.clip_by_value(centers[:, None] - 4 + tf.range(10)[None, :], 0, 359)
        weights = tf.gather(activations, index, batch_dims=1)
        cents = tf.gather(cent_mapping, index)
        f0_cent = tf.reduce_sum(weights * cents, axis=-1) / tf.reduce_sum(weights, axis=-1)
        return 10.0 * 2.0 ** (f0_cent / 1200.0), confidence

    def batch_frames(self, audio):
        """`[batch, n_samples]` -> frames `[batch * n_frames, 1024]` every hop_size samples
        (audio of exactly 1024 samples is one frame)."""
        if audio.shape[-1] == self.frame_size:
            return audio
        frames = tf.signal.frame(audio, self.frame_size, self.hop_size)
        return tf.reshape(frames, [-1, self.frame_size])

    def normalize_frames(self, frames):
        """Zero mean and unit standard deviation per frame (silent frames only centred)."""
        mean, variance = tf.nn.moments(frames, axes=[-1])
        std = tf.where(tf.abs(variance) > 0, tf.sqrt(variance), 1e-8)
        return (frames - mean[:, None]) / std[:, None]

    def predict_f0_and_confidence(self, audio, viterbi: bool = False, padding: str = "center"):
        """(f0 in Hz, confidence), both `[batch, n_frames]`, for `[batch, n_samples]` (or
        `[n_samples]`) 16 kHz audio framed with `padding` (see spectral_ops.pad). Viterbi
        decoding runs in numpy (eager only)."""
        from ddsp_models import spectral_ops

        audio = tf.convert_to_tensor(audio, tf.float32)
        audio = audio[None, :] if audio.shape.rank == 1 else audio
        batch_size = audio.shape[0]
        audio = spectral_ops.pad(audio, self.frame_size, self.hop_size, padding=padding)
        frames = self.normalize_frames(self.batch_frames(audio))
        activations = self.core_model(frames, training=False)
        centers = None
        if viterbi:
            centers = tf.reshape(self.viterbi_decode(tf.reshape(activations, [batch_size, -1, 360])), [-1])
        f0_hz, confidence = self.activations_to_f0_and_confidence(activations, centers)
        return tf.reshape(f0_hz, [batch_size, -1]), tf.reshape(confidence, [batch_size, -1])

    def viterbi_decode(self, acts):
        """Most likely bin path `[batch, n_frames]` (int64) of activations `[batch, n_frames,
        360]` under the original's HMM of this layer (`hmm_viterbi_path`)."""
        return tf.constant(hmm_viterbi_path(np.asarray(acts)))

    def create_hmm(self, num_steps):
        raise NotImplementedError(
            "PretrainedCREPE.create_hmm builds a tensorflow_probability HiddenMarkovModel, which this "
            "project does not depend on; viterbi_decode computes its Viterbi path in numpy (hmm_viterbi_path).")


class EmbeddingCREPE(keras.layers.Layer):
    """Frozen pretrained CREPE returning one layer's activations per frame, for losses.

    Frames: 1024 samples every 1024 (non-overlapping), audio zero-padded by 512 on both ends;
    each frame minus its mean, divided by (std + 1e-5).

    Args:
      model_capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      activation_layer: a layer of crepe.layer_names(), e.g. 'conv5-maxpool', 'classifier'.
    Call: audio `[batch, n_samples]` -> `[batch, n_frames, depth]`.
    """

    def __init__(self, model_capacity: str = "tiny", activation_layer: str = "conv5-maxpool",
                 name: str = "pretrained_crepe", trainable: bool = False):
        super().__init__(name=name, trainable=trainable)
        if activation_layer not in crepe.layer_names():
            raise ValueError(f"`activation_layer` {activation_layer!r} not found; valid names are "
                             f"{crepe.layer_names()}.")
        self._model_capacity = model_capacity
        self._activation_layer = activation_layer
        network = _network(model_capacity)
        self._activation_model = keras.Model(network.input, network.get_layer(activation_layer).output)
        self._activation_model.trainable = trainable
        self.frame_length = FRAME_SIZE

    def build(self, input_shape=None):
        self.built = True

    def frame_audio(self, audio, hop_length: int = 1024, center: bool = True):
        """Normalised frames `[batch, n_frames, 1024]` (see the class docstring)."""
        half = self.frame_length // 2
        audio = tf.pad(audio, [[0, 0], [half, half]]) if center else audio
        frames = tf.signal.frame(audio, frame_length=self.frame_length, frame_step=hop_length)
        mean, variance = tf.nn.moments(frames, [-1], keepdims=True)
        return (frames - mean) / (variance ** 0.5 + 1e-5)

    def call(self, audio):
        frames = self.frame_audio(tf.convert_to_tensor(audio, tf.float32))
        batch_size, n_frames = frames.shape[0], frames.shape[1]
        outputs = self._activation_model(tf.reshape(frames, [-1, self.frame_length]))
        return tf.reshape(outputs, [batch_size if batch_size is not None else -1, n_frames, -1])
