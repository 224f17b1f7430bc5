"""InverseSynthesis with the original DDSP's arguments: a sinusoidal encoder giving the
original's raw outputs ('frequencies', 'amplitudes', 'noise_magnitudes' logits) is scaled by
freq_scale_fn and exp_sigmoid, and the original's loss arguments add the losses the original
adds, under its names, with the values the loss objects compute on the quantities the
original hands them; this package's grouped losses of the same roles are then not added."""
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core, inverse_losses, losses
from ddsp_models.training import models
from inverse_fixtures import N_SAMPLES, package_losses, synthetic_notes, tiny_encoders

HOP = 160  # 50 frames of 0.5 s: the synthetic notes' frame rate (no resampling of true controls)
N_SINUSOIDS, DEPTH, N_BANDS = 6, 8, 17


class RawSinusoidalEncoder(keras.layers.Layer):
    """The original's encoder contract: {'audio'} -> raw logits per frame (Dense of frames)."""

    def __init__(self, depth=DEPTH, **kwargs):
        super().__init__(**kwargs)
        self.frequencies = keras.layers.Dense(N_SINUSOIDS * depth, bias_initializer="random_normal")
        self.amplitudes = keras.layers.Dense(N_SINUSOIDS)
        self.noise = keras.layers.Dense(N_BANDS)

    def call(self, features):
        frames = tf.reshape(features["audio"], [-1, N_SAMPLES // HOP, HOP])
        return {"frequencies": self.frequencies(frames), "amplitudes": self.amplitudes(frames) - 2.0,
                "noise_magnitudes": self.noise(frames) - 4.0}


def np_midi(hz):
    return 12.0 * np.log2(np.asarray(hz, np.float64) / 440.0) + 69.0


def np_frequencies_softmax(logits, depth, hz_min, hz_max):
    """Softmax-weighted mean of `depth` bins evenly spaced in MIDI from hz_min to hz_max."""
    logits = np.asarray(logits, np.float64).reshape(*logits.shape[:-1], -1, depth)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    unit = np.sum(p / p.sum(-1, keepdims=True) * np.linspace(0.0, 1.0, depth), -1)
    midi = np_midi(hz_min) + unit * (np_midi(hz_max) - np_midi(hz_min))
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@pytest.fixture(scope="module")
def notes():
    return synthetic_notes(batch_size=1, seed=3)


def test_the_originals_arguments_give_its_losses_and_scaling(notes):
    keras.utils.set_random_seed(0)
    _, harmonic_encoder = tiny_encoders()
    sinusoidal_encoder = RawSinusoidalEncoder()
    spectral = losses.SpectralLoss(fft_sizes=(512, 128), logmag_weight=1.0)
    kde = losses.KDEConsistencyLoss(weight_a=1.0, weight_b=0.3, weight_mean_amp=0.5,
                                    name="kde_consistency_loss")  # not symmetric
    harm_kde = losses.KDEConsistencyLoss(weight_b=0.0, name="kde_h")
    noise_loss = losses.FilteredNoiseConsistencyLoss(weight=2.0, name="filtered_noise_consistency_loss")
    harmonic_loss = losses.HarmonicConsistencyLoss(amp_weight=3.0, dist_weight=4.0)
    twm = losses.TWMLoss(sinusoids_weight=0.7, name="twm_loss")
    prior = inverse_losses.HarmonicDistributionPrior(weight=0.2)
    freq_scale_fn = functools.partial(core.frequencies_softmax, depth=DEPTH, hz_min=100.0, hz_max=2000.0)
    model = models.InverseSynthesis(
        sinusoidal_encoder=sinusoidal_encoder, harmonic_encoder=harmonic_encoder, losses=[spectral],
        sinusoidal_consistency_losses=kde, harmonic_consistency_losses=[harmonic_loss, harm_kde],
        filtered_noise_consistency_loss=noise_loss, twm_loss=twm, harmonic_distribution_prior=prior,
        freq_scale_fn=freq_scale_fn, reverb=False, n_samples=N_SAMPLES, **package_losses())
    outputs, got = model(notes, return_losses=True)
    # Scaling of the raw outputs, as the original: freq_scale_fn and exp_sigmoid.
    raw = {k: v.numpy() for k, v in sinusoidal_encoder({"audio": notes["audio"]}).items()}
    np.testing.assert_allclose(outputs["sin_freqs"], np_frequencies_softmax(raw["frequencies"], DEPTH, 100.0, 2000.0),
                               rtol=1e-4)
    assert outputs["sin_freqs"].shape == (1, N_SAMPLES // HOP, N_SINUSOIDS)
    exp_sigmoid = lambda x: 2.0 * (1.0 / (1.0 + np.exp(-x))) ** np.log(10.0) + 1e-7  # noqa: E731
    np.testing.assert_allclose(outputs["sin_amps"], exp_sigmoid(raw["amplitudes"]), rtol=1e-4)
    np.testing.assert_allclose(outputs["noise_magnitudes"], exp_sigmoid(raw["noise_magnitudes"]), rtol=1e-4)

    o, t = outputs, notes
    expected = {
        "sin_spectral_loss": spectral(t["audio"], o["sin_audio"]),
        "harm_spectral_loss": spectral(t["audio"], o["harm_audio"]),
        "harmonic_distribution_prior": prior(o["harm_dist"]),
        # sinusoids first, then the harmonics (the order matters: weight_a != weight_b)
        "kde_consistency_loss": kde(o["sin_amps"], o["sin_freqs"], o["harm_sin_amps"], o["harm_sin_freqs"]),
        "twm_loss": twm(o["f0_hz"], o["sin_freqs"], o["sin_amps"]),
        "ss_kde_consistency_loss": kde(o["sin_amps"], o["sin_freqs"], t["sin_amps"], t["sin_freqs"]),
        "ss_filtered_noise_consistency_loss": noise_loss(o["noise_magnitudes"], t["noise_magnitudes"]),
        "ss_harm_kde_h": harm_kde(o["harm_amp"], o["f0_hz"], t["harm_amp"], t["f0_hz"]),
    }
    expected.update({f"ss_{k}": v for k, v in harmonic_loss(o["harm_amp"], t["harm_amp"], o["harm_dist"],
                                                             t["harm_dist"], o["f0_hz"], t["f0_hz"]).items()})
    # Exactly the original's losses: this package's grouped ones are replaced by them.
    assert set(got) == set(expected) | {"total_loss"}
    for name, value in expected.items():
        assert float(value) != 0.0, name
        np.testing.assert_allclose(float(got[name]), float(value), rtol=1e-4, err_msg=name)
    reversed_kde = kde(o["harm_sin_amps"], o["harm_sin_freqs"], o["sin_amps"], o["sin_freqs"])
    assert abs(float(reversed_kde) - float(got["kde_consistency_loss"])) > 1e-3
    # Without true controls only the unsupervised losses are added.
    _, plain = model({"audio": notes["audio"]}, return_losses=True)
    assert set(plain) == {"sin_spectral_loss", "harm_spectral_loss", "harmonic_distribution_prior",
                          "kde_consistency_loss", "twm_loss", "total_loss"}


def test_the_originals_defaults(notes):
    """Reverb on, frequencies_softmax with 64 bins per sinusoid (20 - 8000 Hz), no losses."""
    keras.utils.set_random_seed(1)
    model = models.InverseSynthesis(sinusoidal_encoder=RawSinusoidalEncoder(depth=64), n_samples=N_SAMPLES)
    assert model.reverb and model.stop_gradient and model.sample_rate == 16000
    outputs = model({"audio": notes["audio"]})
    raw = model.sinusoidal_encoder({"audio": notes["audio"]})["frequencies"].numpy()
    np.testing.assert_allclose(outputs["sin_freqs"], np_frequencies_softmax(raw, 64, 20.0, 8000.0), rtol=1e-4)
    assert model.harmonic_encoder is None and "harm_audio" not in outputs
    with pytest.raises(ValueError, match="no losses"):
        model({"audio": notes["audio"]}, return_losses=True)
    # Sinusoids only: TWM candidates are the sinusoid frequencies themselves.
    twm = losses.TWMLoss()
    model = models.InverseSynthesis(sinusoidal_encoder=model.sinusoidal_encoder, twm_loss=twm, reverb=False,
                                    n_samples=N_SAMPLES)
    outputs, got = model({"audio": notes["audio"]}, return_losses=True)
    np.testing.assert_allclose(float(got[twm.name]),
                               float(twm(outputs["sin_freqs"], outputs["sin_freqs"], outputs["sin_amps"])), rtol=1e-5)


def test_freq_scale_fn_needs_raw_frequencies(notes):
    sinusoidal_encoder, _ = tiny_encoders()  # returns sin_freqs in Hz already
    model = models.InverseSynthesis(sinusoidal_encoder=sinusoidal_encoder, freq_scale_fn=core.frequencies_softmax,
                                    reverb=False, n_samples=N_SAMPLES)
    with pytest.raises(ValueError, match="freq_scale_fn"):
        model({"audio": notes["audio"]})
    with pytest.raises(TypeError, match="freq_scale_fn"):
        models.InverseSynthesis(sinusoidal_encoder=sinusoidal_encoder, freq_scale_fn=3.0)
