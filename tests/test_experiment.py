"""The ``experiment`` flow (scripts/experiment.py): train -> evaluate -> sample."""
import os

import pytest

from ddsp_models.training.params import load_params
from scripts.experiment import main, run_experiment, training_order


def test_warm_start_sources_are_trained_first():
    params = load_params(None, {"train": {"midiae": {"warm_start": "ae"}}})
    assert training_order(params, ["midiae"]) == ["ae", "midiae"]
    assert training_order(params, ["zmidiae", "midiae", "ae"]) == ["zmidiae", "ae", "midiae"]
    no_warm = load_params(None, {"train": {"midiae": {"warm_start": None}}})
    assert training_order(no_warm, ["midiae"]) == ["midiae"]
    with pytest.raises(ValueError, match="unknown run"):
        training_order(params, ["gan"])


def test_experiment_flow_resumes_training_then_evaluates_and_samples(trained_tiny_runs):
    folders = trained_tiny_runs["folders"]
    result = run_experiment(None, ["ae"], trained_tiny_runs["overrides"], folders=folders)
    # Already trained to its steps: the train subflow resumes and has nothing to do.
    assert result["train"]["ae"]["step"] == 6 and result["train"]["ae"]["chunks"] == []
    assert result["evaluate"]["ae"]["step"] == 6
    assert os.path.isfile(os.path.join(folders.metrics_dir, "ae.json"))
    assert os.path.isfile(result["sample"]["ae"]["transfer"]["transfer"])


def test_the_command_line_needs_every_folder(capsys):
    with pytest.raises(SystemExit):
        main(["--params", "params.yaml", "--data-dir", "data/tfds", "--runs-dir", "runs"])
    assert "--plots-dir" in capsys.readouterr().err
