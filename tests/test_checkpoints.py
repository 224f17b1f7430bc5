"""Specification of `ddsp_models.training.checkpoints`: find, save, resume, warm start,
verify, set half-written checkpoints aside. Tiny two-layer models keep it fast."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import checkpoints
from ddsp_models.training.models import Model
from ddsp_models.training.train_loop import resume_or_warm_start
from ddsp_models.training.trainer import Trainer

BATCH = {"x": np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4)}


class Tiny(Model):
    """``decoder`` (and, with `synthcoder`, a second layer of the same shape)."""

    def __init__(self, synthcoder: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.decoder = keras.layers.Dense(3, name="decoder")
        self.synthcoder = keras.layers.Dense(3, name="synthcoder") if synthcoder else None

    def call(self, features, training=False):
        y = self.decoder(features["x"])
        if self.synthcoder is not None:
            y = y + self.synthcoder(features["x"])
        return {"y": y}


def trained(seed: int, synthcoder: bool = False, step: int = 0) -> Trainer:
    """A built trainer whose weights, Adam slots and step are all distinct values."""
    keras.utils.set_random_seed(seed)
    trainer = Trainer(Tiny(synthcoder))
    trainer.build(BATCH)
    rng = np.random.default_rng(seed)
    for variable in trainer.model.weights + trainer.optimizer.variables:
        if "float" in str(variable.dtype):
            variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    trainer.step.assign(step)
    return trainer


def values(trainer) -> list:
    return [v.numpy().copy() for v in trainer.model.weights + trainer.optimizer.variables]


def test_resume_restores_every_saved_value_and_the_step(tmp_path):
    source = trained(seed=1, step=12)
    prefix = checkpoints.save(source, tmp_path)
    assert prefix == str(tmp_path / "ckpt-12")
    assert os.path.isfile(tmp_path / "operative_config-12.gin")  # saved beside it
    target = trained(seed=2)
    assert not np.array_equal(values(target)[0], values(source)[0])
    assert checkpoints.resume(target, tmp_path) == prefix  # a folder: its newest
    assert target.get_step() == 12
    saved = values(source)
    assert len(saved) > 4  # kernels, biases, Adam moments, iterations
    for mine, theirs in zip(values(target), saved):
        np.testing.assert_array_equal(mine, theirs)
    # A model alone restores all its weights (no optimizer, no step).
    model = Tiny()
    checkpoints.resume(model, prefix, build_inputs=BATCH)
    np.testing.assert_array_equal(model.decoder.kernel.numpy(),
                                  source.model.decoder.kernel.numpy())


def test_warm_start_maps_the_decoder_into_the_synthcoder_and_verifies(tmp_path):
    source = trained(seed=3, step=5)
    checkpoints.save(source, tmp_path)
    target = trained(seed=4, synthcoder=True, step=0)
    own_decoder = target.model.decoder.kernel.numpy().copy()
    checkpoints.warm_start(target, tmp_path, ["synthcoder=decoder"])
    np.testing.assert_array_equal(target.model.synthcoder.kernel.numpy(),
                                  source.model.decoder.kernel.numpy())
    np.testing.assert_array_equal(target.model.synthcoder.bias.numpy(),
                                  source.model.decoder.bias.numpy())
    np.testing.assert_array_equal(target.model.decoder.kernel.numpy(), own_decoder)
    assert target.get_step() == 0  # optimizer and step untouched
    assert checkpoints.verify(target.model, tmp_path, ["synthcoder=decoder"]) == 2
    target.model.synthcoder.bias.assign_add([0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="model/decoder/bias"):
        checkpoints.verify(target.model, tmp_path, ["synthcoder=decoder"])
    with pytest.raises(ValueError, match="name no sub-module"):
        checkpoints.warm_start(target, tmp_path, [])
    # The original DDSP call shapes delegate: Model.restore(path, verbose, restore_keys).
    model = Tiny(synthcoder=True)
    model(BATCH)
    model.restore(str(tmp_path), True, ["synthcoder=decoder"])
    np.testing.assert_array_equal(model.synthcoder.kernel.numpy(),
                                  source.model.decoder.kernel.numpy())


def test_a_half_written_newest_checkpoint_is_set_aside_and_the_one_before_resumed(tmp_path):
    trainer = trained(seed=5, step=1)
    good = values(trainer)
    checkpoints.save(trainer, tmp_path)
    trainer.model.decoder.kernel.assign_add(tf.ones_like(trainer.model.decoder.kernel))
    trainer.step.assign(2)
    newest = checkpoints.save(trainer, tmp_path)
    data = newest + ".data-00000-of-00001"
    with open(data, "rb") as f:
        head = f.read(40)
    with open(data, "wb") as f:
        f.write(head)  # a process killed while writing it
    assert checkpoints.checkpoint_is_complete(newest) is not None
    with pytest.raises(ValueError, match="killed"):  # restoring it directly says what to do
        checkpoints.resume(trained(seed=6), newest)
    resumed = trained(seed=6)
    start = resume_or_warm_start(resumed, tmp_path)
    assert start.step == 1 and start.resumed_from == str(tmp_path / "ckpt-1")
    for mine, theirs in zip(values(resumed), good):
        np.testing.assert_array_equal(mine, theirs)
    assert sorted(os.listdir(tmp_path / checkpoints.BROKEN_DIR)) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert checkpoints.resolve_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")


def test_the_step_is_parsed_from_the_checkpoint_name(tmp_path):
    assert checkpoints.step_of("/runs/ae/ckpt-300") == 300
    assert checkpoints.step_of("/runs/ae/weights") is None
    trainer = trained(seed=7, step=40)
    checkpoints.save(trainer, tmp_path, operative_config=False)
    trainer.step.assign(250)
    checkpoints.save(trainer, tmp_path, operative_config=False)
    assert checkpoints.checkpoint_step(tmp_path) == 250  # a folder: its newest
    assert checkpoints.checkpoint_step(tmp_path / "ckpt-40") == 40
    assert [s for s, _ in checkpoints.checkpoint_prefixes(tmp_path)] == [250, 40]
    unnumbered = tf.train.Checkpoint(model=trainer.model).write(str(tmp_path / "other" / "w"))
    with pytest.raises(ValueError, match="does not end in '-<step>'"):
        checkpoints.checkpoint_step(unnumbered)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="holds no checkpoint"):
        checkpoints.checkpoint_step(tmp_path / "empty")


def test_resume_or_warm_start_prefers_the_runs_own_checkpoint(tmp_path):
    source = trained(seed=8, step=9)
    checkpoints.save(source, tmp_path / "ae")
    fresh = trained(seed=9, synthcoder=True)
    start = resume_or_warm_start(fresh, tmp_path / "midi", tmp_path / "ae",
                                 ["synthcoder=decoder"])
    assert start.warm_started_from == str(tmp_path / "ae" / "ckpt-9")
    assert start.resumed_from is None and start.step == 0
    np.testing.assert_array_equal(fresh.model.synthcoder.kernel.numpy(),
                                  source.model.decoder.kernel.numpy())
    fresh.step.assign(4)
    checkpoints.save(fresh, tmp_path / "midi")
    again = trained(seed=10, synthcoder=True)
    start = resume_or_warm_start(again, tmp_path / "midi", tmp_path / "ae",
                                 ["synthcoder=decoder"])
    assert start.resumed_from == str(tmp_path / "midi" / "ckpt-4") and start.step == 4
    assert start.warm_started_from is None
    for mine, theirs in zip(values(again), values(fresh)):
        np.testing.assert_array_equal(mine, theirs)
    # Nothing to start from: a fresh start, nothing restored.
    assert resume_or_warm_start(trained(seed=11), tmp_path / "new", tmp_path / "none") == \
        type(start)(step=0)
