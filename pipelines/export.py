"""DVC stage ``export``: the Prefect flow ``export``: a run for real-time use.

Task ``export-<run>``: `ddsp_models.training.export.export_run` of ``export.run`` (the run
folder ``<runs-dir>/<run>``) into ``<out-dir>/<run>/``: ``saved_model/`` (signatures
controls_to_audio, audio_to_audio, predict_controls, synthesize), ``tflite/``
(predict_controls, synthesize, extract_features; metadata packed in), ``metadata.json``
and ``reverb_ir_<rate>_hz.wav``.

CLI: ``python -m pipelines.export --params params.yaml --runs-dir runs --out-dir exported``.
"""
import json
import os
import sys

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import load_params


def make_export_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(name="export-run", cache_policy=NO_CACHE, persist_result=False)
    def export_task(params: dict, run: str, runs_dir: str, exported_dir: str) -> dict:
        from ddsp_models.training.export import export_run

        settings = params["export"]
        out = os.path.join(exported_dir, run)
        result = export_run(run_config.run_dir(runs_dir, run), out,
                            int(settings["block_frames"]), list(settings["ir_rates"]))
        files = [result["metadata"], *result["reverb_ir"], *result.get("tflite", {}).values()]
        flow_utils.publish_markdown(f"{run}-export", f"# {run}: exported to {out}\n\n"
                                    + flow_utils.file_links(files, "files"), f"{run} export")
        return result

    @flow(name="export", log_prints=True)
    def export_flow(params_path: str | None, runs: list | None, overrides: dict | None,
                    folders: dict) -> dict:
        """SavedModel, TFLite, metadata and reverb IR of a trained run (`folders`:
        ``runs_dir``, ``exported_dir``)."""
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            folders = run_config.Folders.of(folders)
            results = {}
            for run in runs or [params["export"]["run"]]:
                run_config.check_run(run)
                results[run] = export_task.with_options(task_run_name=f"export-{run}")(
                    params, run, folders.get("runs_dir"), folders.get("exported_dir"))
            return results

    return export_flow


def export_runs(params_path: str | None, runs: list | None = None,
                overrides: dict | None = None, *, folders) -> dict:
    """Runs the ``export`` flow over `runs` (default: ``export.run``), named and tagged
    (`folders`: a `run_config.Folders` or mapping with ``runs_dir`` and ``exported_dir``)."""
    runs = list(runs or [load_params(params_path, overrides)["export"]["run"]])
    return flow_utils.run_flow_over_runs(make_export_flow, "export", params_path, runs,
                                         overrides, folders)


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--runs-dir": "folder of the trained runs, <runs-dir>/<run>",
        "--out-dir": "output folder of the exports, <out-dir>/<run>/"})
    args = flow_utils.parse_stage_args(parser, argv)
    results = export_runs(args.params, folders=run_config.Folders(
        runs_dir=args.runs_dir, exported_dir=args.out_dir))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
