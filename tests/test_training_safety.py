"""Training safety: the NaN/Inf guard, variables without gradient, seeds, kill-safe logs and
half-written checkpoints (the training-side items of issue 14)."""
import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import data
from ddsp_models.training.checkpoints import BROKEN_DIR, newest_complete_checkpoint
from ddsp_models.training.train_loop import read_loss_log, run_train, train, truncate_loss_log
from ddsp_models.training.trainer import NonFiniteError, Trainer
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SHORT = 0.256  # seconds (64 frames)


def tiny_solo(seed=0):
    keras.utils.set_random_seed(seed)
    return make_model("models/solo_instrument.gin", shrink_bindings(seconds=SHORT, width=4))


def nan_batch(seed=3):
    batch = harmonic_notes(n_examples=2, seconds=SHORT, seed=seed)
    batch["audio"][1, 100:110] = np.nan
    batch["id"] = np.array([b"good_clip-000", b"bad_clip-007"])
    return batch


def snapshot(trainer):
    return [v.numpy().copy() for v in trainer.model.weights + trainer.optimizer.variables]


def test_a_nan_batch_stops_training_naming_step_terms_and_clips_and_changes_nothing():
    trainer = Trainer(tiny_solo())
    good = harmonic_notes(n_examples=2, seconds=SHORT, seed=1)
    trainer.build(good)
    trainer.train_step(good)
    before = snapshot(trainer)
    with pytest.raises(NonFiniteError) as raised:
        trainer.train_step(nan_batch())
    error = raised.value
    assert error.step == 2
    assert "spectral_loss" in error.terms and "total_loss" in error.terms
    assert error.clips == ["good_clip-000", "bad_clip-007"]
    message = str(error)
    assert "step 2" in message and "bad_clip-007" in message and "max_nonfinite_steps" in message
    # Nothing moved: weights, Adam slots, the step.
    assert trainer.get_step() == 1
    for a, b in zip(before, snapshot(trainer)):
        np.testing.assert_array_equal(a, b)
    assert all(np.all(np.isfinite(v.numpy())) for v in trainer.model.weights)


def test_skipping_bad_batches_is_bounded(caplog):
    trainer = Trainer(tiny_solo(), max_nonfinite_steps=1)
    good = harmonic_notes(n_examples=2, seconds=SHORT, seed=1)
    trainer.build(good)
    before = snapshot(trainer)
    with caplog.at_level(logging.WARNING, logger="ddsp_models.training.trainer"):
        trainer.train_step(nan_batch())
    assert trainer.last_step_skipped and trainer.get_step() == 0
    assert any("skipped this batch" in r.getMessage() and "bad_clip-007" in r.getMessage()
               for r in caplog.records)
    for a, b in zip(before, snapshot(trainer)):
        np.testing.assert_array_equal(a, b)
    trainer.train_step(good)  # a good batch still trains
    assert not trainer.last_step_skipped and trainer.get_step() == 1
    with pytest.raises(NonFiniteError, match="step 2"):
        trainer.train_step(nan_batch())


def test_the_newest_checkpoint_of_a_run_stopped_by_nan_is_the_last_good_one(tmp_path):
    examples = harmonic_notes(n_examples=2, seconds=SHORT, seed=1)
    poisoned = {k: np.concatenate([v, v]) for k, v in examples.items()}
    poisoned["audio"][2:] = np.inf  # the second batch of the (unshuffled) order
    provider = data.InMemoryProvider(poisoned)
    provider.get_dataset = lambda shuffle=True: tf.data.Dataset.from_tensor_slices(
        provider.examples)  # fixed order: good batch, then the bad one
    trainer = Trainer(tiny_solo(), checkpoints_to_keep=5)
    with pytest.raises(NonFiniteError, match="step 2"):
        train(provider, trainer, batch_size=2, num_steps=4, steps_per_summary=1,
              steps_per_save=1, save_dir=tmp_path, restore_dir="")
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".index")) == ["ckpt-1.index"]
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt-1"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.asarray(value).dtype.kind == "f":
            assert np.all(np.isfinite(value)), name
    assert [r["step"] for r in read_loss_log(tmp_path)] == [1]


def test_variables_without_gradient_are_reported_once(caplog):
    model = tiny_solo()
    batch = harmonic_notes(n_examples=2, seconds=SHORT, seed=1)
    model.unused = model.add_weight(shape=(3,), name="never_used", initializer="ones")
    trainer = Trainer(model)
    trainer.build(batch)
    with caplog.at_level(logging.WARNING, logger="ddsp_models.training.trainer"):
        for _ in range(3):
            trainer.train_step(batch)
    reports = [r.getMessage() for r in caplog.records if "get no gradient" in r.getMessage()]
    assert len(reports) == 1 and "never_used" in reports[0]
    assert trainer.variables_without_gradient == [model.unused.path]
    np.testing.assert_array_equal(model.unused.numpy(), np.ones(3))
    assert trainer.get_step() == 3


def _seeded_run(save_dir, seed):
    """A tiny solo_instrument run WITH filtered noise, from gin, seeded by train.seed."""
    notes = harmonic_notes(n_examples=4, seconds=SHORT, seed=5)
    bindings = shrink_bindings(seconds=SHORT, width=4) + [
        f"train.seed = {seed}", "train.batch_size = 2", "train.num_steps = 4",
        "train.steps_per_summary = 1", "train.steps_per_save = 4",
        "Trainer.learning_rate = 0.01"]
    import gin
    gin.clear_config()
    run_train(save_dir, ["models/solo_instrument.gin"], bindings,
              data_provider=data.InMemoryProvider(notes))
    reader = tf.train.load_checkpoint(os.path.join(save_dir, "ckpt-4"))
    weights = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
               if n.startswith("optimizer/_trainable_variables")}
    return weights, [r["losses"]["total_loss"] for r in read_loss_log(save_dir)]


def test_the_same_seed_gives_the_same_run_and_another_seed_another(tmp_path):
    w1, l1 = _seeded_run(str(tmp_path / "a"), 3)
    w2, l2 = _seeded_run(str(tmp_path / "b"), 3)
    w3, l3 = _seeded_run(str(tmp_path / "c"), 4)
    assert len(w1) > 5 and len(l1) == 4
    assert l1 == l2
    for name in w1:
        np.testing.assert_array_equal(w1[name], w2[name], err_msg=name)
    assert l1 != l3
    assert any(not np.array_equal(w1[n], w3[n]) for n in w1)


def test_the_filtered_noise_is_a_function_of_seed_and_step():
    """Inside a seed scope the noise repeats for the same [seed, step] and differs
    between steps (so a resumed run draws the same noise as an uninterrupted one)."""
    from ddsp_models import seeding, synths

    noise = synths.FilteredNoise(n_samples=256)
    magnitudes = tf.ones([1, 4, 8])

    def draw(step):
        with seeding.seed_scope([7, step]):
            return noise(magnitudes).numpy()

    a, b, c = draw(5), draw(5), draw(6)
    np.testing.assert_array_equal(a, b)
    assert np.std(a) > 1e-5 and not np.allclose(a, c, rtol=0, atol=1e-6)
    # Outside a scope: fresh noise each call (the library default).
    assert not np.allclose(noise(magnitudes).numpy(), noise(magnitudes).numpy(), rtol=0,
                           atol=1e-6)


def test_truncate_loss_log_keeps_steps_up_to_the_checkpoint_and_drops_a_cut_line(tmp_path):
    lines = [json.dumps({"step": s, "losses": {"total_loss": float(s)}}) for s in range(1, 8)]
    with open(tmp_path / "losses.jsonl", "w") as f:
        f.write("\n".join(lines) + "\n" + '{"step": 8, "los')  # a kill mid-write
    assert truncate_loss_log(tmp_path, 5) == 3
    assert [r["step"] for r in read_loss_log(tmp_path)] == [1, 2, 3, 4, 5]
    assert truncate_loss_log(tmp_path, 5) == 0


def test_a_half_written_newest_checkpoint_is_set_aside_and_training_resumes_before_it(
        tmp_path, caplog):
    batch = harmonic_notes(n_examples=2, seconds=SHORT, seed=1)
    trainer = Trainer(tiny_solo(), checkpoints_to_keep=5)
    trainer.build(batch)
    trainer.train_step(batch)
    trainer.save(tmp_path)
    good = snapshot(trainer)
    trainer.train_step(batch)
    trainer.save(tmp_path)
    data_file = tmp_path / "ckpt-2.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:200])  # killed while writing it
    os.makedirs(tmp_path / "ckpt-3_temp")  # and a save that never finished
    with caplog.at_level(logging.WARNING, logger="ddsp_models.training.checkpoints"):
        assert newest_complete_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")
    assert any("ckpt-2" in r.getMessage() and "incomplete" in r.getMessage()
               for r in caplog.records)
    assert sorted(os.listdir(tmp_path / BROKEN_DIR)) == ["ckpt-2.data-00000-of-00001",
                                                         "ckpt-2.index"]
    assert not (tmp_path / "ckpt-3_temp").exists()
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")
    fresh = Trainer(tiny_solo(seed=9), checkpoints_to_keep=5)
    fresh.build(batch)
    fresh.restore(tmp_path)
    assert fresh.get_step() == 1
    for a, b in zip(good, snapshot(fresh)):
        np.testing.assert_array_equal(a, b)
