"""Audio files: one writer (and reader) for the library and the pipeline stages.

`write_wav` stores float audio in [-1, 1] as 16-bit PCM (or another soundfile subtype);
values beyond full scale are clipped with a logged warning.
"""
from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)


def write_wav(path, audio, sample_rate: int = 16000, subtype: str = "PCM_16") -> str:
    """Write `audio` to a WAV file, creating parent folders.

    Args:
      path: output file (str or PathLike).
      audio: float `[n_samples]` mono or `[n_samples, n_channels]` in [-1, 1] (numpy or
        tensor); samples with |x| > 1 are clipped to +-1 and a warning is logged
        (for integer subtypes; "FLOAT" / "DOUBLE" keep the values as they are).
      sample_rate: samples per second (positive int).
      subtype: soundfile subtype, default "PCM_16".

    Returns:
      the path written, as str.
    """
    import soundfile as sf

    if hasattr(audio, "numpy"):
        audio = audio.numpy()
    try:
        audio = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"audio: expected a float array, got {type(audio).__name__}") from error
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise ValueError(f"audio: expected [n_samples] or [n_samples, n_channels] with samples, got {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio: contains NaN or inf (writing {path})")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate: expected a positive integer, got {sample_rate!r}")
    path = os.fspath(path)
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0 and subtype.upper() not in ("FLOAT", "DOUBLE"):
        log.warning("write_wav %s: peak |x| = %.3f > 1, clipping %d samples", path, peak,
                    int(np.sum(np.abs(audio) > 1.0)))
        audio = np.clip(audio, -1.0, 1.0)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    sf.write(path, audio, int(sample_rate), subtype=subtype)
    return path


def read_wav(path) -> tuple[np.ndarray, int]:
    """(audio float32 `[n_samples]` (mono) or `[n_samples, n_channels]`, sample_rate)."""
    import soundfile as sf

    audio, sample_rate = sf.read(os.fspath(path), dtype="float32", always_2d=False)
    return audio, int(sample_rate)
