"""Model base: losses of a call, and verified full / partial / mapped checkpoint restore."""
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import models
from ddsp_models.training.checkpoints import parse_restore_keys, resolve_checkpoint, verify
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SECONDS = 0.256  # 64 frames at 250 Hz; 4096 samples at 16 kHz
BINDINGS = shrink_bindings(seconds=SECONDS, width=8) + ["SpectralLoss.fft_sizes = (256, 64)"]


@pytest.fixture(scope="module")
def batch():
    return harmonic_notes(n_examples=2, seconds=SECONDS, seed=1)


def synth(model, batch):
    """Audio of one eager call, with the filtered noise's random draw fixed."""
    tf.random.set_seed(123)
    return model(batch)["audio_synth"].numpy()


def solo(seed=0):
    keras.utils.set_random_seed(seed)
    return make_model("models/solo_instrument.gin", BINDINGS)


class TwoDecoders(models.Autoencoder):
    """An Autoencoder with a second decoder, ``synthcoder`` (like MidiAutoencoder's)."""

    def __init__(self, synthcoder=None, **kwargs):
        super().__init__(**kwargs)
        self.synthcoder = synthcoder

    def call(self, features, training=False):
        outputs = super().call(features, training=training)
        synth = self.synthcoder(outputs, training=training)
        outputs["synthcoder_amps"] = synth["amps"]
        return outputs


def two_decoders(seed=3):
    keras.utils.set_random_seed(seed)
    gin.clear_config()
    from ddsp_models.training.config import parse_gin
    parse_gin(["models/solo_instrument.gin"], BINDINGS)
    model = models.get_model()
    from ddsp_models.training import decoders
    return TwoDecoders(preprocessor=model.preprocessor, decoder=model.decoder,
                       processor_group=model.processor_group, losses=model.loss_objs,
                       synthcoder=decoders.RnnFcDecoder())


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory, batch):
    """A checkpoint of a solo_instrument model whose weights moved away from their init."""
    model = solo(seed=0)
    model(batch)
    for variable in model.trainable_variables:
        variable.assign(variable + 0.01 * tf.random.normal(variable.shape, seed=5))
    folder = tmp_path_factory.mktemp("ckpt")
    tf.train.Checkpoint(model=model).save(str(folder / "ckpt"))
    return folder, model, synth(model, batch)


def test_losses_include_each_named_loss_and_their_total(batch):
    model = solo()
    tf.random.set_seed(4)
    outputs, losses = model(batch, return_losses=True)
    assert set(losses) == {"spectral_loss", "total_loss"}
    assert float(losses["total_loss"]) == pytest.approx(float(losses["spectral_loss"]))
    assert float(losses["spectral_loss"]) > 0.0
    # A second call starts from an empty losses dict (nothing accumulates).
    tf.random.set_seed(4)
    _, again = model(batch, return_losses=True)
    assert float(again["total_loss"]) == pytest.approx(float(losses["total_loss"]), rel=1e-6)
    tf.random.set_seed(4)
    plain = model(batch)
    assert isinstance(plain, dict)
    np.testing.assert_array_equal(model.get_audio_from_outputs(plain),
                                  outputs["audio_synth"].numpy())


def test_loss_of_the_target_itself_is_zero(batch):
    model = solo()
    same = dict(batch, audio=synth(model, batch))
    tf.random.set_seed(123)  # the same noise as in `synth`
    _, losses = model(same, return_losses=True)
    assert float(losses["total_loss"]) == pytest.approx(0.0, abs=1e-6)


def test_full_restore_into_a_fresh_model_gives_identical_outputs(trained_checkpoint, batch):
    folder, _, expected = trained_checkpoint
    fresh = solo(seed=7)
    assert not fresh.built and not fresh.weights
    restored_from = fresh.restore(folder, build_inputs=batch)  # folder: its latest checkpoint
    assert restored_from == resolve_checkpoint(folder)
    np.testing.assert_array_equal(synth(fresh, batch), expected)


def test_restore_after_a_call_and_by_prefix(trained_checkpoint, batch):
    folder, original, expected = trained_checkpoint
    fresh = solo(seed=8)
    before = synth(fresh, batch)
    assert not np.allclose(before, expected)
    fresh.restore(resolve_checkpoint(folder))  # a prefix; the model is built by its call
    for mine, theirs in zip(fresh.weights, original.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(synth(fresh, batch), expected)


def test_partial_restore_of_decoder_leaves_reverb_untouched(trained_checkpoint, batch):
    folder, original, _ = trained_checkpoint
    model = solo(seed=9)
    model(batch)
    reverb_ir = model.processor_group.reverb.ir.numpy().copy()
    assert not np.allclose(reverb_ir, original.processor_group.reverb.ir.numpy())
    assert all(not np.allclose(mine.numpy(), theirs.numpy())  # restoring has work to do
               for mine, theirs in zip(model.decoder.weights, original.decoder.weights))
    model.restore(folder, restore_keys=["decoder"])
    for mine, theirs in zip(model.decoder.weights, original.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(model.processor_group.reverb.ir.numpy(), reverb_ir)


def test_mapped_restore_copies_decoder_into_another_sub_module(trained_checkpoint, batch):
    folder, original, _ = trained_checkpoint
    model = two_decoders()
    outputs = model(batch)
    decoder_before = [w.numpy().copy() for w in model.decoder.weights]
    assert all(not np.allclose(mine.numpy(), theirs.numpy())  # restoring has work to do
               for mine, theirs in zip(model.synthcoder.weights, original.decoder.weights))
    model.restore(folder, restore_keys=["synthcoder=decoder"])
    for mine, theirs in zip(model.synthcoder.weights, original.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for mine, before in zip(model.decoder.weights, decoder_before):  # own decoder untouched
        np.testing.assert_array_equal(mine.numpy(), before)
    after = model(batch)
    np.testing.assert_allclose(after["synthcoder_amps"].numpy(),
                               original(batch)["amps"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(after["amps"].numpy(), outputs["amps"].numpy())


def test_bad_restore_keys_raise_naming_the_key(trained_checkpoint, batch):
    folder, _, _ = trained_checkpoint
    model = solo()
    model(batch)
    with pytest.raises(ValueError, match="'no_such_module'"):
        model.restore(folder, restore_keys=["no_such_module"])
    with pytest.raises(ValueError, match="'encoderish'.*not in checkpoint"):
        model.restore(folder, restore_keys=["decoder=encoderish"])
    with pytest.raises(ValueError, match="restore_keys"):
        parse_restore_keys(["decoder=", ""])
    assert parse_restore_keys(["decoder", "synthcoder = decoder"]) == [
        ("decoder", "decoder"), ("synthcoder", "decoder")]


def test_bad_paths_and_unbuilt_models_raise(tmp_path, trained_checkpoint):
    folder, _, _ = trained_checkpoint
    with pytest.raises(ValueError, match="no checkpoint"):
        solo().restore(tmp_path)
    with pytest.raises(ValueError, match="neither a checkpoint prefix"):
        solo().restore(tmp_path / "ckpt-5")
    with pytest.raises(ValueError, match="build_inputs"):
        solo().restore(folder)  # never called: no variables to restore into


def test_verification_names_a_variable_that_differs(trained_checkpoint, batch):
    folder, _, _ = trained_checkpoint
    model = solo()
    model.restore(folder, build_inputs=batch)
    assert verify(model, folder) == len(model.weights)
    model.processor_group.reverb.ir.assign_add(tf.ones_like(model.processor_group.reverb.ir))
    with pytest.raises(ValueError, match="reverb"):
        verify(model, folder)
    assert verify(model, folder, keys=["decoder"]) == len(model.decoder.weights)


def test_restore_rejects_a_checkpoint_of_another_architecture(tmp_path, batch):
    wide = make_model("models/solo_instrument.gin", BINDINGS + ["RnnFcDecoder.ch = 12"])
    wide(batch)
    tf.train.Checkpoint(model=wide).save(str(tmp_path / "ckpt"))
    model = solo()
    model(batch)
    with pytest.raises(ValueError, match=r"incompatible tensor with shape \(12, "):
        model.restore(tmp_path)
