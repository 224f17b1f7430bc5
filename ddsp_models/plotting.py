"""PNG plots for runs and samples: loss curves and spectrograms (matplotlib, Agg backend).

Nothing here opens a window: figures are drawn on the Agg canvas and saved. The PNG is
`figsize * dpi` pixels (no tight cropping), so callers know its size.
"""
from __future__ import annotations

import math
import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path, dpi: int) -> str:
    """Writes `fig` as a PNG (parent folders created); returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def plot_loss_curve(records, path, title: str | None = None, figsize=(8.0, 4.5), dpi: int = 100) -> str:
    """Training losses against step, one line per loss name.

    Args:
      records: dicts `{"step": int, "losses": {name: float}, ...}` (the lines of a training
        run's losses.jsonl, `train_loop.read_loss_log`); a loss missing from a record
        leaves a gap. Non-finite values are skipped.
      path: PNG to write (parent folders created).
      title: figure title.
      figsize, dpi: figure size in inches and resolution (PNG of figsize * dpi pixels).

    The y axis is logarithmic when every plotted value is > 0, else linear.

    Returns:
      `path` (str).
    """
    records = list(records or [])
    if not records:
        raise ValueError("records: expected at least one {'step', 'losses'} record, got none")
    series: dict[str, list[tuple[float, float]]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "step" not in record or not isinstance(record.get("losses"), dict):
            raise ValueError(f"records[{i}]: expected a dict with 'step' and a 'losses' dict, got {record!r}")
        for name, value in record["losses"].items():
            value = float(value)
            if math.isfinite(value):
                series.setdefault(str(name), []).append((float(record["step"]), value))
    if not series:
        raise ValueError("records: no finite loss value to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    try:
        for name in sorted(series):
            points = sorted(series[name])
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name,
                    marker="o" if len(points) == 1 else None)
        if all(v > 0 for points in series.values() for _, v in points):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        if title:
            ax.set_title(title)
        path = _save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path


def _log_magnitude_db(audio: np.ndarray, fft_size: int) -> np.ndarray:
    """20 log10 |STFT| `[n_frames, fft_size // 2 + 1]` (spectral_ops.compute_logmag, 75% overlap)."""
    from ddsp_models import spectral_ops

    logmag = np.asarray(spectral_ops.compute_logmag(audio[None], size=fft_size, overlap=0.75))[0]
    return logmag * (20.0 / np.log(10.0))


def plot_spectrograms(audios: dict, path, sample_rate: int = 16000, title: str | None = None,
                      fft_size: int = 1024, range_db: float = 80.0, f0_hz: dict | None = None,
                      frame_rate: float = 250, panel_size=(8.0, 2.5), dpi: int = 100) -> str:
    """One log-magnitude spectrogram panel per audio, stacked, on one colour scale.

    Args:
      audios: {name: audio `[n_samples]`} (numpy or tensors), plotted in the given order.
      path: PNG to write (parent folders created).
      sample_rate: Hz, for the axes.
      title: figure title.
      fft_size: STFT size (75% overlap, Hann).
      range_db: the colour scale spans [max - range_db, max] dB, max over all panels.
      f0_hz: optional {name: f0 `[n_frames]` at frame_rate} overlaid (white line) on the
        panel of the same name.
      panel_size, dpi: inches per panel (width, height) and resolution; the PNG is
        panel_size[0] * dpi by len(audios) * panel_size[1] * dpi pixels.

    Returns:
      `path` (str).
    """
    if not isinstance(audios, dict) or not audios:
        raise ValueError("audios: expected a non-empty dict {name: 1-D audio}")
    spectra = {}
    for name, audio in audios.items():
        if hasattr(audio, "numpy"):
            audio = audio.numpy()
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"audios[{name!r}]: expected 1-D audio with samples, got shape {audio.shape}")
        spectra[name] = (_log_magnitude_db(audio, fft_size), audio.size / sample_rate)
    for name in (f0_hz or {}):
        if name not in audios:
            raise ValueError(f"f0_hz: key {name!r} is not in audios ({list(audios)})")
    vmax = max(float(s.max()) for s, _ in spectra.values())
    vmin = vmax - float(range_db)
    plt = _pyplot()
    n = len(spectra)
    fig, axes = plt.subplots(n, 1, figsize=(panel_size[0], panel_size[1] * n), dpi=dpi, squeeze=False)
    try:
        image = None
        for ax, (name, (spectrum, seconds)) in zip(axes[:, 0], spectra.items()):
            image = ax.imshow(spectrum.T, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                              extent=(0.0, seconds, 0.0, sample_rate / 2.0))
            if f0_hz and name in f0_hz:
                f0 = np.asarray(f0_hz[name].numpy() if hasattr(f0_hz[name], "numpy") else f0_hz[name],
                                np.float32).reshape(-1)
                ax.plot(np.arange(f0.size) / frame_rate, f0, color="white", linewidth=1.0)
            ax.set_ylim(0.0, sample_rate / 2.0)
            ax.set_title(str(name), fontsize="small")
            ax.set_ylabel("Hz")
        axes[-1, 0].set_xlabel("time (s)")
        fig.colorbar(image, ax=list(axes[:, 0]), label="dB")
        if title:
            fig.suptitle(title)
        path = _save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path
