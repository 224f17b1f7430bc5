"""Note detection, quantile transforms and autotune for timbre transfer (numpy).

Frame features are numpy arrays `[n_frames]` or `[batch, n_frames]` at one frame rate;
loudness and power in dB, pitch in MIDI note numbers, f0 in Hz.

- `detect_notes`: frames where a note sounds, from loudness and the (smoothed) f0
  confidence: ratio = smooth(conf ** 2) * (ld - min_db) / ((mean ld - min_db) * 0.7 ** 2),
  on where ratio >= 1 (the DDSP timbre-transfer notebook's rule).
- `QuantileTransform`: maps a feature onto [0, 1] by its empirical distribution and back;
  `to_dict` / `from_dict` store it as plain JSON (no pickle).
- `autotune`: moves MIDI pitch toward the nearest semitone by an amount in [0, 1].

The original DDSP's names keep its interfaces on top of these: `QuantileTransformer`
(sklearn-style, `[n, features]` arrays, uniform or normal output), `fit_quantile_transform`
and `compute_dataset_statistics` (a data provider's statistics as the original's notebook
pickles them; `evaluation.compute_dataset_statistics` is this project's JSON version).
"""
from __future__ import annotations

import numpy as np

from ddsp_models.checks import positive_int
from ddsp_models.core import DB_RANGE  # loudness floor: -80 dB


def smooth(x, filter_size: int = 3) -> np.ndarray:
    """Box filter of `filter_size` frames along the last axis ('same' length, zero padded):
    out[t] is the mean of x[t - (filter_size - 1) // 2 .. t + filter_size // 2], the
    original's (TensorFlow 'SAME') alignment for even sizes too."""
    x = np.asarray(x, np.float64)
    size = positive_int("filter_size", filter_size)
    kernel = np.ones(size) / float(size)
    flat = np.pad(x.reshape(-1, x.shape[-1]), [(0, 0), ((size - 1) // 2, size // 2)])
    out = np.stack([np.convolve(row, kernel, mode="valid") for row in flat])
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


# ------------------------------------------------------------- the original's API
from ddsp_models.core import hz_to_midi  # noqa: E402,F401 - the original module's name

_BOUND_EPS = 1e-7  # the original's (sklearn's) bound threshold for the normal output


class QuantileTransformer:
    """The original DDSP's (sklearn-style) quantile transformer over `[n, features]` arrays,
    one `QuantileTransform` per column.

    Args:
      n_quantiles: quantiles fitted (at most the number of samples).
      output_distribution: 'uniform' (values in [0, 1]) or 'normal' (standard normal
        scores, clipped at the 1e-7 / 1 - 1e-7 quantiles).
      subsample: at most this many samples per column are used to fit (a fixed random
        subset).

    Attributes (after `fit`): ``quantiles_`` `[n_quantiles_, features]`, ``references_``
    `[n_quantiles_]` in [0, 1], ``n_quantiles_``.
    """

    def __init__(self, n_quantiles=1000, output_distribution="uniform", subsample=int(1e5)):
        if output_distribution not in ("uniform", "normal"):
            raise ValueError("QuantileTransformer `output_distribution` must be 'uniform' or "
                             f"'normal', got {output_distribution!r}")
        self.n_quantiles, self.subsample = n_quantiles, subsample
        self.output_distribution = output_distribution

    def fit(self, x):
        positive_int("QuantileTransformer `n_quantiles`", self.n_quantiles)
        x = np.asarray(x, np.float64)
        if x.ndim != 2:
            raise ValueError("QuantileTransformer.fit: expected [n_samples, n_features], got "
                             f"{x.shape}")
        self.n_quantiles_ = max(1, min(int(self.n_quantiles), x.shape[0]))
        fitted = [QuantileTransform.fit(col, self.n_quantiles_, int(self.subsample)) for col in x.T]
        self.references_ = fitted[0].references
        self.quantiles_ = np.stack([f.quantiles for f in fitted], axis=1)
        return self

    def _column(self, index):
        return QuantileTransform(self.quantiles_[:, index], self.references_)

    def _transform(self, x, inverse):
        from scipy import stats

        x = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
        for i in range(x.shape[1]):
            column, values = self._column(i), x[:, i].astype(np.float64)
            with np.errstate(invalid="ignore"):
                if inverse:
                    q = stats.norm.cdf(values) if self.output_distribution == "normal" else values
                    out = column.inverse_transform(q)
                    if self.output_distribution == "normal":
                        out[q - _BOUND_EPS < 0] = column.quantiles[0]
                        out[q + _BOUND_EPS > 1] = column.quantiles[-1]
                else:
                    out = column.transform(values)
                    if self.output_distribution == "normal":
                        out[values - _BOUND_EPS < column.quantiles[0]] = 0.0
                        out[values + _BOUND_EPS > column.quantiles[-1]] = 1.0
                        bound = _BOUND_EPS - np.spacing(1)
                        out = np.clip(stats.norm.ppf(out), stats.norm.ppf(bound),
                                      stats.norm.ppf(1 - bound))
            out[np.isnan(values)] = np.nan
            x[:, i] = out
        return x

    def transform(self, x):
        return self._transform(x, inverse=False)

    def inverse_transform(self, x):
        return self._transform(x, inverse=True)

    def fit_transform(self, x):
        return self.fit(x).transform(x)


def fit_quantile_transform(loudness_db, mask_on, inv_quantile=None):
    """A `QuantileTransformer` fitted to the loudness of the `mask_on` frames
    (`[batch, time]` each). With `inv_quantile`, also the loudness remapped through it
    (mask_on frames only): ``(transform, loudness_norm [batch * time, 1])``."""
    loudness_db, mask_on = np.asarray(loudness_db), np.asarray(mask_on, bool)
    transform = QuantileTransformer()
    q = transform.fit_transform(np.ravel(loudness_db[mask_on])[:, np.newaxis])
    if inv_quantile is None:
        return transform
    loudness_norm = np.ravel(loudness_db.copy())[:, np.newaxis]
    loudness_norm[np.ravel(mask_on)] = inv_quantile.inverse_transform(q)
    return transform, loudness_norm


def _range_stats(x, prefix, note_mask=None) -> dict:
    """The original's statistics of `x` `[batch, time]` (over `note_mask` frames)."""
    if note_mask is None:
        mean_max, mean_min, values = np.mean(np.max(x, -1)), np.mean(np.min(x, -1)), x
    else:
        rows = [(row[m].max(), row[m].min()) for row, m in zip(x, note_mask) if m.sum() > 0]
        mean_max, mean_min = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        values = x[note_mask]
    return {f"mean_{prefix}": float(np.mean(values)), f"max_{prefix}": float(np.max(values)),
            f"min_{prefix}": float(np.min(values)), f"mean_max_{prefix}": float(mean_max),
            f"mean_min_{prefix}": float(mean_min), f"std_{prefix}": float(np.std(values))}


def compute_dataset_statistics(data_provider, batch_size=1, power_frame_size=1024,
                               power_frame_rate=50):
    """The original's dataset statistics (what its notebook pickles as
    ``dataset_statistics.pkl``): one pass over `data_provider`, power computed from the
    audio, the last 20 frames of each example dropped, notes by `detect_notes` (all frames of
    an example without any note). Returns ``{mean,max,min,mean_max,mean_min,std}_`` x
    ``{pitch, power, loudness}`` (MIDI, dB, dB; all frames) and the same with ``_note``
    (note frames), and ``quantile_transform`` (a `QuantileTransformer` of note loudness).
    The power frames must match the loudness frames (choose `power_frame_rate`)."""
    from ddsp_models import spectral_ops

    columns = {"loudness": [], "power": [], "f0": [], "conf": []}
    for batch in data_provider.get_batch(batch_size, repeats=1):
        audio = batch["audio_16k"] if "audio_16k" in batch else batch["audio"]
        columns["loudness"].append(np.asarray(batch["loudness_db"]))
        columns["power"].append(np.asarray(spectral_ops.compute_power(
            audio, frame_size=power_frame_size, frame_rate=power_frame_rate)))
        columns["f0"].append(np.asarray(batch["f0_hz"]))
        columns["conf"].append(np.asarray(batch["f0_confidence"]))
    if not columns["f0"]:
        raise ValueError(f"compute_dataset_statistics: {data_provider!r} yielded no batch")
    trim = lambda key: np.vstack(columns[key])[:, :-20]  # noqa: E731
    loudness, power, f0, conf = trim("loudness"), trim("power"), trim("f0"), trim("conf")
    if power.shape != loudness.shape:
        raise ValueError(f"compute_dataset_statistics: power has {power.shape[1] + 20} frames, "
                         f"loudness {loudness.shape[1] + 20}: choose power_frame_rate to match")
    pitch = np.asarray(hz_to_midi(f0))
    mask_on, _ = detect_notes(loudness, conf)
    mask_on = np.logical_or(mask_on, np.logical_not(np.any(mask_on, axis=1, keepdims=True)))
    stats = {}
    for prefix, values in (("pitch", pitch), ("power", power), ("loudness", loudness)):
        stats.update(_range_stats(values, prefix))
    for prefix, values in (("pitch", pitch), ("power", power), ("loudness", loudness)):
        stats.update(_range_stats(values, prefix + "_note", mask_on))
    stats["quantile_transform"] = fit_quantile_transform(loudness, mask_on)
    return stats
