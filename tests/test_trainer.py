"""Trainer and train loop: learning, checkpoints, resuming, logs."""
import json
import os

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import checkpoints, data
from ddsp_models.training.config import latest_operative_config
from ddsp_models.training.train_loop import read_loss_log, run_train, train
from ddsp_models.training.trainer import Trainer, get_strategy
from model_fixtures import NO_NOISE_DAG, harmonic_notes, make_model, shrink_bindings

SHORT = 0.256  # seconds (64 frames), for the checkpoint / resume tests


def small_solo(seconds, width=16, seed=0, extra=()):
    keras.utils.set_random_seed(seed)
    return make_model("models/solo_instrument.gin",
                      shrink_bindings(seconds=seconds, width=width) + list(extra))


@pytest.fixture(scope="module")
def short_batch():
    return harmonic_notes(n_examples=2, seconds=SHORT, seed=3)


def test_fifty_steps_lower_the_spectral_loss_by_a_third():
    """A shrunk solo_instrument learns synthetic harmonic notes (1 s clips)."""
    notes = harmonic_notes(n_examples=8, seconds=1.0, seed=0)
    model = small_solo(seconds=1.0, width=32, seed=0)
    trainer = Trainer(model, learning_rate=3e-3, lr_decay_steps=10000, grad_clip_norm=3.0)
    provider = data.InMemoryProvider(notes, seed=0)
    iterator = iter(provider.get_batch(4, shuffle=True, repeats=-1))
    trainer.build(next(iterator))
    losses = [float(trainer.train_step(iterator)["spectral_loss"]) for _ in range(50)]
    assert trainer.get_step() == 50
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert np.all(np.isfinite(losses))
    assert last < 0.7 * first, f"spectral loss {first:.3f} -> {last:.3f}"


def test_learning_rate_decays_exponentially(short_batch):
    trainer = Trainer(small_solo(SHORT, width=4), learning_rate=0.01, lr_decay_steps=2,
                      lr_decay_rate=0.5)
    trainer.build(short_batch)
    assert trainer.learning_rate() == pytest.approx(0.01)
    trainer.step.assign(3)
    assert trainer.learning_rate() == pytest.approx(0.01 * 0.5 ** 1.5, rel=1e-5)


def test_gradients_are_clipped_to_the_global_norm(short_batch):
    """With SGD at learning rate 1 the update IS the gradient: its global norm is the clip."""
    trainer = Trainer(small_solo(SHORT, width=4), grad_clip_norm=1e-3)
    trainer.optimizer = keras.optimizers.SGD(learning_rate=1.0)
    trainer.build(short_batch)
    _, grads = trainer._replica_step(short_batch)
    assert float(tf.linalg.global_norm([g for g in grads if g is not None])) > 1e-2
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    trainer.train_step(short_batch)
    update = [v.numpy() - b for v, b in zip(trainer.model.trainable_variables, before)]
    # float32 weight differences: measured within 1e-6 of the clip.
    assert np.sqrt(sum(np.sum(u.astype(np.float64) ** 2) for u in update)) == pytest.approx(
        1e-3, rel=1e-4)


def test_resumed_training_continues_the_step_and_the_loss_curve(tmp_path, short_batch):
    """Optimizer state and step come back with a full restore: the next steps match an
    uninterrupted run exactly; restoring only the model does not. (A noise-free model, so
    that two runs see identical gradients.)"""
    batches = [harmonic_notes(n_examples=2, seconds=SHORT, seed=10 + i) for i in range(6)]
    trainer = Trainer(small_solo(SHORT, seed=1, extra=[NO_NOISE_DAG]), learning_rate=3e-3)
    trainer.build(batches[0])
    for batch in batches[:3]:
        trainer.train_step(batch)
    path = trainer.save(tmp_path)
    assert os.path.basename(path) == "ckpt-3"
    uninterrupted = [float(trainer.train_step(b)["total_loss"]) for b in batches[3:]]

    resumed = Trainer(small_solo(SHORT, seed=2, extra=[NO_NOISE_DAG]), learning_rate=3e-3)
    resumed.build(batches[0])
    resumed.restore(tmp_path)
    assert resumed.get_step() == 3
    curve = [float(resumed.train_step(b)["total_loss"]) for b in batches[3:]]
    np.testing.assert_allclose(curve, uninterrupted, rtol=1e-4)
    assert resumed.get_step() == 6
    for mine, theirs in zip(resumed.model.weights, trainer.model.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)

    model_only = Trainer(small_solo(SHORT, seed=2, extra=[NO_NOISE_DAG]), learning_rate=3e-3)
    model_only.build(batches[0])
    model_only.model.restore(tmp_path)  # fresh Adam moments, step 0
    assert model_only.get_step() == 0
    for b in batches[3:]:
        model_only.train_step(b)
    differences = [np.abs(m.numpy() - t.numpy()).max()
                   for m, t in zip(model_only.model.weights, trainer.model.weights)]
    assert max(differences) > 1e-4


def test_partial_restore_through_the_trainer_keeps_step_and_other_weights(tmp_path, short_batch):
    source = Trainer(small_solo(SHORT, width=4, seed=1))
    source.build(short_batch)
    source.step.assign(7)
    source.save(tmp_path)
    target = Trainer(small_solo(SHORT, width=4, seed=5), restore_keys=["decoder"])
    target.build(short_batch)
    ir = target.model.processor_group.reverb.ir.numpy().copy()
    target.restore(tmp_path)
    assert target.get_step() == 0
    np.testing.assert_array_equal(target.model.processor_group.reverb.ir.numpy(), ir)
    for mine, theirs in zip(target.model.decoder.weights, source.model.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="'nope'"):
        target.restore(tmp_path, restore_keys=["nope"])
    checkpoints.resume(target, tmp_path)  # everything, step included
    assert target.get_step() == 7


def test_checkpoints_to_keep_and_errors(tmp_path, short_batch):
    trainer = Trainer(small_solo(SHORT, width=4), checkpoints_to_keep=2)
    with pytest.raises(ValueError, match="build"):
        trainer.restore(tmp_path)
    with pytest.raises(TypeError, match="dict"):
        trainer.build(short_batch["audio"])
    trainer.build(short_batch)
    for step in (1, 2, 3):
        trainer.step.assign(step)
        assert trainer.save(tmp_path).endswith(f"ckpt-{step}")
    kept = sorted(f for f in os.listdir(tmp_path) if f.endswith(".index"))
    assert kept == ["ckpt-2.index", "ckpt-3.index"]
    with pytest.raises(ValueError, match="checkpoints_to_keep"):
        Trainer(trainer.model, checkpoints_to_keep=0)
    assert get_strategy().num_replicas_in_sync == 1


def test_train_writes_logs_configs_checkpoints_and_resumes(tmp_path):
    notes = harmonic_notes(n_examples=4, seconds=SHORT, seed=6)
    provider = data.InMemoryProvider(notes, seed=0)
    save_dir = tmp_path / "run"

    def run(num_steps):
        model = small_solo(SHORT, width=8, seed=0)
        trainer = Trainer(model, learning_rate=1e-3)
        return train(provider, trainer, batch_size=2, num_steps=num_steps, steps_per_summary=2,
                     steps_per_save=3, save_dir=str(save_dir), restore_dir=str(save_dir))

    result = run(4)
    assert result["step"] == 4
    assert sorted(f for f in os.listdir(save_dir) if f.endswith(".index")) == \
        ["ckpt-3.index", "ckpt-4.index"]
    operative = latest_operative_config(save_dir)
    assert operative.endswith("operative_config-4.gin")
    text = open(operative).read()
    assert "RnnFcDecoder.rnn_channels = 8" in text and "train.num_steps = 4" not in text
    assert "Trainer.learning_rate" not in text  # passed in code, not through gin
    records = read_loss_log(save_dir)
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert set(record["losses"]) == {"spectral_loss", "total_loss"}
        assert record["steps_per_sec"] > 0 and record["learning_rate"] > 0
    assert os.listdir(save_dir / "summaries" / "train")

    result = run(6)  # a new process would do the same: resume from save_dir
    assert result["step"] == 6
    assert [r["step"] for r in read_loss_log(save_dir)] == [2, 4, 6]
    assert latest_operative_config(save_dir).endswith("operative_config-6.gin")


def test_run_train_from_gin_with_early_stop_and_hpo_report(tmp_path):
    """The whole run from configs: model, trainer and train settings all come from gin."""
    notes = harmonic_notes(n_examples=2, seconds=SHORT, seed=7)
    keras.utils.set_random_seed(0)
    bindings = shrink_bindings(seconds=SHORT, width=4) + [
        "train.batch_size = 2", "train.num_steps = 100", "train.steps_per_summary = 1",
        "train.early_stop_loss_value = 1e9", "train.report_loss_to_hpo = True",
        "learning_rate = 2e-3"]
    gin.clear_config()
    result = run_train(tmp_path, ["models/solo_instrument.gin", "optimization/base.gin"],
                       bindings, data_provider=data.InMemoryProvider(notes))
    assert result["step"] == 1  # stopped at the first summary
    report = json.load(open(tmp_path / "hpo_metric.json"))
    assert report["step"] == 1 and report["total_loss"] == pytest.approx(
        result["losses"]["total_loss"])
    operative = open(latest_operative_config(tmp_path)).read()
    assert "train.early_stop_loss_value = 1000000000.0" in operative
    assert "Trainer.learning_rate = %learning_rate" in operative
    assert "learning_rate = 0.002" in operative
    gin.clear_config()
