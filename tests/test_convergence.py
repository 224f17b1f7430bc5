"""benchmarks/convergence.py: trains a run of the params and scores it every N steps with
the evaluate stage's code (tiny run on the pipeline's tone dataset)."""
import csv
import importlib.util
import json
import math
import os

import pytest

from ddsp_models.training.params import load_params
from pipeline_fixtures import tiny_overrides

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _convergence():
    spec = importlib.util.spec_from_file_location(
        "convergence", os.path.join(REPO, "benchmarks", "convergence.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convergence_evaluates_every_step_and_writes_the_table(tone_dataset, tmp_path, capsys):
    convergence = _convergence()
    params = load_params(None, tiny_overrides())
    out = str(tmp_path / "conv")
    rows = convergence.converge(params, "ae", steps=2, every=1, seconds=None, out_dir=out,
                                data_dir=tone_dataset)
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["n_examples"] == 2  # the tone dataset's test split
        for name in ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio"):
            assert math.isfinite(row[name]) and row[name] >= 0.0, (name, row)
        assert 0.0 <= row["f0_outlier_ratio"] <= 1.0
    assert rows[0]["total_loss"] is None and all(r["total_loss"] > 0 for r in rows[1:])
    assert rows[2]["train_s"] >= rows[1]["train_s"] > 0 and rows[2]["steps_per_s"] > 0
    # Training moved the weights: the resynthesis changed between evaluations.
    assert rows[0]["loudness_l1_db"] != rows[2]["loudness_l1_db"]
    assert os.path.exists(os.path.join(out, "ckpt-2.index"))
    with open(os.path.join(out, "convergence.csv")) as f:
        table = list(csv.DictReader(f))
    assert [int(r["step"]) for r in table] == [0, 1, 2]
    assert float(table[2]["f0_l1_semitones"]) == pytest.approx(rows[2]["f0_l1_semitones"])
    with open(os.path.join(out, "convergence.jsonl")) as f:
        assert [json.loads(line)["step"] for line in f] == [0, 1, 2]
    printed = capsys.readouterr().out
    assert "f0_l1_semi" in printed and "results in" in printed
    with open(os.path.join(out, "convergence.md")) as f:
        markdown = f.read()
    assert markdown in printed and markdown.startswith("| step |")
    assert markdown.count("\n| ") == 3  # 3 steps
    assert all(r["usable"] == convergence.is_usable("ae", r) for r in rows)
    # Usable audio: every bound of the run met (issue 11's targets).
    good = {"f0_l1_semitones": 0.4, "f0_outlier_ratio": 0.1, "loudness_l1_db": 1.5}
    assert convergence.is_usable("ae", good)
    assert not convergence.is_usable("ae", {**good, "loudness_l1_db": 2.5})
    assert not convergence.is_usable("ae", {**good, "f0_l1_semitones": float("nan")})
    assert convergence.is_usable("midiae", {**good, "f0_outlier_ratio": 0.3})
    table = convergence.markdown_table("ae", [{"step": 0, **good, "usable": False},
                                              {"step": 100, **good, "usable": True}])
    assert table.splitlines()[2].startswith("| 0 |") and "first at step 100" in table
    # A time budget stops at the first evaluation after it.
    assert not convergence.finished(1, 2, train_s=5.0, seconds=None)
    assert convergence.finished(2, 2, train_s=5.0, seconds=None)
    assert convergence.finished(1, 50, train_s=5.0, seconds=4.0)
    assert not convergence.finished(1, 50, train_s=3.0, seconds=4.0)


def test_convergence_names_what_is_missing(tmp_path, tone_dataset):
    convergence = _convergence()
    params = load_params(None, tiny_overrides())
    with pytest.raises(ValueError, match="dvc repro dataset"):
        convergence.converge(params, "ae", 1, 1, None, str(tmp_path / "a"),
                             data_dir=str(tmp_path / "nowhere"))
    params = load_params(None, {**tiny_overrides(), "train": {
        **tiny_overrides()["train"], "midiae": {"warm_start": "ae"}}})
    with pytest.raises(ValueError, match="warm-start.*no-warm-start"):  # runs/ae not trained
        convergence.converge(params, "midiae", 1, 1, None, str(tmp_path / "b"),
                             data_dir=tone_dataset, runs_dir=str(tmp_path / "runs"))
    assert convergence.parse_set(["train.ae.steps=3", "train.learning_rate=1e-3"]) == {
        "train": {"ae": {"steps": 3}, "learning_rate": 1e-3}}
    with pytest.raises(ValueError, match="section.key=value"):
        convergence.parse_set(["steps"])
