"""Reproducible random draws inside models: noise that a resumed run draws again.

The synths and effects that need randomness (filtered noise, noise impulse responses,
reparameterised latents) draw it through `uniform` / `normal` here. Outside a
`seed_scope` they draw fresh values each call (``tf.random``), as before. Inside one, each
draw is *stateless*: a function of the scope's seed (e.g. ``[train seed, global step]``,
set by the `Trainer` for every step) and of the draw's position in the traced call, so a
training step draws the same noise whether the run went on uninterrupted or was killed
and resumed from a checkpoint.
"""
import contextlib
import threading

import tensorflow as tf

_state = threading.local()


@contextlib.contextmanager
def seed_scope(seed):
    """Makes the draws traced inside this block stateless functions of `seed`.

    Args:
      seed: int64/int32 tensor or list of shape ``[2]`` (e.g. ``[seed, step]``).
    """
    previous = getattr(_state, "scope", None)
    _state.scope = {"seed": tf.cast(tf.convert_to_tensor(seed), tf.int64), "count": 0}
    try:
        yield
    finally:
        _state.scope = previous


def _next_seed():
    """The seed of the next draw in the current scope (None outside a scope)."""
    scope = getattr(_state, "scope", None)
    if scope is None:
        return None
    scope["count"] += 1
    return tf.random.experimental.stateless_fold_in(scope["seed"], scope["count"])


def uniform(shape, minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
    """float32 uniform values in ``[minval, maxval)`` of `shape` (see the module docs)."""
    seed = _next_seed()
    if seed is None:
        return tf.random.uniform(shape, minval=minval, maxval=maxval)
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def normal(shape) -> tf.Tensor:
    """float32 standard normal values of `shape` (see the module docs)."""
    seed = _next_seed()
    if seed is None:
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed=seed)
