"""Note detection, quantile transforms and autotune for timbre transfer (numpy).

Frame features are numpy arrays `[n_frames]` or `[batch, n_frames]` at one frame rate;
loudness and power in dB, pitch in MIDI note numbers, f0 in Hz.

- `detect_notes`: frames where a note sounds, from loudness and the (smoothed) f0
  confidence: ratio = smooth(conf ** 2) * (ld - min_db) / ((mean ld - min_db) * 0.7 ** 2),
  on where ratio >= 1 (the DDSP timbre-transfer notebook's rule).
- `QuantileTransform`: maps a feature onto [0, 1] by its empirical distribution and back;
  `to_dict` / `from_dict` store it as plain JSON (no pickle).
- `autotune`: moves MIDI pitch toward the nearest semitone by an amount in [0, 1].
"""
from __future__ import annotations

import numpy as np

from ddsp_models.core import DB_RANGE  # loudness floor: -80 dB


def smooth(x, filter_size: int = 3) -> np.ndarray:
    """Box filter of `filter_size` frames along the last axis ('same' length, zero padded)."""
    x = np.asarray(x, np.float64)
    if int(filter_size) < 1:
        raise ValueError(f"filter_size: must be >= 1, got {filter_size}")
    kernel = np.ones(int(filter_size)) / float(filter_size)
    flat = x.reshape(-1, x.shape[-1])
    out = np.stack([np.convolve(row, kernel, mode="same") for row in flat])
    return out.reshape(x.shape)


def detect_notes(loudness_db, f0_confidence, note_threshold: float = 1.0, exponent: float = 2.0,
                 smoothing: int = 40, f0_confidence_threshold: float = 0.7,
                 min_db: float = -DB_RANGE, mean_db: float | None = None):
    """Frames where a note sounds.

    Args:
      loudness_db: dB, `[..., n_frames]`.
      f0_confidence: CREPE confidence in [0, 1], same shape.
      note_threshold: ratio at or above which a frame is on.
      exponent, smoothing: confidence ** exponent is smoothed over `smoothing` frames.
      f0_confidence_threshold: the confidence a frame at the mean loudness needs.
      min_db: loudness floor, dB.
      mean_db: reference loudness; None: the mean of `loudness_db`.

    Returns:
      (mask_on bool, note_on_ratio float), both shaped like `loudness_db`.
    """
    loudness_db = np.asarray(loudness_db, np.float64)
    f0_confidence = np.asarray(f0_confidence, np.float64)
    if loudness_db.shape != f0_confidence.shape:
        raise ValueError(f"f0_confidence: shape {f0_confidence.shape} differs from "
                         f"loudness_db's {loudness_db.shape}")
    if loudness_db.size == 0:
        return np.zeros(loudness_db.shape, bool), np.zeros(loudness_db.shape)
    mean_db = float(np.mean(loudness_db)) if mean_db is None else float(mean_db)
    db = smooth(f0_confidence ** exponent, smoothing) * (loudness_db - min_db)
    threshold = max((mean_db - min_db) * f0_confidence_threshold ** exponent, 1e-9)
    ratio = db / threshold
    return ratio >= note_threshold, ratio


class QuantileTransform:
    """Empirical-distribution transform of one feature: `transform` maps values onto [0, 1]
    (the fraction of the fitted data below them, interpolated between `n_quantiles`
    quantiles); `inverse_transform` maps [0, 1] back onto the fitted data's values. Fitting
    data A and applying `other.inverse_transform(self.transform(x))` moves x's distribution
    onto B's (the notebook's loudness matching). Values outside the fitted range clip to 0 / 1.
    """

    def __init__(self, quantiles, references):
        self.quantiles = np.asarray(quantiles, np.float64).reshape(-1)
        self.references = np.asarray(references, np.float64).reshape(-1)
        if self.quantiles.size == 0 or self.quantiles.size != self.references.size:
            raise ValueError(f"QuantileTransform: need as many quantiles as references, got "
                             f"{self.quantiles.size} and {self.references.size}")
        if np.any(np.diff(self.quantiles) < 0) or np.any(np.diff(self.references) < 0):
            raise ValueError("QuantileTransform: quantiles and references must be non-decreasing")

    @classmethod
    def fit(cls, values, n_quantiles: int = 1000, max_samples: int = 100_000, seed: int = 0):
        """Fits to the finite values of `values` (a deterministic subsample of at most
        `max_samples`). ValueError when there is no finite value."""
        values = np.asarray(values, np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError("QuantileTransform.fit: no finite value to fit")
        if values.size > max_samples:
            values = np.random.default_rng(seed).choice(values, max_samples, replace=False)
        n = max(1, min(int(n_quantiles), values.size))
        references = np.linspace(0.0, 1.0, n)
        quantiles = np.maximum.accumulate(np.percentile(values, references * 100.0))
        return cls(quantiles, references)

    def transform(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        # Average of interpolating up and down (ties between repeated quantiles).
        up = np.interp(x, self.quantiles, self.references)
        down = -np.interp(-x, -self.quantiles[::-1], -self.references[::-1])
        return np.clip(0.5 * (up + down), 0.0, 1.0)

    def inverse_transform(self, q) -> np.ndarray:
        return np.interp(np.clip(np.asarray(q, np.float64), 0.0, 1.0), self.references,
                         self.quantiles)

    def to_dict(self) -> dict:
        return {"quantiles": [float(v) for v in self.quantiles],
                "references": [float(v) for v in self.references]}

    @classmethod
    def from_dict(cls, data: dict, name: str = "quantile transform"):
        if not isinstance(data, dict) or "quantiles" not in data or "references" not in data:
            raise ValueError(f"{name}: expected a dict with 'quantiles' and 'references'")
        return cls(data["quantiles"], data["references"])


def note_range_statistics(values, mask_on, prefix: str) -> dict:
    """Statistics of a frame feature over note frames, per example and overall:
    ``mean_<p>``, ``min_<p>``, ``max_<p>``, ``std_<p>`` over all on-frames, and
    ``mean_min_<p>`` / ``mean_max_<p>``: the mean over examples (with an on-frame) of each
    example's min / max. None where there is no on-frame."""
    values = np.asarray(values, np.float64)
    mask_on = np.asarray(mask_on, bool)
    values = values.reshape(-1, values.shape[-1])
    mask_on = mask_on.reshape(values.shape)
    mins = [row[m].min() for row, m in zip(values, mask_on) if m.any()]
    maxs = [row[m].max() for row, m in zip(values, mask_on) if m.any()]
    on = values[mask_on]
    if on.size == 0:
        return {f"{k}_{prefix}": None for k in ("mean", "min", "max", "std", "mean_min", "mean_max")}
    return {f"mean_{prefix}": float(on.mean()), f"min_{prefix}": float(on.min()),
            f"max_{prefix}": float(on.max()), f"std_{prefix}": float(on.std()),
            f"mean_min_{prefix}": float(np.mean(mins)), f"mean_max_{prefix}": float(np.mean(maxs))}


def autotune(pitch_midi, amount: float = 1.0, mask_on=None) -> np.ndarray:
    """Moves MIDI pitch toward the nearest semitone: p + amount * (round(p) - p), only on
    `mask_on` frames (all when None). amount 0 leaves the pitch, 1 snaps it."""
    amount = float(amount)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"autotune amount must be in [0, 1], got {amount}")
    pitch = np.asarray(pitch_midi, np.float64)
    tuned = pitch + amount * (np.round(pitch) - pitch)
    if mask_on is not None:
        tuned = np.where(np.asarray(mask_on, bool), tuned, pitch)
    return tuned
