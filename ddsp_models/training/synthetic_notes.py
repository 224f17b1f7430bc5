"""Random synthetic notes with known controls, for training and testing inverse synthesis.

Each note is a harmonic tone (f0 with vibrato, an attack/decay/release amplitude envelope, a
random spectral slope) plus low-level filtered noise. The true controls come back at frame
rate next to the audio, so inverse-synthesis models can be supervised on them:

  audio             [batch, n_samples]
  f0_hz             [batch, n_frames, 1]            Hz
  harm_amp          [batch, n_frames, 1]            overall harmonic amplitude
  harm_dist         [batch, n_frames, n_harmonics]  sums to 1 over harmonics below Nyquist
  sin_amps          [batch, n_frames, n_harmonics]  harm_amp * harm_dist
  sin_freqs         [batch, n_frames, n_harmonics]  Hz, k * f0
  noise_magnitudes  [batch, n_frames, n_noise_bands] linear gains, 0 Hz .. Nyquist

Controls are drawn with numpy from `seed`; the noise is stateless-seeded, so a seed fixes
the whole batch. Rendering uses synths.Harmonic and core.frequency_filter.
"""
import numpy as np
import tensorflow as tf

from ddsp_models import core, synths
from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register

NOISE_WINDOW_SIZE = 65  # FIR length of the noise filters (at most 2 * (n_noise_bands - 1)).


def _check_range(value, name: str, low: float = 0.0) -> tuple:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a (min, max) pair of numbers, got {value!r}.") from None
    if not low <= lo <= hi:
        raise ValueError(f"`{name}` must satisfy {low} <= min <= max, got {value!r}.")
    return lo, hi


def _amplitude_envelope(rng, n_frames: int, frame_rate: float, peak: float) -> np.ndarray:
    """Attack (linear), exponential decay towards a sustain level, linear release; `[n_frames]`."""
    t = np.arange(n_frames) / frame_rate
    duration = n_frames / frame_rate
    attack = rng.uniform(0.01, 0.1) * duration
    release = rng.uniform(0.05, 0.2) * duration
    decay_time = rng.uniform(0.1, 1.0) * duration
    sustain = rng.uniform(0.4, 0.9)
    body = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / decay_time)
    rise = np.clip(t / attack, 0.0, 1.0)
    fall = np.clip((duration - t) / release, 0.0, 1.0)
    return (peak * rise * fall * body).astype(np.float32)


@register("data")
def generate_synthetic_notes(batch_size: int = 4, n_seconds: float = 1.0, sample_rate: int = 16000,
                             frame_rate: int = 250, n_harmonics: int = 20, n_noise_bands: int = 33,
                             midi_range=(45.0, 76.0), amplitude_range=(0.1, 0.5),
                             vibrato_depth_range=(0.0, 0.4), vibrato_rate_range=(3.0, 7.0),
                             spectral_slope_range=(0.5, 2.0), noise_level_range=(0.0, 0.02),
                             seed: int = 0) -> dict:
    """A batch of random harmonic notes and their true frame-rate controls (see module doc).

    Args:
      batch_size: number of notes.
      n_seconds: note length; n_seconds * frame_rate frames of sample_rate / frame_rate samples.
      sample_rate, frame_rate: Hz (sample_rate a multiple of frame_rate).
      n_harmonics: harmonics per note (those at or above Nyquist are silent, amplitude 0).
      n_noise_bands: bands of the noise filter, uniform from 0 Hz to Nyquist.
      midi_range: range of the note's centre pitch, MIDI.
      amplitude_range: range of the envelope peak.
      vibrato_depth_range: vibrato depth, semitones (peak deviation).
      vibrato_rate_range: vibrato rate, Hz.
      spectral_slope_range: harmonic k has relative amplitude ~ k^-slope (times +-30% jitter).
      noise_level_range: peak noise band gain, relative to the note's amplitude.
      seed: fixes controls and noise.

    Returns:
      dict of float32 tensors: audio, f0_hz, harm_amp, harm_dist, sin_amps, sin_freqs,
      noise_magnitudes.
    """
    for name, value in (("batch_size", batch_size), ("sample_rate", sample_rate), ("frame_rate", frame_rate),
                        ("n_harmonics", n_harmonics), ("n_noise_bands", n_noise_bands)):
        positive_int(f"`{name}`", value)
    if sample_rate % frame_rate:
        raise ValueError(f"`sample_rate` ({sample_rate}) must be a multiple of `frame_rate` ({frame_rate}).")
    if n_noise_bands < 2:
        raise ValueError(f"`n_noise_bands` must be at least 2, got {n_noise_bands}.")
    n_frames = int(round(n_seconds * frame_rate))
    if n_frames < 2:
        raise ValueError(f"`n_seconds` must give at least 2 frames at frame_rate {frame_rate}, got {n_seconds!r}.")
    midi_lo, midi_hi = _check_range(midi_range, "midi_range")
    amp_lo, amp_hi = _check_range(amplitude_range, "amplitude_range")
    depth_lo, depth_hi = _check_range(vibrato_depth_range, "vibrato_depth_range")
    rate_lo, rate_hi = _check_range(vibrato_rate_range, "vibrato_rate_range")
    slope_lo, slope_hi = _check_range(spectral_slope_range, "spectral_slope_range")
    noise_lo, noise_hi = _check_range(noise_level_range, "noise_level_range")
    n_samples = n_frames * (sample_rate // frame_rate)

    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / frame_rate
    f0_midi, harm_amp, harm_dist, noise = [], [], [], []
    harmonic_numbers = np.arange(1, n_harmonics + 1)
    band_positions = np.linspace(0.0, 1.0, n_noise_bands)
    for _ in range(batch_size):
        depth, rate = rng.uniform(depth_lo, depth_hi), rng.uniform(rate_lo, rate_hi)
        vibrato = depth * np.sin(2.0 * np.pi * rate * t + rng.uniform(0.0, 2.0 * np.pi))
        f0_midi.append(rng.uniform(midi_lo, midi_hi) + vibrato)
        envelope = _amplitude_envelope(rng, n_frames, frame_rate, rng.uniform(amp_lo, amp_hi))
        harm_amp.append(envelope)
        slope = rng.uniform(slope_lo, slope_hi)
        harm_dist.append(harmonic_numbers ** -slope * rng.uniform(0.7, 1.3, n_harmonics))
        # Noise: a random low-pass tilt, following the note's envelope.
        rolloff = rng.uniform(0.1, 0.6)
        shape = np.exp(-band_positions / rolloff)
        noise.append(rng.uniform(noise_lo, noise_hi) * shape[np.newaxis, :] * envelope[:, np.newaxis])

    f0_hz = core.midi_to_hz(np.stack(f0_midi)[..., np.newaxis])  # [b, t, 1]
    harm_amp = tf.constant(np.stack(harm_amp)[..., np.newaxis], tf.float32)
    harm_dist = np.broadcast_to(np.stack(harm_dist)[:, np.newaxis, :], (batch_size, n_frames, n_harmonics))
    harm_dist = core.normalize_harmonics(harm_dist, f0_hz, sample_rate)
    sin_freqs = core.get_harmonic_frequencies(f0_hz, n_harmonics)
    sin_amps = harm_amp * harm_dist
    noise_magnitudes = tf.constant(np.stack(noise), tf.float32)

    harmonic = synths.Harmonic(n_samples=n_samples, sample_rate=sample_rate, scale_fn=None)
    harmonic_audio = harmonic.get_signal(amplitudes=harm_amp, harmonic_distribution=harm_dist, f0_hz=f0_hz)
    white = tf.random.stateless_uniform([batch_size, n_samples], seed=[int(seed) % (2 ** 31), 0],
                                        minval=-1.0, maxval=1.0)
    window_size = min(NOISE_WINDOW_SIZE, 2 * (n_noise_bands - 1))
    noise_audio = core.frequency_filter(white, noise_magnitudes, window_size=window_size)
    return {"audio": harmonic_audio + noise_audio, "f0_hz": f0_hz, "harm_amp": harm_amp,
            "harm_dist": harm_dist, "sin_amps": sin_amps, "sin_freqs": sin_freqs,
            "noise_magnitudes": noise_magnitudes}


def synthetic_notes_generator(n_batches: int | None = None, seed: int = 0, **kwargs):
    """Yields batches of generate_synthetic_notes(**kwargs), seeds seed, seed + 1, ...

    n_batches: number of batches; None yields forever.
    """
    index = 0
    while n_batches is None or index < n_batches:
        yield generate_synthetic_notes(seed=seed + index, **kwargs)
        index += 1
