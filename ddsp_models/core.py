"""DSP core: unit conversions, resampling, oscillators, FFT convolution and filters.

Conventions: float32 tensors, batch first. Frame-rate controls are `[batch, n_frames, channels]`,
audio is `[batch, n_samples]`. Every function works eagerly and inside `tf.function`, and is
differentiable where the maths is.
"""
import math

import numpy as np
import tensorflow as tf

from ddsp_models.gin_utils import register

DB_RANGE = 80.0  # dB span used to scale loudness to [0, 1] (preprocessors).
LD_RANGE = 120.0  # dB floor span of compute_loudness.
MIDI_MAX = 127.0
TWO_PI = 2.0 * math.pi


# ----------------------------------------------------------------------------- checks
def tf_float32(x, name: str = "input") -> tf.Tensor:
    """Converts numbers, numpy arrays or tensors to a float32 tensor.

    Raises:
      TypeError: naming `name`, when `x` holds strings, booleans or complex numbers.
    """
    if isinstance(x, tf.Tensor) or isinstance(x, tf.Variable):
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


# ------------------------------------------------------------------------- conversions
def safe_log(x, eps: float = 1e-5) -> tf.Tensor:
    """Natural log with inputs floored at `eps`, so gradients stay finite."""
    return tf.math.log(tf.maximum(tf_float32(x), eps))


def safe_divide(numerator, denominator, eps: float = 1e-7) -> tf.Tensor:
    """numerator / denominator with |denominator| floored at `eps` (sign kept)."""
    denominator = tf_float32(denominator)
    safe = tf.where(tf.abs(denominator) < eps, eps * tf.where(denominator < 0, -1.0, 1.0), denominator)
    return tf_float32(numerator) / safe


def log10(x) -> tf.Tensor:
    return tf.math.log(tf_float32(x)) / math.log(10.0)


def midi_to_hz(notes, midi_zero_silence: bool = False) -> tf.Tensor:
    """MIDI note number (69 = A4) -> frequency in Hz. With `midi_zero_silence`, note 0 -> 0 Hz."""
    notes = tf_float32(notes, "notes")
    hz = 440.0 * tf.pow(2.0, (notes - 69.0) / 12.0)
    if midi_zero_silence:
        hz = tf.where(notes <= 0.0, 0.0, hz)
    return hz


def hz_to_midi(frequencies) -> tf.Tensor:
    """Frequency in Hz -> MIDI note number; 0 Hz maps to MIDI 0 (not -inf)."""
    frequencies = tf_float32(frequencies, "frequencies")
    notes = 12.0 * (tf.math.log(tf.maximum(frequencies, 1e-5) / 440.0) / math.log(2.0)) + 69.0
    return tf.where(frequencies <= 0.0, 0.0, notes)


def unit_to_midi(unit, midi_min: float = 20.0, midi_max: float = 90.0, clip: bool = False) -> tf.Tensor:
    """[0, 1] -> MIDI [midi_min, midi_max]."""
    unit = tf_float32(unit, "unit")
    unit = tf.clip_by_value(unit, 0.0, 1.0) if clip else unit
    return midi_min + (midi_max - midi_min) * unit


def midi_to_unit(midi, midi_min: float = 20.0, midi_max: float = 90.0, clip: bool = False) -> tf.Tensor:
    """MIDI [midi_min, midi_max] -> [0, 1]."""
    unit = (tf_float32(midi, "midi") - midi_min) / (midi_max - midi_min)
    return tf.clip_by_value(unit, 0.0, 1.0) if clip else unit


def unit_to_hz(unit, hz_min: float, hz_max: float, clip: bool = False) -> tf.Tensor:
    """[0, 1] -> Hz, linear in MIDI (log-frequency) between hz_min and hz_max."""
    midi = unit_to_midi(unit, hz_to_midi(hz_min), hz_to_midi(hz_max), clip=clip)
    return midi_to_hz(midi)


def hz_to_unit(hz, hz_min: float, hz_max: float, clip: bool = False) -> tf.Tensor:
    """Hz -> [0, 1], linear in MIDI between hz_min and hz_max."""
    return midi_to_unit(hz_to_midi(hz), hz_to_midi(hz_min), hz_to_midi(hz_max), clip=clip)


def amplitude_to_db(amplitude, amin: float = 1e-10, ref_db: float = 0.0, range_db: float | None = None) -> tf.Tensor:
    """Linear amplitude -> dB: 20 log10(max(amplitude, amin)) - ref_db, floored at -range_db."""
    db = 20.0 * log10(tf.maximum(tf_float32(amplitude, "amplitude"), amin)) - ref_db
    return db if range_db is None else tf.maximum(db, -range_db)


def power_to_db(power, amin: float = 1e-20, ref_db: float = 0.0, range_db: float | None = None) -> tf.Tensor:
    """Power -> dB: 10 log10(max(power, amin)) - ref_db, floored at -range_db."""
    db = 10.0 * log10(tf.maximum(tf_float32(power, "power"), amin)) - ref_db
    return db if range_db is None else tf.maximum(db, -range_db)


def db_to_amplitude(db) -> tf.Tensor:
    """dB -> linear amplitude (10^(dB/20))."""
    return tf.pow(10.0, tf_float32(db, "db") / 20.0)


def db_to_power(db) -> tf.Tensor:
    """dB -> power (10^(dB/10))."""
    return tf.pow(10.0, tf_float32(db, "db") / 10.0)


@register("core")
def exp_sigmoid(x, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> tf.Tensor:
    """Positive squashing for amplitudes: max_value * sigmoid(x) ** log(exponent) + threshold.

    Its slope matches exp(x) near 0 output, and it saturates at `max_value`.
    """
    x = tf_float32(x, "x")
    return max_value * tf.nn.sigmoid(x) ** math.log(exponent) + threshold


@register("core")
def sym_exp_sigmoid(x, width: float = 8.0) -> tf.Tensor:
    """Symmetric exp_sigmoid over |x|, peaking at x=0, for parameters in [0, 1]."""
    x = tf_float32(x, "x")
    return exp_sigmoid(width * (tf.abs(x) / 2.0 - 1.0))


def _add_depth_axis(freqs: tf.Tensor, depth: int, name: str) -> tf.Tensor:
    """`[batch, time, n * depth]` -> `[batch, time, n, depth]` (depth d is the d-th block of n)."""
    ensure_rank(freqs, (3, 4), name)
    if freqs.shape.rank == 4:
        return freqs
    depth = int(depth)
    n_channels = freqs.shape[-1]
    if depth < 1 or n_channels is None or n_channels % depth != 0:
        raise ValueError(f"`{name}` last axis ({n_channels}) must be a multiple of depth ({depth}).")
    shape = tf.shape(freqs)
    blocks = tf.reshape(freqs, [shape[0], shape[1], depth, n_channels // depth])
    return tf.transpose(blocks, [0, 1, 3, 2])


@register("core")
def frequencies_softmax(freqs, depth: int = 1, hz_min: float = 20.0, hz_max: float = 8000.0) -> tf.Tensor:
    """Network outputs -> frequencies (Hz) as a softmax-weighted mean of log-spaced bins.

    Each sinusoid has `depth` logits over bins evenly spaced in MIDI (log frequency) from
    hz_min to hz_max; its frequency is unit_to_hz of the softmax-weighted mean bin position.
    With depth=1 there is a single bin, so every output is hz_min (use depth > 1).

    Args:
      freqs: logits `[batch, time, n_sinusoids * depth]` (depth blocks of n_sinusoids) or
        `[batch, time, n_sinusoids, depth]`.
      depth: bins per sinusoid when freqs is 3-D.
      hz_min, hz_max: frequency range, Hz.

    Returns:
      Frequencies in Hz, `[batch, time, n_sinusoids]`.
    """
    freqs = _add_depth_axis(tf_float32(freqs, "freqs"), depth, "freqs")
    n_bins = freqs.shape[-1]
    probabilities = tf.nn.softmax(freqs, axis=-1)
    bin_positions = tf.linspace(0.0, 1.0, n_bins) if n_bins > 1 else tf.zeros([1])
    unit = tf.reduce_sum(probabilities * bin_positions, axis=-1)
    return unit_to_hz(unit, hz_min=hz_min, hz_max=hz_max)


@register("core")
def frequencies_sigmoid(freqs, depth: int = 1, hz_min: float = 0.0, hz_max: float = 8000.0) -> tf.Tensor:
    """Network outputs -> frequencies (Hz) through sigmoids on a log-frequency (MIDI) scale.

    With depth d > 1 the position in [0, 1] is a coarse-to-fine sum: sigmoid i contributes
    2^-i of the range (normalised so all sigmoids at 1 give hz_max). hz_min = 0 maps to
    MIDI 0 (8.18 Hz), the bottom of the log scale.

    Args:
      freqs: `[batch, time, n_sinusoids * depth]` or `[batch, time, n_sinusoids, depth]`.
      depth: sigmoids per sinusoid when freqs is 3-D.
      hz_min, hz_max: frequency range, Hz.

    Returns:
      Frequencies in Hz, `[batch, time, n_sinusoids]`.
    """
    freqs = _add_depth_axis(tf_float32(freqs, "freqs"), depth, "freqs")
    n_levels = freqs.shape[-1]
    scales = 0.5 ** np.arange(n_levels, dtype=np.float32)
    scales = tf.constant(scales / scales.sum())
    unit = tf.reduce_sum(tf.nn.sigmoid(freqs) * scales, axis=-1)
    return unit_to_hz(unit, hz_min=hz_min, hz_max=hz_max)


# -------------------------------------------------------------------------- resampling
def _interpolate_linear(inputs: tf.Tensor, n_timesteps: int, add_endpoint: bool) -> tf.Tensor:
    """Linear interpolation along axis 1 of `[batch, n_frames, channels]`."""
    n_frames = inputs.shape[1]
    if n_frames is None:
        raise ValueError("resample needs a static number of frames (axis 1).")
    if n_frames == 1:
        return tf.tile(inputs, [1, n_timesteps, 1])
    if add_endpoint:
        # First and last output samples land exactly on the first and last frames.
        positions = np.linspace(0.0, n_frames - 1.0, n_timesteps)
    else:
        # Frames are the start of equal blocks; the last block holds the last value.
        positions = np.arange(n_timesteps) * (n_frames / n_timesteps)
        positions = np.minimum(positions, n_frames - 1.0)
    left = np.floor(positions).astype(np.int32)
    left = np.minimum(left, n_frames - 2)
    fraction = (positions - left).astype(np.float32)[np.newaxis, :, np.newaxis]
    x_left = tf.gather(inputs, left, axis=1)
    x_right = tf.gather(inputs, left + 1, axis=1)
    return x_left + fraction * (x_right - x_left)


def resample(inputs, n_timesteps: int, method: str = "linear", add_endpoint: bool = True) -> tf.Tensor:
    """Resamples frame controls along time.

    Args:
      inputs: `[batch, n_frames, channels]`, `[batch, n_frames]` or `[n_frames]`.
      n_timesteps: output length along time.
      method: 'nearest', 'linear', or 'window' (Hann-window overlap-add; upsampling only).
      add_endpoint: align the last output sample with the last frame (otherwise each frame
        holds for n_timesteps / n_frames samples, as for block-wise controls).

    Returns:
      Resampled tensor with the rank of `inputs`.
    """
    inputs_tensor = tf_float32(inputs, "inputs")
    rank = inputs_tensor.shape.rank
    x = ensure_3d(inputs_tensor, "inputs")
    if method == "linear":
        out = _interpolate_linear(x, int(n_timesteps), add_endpoint)
    elif method == "nearest":
        n_frames = x.shape[1]
        scale = (n_frames - 1.0) / max(n_timesteps - 1, 1) if add_endpoint else n_frames / n_timesteps
        idx = np.minimum(np.round(np.arange(n_timesteps) * scale), n_frames - 1).astype(np.int32) if add_endpoint \
            else np.minimum(np.floor(np.arange(n_timesteps) * scale), n_frames - 1).astype(np.int32)
        out = tf.gather(x, idx, axis=1)
    elif method == "window":
        out = upsample_with_windows(x, int(n_timesteps), add_endpoint)
    else:
        raise ValueError(f"resample `method` must be 'nearest', 'linear' or 'window', got {method!r}.")
    if rank == 1:
        return out[0, :, 0]
    if rank == 2:
        return out[:, :, 0]
    return out


def upsample_with_windows(inputs, n_timesteps: int, add_endpoint: bool = True) -> tf.Tensor:
    """Upsamples frames by overlap-adding Hann windows (smooth amplitude envelopes).

    Frame i sits at sample i * hop (hop = n_timesteps / n_frames) and is spread over a Hann
    window of 2 * hop; windows at 50% overlap sum to one, so a constant input stays constant.

    Computed in closed form: between frames i and i + 1 only their two windows overlap, so
    sample i * hop + t (0 <= t < hop) is x[i] + (x[i+1] - x[i]) * r[t] with the rising half
    window r[t] = sin^2(pi t / (2 hop)). This equals the overlap-add exactly and needs one
    multiply-add per output value (no transposes or framed intermediates).

    Args:
      inputs: `[batch, n_frames, channels]`.
      n_timesteps: output length, an integer multiple of n_frames.
      add_endpoint: hold the last frame's value until the end (True), or fade it out over
        the final hop (False).

    Returns:
      `[batch, n_timesteps, channels]`.
    """
    x = ensure_3d(inputs, "inputs")
    n_frames = x.shape[1]
    hop = _window_hop(n_frames, n_timesteps)
    x_next = _next_frames(x, add_endpoint)
    ramp = _rising_half_window(hop)[:, tf.newaxis]  # [hop, 1]
    blocks = x[:, :, tf.newaxis, :] + (x_next - x)[:, :, tf.newaxis, :] * ramp  # [b, frames, hop, c]
    return tf.reshape(blocks, [tf.shape(x)[0], n_timesteps, -1])


def _window_hop(n_frames, n_timesteps: int) -> int:
    """Samples per frame for window upsampling; ValueError unless n_timesteps = k * n_frames."""
    if n_frames is None or n_frames < 1 or n_timesteps % n_frames != 0:
        raise ValueError(
            f"window upsampling needs n_timesteps ({n_timesteps}) to be an integer multiple of "
            f"the number of frames ({n_frames}).")
    return n_timesteps // n_frames


def _next_frames(x: tf.Tensor, add_endpoint: bool) -> tf.Tensor:
    """x shifted one frame earlier along axis 1; the last frame is repeated or zero."""
    tail = x[:, -1:, :] if add_endpoint else tf.zeros_like(x[:, -1:, :])
    return tf.concat([x[:, 1:, :], tail], axis=1)


def _rising_half_window(hop: int) -> tf.Tensor:
    """First half of a periodic Hann window of 2 * hop samples: sin^2(pi t / (2 hop)), `[hop]`."""
    return tf.signal.hann_window(2 * hop, periodic=True)[:hop]


# ------------------------------------------------------------------------- oscillators
def angular_cumsum(angular_frequency) -> tf.Tensor:
    """Cumulative sum of phase increments along axis 1, wrapped to [0, 2pi), accurate.

    A float32 running sum of ~64000 increments drifts by radians (the total reaches 1e5 rad,
    where float32 spacing is ~0.01 rad, and rounding errors of constant increments add up),
    and chunked float32 sums still drift by ~0.1 rad. The sum is therefore accumulated in
    float64 (error ~1e-10 rad) and wrapped before returning to float32. Gradients flow
    through the casts (the derivative of a cumulative sum is a reversed cumulative sum).

    Args:
      angular_frequency: radians per sample, `[batch, n_samples, channels]`.

    Returns:
      Phase in radians, `[batch, n_samples, channels]`, in [0, 2pi).
    """
    omega = ensure_3d(angular_frequency, "angular_frequency")
    phase = tf.cumsum(tf.cast(omega, tf.float64), axis=1)
    return tf.cast(tf.math.floormod(phase, 2.0 * np.pi), tf.float32)


def remove_above_nyquist(frequency_envelopes, amplitude_envelopes, sample_rate: int = 16000) -> tf.Tensor:
    """Zeroes amplitudes of components at or above Nyquist (sample_rate / 2).

    Args:
      frequency_envelopes: Hz, `[batch, time, n_sinusoids]`.
      amplitude_envelopes: `[batch, time, n_sinusoids]`.
    """
    frequency_envelopes = tf_float32(frequency_envelopes, "frequency_envelopes")
    amplitude_envelopes = tf_float32(amplitude_envelopes, "amplitude_envelopes")
    return tf.where(frequency_envelopes >= sample_rate / 2.0, tf.zeros_like(amplitude_envelopes),
                    amplitude_envelopes)


def normalize_harmonics(harmonic_distribution, f0_hz=None, sample_rate: int | None = None) -> tf.Tensor:
    """Zeroes harmonics at or above Nyquist (if f0 given) and normalises to sum to one.

    Args:
      harmonic_distribution: `[batch, time, n_harmonics]`, non-negative.
      f0_hz: `[batch, time, 1]` Hz, optional.
      sample_rate: Hz, needed with f0_hz.
    """
    harmonic_distribution = tf_float32(harmonic_distribution, "harmonic_distribution")
    if f0_hz is not None:
        n_harmonics = harmonic_distribution.shape[-1]
        harmonic_frequencies = get_harmonic_frequencies(f0_hz, n_harmonics)
        harmonic_distribution = remove_above_nyquist(harmonic_frequencies, harmonic_distribution, sample_rate)
    return safe_divide(harmonic_distribution, tf.reduce_sum(harmonic_distribution, axis=-1, keepdims=True))


def get_harmonic_frequencies(frequencies, n_harmonics: int) -> tf.Tensor:
    """f0 `[batch, time, 1]` Hz -> harmonic frequencies `[batch, time, n_harmonics]` (k * f0)."""
    frequencies = ensure_3d(frequencies, "frequencies")
    ratios = tf.range(1.0, n_harmonics + 1.0, dtype=tf.float32)
    return frequencies * ratios


def oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate: int = 16000,
                    sum_sinusoids: bool = True, use_angular_cumsum: bool = False) -> tf.Tensor:
    """Sinusoids with sample-rate frequency and amplitude envelopes.

    Args:
      frequency_envelopes: Hz, `[batch, n_samples, n_sinusoids]`.
      amplitude_envelopes: `[batch, n_samples, n_sinusoids]`.
      sample_rate: Hz. Components at or above Nyquist are silenced.
      sum_sinusoids: sum into `[batch, n_samples]`; else `[batch, n_samples, n_sinusoids]`.
      use_angular_cumsum: chunked, wrapped phase accumulation (accurate for long signals).
    """
    frequency_envelopes = ensure_3d(frequency_envelopes, "frequency_envelopes")
    amplitude_envelopes = ensure_3d(amplitude_envelopes, "amplitude_envelopes")
    amplitude_envelopes = remove_above_nyquist(frequency_envelopes, amplitude_envelopes, sample_rate)
    omegas = frequency_envelopes * (TWO_PI / float(sample_rate))
    phases = angular_cumsum(omegas) if use_angular_cumsum else tf.cumsum(omegas, axis=1)
    audio = amplitude_envelopes * tf.sin(phases)
    return tf.reduce_sum(audio, axis=-1) if sum_sinusoids else audio


def harmonic_oscillator_bank(f0_envelope, harmonic_amplitudes, sample_rate: int = 16000,
                             use_angular_cumsum: bool = True) -> tf.Tensor:
    """Harmonic sinusoids sharing one fundamental phase: sum_k a_k(t) sin(k * phi(t)).

    Accumulating the phase of f0 once and multiplying by k equals accumulating each harmonic's
    phase (the increments are exact multiples) and costs one cumulative sum instead of
    n_harmonics of them. Harmonics at or above Nyquist are silenced sample by sample.

    Args:
      f0_envelope: Hz, `[batch, n_samples, 1]`.
      harmonic_amplitudes: `[batch, n_samples, n_harmonics]`.

    Returns:
      Audio `[batch, n_samples]`.
    """
    f0_envelope = ensure_3d(f0_envelope, "f0_envelope")
    harmonic_amplitudes = ensure_3d(harmonic_amplitudes, "harmonic_amplitudes")
    n_harmonics = harmonic_amplitudes.shape[-1]
    ratios = tf.range(1.0, n_harmonics + 1.0, dtype=tf.float32)
    omega = f0_envelope * (TWO_PI / float(sample_rate))
    phase = angular_cumsum(omega) if use_angular_cumsum else tf.cumsum(omega, axis=1)
    audible = tf.cast(f0_envelope * ratios < sample_rate / 2.0, tf.float32)
    return tf.reduce_sum(harmonic_amplitudes * audible * tf.sin(phase * ratios), axis=-1)


def windowed_harmonic_oscillator_bank(f0_envelope, frame_amplitudes, sample_rate: int = 16000,
                                      use_angular_cumsum: bool = True,
                                      add_endpoint: bool = True) -> tf.Tensor:
    """Harmonic oscillator bank with frame-rate amplitudes upsampled by Hann windows.

    Same result as `harmonic_oscillator_bank(f0_envelope, upsample_with_windows(frame_amplitudes))`
    but never builds the sample-rate amplitude tensor: in block i (samples i * hop + t) the
    upsampled amplitude of harmonic k is A[i, k] + (A[i+1, k] - A[i, k]) * r[t], so

      audio[i * hop + t] = sum_k s_k[t] A[i, k] + r[t] * sum_k s_k[t] (A[i+1, k] - A[i, k]),

    with s_k = sin(k phi) (zero for harmonics at or above Nyquist at that sample); both sums
    are one batched matrix product over harmonics. For `[16, 64000, 100]` on a 2-core CPU it is
    ~3.5x faster forward and ~10x faster forward + gradient than the direct form (see
    benchmarks/dsp.py).

    Args:
      f0_envelope: Hz, `[batch, n_samples, 1]`.
      frame_amplitudes: `[batch, n_frames, n_harmonics]`, n_samples a multiple of n_frames.
      sample_rate: Hz.
      use_angular_cumsum: accurate float64 wrapped phase (see angular_cumsum).
      add_endpoint: see upsample_with_windows.

    Returns:
      Audio `[batch, n_samples]`.
    """
    f0_envelope = ensure_3d(f0_envelope, "f0_envelope")
    frame_amplitudes = ensure_3d(frame_amplitudes, "frame_amplitudes")
    n_samples = f0_envelope.shape[1]
    n_frames, n_harmonics = frame_amplitudes.shape[1], frame_amplitudes.shape[2]
    hop = _window_hop(n_frames, n_samples)
    ratios = tf.range(1.0, n_harmonics + 1.0, dtype=tf.float32)
    omega = f0_envelope * (TWO_PI / float(sample_rate))
    phase = angular_cumsum(omega) if use_angular_cumsum else tf.cumsum(omega, axis=1)
    # Silence harmonics at or above Nyquist by zeroing their phase argument (sin(0) = 0):
    # one select on the argument instead of a mask multiply after the sine.
    audible = ratios < (sample_rate / 2.0) / tf.maximum(f0_envelope, 1e-7)
    sines = tf.sin(tf.where(audible, phase * ratios, 0.0))  # [batch, n_samples, n_harmonics]
    sines = tf.reshape(sines, [tf.shape(sines)[0], n_frames, hop, n_harmonics])
    deltas = _next_frames(frame_amplitudes, add_endpoint) - frame_amplitudes
    weights = tf.stack([frame_amplitudes, deltas], axis=-1)  # [batch, n_frames, n_harmonics, 2]
    sums = tf.matmul(sines, weights)  # [batch, n_frames, hop, 2]; a batch of 1 broadcasts
    audio = sums[..., 0] + sums[..., 1] * _rising_half_window(hop)
    return tf.reshape(audio, [tf.shape(audio)[0], n_samples])


def harmonic_synthesis(frequencies, amplitudes, harmonic_shifts=None, harmonic_distribution=None,
                       n_samples: int = 64000, sample_rate: int = 16000,
                       amp_resample_method: str = "window", use_angular_cumsum: bool = True) -> tf.Tensor:
    """Harmonic synthesis from frame-rate controls.

    Args:
      frequencies: f0 in Hz, `[batch, n_frames, 1]`.
      amplitudes: overall amplitude, `[batch, n_frames, 1]`.
      harmonic_shifts: relative detuning of each harmonic, `[batch, n_frames, n_harmonics]`
        (harmonic k sounds at k * f0 * (1 + shift)); None for exact harmonics.
      harmonic_distribution: `[batch, n_frames, n_harmonics]`, relative amplitudes (used as
        given; normalise beforehand if needed). None means a single sinusoid.
      n_samples: output length.
      sample_rate: Hz. Harmonics at or above Nyquist are dropped.
      amp_resample_method: 'window' (Hann overlap-add, smooth) or 'linear'.
      use_angular_cumsum: accurate wrapped phase accumulation.

    Returns:
      Audio `[batch, n_samples]`.
    """
    frequencies = ensure_3d(frequencies, "frequencies")
    amplitudes = ensure_3d(amplitudes, "amplitudes")
    if harmonic_distribution is None:
        harmonic_distribution = tf.ones_like(amplitudes)
    harmonic_distribution = ensure_3d(harmonic_distribution, "harmonic_distribution")
    harmonic_amplitudes = amplitudes * harmonic_distribution
    f0_envelope = resample(frequencies, n_samples, method="linear")
    n_frames = harmonic_amplitudes.shape[1]
    if (harmonic_shifts is None and amp_resample_method == "window" and n_frames is not None
            and n_samples % n_frames == 0):
        # Fast path, identical maths (see windowed_harmonic_oscillator_bank).
        return windowed_harmonic_oscillator_bank(f0_envelope, harmonic_amplitudes, sample_rate,
                                                 use_angular_cumsum)
    harmonic_amplitudes = resample(harmonic_amplitudes, n_samples, method=amp_resample_method)
    if harmonic_shifts is None:
        return harmonic_oscillator_bank(f0_envelope, harmonic_amplitudes, sample_rate, use_angular_cumsum)
    n_harmonics = harmonic_distribution.shape[-1]
    harmonic_frequencies = get_harmonic_frequencies(frequencies, n_harmonics) * (1.0 + ensure_3d(harmonic_shifts))
    frequency_envelopes = resample(harmonic_frequencies, n_samples, method="linear")
    return oscillator_bank(frequency_envelopes, harmonic_amplitudes, sample_rate,
                           use_angular_cumsum=use_angular_cumsum)


def linear_lookup(phase, wavetables) -> tf.Tensor:
    """Reads wavetables at fractional positions with linear interpolation.

    Args:
      phase: position in [0, 1), `[batch, n_samples, 1]`.
      wavetables: `[batch, n_samples, n_wavetable]` (one period; wraps around).

    Returns:
      `[batch, n_samples]`.
    """
    phase = ensure_3d(phase, "phase")
    wavetables = ensure_3d(wavetables, "wavetables")
    # Close the period so the position 1.0 reads the first sample again.
    wavetables = tf.concat([wavetables, wavetables[..., :1]], axis=-1)
    n_wavetable = wavetables.shape[-1]
    positions = tf.linspace(0.0, 1.0, n_wavetable)
    # Triangular (hat) interpolation weights around each table position.
    spacing = 1.0 / (n_wavetable - 1.0)
    weights = tf.nn.relu(1.0 - tf.abs(phase - positions) / spacing)
    return tf.reduce_sum(weights * wavetables, axis=-1)


def wavetable_synthesis(frequencies, amplitudes, wavetables, n_samples: int = 64000,
                        sample_rate: int = 16000) -> tf.Tensor:
    """Wavetable oscillator.

    Each output sample reads the period, linearly interpolated in time between the frame
    tables (as `resample(wavetables, n_samples, 'linear')`), at the oscillator phase with
    linear interpolation (as `linear_lookup`). Both interpolations are linear, so the value is
    read from the two neighbouring frame tables with four gathers per sample instead of
    building `[batch, n_samples, n_wavetable]` tensors (the result is the same).

    Args:
      frequencies: Hz, `[batch, n_frames, 1]`.
      amplitudes: `[batch, n_frames, 1]`.
      wavetables: one period per frame, `[batch, n_frames, n_wavetable]` (or `[batch, 1, n]`).

    Returns:
      Audio `[batch, n_samples]`.
    """
    frequencies = ensure_3d(frequencies, "frequencies")
    amplitudes = ensure_3d(amplitudes, "amplitudes")
    wavetables = ensure_3d(wavetables, "wavetables")
    amplitudes = resample(amplitudes, n_samples, method="window") if amplitudes.shape[1] > 1 \
        else tf.tile(amplitudes, [1, n_samples, 1])
    f0 = resample(frequencies, n_samples, method="linear")
    phase = angular_cumsum(f0 * (TWO_PI / sample_rate))[..., 0] / TWO_PI  # [batch, n_samples]
    n_tables, n_wavetable = wavetables.shape[1], wavetables.shape[2]
    if n_tables is None or n_wavetable is None:
        raise ValueError("wavetable_synthesis needs static wavetable shapes `[batch, n_frames, n]`.")
    position = phase * float(n_wavetable)
    index = tf.floor(position)
    fraction = position - index
    i0 = tf.math.floormod(tf.cast(index, tf.int32), n_wavetable)
    i1 = tf.math.floormod(i0 + 1, n_wavetable)
    flat_tables = tf.reshape(wavetables, [tf.shape(wavetables)[0], n_tables * n_wavetable])

    def read_table(table_index):
        """Linear lookup at the phase in table `table_index[n]` for every sample n."""
        offset = (table_index * n_wavetable)[np.newaxis, :]
        low = tf.gather(flat_tables, offset + i0, batch_dims=1)
        high = tf.gather(flat_tables, offset + i1, batch_dims=1)
        return low + fraction * (high - low)

    if n_tables == 1:
        audio = read_table(np.zeros(n_samples, np.int32))
    else:
        table_position = np.linspace(0.0, n_tables - 1.0, n_samples)
        left = np.minimum(np.floor(table_position), n_tables - 2).astype(np.int32)
        alpha = (table_position - left).astype(np.float32)[np.newaxis, :]
        audio_left = read_table(left)
        audio = audio_left + alpha * (read_table(left + 1) - audio_left)
    return audio * amplitudes[..., 0]


def variable_length_delay(phase, audio, max_length: int = 512) -> tf.Tensor:
    """Delays audio by a time-varying number of samples (linear interpolation).

    Args:
      phase: delay as a fraction of `max_length`, in [0, 1], `[batch, n_samples, 1]`.
      audio: `[batch, n_samples]`.
      max_length: longest delay, samples.

    Returns:
      Delayed audio `[batch, n_samples]`.
    """
    audio = ensure_audio(audio)
    phase = ensure_3d(phase, "phase")[..., 0]
    n_samples = audio.shape[1]
    delay = tf.clip_by_value(phase, 0.0, 1.0) * float(max_length)
    position = tf.range(n_samples, dtype=tf.float32)[tf.newaxis, :] - delay
    left = tf.floor(position)
    fraction = position - left
    left_index = tf.cast(left, tf.int32)

    def read(index):
        valid = tf.logical_and(index >= 0, index < n_samples)
        values = tf.gather(audio, tf.clip_by_value(index, 0, n_samples - 1), batch_dims=1)
        return tf.where(valid, values, 0.0)

    return (1.0 - fraction) * read(left_index) + fraction * read(left_index + 1)


# ------------------------------------------------------------------ convolution, filters
def _next_power_of_two(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def next_fast_fft_length(n: int) -> int:
    """Smallest 5-smooth length (2^a 3^b 5^c) >= n: as fast per sample as a power of two in
    TF's CPU FFT, and often much shorter (191 -> 192 rather than 256; 111999 -> 112500)."""
    n = max(int(n), 1)
    best = _next_power_of_two(n)
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < n:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def crop_and_compensate_delay(audio, audio_size: int, ir_size: int, padding: str = "same",
                              delay_compensation: int = -1) -> tf.Tensor:
    """Crops a full convolution back to the input length and removes the filter delay.

    Args:
      audio: full convolution output `[batch, audio_size + ir_size - 1]` (or longer).
      padding: 'same' (output `audio_size` samples) or 'valid' (`audio_size + ir_size - 1`).
      delay_compensation: samples to skip at the start; -1 means ir_size // 2, the delay of
        the centred linear-phase filters made by `frequency_impulse_response`.
    """
    if padding == "valid":
        return audio[:, :audio_size + ir_size - 1]
    if padding != "same":
        raise ValueError(f"`padding` must be 'same' or 'valid', got {padding!r}.")
    start = ir_size // 2 if delay_compensation < 0 else int(delay_compensation)
    return audio[:, start:start + audio_size]


def fft_convolve(audio, impulse_response, padding: str = "same", delay_compensation: int = -1) -> tf.Tensor:
    """Convolves audio with one impulse response, or with a time-varying one per frame.

    A time-varying response `[batch, n_frames, ir_size]` splits the audio into `n_frames`
    equal blocks, convolves each block with its own response and overlap-adds the results.

    Args:
      audio: `[batch, n_samples]`.
      impulse_response: `[batch, ir_size]` or `[batch, n_frames, ir_size]`; batch may be 1
        to share one response.
      padding: 'same' or 'valid' (see crop_and_compensate_delay).
      delay_compensation: see crop_and_compensate_delay.

    Returns:
      `[batch, n_samples]` ('same') or `[batch, n_samples + block + ir_size - 1 ...]` ('valid').
    """
    audio = ensure_audio(audio)
    impulse_response = tf_float32(impulse_response, "impulse_response")
    ensure_rank(impulse_response, (1, 2, 3), "impulse_response")
    if impulse_response.shape.rank == 1:
        impulse_response = impulse_response[tf.newaxis, tf.newaxis, :]
    elif impulse_response.shape.rank == 2:
        impulse_response = impulse_response[:, tf.newaxis, :]
    audio_size = audio.shape[1]
    n_frames = impulse_response.shape[1]
    ir_size = impulse_response.shape[2]
    if audio_size is None or n_frames is None or ir_size is None:
        raise ValueError("fft_convolve needs static audio and impulse-response sizes.")
    if audio_size % n_frames != 0:
        raise ValueError(
            f"fft_convolve: audio length {audio_size} must be a multiple of the number of "
            f"impulse-response frames {n_frames}.")
    block = audio_size // n_frames
    blocks = tf.reshape(audio, [tf.shape(audio)[0], n_frames, block])
    fft_size = next_fast_fft_length(block + ir_size - 1)  # linear (not circular) convolution
    spectrum = tf.signal.rfft(blocks, fft_length=[fft_size]) * tf.signal.rfft(impulse_response, fft_length=[fft_size])
    convolved = tf.signal.irfft(spectrum, fft_length=[fft_size])  # [batch, n_frames, fft_size]
    if n_frames == 1:
        full = convolved[:, 0, :]
    else:
        full = tf.signal.overlap_and_add(convolved, block)
    full = full[:, :audio_size + ir_size - 1]
    return crop_and_compensate_delay(full, audio_size, ir_size, padding, delay_compensation)


def apply_window_to_impulse_response(impulse_response, window_size: int = 0) -> tf.Tensor:
    """Centres a zero-phase impulse response, crops it and tapers it with a Hann window.

    Args:
      impulse_response: zero-phase responses (time 0 at index 0, negative times wrapped to
        the end), `[batch, n_frames, ir_size]`.
      window_size: output length; 0 or more than ir_size means ir_size. Shorter windows
        smooth the frequency response.

    Returns:
      `[batch, n_frames, window_size]`, time 0 at index window_size // 2 (the delay that
      `crop_and_compensate_delay` removes by default).
    """
    impulse_response = tf_float32(impulse_response, "impulse_response")
    ir_size = impulse_response.shape[-1]
    if window_size <= 0 or window_size > ir_size:
        window_size = ir_size
    centred = tf.roll(impulse_response, shift=ir_size // 2, axis=-1)  # time 0 -> ir_size // 2
    start = ir_size // 2 - window_size // 2
    cropped = centred[..., start:start + window_size]
    # Hann window whose peak sits on time 0 (index window_size // 2).
    n = tf.range(window_size, dtype=tf.float32) - float(window_size // 2)
    window = 0.5 + 0.5 * tf.cos(math.pi * n / (window_size / 2.0 + 0.5))
    return cropped * window


def frequency_impulse_response(magnitudes, window_size: int = 0) -> tf.Tensor:
    """Linear-phase FIR filters from sampled magnitude responses (frequency sampling).

    Args:
      magnitudes: `[batch, n_frames, n_frequencies]`, linear gains on a uniform grid from
        0 Hz to Nyquist (n_frequencies = ir_size // 2 + 1).
      window_size: Hann window length; 0 means the full 2 * (n_frequencies - 1).

    Returns:
      Centred impulse responses `[batch, n_frames, window_size]`.
    """
    magnitudes = tf_float32(magnitudes, "magnitudes")
    ensure_rank(magnitudes, (2, 3), "magnitudes")
    if magnitudes.shape.rank == 2:
        magnitudes = magnitudes[:, tf.newaxis, :]
    zero_phase = tf.signal.irfft(tf.complex(magnitudes, tf.zeros_like(magnitudes)))
    return apply_window_to_impulse_response(zero_phase, window_size)


def frequency_filter(audio, magnitudes, window_size: int = 0, padding: str = "same") -> tf.Tensor:
    """Filters audio with time-varying linear-phase FIRs designed from magnitude responses.

    Args:
      audio: `[batch, n_samples]`.
      magnitudes: `[batch, n_frames, n_frequencies]` linear gains from 0 Hz to Nyquist.
      window_size: FIR length (see frequency_impulse_response).
      padding: 'same' or 'valid'.
    """
    impulse_response = frequency_impulse_response(magnitudes, window_size)
    return fft_convolve(audio, impulse_response, padding=padding)
