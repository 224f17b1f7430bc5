"""Restore edge cases: each fails with a message that names the problem and what to do."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training.trainer import Trainer
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SHORT = 0.256


def tiny(seed=0):
    keras.utils.set_random_seed(seed)
    return make_model("models/solo_instrument.gin", shrink_bindings(seconds=SHORT, width=4))


@pytest.fixture(scope="module")
def batch():
    return harmonic_notes(n_examples=2, seconds=SHORT, seed=2)


@pytest.fixture
def saved(tmp_path, batch):
    trainer = Trainer(tiny())
    trainer.build(batch)
    trainer.train_step(batch)
    prefix = trainer.save(tmp_path / "run")
    return prefix, trainer


def test_a_model_variable_missing_from_the_checkpoint_is_named(saved, batch):
    prefix, _ = saved
    model = tiny()
    model.extra_gain = model.add_weight(shape=(1,), name="extra_gain", initializer="ones")
    model(batch)
    with pytest.raises(ValueError, match=r"model/extra_gain is not in checkpoint") as raised:
        model.restore(prefix)
    assert "restore_keys" in str(raised.value)
    # What the message says to do works: restoring the shared sub-modules only.
    model.restore(prefix, restore_keys=["decoder", "processor_group"])
    np.testing.assert_array_equal(model.extra_gain.numpy(), [1.0])


def test_a_checkpoint_without_a_model_object_is_refused(tmp_path, batch):
    model = tiny()
    model(batch)
    prefix = tf.train.Checkpoint(network=model).save(str(tmp_path / "other"))
    with pytest.raises(ValueError, match=r"has no 'model' object \(it has \['network'") as raised:
        tiny().restore(prefix, build_inputs=batch)
    assert "Trainer" in str(raised.value)


def test_a_source_module_named_twice_is_refused(saved, batch):
    prefix, _ = saved
    model = tiny()
    model(batch)
    with pytest.raises(ValueError, match="'decoder' is named twice") as raised:
        model.restore(prefix, restore_keys=["decoder", "processor_group=decoder"])
    assert "name each source once" in str(raised.value)


def test_an_optimizer_mismatch_is_named_and_the_model_only_restore_works(tmp_path, batch):
    sgd = Trainer(tiny())
    sgd.optimizer = keras.optimizers.SGD(learning_rate=0.1)
    sgd.build(batch)
    sgd.train_step(batch)
    prefix = sgd.save(tmp_path / "sgd")
    adam = Trainer(tiny(seed=5))
    adam.build(batch)
    with pytest.raises(ValueError, match="another optimizer") as raised:
        adam.restore(prefix)
    assert "restore_keys" in str(raised.value)
    adam.restore(prefix, restore_keys=["decoder"])  # the advice: model parts only
    for mine, theirs in zip(adam.model.decoder.weights, sgd.model.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert adam.get_step() == 0


def test_a_model_only_checkpoint_cannot_resume_a_trainer(tmp_path, batch):
    model = tiny()
    model(batch)
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "weights"))
    trainer = Trainer(tiny(seed=3))
    trainer.build(batch)
    with pytest.raises(ValueError, match="does not match this model/optimizer"):
        trainer.restore(prefix)


def test_a_half_written_checkpoint_names_what_to_do(saved, batch):
    prefix, _ = saved
    data_file = prefix + ".data-00000-of-00001"
    with open(data_file, "rb") as f:
        head = f.read(100)
    with open(data_file, "wb") as f:
        f.write(head)
    model = tiny()
    model(batch)
    with pytest.raises(ValueError, match="killed") as raised:
        model.restore(prefix)
    assert prefix in str(raised.value)
    trainer = Trainer(tiny())
    trainer.build(batch)
    with pytest.raises(ValueError, match="killed"):
        trainer.restore(prefix)
