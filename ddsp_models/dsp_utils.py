"""DSP basics: input checks, nested-dict helpers, safe maths, unit conversions, scalings.

Part of `ddsp_models.core` (which re-exports every public name here); import from core.
Conventions: float32 tensors, batch first. Defaults and argument order follow the original
DDSP 3.7.0 `ddsp.core` (tests/test_golden_dsp.py compares against recorded outputs).
"""
import copy
import math
from collections import abc
from typing import Any, Dict, Sequence, TypeVar

import numpy as np
import tensorflow as tf

from ddsp_models.checks import positive_float
from ddsp_models.gin_utils import register

__all__ = [
    "Number", "DB_RANGE", "LD_RANGE", "MIDI_MAX", "TWO_PI", "tf_float32", "ensure_rank", "ensure_3d",
    "ensure_audio", "make_iterable", "to_dict", "copy_if_tf_function", "nested_keys", "nested_lookup",
    "leaf_key", "map_shape", "pad_axis", "diff", "nan_to_num", "safe_divide", "safe_log", "logb",
    "log10", "log_scale", "soft_limit", "gradient_reversal", "amplitude_to_db", "power_to_db",
    "db_to_amplitude", "db_to_power", "midi_to_hz", "hz_to_midi", "unit_to_midi", "midi_to_unit",
    "unit_to_hz", "hz_to_unit", "hz_to_bark", "bark_to_hz", "hz_to_mel", "mel_to_hz", "hz_to_erb",
    "exp_sigmoid", "sym_exp_sigmoid", "frequencies_softmax", "frequencies_sigmoid",
    "frequencies_critical_bands",
]

Number = TypeVar("Number", int, float, np.ndarray, tf.Tensor)
DB_RANGE = 80.0  # dB: default dynamic range of amplitude_to_db / power_to_db / loudness.
LD_RANGE = 120.0  # dB: a wider loudness range, for callers that want quieter frames kept.
MIDI_MAX = 127.0
TWO_PI = 2.0 * math.pi


# ----------------------------------------------------------------------------- checks
def tf_float32(x, name: str = "input") -> tf.Tensor:
    """Converts numbers, numpy arrays or tensors to a float32 tensor.

    Raises:
      TypeError: naming `name`, when `x` holds strings, booleans or complex numbers.
    """
    if isinstance(x, (tf.Tensor, tf.Variable)):
        dtype = x.dtype
        if dtype == tf.float32:
            return x
        if dtype.is_floating or dtype.is_integer:
            return tf.cast(x, tf.float32)
        raise TypeError(f"`{name}` must be a real-valued numeric tensor, got dtype {dtype.name}.")
    array = np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be real-valued numbers, got numpy dtype {array.dtype}.")
    return tf.convert_to_tensor(array.astype(np.float32))


def ensure_rank(x: tf.Tensor, ranks, name: str = "input") -> None:
    """Raises ValueError naming `name` when the static rank of `x` is not in `ranks`."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    rank = x.shape.rank
    if rank is not None and rank not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(f"`{name}` must have rank {expected}, got shape {x.shape.as_list()}.")


def ensure_3d(x, name: str = "input") -> tf.Tensor:
    """Float32 tensor `[batch, n, channels]` from `[n]`, `[batch, n]` or `[batch, n, channels]`."""
    x = tf_float32(x, name)
    ensure_rank(x, (1, 2, 3), name)
    if x.shape.rank == 1:
        x = x[tf.newaxis, :, tf.newaxis]
    elif x.shape.rank == 2:
        x = x[:, :, tf.newaxis]
    return x


def ensure_audio(audio, name: str = "audio") -> tf.Tensor:
    """Float32 audio `[batch, n_samples]` from `[n_samples]` or `[batch, n_samples]`.

    A trailing channel axis of size 1 (`[batch, n_samples, 1]`) is squeezed.
    """
    audio = tf_float32(audio, name)
    if audio.shape.rank == 3 and audio.shape[-1] not in (1, None):
        raise ValueError(
            f"`{name}` must be mono audio [batch, n_samples] (or [batch, n_samples, 1]); got shape "
            f"{audio.shape.as_list()} with {audio.shape[-1]} channels. Mix down or split channels first.")
    if audio.shape.rank == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    ensure_rank(audio, (1, 2), name)
    if audio.shape.rank == 1:
        audio = audio[tf.newaxis, :]
    return audio


# ----------------------------------------------------------------- containers, tensors
def make_iterable(x) -> list:
    """[] for None, [x] for an array/tensor (never iterate over its batch), x if iterable, else [x]."""
    if x is None:
        return []
    if isinstance(x, (np.ndarray, tf.Tensor)):
        return [x]
    return x if isinstance(x, abc.Iterable) else [x]


def to_dict(x, keys) -> dict:
    """A dict unchanged; otherwise {keys[i]: x[i]} (a single tensor counts as one value).

    Raises:
      ValueError: when the number of `keys` differs from the number of values.
    """
    if isinstance(x, dict):
        return x
    values = make_iterable(x)
    keys = list(keys or [])
    if len(keys) != len(values):
        raise ValueError(f"to_dict: {len(keys)} `keys` {keys} for {len(values)} values.")
    return dict(zip(keys, values))


def copy_if_tf_function(x):
    """A shallow copy of x while tracing a tf.function (guards the caller's input), else x."""
    return x if tf.executing_eagerly() else copy.copy(x)


def nested_keys(nested_dict: Dict[str, Any], delimiter: str = "/", prefix: str = "") -> Sequence[str]:
    """Every leaf key path of a nested dict, e.g. ['a/b', 'a/c', 'd']."""
    keys = []
    for key, value in nested_dict.items():
        path = f"{prefix}{delimiter}{key}" if prefix else key
        if isinstance(value, dict):
            keys += nested_keys(value, delimiter, path)
        else:
            keys.append(path)
    return keys


def nested_lookup(nested_key: str, nested_dict: Dict[str, Any], delimiter: str = "/"):
    """nested_dict['a']['b'] for nested_key 'a/b'.

    Raises:
      KeyError: naming the missing part, the whole key and the available leaf keys.
    """
    value = nested_dict
    for key in nested_key.split(delimiter):
        try:
            value = value[key]
        except (KeyError, TypeError):
            raise KeyError(f"Key '{key}' of nested key '{nested_key}' not found; available keys: "
                           f"{nested_keys(nested_dict, delimiter)}") from None
    return value


def leaf_key(nested_key: str, delimiter: str = "/") -> str:
    """The last part of a nested key: 'a/b/c' -> 'c'."""
    return nested_key.split(delimiter)[-1]


def map_shape(x: Dict[str, tf.Tensor]) -> Dict[str, Sequence[int]]:
    """The same (nested) structure with each tensor replaced by its shape as a list (eager)."""
    return tf.nest.map_structure(lambda t: list(tf.shape(t).numpy()), x)


def pad_axis(x, padding=(0, 0), axis: int = 0, **pad_kwargs) -> tf.Tensor:
    """tf.pad along one axis only: `padding` = (before, after) samples; kwargs go to tf.pad."""
    rank = len(x.shape)
    axis = axis % rank if axis < 0 else axis
    paddings = [[0, 0]] * axis + [list(padding)] + [[0, 0]] * max(rank - axis - 1, 0)
    return tf.pad(x, paddings, **pad_kwargs)


def diff(x, axis: int = -1) -> tf.Tensor:
    """Finite difference x[i + 1] - x[i] along `axis`; that axis becomes one shorter.

    Raises:
      ValueError: when `axis` is out of range for x.
    """
    x = tf_float32(x, "x")
    rank = x.shape.rank
    if axis >= rank or axis < -rank:
        raise ValueError(f"diff: `axis` {axis} is out of range for a tensor of rank {rank}.")
    n = x.shape[axis]
    front = tf.gather(x, tf.range(1, n), axis=axis)
    back = tf.gather(x, tf.range(0, n - 1), axis=axis)
    return front - back


# ---------------------------------------------------------------------------- maths
def nan_to_num(x, value: float = 0.0) -> tf.Tensor:
    """NaNs replaced by `value`."""
    x = tf_float32(x, "x")
    return tf.where(tf.math.is_nan(x), value * tf.ones_like(x), x)


def safe_divide(numerator, denominator, eps: float = 1e-7) -> tf.Tensor:
    """numerator / denominator, with exact-zero denominators replaced by `eps`."""
    denominator = tf_float32(denominator, "denominator")
    return tf_float32(numerator, "numerator") / tf.where(tf.equal(denominator, 0.0), eps, denominator)


def safe_log(x, eps: float = 1e-5) -> tf.Tensor:
    """Natural log, with non-positive inputs replaced by `eps` (positive inputs are kept,
    however small)."""
    x = tf_float32(x, "x")
    return tf.math.log(tf.where(x <= 0.0, eps, x))


def logb(x, base: float = 2.0, eps: float = 1e-5) -> tf.Tensor:
    """Logarithm to `base`: safe_log(x) / safe_log(base)."""
    return safe_divide(safe_log(x, eps), safe_log(base, eps), eps)


def log10(x, eps: float = 1e-5) -> tf.Tensor:
    """Base-10 logarithm (see logb)."""
    return logb(x, base=10.0, eps=eps)


def log_scale(x, min_x, max_x) -> tf.Tensor:
    """[-1, 1] -> [min_x, max_x] on a log scale: exp((1 - u) ln min_x + u ln max_x), u = (x + 1) / 2."""
    unit = (tf_float32(x, "x") + 1.0) / 2.0
    return tf.exp((1.0 - unit) * tf.math.log(tf_float32(min_x, "min_x"))
                  + unit * tf.math.log(tf_float32(max_x, "max_x")))


def soft_limit(x, x_min: float = 0.0, x_max: float = 1.0) -> tf.Tensor:
    """Smooth clip to [x_min, x_max]: softplus(x) + x_min - softplus(x - (x_max - x_min))."""
    x = tf_float32(x, "x")
    return tf.nn.softplus(x) + x_min - tf.nn.softplus(x - (x_max - x_min))


def gradient_reversal(x) -> tf.Tensor:
    """Identity forward; the gradient is negated."""
    x = tf_float32(x, "x")
    return tf.stop_gradient(2.0 * x) - x


# ------------------------------------------------------------------ unit conversions
def amplitude_to_db(amplitude, ref_db: float = 0.0, range_db: float = DB_RANGE, use_tf: bool = True):
    """Linear amplitude -> dB: power_to_db(amplitude ** 2, ref_db, range_db, use_tf)."""
    if use_tf:
        amplitude = tf_float32(amplitude, "amplitude")
    return power_to_db(amplitude ** 2.0, ref_db=ref_db, range_db=range_db, use_tf=use_tf)


def power_to_db(power, ref_db: float = 0.0, range_db: float = DB_RANGE, use_tf: bool = True):
    """Power -> dB: 10 log10(max(power, 10^(-range_db / 10))) - ref_db, floored at -range_db.

    Args:
      power: linear power (e.g. |X|^2), any shape.
      ref_db: dB subtracted (the level that maps to 0 dB).
      range_db: dynamic range; the output is at least -range_db.
      use_tf: TF (differentiable, tf.function) or numpy.
    """
    range_db = positive_float("power_to_db: `range_db` (dB)", range_db)
    power_floor = 10.0 ** (-range_db / 10.0)
    if use_tf:
        db = 10.0 * log10(tf.maximum(power_floor, tf_float32(power, "power")))
        return tf.maximum(db - ref_db, -range_db)
    db = 10.0 * np.log10(np.maximum(power_floor, power))
    return np.maximum(db - ref_db, -range_db)


def db_to_amplitude(db) -> tf.Tensor:
    """dB -> linear amplitude, 10^(dB / 20)."""
    return db_to_power(tf_float32(db, "db") / 2.0)


def db_to_power(db) -> tf.Tensor:
    """dB -> power, 10^(dB / 10)."""
    return 10.0 ** (tf_float32(db, "db") / 10.0)


def midi_to_hz(notes, midi_zero_silence: bool = False) -> tf.Tensor:
    """MIDI note number (69 = A4 = 440 Hz) -> Hz. With `midi_zero_silence`, note 0 -> 0 Hz."""
    notes = tf_float32(notes, "notes")
    hz = 440.0 * (2.0 ** ((notes - 69.0) / 12.0))
    if midi_zero_silence:
        hz = tf.where(tf.equal(notes, 0.0), 0.0, hz)
    return hz


def hz_to_midi(frequencies) -> tf.Tensor:
    """Hz -> MIDI note number; 0 Hz (and below) maps to MIDI 0 rather than -inf."""
    frequencies = tf_float32(frequencies, "frequencies")
    notes = 12.0 * (logb(frequencies, 2.0) - logb(440.0, 2.0)) + 69.0
    return tf.where(tf.less_equal(frequencies, 0.0), 0.0, notes)


def unit_to_midi(unit, midi_min=20.0, midi_max=90.0, clip: bool = False) -> tf.Tensor:
    """[0, 1] -> MIDI [midi_min, midi_max] (clip: clip the unit value to [0, 1] first)."""
    unit = tf_float32(unit, "unit")
    unit = tf.clip_by_value(unit, 0.0, 1.0) if clip else unit
    return midi_min + (midi_max - midi_min) * unit


def midi_to_unit(midi, midi_min=20.0, midi_max=90.0, clip: bool = False) -> tf.Tensor:
    """MIDI [midi_min, midi_max] -> [0, 1] (clip: clip the result to [0, 1])."""
    unit = (tf_float32(midi, "midi") - midi_min) / (midi_max - midi_min)
    return tf.clip_by_value(unit, 0.0, 1.0) if clip else unit


def unit_to_hz(unit, hz_min, hz_max, clip: bool = False) -> tf.Tensor:
    """[0, 1] -> Hz, linear in MIDI (log frequency) between hz_min and hz_max."""
    return midi_to_hz(unit_to_midi(unit, hz_to_midi(hz_min), hz_to_midi(hz_max), clip=clip))


def hz_to_unit(hz, hz_min, hz_max, clip: bool = False) -> tf.Tensor:
    """Hz -> [0, 1], linear in MIDI between hz_min and hz_max."""
    return midi_to_unit(hz_to_midi(hz), hz_to_midi(hz_min), hz_to_midi(hz_max), clip=clip)


def hz_to_bark(hz):
    """Hz -> Bark, Traunmueller (1990): 26.81 / (1 + 1960 / f) - 0.53."""
    return 26.81 / (1.0 + (1960.0 / hz)) - 0.53


def bark_to_hz(bark):
    """Bark -> Hz (inverse of hz_to_bark)."""
    return 1960.0 / (26.81 / (bark + 0.53) - 1.0)


def hz_to_mel(hz):
    """Hz -> mel (HTK): 2595 log10(1 + f / 700)."""
    return 2595.0 * logb(1.0 + hz / 700.0, 10.0)


def mel_to_hz(mel):
    """mel (HTK) -> Hz: 700 (10^(mel / 2595) - 1)."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def hz_to_erb(hz):
    """Equivalent rectangular bandwidth (Hz) at frequency hz, Moore & Glasberg: 0.108 f + 24.7."""
    return 0.108 * hz + 24.7


# -------------------------------------------------------------------------- scalings
@register("core")
def exp_sigmoid(x, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> tf.Tensor:
    """Positive squashing for amplitudes: max_value * sigmoid(x) ** ln(exponent) + threshold.

    Output in [threshold, max_value + threshold]; away from saturation it changes by about a
    factor `exponent` per unit of x.
    """
    x = tf_float32(x, "x")
    return max_value * tf.nn.sigmoid(x) ** tf.math.log(float(exponent)) + threshold


@register("core")
def sym_exp_sigmoid(x, width: float = 8.0) -> tf.Tensor:
    """exp_sigmoid of width * (|x| / 2 - 1): symmetric in x, peaking at |x| = large."""
    x = tf_float32(x, "x")
    return exp_sigmoid(width * (tf.abs(x) / 2.0 - 1.0))


def _add_depth_axis(freqs: tf.Tensor, depth: int, name: str = "freqs") -> tf.Tensor:
    """`[batch, time, n * depth]` -> `[batch, time, n, depth]`: sinusoid i owns the `depth`
    consecutive channels i * depth ... i * depth + depth - 1."""
    n_channels = freqs.shape[-1]
    depth = int(depth)
    if depth < 1 or n_channels is None or n_channels % depth:
        raise ValueError(f"`{name}` last axis ({n_channels}) must be a multiple of `depth` ({depth}).")
    shape = tf.shape(freqs)
    return tf.reshape(freqs, [shape[0], shape[1], n_channels // depth, depth])


def _frequency_logits(freqs, depth: int):
    """(logits `[batch, time, n_sinusoids, depth]`, depth) from rank 3 or 4 inputs."""
    freqs = tf_float32(freqs, "freqs")
    ensure_rank(freqs, (3, 4), "freqs")
    if freqs.shape.rank == 3:
        return _add_depth_axis(freqs, depth), int(depth)
    return freqs, int(freqs.shape[-1])


@register("core")
def frequencies_softmax(freqs, depth: int = 1, hz_min: float = 20.0, hz_max: float = 8000.0) -> tf.Tensor:
    """Network outputs -> frequencies (Hz): a softmax over `depth` log-spaced bins per sinusoid.

    The position in [0, 1] is the softmax-weighted mean of depth bins evenly spaced from 0 to
    1 (a single bin sits at 0), mapped by unit_to_hz (log frequency) to [hz_min, hz_max].

    Args:
      freqs: `[batch, time, n_sinusoids * depth]` (consecutive groups of depth logits) or
        `[batch, time, n_sinusoids, depth]`.
      depth: logits per sinusoid for 3-D input (4-D input: its last axis).
      hz_min, hz_max: frequency range, Hz.

    Returns:
      `[batch, time, n_sinusoids]`, Hz.
    """
    logits, depth = _frequency_logits(freqs, depth)
    probabilities = tf.nn.softmax(logits, axis=-1)
    bins = tf.linspace(0.0, 1.0, depth)
    unit = tf.reduce_sum(bins * probabilities, axis=-1)
    return unit_to_hz(unit, hz_min=hz_min, hz_max=hz_max)


@register("core")
def frequencies_sigmoid(freqs, depth: int = 1, hz_min: float = 0.0, hz_max: float = 8000.0) -> tf.Tensor:
    """Network outputs -> frequencies (Hz): a sum of `depth` log-scaled sigmoid terms.

    The span s = hz_max - hz_min is split with the factor r = s^(1 / depth): terms 0 ..
    depth - 2 each cover [0, R (1 - 1/r)] of the remaining span R (which shrinks by that
    amount after each term) and the last covers [hz_min, R]; each term is
    unit_to_hz(sigmoid(logit), low, high) and the terms are summed. With depth 1 this is
    unit_to_hz(sigmoid(x), hz_min, hz_max - hz_min).

    Args:
      freqs: `[batch, time, n_sinusoids * depth]` or `[batch, time, n_sinusoids, depth]`.
      depth: sigmoids per sinusoid for 3-D input (4-D input: its last axis).
      hz_min, hz_max: Hz.

    Returns:
      `[batch, time, n_sinusoids]`, Hz.
    """
    logits, depth = _frequency_logits(freqs, depth)
    probabilities = tf.nn.sigmoid(logits)
    remaining = hz_max - hz_min
    ratio = remaining ** (1.0 / depth)
    terms = []
    for i in range(depth):
        if i == depth - 1:
            low, high = hz_min, remaining
        else:
            low, high = 0.0, remaining * (1.0 - 1.0 / ratio)
            remaining -= high
        terms.append(unit_to_hz(probabilities[..., i], hz_min=low, hz_max=high))
    return tf.add_n(terms)


@register("core")
def frequencies_critical_bands(freqs, depth: int = 1, depth_scale: float = 10.0, bandwidth_scale: float = 1.0,
                               hz_min: float = 20.0, hz_max: float = 8000.0, scale: str = "bark") -> tf.Tensor:
    """Network outputs -> frequencies (Hz) around fixed centres on a Bark or mel scale.

    Sinusoid i sits at centre c_i (n_sinusoids centres evenly spaced in Bark or mel between
    hz_min and hz_max) and moves by bandwidth_scale * ERB(c_i) * sum_d tanh(x_d)
    depth_scale^-d; the result is soft_limit-ed to [hz_min, hz_max].

    Args:
      freqs: `[batch, time, n_sinusoids * depth]` or `[batch, time, n_sinusoids, depth]`.
      scale: 'bark' or 'mel'.

    Returns:
      `[batch, time, n_sinusoids]`, Hz.
    """
    logits, depth = _frequency_logits(freqs, depth)
    n_sinusoids = logits.shape[-2]
    if scale == "bark":
        centres = bark_to_hz(np.linspace(hz_to_bark(hz_min), hz_to_bark(hz_max), n_sinusoids))
    elif scale == "mel":
        mel_min, mel_max = (float(hz_to_mel(tf.constant(h, tf.float32))) for h in (hz_min, hz_max))
        centres = mel_to_hz(np.linspace(mel_min, mel_max, n_sinusoids))
    else:
        raise ValueError(f"frequencies_critical_bands: `scale` must be 'bark' or 'mel', got {scale!r}.")
    bandwidths = tf.constant(hz_to_erb(centres), tf.float32)
    depth_weights = float(depth_scale) ** -tf.range(depth, dtype=tf.float32)
    modifier = tf.reduce_sum(tf.nn.tanh(logits) * depth_weights, axis=-1)
    return soft_limit(tf.constant(centres, tf.float32) + bandwidth_scale * bandwidths * modifier, hz_min, hz_max)
