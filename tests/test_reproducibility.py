"""One seed, one run: a seeded training run repeats bit for bit in a new process."""
import json
import os
import subprocess
import sys

import keras
import numpy as np

from ddsp_models.training.reproducibility import graphs_are_deterministic, seed_training

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(TESTS_DIR, "seeded_step_probe.py")


def test_seed_training_repeats_the_initial_weights_and_turns_the_graph_optimiser_off():
    seed_training(11)
    first = keras.layers.Dense(4)
    first.build((None, 3))
    seed_training(11)
    again = keras.layers.Dense(4)
    again.build((None, 3))
    seed_training(12)
    other = keras.layers.Dense(4)
    other.build((None, 3))
    np.testing.assert_array_equal(first.kernel.numpy(), again.kernel.numpy())
    assert not np.array_equal(first.kernel.numpy(), other.kernel.numpy())
    assert graphs_are_deterministic()


def test_two_processes_train_the_zmidiae_run_to_the_same_bits(tone_dataset):
    """The ZMidiAutoencoder run of params.yaml (the run whose metrics moved by 5 dB between
    identical runs before grappler was turned off), two fresh processes side by side, four
    steps each: every total loss and every weight equal to the last bit."""
    command = [sys.executable, PROBE, tone_dataset, "zmidiae", "4"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = results
    assert len(first["total_loss"]) == 4 and first["total_loss"][-1] < first["total_loss"][0]
    assert first == second
