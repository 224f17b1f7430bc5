"""The ``evaluate`` flow (pipelines/evaluate.py): metrics files of trained runs."""
import asyncio
import json
import math
import os

from pipelines.evaluate import evaluate_runs


def test_evaluate_flow_writes_one_metrics_file_per_run(trained_tiny_runs):
    folders = trained_tiny_runs["folders"]
    records = evaluate_runs(None, ["ae", "midiae"], trained_tiny_runs["overrides"],
                            folders=folders)
    metrics_dir = folders.metrics_dir
    for run, step in (("ae", 6), ("midiae", 3)):
        with open(os.path.join(metrics_dir, f"{run}.json")) as f:
            stored = json.load(f)
        with open(os.path.join(metrics_dir, "details", f"{run}.json")) as f:
            stored["details"] = json.load(f)["details"]
        assert stored["run"] == run and stored["step"] == step
        assert stored["split"] == "test" and stored["n_examples"] == 2
        for name in ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio"):
            assert math.isfinite(stored[name]), (run, name)
            assert stored[name] == stored["details"][name]["mean"]
        assert 0.0 <= stored["f0_outlier_ratio"] <= 1.0
        assert stored["spectral_loss"] > 0 and stored["loudness_l1_db"] >= 0
        # The tones' ground truth is confident on every frame of both test clips.
        assert stored["n_confident_frames"] == 125
        assert records[run]["step"] == step
    # Ground-truth-notes MIDI models read the reference notes: no trivial note scores.
    assert "note_f1" not in records["midiae"]


def test_evaluate_publishes_a_markdown_table(trained_tiny_runs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    evaluate_runs(None, ["ae"], trained_tiny_runs["overrides"],
                  folders=trained_tiny_runs["folders"])

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evaluation"])),
                sort=ArtifactSort.CREATED_DESC, limit=1)

    # Other tests on the same harness server (the dvc repro one) publish evaluations
    # too; the newest is the one this call wrote.
    artifacts = asyncio.run(read())
    assert artifacts
    table = artifacts[0].data
    assert "| run | step | spectral_loss" in table and "| ae | 6 |" in table
