"""Audio -> CREPE frames: input checks, frame counts and centred 1024-sample frames.

Frame ``i`` of audio at ``frame_rate`` Hz is centred on 16 kHz sample
``floor(i * 16000 / frame_rate + 0.5)``, with zero padding at both ends; a clip of
``n_samples`` at ``sample_rate`` has ``floor(n_samples * frame_rate / sample_rate)``
frames.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import tensorflow as tf

from ddsp_models.checks import positive_float
from ddsp_models.crepe.network import FRAME_SIZE, MODEL_SAMPLE_RATE, normalize_frames


def count_frames(n_samples: int, sample_rate: float, frame_rate: float) -> int:
    """Frames of `n_samples` at `sample_rate` Hz: floor(n_samples * frame_rate / sample_rate)."""
    return int(math.floor(n_samples * Fraction(frame_rate) / Fraction(sample_rate)))


def frame_starts(n_frames: int, frame_rate: float) -> np.ndarray:
    """Start sample (at 16 kHz, in the audio padded by FRAME_SIZE/2) of each frame."""
    hop = MODEL_SAMPLE_RATE / float(frame_rate)
    return np.floor(np.arange(n_frames) * hop + 0.5).astype(np.int64)


def frame_audio(audio_16k, n_frames: int, frame_rate: float = 250):
    """Cuts 16 kHz audio into centred 1024-sample frames, normalised per frame.

    Frame i is centred on sample floor(i * 16000 / frame_rate + 0.5) (zero padding at
    the ends).

    Args:
      audio_16k: float32 [batch, n_samples] at 16 kHz.
      n_frames: frames to cut.
      frame_rate: frames per second (Hz).

    Returns:
      float32 [batch, n_frames, 1024], each frame zero-mean and unit-std (frames whose
      std is below 1e-8 are only centred, as in CREPE).
    """
    audio_16k = tf.convert_to_tensor(audio_16k, tf.float32)
    half = FRAME_SIZE // 2
    starts = frame_starts(n_frames, frame_rate)
    needed = int(starts[-1]) + FRAME_SIZE if n_frames else FRAME_SIZE
    n_samples = audio_16k.shape[-1]
    if n_samples is None:
        raise ValueError("frame_audio needs a static number of samples.")
    right = max(needed - half - n_samples, 0)
    padded = tf.pad(audio_16k, [[0, 0], [half, right]])
    hop = MODEL_SAMPLE_RATE / float(frame_rate)
    if hop.is_integer() and n_frames:
        frames = tf.signal.frame(padded[:, : needed], FRAME_SIZE, int(hop), pad_end=False)
        frames = frames[:, :n_frames]
    else:
        index = starts[:, None] + np.arange(FRAME_SIZE)[None, :]
        frames = tf.gather(padded, index, axis=1)
    return normalize_frames(frames)


def frame_windows(audio_16k: np.ndarray, n_frames: int, frame_rate: float):
    """Zero-padded audio as a strided view of all 1024-sample windows, and frame starts.

    Returns (windows [batch, n_positions, 1024] (a view, no copy), starts [n_frames]):
    frame i of item b is windows[b, starts[i]], centred on sample round(i * hop).
    """
    half = FRAME_SIZE // 2
    starts = frame_starts(n_frames, frame_rate)
    needed = int(starts[-1]) + FRAME_SIZE
    batch, n_samples = audio_16k.shape
    padded = np.zeros((batch, max(needed, half + n_samples)), np.float32)
    padded[:, half:half + n_samples] = audio_16k
    return np.lib.stride_tricks.sliding_window_view(padded, FRAME_SIZE, axis=1), starts


def frame_np(audio_16k: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """Raw (unnormalised) centred frames [batch, n_frames, 1024] (numpy copy)."""
    windows, starts = frame_windows(audio_16k, n_frames, frame_rate)
    return windows[:, starts]


def check_audio(audio) -> np.ndarray:
    """`audio` ([n_samples] or [batch, n_samples], numpy or eager tensor) as float32
    numpy; TypeError / ValueError naming what is wrong (integer PCM, rank, empty, NaN)."""
    if isinstance(audio, (str, bytes)):
        raise TypeError(f"audio must be a float array, got {type(audio).__name__}.")
    if isinstance(audio, tf.Tensor):
        if not tf.executing_eagerly():
            raise TypeError(
                "compute_f0 runs eagerly on numpy audio; inside tf.function use "
                "PretrainedCREPE (differentiable) instead."
            )
        audio = audio.numpy()
    array = np.asarray(audio)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"audio must be a float array [n_samples] or [batch, n_samples], got dtype {array.dtype}.")
    if array.dtype.kind in "iu":
        raise TypeError(
            f"audio must be floating point in [-1, 1], got integer dtype {array.dtype}; "
            "convert PCM with audio.astype(np.float32) / 32768."
        )
    if array.ndim not in (1, 2):
        raise ValueError(f"audio must be [n_samples] or [batch, n_samples], got shape {array.shape}.")
    if array.shape[-1] == 0 or array.size == 0:
        raise ValueError(f"audio is empty (shape {array.shape}).")
    if not np.all(np.isfinite(array)):
        raise ValueError("audio contains NaN or Inf.")
    return array.astype(np.float32, copy=False)


def check_rates(sample_rate, frame_rate) -> None:
    """ValueError unless both rates are positive numbers (Hz) and frame_rate <= 16 kHz."""
    for name, value in (("sample_rate", sample_rate), ("frame_rate", frame_rate)):
        positive_float(f"{name} (Hz)", value)
    if frame_rate > MODEL_SAMPLE_RATE:
        raise ValueError(f"frame_rate must be <= {MODEL_SAMPLE_RATE} Hz, got {frame_rate}.")
