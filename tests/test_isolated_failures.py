"""One bad run never stops the others: evaluate and sample score / render every run they
can, name each failed run and its cause in errors.json, and exit non-zero at the end."""
import copy
import json
import os

import yaml


def _params_file(tmp_path, trained_tiny_runs, runs):
    overrides = copy.deepcopy(trained_tiny_runs["overrides"])
    overrides["evaluate"].update(runs=runs)
    overrides["sample"].update(runs=runs)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return str(path)


def _args(tmp_path, trained_tiny_runs, runs, out):
    """The stage's command line: the params file, the tiny runs, `out` under tmp_path."""
    folders = trained_tiny_runs["folders"]
    return ["--params", _params_file(tmp_path, trained_tiny_runs, runs),
            "--data-dir", folders.data_dir, "--runs-dir", folders.runs_dir,
            "--out-dir", str(tmp_path / out)]


def test_evaluate_scores_the_good_runs_and_names_the_failed_one(tmp_path, trained_tiny_runs,
                                                                capsys):
    from pipelines import evaluate

    # zmidiae was never trained: no checkpoint, no config.
    args = _args(tmp_path, trained_tiny_runs, ["zmidiae", "ae", "midiae"], "metrics")
    assert evaluate.main(args) == 1
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

    assert sample.main(_args(tmp_path, trained_tiny_runs, ["ae", "zmidiae"], "samples")) == 1
    with open(tmp_path / "samples" / "ae" / "samples.json") as f:
        record = json.load(f)
    assert record["resynthesis"] and os.path.getsize(record["resynthesis"][0]["resynth"]) > 1000
    assert record["transfer"] and os.path.isfile(record["transfer"]["transfer"])
    with open(tmp_path / "samples" / "errors.json") as f:
        failed = json.load(f)["failed"]
    assert [f["run"] for f in failed] == ["zmidiae"] and "zmidiae" in failed[0]["error"]
    # All good again: the stage succeeds and the stale errors.json is gone.
    assert sample.main(_args(tmp_path, trained_tiny_runs, ["ae"], "samples")) == 0
    assert not (tmp_path / "samples" / "errors.json").exists()
