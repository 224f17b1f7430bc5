"""Training precision: float32, or bfloat16 mixed precision.

Under ``'mixed_bfloat16'`` the network layers made inside `precision_scope` keep float32
variables but compute in bfloat16 (Intel AMX / AVX-512-BF16 and GPU tensor cores run those
matrix products several times faster). Three parts stay float32, because bfloat16's 8-bit
mantissa is too coarse for them (440 Hz is resolved to 2 Hz, a phase over 64000 samples to
whole cycles):

- the recurrent layers (`nn.Rnn`): the fast GRU loop is float32, and a 1000-step recurrence
  accumulates round-off;
- every decoder / encoder output (`nn.OutputSplitsLayer` casts its splits back), so the
  synthesizers, effects and losses see float32 controls;
- the synthesizers, effects and losses themselves (`processors.Processor` does not autocast
  and computes in float32).

Variables are float32 under both precisions, so checkpoints move freely between them:
a run trained in bfloat16 is evaluated, exported and resumed in float32. (Keras is imported
inside the functions: `params` reads `PRECISIONS` without loading TensorFlow.)
"""
import contextlib

PRECISIONS = ("float32", "mixed_bfloat16")


def check_precision(precision: str) -> str:
    """`precision` if it is one of `PRECISIONS`, else ValueError naming it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
    return precision


@contextlib.contextmanager
def precision_scope(precision: str = "float32"):
    """Layers constructed inside take `precision` as their dtype policy; the previous global
    policy is restored on exit."""
    import keras

    check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def is_mixed(policy=None) -> bool:
    """True when `policy` (default: the global one) computes in a dtype other than its
    variables' (a mixed-precision policy)."""
    import keras

    policy = keras.config.dtype_policy() if policy is None else policy
    return policy.compute_dtype != policy.variable_dtype
