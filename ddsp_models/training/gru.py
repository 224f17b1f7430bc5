"""The fast CPU GRU and its XLA-compiled recurrence; GRU states carried across calls.

`FastGRU` is `keras.layers.GRU` (same weights, config and maths: reset_after=True, gates z,
r, h) whose time loop is rebuilt for the CPU. The input projection x @ W for all time steps
is one large matmul outside the loop; the loop only computes h @ U and the gates; it has a
hand-written gradient (a reverse-time loop with one matmul per step; dU is one large matmul
after it); and each direction's loop is one XLA-compiled function (`recurrence='xla_loop'`,
compiled once per input shape). See `benchmarks/rnn.py` for timings.

`RnnStates` / `carry_rnn_states` let `nn.Rnn` layers continue from the GRU state of their
previous call (chunked inference, streaming export).

Shapes: sequences `[batch, time, channels]` (the recurrence itself is time major), float32.
"""
import contextlib
import contextvars

import keras
import tensorflow as tf

from ddsp_models import core


def _gru_step(x_t, h, recurrent_kernel, recurrent_bias_h):
    """One GRU step (Keras reset_after maths) from a precomputed input projection.

    Args:
      x_t: `[batch, 3 * units]` = x_t @ W + b_in, where the z and r parts of the recurrent
        bias are already added.
      h: `[batch, units]` previous state.
      recurrent_kernel: `[units, 3 * units]` U (gate order z, r, h).
      recurrent_bias_h: `[units]` recurrent bias of the candidate (inside the reset gate).

    Returns:
      (new state `[batch, units]`, saved `[batch, 5 * units]` = [h, z, r, U_h h + b_h, hh]).
    """
    units = h.shape[-1]
    recurrent = tf.matmul(h, recurrent_kernel)
    zr = tf.sigmoid(x_t[:, :2 * units] + recurrent[:, :2 * units])
    recurrent_h = recurrent[:, 2 * units:] + recurrent_bias_h
    candidate = tf.tanh(x_t[:, 2 * units:] + zr[:, units:] * recurrent_h)
    new_h = candidate + zr[:, :units] * (h - candidate)  # z h + (1 - z) hh
    return new_h, tf.concat([h, zr, recurrent_h, candidate], axis=-1)


def _gru_step_grad(dh_out, dh_next, saved, recurrent_kernel_t):
    """Backward of `_gru_step`.

    Args:
      dh_out: `[batch, units]` gradient of the loss w.r.t. this step's output.
      dh_next: `[batch, units]` gradient flowing back from the next step's state.
      saved: `[batch, 5 * units]` from `_gru_step`.
      recurrent_kernel_t: `[3 * units, units]` U transposed.

    Returns:
      (gradient w.r.t. the previous state `[batch, units]`,
       `[batch, 4 * units]` = [d(recurrent pre-activations) (3 units), d(candidate input)]).
    """
    units = dh_out.shape[-1]
    h_prev = saved[:, :units]
    zr = saved[:, units:3 * units]
    z, r = zr[:, :units], zr[:, units:]
    recurrent_h = saved[:, 3 * units:4 * units]
    candidate = saved[:, 4 * units:]
    dh = dh_out + dh_next
    d_candidate = dh * (1.0 - z) * (1.0 - candidate * candidate)  # through tanh
    d_zr = tf.concat([dh * (h_prev - candidate), d_candidate * recurrent_h], -1) * zr * (1.0 - zr)
    d_recurrent = tf.concat([d_zr, d_candidate * r], axis=-1)
    dh_prev = dh * z + tf.matmul(d_recurrent, recurrent_kernel_t)
    return dh_prev, tf.concat([d_recurrent, d_candidate], axis=-1)


_gru_step_xla = tf.function(_gru_step, jit_compile=True, autograph=False)
_gru_step_grad_xla = tf.function(_gru_step_grad, jit_compile=True, autograph=False)
GRU_RECURRENCES = ("xla_loop", "xla_step", "graph")


def _n_steps(x):
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def _gru_forward_loop(projected, h0, recurrent_kernel, recurrent_bias_h, step):
    n_steps = _n_steps(projected)
    inputs = tf.TensorArray(tf.float32, size=n_steps).unstack(projected)
    saved = tf.TensorArray(tf.float32, size=n_steps)

    def body(t, h, saved):
        h, saved_t = step(inputs.read(t), h, recurrent_kernel, recurrent_bias_h)
        return t + 1, h, saved.write(t, saved_t)

    _, h_last, saved = tf.while_loop(lambda t, *_: t < n_steps, body, (0, h0, saved),
                                     maximum_iterations=n_steps)
    return h_last, saved.stack()


def _gru_backward_loop(d_outputs, saved, recurrent_kernel, step_grad):
    n_steps = _n_steps(d_outputs)
    recurrent_kernel_t = tf.transpose(recurrent_kernel)
    d_outputs_ta = tf.TensorArray(tf.float32, size=n_steps).unstack(d_outputs)
    saved_ta = tf.TensorArray(tf.float32, size=n_steps).unstack(saved)
    grads = tf.TensorArray(tf.float32, size=n_steps)

    def body(t, dh_next, grads):
        dh_prev, grads_t = step_grad(d_outputs_ta.read(t), dh_next, saved_ta.read(t),
                                     recurrent_kernel_t)
        return t - 1, dh_prev, grads.write(t, grads_t)

    _, dh0, grads = tf.while_loop(lambda t, *_: t >= 0, body,
                                  (n_steps - 1, tf.zeros_like(d_outputs[0]), grads),
                                  maximum_iterations=n_steps)
    return dh0, grads.stack()


def _make_loops(recurrence: str):
    """(forward, backward) tf.functions of the loops for a `recurrence` mode."""
    if recurrence not in GRU_RECURRENCES:
        raise ValueError(f"`recurrence` must be one of {GRU_RECURRENCES}, got {recurrence!r}.")
    xla_step = recurrence == "xla_step"
    step, step_grad = ((_gru_step_xla, _gru_step_grad_xla) if xla_step
                       else (_gru_step, _gru_step_grad))

    def forward(projected, h0, recurrent_kernel, recurrent_bias_h):
        return _gru_forward_loop(projected, h0, recurrent_kernel, recurrent_bias_h, step)

    def backward(d_outputs, saved, recurrent_kernel):
        return _gru_backward_loop(d_outputs, saved, recurrent_kernel, step_grad)

    jit = recurrence == "xla_loop"
    return (tf.function(forward, jit_compile=jit, autograph=False),
            tf.function(backward, jit_compile=jit, autograph=False))


_LOOPS = {}


def gru_recurrence(projected, h0, recurrent_kernel, recurrent_bias_h, recurrence: str = "xla_loop"):
    """The GRU's time loop over precomputed input projections, with a hand-written gradient.

    Keras GRU maths (reset_after=True, gate order z, r, h):
      z = sigmoid(xz + h U_z + bz), r = sigmoid(xr + h U_r + br),
      hh = tanh(xh + r * (h U_h + b_h)), h' = z h + (1 - z) hh,
    where [xz, xr, xh] = `projected` already holds x W + b_input + [bz, br, 0].

    Args:
      projected: `[time, batch, 3 * units]`, time major.
      h0: `[batch, units]` initial state.
      recurrent_kernel: `[units, 3 * units]` U.
      recurrent_bias_h: `[units]` the candidate's recurrent bias.
      recurrence: 'xla_loop' (each direction's whole loop XLA-compiled, the fastest here),
        'xla_step' (each step XLA-compiled, the loop in the TF graph) or 'graph' (plain TF
        ops, no XLA).

    Returns:
      States `[time, batch, units]`. Gradients flow to all four inputs; the backward pass is a
      reverse-time loop with one `[batch, 3u] x [3u, u]` matmul per step, and dU is a single
      `[u, time * batch] x [time * batch, 3u]` matmul after it.
    """
    if recurrence not in _LOOPS:
        _LOOPS[recurrence] = _make_loops(recurrence)
    forward_loop, backward_loop = _LOOPS[recurrence]

    @tf.custom_gradient
    def recurrence_fn(projected, h0, recurrent_kernel, recurrent_bias_h):
        # The loop's own ops need no gradient tape: the gradient below replaces them.
        args = [tf.stop_gradient(a) for a in (projected, h0, recurrent_kernel, recurrent_bias_h)]
        h_last, saved = forward_loop(*args)
        units = args[2].shape[0]
        states = tf.concat([saved[1:, :, :units], h_last[tf.newaxis]], axis=0)

        def grad(d_states):
            dh0, grads = backward_loop(d_states, saved, args[2])
            d_recurrent = grads[..., :3 * units]
            d_projected = tf.concat([grads[..., :2 * units], grads[..., 3 * units:]], axis=-1)
            previous_states = tf.reshape(saved[..., :units], [-1, units])
            d_kernel = tf.matmul(previous_states, tf.reshape(d_recurrent, [-1, 3 * units]),
                                 transpose_a=True)
            d_bias_h = tf.reduce_sum(d_recurrent[..., 2 * units:], axis=[0, 1])
            return d_projected, dh0, d_kernel, d_bias_h

        return states, grad

    return recurrence_fn(projected, h0, recurrent_kernel, recurrent_bias_h)


@keras.saving.register_keras_serializable(package="ddsp_models")
class FastGRU(keras.layers.GRU):
    """`keras.layers.GRU` with a faster CPU time loop (`gru_recurrence`).

    Same constructor, weights (`cell.kernel` `[in, 3u]`, `cell.recurrent_kernel` `[u, 3u]`,
    `cell.bias` `[2, 3u]`), checkpoint layout and outputs as the Keras GRU, so weights move
    freely between the two. The fast loop is used for the standard configuration (tanh /
    sigmoid, use_bias, reset_after, no mask, no recurrent dropout, float32, not unrolled) when
    no GPU is visible; otherwise the Keras implementation runs (cuDNN on a GPU).

    Args:
      recurrence: see `gru_recurrence`.
      **kwargs: `keras.layers.GRU` arguments.
    """

    def __init__(self, units, recurrence: str = "xla_loop", **kwargs):
        if recurrence not in GRU_RECURRENCES:
            raise ValueError(f"FastGRU `recurrence` must be one of {GRU_RECURRENCES}, got "
                             f"{recurrence!r}.")
        super().__init__(units, **kwargs)
        self.recurrence = recurrence

    def get_config(self):
        return {**super().get_config(), "recurrence": self.recurrence}

    def _uses_fast_loop(self, mask) -> bool:
        cell = self.cell
        return (mask is None and not self.unroll and cell.use_bias and cell.reset_after
                and cell.recurrent_dropout == 0
                and cell.activation in (keras.activations.tanh, tf.tanh, keras.ops.tanh)
                and cell.recurrent_activation in (keras.activations.sigmoid, tf.sigmoid,
                                                  keras.ops.sigmoid)
                and self.compute_dtype == "float32"
                and not tf.config.list_logical_devices("GPU"))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._uses_fast_loop(mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        cell, units = self.cell, self.units
        if training and 0.0 < cell.dropout < 1.0:
            sequences = sequences * cell.get_dropout_mask(sequences[:, 0, :])[:, tf.newaxis, :]
        if self.go_backwards:
            sequences = tf.reverse(sequences, axis=[1])
        bias = tf.convert_to_tensor(cell.bias)
        # z and r recurrent biases sit outside the reset gate: fold them into the input bias.
        input_bias = bias[0] + tf.concat([bias[1, :2 * units], tf.zeros([units])], axis=0)
        time_major = tf.transpose(sequences, [1, 0, 2])
        projected = (tf.einsum("tbi,ij->tbj", time_major, tf.convert_to_tensor(cell.kernel))
                     + input_bias)
        states = gru_recurrence(projected, tf.convert_to_tensor(h0),
                                tf.convert_to_tensor(cell.recurrent_kernel),
                                bias[1, 2 * units:], self.recurrence)
        last = states[-1]
        outputs = tf.transpose(states, [1, 0, 2]) if self.return_sequences else last[:, tf.newaxis]
        return last, outputs, [last]


class RnnStates:
    """GRU states carried from one call to the next (streaming / chunked inference).

    Inside ``with carry_rnn_states(states):`` every unidirectional GRU `nn.Rnn` starts from the
    state it ended with in the previous call under the same `RnnStates` (zeros the first
    time), so running a model over consecutive chunks of frames gives the outputs of one
    call over all frames. ``states.values`` maps each Rnn's name path to its state
    `[batch, units]`; set them to restore a stream. `mode` chooses the time loop:
    'layer' (the layer's own fast loop, from the carried state), 'steps' (the GRU cell
    applied frame by frame with plain TF ops, unrolled: what the TFLite converter handles
    for a fixed, small number of frames) or 'scan' (`tf.scan` over the cell: any number of
    frames, e.g. in a SavedModel signature with an unknown length).
    """

    MODES = ("layer", "steps", "scan")

    def __init__(self, values: dict | None = None, mode: str = "layer"):
        if mode not in self.MODES:
            raise ValueError(f"RnnStates mode must be one of {self.MODES}, got {mode!r}")
        self.values = dict(values or {})
        self.mode = mode

    def run(self, layer: keras.layers.Layer, x, training=None):
        """`layer` (an `nn.Rnn`) over `x` `[batch, time, in]`, from and updating its state."""
        if layer.bidir or layer.rnn_type != "gru":
            raise ValueError(f"{layer.name}: only unidirectional GRUs can carry their state "
                             f"across calls (this is a {'bidirectional ' if layer.bidir else ''}"
                             f"{layer.rnn_type})")
        rnn = layer.rnn
        if not rnn.return_sequences:
            raise ValueError(f"{layer.name}: carrying state needs return_sequences=True")
        x = core.tf_float32(x, "x")
        key = layer.name
        state = self.values.get(key)
        if state is None:
            state = tf.zeros([tf.shape(x)[0], layer.dims], tf.float32)
        if not rnn.built:
            rnn.build(tuple(x.shape))
        if self.mode == "steps":
            cell, h, outputs = rnn.cell, state, []
            for t in range(x.shape[1]):
                h = _cell_step(cell, x[:, t, :], h)
                outputs.append(h)
            sequence = tf.stack(outputs, axis=1)
        elif self.mode == "scan":
            cell = rnn.cell
            states = tf.scan(lambda h, x_t: _cell_step(cell, x_t, h),
                             tf.transpose(x, [1, 0, 2]), initializer=state)
            sequence = tf.transpose(states, [1, 0, 2])
        else:
            sequence = rnn(x, initial_state=[state], training=training)
        self.values[key] = sequence[:, -1, :]
        return sequence


def _cell_step(cell, x_t, h):
    """One GRU cell step `[batch, in]`, `[batch, units]` -> new state `[batch, units]`."""
    out, _ = cell(x_t, [h], training=False)
    return out[0] if isinstance(out, (list, tuple)) else out


_RNN_CARRY = contextvars.ContextVar("ddsp_models_rnn_carry", default=None)


def active_rnn_states() -> "RnnStates | None":
    """The `RnnStates` of the innermost `carry_rnn_states` block (None outside one)."""
    return _RNN_CARRY.get()


@contextlib.contextmanager
def carry_rnn_states(states: RnnStates):
    """Within the block, `nn.Rnn` layers continue from (and update) ``states`` (see `RnnStates`)."""
    token = _RNN_CARRY.set(states)
    try:
        yield states
    finally:
        _RNN_CARRY.reset(token)
