"""Kill -9 at random moments (one during a checkpoint save), rerun: nothing lost.

A real training process (the training CLI, ``python -m ddsp_models.training.run``) on a
tiny dataset is killed with SIGKILL several times and rerun each time; the result must be
the run an uninterrupted process produces: every checkpoint loads, the final step is
reached, each step is logged once, and the final weights equal the uninterrupted run's
(the data order and the filtered noise are seeded by ``train.seed``).
"""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from model_fixtures import shrink_bindings

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
STEPS = 21
SAVE_EVERY = 3


def _bindings(data_dir):
    return shrink_bindings(seconds=0.5, width=8, reverb_seconds=0.05) + [
        "SpectralLoss.fft_sizes = (256, 64)",
        f"PreparedTfdsProvider.data_dir = '{data_dir}'",
        "train.batch_size = 2", f"train.num_steps = {STEPS}", "train.steps_per_summary = 1",
        f"train.steps_per_save = {SAVE_EVERY}", "train.seed = 7",
        "Trainer.learning_rate = 0.003", "Trainer.checkpoints_to_keep = 100",
    ]


def _command(save_dir, data_dir):
    cmd = [sys.executable, "-m", "ddsp_models.training.run", "--save_dir", str(save_dir)]
    for name in ("models/solo_instrument.gin", "datasets/prepared.gin",
                 "optimization/base.gin"):
        cmd += ["--gin_file", name]
    for binding in _bindings(data_dir):
        cmd += ["--gin_param", binding]
    return cmd


def _logged_lines(save_dir):
    try:
        with open(os.path.join(save_dir, "losses.jsonl")) as f:
            return f.read().count("\n")
    except FileNotFoundError:
        return 0


def _saving(save_dir):
    return bool(glob.glob(os.path.join(save_dir, "*_temp*")))


def _kill_when(proc, condition, timeout=120.0):
    """SIGKILLs `proc` as soon as `condition()` holds; True when it was still running."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if condition():
            break
        time.sleep(0.001)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def _final_variables(save_dir):
    reader = tf.train.load_checkpoint(os.path.join(save_dir, f"ckpt-{STEPS}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH" and not name.startswith("save_counter")}


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tone_dataset):
    root = tmp_path_factory.mktemp("kill")
    save_dir = str(root / "killed")
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    rng = random.Random(1234)
    kills = []
    # The uninterrupted run, side by side.
    reference_dir = str(root / "uninterrupted")
    reference = subprocess.Popen(_command(reference_dir, tone_dataset), cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Each plan: kill while a checkpoint is being written, or after a random number of
    # newly logged steps (anywhere in a step, a log write or a save).
    for plan in ("save", "random", "save"):
        before = _logged_lines(save_dir)
        proc = subprocess.Popen(_command(save_dir, tone_dataset), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if plan == "save":
            landed = _kill_when(proc, lambda: _logged_lines(save_dir) > before
                                and _saving(save_dir))
        else:
            target = before + rng.randint(1, 5)
            landed = _kill_when(proc, lambda: _logged_lines(save_dir) >= target)
        kills.append({"plan": plan, "landed": landed, "logged": _logged_lines(save_dir)})
    final = subprocess.run(_command(save_dir, tone_dataset), cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-4000:]
    _, reference_log = reference.communicate(timeout=600)
    assert reference.returncode == 0, reference_log[-4000:]
    return {"save_dir": save_dir, "reference_dir": reference_dir, "kills": kills,
            "log": final.stderr}


def test_the_kills_landed_during_training_and_during_a_save(killed_run):
    kills = killed_run["kills"]
    assert all(k["landed"] for k in kills), kills
    assert any(k["landed"] and k["plan"] == "save" for k in kills), kills


def test_every_checkpoint_loads_and_the_final_step_is_reached(killed_run):
    from ddsp_models.training.checkpoints import checkpoint_is_complete, checkpoint_step

    save_dir = killed_run["save_dir"]
    assert checkpoint_step(save_dir) == STEPS
    prefixes = [p[:-len(".index")] for p in glob.glob(os.path.join(save_dir, "ckpt-*.index"))]
    steps = sorted(int(p.rsplit("-", 1)[1]) for p in prefixes)
    assert steps[-1] == STEPS and set(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY)) <= set(steps)
    for prefix in prefixes:
        assert checkpoint_is_complete(prefix) is None, prefix
    assert not glob.glob(os.path.join(save_dir, "*_temp*"))


def test_each_step_is_logged_once_in_order(killed_run):
    from ddsp_models.training.train_loop import read_loss_log

    steps = [r["step"] for r in read_loss_log(killed_run["save_dir"])]
    assert steps == list(range(1, STEPS + 1))


def test_final_weights_equal_an_uninterrupted_run(killed_run):
    from ddsp_models.training.train_loop import read_loss_log

    killed = _final_variables(killed_run["save_dir"])
    reference = _final_variables(killed_run["reference_dir"])
    assert killed.keys() == reference.keys() and len(killed) > 10
    for name, value in reference.items():
        np.testing.assert_allclose(killed[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    # ... and so does every logged loss, step by step.
    a = [r["losses"]["total_loss"] for r in read_loss_log(killed_run["save_dir"])]
    b = [r["losses"]["total_loss"] for r in read_loss_log(killed_run["reference_dir"])]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    # Training moved the weights (the comparison is not between two untouched models).
    first = tf.train.load_checkpoint(os.path.join(killed_run["reference_dir"],
                                                  f"ckpt-{SAVE_EVERY}"))
    assert max(float(np.max(np.abs(first.get_tensor(n) - v))) for n, v in reference.items()
               if not n.startswith(("step", "save_counter"))) > 1e-3
