"""Specification of the synthesizers: spectra, phase continuity, noise shaping, graph mode,
gradients and input errors. Defaults are the original DDSP 3.7.0's; `processor(...,
return_outputs_dict=True)` gives {'signal', 'controls'} as there."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core, synths

SR = 16000
RNG = np.random.default_rng(1)


def frames(values, n_frames, batch=1):
    """Constant frame controls `[batch, n_frames, len(values)]`."""
    values = np.asarray(values, np.float32).reshape(1, 1, -1)
    return np.tile(values, [batch, n_frames, 1])


def spectrum(audio):
    """Amplitude spectrum of a 1-D signal of SR samples (1 Hz bins): a sine of amplitude a at
    an integer frequency f gives a at bin f."""
    return np.abs(np.fft.rfft(audio)) * 2.0 / len(audio)


# -------------------------------------------------------------------------------- Harmonic
def test_harmonic_peaks_follow_the_distribution_and_nothing_sounds_above_nyquist():
    f0 = 230.0  # harmonics 1..34 are below 8 kHz, 35..40 above (and would alias off-grid)
    distribution = RNG.uniform(0.2, 1.0, size=40).astype(np.float32)
    # The default float32 running phase (the original's) shifts high harmonics by a fraction
    # of a hertz over a second; the accurate phase keeps them on their 1 Hz bins.
    synth = synths.Harmonic(n_samples=SR, sample_rate=SR, scale_fn=None, use_angular_cumsum=True)
    controls = synth(frames([0.8], 100), frames(distribution, 100), frames([f0], 100),
                     return_outputs_dict=True)
    audible = np.arange(1, 41) * f0 < SR / 2
    expected = np.where(audible, distribution, 0.0) / distribution[audible].sum()
    np.testing.assert_allclose(controls["controls"]["harmonic_distribution"].numpy()[0, 0], expected, rtol=1e-5)

    amplitudes = spectrum(controls["signal"].numpy()[0])
    bins = (np.arange(1, 35) * f0).astype(int)
    np.testing.assert_allclose(amplitudes[bins], 0.8 * expected[audible], rtol=0.02)
    power = amplitudes ** 2
    off_harmonic = np.ones_like(power, bool)
    off_harmonic[bins] = False
    assert power[off_harmonic].sum() < 1e-6 * power.sum()  # no aliased harmonics 35..40


def test_harmonic_without_nyquist_normalisation_still_silences_high_harmonics():
    synth = synths.Harmonic(n_samples=SR, scale_fn=None, normalize_below_nyquist=False, use_angular_cumsum=True)
    controls = synth(frames([1.0], 50), frames([1.0] * 4, 50), frames([3000.0], 50), return_outputs_dict=True)
    np.testing.assert_allclose(controls["controls"]["harmonic_distribution"].numpy()[0, 0], [0.25] * 4, rtol=1e-6)
    amplitudes = spectrum(controls["signal"].numpy()[0])
    np.testing.assert_allclose(amplitudes[[3000, 6000]], [0.25, 0.25], rtol=0.02)
    assert amplitudes[[9000 - 8000, 16000 - 12000]].max() < 1e-3  # would-be aliases at 7 and 4 kHz


def test_harmonic_phase_stays_continuous_through_a_glide():
    n_frames, n_samples = 50, 8000
    f0 = np.geomspace(200.0, 3000.0, n_frames, dtype=np.float32)[np.newaxis, :, np.newaxis]
    synth = synths.Harmonic(n_samples=n_samples, scale_fn=None, use_angular_cumsum=True)
    audio = synth(frames([1.0], n_frames), frames([1.0], n_frames), f0).numpy()[0]
    f0_envelope = core.resample(f0, n_samples).numpy()[0, :, 0].astype(np.float64)
    omega = 2 * np.pi * f0_envelope / SR
    # |sin(a) - sin(b)| <= |a - b|: each step is bounded by the instantaneous frequency.
    assert np.all(np.abs(np.diff(audio)) <= omega[1:] + 1e-4)
    # And the waveform is the float64 phase integral of the envelope (no resets at frames).
    np.testing.assert_allclose(audio, np.sin(np.cumsum(omega)), atol=2e-4)


def test_harmonic_phase_is_accurate_over_four_seconds_with_angular_cumsum():
    """use_angular_cumsum=True keeps the phase exact over 4 s; the default (the original's
    float32 running phase per harmonic) drifts audibly by then."""
    n_samples = 64000
    f0 = np.full([1, 250, 1], 1234.5, np.float32)
    phase = np.cumsum(np.full(n_samples, 2 * np.pi * np.float64(np.float32(1234.5)) / SR))
    reference = 0.5 * np.sin(phase) + 0.5 * np.sin(3 * phase)
    errors = {}
    for use_angular_cumsum in (True, False):
        synth = synths.Harmonic(n_samples=n_samples, scale_fn=None, use_angular_cumsum=use_angular_cumsum)
        audio = synth(frames([1.0], 250), frames([1.0, 0.0, 1.0], 250), f0).numpy()[0]
        errors[use_angular_cumsum] = np.abs(audio - reference).max()
    assert errors[True] < 5e-4
    assert errors[False] > 1e-2


def test_harmonic_scale_fn_and_graph_mode_give_the_same_signal():
    synth = synths.Harmonic(n_samples=1600)
    inputs = (RNG.normal(size=[2, 10, 1]), RNG.normal(size=[2, 10, 8]), RNG.uniform(100, 900, size=[2, 10, 1]))
    inputs = [x.astype(np.float32) for x in inputs]
    eager = synth(*inputs, return_outputs_dict=True)
    np.testing.assert_allclose(eager["controls"]["amplitudes"].numpy(), core.exp_sigmoid(inputs[0]).numpy(),
                               rtol=1e-6)
    graph = tf.function(lambda *a: synth(*a))(*inputs)
    np.testing.assert_allclose(graph.numpy(), eager["signal"].numpy(), atol=1e-5)


def test_harmonic_gradients_are_finite_and_nonzero():
    synth = synths.Harmonic(n_samples=1600)
    amplitudes = tf.Variable(RNG.normal(size=[1, 10, 1]).astype(np.float32))
    distribution = tf.Variable(RNG.normal(size=[1, 10, 6]).astype(np.float32))
    f0 = tf.Variable(np.full([1, 10, 1], 330.0, np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(synth(amplitudes, distribution, f0) * np.sin(np.arange(1600) * 0.13))
    for grad in tape.gradient(loss, [amplitudes, distribution, f0]):
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0


def test_harmonic_rejects_bad_shapes_and_dtypes():
    synth = synths.Harmonic(n_samples=1600)
    good = (frames([0.0], 10), frames([0.0] * 5, 10), frames([220.0], 10))
    with pytest.raises(ValueError, match="harmonic_distribution"):
        synth(good[0], np.zeros([1, 10], np.float32), good[2])
    with pytest.raises(TypeError, match="f0_hz"):
        synth(good[0], good[1], np.array([["a"] * 10]))
    with pytest.raises(ValueError, match="amplitudes"):
        synth(frames([0.0, 0.0], 10), good[1], good[2])
    with pytest.raises(ValueError, match="n_samples"):
        synth(frames([0.0], 7), frames([0.0] * 5, 7), frames([220.0], 7))
    with pytest.raises(ValueError, match="batch"):
        synth(frames([0.0], 10, batch=2), frames([0.0] * 5, 10, batch=3), frames([220.0], 10, batch=2))


def test_harmonic_binds_ddsp_gin_names():
    with gin.unlock_config():
        gin.parse_config("synths.Harmonic.n_samples = 3200\nHarmonic.sample_rate = 8000")
    try:
        synth = synths.Harmonic()
        assert (synth.n_samples, synth.sample_rate) == (3200, 8000)
    finally:
        gin.clear_config()


# --------------------------------------------------------------------------- FilteredNoise
class FixedNoise(synths.FilteredNoise):
    """FilteredNoise with a fixed noise draw, to compare eager and graph values exactly."""

    def make_noise(self, batch_size):
        return tf.constant(np.random.default_rng(5).uniform(-1, 1, [2, self.n_samples]).astype(np.float32))


def low_pass_magnitudes(n_frames, n_bands=65, cutoff_band=16, batch=1):
    """Linear gains: 1 below band `cutoff_band` (cutoff_band / (n_bands - 1) * Nyquist), 0 above."""
    return frames((np.arange(n_bands) < cutoff_band).astype(np.float32), n_frames, batch)


def test_filtered_noise_low_pass_keeps_its_energy_below_the_cutoff():
    noise = synths.FilteredNoise(n_samples=SR, scale_fn=None)
    audio = noise(low_pass_magnitudes(100, cutoff_band=16)).numpy()[0]  # cutoff 2 kHz
    power = np.abs(np.fft.rfft(audio)) ** 2
    assert power[:2000].sum() > 0.95 * power.sum()
    # White noise in [-1, 1] has power 1/3; a quarter of the band passes.
    assert np.mean(audio ** 2) == pytest.approx(0.25 / 3.0, rel=0.15)


def test_filtered_noise_scales_magnitudes_and_runs_in_graph_mode():
    noise = FixedNoise(n_samples=3200)
    raw = RNG.normal(size=[2, 20, 33]).astype(np.float32)
    eager = noise(raw, return_outputs_dict=True)
    np.testing.assert_allclose(eager["controls"]["magnitudes"].numpy(), core.exp_sigmoid(raw - 5.0).numpy(),
                               rtol=1e-6)
    graph = tf.function(lambda m: noise(m))(raw)
    np.testing.assert_allclose(graph.numpy(), eager["signal"].numpy(), atol=1e-6)


def test_filtered_noise_gradients_and_errors():
    noise = synths.FilteredNoise(n_samples=1600)
    magnitudes = tf.Variable(RNG.normal(size=[1, 10, 17]).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(noise(magnitudes) ** 2)
    grad = tape.gradient(loss, magnitudes).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    with pytest.raises(ValueError, match="magnitudes"):
        noise(np.zeros([1, 65], np.float32))
    with pytest.raises(ValueError, match="n_samples"):
        noise(np.zeros([1, 7, 65], np.float32))
    with pytest.raises(TypeError, match="magnitudes"):
        noise(tf.constant([[["x"]]]))


# ------------------------------------------------------------------------------ Sinusoidal
def test_sinusoidal_plays_the_given_frequencies_and_drops_those_above_nyquist():
    # Accurate phases keep 1 kHz on its bin over a second (the default float32 running sum
    # shifts it slightly).
    synth = synths.Sinusoidal(n_samples=SR, amp_scale_fn=None, freq_scale_fn=None, use_angular_cumsum=True)
    outputs = synth(frames([0.5, 0.25, 1.0], 50), frames([440.0, 1000.0, 9000.0], 50), return_outputs_dict=True)
    # Without a freq_scale_fn the controls keep every amplitude (as the original); the
    # oscillator bank silences 9 kHz.
    np.testing.assert_allclose(outputs["controls"]["amplitudes"].numpy()[0, 0], [0.5, 0.25, 1.0])
    scaled = synths.Sinusoidal(n_samples=SR, amp_scale_fn=None, freq_scale_fn=lambda f: f + 0.0)
    controls = scaled.get_controls(frames([0.5, 0.25, 1.0], 50), frames([440.0, 1000.0, 9000.0], 50))
    np.testing.assert_allclose(controls["amplitudes"].numpy()[0, 0], [0.5, 0.25, 0.0])
    amplitudes = spectrum(outputs["signal"].numpy()[0])
    np.testing.assert_allclose(amplitudes[[440, 1000]], [0.5, 0.25], rtol=0.02)
    assert amplitudes[7000] < 1e-3  # alias of 9 kHz


def test_sinusoidal_default_scaling_graph_mode_and_gradients():
    synth = synths.Sinusoidal(n_samples=1600, freq_scale_fn=lambda f: core.frequencies_softmax(f, depth=4))
    amplitudes = tf.Variable(RNG.normal(size=[2, 10, 3]).astype(np.float32))
    frequencies = tf.Variable(RNG.normal(size=[2, 10, 12]).astype(np.float32))
    with tf.GradientTape() as tape:
        audio = synth(amplitudes, frequencies)
        loss = tf.reduce_sum(audio * np.cos(np.arange(1600) * 0.2))
    for grad in tape.gradient(loss, [amplitudes, frequencies]):
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0
    graph = tf.function(lambda a, f: synth(a, f))(amplitudes, frequencies)
    # Graph-mode exp/softmax may differ by an ulp; a 1e-7 relative frequency difference grows
    # to ~5e-4 rad of phase over 1600 samples of up to 8 kHz.
    np.testing.assert_allclose(graph.numpy(), audio.numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="sinusoids"):
        synth(np.zeros([1, 10, 2], np.float32), np.zeros([1, 10, 12], np.float32))


# ------------------------------------------------------------------------------- Wavetable
def test_wavetable_with_a_sine_period_plays_a_sine_at_f0():
    table = np.sin(2 * np.pi * np.arange(256) / 256).astype(np.float32)
    synth = synths.Wavetable(n_samples=SR, scale_fn=None)
    audio = synth(frames([0.7], 50), table[np.newaxis], frames([500.0], 50)).numpy()[0]
    amplitudes = spectrum(audio)
    assert amplitudes[500] == pytest.approx(0.7, rel=0.01)
    assert (amplitudes ** 2).sum() - amplitudes[500] ** 2 < 1e-4


def test_wavetable_graph_mode_gradients_and_errors():
    synth = synths.Wavetable(n_samples=1600)
    amplitudes = tf.Variable(RNG.normal(size=[2, 10, 1]).astype(np.float32))
    tables = tf.Variable(RNG.normal(size=[2, 10, 64]).astype(np.float32))
    f0 = np.full([2, 10, 1], 300.0, np.float32)
    with tf.GradientTape() as tape:
        audio = synth(amplitudes, tables, f0)
        loss = tf.reduce_sum(audio ** 2)
    for grad in tape.gradient(loss, [amplitudes, tables]):
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0
    graph = tf.function(lambda a, w, f: synth(a, w, f))(amplitudes, tables, f0)
    np.testing.assert_allclose(graph.numpy(), audio.numpy(), atol=1e-4)  # |audio| ~ 2
    with pytest.raises(ValueError, match="wavetables"):
        synth(amplitudes, np.zeros([2, 10, 64, 1], np.float32), f0)
    with pytest.raises(TypeError, match="wavetables"):
        synth(amplitudes, np.array([["a", "b"]] * 2), f0)
