"""FFT convolution and FIR filter design; part of `ddsp_models.core` (import from core).

Audio is `[batch, n_samples]`; impulse responses `[batch, ir_size]` (time-invariant) or
`[batch, n_frames, ir_size]` (one per block of audio); magnitude responses
`[batch, n_frames, n_frequencies]` on a uniform grid from 0 Hz to Nyquist. Defaults and
delays follow the original DDSP 3.7.0 `ddsp.core`.
"""
import numpy as np
import tensorflow as tf

from ddsp_models.dsp_utils import ensure_audio, ensure_rank, tf_float32

__all__ = [
    "next_fast_fft_length", "get_fft_size", "default_delay_compensation", "crop_and_compensate_delay",
    "fft_convolve",
    "apply_window_to_impulse_response", "frequency_impulse_response", "frequency_filter", "sinc",
    "sinc_impulse_response", "sinc_filter",
]


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


def get_fft_size(frame_size: int, ir_size: int, power_of_2: bool = True) -> int:
    """FFT length for a linear convolution of frame_size and ir_size samples: the next power
    of two >= frame_size + ir_size - 1, or (power_of_2=False) the next 5-smooth length."""
    convolved = int(frame_size) + int(ir_size) - 1
    return _next_power_of_two(convolved) if power_of_2 else next_fast_fft_length(convolved)


def default_delay_compensation(ir_size: int) -> int:
    """Samples crop_and_compensate_delay skips by default: (ir_size - 1) // 2 - 1 (floored at
    0), the original's delay of frequency_impulse_response's odd-length windowed filters."""
    return max((int(ir_size) - 1) // 2 - 1, 0)


def crop_and_compensate_delay(audio, audio_size: int, ir_size: int, padding: str = "same",
                              delay_compensation: int = -1) -> tf.Tensor:
    """Crops a full convolution to the output length and removes the filter's delay.

    Args:
      audio: convolution output `[batch, n]` (n >= audio_size + ir_size - 1; samples past the
        end read as zeros).
      audio_size, ir_size: lengths of the convolved signals, samples.
      padding: 'same' (output audio_size samples) or 'valid' (audio_size + ir_size - 1).
      delay_compensation: samples skipped at the start; < 0 means (ir_size - 1) // 2 - 1, the
        original's choice for the windowed filters of frequency_impulse_response (floored
        at 0 for ir_size < 3).

    Raises:
      ValueError: naming `padding` when it is neither 'same' nor 'valid'.
    """
    if padding == "valid":
        crop_size = ir_size + audio_size - 1
    elif padding == "same":
        crop_size = audio_size
    else:
        raise ValueError(f"`padding` must be 'valid' or 'same', got {padding!r}.")
    start = default_delay_compensation(ir_size) if delay_compensation < 0 else int(delay_compensation)
    total = audio.shape[-1]
    if total is not None and total < start + crop_size:
        audio = tf.pad(audio, [[0, 0], [0, start + crop_size - total]])
    return audio[:, start:start + crop_size]


def fft_convolve(audio, impulse_response, padding: str = "same", delay_compensation: int = -1) -> tf.Tensor:
    """Convolves audio with one impulse response, or with a time-varying one per block.

    A response `[batch, n_frames, ir_size]` cuts the audio into n_frames blocks of
    ceil(n_samples / n_frames) samples (the last zero-padded), convolves each block with its
    response and overlap-adds the results (a non-overlapping STFT / ISTFT).

    Args:
      audio: `[batch, n_samples]`.
      impulse_response: `[batch, ir_size]` or `[batch, n_frames, ir_size]`; a batch of 1 is
        shared by every example.
      padding: 'same' (output n_samples) or 'valid' (n_samples + ir_size - 1).
      delay_compensation: see crop_and_compensate_delay.

    Returns:
      `[batch, n_samples]` ('same') or `[batch, n_samples + ir_size - 1]` ('valid').

    Raises:
      ValueError: for mismatched batch sizes, or when the audio does not split into n_frames
        blocks.
    """
    audio = ensure_audio(audio)
    impulse_response = tf_float32(impulse_response, "impulse_response")
    if impulse_response.shape.rank == 2:
        impulse_response = impulse_response[:, tf.newaxis, :]
    if impulse_response.shape.rank != 3:
        raise ValueError(f"`impulse_response` must be [batch, ir_size] or [batch, n_frames, ir_size], got "
                         f"shape {impulse_response.shape.as_list()}.")
    batch, audio_size = audio.shape
    ir_batch, n_frames, ir_size = impulse_response.shape
    if audio_size is None or n_frames is None or ir_size is None:
        raise ValueError("fft_convolve needs static audio and impulse-response sizes.")
    if batch is not None and ir_batch is not None and ir_batch not in (1, batch):
        raise ValueError(f"fft_convolve: batch size of `audio` ({batch}) and `impulse_response` ({ir_batch}) "
                         "must be the same (or 1 for the response).")
    block = -(-audio_size // n_frames)
    if -(-audio_size // block) != n_frames:
        raise ValueError(
            f"fft_convolve: {audio_size} audio samples do not split into the {n_frames} frames of "
            f"`impulse_response` (blocks of ceil({audio_size} / {n_frames}) = {block} samples).")
    padded = tf.pad(audio, [[0, 0], [0, n_frames * block - audio_size]]) if n_frames * block > audio_size else audio
    blocks = tf.reshape(padded, [tf.shape(audio)[0], n_frames, block])
    fft_size = next_fast_fft_length(block + ir_size - 1)  # linear, not circular, convolution
    spectrum = tf.signal.rfft(blocks, fft_length=[fft_size]) * tf.signal.rfft(impulse_response,
                                                                             fft_length=[fft_size])
    convolved = tf.signal.irfft(spectrum, fft_length=[fft_size])  # [batch, n_frames, fft_size]
    full = convolved[:, 0, :] if n_frames == 1 else tf.signal.overlap_and_add(convolved, block)
    return crop_and_compensate_delay(full, audio_size, ir_size, padding, delay_compensation)


def _fftshift(x: tf.Tensor) -> tf.Tensor:
    return tf.roll(x, shift=int(x.shape[-1]) // 2, axis=-1)


def apply_window_to_impulse_response(impulse_response, window_size: int = 0, causal: bool = False) -> tf.Tensor:
    """Tapers a zero-phase impulse response with a Hann window and puts it in causal form.

    Args:
      impulse_response: `[batch, n_frames, ir_size]`, zero-phase (time 0 at index 0, negative
        times wrapped to the end), or causal (peak in the middle) with `causal=True`.
      window_size: window (and output) length; < 1 or > ir_size means ir_size.
      causal: the input is in causal form.

    Returns:
      Causal responses `[batch, n_frames, n]`. With window_size < ir_size, a periodic Hann
      window of window_size whose sample h = (window_size + 1) // 2 sits on time 0 keeps
      times -(h - 1) .. h - 1 (n = 2 h - 1; time 0 at index h - 2: the crop_and_compensate_delay
      default for odd window sizes). Otherwise the window and the response are fftshifted
      (n = ir_size, time 0 at index ir_size // 2).
    """
    impulse_response = tf_float32(impulse_response, "impulse_response")
    if causal:
        impulse_response = _fftshift(impulse_response)
    ir_size = int(impulse_response.shape[-1])
    window_size = int(window_size)
    if window_size <= 0 or window_size > ir_size:
        window_size = ir_size
    window = tf.signal.hann_window(window_size, periodic=True)
    padding = ir_size - window_size
    if padding > 0:
        half = (window_size + 1) // 2
        window = tf.concat([window[half:], tf.zeros([padding]), window[:half]], axis=0)
        windowed = window * impulse_response
        first_half_start = ir_size - half + 2
        return tf.concat([windowed[..., first_half_start:], windowed[..., :half + 1]], axis=-1)
    return _fftshift(_fftshift(window) * impulse_response)


def frequency_impulse_response(magnitudes, window_size: int = 0) -> tf.Tensor:
    """Windowed linear-phase FIR filters from sampled magnitude responses (frequency sampling).

    Args:
      magnitudes: linear gains `[batch, n_frames, n_frequencies]` or `[batch, n_frequencies]`
        at frequencies k * Nyquist / (n_frequencies - 1).
      window_size: see apply_window_to_impulse_response (default: 2 (n_frequencies - 1)).

    Returns:
      Causal impulse responses `[batch, n_frames, n]` or `[batch, n]`.
    """
    magnitudes = tf_float32(magnitudes, "magnitudes")
    ensure_rank(magnitudes, (2, 3), "magnitudes")
    zero_phase = tf.signal.irfft(tf.complex(magnitudes, tf.zeros_like(magnitudes)))
    return apply_window_to_impulse_response(zero_phase, window_size)


def frequency_filter(audio, magnitudes, window_size: int = 0, padding: str = "same") -> tf.Tensor:
    """Filters audio with time-varying FIRs designed from magnitude responses.

    Args:
      audio: `[batch, n_samples]`.
      magnitudes: `[batch, n_frames, n_frequencies]` or `[batch, n_frequencies]`, linear
        gains from 0 Hz to Nyquist; the audio is split into n_frames blocks.
      window_size: FIR length (see frequency_impulse_response).
      padding: 'same' or 'valid' (see fft_convolve).
    """
    impulse_response = frequency_impulse_response(magnitudes, window_size=window_size)
    return fft_convolve(audio, impulse_response, padding=padding)


def sinc(x, threshold: float = 1e-20) -> tf.Tensor:
    """Normalised sinc, sin(pi x) / (pi x); |x| below threshold is replaced by threshold."""
    x = tf_float32(x, "x")
    x = tf.where(tf.abs(x) < threshold, threshold * tf.ones_like(x), x)
    x = np.pi * x
    return tf.sin(x) / x


def sinc_impulse_response(cutoff_frequency, window_size: int = 512, sample_rate=None,
                          high_pass: bool = False) -> tf.Tensor:
    """Hamming-windowed sinc low-pass (or high-pass) impulse responses with unit DC gain.

    Args:
      cutoff_frequency: `[batch, n_frames, 1]`: Hz with sample_rate, else a fraction of
        Nyquist in [0, 1].
      window_size: 2 * (window_size // 2) + 1 taps.
      sample_rate: Hz, or None.
      high_pass: return delta - low-pass (removes frequencies below the cutoff).

    Returns:
      `[batch, n_frames, 2 * (window_size // 2) + 1]`.
    """
    cutoff_frequency = tf_float32(cutoff_frequency, "cutoff_frequency")
    if sample_rate is not None:
        cutoff_frequency = cutoff_frequency * (2.0 / float(sample_rate))
    half_size = int(window_size) // 2
    full_size = half_size * 2 + 1
    taps = tf.range(-half_size, half_size + 1.0, dtype=tf.float32)[tf.newaxis, tf.newaxis, :]
    impulse_response = sinc(cutoff_frequency * taps) * tf.signal.hamming_window(full_size)
    impulse_response /= tf.abs(tf.reduce_sum(impulse_response, axis=-1, keepdims=True))
    if high_pass:
        delta = tf.one_hot(half_size, full_size, dtype=tf.float32)
        impulse_response = delta - impulse_response
    return impulse_response


def sinc_filter(audio, cutoff_frequency, window_size: int = 512, sample_rate=None, padding: str = "same",
                high_pass: bool = False) -> tf.Tensor:
    """Filters audio with time-varying windowed-sinc low-pass (or high-pass) filters.

    Args:
      audio: `[batch, n_samples]`.
      cutoff_frequency: `[batch, n_frames, 1]` (see sinc_impulse_response).
      padding: 'same' or 'valid' (see fft_convolve).
    """
    impulse_response = sinc_impulse_response(cutoff_frequency, window_size=window_size,
                                             sample_rate=sample_rate, high_pass=high_pass)
    return fft_convolve(audio, impulse_response, padding=padding)
