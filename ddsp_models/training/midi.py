"""MIDI helpers: straight-through quantisers, pianorolls, and note-level statistics.

Conventions:
  pitch     `[batch, n_frames, 1]` MIDI note number (0 = no note / silence);
  velocity  `[batch, n_frames, 1]` MIDI velocity, 0-127 (0 = silence);
  pianoroll `[batch, n_frames, 128]` holding the velocity of the sounding note at its pitch
            (0 elsewhere; `velocity_pianoroll`); a monophonic roll has at most one non-zero
            entry per frame. `midi_to_pianoroll` is the original DDSP's one-hot roll;
  note mask `[batch, n_frames, max_notes]`: entry (t, n) is 1 when frame t belongs to note n.
A note is a maximal run of frames of equal (quantised) pitch with pitch > 0; a change of
pitch, or silence, ends it. Notes are numbered in time order; those after `max_notes` are
dropped (their frames belong to no note).

The MIDI models' loss objects (`losses.Loss` layers, ``get_losses_dict`` -> ``{name:
scalar}``, gin ``losses.<Name>``) live here too: `MarginLoss` (pitch near f0),
`SlownessLoss` (a steady pitch latent within short notes) and `GaussianKLLoss` (latent
priors).
"""
import keras
import tensorflow as tf

from ddsp_models import core, seeding
from ddsp_models.checks import non_negative_float
from ddsp_models.gin_utils import register
from ddsp_models.losses import Loss
from ddsp_models.training.features import N_PITCHES


# ------------------------------------------------------------------- straight through
def straight_through_round(x):
    """round(x) in the forward pass; gradient of the identity (d out / d x = 1)."""
    x = core.tf_float32(x, "x")
    return x + tf.stop_gradient(tf.round(x) - x)


def straight_through_softmax(logits, axis: int = -1):
    """One-hot of argmax(logits) forward; the softmax's gradient backward.

    Args:
      logits: `[..., n_classes]`.

    Returns:
      `[..., n_classes]`, exactly one-hot in value.
    """
    logits = core.tf_float32(logits, "logits")
    probs = tf.nn.softmax(logits, axis=axis)
    hard = tf.one_hot(tf.argmax(logits, axis=axis), depth=logits.shape[axis], axis=axis)
    return probs + tf.stop_gradient(hard - probs)


# ----------------------------------------------------------------------- pianorolls
def pianoroll_to_midi(pianoroll):
    """Monophonic pianoroll `[batch, n_frames, 128]` -> (pitch, velocity), each `[batch, n_frames, 1]`.

    pitch: index of the loudest note (0 where the frame is silent); velocity: its value.
    """
    pianoroll = core.tf_float32(pianoroll, "pianoroll")
    if pianoroll.shape.rank != 3 or pianoroll.shape[-1] != N_PITCHES:
        raise ValueError(f"pianoroll must be [batch, n_frames, {N_PITCHES}], got {pianoroll.shape}.")
    velocity = tf.reduce_max(pianoroll, axis=-1, keepdims=True)
    pitch = tf.cast(tf.argmax(pianoroll, axis=-1), tf.float32)[..., tf.newaxis]
    pitch = tf.where(velocity > 0.0, pitch, 0.0)
    return pitch, velocity


def hold_pitch(pitch, velocity):
    """Pitch held through the silent frames, as a synthesiser's voice keeps its note's pitch
    through the release.

    Args:
      pitch: `[batch, n_frames(, 1)]` MIDI pitch.
      velocity: `[batch, n_frames(, 1)]`; a frame sounds where it is > 0.

    Returns:
      `[batch, n_frames, 1]`: the pitch where the frame sounds; elsewhere the pitch of the
      last sounding frame before it, or, before an example's first note, that note's pitch.
      An example with no sounding frame keeps its pitch. The gradient flows to the sounding
      frames' pitch.
    """
    pitch = core.ensure_3d(core.tf_float32(pitch, "pitch"), "pitch")[..., 0]
    velocity = core.ensure_3d(core.tf_float32(velocity, "velocity"), "velocity")[..., 0]
    sounding = velocity > 0.0
    n_frames = tf.shape(pitch)[1]
    frames = tf.broadcast_to(tf.range(n_frames)[tf.newaxis, :], tf.shape(pitch))
    # Sounding frames first, in time order: entry k is the index of the (k + 1)-th one.
    order = tf.argsort(tf.where(sounding, frames, frames + n_frames), axis=1, stable=True)
    n_before = tf.math.cumsum(tf.cast(sounding, tf.int32), axis=1)  # sounding frames <= t
    last = tf.gather(order, tf.maximum(n_before - 1, 0), batch_dims=1)
    held = tf.where(sounding, pitch, tf.gather(pitch, last, batch_dims=1))
    any_sounding = tf.reduce_any(sounding, axis=1, keepdims=True)
    return tf.where(any_sounding, held, pitch)[..., tf.newaxis]


def velocity_pianoroll(pitch, velocity):
    """(pitch, velocity) `[batch, n_frames(, 1)]` -> pianoroll `[batch, n_frames, 128]`
    (this package's roll, read by its note metrics and plots).

    The roll holds `velocity` at round(pitch) (clipped to 0-127) and 0 elsewhere; the
    gradient flows to velocity (the pitch index is discrete).
    """
    pitch = core.ensure_3d(core.tf_float32(pitch, "pitch"), "pitch")
    velocity = core.ensure_3d(core.tf_float32(velocity, "velocity"), "velocity")
    index = tf.cast(tf.clip_by_value(tf.round(pitch[..., 0]), 0.0, N_PITCHES - 1.0), tf.int32)
    return tf.one_hot(index, N_PITCHES) * velocity


def midi_to_pianoroll(q_pitch, q_vel, piano_keys: int = 128, thresh: float = 20.0):
    """The original DDSP's pianoroll of quantised MIDI: a one-hot of the pitch, velocity
    ignored.

    Args:
      q_pitch: `[batch, n_frames(, 1)]` MIDI pitch; cast to an integer key by truncation
        toward zero. Pitches at or below `thresh` (and negative ones) go to key 0, so a
        silent frame (pitch 0) lights key 0; pitches >= `piano_keys` light no key.
      q_vel: unused (the original's signature).
      piano_keys: keys of the roll.
      thresh: pitches <= thresh map to key 0; 0 or less keeps every pitch.

    Returns:
      `[batch, n_frames, piano_keys]` of 0 / 1. (The original squeezes every unit axis, so
      its roll of a batch of one has no batch axis; this keeps the batch axis.)
    """
    del q_vel
    pitch = core.ensure_3d(core.tf_float32(q_pitch, "q_pitch"), "q_pitch")[..., 0]
    if thresh > 0.0:
        pitch = pitch * tf.cast(pitch > thresh, pitch.dtype)
    return tf.one_hot(tf.cast(pitch, tf.int32), int(piano_keys))


# ------------------------------------------------------------------------ note masks
def get_note_mask(pitch, max_notes: int = 64):
    """Note membership `[batch, n_frames, max_notes]` from a quantised pitch track.

    Args:
      pitch: `[batch, n_frames(, 1)]` quantised MIDI pitch (0 = silence).
      max_notes: notes kept per example.
    """
    pitch = core.ensure_3d(core.tf_float32(pitch, "pitch"), "pitch")[..., 0]
    pitch = tf.round(pitch)
    voiced = pitch > 0.0
    previous = tf.concat([tf.zeros_like(pitch[:, :1]) - 1.0, pitch[:, :-1]], axis=1)
    onsets = tf.logical_and(voiced, tf.not_equal(pitch, previous))
    index = tf.cumsum(tf.cast(onsets, tf.int32), axis=1) - 1
    index = tf.where(voiced, index, -1)  # one_hot of -1 is all zeros
    return tf.one_hot(index, max_notes)


def get_note_lengths(note_mask):
    """Frames per note `[batch, max_notes]` of a note mask."""
    return tf.reduce_sum(core.tf_float32(note_mask, "note_mask"), axis=1)


def get_note_moments(x, note_mask, return_std: bool = True):
    """Mean and variance (or std) of a frame feature over each note.

    Args:
      x: `[batch, n_frames, channels]`.
      note_mask: `[batch, n_frames, max_notes]`.

    Returns:
      (mean, var or std), each `[batch, max_notes, channels]` (0 for empty notes).
    """
    x = core.ensure_3d(core.tf_float32(x, "x"), "x")
    note_mask = core.tf_float32(note_mask, "note_mask")
    lengths = get_note_lengths(note_mask)[..., tf.newaxis]  # [batch, notes, 1]
    mean = core.safe_divide(tf.einsum("btn,btc->bnc", note_mask, x), lengths)
    second = core.safe_divide(tf.einsum("btn,btc->bnc", note_mask, x * x), lengths)
    var = tf.maximum(second - mean * mean, 0.0)
    return mean, (tf.sqrt(var + 1e-8) if return_std else var)


def pool_over_notes(x, note_mask, return_std: bool = False):
    """Each frame gets its note's mean of `x` (frames outside notes get 0).

    Args:
      x: `[batch, n_frames, channels]`; note_mask: `[batch, n_frames, max_notes]`.
      return_std: also append the note's standard deviation (channels doubled).

    Returns:
      `[batch, n_frames, channels]` (or `2 * channels`).
    """
    note_mask = core.tf_float32(note_mask, "note_mask")
    mean, std = get_note_moments(x, note_mask, return_std=True)
    pooled = tf.einsum("btn,bnc->btc", note_mask, mean)
    if return_std:
        pooled = tf.concat([pooled, tf.einsum("btn,bnc->btc", note_mask, std)], axis=-1)
    return pooled


def get_short_note_loss_mask(note_mask, min_length: int = 8):
    """`[batch, n_frames, 1]`: 1 on frames of notes shorter than `min_length` frames."""
    note_mask = core.tf_float32(note_mask, "note_mask")
    lengths = get_note_lengths(note_mask)
    short = tf.cast(tf.logical_and(lengths > 0.0, lengths < float(min_length)), tf.float32)
    return tf.einsum("btn,bn->bt", note_mask, short)[..., tf.newaxis]


# ---------------------------------------------------------------------- Gaussian prior
def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) per element: 0.5 (mean^2 + var - 1 - log_var)."""
    mean = core.tf_float32(mean, "mean")
    log_var = core.tf_float32(log_var, "log_var")
    return 0.5 * (tf.square(mean) + tf.exp(log_var) - 1.0 - log_var)


def gaussian_sample(mean, log_var, training: bool = True):
    """Reparameterised sample mean + exp(log_var / 2) * eps (training), else the mean."""
    if not training:
        return mean
    return mean + tf.exp(0.5 * log_var) * seeding.normal(tf.shape(mean))


# ---------------------------------------------------------------------- loss objects
@register("losses")
class MarginLoss(Loss):
    """``weight * mean(relu(|value - target| - margin))``: zero while `value` stays within
    `margin` of `target` (e.g. a pitch latent within half a semitone of f0, MIDI units).

    Call: ``(value, target)``, tensors of one shape (e.g. ``[batch, n_frames, 1]``), or
    ``(distance)`` alone (|distance| stands for |value - target|; the original DDSP's
    MIDI models call their margin losses so). With ``margin=0`` this is the weighted mean
    absolute difference.
    """

    def __init__(self, weight: float = 1.0, margin: float = 0.0, name: str = "margin_loss"):
        super().__init__(name=name)
        self.weight = non_negative_float("`weight`", weight)
        self.margin = non_negative_float("`margin`", margin)

    def call(self, value, target=None):
        distance = value if target is None else value - target
        return self.weight * tf.reduce_mean(tf.nn.relu(tf.abs(distance) - self.margin))


@register("losses")
class SlownessLoss(Loss):
    """``weight * mean(|z(t) - z(t-1)| * short(t))``: penalises a changing pitch latent on
    frames of short notes (fewer than `min_note_length` frames) of the quantised MIDI,
    whose notes are split wherever the quantised pitch changes (`get_note_mask`, at most
    `max_notes` per example). The mean runs over batch and the n_frames - 1 differences.

    Call: ``(z_pitch, q_pitch, q_vel)``, each ``[batch, n_frames, 1]`` (MIDI pitch, MIDI
    pitch, velocity 0-127); the note segmentation gets no gradient.
    """

    def __init__(self, weight: float = 0.1, min_note_length: int = 8, max_notes: int = 64,
                 name: str = "slowness_loss"):
        super().__init__(name=name)
        self.weight = non_negative_float("`weight`", weight)
        self.min_note_length, self.max_notes = int(min_note_length), int(max_notes)

    def call(self, z_pitch, q_pitch, q_vel):
        note_pitch = tf.stop_gradient(q_pitch * tf.cast(q_vel > 0.0, tf.float32))
        note_mask = get_note_mask(note_pitch, self.max_notes)
        short = get_short_note_loss_mask(note_mask, self.min_note_length)
        change = tf.abs(z_pitch[:, 1:] - z_pitch[:, :-1]) * short[:, 1:]
        return self.weight * tf.reduce_mean(change)


@register("losses")
class GaussianKLLoss(Loss):
    """``weight * KL(N(mean, exp(log_var)) || N(0, 1))`` summed over the latent channels
    (last axis) and averaged over the other axes, or over the entries where `present` is
    1 (e.g. the notes an example really has).

    Call: ``(mean, log_var)`` ``[..., n]`` each, optional ``present`` ``[...]`` (0 / 1).
    """

    def __init__(self, weight: float = 1e-3, name: str = "kl_loss"):
        super().__init__(name=name)
        self.weight = non_negative_float("`weight`", weight)

    def call(self, mean, log_var, present=None):
        kl = tf.reduce_sum(gaussian_kl(mean, log_var), axis=-1)
        if present is None:
            return self.weight * tf.reduce_mean(kl)
        present = core.tf_float32(present, "present")
        return self.weight * core.safe_divide(tf.reduce_sum(kl * present),
                                              tf.reduce_sum(present))


VAR_FLOOR = 1e-6  # added to a variance before its log (frames outside notes have std 0)


def gaussian_moments(z):
    """(mean, variance) of a posterior given as a (mean, std) pair (as `nn.pool_over_notes`
    returns; the std passes no gradient: that square root has a NaN gradient on its empty
    regions, std 0) or as one tensor `[..., 2n]` whose channel halves are (mean,
    log-variance)."""
    if isinstance(z, (tuple, list)):
        if len(z) != 2:
            raise ValueError(f"a Gaussian posterior pair must be (mean, std), got {len(z)} tensors")
        mean, std = (core.tf_float32(x, name) for x, name in zip(z, ("mean", "std")))
        return mean, tf.square(tf.stop_gradient(std))
    z = core.tf_float32(z, "z")
    if z.shape[-1] is None or z.shape[-1] % 2:
        raise ValueError(f"a Gaussian posterior tensor needs an even number of channels "
                         f"(mean and log-variance halves), got {z.shape}")
    mean, log_var = tf.split(z, 2, axis=-1)
    return mean, tf.exp(log_var)


@register("losses")
class GaussianPrior(Loss):
    """A latent prior in the original DDSP's ZMidiAutoencoder interface (its config names
    ``losses.GaussianPrior``; 3.7.0 ships none): the model adds
    ``get_losses_dict(z)`` to its losses, then replaces the latent by ``prior(z)``, a sample.

    z: a (mean, std) pair (`nn.pool_over_notes`'s) or a tensor `[..., 2n]` of (mean,
    log-variance) halves (see `gaussian_moments`).
    Loss: ``weight * mean(sum_channels(0.5 (mean^2 + var - 1 - log(var + 1e-6))))``, the KL
    divergence to N(0, 1) summed over the latent channels, averaged over the other axes.
    Call: ``mean + sqrt(var) * eps``, eps ~ N(0, 1): from ``stateless_normal(seed=(seed,
    0))`` when `seed` is an int (the same noise every call), else `seeding.normal`.
    """

    def __init__(self, weight: float = 1.0, seed: int | None = None, name: str = "gaussian_prior"):
        super().__init__(name=name)
        self.weight = non_negative_float("`weight`", weight)
        self.seed = None if seed is None else int(seed)

    def kl(self, z):
        """The weighted KL loss (scalar) of posterior `z`."""
        mean, var = gaussian_moments(z)
        kl = 0.5 * (tf.square(mean) + var - 1.0 - tf.math.log(var + VAR_FLOOR))
        return self.weight * tf.reduce_mean(tf.reduce_sum(kl, axis=-1))

    def get_losses_dict(self, z) -> dict:
        return {self.name: self.kl(z)}

    def __call__(self, z):
        # A (mean, std) pair stays a pair (Loss.__call__ would stack it into one tensor).
        return keras.layers.Layer.__call__(self, tuple(z) if isinstance(z, list) else z)

    def call(self, z):
        mean, var = gaussian_moments(z)
        if self.seed is None:
            eps = seeding.normal(tf.shape(mean))
        else:
            eps = tf.random.stateless_normal(tf.shape(mean), seed=[self.seed, 0])
        return mean + tf.sqrt(var) * eps
