"""Specification of the fast GRU: it computes exactly the Keras GRU (values and gradients,
same weights, every recurrence mode, inside tf.function, unknown batch and time length),
restores Keras GRU checkpoints, and carries its state across calls (`carry_rnn_states`)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import gru, nn

RNG = np.random.default_rng(3)


def random(*shape):
    return tf.constant(RNG.normal(size=shape).astype(np.float32))


def gru_pair(units=6, go_backwards=False, return_sequences=True, recurrence="xla_step",
             input_dims=5):
    """(keras.layers.GRU, gru.FastGRU) built on `input_dims` inputs and sharing random weights
    (non-zero biases, so every bias term is exercised)."""
    keras_gru = keras.layers.GRU(units, return_sequences=return_sequences,
                                 go_backwards=go_backwards)
    fast_gru = gru.FastGRU(units, recurrence=recurrence, return_sequences=return_sequences,
                          go_backwards=go_backwards)
    x = random(1, 3, input_dims)
    keras_gru(x), fast_gru(x)
    weights = [RNG.normal(scale=0.5, size=w.shape).astype(np.float32)
               for w in keras_gru.get_weights()]
    keras_gru.set_weights(weights)
    fast_gru.set_weights(weights)
    return keras_gru, fast_gru


def outputs_and_gradients(layer, x, h0):
    """Layer output and d(loss)/d(x, h0, weights) for a loss that weights every output."""
    with tf.GradientTape() as tape:
        tape.watch([x, h0])
        y = layer(x, initial_state=h0)
        loss = tf.reduce_sum(y * tf.sin(3.0 * y + 1.0))
    return y, tape.gradient(loss, [x, h0] + layer.trainable_weights)


# ------------------------------------------------------------------------------------- GRU
@pytest.mark.parametrize("recurrence", gru.GRU_RECURRENCES)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_fast_gru_equals_keras_gru_in_values_and_gradients(recurrence, go_backwards):
    keras_gru, fast_gru = gru_pair(go_backwards=go_backwards, recurrence=recurrence)
    x, h0 = random(3, 23, 5), random(3, 6)
    y_keras, g_keras = outputs_and_gradients(keras_gru, x, h0)
    y_fast, g_fast = outputs_and_gradients(fast_gru, x, h0)
    np.testing.assert_allclose(y_fast, y_keras, atol=1e-5)
    assert len(g_fast) == len(g_keras) == 5  # x, h0, kernel, recurrent_kernel, bias
    for g_f, g_k in zip(g_fast, g_keras):
        np.testing.assert_allclose(g_f, g_k, atol=1e-4, rtol=1e-4)
        assert np.abs(g_k).max() > 1e-3  # every gradient is exercised


def test_fast_gru_in_tf_function_and_last_state_only():
    keras_gru, fast_gru = gru_pair(return_sequences=False)
    x, h0 = random(2, 17, 5), random(2, 6)

    @tf.function
    def both(x, h0):
        return outputs_and_gradients(keras_gru, x, h0), outputs_and_gradients(fast_gru, x, h0)

    (y_keras, g_keras), (y_fast, g_fast) = both(x, h0)
    assert y_fast.shape == (2, 6)
    np.testing.assert_allclose(y_fast, y_keras, atol=1e-5)
    for g_f, g_k in zip(g_fast, g_keras):
        np.testing.assert_allclose(g_f, g_k, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("recurrence", gru.GRU_RECURRENCES)
def test_fast_gru_with_unknown_batch_and_time_length(recurrence):
    keras_gru, fast_gru = gru_pair(recurrence=recurrence)
    run = tf.function(lambda x: fast_gru(x), input_signature=[tf.TensorSpec([None, None, 5])])
    for batch, steps in ((2, 13), (3, 4)):
        x = random(batch, steps, 5)
        np.testing.assert_allclose(run(x), keras_gru(x), atol=1e-5)


def test_fast_gru_restores_a_keras_gru_checkpoint(tmp_path):
    keras_gru, _ = gru_pair()
    path = tf.train.Checkpoint(gru=keras_gru).save(str(tmp_path / "ckpt"))
    fast_gru = gru.FastGRU(6, return_sequences=True)
    x = random(2, 9, 5)
    fast_gru(x)  # build before restoring
    assert np.abs(fast_gru(x) - keras_gru(x)).max() > 1e-2  # its own initial weights differ
    tf.train.Checkpoint(gru=fast_gru).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(fast_gru(x), keras_gru(x), atol=1e-5)


def test_fast_gru_dropout_only_in_training_and_config_round_trip():
    layer = gru.FastGRU(4, dropout=0.5, return_sequences=True, recurrence="graph")
    x = random(2, 8, 3)
    np.testing.assert_allclose(layer(x, training=False), layer(x, training=False))
    assert np.abs(layer(x, training=True) - layer(x, training=False)).max() > 1e-4
    clone = gru.FastGRU.from_config(layer.get_config())
    assert clone.recurrence == "graph" and clone.units == 4
    with pytest.raises(ValueError, match="recurrence"):
        gru.FastGRU(4, recurrence="cudnn")


@pytest.mark.parametrize("mode", gru.RnnStates.MODES)
def test_carried_states_make_chunks_equal_one_pass(mode):
    rnn = nn.Rnn(4, "gru")
    x = random(2, 12, 3)
    whole = rnn(x)
    states = gru.RnnStates(mode=mode)
    with gru.carry_rnn_states(states):
        chunks = [rnn(x[:, a:b]) for a, b in ((0, 5), (5, 6), (6, 12))]
    np.testing.assert_allclose(tf.concat(chunks, axis=1), whole, atol=1e-5)
    np.testing.assert_allclose(states.values[rnn.name], whole[:, -1], atol=1e-5)
    # Outside the block the layer starts from zeros again: the second chunk alone differs.
    assert gru.active_rnn_states() is None
    assert np.abs(rnn(x[:, 5:6]) - whole[:, 5:6]).max() > 1e-3
    with pytest.raises(ValueError, match="unidirectional"):
        with gru.carry_rnn_states(gru.RnnStates()):
            nn.Rnn(4, "gru", bidir=True)(x)
