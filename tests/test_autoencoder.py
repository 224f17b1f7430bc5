"""Autoencoder: every packaged Autoencoder config (ddsp_models/training/gin/) builds and
resynthesises its input's shape."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import seeding
from ddsp_models.training import models
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SECONDS = 0.256  # 64 frames at 250 Hz; 4096 samples at 16 kHz
AUTOENCODER_CONFIGS = [
    "models/ae.gin",
    "models/solo_instrument.gin",
    "papers/iclr2020/nsynth_ae.gin",
    "papers/iclr2020/solo_instrument.gin",
    "papers/iclr2020/tiny_instrument.gin",
]


def test_the_list_covers_every_autoencoder_config_in_gin():
    import glob
    import os

    import gin

    from ddsp_models.training.config import GIN_DIR, parse_gin

    found = []
    paths = [p for folder in ("models", "papers")
             for p in glob.glob(os.path.join(GIN_DIR, folder, "**", "*.gin"), recursive=True)]
    for path in sorted(paths):
        gin.clear_config()
        parse_gin([path])
        try:
            model = gin.query_parameter("get_model.model")
        except ValueError:
            continue
        if model.selector.split(".")[-1] == "Autoencoder":
            found.append(os.path.relpath(path, GIN_DIR))
    gin.clear_config()
    assert sorted(found) == sorted(AUTOENCODER_CONFIGS)


@pytest.fixture(scope="module")
def batch():
    return harmonic_notes(n_examples=2, seconds=SECONDS, seed=2)


@pytest.mark.parametrize("gin_file", AUTOENCODER_CONFIGS)
def test_config_builds_and_returns_audio_of_the_input_shape(gin_file, batch):
    keras.utils.set_random_seed(0)
    model = make_model(gin_file, shrink_bindings(seconds=SECONDS, width=8))
    assert isinstance(model, models.Autoencoder)
    outputs, losses = model(batch, return_losses=True)
    audio = model.get_audio_from_outputs(outputs)
    assert audio.shape == batch["audio"].shape
    assert np.all(np.isfinite(audio.numpy()))
    assert float(tf.reduce_max(tf.abs(audio))) > 0.0  # it makes sound
    assert float(losses["spectral_loss"]) > 0.0
    # The decoder's controls and each processor's signal are in the outputs.
    assert outputs["amps"].shape[:2] == (2, int(SECONDS * 250))
    assert outputs["harmonic/signal"].shape == batch["audio"].shape
    if "ae.gin" in gin_file or "nsynth" in gin_file:
        assert model.encoder is not None and "z" in outputs
        # No reverb: the audio is the sum of the two synths.
        synths = outputs["harmonic/signal"] + outputs["filtered_noise/signal"]
        np.testing.assert_allclose(audio, synths, rtol=0, atol=1e-6)
    else:
        assert model.encoder is None and "reverb/signal" in outputs
        np.testing.assert_array_equal(audio, outputs["reverb/signal"])
    # The loss is the model's spectral loss between the target and this very audio.
    assert float(losses["spectral_loss"]) == pytest.approx(
        float(model.loss_objs[0](batch["audio"], audio)), rel=1e-6)
    assert float(losses["total_loss"]) == pytest.approx(float(losses["spectral_loss"]), rel=1e-6)


@pytest.mark.parametrize("sample_rate", [32000, 48000])
def test_higher_sample_rates(sample_rate):
    batch = harmonic_notes(n_examples=1, seconds=SECONDS, sample_rate=sample_rate, seed=4)
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin",
                       shrink_bindings(seconds=SECONDS, sample_rate=sample_rate, width=8))
    outputs, losses = model(batch, return_losses=True)
    audio = model.get_audio_from_outputs(outputs)
    assert audio.shape == (1, int(SECONDS * sample_rate))
    assert np.all(np.isfinite(audio.numpy())) and float(losses["total_loss"]) > 0.0
    # The harmonic synth runs at the new rate: harmonics 1..5 sit at exactly k * f0 (a synth
    # that assumed 16 kHz would put its fundamental at f0 * sample_rate / 16000, a harmonic
    # of f0 too, but nothing at f0 itself), and nothing sounds below the fundamental.
    harmonic = outputs["harmonic/signal"].numpy()[0]
    spectrum = np.abs(np.fft.rfft(harmonic * np.hanning(harmonic.size)))
    bin_hz = sample_rate / harmonic.size  # 3.9 Hz
    f0 = float(batch["f0_hz"][0, 0])

    def peak_hz(low_hz, high_hz):
        """Frequency of the largest peak in [low, high) Hz (parabolic interpolation of the
        log magnitude around the peak bin), and its magnitude relative to the maximum."""
        low, high = int(low_hz / bin_hz), int(high_hz / bin_hz)
        i = low + int(np.argmax(spectrum[low:high]))
        left, centre, right = np.log(spectrum[i - 1:i + 2])
        offset = 0.5 * (left - right) / (left - 2 * centre + right)
        return (i + offset) * bin_hz, spectrum[i] / spectrum.max()

    for k in range(1, 6):
        frequency, height = peak_hz((k - 0.5) * f0, (k + 0.5) * f0)
        assert abs(frequency - k * f0) < 0.5, (k, frequency, k * f0)  # measured error < 0.07 Hz
        assert height > 0.1, (k, height)  # a real harmonic, not leakage
    assert spectrum[:int(0.8 * f0 / bin_hz)].max() < 1e-3 * spectrum.max()


def test_encode_decode_match_call(batch):
    keras.utils.set_random_seed(0)
    model = make_model("models/ae.gin", shrink_bindings(seconds=SECONDS, width=8))
    tf.random.set_seed(1)  # the same filtered noise in both eager runs
    outputs = model(batch)
    tf.random.set_seed(1)
    features = model.encode(batch, training=False)
    assert {"f0_scaled", "ld_scaled", "z"} <= set(features)
    assert features["z"].shape[-1] == 4
    audio = model.decode(features, training=False)
    np.testing.assert_allclose(audio.numpy(), outputs["audio_synth"].numpy(), atol=1e-6)
    # encode works on a copy: the caller's dict is unchanged.
    assert "z" not in batch


def test_works_inside_tf_function_with_the_same_result(batch):
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))

    def call(features):
        # The same noise in both: each draw is a function of the seed and its position.
        with seeding.seed_scope([5, 1]):
            return model(features, return_losses=True)

    eager_outputs, eager_losses = call(batch)
    graph_outputs, graph_losses = tf.function(call)(batch)
    for key in ("harmonic/signal", "filtered_noise/signal", "audio_synth"):
        # Within float32 round-off of each signal's own scale (measured: 1e-7 of it). The
        # untrained noise is quiet (about 3e-5); unseeded, two draws differ by their full size.
        expected = eager_outputs[key].numpy()
        scale = np.abs(expected).max()
        assert scale > 1e-6, key
        np.testing.assert_allclose(graph_outputs[key].numpy(), expected, rtol=0, atol=1e-6 * scale,
                                   err_msg=key)
    for name, value in eager_losses.items():
        assert float(graph_losses[name]) == pytest.approx(float(value), rel=1e-6), name


def test_missing_parts_and_target_audio_raise(batch):
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))
    with pytest.raises(ValueError, match="decoder"):
        models.Autoencoder(decoder=None, processor_group=model.processor_group)
    with pytest.raises(ValueError, match="processor_group"):
        models.Autoencoder(decoder=model.decoder, processor_group=None)
    without_audio = {k: v for k, v in batch.items() if k != "audio"}
    outputs = model(without_audio)  # resynthesis needs no target audio
    assert outputs["audio_synth"].shape == batch["audio"].shape
    with pytest.raises(ValueError, match="audio"):
        model(without_audio, return_losses=True)
    with pytest.raises(TypeError, match="dict"):
        model(batch["audio"])
