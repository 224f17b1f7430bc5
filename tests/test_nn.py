"""Specification of the network layers: the Rnn's GRU switch and directions, receptive fields
of the FC and dilated-conv stacks, normalisation statistics, output splitting, and
checkpointing of every layer. (The fast GRU itself: tests/test_gru.py.)"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import gru, nn

RNG = np.random.default_rng(3)


def random(*shape):
    return tf.constant(RNG.normal(size=shape).astype(np.float32))


# ------------------------------------------------------------------------------------- RNN
@pytest.mark.parametrize("fast_gru", [True, False])
def test_rnn_gru_switch_computes_the_same_function(fast_gru):
    x = random(2, 11, 5)
    reference = nn.Rnn(6, "gru", fast_gru=not fast_gru)
    rnn = nn.Rnn(6, "gru", fast_gru=fast_gru)
    reference(x), rnn(x)
    rnn.set_weights(reference.get_weights())
    assert isinstance(rnn.rnn, gru.FastGRU) == fast_gru
    np.testing.assert_allclose(rnn(x), reference(x), atol=1e-5)


def test_rnn_bidirectional_concatenates_forward_and_time_reversed_passes():
    x = random(2, 10, 3)
    rnn = nn.Rnn(4, "gru", bidir=True)
    y = rnn(x)
    assert y.shape == (2, 10, 8)
    forward = gru.FastGRU(4, return_sequences=True)
    backward = gru.FastGRU(4, return_sequences=True)
    forward(x), backward(x)
    forward.set_weights(rnn.rnn.forward_layer.get_weights())
    backward.set_weights(rnn.rnn.backward_layer.get_weights())
    np.testing.assert_allclose(y[..., :4], forward(x), atol=1e-5)
    backward_on_reversed = tf.reverse(backward(tf.reverse(x, [1])), [1])
    np.testing.assert_allclose(y[..., 4:], backward_on_reversed, atol=1e-5)


def test_rnn_lstm_last_output_is_the_last_step_of_the_sequence():
    x = random(2, 7, 3)
    sequence = nn.Rnn(5, "lstm")
    last = nn.Rnn(5, "lstm", return_sequences=False)
    sequence(x), last(x)
    last.set_weights(sequence.get_weights())
    np.testing.assert_allclose(last(x), sequence(x)[:, -1], atol=1e-6)
    with pytest.raises(ValueError, match="rnn_type"):
        nn.Rnn(5, "transformer")


# -------------------------------------------------------------------------------- FC stacks
def test_fc_is_dense_then_layer_norm_then_nonlinearity():
    x = random(2, 6, 3)
    fc = nn.Fc(8, nonlinearity="linear")
    y = fc(x).numpy()
    kernel, bias = fc.dense.get_weights()
    h = x.numpy() @ kernel + bias
    # layer norm over channels (Keras epsilon), initial gain 1 and offset 0
    normed = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + fc.norm.epsilon)
    np.testing.assert_allclose(y, normed, atol=1e-5)
    leaky = nn.Fc(8)
    leaky(x)
    leaky.set_weights(fc.get_weights())
    np.testing.assert_allclose(leaky(x), np.where(y > 0, y, 0.2 * y), atol=1e-6)  # tf.nn.leaky_relu


def test_fc_stack_acts_on_each_time_step_alone():
    x = random(1, 9, 3)
    stack = nn.FcStack(ch=8, layers=3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = stack(x)[0, 4]
    gradient = np.abs(tape.gradient(y, x).numpy()[0]).sum(-1)
    assert y.shape == (8,) and len(stack.trainable_weights) == 3 * 4
    assert gradient[4] > 0 and np.all(np.delete(gradient, 4) == 0.0)


def test_fc_stack_of_zero_layers_is_the_identity():
    """The original's tiny_instrument.gin sets RnnFcDecoder.layers_per_stack = 0."""
    x = random(2, 5, 3)
    stack = nn.FcStack(ch=8, layers=0)
    np.testing.assert_array_equal(stack(x).numpy(), x.numpy())
    assert not stack.trainable_weights
    with pytest.raises(ValueError, match="layers"):
        nn.FcStack(ch=8, layers=-1)


def test_rnn_sandwich_is_fc_stack_then_rnn_then_fc_stack():
    x = random(1, 7, 3)
    sandwich = nn.RnnSandwich(fc_stack_ch=6, fc_stack_layers=1, rnn_ch=5)
    y = sandwich(x)
    expected = sandwich.fc_out(sandwich.rnn(sandwich.fc_in(x)))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-6)
    with tf.GradientTape() as tape:  # causal through the GRU: the first output ignores later inputs
        tape.watch(x)
        first = sandwich(x)[0, 0]
    gradient = np.abs(tape.gradient(first, x).numpy()[0]).sum(-1)
    assert y.shape == (1, 7, 6) and gradient[0] > 0 and np.all(gradient[1:] == 0.0)


def test_get_nonlinearity_by_name_or_callable():
    assert nn.get_nonlinearity("leaky_relu")(tf.constant(-1.0)).numpy() == pytest.approx(-0.2)
    assert nn.get_nonlinearity("relu")(tf.constant(-1.0)).numpy() == 0.0
    assert nn.get_nonlinearity(tf.tanh) is tf.tanh
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.get_nonlinearity("no_such_activation")


# ----------------------------------------------------------------------- dilated convolutions
def input_gradient_span(layer, x, t0):
    """Time steps of `x` on which output frame t0 depends (non-zero gradient)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x)[:, t0])
    gradient = np.abs(tape.gradient(y, x).numpy()).sum(axis=(0, 2))
    return np.flatnonzero(gradient > 0)


def test_dilated_conv_stack_receptive_field_is_the_dilation_span():
    # conv_in reaches +-1, each stack +-(1 + 2 + 4): +-15 in all.
    stack = nn.DilatedConvStack(ch=16, layers_per_stack=3, stacks=2, kernel_size=3, dilation=2)
    x, t0 = random(1, 64, 2), 30
    span = input_gradient_span(stack, x, t0)
    assert span.min() == t0 - 15 and span.max() == t0 + 15
    assert stack(x).shape == (1, 64, 16)


def test_dilated_conv_stack_norms_and_resampling():
    x = random(2, 16, 3)
    # Instance norm takes statistics over all of time: every input frame matters.
    normed = nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1, norm_type="instance")
    assert len(input_gradient_span(normed, x, 0)) == 16
    up = nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=2, resample_type="upsample", resample_stride=2)
    down = nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=2, resample_type="downsample",
                               resample_stride=2, stacks_per_resample=2)
    assert up(x).shape == (2, 64, 4) and down(x).shape == (2, 8, 4)
    before = nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=2, resample_type="downsample",
                                 resample_stride=2, resample_after_convolve=False)
    assert before(x).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="norm_type"):
        nn.DilatedConvStack(norm_type="batch")
    with pytest.raises(ValueError, match="dilation"):
        nn.DilatedConvStack(dilation=0)
    with pytest.raises(ValueError, match="multiple of stacks_per_resample"):
        nn.DilatedConvStack(stacks=3, layers_per_stack=1, resample_type="upsample", resample_stride=2,
                            stacks_per_resample=2, resample_after_convolve=False)


def test_dilated_conv_stack_spectral_norm_and_orthogonal_init():
    x = random(2, 16, 3)
    stack = nn.DilatedConvStack(ch=8, layers_per_stack=2, stacks=1, spectral_norm=True)
    for _ in range(20):  # one power-iteration step per training call
        stack(x, training=True)
    for wrapper in [stack.conv_in, stack.layer_0.conv, stack.layer_1.conv]:
        kernel = wrapper.layer.kernel.numpy()
        largest = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert largest == pytest.approx(1.0, abs=0.05)
    ortho = nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1, ortho_init=True)
    ortho(x)
    kernel = ortho.layer_0.conv.kernel.numpy().reshape(-1, 4)  # [3 taps * 4 in, 4 out]
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(4), atol=1e-5)


def test_dilated_conv_stack_conditioning_changes_the_output():
    x, z = random(1, 12, 2), random(1, 3, 4)  # conditioning at a lower rate is resampled
    stack = nn.DilatedConvStack(ch=8, layers_per_stack=2, stacks=1, conditional=True)
    y = stack((x, z))
    assert y.shape == (1, 12, 8)
    assert np.abs(stack((x, z + 1.0)) - y).max() > 1e-3
    with pytest.raises(ValueError, match="conditioning"):
        stack(x)


# ------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("rank", [3, 4])
def test_normalize_statistics_over_the_right_axes(rank):
    shape = (2, 10, 8) if rank == 3 else (2, 10, 3, 8)
    x = random(*shape) * 3.0 + random(*((2,) + (1,) * (rank - 2) + (8,)))  # per-channel offsets
    inner = tuple(range(1, rank - 1))
    instance = nn.normalize_op(x, "instance").numpy()
    np.testing.assert_allclose(instance.mean(inner), 0.0, atol=1e-5)
    np.testing.assert_allclose(instance.var(inner), 1.0, atol=1e-3)
    layer = nn.normalize_op(x, "layer").numpy()
    np.testing.assert_allclose(layer.mean(inner + (rank - 1,)), 0.0, atol=1e-5)
    np.testing.assert_allclose(layer.var(inner + (rank - 1,)), 1.0, atol=1e-3)
    assert np.abs(layer.mean(inner)).max() > 0.1  # not per channel
    group = nn.normalize_op(x, "group", n_groups=4).numpy()  # 4 groups of 2 channels
    grouped = group.reshape(shape[:-1] + (4, 2))
    np.testing.assert_allclose(grouped.mean(inner + (rank,)), 0.0, atol=1e-5)
    np.testing.assert_allclose(grouped.var(inner + (rank,)), 1.0, atol=1e-3)


def test_normalize_layer_applies_learned_scale_and_shift():
    x = random(2, 10, 4)
    norm = nn.Normalize("instance")
    norm(x)
    norm.scale.assign([1.0, 2.0, 3.0, 4.0])
    norm.shift.assign([0.0, 1.0, 0.0, -1.0])
    y = norm(x).numpy()
    np.testing.assert_allclose(y.mean(1), np.tile([0.0, 1.0, 0.0, -1.0], (2, 1)), atol=1e-5)
    np.testing.assert_allclose(y.std(1), np.tile([1.0, 2.0, 3.0, 4.0], (2, 1)), atol=1e-3)
    with pytest.raises(ValueError, match="norm_type"):
        nn.Normalize("batch")


# ------------------------------------------------------------------------------ output splits
def test_split_to_dict_splits_in_order_and_checks_sizes():
    x = tf.reshape(tf.range(12, dtype=tf.float32), [1, 2, 6])
    parts = nn.split_to_dict(x, (("amps", 1), ("harmonic_distribution", 3), ("noise", 2)))
    assert list(parts) == ["amps", "harmonic_distribution", "noise"]
    np.testing.assert_array_equal(parts["amps"][0, :, 0], [0, 6])
    np.testing.assert_array_equal(parts["harmonic_distribution"][0, 1], [7, 8, 9])
    np.testing.assert_array_equal(parts["noise"][0, 0], [4, 5])
    with pytest.raises(ValueError, match="add up to 5"):
        nn.split_to_dict(x, (("amps", 1), ("noise", 4)))


class _Sum(nn.OutputSplitsLayer):
    def compute_output(self, *inputs):
        return tf.concat(inputs, axis=-1)


def test_output_splits_layer_takes_dicts_or_positional_tensors():
    layer = _Sum(input_keys=("a", "b"), output_splits=(("x", 2), ("y", 3)))
    a, b = random(2, 5, 1), random(2, 5)  # [batch, time] is taken as [batch, time, 1]
    outputs = layer({"a": a, "b": b, "unused": random(2, 5, 1)})
    assert {k: v.shape for k, v in outputs.items()} == {"x": (2, 5, 2), "y": (2, 5, 3)}
    positional = layer(a, b)
    np.testing.assert_allclose(positional["y"], outputs["y"])
    with pytest.raises(ValueError, match=r"'b' is missing.*\['a', 'c'\]"):
        layer({"a": a, "c": b})


# ------------------------------------------------------------------------------ checkpointing
LAYERS = {
    "Fc": (lambda: nn.Fc(4), (2, 5, 3)),
    "FcStack": (lambda: nn.FcStack(4, 2), (2, 5, 3)),
    "Rnn": (lambda: nn.Rnn(4), (2, 5, 3)),
    "Rnn_bidir_lstm": (lambda: nn.Rnn(4, "lstm", bidir=True), (2, 5, 3)),
    "RnnFc": (lambda: nn.RnnFc(4, 3), (2, 5, 3)),
    "Normalize": (lambda: nn.Normalize("group", n_groups=2), (2, 5, 4)),
    "DilatedConvStack": (lambda: nn.DilatedConvStack(4, 2, 2, norm_type="layer", resample_type="upsample",
                                                     resample_stride=2), (2, 5, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_restores_from_a_checkpoint(name, tmp_path):
    make, shape = LAYERS[name]
    x = random(*shape)
    saved, restored = make(), make()
    saved(x), restored(x)  # build (restoring into an unbuilt layer restores nothing)
    for weight in saved.weights:
        weight.assign(RNG.normal(scale=0.3, size=weight.shape).astype(np.float32))
    expected = saved(x)
    path = tf.train.Checkpoint(layer=saved).save(str(tmp_path / "ckpt"))
    assert np.abs(restored(x) - expected).max() > 1e-4
    tf.train.Checkpoint(layer=restored).restore(path).assert_consumed()
    np.testing.assert_allclose(restored(x), expected, atol=1e-6)


def test_residual_block_2d_keeps_time_halves_frequency_and_is_per_example():
    from ddsp_models.training.nn import ResidualBlock2D, ResNet2D

    x = tf.random.normal([2, 7, 16, 8], seed=1)
    same = ResidualBlock2D(ch=2)  # 4 * ch == 8 channels: identity shortcut
    y = same(x)
    assert y.shape == (2, 7, 16, 8) and same.shortcut is None
    # With the last conv zeroed the block is exactly its shortcut (the identity).
    same.conv_out.kernel.assign(tf.zeros_like(same.conv_out.kernel))
    np.testing.assert_allclose(same(x), x, atol=1e-6)
    strided = ResidualBlock2D(ch=4, freq_stride=2)
    assert strided(x).shape == (2, 7, 8, 16) and strided.shortcut is not None
    net = ResNet2D("tiny")
    out = net(x[..., :1])
    assert out.shape == (2, 7, 4, 32)  # stride 2 in the stem and in the second stage
    # Per-example normalisation: an example's output does not depend on the others.
    np.testing.assert_allclose(net(x[:1, ..., :1]), out[:1], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="size"):
        ResNet2D("huge")
