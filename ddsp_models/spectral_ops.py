"""Spectral features of audio: STFT magnitudes, mel / MFCC, A-weighted loudness, power, f0.

Shapes: audio is `[batch, n_samples]` (or `[n_samples]`, or `[batch, n_samples, 1]`), float32
in [-1, 1]. Spectrogram-like outputs are `[batch, n_frames, n_bins]`; frame features
(loudness, power, RMS) are `[batch, n_frames]` (or `[n_frames]` for 1-D input).

Framing of the frame features (`padding`), with hop = sample_rate // frame_rate:
  * 'center': frame i is centred on sample i * hop (zeros before the start and after the
    end); n_frames = ceil(n_samples / hop), i.e. one frame per hop whose centre lies inside
    the audio (4 s at 16 kHz and 250 Hz -> 1000 frames).
  * 'same': frame i starts at sample i * hop (zeros after the end); n_frames =
    ceil(n_samples / hop).
  * 'valid': no padding; n_frames = 1 + (n_samples - frame_size) // hop.

All TF functions work eagerly and inside `tf.function` and are differentiable w.r.t. audio.
"""
import numpy as np
import tensorflow as tf

from ddsp_models import core
from ddsp_models.core import ensure_audio, power_to_db, safe_log, tf_float32
from ddsp_models.gin_utils import register

PADDINGS = ("center", "same", "valid")

# Python control flow here depends only on static shapes and arguments, so tf.function's
# AutoGraph conversion (seconds per function on first trace, also of gin's wrapper) is skipped.
_no_autograph = tf.autograph.experimental.do_not_convert

# IEC 61672-1 A-weighting: pole frequencies (Hz) and the offset making A(1 kHz) = 0 dB.
A_WEIGHTING_POLES_HZ = (20.598997, 107.65265, 737.86223, 12194.217)
A_WEIGHTING_OFFSET_DB = 2.0
A_WEIGHTING_MIN_DB = -80.0  # floor (the curve is -inf dB at 0 Hz).
POWER_AMIN = 1e-20  # power floor before the log (-200 dB; range_db floors it further).


# ------------------------------------------------------------------------------ checks
def check_audio(audio, name: str = "audio") -> tf.Tensor:
    """Float32 mono audio `[batch, n_samples]` from `[n_samples]`, `[batch, n_samples(, 1)]`.

    Raises TypeError for strings and complex/bool data, ValueError for multichannel or empty
    audio, each naming `name`.
    """
    if isinstance(audio, (str, bytes)):
        raise TypeError(f"`{name}` must be float audio [batch, n_samples], got {type(audio).__name__}.")
    audio = ensure_audio(audio, name)
    if audio.shape[-1] == 0:
        raise ValueError(f"`{name}` is empty (shape {audio.shape.as_list()}).")
    return audio


def _batched_audio(audio, name: str = "audio"):
    """(`[batch, n_samples]` float32 tensor, whether the input was 1-D `[n_samples]`)."""
    if isinstance(audio, (str, bytes)):
        raise TypeError(f"`{name}` must be float audio [batch, n_samples], got {type(audio).__name__}.")
    audio = tf_float32(audio, name)
    return check_audio(audio, name), audio.shape.rank == 1


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, str)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def _hop_from_overlap(frame_size: int, overlap: float) -> int:
    """Hop (samples) of frames of `frame_size` overlapping by the fraction `overlap`."""
    if isinstance(overlap, (bool, str)) or not isinstance(overlap, (int, float, np.floating)) \
            or not 0.0 <= overlap < 1.0:
        raise ValueError(f"`overlap` must be a fraction in [0, 1), got {overlap!r}.")
    hop = frame_size * (1.0 - overlap)
    if abs(hop - round(hop)) > 1e-6 or round(hop) < 1:
        raise ValueError(
            f"frame_size ({frame_size}) * (1 - overlap ({overlap})) = {hop} must be a whole number of samples.")
    return int(round(hop))


def hop_size(sample_rate, frame_rate) -> int:
    """Samples per frame, sample_rate / frame_rate; ValueError unless it is a whole number."""
    for name, value in (("sample_rate", sample_rate), ("frame_rate", frame_rate)):
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not value > 0:
            raise ValueError(f"`{name}` must be a positive number (Hz), got {value!r}.")
    ratio = sample_rate / frame_rate
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ValueError(
            f"`frame_rate` ({frame_rate} Hz) must divide `sample_rate` ({sample_rate} Hz) into a whole "
            f"number of samples per frame; got {ratio}.")
    return int(round(ratio))


def framing(n_samples: int, frame_size: int, hop: int, padding: str = "center"):
    """Frame count and zero padding of a signal of `n_samples` (see the module docstring).

    Returns:
      (n_frames, pad_left, pad_right): padding the signal by these amounts and taking frames
      of `frame_size` every `hop` samples gives exactly `n_frames` frames.
    """
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {PADDINGS}, got {padding!r}.")
    if hop > frame_size:
        raise ValueError(f"frame size ({frame_size}) must be at least the hop size ({hop}); "
                         "frames would skip samples.")
    if n_samples is None:
        raise ValueError("framing needs a static number of audio samples (axis 1).")
    if padding == "valid":
        if n_samples < frame_size:
            raise ValueError(f"padding='valid' needs at least frame_size={frame_size} samples, got {n_samples}.")
        return 1 + (n_samples - frame_size) // hop, 0, 0
    n_frames = -(-n_samples // hop)
    pad_left = frame_size // 2 if padding == "center" else 0
    pad_right = max(0, (n_frames - 1) * hop + frame_size - n_samples - pad_left)
    return n_frames, pad_left, pad_right


def _overlap_add(frames: tf.Tensor, hop: int) -> tf.Tensor:
    """Sums frames `[batch, n_frames, frame_size]` placed every `hop` samples (adjoint of framing).

    Returns `[batch, (n_frames - 1) * hop + frame_size]`. When hop divides frame_size, each
    frame is split into frame_size / hop blocks that are shifted and added (faster than
    tf.signal.overlap_and_add at high overlap).
    """
    n_frames, frame_size = frames.shape[1], frames.shape[2]
    if frame_size % hop:
        return tf.signal.overlap_and_add(frames, hop)
    n_blocks = frame_size // hop
    blocks = tf.reshape(frames, [-1, n_frames, n_blocks, hop])
    shifted = [tf.pad(blocks[:, :, j, :], [[0, 0], [j, n_blocks - 1 - j], [0, 0]]) for j in range(n_blocks)]
    return tf.reshape(tf.add_n(shifted), [tf.shape(frames)[0], (n_frames + n_blocks - 1) * hop])


def _rfft_adjoint_scale(frame_size: int) -> np.ndarray:
    """Per-bin factors mapping an rfft's upstream gradient onto irfft input (see _windowed_rfft)."""
    scale = np.full(frame_size // 2 + 1, frame_size / 2.0, np.float32)
    scale[0] *= 2.0
    if frame_size % 2 == 0:
        scale[-1] *= 2.0  # Nyquist bin
    return scale


def _windowed_rfft(audio: tf.Tensor, frame_size: int, hop: int, padding: str, output: str = "complex"):
    """Spectra of Hann-windowed frames of zero-padded audio, with an exact, cheap gradient.

    Forward: pad per `framing`, frame, multiply by the periodic Hann window, rfft, and
    return the complex spectrum, its magnitude |X| or its power |X|^2 (`output`).

    Backward (replaces TF's generic rfft, framing and complex-abs gradients; ~40% less CPU):
    with h_k = dL/dRe(X_k) + i dL/dIm(X_k) and X_k = sum_n x_n e^{-2 pi i kn/N},
      dL/dx_n = Re sum_k h_k e^{2 pi i kn/N} = (N/2) irfft(h')_n,
    where h' doubles the DC and Nyquist bins (irfft ignores their imaginary parts, as does
    the derivative: those bins are real). h = g X / |X| for magnitudes and 2 g X for power.
    The frame gradients are multiplied by the window and overlap-added onto the samples.

    Args:
      audio: `[batch, n_samples]` float32 with a static number of samples.
      output: 'complex', 'magnitude' or 'power'.

    Returns:
      `[batch, n_frames, frame_size // 2 + 1]`, complex64 or float32.
    """
    n_samples = audio.shape[1]
    n_frames, pad_left, pad_right = framing(n_samples, frame_size, hop, padding)
    used = (n_frames - 1) * hop + frame_size  # padded samples covered by the frames
    window = tf.signal.hann_window(frame_size, periodic=True)
    adjoint_scale = _rfft_adjoint_scale(frame_size)

    @tf.custom_gradient
    def forward(x):
        padded = tf.pad(x, [[0, 0], [pad_left, pad_right]]) if pad_left or pad_right else x
        frames = tf.signal.frame(padded[:, :used], frame_size, hop, pad_end=False)
        spectrum = tf.signal.rfft(frames * window)
        if output == "magnitude":
            result = tf.abs(spectrum)
        elif output == "power":
            result = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        else:
            result = spectrum

        def backward(upstream):
            if output == "magnitude":
                factor = tf.math.divide_no_nan(upstream, result) * adjoint_scale
                adjoint = spectrum * tf.complex(factor, tf.zeros_like(factor))
            elif output == "power":
                factor = upstream * (2.0 * adjoint_scale)
                adjoint = spectrum * tf.complex(factor, tf.zeros_like(factor))
            else:
                adjoint = upstream * tf.constant(adjoint_scale.astype(np.complex64))
            grad_frames = tf.signal.irfft(adjoint, fft_length=[frame_size]) * window
            grad_padded = _overlap_add(grad_frames, hop)  # [batch, used]
            grad = grad_padded[:, pad_left:pad_left + n_samples]
            missing = n_samples - (used - pad_left)  # samples after the last frame ('valid')
            return tf.pad(grad, [[0, 0], [0, missing]]) if missing > 0 else grad

        return result, backward

    return forward(audio)


def _frames_np(audio: np.ndarray, frame_size: int, hop: int, padding: str) -> np.ndarray:
    n_frames, left, right = framing(audio.shape[1], frame_size, hop, padding)
    padded = np.pad(audio, [(0, 0), (left, right)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame_size, axis=1)
    return windows[:, ::hop][:, :n_frames]


# -------------------------------------------------------------------------------- STFT
@_no_autograph
def stft(audio, frame_size: int = 2048, overlap: float = 0.75, pad_end: bool = True) -> tf.Tensor:
    """Short-time Fourier transform with a periodic Hann window.

    Args:
      audio: `[batch, n_samples]` or `[n_samples]`.
      frame_size: window and FFT length, samples.
      overlap: fraction of overlap between frames; hop = frame_size * (1 - overlap).
      pad_end: zero-pad the end so n_frames = ceil(n_samples / hop) (as tf.signal.stft);
        else only whole frames, 1 + (n_samples - frame_size) // hop.

    Returns:
      complex64 `[batch, n_frames, frame_size // 2 + 1]`; bin k is k * sample_rate /
      frame_size Hz. A sine of amplitude A on a bin centre peaks at A * frame_size / 4.
    """
    audio = check_audio(audio)
    frame_size = _check_positive_int(frame_size, "frame_size")
    hop = _hop_from_overlap(frame_size, overlap)
    return _windowed_rfft(audio, frame_size, hop, "same" if pad_end else "valid")


@_no_autograph
@register("spectral_ops")
def compute_mag(audio, size: int = 2048, overlap: float = 0.75, pad_end: bool = True) -> tf.Tensor:
    """STFT magnitude |stft| `[batch, n_frames, size // 2 + 1]` (linear amplitude, see `stft`)."""
    audio = check_audio(audio)
    size = _check_positive_int(size, "size")
    hop = _hop_from_overlap(size, overlap)
    return _windowed_rfft(audio, size, hop, "same" if pad_end else "valid", output="magnitude")


@_no_autograph
@register("spectral_ops")
def compute_logmag(audio, size: int = 2048, overlap: float = 0.75, pad_end: bool = True) -> tf.Tensor:
    """Natural log of the STFT magnitude (floored at 1e-5), `[batch, n_frames, size // 2 + 1]`."""
    return safe_log(compute_mag(audio, size=size, overlap=overlap, pad_end=pad_end))


@_no_autograph
@register("spectral_ops")
def compute_mel(audio, lo_hz: float = 0.0, hi_hz: float = 8000.0, bins: int = 64, fft_size: int = 2048,
                overlap: float = 0.75, pad_end: bool = True, sample_rate: int = 16000) -> tf.Tensor:
    """Mel spectrogram: STFT magnitudes through `bins` triangular HTK-mel filters.

    Filter k rises from mel edge k to edge k+1 and falls to edge k+2, edges equally spaced in
    mel = 1127 ln(1 + f / 700) between lo_hz and hi_hz (<= sample_rate / 2).

    Returns:
      `[batch, n_frames, bins]` linear magnitude per band.
    """
    mag = compute_mag(audio, size=fft_size, overlap=overlap, pad_end=pad_end)
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=_check_positive_int(bins, "bins"), num_spectrogram_bins=mag.shape[-1],
        sample_rate=sample_rate, lower_edge_hertz=lo_hz, upper_edge_hertz=hi_hz)
    return tf.tensordot(mag, matrix, axes=1)


@_no_autograph
@register("spectral_ops")
def compute_logmel(audio, lo_hz: float = 80.0, hi_hz: float = 7600.0, bins: int = 64, fft_size: int = 2048,
                   overlap: float = 0.75, pad_end: bool = True, sample_rate: int = 16000) -> tf.Tensor:
    """Natural log (floored at 1e-5) of `compute_mel`, `[batch, n_frames, bins]`."""
    return safe_log(compute_mel(audio, lo_hz, hi_hz, bins, fft_size, overlap, pad_end, sample_rate))


@_no_autograph
@register("spectral_ops")
def compute_mfcc(audio, lo_hz: float = 20.0, hi_hz: float = 8000.0, fft_size: int = 1024, mel_bins: int = 128,
                 mfcc_bins: int = 13, overlap: float = 0.75, pad_end: bool = True,
                 sample_rate: int = 16000) -> tf.Tensor:
    """Mel-frequency cepstral coefficients `[batch, n_frames, mfcc_bins]`.

    The DCT-II of the log-mel spectrum scaled by 1 / sqrt(2 * mel_bins) (orthonormal for
    coefficients >= 1; coefficient 0 is sqrt(2 / mel_bins) * sum of the log-mels).
    """
    mel_bins = _check_positive_int(mel_bins, "mel_bins")
    mfcc_bins = _check_positive_int(mfcc_bins, "mfcc_bins")
    if mfcc_bins > mel_bins:
        raise ValueError(f"`mfcc_bins` ({mfcc_bins}) must not exceed `mel_bins` ({mel_bins}).")
    logmel = compute_logmel(audio, lo_hz, hi_hz, mel_bins, fft_size, overlap, pad_end, sample_rate)
    return tf.signal.mfccs_from_log_mel_spectrograms(logmel)[..., :mfcc_bins]


# --------------------------------------------------------------------------- loudness
def fft_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequencies (Hz) of the n_fft // 2 + 1 bins of a real FFT, float64."""
    return np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)


def a_weighting(frequencies, min_db: float | None = A_WEIGHTING_MIN_DB) -> np.ndarray:
    """A-weighting in dB (IEC 61672-1) of frequencies in Hz, float64.

    R_A(f) = f4^2 f^4 / ((f^2 + f1^2) sqrt((f^2 + f2^2)(f^2 + f3^2)) (f^2 + f4^2)),
    A(f) = 20 log10 R_A(f) + 2.0, with f1..f4 = 20.6, 107.7, 737.9, 12194 Hz (exact values
    in A_WEIGHTING_POLES_HZ); A(1 kHz) ~ 0 dB, A(100 Hz) ~ -19.1 dB. Values below `min_db`
    (e.g. -inf at 0 Hz) are raised to it unless `min_db` is None.
    """
    f_sq = np.asarray(frequencies, dtype=np.float64) ** 2
    f1, f2, f3, f4 = (p ** 2 for p in A_WEIGHTING_POLES_HZ)
    with np.errstate(divide="ignore"):
        db = A_WEIGHTING_OFFSET_DB + 20.0 * (
            np.log10(f4) + 2.0 * np.log10(f_sq) - np.log10(f_sq + f1) - 0.5 * np.log10(f_sq + f2)
            - 0.5 * np.log10(f_sq + f3) - np.log10(f_sq + f4))
    return db if min_db is None else np.maximum(db, min_db)


def _mean_weights(sample_rate: float, n_fft: int) -> np.ndarray:
    """Per-bin power gains 10^(A/10) divided by the number of bins (a weighted mean), float32."""
    gains = 10.0 ** (a_weighting(fft_frequencies(sample_rate, n_fft)) / 10.0)
    return (gains / gains.size).astype(np.float32)


def _loudness_np(audio, sample_rate, n_fft, hop, range_db, ref_db, padding) -> np.ndarray:
    if isinstance(audio, tf.Tensor):
        if not tf.executing_eagerly():
            raise TypeError("compute_loudness(use_tf=False) needs numpy or eager audio; "
                            "use use_tf=True inside tf.function.")
        audio = audio.numpy()
    array = np.asarray(audio)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"`audio` must be real-valued numbers, got numpy dtype {array.dtype}.")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (1, 2):
        raise ValueError(f"`audio` must be mono [n_samples] or [batch, n_samples], got shape {array.shape}.")
    squeeze = array.ndim == 1
    array = np.atleast_2d(array).astype(np.float32)
    frames = _frames_np(array, n_fft, hop, padding)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = spectrum.real.astype(np.float64) ** 2 + spectrum.imag.astype(np.float64) ** 2
    mean_power = power @ _mean_weights(sample_rate, n_fft).astype(np.float64)
    loudness = 10.0 * np.log10(np.maximum(mean_power, POWER_AMIN)) - ref_db
    loudness = np.maximum(loudness, -range_db).astype(np.float32)
    return loudness[0] if squeeze else loudness


@_no_autograph
@register("spectral_ops")
def compute_loudness(audio, sample_rate: int = 16000, frame_rate: int = 250, n_fft: int = 512,
                     range_db: float = core.LD_RANGE, ref_db: float = 0.0, use_tf: bool = True,
                     padding: str = "center"):
    """A-weighted loudness per frame, dB.

    Frames of `n_fft` samples every sample_rate / frame_rate samples (see the module
    docstring for `padding`) are Hann-windowed; the power spectrum |X_k|^2 of each is
    weighted by 10^(A(f_k) / 10), averaged over the n_fft // 2 + 1 bins, and converted to
    10 log10(power) - ref_db, floored at -range_db. Doubling the amplitude adds 6.02 dB.

    Args:
      audio: `[n_samples]` or `[batch, n_samples]`.
      use_tf: differentiable TF path (works in tf.function); else numpy (same values).

    Returns:
      `[n_frames]` or `[batch, n_frames]` float32 (tensor for use_tf, else numpy).
    """
    n_fft = _check_positive_int(n_fft, "n_fft")
    hop = hop_size(sample_rate, frame_rate)
    if not use_tf:
        return _loudness_np(audio, sample_rate, n_fft, hop, range_db, ref_db, padding)
    audio, squeeze = _batched_audio(audio)
    power = _windowed_rfft(audio, n_fft, hop, padding, output="power")
    mean_power = tf.tensordot(power, tf.constant(_mean_weights(sample_rate, n_fft)), axes=1)
    loudness = power_to_db(mean_power, amin=POWER_AMIN, ref_db=ref_db, range_db=range_db)
    return loudness[0] if squeeze else loudness


# ------------------------------------------------------------------------ power, RMS
def _mean_square(audio, sample_rate, frame_rate, frame_size, padding):
    """Mean of audio^2 over each frame, `[batch, n_frames]`, and whether the input was 1-D."""
    audio, squeeze = _batched_audio(audio)
    frame_size = _check_positive_int(frame_size, "frame_size")
    hop = hop_size(sample_rate, frame_rate)
    n_frames, left, right = framing(audio.shape[1], frame_size, hop, padding)
    squared = tf.pad(tf.square(audio), [[0, 0], [left, right]])
    squared = squared[:, :(n_frames - 1) * hop + frame_size, tf.newaxis]
    mean_square = tf.nn.avg_pool1d(squared, ksize=frame_size, strides=hop, padding="VALID")[:, :, 0]
    return mean_square, squeeze


@_no_autograph
@register("spectral_ops")
def compute_power(audio, sample_rate: int = 16000, frame_rate: int = 250, frame_size: int = 1024,
                  range_db: float = core.LD_RANGE, ref_db: float = 0.0, padding: str = "center") -> tf.Tensor:
    """Frame power in dB: 10 log10(mean(audio^2 over the frame)) - ref_db, floored at -range_db.

    A full-scale sine gives -3.01 dB. Returns `[batch, n_frames]` (`[n_frames]` for 1-D input).
    """
    mean_square, squeeze = _mean_square(audio, sample_rate, frame_rate, frame_size, padding)
    power_db = power_to_db(mean_square, amin=POWER_AMIN, ref_db=ref_db, range_db=range_db)
    return power_db[0] if squeeze else power_db


@_no_autograph
@register("spectral_ops")
def compute_rms_energy(audio, sample_rate: int = 16000, frame_rate: int = 250, frame_size: int = 2048,
                       padding: str = "center") -> tf.Tensor:
    """Root-mean-square amplitude per frame (linear), `[batch, n_frames]` (`[n_frames]` for 1-D).

    A sine of amplitude A gives A / sqrt(2). The gradient is finite at silence.
    """
    mean_square, squeeze = _mean_square(audio, sample_rate, frame_rate, frame_size, padding)
    rms = tf.sqrt(tf.maximum(mean_square, POWER_AMIN))
    return rms[0] if squeeze else rms


# --------------------------------------------------------------------------------- f0
@_no_autograph
@register("spectral_ops")
def compute_f0(audio, sample_rate: int = 16000, frame_rate: int = 250, viterbi: bool = True,
               capacity: str = "full", **kwargs):
    """Fundamental frequency with pretrained CREPE; see `ddsp_models.crepe.compute_f0`.

    Returns:
      (f0_hz, f0_confidence) numpy float32, `[n_frames]` or `[batch, n_frames]`, with
      n_frames = floor(n_samples * frame_rate / sample_rate).
    """
    from ddsp_models import crepe  # heavy (weights); imported on first use.

    return crepe.compute_f0(audio, sample_rate=sample_rate, frame_rate=frame_rate, viterbi=viterbi,
                            capacity=capacity, **kwargs)


@_no_autograph
def compute_power_original_framing(audio, sample_rate: int = 16000, frame_rate: int = 250,
                                   frame_size: int = 1024, padding: str = "center",
                                   range_db: float = core.DB_RANGE, ref_db: float = 0.0) -> tf.Tensor:
    """Frame power in dB framed as the original DDSP frames it (`compute_power` maths).

    With hop = sample_rate / frame_rate: 'center' pads frame_size // 2 zeros at both ends
    (n_samples / hop + 1 frames: 4 s at 16 kHz, 250 Hz -> 1001), 'same' pads the end
    (ceil(n_samples / hop) frames), 'valid' does not pad. The original's TFRecords and its
    `OnlineF0PowerPreprocessor` use these counts. Floored at -range_db (the original's
    default is DB_RANGE = 80 dB). Returns `[batch, n_frames]` (`[n_frames]` for 1-D input).
    """
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {PADDINGS}, got {padding!r}.")
    if padding == "center":
        audio, squeeze = _batched_audio(audio)
        half = _check_positive_int(frame_size, "frame_size") // 2
        power = compute_power(tf.pad(audio, [[0, 0], [half, half]]), sample_rate, frame_rate, frame_size,
                              range_db=range_db, ref_db=ref_db, padding="valid")
        return power[0] if squeeze else power
    return compute_power(audio, sample_rate, frame_rate, frame_size, range_db=range_db, ref_db=ref_db,
                         padding=padding)
