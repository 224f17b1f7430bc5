"""The Prefect flow ``experiment``: train, evaluate and sample runs in one flow run.

Outside DVC (a notebook, a scheduler, the Prefect UI), one flow run does what the
``train_*`` -> ``evaluate`` -> ``sample`` stages do; each part shows as a subflow run with
its own tasks. Runs are trained in dependency order (``ae`` before ``midiae``, which
warm-starts from it) and each resumes from its checkpoints like the stages do. It is not
a stage: it composes the stages' flows (`make experiment`).

CLI (from the project root): ``python -m scripts.experiment --params params.yaml
--data-dir data/tfds --runs-dir runs --plots-dir plots --metrics-dir metrics
--samples-dir samples [--run ae --run midiae]``.
"""
import dataclasses
import json
import sys

import pipelines  # noqa: F401 - first: its import gives Prefect its defaults (PREFECT_HOME)
from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import RUNS, load_params


def training_order(params: dict, runs: list) -> list:
    """`runs` with any warm-start source run first (``midiae`` needs ``ae``)."""
    ordered = []
    for run in runs:
        run_config.check_run(run)
        source = params["train"]["midiae"]["warm_start"] if run == "midiae" else None
        if source and source not in ordered:
            ordered.append(source)
        if run not in ordered:
            ordered.append(run)
    return ordered


def make_experiment_flow():
    from prefect import flow

    from pipelines.evaluate import make_evaluate_flow
    from pipelines.sample import make_sample_flow
    from pipelines.train import make_train_flow

    train_flow, evaluate_flow, sample_flow = (make_train_flow(), make_evaluate_flow(),
                                              make_sample_flow())

    @flow(name="experiment", log_prints=True)
    def experiment_flow(params_path: str | None, runs: list | None, overrides: dict | None,
                        folders: dict) -> dict:
        """Trains, evaluates and samples `runs` (default: all four); `folders`:
        ``data_dir``, ``runs_dir``, ``plots_dir``, ``metrics_dir``, ``samples_dir``."""
        params = load_params(params_path, overrides)
        runs = list(runs or RUNS)
        trained = {}
        for run in training_order(params, runs):
            trained[run] = train_flow.with_options(flow_run_name=f"train-{run}")(
                params_path=params_path, run=run, overrides=overrides, folders=folders)
        metrics = evaluate_flow(params_path=params_path, runs=runs, overrides=overrides,
                                folders=folders)
        samples = sample_flow(params_path=params_path, runs=runs, overrides=overrides,
                              folders=folders)
        return {"train": trained, "evaluate": metrics, "sample": samples}

    return experiment_flow


def run_experiment(params_path: str | None, runs: list | None = None,
                   overrides: dict | None = None, *, folders) -> dict:
    """Runs the ``experiment`` flow, named and tagged with its runs and params digest
    (`folders`: a `run_config.Folders` or mapping with the five folders above)."""
    return flow_utils.run_flow_over_runs(make_experiment_flow, "experiment", params_path,
                                         runs, overrides, folders)


def main(argv=None) -> int:
    flags = {"--data-dir": "the prepared dataset", "--runs-dir": "folder of the runs",
             "--plots-dir": "folder of the loss curves", "--metrics-dir": "metrics output",
             "--samples-dir": "samples output"}
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], flags, runs="experiment")
    args = flow_utils.parse_stage_args(parser, argv)
    folders = run_config.Folders(**{f.name: getattr(args, f.name)
                                    for f in dataclasses.fields(run_config.Folders)
                                    if hasattr(args, f.name)})
    result = run_experiment(args.params, args.run, folders=folders)
    print(json.dumps({run: {k: r.get(k) for k in ("step", "losses")}
                      for run, r in result["train"].items()}, indent=1))
    failed = [f"{stage} {run}: {r['error']}" for stage in ("evaluate", "sample")
              for run, r in result[stage].items() if "error" in r]
    for line in failed:
        print("FAILED", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
