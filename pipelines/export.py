"""DVC stage ``export``: the Prefect flow ``export``: a run for real-time use.

Task ``export-<run>``: `ddsp_models.training.export.export_run` of ``export.run`` into
``<export.out_dir>/<run>/``: ``saved_model/`` (signatures controls_to_audio,
audio_to_audio, predict_controls, synthesize), ``tflite/`` (predict_controls,
synthesize, extract_features; metadata packed in), ``metadata.json`` and
``reverb_ir_<rate>_hz.wav``.

CLI: ``python -m pipelines.export --params params.yaml``.
"""
import argparse
import json
import os
import sys

from pipelines import flow_utils
from pipelines import runs as run_config
from pipelines.params import load_params


def make_export_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(name="export-run", cache_policy=NO_CACHE, persist_result=False)
    def export_task(params: dict, run: str) -> dict:
        from ddsp_models.training.export import export_run

        settings = params["export"]
        out = os.path.join(settings["out_dir"], run)
        result = export_run(run_config.run_dir(params, run), out, int(settings["block_frames"]),
                            list(settings["ir_rates"]))
        files = [result["metadata"], *result["reverb_ir"], *result.get("tflite", {}).values()]
        flow_utils.publish_markdown(f"{run}-export", f"# {run}: exported to {out}\n\n"
                                    + flow_utils.file_links(files, "files"), f"{run} export")
        return result

    @flow(name="export", log_prints=True)
    def export_flow(params_path: str | None = "params.yaml", runs: list | None = None,
                    overrides: dict | None = None) -> dict:
        """SavedModel, TFLite, metadata and reverb IR of a trained run."""
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            results = {}
            for run in runs or [params["export"]["run"]]:
                run_config.check_run(run)
                results[run] = export_task.with_options(task_run_name=f"export-{run}")(params, run)
            return results

    return export_flow


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    flow_utils.configure_cli_logging()
    params = load_params(args.params)
    run = params["export"]["run"]
    results = flow_utils.run_tagged(make_export_flow(), "export", run, params,
                                    {"params_path": args.params, "runs": [run]})
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
