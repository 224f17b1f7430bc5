"""PNG plots for runs and samples: loss curves, spectrograms, f0 curves, piano rolls and
sinusoidal tracks (matplotlib, Agg backend).

Nothing here opens a window: figures are drawn on the Agg canvas and saved. The PNG is
`figsize * dpi` pixels (no tight cropping), so callers know its size. Every `path` may
also be a binary file object (e.g. `io.BytesIO`) to get the PNG bytes without a file.
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


def _save_png(fig, path, dpi: int):
    """Writes `fig` as a PNG (parent folders created); returns the path (as a str), or the
    file object when `path` is one."""
    if hasattr(path, "write"):
        fig.savefig(path, dpi=dpi, format="png")
        return path
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


def _array(value, name: str, ndim: int) -> np.ndarray:
    """`value` (numpy or tensor) as float32 with `ndim` dimensions after squeezing a
    trailing channel of 1; ValueError naming `name` otherwise."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    array = np.asarray(value, np.float32)
    if array.ndim == ndim + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty {ndim}-D array, got shape {array.shape}")
    return array


def _hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    """MIDI pitch of f0 in Hz; NaN (a gap in the plotted line) where f0 <= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f0_hz > 0, 69.0 + 12.0 * np.log2(np.maximum(f0_hz, 1e-9) / 440.0), np.nan)


def plot_f0(curves: dict, path, frame_rate: float = 250, title: str | None = None,
            figsize=(8.0, 3.0), dpi: int = 100) -> str:
    """f0 curves on one axis, in MIDI pitch (semitones), against time.

    Args:
      curves: {label: f0 in Hz `[n_frames]`} (numpy or tensors, a trailing channel of 1
        is dropped), plotted in the given order; NaN or f0 <= 0 leaves a gap (unvoiced or
        unconfident frames). Curves may differ in length.
      path: PNG to write (parent folders created) or a binary file object.
      frame_rate: frames per second of every curve.
      title: figure title.
      figsize, dpi: figure size in inches and resolution.

    The y axis spans the plotted pitches +- 2 semitones.

    Returns:
      `path`.
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves: expected a non-empty dict {label: f0_hz [n_frames]}")
    pitches = {label: _hz_to_midi(_array(f0, f"curves[{label!r}]", 1)) for label, f0 in curves.items()}
    finite = np.concatenate([p[np.isfinite(p)] for p in pitches.values()])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    try:
        for label, pitch in pitches.items():
            ax.plot(np.arange(pitch.size) / float(frame_rate), pitch, label=str(label), linewidth=1.2)
        if finite.size:
            ax.set_ylim(np.floor(finite.min()) - 2.0, np.ceil(finite.max()) + 2.0)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("MIDI pitch")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        if title:
            ax.set_title(title)
        path = _save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path


def plot_pianorolls(reference, estimate, path, frame_rate: float = 250, title: str | None = None,
                    threshold: float = 0.0, figsize=(8.0, 3.5), dpi: int = 100) -> str:
    """Ground-truth vs predicted piano roll on one image: reference notes green, predicted
    blue, both (overlap) cyan.

    Args:
      reference, estimate: rolls `[n_frames, 128]` (velocity or activity per MIDI pitch);
        a cell is on when its value > `threshold`. The estimate is cut or zero-padded to
        the reference's frames.
      path: PNG to write (parent folders created) or a binary file object.
      frame_rate: frames per second (x axis in seconds).
      title: figure title.
      figsize, dpi: figure size in inches and resolution.

    The y axis spans the active pitches +- 5 (all 128 when no note is on).

    Returns:
      `path`.
    """
    ref = _array(reference, "reference", 2) > threshold
    est = _array(estimate, "estimate", 2) > threshold
    from ddsp_models.training.features import N_PITCHES

    if ref.shape[1] != N_PITCHES or est.shape[1] != N_PITCHES:
        raise ValueError(f"reference, estimate: expected [n_frames, {N_PITCHES}] rolls, got {ref.shape} "
                         f"and {est.shape}")
    est = np.pad(est[:ref.shape[0]], ((0, max(0, ref.shape[0] - est.shape[0])), (0, 0)))
    image = np.ones(ref.shape[::-1] + (3,), np.float32)  # white background, [pitch, frame, rgb]
    image[ref.T & ~est.T] = (0.0, 0.65, 0.0)
    image[est.T & ~ref.T] = (0.0, 0.0, 1.0)
    image[ref.T & est.T] = (0.0, 0.8, 0.8)
    active = np.flatnonzero(ref.any(axis=0) | est.any(axis=0))
    top = N_PITCHES - 1
    low, high = (max(0, active.min() - 5), min(top, active.max() + 5)) if active.size else (0, top)
    plt = _pyplot()
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    try:
        seconds = ref.shape[0] / float(frame_rate)
        ax.imshow(image, origin="lower", aspect="auto", interpolation="nearest",
                  extent=(0.0, seconds, -0.5, top + 0.5))
        ax.set_ylim(low - 0.5, high + 0.5)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("MIDI pitch")
        ax.legend(handles=[Patch(color=(0.0, 0.65, 0.0), label="ground truth"),
                           Patch(color=(0.0, 0.0, 1.0), label="predicted"),
                           Patch(color=(0.0, 0.8, 0.8), label="both")],
                  loc="upper right", fontsize="small")
        if title:
            ax.set_title(title)
        path = _save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path


def plot_sinusoids_vs_harmonics(audio, sin_freqs, sin_amps, harm_freqs, harm_amps, path,
                                sample_rate: int = 16000, frame_rate: float = 250,
                                title: str | None = None, fft_size: int = 1024,
                                range_db: float = 80.0, max_hz: float | None = None,
                                panel_size=(8.0, 2.5), dpi: int = 100) -> str:
    """Two panels over the same spectrogram of `audio`: the free sinusoids (top) and the
    harmonics (bottom) an InverseSynthesis model fitted to it, each track drawn as dots
    whose opacity is its amplitude relative to the loudest.

    Args:
      audio: the target `[n_samples]`.
      sin_freqs, sin_amps: sinusoid frequencies (Hz) and amplitudes `[n_frames, n_sinusoids]`.
      harm_freqs, harm_amps: harmonic frequencies (Hz) and amplitudes `[n_frames, n_harmonics]`.
      path: PNG to write (parent folders created) or a binary file object.
      sample_rate, frame_rate: Hz and frames per second.
      title: figure title.
      fft_size, range_db: spectrogram STFT size and colour range (dB below the maximum).
      max_hz: top of the frequency axis (None: 1.2 x the highest track drawn, at least
        1 kHz, at most sample_rate / 2).
      panel_size, dpi: inches per panel and resolution (two panels stacked).

    Returns:
      `path`.
    """
    audio = _array(audio, "audio", 1)
    tracks = {}
    for label, freqs, amps in (("sinusoids", sin_freqs, sin_amps), ("harmonics", harm_freqs, harm_amps)):
        f = _array(freqs, f"{label} frequencies", 2)
        a = _array(amps, f"{label} amplitudes", 2)
        if f.shape != a.shape:
            raise ValueError(f"{label}: frequencies {f.shape} and amplitudes {a.shape} differ in shape")
        tracks[label] = (f, a)
    spectrum = _log_magnitude_db(audio, fft_size)
    seconds = audio.size / float(sample_rate)
    if max_hz is None:
        drawn = [f[(a / max(float(a.max()), 1e-12) > 0.02) & (f > 0)] for f, a in tracks.values()]
        highest = max([float(d.max()) for d in drawn if d.size] or [0.0])
        max_hz = min(sample_rate / 2.0, max(1000.0, 1.2 * highest))
    top = float(max_hz)
    vmax = float(spectrum.max())
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(panel_size[0], panel_size[1] * 2), dpi=dpi, squeeze=False,
                             layout="constrained")
    try:
        for ax, (label, (freqs, amps)) in zip(axes[:, 0], tracks.items()):
            ax.imshow(spectrum.T, origin="lower", aspect="auto", cmap="gray_r", vmin=vmax - range_db,
                      vmax=vmax, extent=(0.0, seconds, 0.0, sample_rate / 2.0))
            times = np.repeat(np.arange(freqs.shape[0])[:, None] / float(frame_rate), freqs.shape[1], axis=1)
            alpha = np.clip(amps / max(float(amps.max()), 1e-12), 0.0, 1.0).ravel()
            visible = (freqs.ravel() > 0) & (freqs.ravel() < top) & (alpha > 0.02)
            colors = np.zeros((visible.sum(), 4), np.float32)
            colors[:, :3] = (0.85, 0.1, 0.1) if label == "sinusoids" else (0.1, 0.3, 0.9)
            colors[:, 3] = alpha[visible]
            ax.scatter(times.ravel()[visible], freqs.ravel()[visible], s=2.0, c=colors, linewidths=0)
            ax.set_xlim(0.0, seconds)
            ax.set_ylim(0.0, top)
            ax.set_ylabel("Hz")
            ax.set_title(f"{label} ({freqs.shape[1]})", fontsize="small")
        axes[-1, 0].set_xlabel("time (s)")
        if title:
            fig.suptitle(title)
        path = _save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path
