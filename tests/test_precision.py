"""bfloat16 mixed precision: bf16 matrix products, float32 everywhere precision matters."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import checkpoints, data
from ddsp_models.training.precision import check_precision, is_mixed, precision_scope
from ddsp_models.training.trainer import Trainer
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SECONDS = 0.5


def solo(precision, seed=0):
    keras.utils.set_random_seed(seed)
    with precision_scope(precision):
        return make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=32))


@pytest.fixture(scope="module")
def notes():
    return harmonic_notes(n_examples=4, seconds=SECONDS, seed=1)


def layers_by_type(model, type_name):
    return [layer for layer in model._flatten_layers() if type(layer).__name__ == type_name]


def test_the_scope_sets_and_restores_the_global_policy():
    before = keras.config.dtype_policy().name
    with precision_scope("mixed_bfloat16"):
        assert is_mixed()
        assert keras.config.dtype_policy().compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == before and not is_mixed()
    with pytest.raises(ValueError, match="precision must be one of .*'float16'"):
        check_precision("float16")


def test_dense_layers_compute_in_bf16_while_the_gru_and_every_variable_stay_float32(notes):
    model = solo("mixed_bfloat16")
    model(notes, training=False)
    dense = layers_by_type(model, "Dense")
    assert dense and all(layer.compute_dtype == "bfloat16" for layer in dense)
    (gru,) = layers_by_type(model, "FastGRU")
    assert gru.compute_dtype == "float32" and gru._uses_fast_loop(None)
    assert {v.dtype for v in model.trainable_variables} == {"float32"}


def test_bf16_controls_and_audio_are_float32_and_match_the_float32_model(notes):
    """Same weights in both: the controls differ by bf16 round-off only (8-bit mantissa,
    relative steps of 2^-8 = 0.4 % accumulated over a few layers)."""
    full, mixed = solo("float32"), solo("mixed_bfloat16")
    full(notes, training=False)
    mixed(notes, training=False)
    mixed.set_weights(full.get_weights())
    out_full, out_mixed = full(notes, training=False), mixed(notes, training=False)
    for key in ("amps", "harmonic_distribution", "noise_magnitudes", "f0_hz", "audio_synth"):
        assert out_mixed[key].dtype == tf.float32, key
    amps_full, amps_mixed = np.asarray(out_full["amps"]), np.asarray(out_mixed["amps"])
    assert np.median(np.abs(amps_mixed / amps_full - 1)) < 0.03
    assert not np.array_equal(amps_full, amps_mixed)  # bf16 really ran
    np.testing.assert_array_equal(out_full["f0_hz"], out_mixed["f0_hz"])  # f0 is never rounded
    audio_full, audio_mixed = np.asarray(out_full["audio_synth"]), np.asarray(out_mixed["audio_synth"])
    correlation = np.sum(audio_full * audio_mixed) / np.sqrt(
        np.sum(audio_full ** 2) * np.sum(audio_mixed ** 2))
    assert correlation > 0.99


def test_bf16_training_lowers_the_loss_as_float32_does(notes):
    """30 steps from the same initial weights on the same batches."""
    losses = {}
    for precision in ("float32", "mixed_bfloat16"):
        trainer = Trainer(solo(precision, seed=2), learning_rate=3e-3)
        iterator = iter(data.InMemoryProvider(notes, seed=0).get_batch(2, repeats=-1))
        trainer.build(next(iterator))
        losses[precision] = [float(trainer.train_step(iterator)["spectral_loss"])
                             for _ in range(30)]
    full, mixed = (np.array(losses[p]) for p in ("float32", "mixed_bfloat16"))
    assert np.all(np.isfinite(mixed))
    assert mixed[-3:].mean() < 0.75 * mixed[:3].mean()
    assert abs(mixed[-3:].mean() / full[-3:].mean() - 1) < 0.1


def test_a_bf16_checkpoint_restores_into_a_float32_model(notes, tmp_path):
    trainer = Trainer(solo("mixed_bfloat16", seed=3), learning_rate=1e-3)
    trainer.build(notes)
    trainer.train_step(notes)
    prefix = checkpoints.save(trainer, str(tmp_path), operative_config=False)
    restored = solo("float32", seed=4)
    checkpoints.resume(restored, prefix, build_inputs=notes)
    for saved, loaded in zip(trainer.model.weights, restored.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
