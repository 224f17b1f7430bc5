"""DVC stage ``transfer``: the Prefect flow ``transfer``: a whole recording through each run.

The source (task ``transfer-source``) is ``transfer.audio`` (a recording of any format,
rate, channels and length), or a built-in melody of ``transfer.instrument`` (an instrument
the models did not train on, ``transfer.seconds`` long, seed ``transfer.seed``) rendered
with FluidSynth like the training data, written as ``<out-dir>/source_<name>.wav``
with its MIDI file ``source_<name>.mid``.

For each run of ``transfer.runs`` (task ``transfer-<run>``; a run that fails is reported
and the others go on), under ``<out-dir>/<run>/``:

- ``transfer_from_<name>.wav`` (+ ``.png``): `ddsp_models.training.inference.transfer`
  of the whole source with the notebook's controls (``octaves``, ``semitones``,
  ``loudness_db``, ``auto`` adjustment to the run's ``dataset_statistics.json``,
  ``autotune``, ``quiet_db``, ``mute``), chunk by chunk;
- MIDI runs with a built-in source: ``midi_<name>.wav`` (+ stems, ``.png``): the source's
  MIDI file rendered through the run's MIDI decoder (`inference.render_midi`);
- ``transfer.json``: what was written and done.

``<out-dir>/transfers.json`` lists every run's record or error. The command exits
non-zero when a run failed (after finishing the others).

CLI: ``python -m pipelines.transfer --params params.yaml --runs-dir runs --out-dir transfers
[--run ae ...]``.
"""
import json
import os
import sys

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import load_params


def transfer_source(params: dict, folder: str) -> dict:
    """``{'audio': path, 'name', 'midi': path or None}`` of the stage's source recording
    (a built-in melody is written into `folder`)."""
    from ddsp_models.audio_io import write_wav
    from ddsp_models.training.melodies import INSTRUMENTS, generate_melody, render_melody

    settings, data = params["transfer"], params["data"]
    if settings["audio"]:
        path = settings["audio"]
        if not os.path.isfile(path):
            raise ValueError(f"transfer.audio {path!r} is not a file")
        return {"audio": path, "name": os.path.splitext(os.path.basename(path))[0], "midi": None}
    instrument = settings["instrument"]
    if instrument not in INSTRUMENTS:
        raise ValueError(f"transfer.instrument {instrument!r} unknown; known: "
                         f"{sorted(INSTRUMENTS)}")
    seconds = float(settings["seconds"])
    midi = generate_melody(instrument, seconds, seed=int(settings["seed"]))
    audio = render_melody(midi, data["sample_rate"], data["soundfont"], duration=seconds,
                          gain=data["render_gain"])
    os.makedirs(folder, exist_ok=True)
    midi_path = os.path.join(folder, f"source_{instrument}.mid")
    midi.write(midi_path)
    return {"audio": write_wav(os.path.join(folder, f"source_{instrument}.wav"), audio,
                               data["sample_rate"]),
            "name": instrument, "midi": midi_path}


def transfer_one(params: dict, run: str, source: dict, runs_dir: str,
                 transfers_dir: str) -> dict:
    """Transfer (and MIDI rendering) of the run ``<runs_dir>/<run>``; writes
    ``<transfers_dir>/<run>/transfer.json``."""
    from ddsp_models.training import inference

    settings = params["transfer"]
    out_dir = os.path.join(transfers_dir, run)
    loaded = inference.load_run(run_config.run_dir(runs_dir, run))
    record = {"run": run, "source": source}
    record["transfer"] = inference.transfer(
        loaded, source["audio"], os.path.join(out_dir, f"transfer_from_{source['name']}.wav"),
        octaves=int(settings["octaves"]), semitones=float(settings["semitones"]),
        loudness_db=float(settings["loudness_db"]), auto=bool(settings["auto"]),
        autotune=float(settings["autotune"]), quiet_db=float(settings["quiet_db"]),
        mute=bool(settings["mute"]), crepe_capacity=settings["crepe_capacity"],
        chunk_seconds=float(settings["chunk_seconds"]), progress=False)
    if loaded.is_midi_model and source["midi"]:
        record["midi"] = inference.render_midi(
            loaded, source["midi"], os.path.join(out_dir, f"midi_{source['name']}.wav"),
            chunk_seconds=float(settings["chunk_seconds"]), progress=False)
    with open(os.path.join(out_dir, "transfer.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    return record


def make_transfer_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    options = dict(cache_policy=NO_CACHE, persist_result=False)

    @task(name="transfer-source", **options)
    def source_task(params: dict, folder: str):
        return transfer_source(params, folder)

    @task(name="transfer-run", **options)
    def run_task(params: dict, run: str, source: dict, runs_dir: str, transfers_dir: str):
        record = transfer_one(params, run, source, runs_dir, transfers_dir)
        t = record["transfer"]
        flow_utils.get_logger(__name__).info(
            "%s: %.1f s of %s, %+d octaves %+.1f semitones, %+.1f dB, %.0f%% note frames", run,
            t["seconds"], source["name"], t["octave_shift"], t["semitone_shift"],
            t["loudness_shift_db"], 100 * t["note_on_fraction"])
        files = [t["output"], t.get("spectrogram")]
        if "midi" in record:
            files += [record["midi"]["output"]]
        flow_utils.publish_markdown(f"{run}-transfer", f"# {run}: timbre transfer\n\n"
                                    + flow_utils.file_links([p for p in files if p], "files"),
                                    f"{run} transfer")
        return record

    @flow(name="transfer", log_prints=True)
    def transfer_flow(params_path: str | None, runs: list | None, overrides: dict | None,
                      folders: dict) -> dict:
        """A whole recording through each run (timbre transfer), failures reported
        (`folders`: ``runs_dir``, ``transfers_dir``)."""
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            folders = run_config.Folders.of(folders)
            runs_dir, folder = folders.get("runs_dir"), folders.get("transfers_dir")
            source = source_task(params, folder)
            records = {}
            for run in runs or params["transfer"]["runs"]:
                run_config.check_run(run)
                try:
                    records[run] = run_task.with_options(task_run_name=f"transfer-{run}")(
                        params, run, source, runs_dir, folder)
                except Exception as error:  # noqa: BLE001 - report it, go on with the others
                    flow_utils.get_logger(__name__).error("%s: transfer failed: %s", run, error)
                    records[run] = {"run": run, "error": f"{type(error).__name__}: {error}"}
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "transfers.json"), "w", encoding="utf-8") as f:
                json.dump(records, f, indent=1)
            return records

    return transfer_flow


def transfer_runs(params_path: str | None, runs: list | None = None,
                  overrides: dict | None = None, *, folders) -> dict:
    """Runs the ``transfer`` flow, named and tagged with its runs and params digest
    (`folders`: a `run_config.Folders` or mapping with ``runs_dir`` and ``transfers_dir``)."""
    return flow_utils.run_flow_over_runs(make_transfer_flow, "transfer", params_path, runs,
                                         overrides, folders)


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--runs-dir": "folder of the trained runs, <runs-dir>/<run>",
        "--out-dir": "output folder of the transfers"}, runs="transfer")
    args = flow_utils.parse_stage_args(parser, argv)
    records = transfer_runs(args.params, args.run, folders=run_config.Folders(
        runs_dir=args.runs_dir, transfers_dir=args.out_dir))
    failed = [run for run, record in records.items() if "error" in record]
    for run, record in records.items():
        print(run, record.get("error") or record["transfer"]["output"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
