"""DVC stages ``train_<run>``: the Prefect flow ``train`` for one run of the params
(`ddsp_models.training.params`).

Tasks (each a task run in the Prefect UI): ``dataset-info`` (what the prepared dataset
holds: rates, clip length, note annotations) -> ``resolve-config`` (gin files + params ->
bindings; the text is kept as ``<run>/resolved_config.gin``) -> ``load-dataset`` ->
``build-model`` (model + optimizer variables) -> ``warm-start``
(`train_loop.resume_or_warm_start`: resume from the run's newest checkpoint, else a partial
restore with key mapping, e.g. the ``ae`` run's ``decoder`` into the MIDI model's
``synthcoder``, saved as the step-0 checkpoint) -> ``train-chunk-<i>``
(`train_loop.TrainingSession`: ``train.chunk_steps`` steps each, continuing the previous
chunk and ending with a checkpoint; Prefect retries a failed chunk ``train.retries`` times
and only a retry first goes back to the newest checkpoint) -> ``report-training``
(``<plots-dir>/<run>/losses.csv`` and ``losses.png``).
The run's folder is ``<runs-dir>/<run>``; the gin configuration comes from
`ddsp_models.training.run_config` (params -> gin macros).

Every ``train.steps_per_eval`` steps the training loop writes TensorBoard audio,
spectrograms, f0 and piano rolls of the first ``train.eval_examples`` validation clips to
``<run>/summaries/valid`` (`ddsp_models.training.summaries`).

Artifacts in the Prefect UI: ``<run>-training-progress`` (a progress bar, moved after
every chunk), ``<run>-losses`` (table: the logged losses per step), ``<run>-loss-curve`` and
``<run>-spectrogram`` (images: the loss curve and the newest validation spectrogram,
carried as data URLs), ``<run>-training`` (markdown: final losses with both pictures).

Rerunning the stage after an interruption resumes from the newest checkpoint in the run
folder. Progress (step, loss, steps/s, ETA) goes to the terminal and the Prefect logs.

CLI: ``python -m pipelines.train --params params.yaml --data-dir data/tfds --runs-dir runs
--plots-dir plots --run ae [--fresh]``.
"""
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import RUNS, load_params

RESOLVED_CONFIG = "resolved_config.gin"
CONFIG_DIGEST = "config_digest.txt"
SUMMARY_FILE = "train_summary.json"


def validation_provider(info):
    """The dataset's ``valid`` split (the ``train`` split when ``valid`` is empty): the
    clips of the TensorBoard validation summaries."""
    from ddsp_models.training.data import PreparedTfdsProvider

    split = "valid" if info.splits.get("valid", 0) > 0 else "train"
    return PreparedTfdsProvider(data_dir=info.data_dir, split=split)


@dataclasses.dataclass(frozen=True)
class TrainTasks:
    """The ``train`` flow's Prefect tasks, in the order the flow runs them."""
    dataset_info: object
    resolve_config: object
    statistics: object
    load_dataset: object
    build_model: object
    warm_start: object
    train_chunk: object
    report: object


def _tasks() -> TrainTasks:
    """The flow's tasks (built lazily: importing this module does not import Prefect)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    options = dict(cache_policy=NO_CACHE, persist_result=False)

    @task(name="dataset-info", **options)
    def dataset_info_task(data_dir: str):
        info = run_config.dataset_info(data_dir)
        flow_utils.get_logger(__name__).info(
            "dataset %s: config %s, %d Hz, %d frames/s, %d samples per clip, splits %s",
            data_dir, info.config, info.sample_rate, info.frame_rate, info.n_samples,
            info.splits)
        return info

    @task(name="resolve-config", **options)
    def resolve_config_task(params: dict, run: str, info, save_dir: str, runs_dir: str) -> dict:
        import gin

        from ddsp_models.training.config import parse_gin

        files, bindings = run_config.gin_config(params, run, info)
        gin.clear_config()
        text = parse_gin(files, bindings)
        source, keys = run_config.warm_start_source(params, runs_dir, run)
        restart_if_config_changed(save_dir, config_digest(text, source, keys))
        with open(os.path.join(save_dir, RESOLVED_CONFIG), "w", encoding="utf-8") as f:
            f.write(text)
        logger = flow_utils.get_logger(__name__)
        logger.info("gin files %s", files)
        logger.info("bindings:\n  %s", "\n  ".join(bindings))
        return {"gin_files": files, "gin_bindings": bindings}

    @task(name="load-dataset", **options)
    def load_dataset_task():
        import gin

        provider = gin.query_parameter("train.data_provider").scoped_configurable_fn()
        flow_utils.get_logger(__name__).info("training data: %s", type(provider).__name__)
        return provider

    @task(name="build-model", **options)
    def build_model_task(provider, batch_size: int, strategy=None, seed: int | None = None,
                         max_nonfinite_steps: int = 0, precision: str = "float32"):
        from ddsp_models.training import models
        from ddsp_models.training.precision import precision_scope
        from ddsp_models.training.reproducibility import seed_training
        from ddsp_models.training.trainer import Trainer, get_strategy

        strategy = strategy or get_strategy()
        if seed is not None:  # weight initialisation, deterministic graphs (again: this thread)
            seed_training(seed)
        with strategy.scope(), precision_scope(precision):
            model = models.get_model()
            trainer = Trainer(model, strategy, seed=seed,
                              max_nonfinite_steps=max_nonfinite_steps)
        batch = next(iter(provider.get_batch(batch_size, shuffle=False, repeats=1)))
        trainer.build(batch)
        n_params = sum(int(w.numpy().size) for w in model.trainable_weights)
        flow_utils.get_logger(__name__).info("%s: %d trainable parameters",
                                             type(model).__name__, n_params)
        return trainer

    @task(name="warm-start", **options)
    def warm_start_task(trainer, save_dir: str, source: str | None, keys: list):
        """Resume from the run's own newest checkpoint, else warm-start from `source`
        (`resume_or_warm_start`); a run not resumed gets a checkpoint of its starting
        weights, so a retried first chunk starts from them."""
        from ddsp_models.training import checkpoints
        from ddsp_models.training.train_loop import resume_or_warm_start

        start = resume_or_warm_start(trainer, save_dir, source, keys)
        logger = flow_utils.get_logger(__name__)
        if start.resumed_from:
            logger.info("%s: resuming from %s (step %d)", save_dir, start.resumed_from,
                        start.step)
        else:
            if start.warm_started_from:
                logger.info("warm start: %s from %s", list(keys), start.warm_started_from)
            checkpoints.save(trainer, save_dir)
        return start

    @task(name="train-chunk", **options)
    def train_chunk_task(session, until_step: int) -> dict:
        """`session.run_until(until_step)`; a retry (Prefect's run count > 1) first goes
        back to the newest checkpoint, dropping the failed attempt's half-done work."""
        from prefect.runtime import task_run

        attempt = task_run.run_count
        if attempt > 1:
            session.resume()
        return dict(session.run_until(until_step), attempt=attempt)

    @task(name="report-training", **options)
    def report_task(run: str, save_dir: str, plots_dir: str, chunks: list, params: dict):
        return report_training(run, save_dir, plots_dir, chunks, params)

    @task(name="dataset-statistics", **options)
    def statistics_task(data_dir: str, save_dir: str) -> str:
        """``<run>/dataset_statistics.json`` (JSON, no pickle) of the prepared dataset's
        training split, which inference (`transfer`) and export read."""
        from ddsp_models.training.data import PreparedTfdsProvider
        from ddsp_models.training.run_folders import dataset_statistics_of, write_statistics

        stats = dataset_statistics_of(PreparedTfdsProvider(data_dir=data_dir, split="train"))
        path = write_statistics(save_dir, stats)
        flow_utils.get_logger(__name__).info(
            "%s: mean pitch %.1f, note pitch range %.1f-%.1f MIDI", path,
            stats["mean_pitch"] or float("nan"), stats["mean_min_pitch_note"] or float("nan"),
            stats["mean_max_pitch_note"] or float("nan"))
        return path

    return TrainTasks(dataset_info_task, resolve_config_task, statistics_task,
                      load_dataset_task, build_model_task, warm_start_task, train_chunk_task,
                      report_task)


def _worth_retrying(task, task_run, state) -> bool:
    """Prefect retry condition: not for a non-finite loss (the same batch would fail again
    from the same checkpoint); yes for anything else (a crash, a lost worker)."""
    from ddsp_models.training.trainer import NonFiniteError

    try:
        state.result()
    except NonFiniteError:
        return False
    except Exception:  # noqa: BLE001 - any other failure is retried
        return True
    return True


def config_digest(config_text: str, warm_start_dir: str | None, keys: list) -> str:
    """SHA-1 of a run's parsed configuration and, for a warm start, the source run's
    newest checkpoint (its index file's bytes)."""
    digest = hashlib.sha1(config_text.encode())
    if warm_start_dir is not None:
        from ddsp_models.training.checkpoints import resolve_checkpoint

        digest.update(repr(keys).encode())
        with open(resolve_checkpoint(warm_start_dir) + ".index", "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def restart_if_config_changed(save_dir: str, digest: str) -> bool:
    """Empties a run folder whose checkpoints came from another configuration (other
    sizes, rates, data, or a retrained warm-start source); the number of steps is not
    part of it, so raising ``steps`` continues a finished run. Returns True on a restart."""
    path = os.path.join(save_dir, CONFIG_DIGEST)
    restarted = False
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read().strip() != digest:
                flow_utils.get_logger(__name__).warning(
                    "%s was trained with another configuration: starting it afresh", save_dir)
                shutil.rmtree(save_dir)
                restarted = True
    elif os.path.isdir(save_dir) and os.listdir(save_dir):
        flow_utils.get_logger(__name__).warning(
            "%s holds files of an unknown configuration: starting it afresh", save_dir)
        shutil.rmtree(save_dir)
        restarted = True
    os.makedirs(save_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(digest + "\n")
    return restarted


def report_training(run: str, save_dir: str, plots_dir: str, chunks: list,
                    params: dict) -> dict:
    """Loss table (CSV, for `dvc plots`), loss-curve PNG, markdown artifact, summary."""
    from ddsp_models.training.plotting import plot_loss_curve
    from ddsp_models.training.train_loop import read_loss_log

    records = read_loss_log(save_dir)
    out = os.path.join(plots_dir, run)
    os.makedirs(out, exist_ok=True)
    names = sorted({name for r in records for name in r["losses"]})
    csv_path = os.path.join(out, "losses.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *names])
        for record in records:
            writer.writerow([record["step"], *(record["losses"].get(n, "") for n in names)])
    png_path = plot_loss_curve(records, os.path.join(out, "losses.png"),
                               title=f"{run}: training losses")
    last = records[-1] if records else {"step": 0, "losses": {}}
    train_seconds = sum(c["seconds"] for c in chunks)
    steps_trained = sum(c["end_step"] - c["start_step"] for c in chunks)
    summary = {"run": run, "step": last["step"], "losses": last["losses"],
               "steps_trained_now": steps_trained, "train_seconds_now": train_seconds,
               "steps_per_sec": steps_trained / train_seconds if train_seconds else None,
               "chunks": chunks, "loss_csv": csv_path, "loss_png": png_path,
               "flow_run_id": flow_utils.current_flow_run_id()}
    with open(os.path.join(save_dir, SUMMARY_FILE), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    rows = [{"loss": k, "value": float(v)} for k, v in sorted(last["losses"].items())]
    publish_training_artifacts(run, save_dir, records, rows, png_path, csv_path,
                               f"\n{steps_trained} steps in {train_seconds:.0f} s this run\n")
    return summary


def loss_table(records: list[dict], max_rows: int = 100) -> list[dict]:
    """Rows ``{step, <loss>: value, ...}`` of the loss log, at most `max_rows` evenly
    spaced ones (the last record always included)."""
    if len(records) > max_rows:
        picks = sorted({int(round(i * (len(records) - 1) / (max_rows - 1)))
                        for i in range(max_rows)})
        records = [records[i] for i in picks]
    return [{"step": r["step"], **{k: float(v) for k, v in sorted(r["losses"].items())}}
            for r in records]


def publish_training_artifacts(run: str, save_dir: str, records: list, final_rows: list,
                               png_path: str, csv_path: str, note: str) -> None:
    """Table, images and markdown of a finished training run in the Prefect UI."""
    from ddsp_models.training.summaries import latest_images

    if not flow_utils.in_prefect_run():
        return
    flow_utils.publish_table(f"{run}-losses", loss_table(records),
                             f"{run}: losses per logged step")
    flow_utils.publish_image(f"{run}-loss-curve", png_path, f"{run}: training losses")
    markdown = [f"# {run}: step {records[-1]['step'] if records else 0}\n",
                flow_utils.markdown_table(final_rows), note,
                flow_utils.markdown_image(f"{run} losses", png_path), ""]
    images = latest_images(os.path.join(save_dir, "summaries", "valid"), "spectrogram/")
    if images:
        tag = sorted(images)[0]
        step, png = images[tag]
        flow_utils.publish_image(f"{run}-spectrogram", png,
                                 f"{run}: validation clip vs resynthesis at step {step}")
        markdown += [f"## Validation clip vs resynthesis, step {step}\n",
                     flow_utils.markdown_image(f"{run} spectrogram", png), ""]
    markdown.append(flow_utils.file_links([png_path, csv_path], "plots"))
    flow_utils.publish_markdown(f"{run}-training", "\n".join(markdown),
                                f"{run} training losses")


def make_train_flow():
    """The ``train`` flow (a function so Prefect is imported only when it runs)."""
    from prefect import flow

    tasks = _tasks()

    @flow(name="train", log_prints=True)
    def train_flow(params_path: str | None, run: str, overrides: dict | None,
                   folders: dict) -> dict:
        """Trains one run of the params file in checkpointed chunks (`folders`: the
        dataset's, the runs' and the plots' folders, `run_config.Folders`)."""
        from ddsp_models.training.reproducibility import deterministic_graphs
        from ddsp_models.training.train_loop import TrainingSession, chunk_ends, format_seconds
        from ddsp_models.training.trainer import get_strategy, is_chief, worker_save_dir

        flow_utils.library_logs_at_info()
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            run_config.check_run(run)
            folders = run_config.Folders.of(folders)
            runs_dir = folders.get("runs_dir")
            train = params["train"]
            if train["seed"] is not None:  # before any traced function runs, on any thread
                deterministic_graphs()
            # Before any other TensorFlow work (multi-worker collectives start with it).
            strategy = get_strategy(kind=train["strategy"])
            # Workers other than the chief keep their own copy (README: several machines).
            save_dir = worker_save_dir(run_config.run_dir(runs_dir, run), strategy)
            plots_dir = folders.get("plots_dir") if is_chief(strategy) else \
                os.path.join(save_dir, "plots")
            logger = flow_utils.get_logger(__name__)
            info = tasks.dataset_info(folders.get("data_dir"))
            tasks.resolve_config(params, run, info, save_dir, runs_dir)
            tasks.statistics(info.data_dir, save_dir)
            provider = tasks.load_dataset()
            trainer = tasks.build_model(provider, train["batch_size"], strategy,
                                        train["seed"], train["max_nonfinite_steps"],
                                        train["precision"])
            source, keys = run_config.warm_start_source(params, runs_dir, run)
            start_step = tasks.warm_start(trainer, save_dir, source, keys).step
            total = train[run]["steps"]
            session = TrainingSession(save_dir, provider, trainer, train["batch_size"],
                                      train["steps_per_summary"], train["steps_per_eval"],
                                      validation_provider(info), train["eval_examples"],
                                      train["seed"])
            ends = chunk_ends(start_step, total, train["chunk_steps"])
            progress = flow_utils.ProgressBar(
                f"{run}-training-progress", f"{run}: step {start_step} of {total}",
                100.0 * start_step / total)
            chunk_task = tasks.train_chunk.with_options(retries=train["retries"],
                                                       retry_delay_seconds=0,
                                                       retry_condition_fn=_worth_retrying)
            chunks, t0, done = [], time.perf_counter(), 0
            for index, until in enumerate(ends):
                result = chunk_task.with_options(task_run_name=f"train-chunk-{index}-to-{until}")(
                    session, until)
                chunks.append(result)
                done += result["end_step"] - result["start_step"]
                rate = done / max(time.perf_counter() - t0, 1e-9)
                eta = format_seconds((total - result["end_step"]) / rate)
                logger.info("%s: chunk %d/%d done, step %d/%d, total_loss %.4f, %.2f steps/s, "
                            "ETA %s", run, index + 1, len(ends), result["end_step"], total,
                            result["losses"].get("total_loss", float("nan")), rate, eta)
                progress.update(100.0 * result["end_step"] / total,
                                f"{run}: step {result['end_step']} of {total}, total_loss "
                                f"{result['losses'].get('total_loss', float('nan')):.4f}, "
                                f"ETA {eta}")
            return tasks.report(run, save_dir, plots_dir, chunks, params)

    return train_flow


def train_run(params_path: str | None, run: str, overrides: dict | None = None, *,
              folders) -> dict:
    """Runs the ``train`` flow with a name and tags saying which run, steps, batch size and
    params (``train-ae-800steps-b4-<digest>``). `folders`: a `run_config.Folders` (or a
    mapping of its fields) with ``data_dir``, ``runs_dir`` and ``plots_dir``."""
    params = load_params(params_path, overrides)
    steps = params["train"][run]["steps"]
    batch = params["train"]["batch_size"]
    return flow_utils.run_tagged(make_train_flow(), "train", run, params["train"],
                                 {"params_path": params_path, "run": run,
                                  "overrides": overrides,
                                  "folders": dataclasses.asdict(run_config.Folders.of(folders))},
                                 name_detail=f"-{steps}steps-b{batch}",
                                 extra_tags={"steps": steps, "batch": batch})


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--data-dir": "the prepared dataset (stage dataset)",
        "--runs-dir": "folder of the runs: this one trains in <runs-dir>/<run>",
        "--plots-dir": "folder of the loss tables and curves, <plots-dir>/<run>/"})
    parser.add_argument("--run", required=True, choices=RUNS)
    parser.add_argument("--fresh", action="store_true",
                        help="delete the run folder first instead of resuming")
    args = flow_utils.parse_stage_args(parser, argv)
    folders = run_config.Folders(data_dir=args.data_dir, runs_dir=args.runs_dir,
                                 plots_dir=args.plots_dir)
    if args.fresh:
        load_params(args.params)  # a bad params file deletes nothing
        shutil.rmtree(run_config.run_dir(args.runs_dir, args.run), ignore_errors=True)
    summary = train_run(args.params, args.run, folders=folders)
    print(json.dumps({k: summary[k] for k in ("run", "step", "losses", "steps_per_sec")},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
