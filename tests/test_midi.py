"""MIDI helpers: straight-through quantisers, pianorolls, note masks and statistics, priors."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import midi
from midi_fixtures import midi_notes


def test_straight_through_round_rounds_forward_and_passes_the_gradient():
    x = tf.constant([[0.2, 1.7, -2.4, 59.5001]])
    weights = tf.constant([[1.0, -2.0, 3.0, 0.5]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = midi.straight_through_round(x)
        loss = tf.reduce_sum(weights * y)
    np.testing.assert_array_equal(y.numpy(), [[0.0, 2.0, -2.0, 60.0]])
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), weights.numpy())  # identity gradient


def test_straight_through_softmax_is_one_hot_with_the_softmax_gradient():
    logits = tf.constant([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    upstream = tf.constant([[1.0, -1.0, 0.5], [0.3, 2.0, -0.7]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        hard = midi.straight_through_softmax(logits)
        loss = tf.reduce_sum(upstream * hard)
        soft_loss = tf.reduce_sum(upstream * tf.nn.softmax(logits))
    np.testing.assert_array_equal(hard.numpy(), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), tape.gradient(soft_loss, logits).numpy(),
                               atol=1e-6)
    assert np.abs(tape.gradient(loss, logits).numpy()).sum() > 0.0


def test_pianoroll_round_trip_and_note_values():
    notes = midi_notes(n_examples=2, seconds=0.256, seed=3)
    roll = notes["note_active_velocities"] * notes["note_active_frame_indices"]
    pitch, velocity = midi.pianoroll_to_midi(roll)
    assert pitch.shape == velocity.shape == (2, 64, 1)
    np.testing.assert_array_equal(midi.velocity_pianoroll(pitch, velocity).numpy(), roll)
    # The first frame of each example sounds its first note; gaps are silent (pitch 0).
    np.testing.assert_array_equal(pitch.numpy()[:, 0, 0], notes["pitches"][:, 0])
    np.testing.assert_array_equal(velocity.numpy()[:, 0, 0], notes["velocities"][:, 0])
    silent = roll.max(axis=-1) == 0
    assert silent.any() and np.all(pitch.numpy()[..., 0][silent] == 0)
    with pytest.raises(ValueError, match="pianoroll"):
        midi.pianoroll_to_midi(np.zeros([1, 4, 12], np.float32))


def test_hold_pitch_keeps_the_last_notes_pitch_through_silence_and_routes_the_gradient():
    pitch = tf.constant([[0, 60, 60, 0, 0, 62, 0, 0],     # silence before, gaps, release
                         [0, 0, 0, 0, 0, 0, 0, 0],        # no note: unchanged
                         [70, 0, 71, 71, 0, 0, 0, 69]], tf.float32)
    velocity = tf.cast(pitch > 0, tf.float32) * 90.0
    with tf.GradientTape() as tape:
        tape.watch(pitch)
        held = midi.hold_pitch(pitch, velocity)
        weighted = tf.reduce_sum(held[..., 0] * tf.range(1.0, 9.0))
    np.testing.assert_array_equal(held.numpy()[..., 0], [[60, 60, 60, 60, 60, 62, 62, 62],
                                                         [0, 0, 0, 0, 0, 0, 0, 0],
                                                         [70, 70, 71, 71, 71, 71, 71, 69]])
    assert held.shape == (3, 8, 1)
    # Each output frame's gradient lands on the sounding frame it copies (weights 1..8).
    np.testing.assert_array_equal(tape.gradient(weighted, pitch).numpy(),
                                  [[0, 1 + 2, 3 + 4 + 5, 0, 0, 6 + 7 + 8, 0, 0],
                                   [1, 2, 3, 4, 5, 6, 7, 8],
                                   [1 + 2, 0, 3, 4 + 5 + 6 + 7, 0, 0, 0, 8]])


def test_note_mask_splits_runs_of_equal_pitch():
    pitch = tf.constant([[0, 60, 60, 62, 62, 62, 0, 62, 61, 61]], tf.float32)
    mask = midi.get_note_mask(pitch, max_notes=5).numpy()[0]
    assert mask.shape == (10, 5)
    np.testing.assert_array_equal(mask.argmax(-1)[mask.sum(-1) > 0], [0, 0, 1, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(mask.sum(-1), [0, 1, 1, 1, 1, 1, 0, 1, 1, 1])  # silence: no note
    np.testing.assert_array_equal(midi.get_note_lengths(mask[None]).numpy()[0], [2, 3, 1, 2, 0])
    # Notes beyond max_notes belong to no note.
    truncated = midi.get_note_mask(pitch, max_notes=2).numpy()[0]
    np.testing.assert_array_equal(truncated.sum(-1), [0, 1, 1, 1, 1, 1, 0, 0, 0, 0])


def test_note_moments_pool_and_short_note_mask():
    pitch = tf.constant([[60, 60, 60, 0, 64, 64]], tf.float32)
    mask = midi.get_note_mask(pitch, max_notes=3)
    x = tf.constant([[[1.0], [2.0], [3.0], [100.0], [5.0], [7.0]]])
    mean, var = midi.get_note_moments(x, mask, return_std=False)
    np.testing.assert_allclose(mean.numpy()[0, :, 0], [2.0, 6.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(var.numpy()[0, :, 0], [2.0 / 3.0, 1.0, 0.0], atol=1e-4)
    pooled = midi.pool_over_notes(x, mask, return_std=True).numpy()[0]
    np.testing.assert_allclose(pooled[:, 0], [2, 2, 2, 0, 6, 6], atol=1e-5)
    np.testing.assert_allclose(pooled[:, 1], [np.sqrt(2 / 3)] * 3 + [0] + [1, 1], atol=1e-3)
    short = midi.get_short_note_loss_mask(mask, min_length=3).numpy()[0, :, 0]
    np.testing.assert_array_equal(short, [0, 0, 0, 0, 1, 1])


def test_gaussian_kl_is_zero_only_for_the_standard_normal():
    zeros = tf.zeros([2, 4])
    np.testing.assert_array_equal(midi.gaussian_kl(zeros, zeros).numpy(), np.zeros([2, 4]))
    assert float(tf.reduce_min(midi.gaussian_kl(zeros + 0.5, zeros))) == pytest.approx(0.125)
    assert float(tf.reduce_min(midi.gaussian_kl(zeros, zeros + 1.0))) == pytest.approx(0.5 * (np.e - 2.0))


def test_gaussian_sample_is_reparameterised():
    mean, log_var = tf.fill([20000, 1], 1.5), tf.fill([20000, 1], np.log(0.25).astype(np.float32))
    tf.random.set_seed(0)
    with tf.GradientTape() as tape:
        tape.watch(mean)
        sample = midi.gaussian_sample(mean, log_var, training=True)
    assert float(tf.reduce_mean(sample)) == pytest.approx(1.5, abs=0.02)
    assert float(tf.math.reduce_std(sample)) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(tape.gradient(sample, mean).numpy(), 1.0)
    np.testing.assert_array_equal(midi.gaussian_sample(mean, log_var, training=False).numpy(), mean.numpy())


def test_midi_loss_objects_equal_their_closed_forms_and_are_gin_losses():
    import gin

    def close(expected):  # float32 sums
        return pytest.approx(expected, rel=1e-5, abs=1e-7)

    value = tf.constant([[[60.2], [61.0], [58.0]]])
    target = tf.constant([[[60.0], [60.0], [60.0]]])
    margin = midi.MarginLoss(weight=2.0, margin=0.5, name="pitch_loss")
    # |d| = 0.2 (inside the margin), 1.0, 2.0 -> relu(|d| - 0.5) = 0, 0.5, 1.5
    losses = margin.get_losses_dict(value, target)
    assert list(losses) == ["pitch_loss"]
    assert float(losses["pitch_loss"]) == close(2.0 * 2.0 / 3)
    assert float(midi.MarginLoss(weight=1.0)(value, target)) == close(3.2 / 3)
    # KL of N(1, e^0) per channel is 0.5; two channels; only the present note counts.
    mean, log_var = tf.constant([[[1.0, 1.0], [0.0, 0.0]]]), tf.zeros([1, 2, 2])
    kl = midi.GaussianKLLoss(weight=0.1, name="kl_note_loss")
    assert float(kl(mean, log_var, present=tf.constant([[1.0, 0.0]]))) == close(0.1)
    assert float(kl(mean, log_var)) == close(0.05)
    # A pitch latent that moves inside a 2-frame note (short: min length 3) is penalised,
    # one that moves only at the note boundaries is not.
    q_pitch = tf.constant([[[60.0], [60.0], [62.0], [62.0], [62.0]]])
    velocity = tf.fill([1, 5, 1], 100.0)
    slow = midi.SlownessLoss(weight=1.0, min_note_length=3, max_notes=4)
    assert float(slow(q_pitch, q_pitch, velocity)) == close(0.0)
    wobble = q_pitch + tf.constant([[[0.0], [0.4], [0.0], [0.0], [0.0]]])
    assert float(slow(wobble, q_pitch, velocity)) == close(0.4 / 4)
    gin.parse_config("m/losses.MarginLoss.margin = 1.0")
    with gin.config_scope("m"):
        assert midi.MarginLoss().margin == 1.0
    gin.clear_config()
