"""One bad run never stops the others: evaluate and sample score / render every run they
can, name each failed run and its cause in errors.json, and exit non-zero at the end."""
import copy
import json
import os

import yaml


def _params_file(tmp_path, trained_tiny_runs, runs):
    overrides = copy.deepcopy(trained_tiny_runs["overrides"])
    overrides["evaluate"].update(runs=runs, metrics_dir=str(tmp_path / "metrics"))
    overrides["sample"].update(runs=runs, samples_dir=str(tmp_path / "samples"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return str(path)


def test_evaluate_scores_the_good_runs_and_names_the_failed_one(tmp_path, trained_tiny_runs,
                                                                capsys):
    from pipelines import evaluate

    # zmidiae was never trained: no checkpoint, no config.
    path = _params_file(tmp_path, trained_tiny_runs, ["zmidiae", "ae", "midiae"])
    assert evaluate.main(["--params", path]) == 1
    for run, step in (("ae", 6), ("midiae", 3)):
        with open(tmp_path / "metrics" / f"{run}.json") as f:
            record = json.load(f)
        assert record["step"] == step and record["spectral_loss"] > 0
    assert not (tmp_path / "metrics" / "zmidiae.json").exists()
    with open(tmp_path / "metrics" / "errors.json") as f:
        failed = json.load(f)["failed"]
    assert [f["run"] for f in failed] == ["zmidiae"]
    assert "no operative_config" in failed[0]["error"] and "train it first" in failed[0]["error"]
    assert "zmidiae FAILED" in capsys.readouterr().out


def test_sample_renders_the_good_runs_and_names_the_failed_one(tmp_path, trained_tiny_runs):
    from pipelines import sample

    path = _params_file(tmp_path, trained_tiny_runs, ["ae", "zmidiae"])
    assert sample.main(["--params", path]) == 1
    with open(tmp_path / "samples" / "ae" / "samples.json") as f:
        record = json.load(f)
    assert record["resynthesis"] and os.path.getsize(record["resynthesis"][0]["resynth"]) > 1000
    assert record["transfer"] and os.path.isfile(record["transfer"]["transfer"])
    with open(tmp_path / "samples" / "errors.json") as f:
        failed = json.load(f)["failed"]
    assert [f["run"] for f in failed] == ["zmidiae"] and "zmidiae" in failed[0]["error"]
    # All good again: the stage succeeds and the stale errors.json is gone.
    path = _params_file(tmp_path, trained_tiny_runs, ["ae"])
    assert sample.main(["--params", path]) == 0
    assert not (tmp_path / "samples" / "errors.json").exists()
