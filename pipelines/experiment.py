"""The Prefect flow ``experiment``: train, evaluate and sample runs in one flow run.

Outside DVC (a notebook, a scheduler, the Prefect UI), one flow run does what the
``train_*`` -> ``evaluate`` -> ``sample`` stages do; each part shows as a subflow run with
its own tasks. Runs are trained in dependency order (``ae`` before ``midiae``, which
warm-starts from it) and each resumes from its checkpoints like the stages do.

CLI: ``python -m pipelines.experiment --params params.yaml [--run ae --run midiae]``.
"""
import json
import sys

from pipelines import flow_utils
from pipelines.params import RUNS, load_params


def training_order(params: dict, runs: list) -> list:
    """`runs` with any warm-start source run first (``midiae`` needs ``ae``)."""
    ordered = []
    for run in runs:
        if run not in RUNS:
            raise ValueError(f"unknown run {run!r}; known runs: {RUNS}")
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
    def experiment_flow(params_path: str | None = "params.yaml", runs: list | None = None,
                        overrides: dict | None = None) -> dict:
        """Trains, evaluates and samples `runs` (default: all four)."""
        params = load_params(params_path, overrides)
        runs = list(runs or RUNS)
        trained = {}
        for run in training_order(params, runs):
            trained[run] = train_flow.with_options(flow_run_name=f"train-{run}")(
                params_path=params_path, run=run, overrides=overrides)
        metrics = evaluate_flow(params_path=params_path, runs=runs, overrides=overrides)
        samples = sample_flow(params_path=params_path, runs=runs, overrides=overrides)
        return {"train": trained, "evaluate": metrics, "sample": samples}

    return experiment_flow


def run_experiment(params_path: str | None = "params.yaml", runs: list | None = None,
                   overrides: dict | None = None) -> dict:
    """Runs the ``experiment`` flow, named and tagged with its runs and params digest."""
    return flow_utils.run_flow_over_runs(make_experiment_flow, "experiment", params_path,
                                         runs, overrides)


def main(argv=None) -> int:
    args = flow_utils.parse_runs_cli(argv, __doc__.split("\n")[0], "experiment")
    result = run_experiment(args.params, args.run)
    print(json.dumps({run: {k: r.get(k) for k in ("step", "losses")}
                      for run, r in result["train"].items()}, indent=1))
    failed = [f"{stage} {run}: {r['error']}" for stage in ("evaluate", "sample")
              for run, r in result[stage].items() if "error" in r]
    for line in failed:
        print("FAILED", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
