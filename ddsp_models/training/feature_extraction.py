"""Computing the features of one clip: CREPE f0 and confidence, A-weighted loudness, power,
and the note rolls of its notes, laid out as the feature contract
(`ddsp_models.training.features`) says.

Kept apart from the contract because it needs CREPE and TensorFlow; the contract itself
imports only numpy.
"""
from __future__ import annotations

import numpy as np

from ddsp_models.training.features import (
    AUDIO,
    FRAME_RATE,
    INSTRUMENT_ID,
    SAMPLE_RATE,
    UNKNOWN_INSTRUMENT,
    fit_frames,
    midi_frame_features,
    n_frames_of,
)


def compute_clip_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
                          frame_rate: int = FRAME_RATE, crepe_capacity: str = "tiny",
                          crepe_viterbi: bool = True, notes: list[dict] | None = None,
                          instrument_id: int = UNKNOWN_INSTRUMENT) -> dict:
    """All features of one mono clip.

    Args:
      audio: float32 ``[n_samples]`` at `sample_rate` Hz, in [-1, 1].
      sample_rate: audio rate, Hz.
      frame_rate: rate of the frame features, Hz.
      crepe_capacity: CREPE model size (``tiny`` ... ``full``).
      crepe_viterbi: Viterbi-decode the CREPE pitch track.
      notes: clip-relative notes (`midi_frame_features`); when given, the note rolls
        (`MIDI_FEATURES`) are added.
      instrument_id: General MIDI program of the clip, -1 when unknown.

    Returns:
      dict: ``audio`` float32 ``[n_samples]``; ``f0_hz`` (Hz), ``f0_confidence`` ([0, 1]),
      ``loudness_db``, ``power_db`` (dB) float32 ``[n_frames]`` with ``n_frames =
      n_frames_of(n_samples, sample_rate, frame_rate)``; ``instrument_id`` int64 scalar; with
      `notes`, the four float32 ``[n_frames, 128]`` note rolls.
    """
    from ddsp_models import crepe, spectral_ops

    audio = np.asarray(audio, np.float32).reshape(-1)
    n_frames = n_frames_of(len(audio), sample_rate, frame_rate)
    if n_frames < 1:
        raise ValueError(f"audio of {len(audio)} samples is shorter than one frame")
    f0_hz, f0_confidence = crepe.compute_f0(audio, sample_rate=sample_rate, frame_rate=frame_rate,
                                            viterbi=crepe_viterbi, capacity=crepe_capacity)
    loudness = spectral_ops.compute_loudness(audio, sample_rate, frame_rate)
    power = spectral_ops.compute_power(audio, sample_rate, frame_rate)
    features = {
        AUDIO: audio,
        "f0_hz": fit_frames(f0_hz, n_frames, "f0_hz"),
        "f0_confidence": fit_frames(f0_confidence, n_frames, "f0_confidence"),
        "loudness_db": fit_frames(loudness, n_frames, "loudness_db"),
        "power_db": fit_frames(power, n_frames, "power_db"),
        INSTRUMENT_ID: np.int64(instrument_id),
    }
    if notes is not None:
        features.update(midi_frame_features(notes, n_frames, frame_rate))
    return features
