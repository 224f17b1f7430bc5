"""Specification of ddsp_models.losses: SpectralLoss, ParamLoss, LossGroup, CREPE embedding loss."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import losses

SR = 16000
N_SAMPLES = 8000  # 0.5 s keeps every test fast; all six default FFT sizes still fit.


def sine(freq_hz, n_samples=N_SAMPLES, amplitude=0.5):
    t = np.arange(n_samples) / SR
    return (amplitude * np.sin(2.0 * np.pi * freq_hz * t)).astype(np.float32)[np.newaxis]


def harmonic(f0_hz=220.0, n_samples=N_SAMPLES):
    return sum(sine(k * f0_hz, n_samples, amplitude=0.3 / k) for k in range(1, 6))


def noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


TERMS = {  # each SpectralLoss term alone
    "mag": dict(mag_weight=1.0),
    "logmag": dict(mag_weight=0.0, logmag_weight=1.0),
    "delta_time": dict(mag_weight=0.0, delta_time_weight=1.0),
    "delta_freq": dict(mag_weight=0.0, delta_freq_weight=1.0),
    "cumsum_freq": dict(mag_weight=0.0, cumsum_freq_weight=1.0),
    "loudness": dict(mag_weight=0.0, loudness_weight=1.0),
}
ALL_TERMS = dict(mag_weight=1.0, logmag_weight=1.0, delta_time_weight=1.0, delta_freq_weight=1.0,
                 cumsum_freq_weight=1.0, loudness_weight=1.0)


# ---------------------------------------------------------------------- SpectralLoss
@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_spectral_loss_of_identical_audio_is_zero(loss_type):
    audio = harmonic() + 0.01 * noise((1, N_SAMPLES))
    loss = losses.SpectralLoss(loss_type=loss_type, **ALL_TERMS)
    assert abs(float(loss(audio, audio))) < 1e-5


@pytest.mark.parametrize("term", list(TERMS) + ["L2", "COSINE"])
def test_spectral_loss_grows_with_additive_noise(term):
    kwargs = dict(loss_type=term) if term in ("L2", "COSINE") else TERMS[term]
    loss = losses.SpectralLoss(**kwargs)
    target = harmonic()
    distortion = noise(target.shape, seed=1)
    values = [float(loss(target, target + level * distortion)) for level in (0.001, 0.01, 0.03, 0.1, 0.3)]
    assert values[0] >= 0.0
    assert np.all(np.diff(values) > 0), values


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_spectral_loss_grows_as_a_sine_is_detuned(loss_type):
    loss = losses.SpectralLoss(loss_type=loss_type)
    target = sine(440.0)
    cents = (0, 10, 25, 50, 100, 200, 400, 800, 1600)
    values = [float(loss(target, sine(440.0 * 2 ** (c / 1200)))) for c in cents]
    assert abs(values[0]) < 1e-5
    assert np.all(np.diff(values) > 0), values


def test_cumsum_term_keeps_growing_where_magnitudes_no_longer_overlap():
    """Far from the target, the magnitude loss saturates while the cumulative-frequency term
    keeps measuring how far the partial has moved (like an earth mover's distance)."""
    mag_loss = losses.SpectralLoss()
    cumsum_loss = losses.SpectralLoss(**TERMS["cumsum_freq"])
    target = sine(440.0)
    detuned = [sine(440.0 * 2 ** (c / 1200)) for c in (800, 1600, 2400)]
    mag_values = [float(mag_loss(target, d)) for d in detuned]
    cumsum_values = [float(cumsum_loss(target, d)) for d in detuned]
    assert np.all(np.array(cumsum_values[1:]) / cumsum_values[:-1] > 1.3), cumsum_values
    assert np.all(np.array(mag_values[1:]) / mag_values[:-1] < 1.15), mag_values


@pytest.mark.parametrize("term", list(TERMS))
def test_each_term_alone_gives_finite_nonzero_gradients_in_tf_function(term):
    loss = losses.SpectralLoss(**TERMS[term])
    target = tf.constant(harmonic(220.0, 4000))
    audio = tf.Variable(harmonic(233.0, 4000) + 0.01 * noise((1, 4000), seed=2))

    @tf.function
    def value_and_grad():
        with tf.GradientTape() as tape:
            value = loss(target, audio)
        return value, tape.gradient(value, audio)

    value, grad = value_and_grad()
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    np.testing.assert_allclose(float(value), float(loss(target, audio)), rtol=1e-5)
    # A small step against the gradient lowers the loss.
    step = 1e-3 * np.abs(audio.numpy()).max() / np.abs(grad).max()
    assert float(loss(target, audio - step * grad)) < float(value)


def test_spectral_loss_terms_match_their_definitions():
    """One FFT size, each term against a direct computation with tf.signal.stft."""
    target, audio = harmonic(220.0), harmonic(247.0)
    mag = lambda x: np.abs(tf.signal.stft(x, 256, 64, 256, pad_end=True).numpy())  # noqa: E731
    t, v = mag(target), mag(audio)
    expected = {
        "mag": np.mean(np.abs(t - v)),
        # core.safe_log (the original's): only non-positive magnitudes read as 1e-5.
        "logmag": np.mean(np.abs(np.log(np.where(t <= 0, 1e-5, t)) - np.log(np.where(v <= 0, 1e-5, v)))),
        "delta_time": np.mean(np.abs(np.diff(t, axis=1) - np.diff(v, axis=1))),
        "delta_freq": np.mean(np.abs(np.diff(t, axis=2) - np.diff(v, axis=2))),
        "cumsum_freq": np.mean(np.abs(np.cumsum(t, axis=2) - np.cumsum(v, axis=2))),
    }
    for term, value in expected.items():
        loss = losses.SpectralLoss(fft_sizes=(256,), **TERMS[term])
        np.testing.assert_allclose(float(loss(target, audio)), value, rtol=1e-4)
    l2 = losses.SpectralLoss(fft_sizes=(256,), loss_type="L2")
    np.testing.assert_allclose(float(l2(target, audio)), np.mean((t - v) ** 2), rtol=1e-4)
    # Multi-scale: the sum of the single-scale losses.
    scales = [float(losses.SpectralLoss(fft_sizes=(s,))(target, audio)) for s in (512, 128)]
    np.testing.assert_allclose(float(losses.SpectralLoss(fft_sizes=(512, 128))(target, audio)), sum(scales),
                               rtol=1e-5)


def test_cosine_loss_ignores_gain_and_is_near_one_for_disjoint_spectra():
    loss = losses.SpectralLoss(fft_sizes=(1024,), loss_type="COSINE")
    target = sine(440.0)
    assert abs(float(loss(target, 3.0 * target))) < 1e-5
    assert float(losses.SpectralLoss(fft_sizes=(1024,))(target, 3.0 * target)) > 1.0  # L1 does not
    assert 0.95 < float(loss(target, sine(3000.0))) <= 1.0


def test_per_example_weights_scale_each_example():
    target = np.concatenate([harmonic(220.0), harmonic(220.0)])
    audio = np.concatenate([harmonic(247.0), harmonic(330.0)])
    loss = losses.SpectralLoss(logmag_weight=1.0, loudness_weight=1.0)
    first = float(loss(target[:1], audio[:1]))
    weighted = float(loss(target, audio, weights=np.array([1.0, 0.0], np.float32)))
    np.testing.assert_allclose(weighted, first / 2.0, rtol=1e-4)


def test_get_losses_dict_and_config():
    loss = losses.SpectralLoss(fft_sizes=(512, 256), logmag_weight=1.0, name="multiscale")
    target, audio = harmonic(220.0), harmonic(247.0)
    result = loss.get_losses_dict(target, audio)
    assert list(result) == ["multiscale"] and result["multiscale"].shape == ()
    clone = losses.SpectralLoss.from_config(loss.get_config())
    assert clone.fft_sizes == (512, 256) and clone.logmag_weight == 1.0 and clone.name == "multiscale"
    np.testing.assert_allclose(float(clone(target, audio)), float(result["multiscale"]), rtol=1e-6)


def test_spectral_loss_is_gin_configurable():
    gin.bind_parameter("test_losses/ddsp_models.losses.SpectralLoss.logmag_weight", 2.0)
    with gin.config_scope("test_losses"):
        loss = losses.SpectralLoss()
    assert loss.logmag_weight == 2.0 and loss.mag_weight == 1.0


def test_spectral_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="loss_type.*'L3'"):
        losses.SpectralLoss(loss_type="L3")
    with pytest.raises(ValueError, match="fft_sizes"):
        losses.SpectralLoss(fft_sizes=(1000, 30))
    with pytest.raises(ValueError, match="logmag_weight"):
        losses.SpectralLoss(logmag_weight=-1.0)
    loss = losses.SpectralLoss()
    with pytest.raises(ValueError, match="target_audio.*audio.*same shape"):
        loss(np.zeros((1, 4000), np.float32), np.zeros((1, 3000), np.float32))
    with pytest.raises(ValueError, match="mono"):
        loss(np.zeros((1, 4000, 2), np.float32), np.zeros((1, 4000, 2), np.float32))
    with pytest.raises(TypeError, match="target_audio"):
        loss("audio.wav", np.zeros((1, 4000), np.float32))


# ------------------------------------------------------------------------- ParamLoss
def test_param_loss_values():
    target = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    predicted = np.array([[1.5, 2.0, 1.0], [1.0, -1.0, 0.0]], np.float32)
    np.testing.assert_allclose(float(losses.ParamLoss()(target, predicted)), (0.5 + 2.0 + 1.0 + 1.0) / 6)
    np.testing.assert_allclose(float(losses.ParamLoss(weight=2.0, loss_type="L2")(target, predicted)),
                               2.0 * (0.25 + 4.0 + 1.0 + 1.0) / 6)
    # Weights broadcast as numpy does (the original); lower-rank weights that do not are
    # batch-first: [batch] per example, [batch, n] per element.
    np.testing.assert_allclose(float(losses.ParamLoss()(target, predicted, weights=np.array([1.0, 0.0]))),
                               2.5 / 6, rtol=1e-6)
    per_column = np.array([0.0, 1.0, 1.0], np.float32)  # broadcasts along the last axis
    np.testing.assert_allclose(float(losses.ParamLoss()(target, predicted, weights=per_column)), 3.0 / 6,
                               rtol=1e-6)
    frame_weights = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(
        float(losses.ParamLoss()(target[..., None], predicted[..., None], weights=frame_weights)), 3.0 / 6)
    cosine = losses.ParamLoss(loss_type="cosine")
    np.testing.assert_allclose(float(cosine([[1.0, 0.0]], [[0.0, 2.0]])), 1.0)
    np.testing.assert_allclose(float(cosine([[1.0, 1.0]], [[2.0, 2.0]])), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="loss_type"):
        losses.ParamLoss(loss_type="huber")
    with pytest.raises(ValueError, match="pred.*target"):
        losses.ParamLoss()(np.zeros((2, 3)), np.zeros((2, 4)))


def test_param_loss_in_tf_function_with_gradient():
    loss = losses.ParamLoss(loss_type="L2")
    predicted = tf.Variable([[1.0, 3.0]])

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            value = loss(tf.constant([[0.0, 0.0]]), predicted)
        return value, tape.gradient(value, predicted)

    value, gradient = grad()
    np.testing.assert_allclose(float(value), 5.0)
    np.testing.assert_allclose(gradient.numpy(), [[1.0, 3.0]])  # d/dp mean(p^2) = 2p / 2


# ------------------------------------------------------------------------- LossGroup
def _outputs():
    return {
        "audio": harmonic(220.0),
        "synth": {"audio": harmonic(247.0), "f0_hz": np.full((1, 10, 1), 247.0, np.float32)},
        "f0_hz": np.full((1, 10, 1), 220.0, np.float32),
    }


def test_loss_group_evaluates_every_loss_over_a_nested_dict():
    spectral = losses.SpectralLoss(fft_sizes=(512, 128))
    param = losses.ParamLoss(weight=0.5, name="f0_loss")
    group = losses.LossGroup(dag=[(spectral, ["audio", "synth/audio"]), (param, ["f0_hz", "synth/f0_hz"])])
    outputs = _outputs()
    result = group.get_losses_dict(outputs)
    assert sorted(result) == ["f0_loss", "spectral_loss"]
    np.testing.assert_allclose(float(result["f0_loss"]), 0.5 * 27.0)
    np.testing.assert_allclose(float(result["spectral_loss"]),
                               float(spectral(outputs["audio"], outputs["synth"]["audio"])), rtol=1e-6)
    # Flat 'a/b' keys work too, and the group runs inside tf.function.
    flat = {"audio": outputs["audio"], "synth/audio": outputs["synth"]["audio"], "f0_hz": outputs["f0_hz"],
            "synth/f0_hz": outputs["synth"]["f0_hz"]}
    in_graph = tf.function(group)(tf.nest.map_structure(tf.constant, flat))
    for name in result:
        np.testing.assert_allclose(float(in_graph[name]), float(result[name]), rtol=1e-5)


def test_loss_group_takes_losses_by_name_for_gin():
    group = losses.LossGroup(dag=[("f0", ["f0_hz", "synth/f0_hz"])], f0=losses.ParamLoss(name="f0_l1"))
    np.testing.assert_allclose(float(group(_outputs())["f0_l1"]), 27.0)


def test_loss_group_errors_name_the_key_and_the_loss():
    group = losses.LossGroup(dag=[(losses.SpectralLoss(), ["audio", "synth/audio_wet"])])
    with pytest.raises(ValueError, match="spectral_loss.*synth/audio_wet"):
        group(_outputs())
    with pytest.raises(ValueError, match="distinct names.*param_loss"):
        losses.LossGroup(dag=[(losses.ParamLoss(), ["a", "b"]), (losses.ParamLoss(), ["c", "d"])])
    with pytest.raises(ValueError, match="'missing'"):
        losses.LossGroup(dag=[("missing", ["a", "b"])])
    with pytest.raises(ValueError, match="pair"):
        losses.LossGroup(dag=[(losses.ParamLoss(),)])


# -------------------------------------------------------------- CREPE embedding loss
def test_pretrained_crepe_embedding_loss():
    loss = losses.PretrainedCREPEEmbeddingLoss(model_capacity="tiny")
    n_samples = SR // 4
    target = tf.constant(sine(440.0, n_samples))
    assert abs(float(loss(target, target))) < 1e-7
    values = [float(loss(target, sine(440.0 * 2 ** (c / 1200), n_samples))) for c in (20, 100, 300)]
    assert np.all(np.diff(values) > 0), values
    audio = tf.Variable(sine(466.0, n_samples))
    with tf.GradientTape() as tape:
        value = tf.function(loss)(target, audio)
    grad = tape.gradient(value, audio).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    assert not loss.trainable_weights  # CREPE stays frozen
    assert list(loss.get_losses_dict(target, audio)) == ["pretrained_crepe_embedding_loss"]


@pytest.mark.parametrize("n_fft", [2048, 512])
def test_loudness_term_is_the_mean_absolute_loudness_difference_in_db_at_its_frame_size(n_fft):
    """loudness_weight x mean |loudness(target) - loudness(audio)| (A-weighted dB, frames of
    loudness_n_fft samples; 2048 is the original's, 512 the features' and the metric's)."""
    from ddsp_models import spectral_ops

    target = np.concatenate([harmonic(220.0), 0.5 * harmonic(330.0)])
    audio = np.concatenate([0.25 * harmonic(220.0), harmonic(330.0) + 0.05 * noise((1, N_SAMPLES))])
    loss = losses.SpectralLoss(mag_weight=0.0, loudness_weight=0.5, loudness_n_fft=n_fft)
    expected = 0.5 * np.mean(np.abs(
        spectral_ops.compute_loudness(target, 16000, 250, n_fft=n_fft, use_tf=False)
        - spectral_ops.compute_loudness(audio, 16000, 250, n_fft=n_fft, use_tf=False)))
    assert expected > 1.0  # a 12 dB quieter first example
    np.testing.assert_allclose(float(loss(target, audio)), expected, rtol=1e-4)
    assert losses.SpectralLoss.from_config(loss.get_config()).loudness_n_fft == n_fft


def test_loudness_frame_size_must_be_positive():
    with pytest.raises(ValueError, match="loudness_n_fft"):
        losses.SpectralLoss(loudness_weight=1.0, loudness_n_fft=0)
