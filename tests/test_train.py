"""The ``train`` flow (pipelines/train.py): chunked, checkpointed, retried, warm-started."""
import asyncio
import json
import os

import numpy as np
import pytest

from pipeline_fixtures import tiny_folders, tiny_overrides
from pipelines import train as train_stage
from pipelines.train import chunk_ends, train_run


def test_chunks_end_on_multiples_of_the_chunk_size_then_at_the_last_step():
    assert chunk_ends(0, 250, 100) == [100, 200, 250]
    assert chunk_ends(100, 250, 100) == [200, 250]
    assert chunk_ends(130, 300, 100) == [200, 300]
    assert chunk_ends(300, 300, 100) == []
    with pytest.raises(ValueError, match="chunk_steps"):
        chunk_ends(0, 10, 0)


def _flow_run_with_tasks(flow_run_id):
    """The flow run with this id and its task runs, read back from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    async def read():
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            tasks = await client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[run.id])))
            return run, tasks

    return asyncio.run(read())


def test_train_flow_writes_checkpoints_losses_and_plots(trained_tiny_runs):
    root = trained_tiny_runs["root"]
    summary = trained_tiny_runs["results"]["ae"]
    run_dir = os.path.join(root, "runs", "ae")
    assert summary["step"] == 6
    # Two chunks of 3 steps, each ending with a checkpoint (2 kept).
    assert [(c["start_step"], c["end_step"]) for c in summary["chunks"]] == [(0, 3), (3, 6)]
    assert os.path.exists(os.path.join(run_dir, "ckpt-6.index"))
    assert os.path.exists(os.path.join(run_dir, "operative_config-6.gin"))
    with open(os.path.join(run_dir, "losses.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [1, 2, 3, 4, 5, 6]
    # The loss table for `dvc plots` has one row per logged step, finite losses.
    with open(os.path.join(root, "plots", "ae", "losses.csv")) as f:
        rows = [line.strip().split(",") for line in f]
    assert rows[0][0] == "step" and "total_loss" in rows[0]
    total = np.array([float(r[rows[0].index("total_loss")]) for r in rows[1:]])
    assert len(total) == 6 and np.all(np.isfinite(total)) and np.all(total > 0)
    png = os.path.join(root, "plots", "ae", "losses.png")
    assert os.path.getsize(png) > 1000


def test_train_flow_run_is_named_tagged_and_made_of_visible_tasks(trained_tiny_runs):
    flow_run, task_runs = _flow_run_with_tasks(
        trained_tiny_runs["results"]["ae"]["flow_run_id"])
    assert flow_run.name.startswith("train-ae-6steps-b2-"), flow_run.name
    assert flow_run.state.is_completed()
    assert {"train", "run:ae", "steps:6", "batch:2"} <= set(flow_run.tags)
    assert any(t.startswith("params:") for t in flow_run.tags)
    names = {t.name for t in task_runs}
    assert {"train-chunk-0-to-3", "train-chunk-1-to-6"} <= names
    for task_name in ("dataset-info", "resolve-config", "load-dataset", "build-model",
                      "warm-start", "report-training"):  # Prefect adds "-<n>" to these
        assert any(n.startswith(task_name + "-") for n in names), (task_name, names)


def test_training_progress_reaches_the_prefect_run_logs(trained_tiny_runs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flow_run, _ = _flow_run_with_tasks(trained_tiny_runs["results"]["ae"]["flow_run_id"])

    async def read():
        async with get_client() as client:
            return await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))

    messages = [log.message for log in asyncio.run(read())]
    # Per logged step from the training loop (steps/s and ETA), per chunk from the flow.
    assert any("total_loss" in m and "steps/s" in m and "ETA" in m and m.startswith("step ")
               for m in messages), messages[:20]
    assert any(m.startswith("ae: chunk 2/2 done, step 6/6") for m in messages)


def test_warm_started_midi_autoencoder_starts_from_the_autoencoder_decoder(trained_tiny_runs):
    import tensorflow as tf

    from ddsp_models.training.data import PreparedTfdsProvider
    from ddsp_models.training.inference import load_trained_model

    root = trained_tiny_runs["root"]
    summary = trained_tiny_runs["results"]["midiae"]
    assert summary["step"] == 3
    data_dir = trained_tiny_runs["folders"].data_dir
    batch = next(iter(PreparedTfdsProvider(data_dir=data_dir).get_batch(1, shuffle=False)))
    batch = {k: v for k, v in batch.items() if k != "id"}
    ae = load_trained_model(os.path.join(root, "runs", "ae"), batch)
    decoder_weights = [w.numpy() for w in ae.decoder.weights]
    # The step-0 checkpoint of midiae is the warm-started model, before any training.
    midiae = load_trained_model(os.path.join(root, "runs", "midiae"), batch)
    trained = [w.numpy() for w in midiae.synthcoder.weights]
    midiae.restore(os.path.join(root, "runs", "midiae", "ckpt-0"))
    initial = [w.numpy() for w in midiae.synthcoder.weights]
    assert len(initial) == len(decoder_weights) > 0
    for start, source in zip(initial, decoder_weights):
        np.testing.assert_array_equal(start, source)
    # ... and training moved it on from there.
    assert any(not np.array_equal(a, b) for a, b in zip(trained, initial))
    tf.keras.backend.clear_session()


def test_a_failed_chunk_is_retried_and_resumes_from_its_checkpoint(tmp_path, tone_dataset,
                                                                   prefect_harness,
                                                                   monkeypatch):
    real = train_stage.run_chunk_steps
    seen = []

    def fail_once_in_second_chunk(session, until_step):
        seen.append((until_step, session.trainer.get_step()))
        if until_step == 6 and sum(1 for u, _ in seen if u == 6) == 1:
            # Half-done work that was never checkpointed: zeroed weights, 2 extra steps.
            for weight in session.trainer.model.trainable_weights:
                weight.assign(np.zeros(weight.shape, np.float32))
            session.trainer.optimizer.iterations.assign_add(2)
            raise RuntimeError("simulated crash in the middle of a chunk")
        result = real(session, until_step)
        seen.append(("started", result["start_step"]))
        return result

    monkeypatch.setattr(train_stage, "run_chunk_steps", fail_once_in_second_chunk)
    summary = train_run(None, "ae", tiny_overrides(), folders=tiny_folders(tmp_path, tone_dataset))
    chunks = summary["chunks"]
    assert [c["attempt"] for c in chunks] == [1, 2]
    # The retry started from the step-3 checkpoint: not from zero, not from the crash.
    assert chunks[1]["start_step"] == 3 and chunks[1]["end_step"] == 6
    assert ("started", 3) in seen
    assert summary["step"] == 6
    # ... with the checkpoint's weights, not the zeroed ones: 3 more steps left the
    # decoder close to its step-3 checkpoint (zeroed weights would have stayed near 0).
    from ddsp_models.training.data import PreparedTfdsProvider
    from ddsp_models.training.inference import load_trained_model

    batch = next(iter(PreparedTfdsProvider(data_dir=tone_dataset).get_batch(1, shuffle=False)))
    model = load_trained_model(os.path.join(tmp_path, "runs", "ae"),
                               {k: v for k, v in batch.items() if k != "id"})
    final = np.concatenate([w.numpy().ravel() for w in model.decoder.weights])
    model.restore(os.path.join(tmp_path, "runs", "ae", "ckpt-3"))
    at_step_3 = np.concatenate([w.numpy().ravel() for w in model.decoder.weights])
    assert np.linalg.norm(final - at_step_3) < 0.25 * np.linalg.norm(at_step_3)


def test_rerunning_a_finished_run_resumes_and_more_steps_continue_it(tmp_path, tone_dataset,
                                                                     prefect_harness):
    overrides, folders = tiny_overrides(), tiny_folders(tmp_path, tone_dataset)
    overrides["train"]["ae"]["steps"] = 3
    first = train_run(None, "ae", overrides, folders=folders)
    assert first["step"] == 3
    again = train_run(None, "ae", overrides, folders=folders)
    assert again["chunks"] == [] and again["step"] == 3
    overrides["train"]["ae"]["steps"] = 5
    more = train_run(None, "ae", overrides, folders=folders)
    assert [(c["start_step"], c["end_step"]) for c in more["chunks"]] == [(3, 5)]
    # Another model size cannot reuse the checkpoints: the run starts afresh.
    overrides["train"]["ae"]["rnn_channels"] = 12
    fresh = train_run(None, "ae", overrides, folders=folders)
    assert fresh["chunks"][0]["start_step"] == 0 and fresh["step"] == 5


def test_bad_params_name_the_key(tmp_path):
    from ddsp_models.training.params import load_params

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  ae:\n    stepz: 3\n")
    with pytest.raises(ValueError, match=r"train\.ae\.stepz"):
        load_params(str(path))
    path.write_text("train:\n  ae:\n    steps: 0\n")
    with pytest.raises(ValueError, match=r"params.yaml: train\.ae\.steps"):
        load_params(str(path))
    with pytest.raises(ValueError, match="not found"):
        load_params(str(tmp_path / "missing.yaml"))
    path.write_text("train:\n  steps_per_eval: -5\n")
    with pytest.raises(ValueError, match=r"train\.steps_per_eval = -5: expected an integer >= 0"):
        load_params(str(path))
    path.write_text("train:\n  eval_examples: 0\n")
    with pytest.raises(ValueError, match=r"train\.eval_examples"):
        load_params(str(path))
    path.write_text("report:\n  max_audio_seconds: 0\n")
    with pytest.raises(ValueError, match=r"report\.max_audio_seconds"):
        load_params(str(path))


def _artifacts_of(flow_run_id) -> dict:
    """{key: [artifacts, oldest first]} of one flow run, read back from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
                    any_=[flow_run_id])), sort=ArtifactSort.CREATED_DESC)

    found = {}
    for artifact in reversed(asyncio.run(read())):
        found.setdefault(artifact.key, []).append(artifact)
    return found


def test_train_flow_shows_progress_loss_table_and_pictures_in_the_prefect_ui(trained_tiny_runs):
    import base64
    import io

    from PIL import Image

    root = trained_tiny_runs["root"]
    summary = trained_tiny_runs["results"]["ae"]
    artifacts = _artifacts_of(summary["flow_run_id"])
    (progress,) = artifacts["ae-training-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert progress.description.startswith("ae: step 6 of 6")
    (table,) = artifacts["ae-losses"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    with open(os.path.join(root, "runs", "ae", "losses.jsonl")) as f:
        logged = [json.loads(line) for line in f]
    assert [r["step"] for r in rows] == [r["step"] for r in logged] == [1, 2, 3, 4, 5, 6]
    assert [r["total_loss"] for r in rows] == pytest.approx(
        [r["losses"]["total_loss"] for r in logged])
    # Pictures travel inside the artifacts as data URLs (the UI shows them): PNG, or JPEG
    # for a PNG over 150 kB.
    for key, size in (("ae-loss-curve", (800, 450)), ("ae-spectrogram", (800, 500))):
        (image,) = artifacts[key]
        assert image.type == "image"
        assert image.data.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
        with Image.open(io.BytesIO(base64.b64decode(image.data.split(",", 1)[1]))) as picture:
            assert picture.size == size
    (markdown,) = artifacts["ae-training"]
    assert markdown.data.count("](data:image/") == 2
    assert "file://" not in markdown.data
    # The validation summaries behind the spectrogram: at the end of each 3-step chunk.
    from test_summaries import read_events

    events = read_events(os.path.join(root, "runs", "ae", "summaries", "valid"))
    assert sorted({step for step, _ in events}) == [3, 6]
    assert events[(6, "audio/1_original")].audio.length_frames == 8000
