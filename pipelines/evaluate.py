"""DVC stage ``evaluate``: the Prefect flow ``evaluate`` over trained runs.

For each run of ``evaluate.runs`` (tasks ``load-<run>`` and ``evaluate-<run>``): the model
is rebuilt from the run's operative config and newest checkpoint, resynthesises every
clip of ``evaluate.split``, and is scored with `ddsp_models.training.evaluation.evaluate_model`:
multi-scale spectral loss; loudness L1 (dB) and f0 L1 (semitones, CREPE on the
resynthesis, frames where the ground truth is confident) with the f0 outlier ratio; and
for the MIDI models on a dataset with note annotations, mir_eval note and frame metrics.
Results go to ``<out-dir>/<run>.json`` (DVC metrics: the mean of each metric),
``<out-dir>/details/<run>.json`` (mean, median, std and counts), the log, a table
artifact ``evaluation-metrics`` and a markdown artifact ``evaluation`` in the Prefect UI. A
run that cannot be evaluated (no checkpoint, a broken config, ...) does not stop the others:
it is listed with its cause in ``<out-dir>/errors.json`` and the CLI exits with status 1
after scoring the rest.

CLI: ``python -m pipelines.evaluate --params params.yaml --data-dir data/tfds --runs-dir runs
--out-dir metrics [--run ae ...]``.
"""
import json
import os
import sys

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import load_params

HEADLINE = ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio",
            "note_onset_f1", "note_f1", "frame_f1")


def spectral_metric():
    """The models' reconstruction loss: multi-scale (2048..64) L1 on magnitudes plus L1 on
    log magnitudes, the same for every run. (Magnitudes alone would score a near-silent
    output well.)"""
    from ddsp_models.losses import SpectralLoss

    # Every argument explicit: the run's gin config (parsed to rebuild its model) may bind
    # SpectralLoss differently, and the metric must be the same for every run.
    return SpectralLoss(fft_sizes=(2048, 1024, 512, 256, 128, 64), loss_type="L1",
                        mag_weight=1.0, logmag_weight=1.0, delta_time_weight=0.0,
                        delta_freq_weight=0.0, cumsum_freq_weight=0.0, loudness_weight=0.0)


def metrics_record(run: str, step: int, summary: dict, split: str, n_examples: int) -> dict:
    """The JSON written for DVC: the mean of every metric (plain floats or null)."""
    record = {"run": run, "step": step, "split": split, "n_examples": n_examples}
    for name, stats in summary.items():
        mean = stats.get("mean")
        record[name] = None if mean is None or mean != mean else float(mean)
    return record


def score_model(model, params: dict, run: str, info, batches=None) -> dict:
    """`ddsp_models.training.evaluation.evaluate_model` summary of a model of `run` on the
    ``evaluate.split`` clips, with the stage's settings (``benchmarks/convergence.py``
    scores its models with this too)."""
    from ddsp_models.training import evaluation

    settings = params["evaluate"]
    if batches is None:
        batches = run_config.split_batches(info.data_dir, settings["split"],
                                           settings["batch_size"])
    # Note metrics need annotations, and a transcribing model: without a midi_encoder the
    # MIDI models read the ground-truth notes, which would score a trivial 1.0.
    midi = (run in run_config.MIDI_RUNS and info.has_notes
            and getattr(model, "midi_encoder", None) is not None)
    return evaluation.evaluate_model(
        model, batches, sample_rate=info.sample_rate, frame_rate=info.frame_rate,
        crepe_capacity=settings["crepe_capacity"], midi=midi,
        min_f0_confidence=settings["min_f0_confidence"],
        outlier_semitones=settings["outlier_semitones"], spectral_loss=spectral_metric())


def n_examples_of(summary: dict) -> int:
    """Clips scored in an `evaluate_model` summary."""
    return max(int(s.get("n", 0)) + int(s.get("n_nan", 0)) for s in summary.values())


def evaluate_one(params: dict, run: str, info, runs_dir: str, metrics_dir: str) -> dict:
    """Scores the trained run ``<runs_dir>/<run>``; writes ``<metrics_dir>/<run>.json`` (and
    the details) and returns its metrics record."""
    from ddsp_models.training.inference import load_trained_model
    from ddsp_models.training.models.model import checkpoint_step

    settings = params["evaluate"]
    folder = run_config.run_dir(runs_dir, run)
    batches = run_config.split_batches(info.data_dir, settings["split"], settings["batch_size"])
    model = load_trained_model(folder, next(iter(batches)))
    step = checkpoint_step(folder)
    summary = score_model(model, params, run, info, batches)
    n_examples = n_examples_of(summary)
    record = metrics_record(run, step, summary, settings["split"], n_examples)
    path = os.path.join(metrics_dir, f"{run}.json")
    details_path = os.path.join(metrics_dir, "details", f"{run}.json")
    os.makedirs(os.path.dirname(details_path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    with open(details_path, "w", encoding="utf-8") as f:
        json.dump({**record, "details": summary}, f, indent=1)
    return {**record, "details": summary, "path": path, "details_path": details_path}


def make_evaluate_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(name="evaluate-run", cache_policy=NO_CACHE, persist_result=False)
    def evaluate_task(params: dict, run: str, info, runs_dir: str, metrics_dir: str) -> dict:
        record = evaluate_one(params, run, info, runs_dir, metrics_dir)
        logger = flow_utils.get_logger(__name__)
        logger.info("%s (step %d, %d %s clips): %s", run, record["step"], record["n_examples"],
                    record["split"], {k: record[k] for k in HEADLINE if record.get(k) is not None})
        return record

    @flow(name="evaluate", log_prints=True)
    def evaluate_flow(params_path: str | None, runs: list | None, overrides: dict | None,
                      folders: dict) -> dict:
        """Scores trained runs on the held-out split; one metrics file per run
        (`folders`: ``data_dir``, ``runs_dir``, ``metrics_dir``)."""
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            folders = run_config.Folders.of(folders)
            runs_dir, metrics_dir = folders.get("runs_dir"), folders.get("metrics_dir")
            info = run_config.dataset_info(folders.get("data_dir"))
            records, failed = {}, {}
            for run in runs or params["evaluate"]["runs"]:
                run_config.check_run(run)
                try:  # one run's failure (no checkpoint, ...) never stops the others
                    records[run] = evaluate_task.with_options(
                        task_run_name=f"evaluate-{run}")(params, run, info, runs_dir, metrics_dir)
                except Exception as error:  # noqa: BLE001 - reported, then the next run
                    failed[run] = flow_utils.error_entry(run, error)
                    flow_utils.get_logger(__name__).error("%s: not evaluated: %s", run,
                                                          failed[run]["error"])
            flow_utils.write_errors(metrics_dir, failed)
            rows = [{"run": run, "step": r["step"],
                     **{k: r[k] for k in HEADLINE if any(x.get(k) is not None
                                                         for x in records.values())}}
                    for run, r in records.items()]
            flow_utils.publish_table("evaluation-metrics", rows,
                                     f"{params['evaluate']['split']} split: metrics per run")
            flow_utils.publish_markdown(
                "evaluation", "# Evaluation\n\n" + flow_utils.markdown_table(rows)
                + "\n" + flow_utils.file_links([r["path"] for r in records.values()], "metrics")
                + flow_utils.errors_markdown(failed), "metrics per run")
            return {**records, **failed}

    return evaluate_flow


def evaluate_runs(params_path: str | None, runs: list | None = None,
                  overrides: dict | None = None, *, folders) -> dict:
    """Runs the ``evaluate`` flow, named and tagged with its runs and params digest
    (`folders`: a `run_config.Folders` or mapping with ``data_dir``, ``runs_dir`` and
    ``metrics_dir``)."""
    return flow_utils.run_flow_over_runs(make_evaluate_flow, "evaluate", params_path, runs,
                                         overrides, folders)


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--data-dir": "the prepared dataset (stage dataset)",
        "--runs-dir": "folder of the trained runs, <runs-dir>/<run>",
        "--out-dir": "output folder of the metrics"}, runs="evaluate")
    args = flow_utils.parse_stage_args(parser, argv)
    records = evaluate_runs(args.params, args.run, folders=run_config.Folders(
        data_dir=args.data_dir, runs_dir=args.runs_dir, metrics_dir=args.out_dir))
    for run, record in records.items():
        if "error" in record:
            print(run, "FAILED:", record["error"])
        else:
            print(run, json.dumps({k: record[k] for k in HEADLINE if record.get(k) is not None}))
    # Every run that could be scored was; a failed one makes the stage fail at the end.
    return 1 if any("error" in r for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
