"""CREPE activations -> pitch: bin cents, Viterbi and local-average decoding.

Bin ``b`` of the 360 outputs is ``20 * b + CENTS_OFFSET`` cents above 10 Hz
(~32.7 Hz .. ~1975.5 Hz). A frame's pitch is the activation-weighted mean of the bin cents
over the chosen bin +- `LOCAL_AVERAGE_RADIUS` bins; the bin is the frame's argmax, or the
most likely path under CREPE's HMM (`viterbi_decode`). Confidence is the frame's maximum
activation.

Two Viterbi observation models (`VITERBI_OBSERVATIONS`):
  'argmax'       (default) the crepe package's, so the original DDSP's `compute_f0`: the HMM
                 observes only each frame's argmax bin, emitted by the state of that bin with
                 probability SELF_EMISSION + (1 - SELF_EMISSION) / 360 and by any other state
                 with (1 - SELF_EMISSION) / 360 (hmmlearn's CategoricalHMM; ties broken as it
                 does). Golden: tests/test_golden_crepe.py.
  'activations'  the whole activation vector, normalised per frame, is the observation
                 likelihood of each state (as torchcrepe), so a strong second peak also pulls
                 the path; this project's default before the golden comparison.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ddsp_models.crepe.network import N_PITCH_BINS

CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0, ~32.70 Hz.
LOCAL_AVERAGE_RADIUS = 4  # bins either side of the peak in the weighted average.
VITERBI_MAX_JUMP = 12  # CREPE's transition weight max(12 - |jump|, 0): jumps <= 11 bins.
VITERBI_OBSERVATIONS = ("argmax", "activations")
SELF_EMISSION = 0.1  # crepe's HMM: extra probability that a state emits its own bin.
_BIN_CENTS_64 = CENTS_PER_BIN * np.arange(N_PITCH_BINS) + CENTS_OFFSET
BIN_CENTS = _BIN_CENTS_64.astype(np.float32)


def cents_to_hz(cents):
    """Cents relative to 10 Hz -> Hz: ``10 * 2 ** (cents / 1200)``.

    A tensor stays a tensor (its dtype, differentiable); anything else becomes a float64
    numpy array.
    """
    if tf.is_tensor(cents):
        return 10.0 * tf.pow(tf.constant(2.0, cents.dtype), cents / 1200.0)
    return 10.0 * 2.0 ** (np.asarray(cents, np.float64) / 1200.0)


def _local_average_cents_np(activations: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Weighted mean of bin cents over center +- LOCAL_AVERAGE_RADIUS bins (numpy, float64
    sums as the crepe package)."""
    bins = np.arange(N_PITCH_BINS)
    mask = np.abs(bins - center[..., None]) <= LOCAL_AVERAGE_RADIUS
    weights = np.asarray(activations, np.float64) * mask
    total = weights.sum(-1)
    cents = (weights * _BIN_CENTS_64).sum(-1) / np.maximum(total, 1e-12)
    return np.where(total > 0, cents, _BIN_CENTS_64[center])



def _transition_log_band() -> np.ndarray:
    """log P(to j | from j + d) for d in [-K..K] as [2K+1, 360]; CREPE's matrix.

    Rows of CREPE's transition matrix are weights max(K - |i - j|, 0) normalised per
    source state i (so edge states keep total probability 1).
    """
    k = VITERBI_MAX_JUMP
    bins = np.arange(N_PITCH_BINS)
    offsets = np.arange(-k, k + 1)
    weight = np.maximum(k - np.abs(bins[:, None] - bins[None, :]), 0).astype(np.float64)
    transition = weight / weight.sum(axis=1, keepdims=True)  # [from, to]
    source = bins[None, :] + offsets[:, None]  # [2K+1, to]
    valid = (source >= 0) & (source < N_PITCH_BINS)
    band = np.where(valid, transition[np.clip(source, 0, N_PITCH_BINS - 1), bins[None, :]], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(band)  # -inf where impossible


_LOG_BAND = _transition_log_band()


def check_observations(observations) -> str:
    """`observations` when it is one of VITERBI_OBSERVATIONS, else ValueError."""
    if observations not in VITERBI_OBSERVATIONS:
        raise ValueError(f"viterbi_observations must be one of {VITERBI_OBSERVATIONS}, got {observations!r}.")
    return observations


def _log_observations(act: np.ndarray, observations: str) -> np.ndarray:
    """log P(frame | state) [batch, n_frames, 360] (float64) of one observation model."""
    n_bins = act.shape[-1]
    if observations == "activations":
        obs = act / np.maximum(act.sum(-1, keepdims=True), 1e-300)
        return np.log(np.maximum(obs, 1e-300))
    other = (1.0 - SELF_EMISSION) / n_bins
    emission = np.log(np.array([other, SELF_EMISSION + other]))  # [emits another bin, its own]
    observed = np.argmax(act, axis=-1)[..., None] == np.arange(n_bins)
    return emission[observed.astype(np.int64)]


def viterbi_decode(activations: np.ndarray, observations: str = "argmax") -> np.ndarray:
    """Most likely bin path under CREPE's HMM.

    The prior is uniform, the transitions favour small jumps (see `_transition_log_band`),
    the observation model is `observations` (see the module docstring: 'argmax', the crepe
    package's, or 'activations'). Log-domain Viterbi in float64, all 360 states (and all
    batch items) updated at once per frame over the banded transition matrix; among equally
    likely predecessors the highest bin wins, and the last frame takes the lowest of equally
    likely bins (hmmlearn's order).

    Args:
      activations: [n_frames, 360] or [batch, n_frames, 360].
      observations: 'argmax' or 'activations'.

    Returns:
      int64 bin path [n_frames] or [batch, n_frames].
    """
    check_observations(observations)
    act = np.asarray(activations, np.float64)
    squeeze = act.ndim == 2
    if squeeze:
        act = act[None]
    batch, n_frames, n_bins = act.shape
    if n_frames == 0:
        out = np.zeros((batch, 0), np.int64)
        return out[0] if squeeze else out
    log_obs = _log_observations(act, observations)
    k = VITERBI_MAX_JUMP
    # score[b, j] of the previous frame lives in padded[b, k + j] (-inf outside), so
    # windows[b, d, j] = padded[b, j + d] = score of source state j + d - k.
    padded = np.full((batch, n_bins + 2 * k), -np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_bins, axis=1)  # [b, 2k+1, 360]
    candidates = np.empty((batch, 2 * k + 1, n_bins))
    backpointers = np.empty((n_frames, batch, n_bins), np.uint8)  # best d in 0..2k
    score = padded[:, k:-k]
    score[:] = np.log(1.0 / n_bins) + log_obs[:, 0]  # uniform prior
    for t in range(1, n_frames):
        np.add(windows, _LOG_BAND, out=candidates)
        # The last maximum along d (the highest source bin), as hmmlearn's backtracking.
        backpointers[t] = 2 * k - np.argmax(candidates[:, ::-1], axis=1)
        np.max(candidates, axis=1, out=score)
        score += log_obs[:, t]
    path = np.empty((batch, n_frames), np.int64)
    path[:, -1] = np.argmax(score, axis=-1)
    rows = np.arange(batch)
    for t in range(n_frames - 1, 0, -1):
        path[:, t - 1] = path[:, t] + backpointers[t, rows, path[:, t]].astype(np.int64) - k
    return path[0] if squeeze else path


def activations_to_f0(activations: np.ndarray, viterbi: bool = True, viterbi_observations: str = "argmax"):
    """Pitch and confidence from CREPE activations (numpy).

    Args:
      activations: [..., n_frames, 360] network outputs in (0, 1).
      viterbi: decode the bin path with `viterbi_decode` (else per-frame argmax).
      viterbi_observations: the Viterbi observation model, 'argmax' (the crepe package's)
        or 'activations' (see the module docstring).

    Returns:
      f0_hz, f0_confidence: float32 [..., n_frames]; f0 is the activation-weighted mean
      pitch over the path bin +- 4 bins; confidence is the frame's maximum activation.
    """
    activations = np.asarray(activations, np.float32)
    check_observations(viterbi_observations)
    if viterbi:
        flat = activations.reshape((-1,) + activations.shape[-2:])
        path = viterbi_decode(flat, viterbi_observations).reshape(activations.shape[:-1])
    else:
        path = np.argmax(activations, axis=-1)
    cents = _local_average_cents_np(activations, path)
    f0_hz = cents_to_hz(cents).astype(np.float32)
    return f0_hz, activations.max(axis=-1).astype(np.float32)


def activations_to_f0_tf(activations):
    """Differentiable (w.r.t. activations) local weighted-average pitch, TF.

    Args:
      activations: float32 [..., 360].

    Returns:
      f0_hz, f0_confidence: float32 [...].
    """
    center = tf.argmax(activations, axis=-1, output_type=tf.int32)
    bins = tf.range(N_PITCH_BINS, dtype=tf.int32)
    mask = tf.cast(tf.abs(bins - center[..., None]) <= LOCAL_AVERAGE_RADIUS, activations.dtype)
    weights = activations * mask
    cents = tf.reduce_sum(weights * BIN_CENTS, -1) / tf.maximum(tf.reduce_sum(weights, -1), 1e-12)
    return cents_to_hz(cents), tf.reduce_max(activations, axis=-1)
