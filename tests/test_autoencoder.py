"""Autoencoder: every packaged Autoencoder config (ddsp_models/training/gin/) builds and resynthesises its input's shape."""
import keras
import numpy as np
import pytest
import tensorflow as tf

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
    else:
        assert model.encoder is None and "reverb/signal" in outputs


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
    # The harmonic synth runs at the new rate: its fundamental sits at f0 on that grid.
    harmonic = outputs["harmonic/signal"].numpy()[0]
    spectrum = np.abs(np.fft.rfft(harmonic * np.hanning(harmonic.size)))
    peak_hz = np.argmax(spectrum) * sample_rate / harmonic.size
    f0 = batch["f0_hz"][0, 0]
    assert min(abs(peak_hz - k * f0) for k in range(1, 61)) < 2 * sample_rate / harmonic.size


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
    eager_outputs, eager_losses = model(batch, return_losses=True)
    fn = tf.function(lambda features: model(features, return_losses=True))
    graph_outputs, graph_losses = fn(batch)
    # The harmonic part is deterministic; the filtered noise is drawn afresh on each call.
    np.testing.assert_allclose(graph_outputs["harmonic/signal"].numpy(),
                               eager_outputs["harmonic/signal"].numpy(), atol=1e-5)
    noise = np.abs(eager_outputs["filtered_noise/signal"].numpy()).max()
    np.testing.assert_allclose(graph_outputs["audio_synth"].numpy(),
                               eager_outputs["audio_synth"].numpy(), atol=1e-5 + 4 * noise)
    assert float(graph_losses["total_loss"]) == pytest.approx(float(eager_losses["total_loss"]),
                                                              rel=1e-2)


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
