"""The ``evaluate`` flow (pipelines/evaluate.py): metrics files of trained runs."""
import asyncio
import json
import math
import os

import numpy as np
import pytest

from ddsp_models import seeding
from model_fixtures import same_noise_for_every_example
from pipelines.evaluate import evaluate_runs


def test_evaluate_flow_writes_one_metrics_file_per_run(trained_tiny_runs, monkeypatch):
    folders = trained_tiny_runs["folders"]
    # The flow's model calls (in Prefect's worker threads) and the direct ones below draw the
    # same filtered noise.
    monkeypatch.setattr(seeding, "uniform", same_noise_for_every_example)
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
    # The stored means are those of the metric functions on the run's own resynthesis of
    # the test clips: loudness L1 recomputed by hand, the spectral loss with the stage's loss.
    with open(os.path.join(metrics_dir, "ae.json")) as f:
        stored = json.load(f)
    direct = recompute_ae_metrics(folders)
    assert stored["loudness_l1_db"] == pytest.approx(direct["loudness_l1_db"], rel=1e-5)
    assert stored["spectral_loss"] == pytest.approx(direct["spectral_loss"], rel=1e-5)


def recompute_ae_metrics(folders) -> dict:
    """loudness_l1_db and spectral_loss of the trained tiny ``ae`` run on the test split,
    computed directly from its resynthesis (batch of 2 = the whole split)."""
    from ddsp_models import spectral_ops
    from ddsp_models.training.run_config import split_batches
    from ddsp_models.training.run_folders import load_trained_model
    from pipelines.evaluate import spectral_metric

    (batch,) = [{k: v.numpy() for k, v in b.items() if k != "id"}
                for b in split_batches(folders.data_dir, "test", 2)]
    model = load_trained_model(os.path.join(folders.runs_dir, "ae"), batch)
    audio_gen = np.asarray(model.get_audio_from_outputs(model(batch, training=False)))
    n_frames = batch["loudness_db"].shape[1]
    loudness = np.asarray(spectral_ops.compute_loudness(audio_gen, 16000, 250, use_tf=False))
    loudness_l1 = np.abs(loudness[:, :n_frames] - batch["loudness_db"]).mean(axis=1)
    loss = spectral_metric()
    spectral = [float(loss(batch["audio"][i:i + 1], audio_gen[i:i + 1])) for i in range(2)]
    return {"loudness_l1_db": float(loudness_l1.mean()), "spectral_loss": float(np.mean(spectral))}


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
