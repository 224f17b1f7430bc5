"""Specification of ddsp_models.training.synthetic_notes: random notes with their true controls."""
import numpy as np
import pytest

from ddsp_models import core
from ddsp_models.training.synthetic_notes import generate_synthetic_notes, synthetic_notes_generator

SR = 16000
FRAME_RATE = 250
HOP = SR // FRAME_RATE
TINY = dict(batch_size=2, n_seconds=0.5, n_harmonics=12, n_noise_bands=17)


def test_shapes_and_controls_are_consistent():
    notes = generate_synthetic_notes(seed=3, **TINY)
    n_frames = 125
    expected = {"audio": (2, 8000), "f0_hz": (2, n_frames, 1), "harm_amp": (2, n_frames, 1),
                "harm_dist": (2, n_frames, 12), "sin_amps": (2, n_frames, 12), "sin_freqs": (2, n_frames, 12),
                "noise_magnitudes": (2, n_frames, 17)}
    assert {key: tuple(value.shape) for key, value in notes.items()} == expected
    f0, dist = notes["f0_hz"].numpy(), notes["harm_dist"].numpy()
    np.testing.assert_allclose(notes["sin_freqs"].numpy(), f0 * np.arange(1, 13), rtol=1e-6)
    np.testing.assert_allclose(notes["sin_amps"].numpy(), notes["harm_amp"].numpy() * dist, rtol=1e-6)
    below_nyquist = notes["sin_freqs"].numpy() < SR / 2
    np.testing.assert_allclose(np.sum(dist * below_nyquist, axis=-1), 1.0, rtol=1e-5)
    assert np.all(dist[~below_nyquist] == 0.0)
    midi = core.hz_to_midi(f0).numpy()
    assert midi.min() >= 45.0 - 0.4 - 1e-3 and midi.max() <= 76.0 + 0.4 + 1e-3
    amp = notes["harm_amp"].numpy()[..., 0]
    assert np.all(amp >= 0.0) and amp[:, 0].max() < 0.05 * amp.max()  # envelopes start from silence
    assert np.all(amp.max(axis=1) >= 0.1 * 0.4)  # and reach a peak within amplitude_range (x sustain)


def test_same_seed_same_notes_other_seed_other_notes():
    first, again = generate_synthetic_notes(seed=7, **TINY), generate_synthetic_notes(seed=7, **TINY)
    other = generate_synthetic_notes(seed=8, **TINY)
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())
    assert not np.allclose(first["f0_hz"].numpy(), other["f0_hz"].numpy())
    batches = list(synthetic_notes_generator(n_batches=2, seed=7, **TINY))
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[0]["audio"].numpy(), first["audio"].numpy())
    np.testing.assert_array_equal(batches[1]["audio"].numpy(), other["audio"].numpy())


def test_spectral_peaks_lie_at_the_recorded_sinusoid_frequencies_and_amplitudes():
    notes = generate_synthetic_notes(seed=1, vibrato_depth_range=(0.0, 0.0), noise_level_range=(0.0, 0.001), **TINY)
    start, size, n_fft = 2000, 4096, 32768
    window = np.hanning(size)
    centre_frame = (start + size // 2) // HOP
    frames = slice(start // HOP, (start + size) // HOP)
    checked = 0
    for b in range(2):
        spectrum = np.abs(np.fft.rfft(notes["audio"].numpy()[b, start:start + size] * window, n_fft))
        spectrum *= 2.0 / window.sum()  # a sinusoid of amplitude A peaks at A
        bin_hz = SR / n_fft
        freqs = notes["sin_freqs"].numpy()[b, centre_frame]
        amps = notes["sin_amps"].numpy()[b, frames].mean(axis=0)
        f0 = freqs[0]
        for freq, amp in zip(freqs, amps):
            if amp < 0.05 * amps.max() or freq > 0.45 * SR:
                continue
            lo, hi = int((freq - f0 / 3) / bin_hz), int((freq + f0 / 3) / bin_hz)
            peak = lo + np.argmax(spectrum[lo:hi])
            assert abs(peak * bin_hz - freq) < 2 * bin_hz
            np.testing.assert_allclose(spectrum[peak], amp, rtol=0.1)
            checked += 1
    assert checked >= 4


def autocorrelation_f0(segment, sr=SR, f_min=60.0, f_max=1000.0):
    """f0 of a periodic segment: the lag of the highest normalised autocorrelation peak."""
    segment = segment - segment.mean()
    n = len(segment)
    lags = np.arange(int(sr / f_max), int(sr / f_min))
    scores = np.array([np.dot(segment[:n - lag], segment[lag:]) / (n - lag) for lag in lags])
    best = np.argmax(scores)
    # The shortest lag scoring within 10% of the best is the period (not a multiple of it).
    first = np.flatnonzero(scores >= 0.9 * scores[best])
    candidates = first[(first == 0) | np.r_[True, np.diff(first) > 1]]
    index = candidates[0]
    while index + 1 < len(scores) and scores[index + 1] > scores[index]:
        index += 1
    if 0 < index < len(scores) - 1:  # parabolic interpolation
        a, b, c = scores[index - 1:index + 2]
        offset = 0.5 * (a - c) / (a - 2 * b + c)
    else:
        offset = 0.0
    return sr / (lags[index] + offset)


def test_audio_f0_matches_the_recorded_f0_through_the_vibrato():
    notes = generate_synthetic_notes(seed=2, vibrato_depth_range=(0.3, 0.4), **TINY)
    audio, f0 = notes["audio"].numpy(), notes["f0_hz"].numpy()[..., 0]
    errors = []
    for b in range(2):
        for frame in range(20, 110, 10):  # inside the envelope
            centre = frame * HOP
            estimate = autocorrelation_f0(audio[b, centre - 320:centre + 320])
            errors.append(abs(estimate / f0[b, frame] - 1.0))
    vibrato_span = f0.max(axis=1) / f0.min(axis=1) - 1.0
    assert np.all(vibrato_span > 0.02)  # the vibrato is really there
    assert np.median(errors) < 0.004 and max(errors) < 0.01


def test_noise_follows_the_recorded_noise_magnitudes():
    controls = dict(vibrato_depth_range=(0.0, 0.0), noise_level_range=(0.05, 0.05), **TINY)
    noisy = generate_synthetic_notes(seed=4, **controls)
    clean = generate_synthetic_notes(seed=4, **dict(controls, noise_level_range=(0.0, 0.0)))
    residual = noisy["audio"].numpy() - clean["audio"].numpy()
    gains = noisy["noise_magnitudes"].numpy()
    # Uniform noise in [-1, 1] has variance 1/3; a filter with gains g(f) scales it by mean g^2.
    expected_variance = np.mean(gains ** 2, axis=(1, 2)) / 3.0
    np.testing.assert_allclose(np.mean(residual ** 2, axis=1), expected_variance, rtol=0.3)
    sounding = gains[:, :, 0] > 0.0  # frames inside the envelope
    assert np.all(gains[:, :, 0][sounding] > gains[:, :, -1][sounding])  # low-pass tilt


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="batch_size"):
        generate_synthetic_notes(batch_size=0)
    with pytest.raises(ValueError, match="midi_range"):
        generate_synthetic_notes(midi_range=(80.0, 40.0))
    with pytest.raises(ValueError, match="frame_rate"):
        generate_synthetic_notes(frame_rate=300)


def test_true_controls_are_self_consistent_under_the_inverse_losses():
    """TWM finds the recorded f0 from the recorded sinusoids; harmonics and sinusoids agree."""
    from ddsp_models import inverse_losses

    notes = generate_synthetic_notes(seed=5, **TINY)
    f0 = notes["f0_hz"].numpy()
    candidates = f0 * np.array([0.5, 1.0, 2.0, 1.5], np.float32)
    errors = inverse_losses.InverseTWMLoss().get_errors(candidates, notes["sin_freqs"], notes["sin_amps"]).numpy()
    sounding = notes["harm_amp"].numpy()[..., 0] > 0.01
    assert sounding.sum() > 100
    assert np.all(np.argmin(errors, axis=-1)[sounding] == 1)
    harmonic_freqs = core.get_harmonic_frequencies(notes["f0_hz"], 12)
    harmonic_amps = notes["harm_amp"] * notes["harm_dist"]
    kde = inverse_losses.InverseKDEConsistencyLoss()(harmonic_amps, harmonic_freqs, notes["sin_amps"],
                                                     notes["sin_freqs"])
    assert abs(float(kde)) < 1e-5


def test_the_pipelines_synthetic_notes_cover_the_built_in_datasets_pitch_range():
    """The inverse run's harmonic encoder learns f0 only from synthetic notes: their
    midi_range (the zipped dataset's gin) must cover every built-in instrument's range
    (45 - 76 left the flute's and violin's upper notes, half the test frames, outside)."""
    import gin

    from ddsp_models.training.config import parse_gin
    from ddsp_models.training.melodies import INSTRUMENTS
    from ddsp_models.training.params import load_params

    parse_gin(["papers/icml2020/finetune_dataset.gin"])
    low, high = gin.query_parameter("generate_synthetic_notes.midi_range")
    for name in load_params(None)["data"]["instruments"]:
        spec = INSTRUMENTS[name]
        assert low <= spec.low and spec.high <= high, (name, spec.low, spec.high, (low, high))
