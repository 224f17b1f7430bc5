"""Block-by-block synthesis: harmonic oscillators that continue their phase, filtered noise
and convolution reverb that carry their tails, so consecutive blocks of frames give the
audio of one pass over all of them (no clicks or phase jumps at block borders).

Conventions: frame controls are float32 `[n_frames, channels]` (one stream, no batch), at
`hop = sample_rate / frame_rate` samples per frame; frame i covers samples
`[i * hop, (i + 1) * hop)`. Inside frame i a control moves from its value at frame i to
its value at frame i + 1: amplitudes along the rising half Hann window (the `window`
upsampling of `core.upsample_with_windows`), f0 linearly. The last frame holds its value
(`add_endpoint=True`), so rendering a frame needs the next one: a stream lags one frame
behind its input and `flush` renders the last frame.

`harmonic_block` is the stateless TF function (for SavedModel / TFLite export) that
renders `n` frames from `n + 1` frames of controls and a start phase.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ddsp_models import core

TWO_PI = core.TWO_PI


def harmonic_block(f0_hz, harmonic_amplitudes, phase, sample_rate: int, hop: int,
                   float64_phase: bool = True):
    """Renders n frames of harmonic sound from n + 1 frames of controls (TF, stateless).

    Args:
      f0_hz: Hz, `[batch, n + 1, 1]` (frame n is the next block's first frame, or the last
        frame repeated at the end of a stream).
      harmonic_amplitudes: amplitude of each harmonic (overall amplitude times the
        normalised distribution), `[batch, n + 1, n_harmonics]`.
      phase: phase of the fundamental before the block's first sample, radians `[batch, 1]`.
      sample_rate: Hz.
      hop: samples per frame.
      float64_phase: accumulate frame phases in float64 (long blocks); False: each frame's
        increment is wrapped and summed in float32 (exact enough for short blocks; the
        TFLite builtins have no float64 cumsum).
    Works with an unknown number of frames (tf.function with `[batch, None, ...]` specs).

    Returns:
      (audio `[batch, n * hop]`, phase after the block's last sample `[batch, 1]`, in
      [0, 2 pi)). Harmonics at or above Nyquist are silent sample by sample.
    """
    f0_hz = core.tf_float32(f0_hz, "f0_hz")
    amplitudes = core.tf_float32(harmonic_amplitudes, "harmonic_amplitudes")
    phase = core.tf_float32(phase, "phase")
    n_harmonics = amplitudes.shape[-1]
    f0_now, f0_next = f0_hz[:, :-1, :], f0_hz[:, 1:, :]           # [b, n, 1]
    t = tf.constant(np.arange(hop, dtype=np.float32) / hop)
    # f0 at sample t of frame i: f0[i] + (f0[i+1] - f0[i]) t / hop; the phase after sample t
    # (inclusive running sum, as core.angular_cumsum) in closed form within the frame.
    scale = TWO_PI / float(sample_rate)
    within = scale * (f0_now * tf.constant(np.arange(1, hop + 1, dtype=np.float32))
                      + (f0_next - f0_now) * tf.constant(
                          (np.arange(hop) * np.arange(1, hop + 1) / (2.0 * hop)).astype(np.float32)))
    # Phase increment of a whole frame: the within-frame sum at its last sample.
    frame_total = within[:, :, -1]                                    # [b, n]
    # Frame start phases, accumulated and wrapped.
    if float64_phase:
        starts = tf.cumsum(tf.cast(frame_total, tf.float64), axis=1, exclusive=True)
        starts = tf.cast(tf.math.floormod(starts + tf.cast(phase, tf.float64), TWO_PI), tf.float32)
        end = tf.math.floormod(tf.reduce_sum(tf.cast(frame_total, tf.float64), axis=1, keepdims=True)
                               + tf.cast(phase, tf.float64), TWO_PI)
    else:
        wrapped = tf.math.floormod(frame_total, TWO_PI)
        starts = tf.math.floormod(tf.cumsum(wrapped, axis=1, exclusive=True) + phase, TWO_PI)
        end = tf.math.floormod(tf.reduce_sum(wrapped, axis=1, keepdims=True) + phase, TWO_PI)
    sample_phase = starts[:, :, tf.newaxis] + within  # [b, n, hop]
    f0_env = f0_now + (f0_next - f0_now) * t                          # [b, n, hop]
    ratios = tf.range(1.0, n_harmonics + 1.0, dtype=tf.float32)
    audible = ratios < (sample_rate / 2.0) / tf.maximum(f0_env[..., tf.newaxis], 1e-7)
    sines = tf.sin(tf.where(audible, sample_phase[..., tf.newaxis] * ratios, 0.0))  # [b,n,hop,K]
    a_now, a_next = amplitudes[:, :-1, :], amplitudes[:, 1:, :]
    window = core.rising_half_window(hop)  # the `window` upsampling's ramp
    env = a_now[:, :, tf.newaxis, :] + (a_next - a_now)[:, :, tf.newaxis, :] * window[:, tf.newaxis]
    audio = tf.reduce_sum(sines * env, axis=-1)                       # [b, n, hop]
    return tf.reshape(audio, [tf.shape(audio)[0], -1]), tf.cast(end, tf.float32)


class HarmonicStream:
    """Harmonic synthesis of a stream of frames, one frame behind its input.

    ``push(f0_hz [n, 1], harmonic_amplitudes [n, K])`` returns the samples of every frame
    whose successor is now known; ``flush()`` renders the last frame (held). Concatenated,
    the outputs are the audio of the whole stream in one `harmonic_block` call.
    """

    def __init__(self, sample_rate: int, hop: int):
        self.sample_rate, self.hop = int(sample_rate), int(hop)
        self.phase = np.zeros([1, 1], np.float32)
        self._last = None  # (f0 [1, 1], amplitudes [1, K]) of the newest frame

    def push(self, f0_hz, harmonic_amplitudes) -> np.ndarray:
        f0_hz = np.asarray(f0_hz, np.float32).reshape(-1, 1)
        amps = np.asarray(harmonic_amplitudes, np.float32)
        if amps.ndim != 2 or amps.shape[0] != f0_hz.shape[0]:
            raise ValueError(f"harmonic_amplitudes: expected [{f0_hz.shape[0]}, n_harmonics], "
                             f"got {amps.shape}")
        if self._last is not None:
            f0_hz = np.concatenate([self._last[0], f0_hz])
            amps = np.concatenate([self._last[1], amps])
        self._last = (f0_hz[-1:], amps[-1:])
        return self._render(f0_hz, amps)

    def flush(self) -> np.ndarray:
        if self._last is None:
            return np.zeros(0, np.float32)
        f0_hz, amps = self._last
        self._last = None
        return self._render(np.concatenate([f0_hz, f0_hz]), np.concatenate([amps, amps]))

    def _render(self, f0_hz, amps) -> np.ndarray:
        if f0_hz.shape[0] < 2:
            return np.zeros(0, np.float32)
        audio, self.phase = harmonic_block(f0_hz[np.newaxis], amps[np.newaxis], self.phase,
                                           self.sample_rate, self.hop)
        self.phase = self.phase.numpy()
        return audio.numpy()[0]


class OverlapAdd:
    """An output buffer that segments are added into at absolute sample positions.

    ``add(start, x)`` adds x at samples [start, start + len(x)) (parts before sample 0, or
    before what was already taken, are dropped); ``take(until)`` returns the finished
    samples from the last taken one up to `until` and forgets them, so memory holds only
    the pending tail.
    """

    def __init__(self):
        self.offset = 0                      # absolute position of buffer[0]
        self.buffer = np.zeros(0, np.float64)

    def add(self, start: int, x) -> None:
        x = np.asarray(x, np.float64).reshape(-1)
        start = int(start)
        if start < self.offset:
            x = x[self.offset - start:]
            start = self.offset
        if x.size == 0:
            return
        end = start + x.size - self.offset
        if end > self.buffer.size:
            self.buffer = np.concatenate([self.buffer, np.zeros(end - self.buffer.size)])
        self.buffer[start - self.offset:end] += x

    def take(self, until: int) -> np.ndarray:
        n = max(0, int(until) - self.offset)
        if n > self.buffer.size:
            self.buffer = np.concatenate([self.buffer, np.zeros(n - self.buffer.size)])
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.offset += n
        return out.astype(np.float32)


def filtered_noise_block(noise, magnitudes, window_size: int = 0) -> np.ndarray:
    """Full (un-cropped) convolution of each frame's noise block with its filter.

    Args:
      noise: `[n * hop]` uniform noise.
      magnitudes: linear gains `[n, n_bands]` (after the synth's scale_fn).
      window_size: FIR length (`core.frequency_impulse_response`).

    Returns:
      (`[n * hop + ir_size - 1]` samples, ir_size): sample j belongs at output position
      block_start + j - core.default_delay_compensation(ir_size) (the delay `FilteredNoise`
      removes).
    """
    ir = core.frequency_impulse_response(np.asarray(magnitudes, np.float32)[np.newaxis],
                                         window_size)
    full = core.fft_convolve(np.asarray(noise, np.float32)[np.newaxis], ir, padding="valid",
                             delay_compensation=0)
    return full.numpy()[0], int(ir.shape[-1])


def fft_convolve_full(audio, impulse_response) -> np.ndarray:
    """Linear convolution `[len(audio) + len(ir) - 1]` (numpy FFT, float64)."""
    audio = np.asarray(audio, np.float64)
    impulse_response = np.asarray(impulse_response, np.float64)
    n = audio.size + impulse_response.size - 1
    size = core.next_fast_fft_length(n)
    return np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(impulse_response, size), size)[:n]


class ReverbStream:
    """Convolution reverb (dry + wet, wet IR without its first sample, as `effects.Reverb`)
    of a stream of blocks; the tail of each block's convolution carries into the next."""

    def __init__(self, impulse_response, add_dry: bool = True):
        ir = np.asarray(impulse_response, np.float64).reshape(-1).copy()
        ir[0] = 0.0
        self.ir, self.add_dry = ir, bool(add_dry)
        self.buffer = OverlapAdd()
        self.position = 0

    def push(self, dry) -> np.ndarray:
        dry = np.asarray(dry, np.float64).reshape(-1)
        if dry.size:
            self.buffer.add(self.position, fft_convolve_full(dry, self.ir))
            if self.add_dry:
                self.buffer.add(self.position, dry)
        self.position += dry.size
        return self.buffer.take(self.position)


def filtered_noise_frames(noise, magnitudes, hop: int, window_size: int = 0):
    """Filtered noise of any number of frames (TF; unknown lengths allowed), cropped as
    `synths.FilteredNoise` crops it (the centred filters' delay removed).

    Args:
      noise: `[batch, n * hop]` uniform noise.
      magnitudes: linear gains `[batch, n, n_bands]`.
      hop: samples per frame.
      window_size: FIR length (0: 2 * (n_bands - 1)).

    Returns:
      `[batch, n * hop]`.
    """
    ir = core.frequency_impulse_response(core.tf_float32(magnitudes, "magnitudes"), window_size)
    ir_size = int(ir.shape[-1])
    noise = core.tf_float32(noise, "noise")
    blocks = tf.reshape(noise, [tf.shape(noise)[0], -1, hop])
    fft_size = core.next_fast_fft_length(hop + ir_size - 1)
    spectrum = tf.signal.rfft(blocks, [fft_size]) * tf.signal.rfft(ir, [fft_size])
    full = tf.signal.overlap_and_add(tf.signal.irfft(spectrum, [fft_size]), hop)
    n_samples = tf.shape(noise)[1]
    delay = core.default_delay_compensation(ir_size)
    return full[:, delay:delay + n_samples]


def reverb_tf(audio, impulse_response, add_dry: bool = True):
    """`effects.Reverb` with a fixed IR for audio of any length (TF): dry + audio * ir with
    the IR's first sample zeroed, cut to the input length."""
    audio = core.tf_float32(audio, "audio")
    ir = np.asarray(impulse_response, np.float32).reshape(-1).copy()
    ir[0] = 0.0
    n = tf.shape(audio)[1]
    size = tf.cast(2 ** tf.math.ceil(tf.math.log(tf.cast(n + ir.size - 1, tf.float32)) / np.log(2.0)),
                   tf.int32)
    wet = tf.signal.irfft(tf.signal.rfft(audio, [size]) * tf.signal.rfft(tf.constant(ir)[tf.newaxis], [size]),
                          [size])[:, :n]
    return wet + audio if add_dry else wet


def filter_bank_matrix(n_bands: int, window_size: int = 0) -> np.ndarray:
    """`[n_bands, ir_size]`: magnitudes @ matrix = `core.frequency_impulse_response(magnitudes)`
    (it is linear in the magnitudes: row k is the response of band k alone), so the FIRs
    need plain matmuls only."""
    identity = np.eye(n_bands, dtype=np.float32)[np.newaxis]
    with tf.init_scope():  # eager, also while a tf.function traces
        return core.frequency_impulse_response(identity, window_size).numpy()[0]


def filtered_noise_block_tf(noise, magnitudes, hop: int, window_size: int = 0):
    """Filtered noise of a fixed number of frames with TFLite builtin ops only (matmul,
    gather): each frame's `hop` noise samples through its FIR, the filter tails kept inside
    the block (blocks are filtered independently), cropped like `FilteredNoise`.

    Args: noise `[1, n * hop]`; magnitudes linear gains `[1, n, n_bands]` (static n).
    Returns: `[1, n * hop]`.
    """
    magnitudes = core.tf_float32(magnitudes, "magnitudes")
    n, n_bands = magnitudes.shape[1], magnitudes.shape[2]
    matrix = filter_bank_matrix(n_bands, window_size)
    ir_size = matrix.shape[1]
    irs = tf.matmul(magnitudes[0], tf.constant(matrix))            # [n, ir]
    blocks = tf.reshape(core.tf_float32(noise, "noise"), [n, hop])
    padded = tf.pad(blocks, [[0, 0], [ir_size - 1, ir_size - 1]])  # [n, hop + 2 (ir - 1)]
    # Full convolution: out[f, t] = sum_j padded[f, t + ir - 1 - j] ir[f, j].
    index = (np.arange(hop + ir_size - 1)[:, None] + ir_size - 1 - np.arange(ir_size)[None, :])
    taps = tf.gather(padded, tf.constant(index.astype(np.int32)), axis=1)  # [n, L, ir]
    full = tf.reduce_sum(taps * irs[:, tf.newaxis, :], axis=-1)    # [n, hop + ir - 1]
    # Overlap-add the frames (each `hop` later), then drop the filters' centring delay.
    total = (n - 1) * hop + hop + ir_size - 1
    out = tf.zeros([total])
    for f in range(n):
        out = out + tf.pad(full[f], [[f * hop, total - f * hop - (hop + ir_size - 1)]])
    delay = core.default_delay_compensation(ir_size)
    return out[delay:delay + n * hop][tf.newaxis]
