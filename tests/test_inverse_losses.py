"""Specification of ddsp_models.inverse_losses: KDE/harmonic/noise consistency, TWM, harmonic prior."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import inverse_losses

F0 = 220.0
N_HARMONICS = 10
K = np.arange(1, N_HARMONICS + 1, dtype=np.float32)


def harmonic_sinusoids(f0=F0, detune=0.0, n_frames=3):
    """Sinusoids of a harmonic tone (amplitudes 1/k), partial k detuned by a factor 1 + detune * k."""
    freqs = np.tile(f0 * K * (1.0 + detune * K), (1, n_frames, 1)).astype(np.float32)
    amps = np.tile(1.0 / K, (1, n_frames, 1)).astype(np.float32)
    return amps, freqs


# ------------------------------------------------------------------------------ TWM
def test_twm_error_is_lowest_at_true_f0_among_octave_and_fifth_candidates():
    amps, freqs = harmonic_sinusoids()
    candidates = np.array([F0 / 2, F0, 2 * F0, 1.5 * F0], np.float32)[np.newaxis, np.newaxis]
    candidates = np.tile(candidates, (1, 3, 1))
    errors = inverse_losses.InverseTWMLoss().get_errors(candidates, freqs, amps).numpy()
    assert errors.shape == (1, 3, 4)
    assert np.all(np.argmin(errors, axis=-1) == 1)
    assert np.all(errors[..., 1] < errors[..., [0, 2, 3]].min(axis=-1) - 0.5)


def test_twm_ignores_silent_sinusoids():
    amps, freqs = harmonic_sinusoids()
    extra_freqs = np.concatenate([freqs, np.full((1, 3, 1), 1234.0, np.float32)], axis=-1)
    extra_amps = np.concatenate([amps, np.zeros((1, 3, 1), np.float32)], axis=-1)  # silent stray
    candidates = np.tile(np.array([F0 / 2, F0, 2 * F0, 1.5 * F0], np.float32), (1, 3, 1))
    errors = inverse_losses.twm_errors(candidates, extra_freqs, extra_amps).numpy()
    assert np.all(np.argmin(errors, axis=-1) == 1)
    np.testing.assert_allclose(errors, inverse_losses.twm_errors(candidates, freqs, amps).numpy(), rtol=1e-5)


def test_twm_loss_gradient_is_finite_and_points_f0_towards_the_truth():
    amps, freqs = harmonic_sinusoids(n_frames=1)
    loss = inverse_losses.InverseTWMLoss(weight=2.0)
    f0 = tf.Variable([[[F0 * 1.02]]])
    with tf.GradientTape() as tape:
        value = loss(f0, freqs, amps)
    gradient = tape.gradient(value, f0).numpy()
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(gradient))
    assert gradient[0, 0, 0] > 0.0  # descending lowers f0 back towards 220 Hz
    np.testing.assert_allclose(value.numpy(), 2.0 * np.mean(loss.get_errors(f0, freqs, amps).numpy()), rtol=1e-6)


# ------------------------------------------------------------------------------ KDE
def test_kde_consistency_is_zero_for_identical_sets_and_grows_with_detuning():
    loss = inverse_losses.InverseKDEConsistencyLoss()
    amps, freqs = harmonic_sinusoids()
    assert abs(float(loss(amps, freqs, amps, freqs))) < 1e-5
    values = [float(loss(amps, freqs, *harmonic_sinusoids(detune=d))) for d in (0.002, 0.01, 0.03)]
    assert 0.0 < values[0] < values[1] < values[2]
    # Without the self-likelihood it is the plain NLL: -log(weight) of lone, separated components.
    raw = inverse_losses.InverseKDEConsistencyLoss(weight_b_a=0.0, relative=False)
    weights = amps[0, 0] / amps[0, 0].sum()
    np.testing.assert_allclose(float(raw(amps, freqs, amps, freqs)), -np.sum(weights * np.log(weights)), rtol=1e-3)


def test_kde_consistency_compares_harmonic_controls_with_sinusoids_of_other_size():
    """Harmonics (10) against sinusoids (12, two quiet strays): small, larger when strays are loud."""
    loss = inverse_losses.InverseKDEConsistencyLoss(weight_b_a=0.0)
    amps, freqs = harmonic_sinusoids()
    stray_freqs = np.concatenate([freqs, np.full((1, 3, 2), [[[3000.0, 3500.0]]], np.float32)], axis=-1)
    quiet = np.concatenate([amps, np.full((1, 3, 2), 1e-3, np.float32)], axis=-1)
    loud = np.concatenate([amps, np.full((1, 3, 2), 1.0, np.float32)], axis=-1)
    # a->b: harmonics scored under the sinusoids' density; loud strays dilute it.
    small, large = float(loss(amps, freqs, quiet, stray_freqs)), float(loss(amps, freqs, loud, stray_freqs))
    assert 0.0 <= small < 0.01 < large
    assert np.isclose(large, np.log((amps.sum(-1) + 2.0) / amps.sum(-1))[0, 0], rtol=1e-3)


def test_kde_consistency_gradients_are_finite_and_pull_frequencies_together():
    loss = inverse_losses.InverseKDEConsistencyLoss()
    amps, freqs = harmonic_sinusoids(n_frames=1)
    _, detuned = harmonic_sinusoids(detune=0.002, n_frames=1)
    variable = tf.Variable(detuned)
    with tf.GradientTape() as tape:
        value = loss(amps, freqs, amps, variable)
    gradient = tape.gradient(value, variable).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.all(gradient > 0.0)  # detuned sharp: descending lowers them


def test_kde_consistency_takes_the_originals_arguments():
    """weight_a / weight_b / scale_a / scale_b map onto the two directions and their kernel
    widths; the original's mean-amplitude term (default weight 1 with its names) adds
    mean |mean_k amps_a - mean_k amps_b|."""
    amps, freqs = harmonic_sinusoids()
    ours = inverse_losses.InverseKDEConsistencyLoss(weight_a_b=0.3, weight_b_a=0.0, kernel_width_midi=0.2,
                                             relative=False)
    original = inverse_losses.InverseKDEConsistencyLoss(weight_a=0.3, weight_b=0.0, scale_a=0.7, scale_b=0.2,
                                                 weight_mean_amp=0.0, relative=False)  # a under b's density
    detuned = harmonic_sinusoids(detune=0.01)[1]
    assert float(original(amps, freqs, amps, detuned)) == pytest.approx(float(ours(amps, freqs, amps, detuned)))
    level = inverse_losses.InverseKDEConsistencyLoss(weight_a=0.0, weight_b=0.0)  # weight_mean_amp 1 by default
    assert float(level(amps, freqs, 2.0 * amps, freqs)) == pytest.approx(float(np.mean(amps)), rel=1e-5)
    assert float(inverse_losses.InverseKDEConsistencyLoss(weight_a_b=0.0, weight_b_a=0.0)(
        amps, freqs, 2.0 * amps, freqs)) == 0.0  # ours: no level term unless asked


def test_kde_consistency_rejects_mismatched_amplitudes_and_frequencies():
    amps, freqs = harmonic_sinusoids()
    with pytest.raises(ValueError, match="amps_b"):
        inverse_losses.InverseKDEConsistencyLoss()(amps, freqs, amps[..., :4], freqs)


# ------------------------------------------------------------------------------ harmonic, noise
def test_harmonic_consistency_is_zero_for_identical_controls_and_grows_with_f0_mismatch():
    loss = inverse_losses.InverseHarmonicConsistencyLoss()
    amp = np.full((1, 3, 1), 0.3, np.float32)
    dist = np.tile(K / K.sum(), (1, 3, 1)).astype(np.float32)
    f0 = np.full((1, 3, 1), F0, np.float32)
    assert float(loss(amp, amp, dist, dist, f0, f0)) == 0.0
    one_semitone = float(loss(amp, amp, dist, dist, f0 * 2 ** (1 / 12), f0))
    two_semitones = float(loss(amp, amp, dist, dist, f0 * 2 ** (2 / 12), f0))
    np.testing.assert_allclose([one_semitone, two_semitones], [1.0, 2.0], rtol=1e-4)  # L1 in MIDI
    halved = float(loss(amp / 2, amp, dist, dist, f0, f0))
    np.testing.assert_allclose(halved, np.log(2.0), rtol=1e-4)  # L1 of log amplitude


def test_harmonic_consistency_gradients_are_finite():
    loss = inverse_losses.InverseHarmonicConsistencyLoss(loss_type="L2")
    amp = tf.Variable(np.full((1, 3, 1), 0.2, np.float32))
    dist = tf.Variable(np.tile(K / K.sum(), (1, 3, 1)).astype(np.float32))
    f0 = tf.Variable(np.full((1, 3, 1), 230.0, np.float32))
    target_dist = np.tile(1.0 / K / (1.0 / K).sum(), (1, 3, 1)).astype(np.float32)
    with tf.GradientTape() as tape:
        value = loss(amp, np.full((1, 3, 1), 0.3, np.float32), dist, target_dist, f0,
                     np.full((1, 3, 1), F0, np.float32))
    gradients = tape.gradient(value, [amp, dist, f0])
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)
    assert np.all(gradients[0].numpy() < 0.0) and np.all(gradients[2].numpy() > 0.0)


def test_filtered_noise_consistency_is_zero_for_identical_and_grows_with_gain_mismatch():
    loss = inverse_losses.InverseFilteredNoiseConsistencyLoss()
    mags = np.random.default_rng(0).uniform(0.01, 0.1, (2, 4, 9)).astype(np.float32)
    assert float(loss(mags, mags)) == 0.0
    values = [float(loss(mags * g, mags)) for g in (1.5, 3.0, 9.0)]
    np.testing.assert_allclose(values, np.log([1.5, 3.0, 9.0]), rtol=1e-4)
    variable = tf.Variable(mags * 2.0)
    with tf.GradientTape() as tape:
        value = loss(variable, mags)
    gradient = tape.gradient(value, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.all(gradient > 0.0)


# ------------------------------------------------------------------------------ prior
def test_harmonic_distribution_prior_penalises_upper_harmonics():
    prior = inverse_losses.HarmonicDistributionPrior()
    fundamental = np.zeros((1, 2, N_HARMONICS), np.float32)
    fundamental[..., 0] = 1.0
    top = np.zeros((1, 2, N_HARMONICS), np.float32)
    top[..., -1] = 5.0  # unnormalised: the prior normalises
    decaying = np.tile(1.0 / K ** 2, (1, 2, 1)).astype(np.float32)
    flat = np.ones((1, 2, N_HARMONICS), np.float32)
    values = [float(prior(x)) for x in (fundamental, decaying, flat, top)]
    np.testing.assert_allclose([values[0], values[2], values[3]], [0.0, 0.5, 1.0], atol=1e-6)
    assert 0.0 < values[1] < values[2]
    variable = tf.Variable(flat)
    with tf.GradientTape() as tape:
        value = prior(variable)
    gradient = tape.gradient(value, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.all(np.diff(gradient[0, 0]) > 0.0)


def test_losses_work_in_tf_function_and_are_gin_configurable():
    amps, freqs = harmonic_sinusoids()
    candidates = np.full((1, 3, 1), F0, np.float32)

    @tf.function
    def both(a, f, c):
        return (inverse_losses.InverseKDEConsistencyLoss()(a, f, a, f * 1.01),
                inverse_losses.InverseTWMLoss()(c, f, a))

    kde, twm = both(tf.constant(amps), tf.constant(freqs), tf.constant(candidates))
    assert float(kde) > 0.0 and np.isfinite(float(twm))
    with gin.unlock_config():
        gin.parse_config("inverse_losses.InverseKDEConsistencyLoss.kernel_width_midi = 0.25\n"
                         "inverse_losses.InverseTWMLoss.rho = 0.5")
    try:
        assert inverse_losses.InverseKDEConsistencyLoss().kernel_width_midi == 0.25
        assert inverse_losses.InverseTWMLoss().rho == 0.5
    finally:
        gin.clear_config()


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="kernel_width_midi"):
        inverse_losses.InverseKDEConsistencyLoss(kernel_width_midi=0.0)
    with pytest.raises(ValueError, match="n_harmonics"):
        inverse_losses.InverseTWMLoss(n_harmonics=0)
    with pytest.raises(ValueError, match="harm_dist"):
        inverse_losses.HarmonicDistributionPrior()(np.ones((1, 2, 1), np.float32))


# ------------------------------------------------------------------------------ closed forms
def test_twm_errors_match_hand_computed_values_for_the_true_f0_and_its_octave():
    """Peaks at f0, 2 f0, 3 f0 with amplitudes 1, 0.5, 0.25 (A_max = 1), p, q, r, rho defaults."""
    p, q, r, rho = 0.5, 1.4, 0.5, 0.33
    freqs = np.array([[[F0, 2 * F0, 3 * F0]]], np.float32)
    amps = np.array([[[1.0, 0.5, 0.25]]], np.float32)
    errors = inverse_losses.twm_errors(np.array([[[F0, 2 * F0]]], np.float32), freqs, amps).numpy()[0, 0]
    # True f0: partials 1-3 (4 f0 lies above the highest peak) each hit a peak exactly (df = 0):
    # E_pm = E_mp = mean(-r a) = -r (1 + 0.5 + 0.25) / 3.
    np.testing.assert_allclose(errors[0], -r * 1.75 / 3 * (1 + rho), rtol=1e-5)
    # Octave up (2 f0): its only partial below 3.09 f0 hits the 0.5 peak: E_pm = -0.5 r.
    # Peaks -> nearest partial of 2 f0: f0 -> 1st (df f0), 2 f0 -> 1st (0), 3 f0 -> round(1.5) = 2nd
    # (4 f0, df f0): E_mp = mean of df f^-p + a (q df f^-p - r).
    s1, s3 = F0 * F0 ** -p, F0 * (3 * F0) ** -p
    e_mp = (s1 + 1.0 * (q * s1 - r) + 0.5 * (-r) + s3 + 0.25 * (q * s3 - r)) / 3
    np.testing.assert_allclose(errors[1], -0.5 * r + rho * e_mp, rtol=1e-5)
    loss = inverse_losses.InverseTWMLoss(weight=0.1)
    np.testing.assert_allclose(float(loss(np.array([[[F0, 2 * F0]]], np.float32), freqs, amps)),
                               0.1 * np.mean(errors), rtol=1e-6)


@pytest.mark.parametrize("semitones", [0.25, 1.0])
def test_kde_consistency_of_two_lone_detuned_components_is_their_gaussian_log_ratio(semitones):
    width = 0.5
    loss = inverse_losses.InverseKDEConsistencyLoss(kernel_width_midi=width)
    amps = np.ones((1, 1, 1), np.float32)
    a = np.full((1, 1, 1), F0, np.float32)
    b = (a * 2 ** (semitones / 12)).astype(np.float32)
    # Each direction: -log(exp(-d^2 / 2 s^2) + 1e-5) minus its self-term -log(1 + 1e-5).
    one_way = -np.log(np.exp(-0.5 * (semitones / width) ** 2) + 1e-5) + np.log(1.0 + 1e-5)
    np.testing.assert_allclose(float(loss(amps, a, amps, b)), 2.0 * one_way, rtol=1e-4)
    raw = inverse_losses.InverseKDEConsistencyLoss(kernel_width_midi=width, relative=False, weight_b_a=0.5)
    np.testing.assert_allclose(float(raw(amps, a, amps, b)), 1.5 * (one_way - np.log(1.0 + 1e-5)), rtol=1e-4)


@pytest.mark.parametrize("semitones", [-12.0, 5.0, 12.0])
def test_kde_consistency_pulls_a_component_from_an_octave_away(semitones):
    """Far beyond the density floor (2.4 semitones at width 0.5) the loss still grows with the
    distance and its gradient moves the prediction toward the target: a floored density alone
    gives 0 there, so an encoder whose sinusoids or f0 start an octave off never learns."""
    width, slope = 0.5, inverse_losses.KDE_FAR_SLOPE
    loss = inverse_losses.InverseKDEConsistencyLoss(kernel_width_midi=width, weight_b_a=0.0)
    amps = np.ones((1, 1, 1), np.float32)
    target = np.full((1, 1, 1), F0, np.float32)
    predicted = tf.Variable(target * np.float32(2 ** (semitones / 12)))
    with tf.GradientTape() as tape:
        value = loss(amps, predicted, amps, target)
    gradient = float(tape.gradient(value, predicted)[0, 0, 0])
    # Floored Gaussian (-log 1e-5, minus the self-term -log(1 + 1e-5)) + slope per width beyond ~4.8.
    expected = np.log(1e5) + np.log(1.0 + 1e-5) + slope * (abs(semitones) / width - inverse_losses.KDE_FLOOR_DISTANCE)
    np.testing.assert_allclose(float(value), expected, rtol=1e-4)
    # d loss / d Hz = slope / width * d semitones / d Hz = slope / width * 12 / (ln 2 * f).
    f = float(predicted[0, 0, 0])
    np.testing.assert_allclose(gradient, np.sign(semitones) * slope / width * 12.0 / (np.log(2.0) * f), rtol=1e-3)


def test_kde_consistency_weight_log_amp_compares_total_amplitudes_in_nats():
    """The KDE terms see normalised amplitudes only: sinusoids e times too quiet score 0
    without weight_log_amp and weight_log_amp * 1 nat with it."""
    amps, freqs = harmonic_sinusoids(n_frames=2)
    quiet = (amps / np.e).astype(np.float32)
    assert abs(float(inverse_losses.InverseKDEConsistencyLoss()(quiet, freqs, amps, freqs))) < 1e-5
    loss = inverse_losses.InverseKDEConsistencyLoss(weight_log_amp=2.0)
    np.testing.assert_allclose(float(loss(quiet, freqs, amps, freqs)), 2.0, rtol=1e-3)
