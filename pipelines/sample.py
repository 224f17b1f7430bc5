"""DVC stage ``sample``: the Prefect flow ``sample``: resynthesis and timbre transfer.

For each run of ``sample.runs``, under ``<out-dir>/<run>/``:

- ``resynth/<clip>_original.wav``, ``<clip>_resynth.wav`` and ``<clip>.png`` (spectrograms
  of both, one colour scale) for the first ``sample.n_clips`` clips of ``sample.split``;
- timbre transfer: the f0 and loudness of another instrument drive the model:
  ``transfer/source.wav`` (a built-in melody played by ``sample.transfer_instrument``, or
  the first clip of ``sample.transfer_audio``), ``transfer/transfer.wav`` and
  ``transfer/transfer.png``. The source's pitch is moved by ``sample.octave_shift`` octaves
  and its loudness by ``sample.loudness_shift_db`` dB (``auto``: to the training data's
  mean pitch and loudness). MIDI models get the source's notes (built-in melody) shifted
  with it, or transcribe them (encoded variant); InverseSynthesis resynthesises audio
  and has no transfer.
- ``samples.json``: every file written and the shifts applied.

In the Prefect UI: ``<run>-samples`` (markdown with every spectrogram inline, as data
URLs) and ``<run>-spectrogram`` (an image artifact: the first clip vs its resynthesis).

A run that cannot be sampled (no checkpoint, ...) does not stop the others: it is listed
with its cause in ``<out-dir>/errors.json`` (so is a transfer source that fails; the
runs then only resynthesise) and the CLI exits with status 1 after rendering the rest.

CLI: ``python -m pipelines.sample --params params.yaml --data-dir data/tfds --runs-dir runs
--out-dir samples [--run ae ...]``.
"""
import json
import os
import sys

import numpy as np

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.features import MIDI_FEATURES
from ddsp_models.training.params import load_params

AUDIO_ONLY_RUNS = ("inverse",)


def shift_notes(features: dict, octaves: int) -> dict:
    """Moves the MIDI note features ``[..., n_frames, 128]`` by ``12 * octaves`` pitches
    (notes pushed off the keyboard are dropped)."""
    shifted = dict(features)
    semitones = 12 * int(octaves)
    for key in MIDI_FEATURES:
        if key not in features or semitones == 0:
            continue
        roll = np.asarray(features[key])
        out = np.zeros_like(roll)
        if semitones > 0:
            out[..., semitones:] = roll[..., :-semitones]
        else:
            out[..., :semitones] = roll[..., -semitones:]
        shifted[key] = out
    return shifted


def transfer_source(params: dict, info) -> tuple[dict, str]:
    """Features of the timbre-transfer source clip (clip length of the dataset) and a name.

    Built-in: a melody of ``sample.transfer_instrument`` rendered with FluidSynth, with its
    note features. Otherwise the first clip of ``sample.transfer_audio`` (any format
    `ddsp_models.audio_io.load_audio` reads; zero-padded when shorter).
    """
    from ddsp_models.audio_io import load_audio
    from ddsp_models.training.feature_extraction import compute_clip_features
    from ddsp_models.training.melodies import (
        INSTRUMENTS,
        clip_notes,
        generate_melody,
        instrument_spec,
        note_list,
        render_melody,
    )

    settings, data = params["sample"], params["data"]
    seconds = info.n_samples / info.sample_rate
    notes, instrument_id = None, -1
    if settings["transfer_audio"]:
        path = settings["transfer_audio"]
        if not os.path.isfile(path):
            raise ValueError(f"sample.transfer_audio {path!r} is not a file")
        audio = load_audio(path, info.sample_rate)[:info.n_samples]
        audio = np.pad(audio, (0, info.n_samples - len(audio)))
        name = os.path.splitext(os.path.basename(path))[0]
    else:
        instrument = settings["transfer_instrument"]
        if instrument not in INSTRUMENTS:
            raise ValueError(f"sample.transfer_instrument {instrument!r} unknown; known: "
                             f"{sorted(INSTRUMENTS)}")
        # Melodies are drawn over >= 2 s; the clip is their start.
        midi = generate_melody(instrument, max(seconds, 2.0),
                               seed=int(settings["transfer_seed"]))
        audio = render_melody(midi, info.sample_rate, data["soundfont"], duration=seconds,
                              gain=data["render_gain"])
        notes = clip_notes(note_list(midi), 0.0, seconds)
        instrument_id = instrument_spec(instrument).program
        name = instrument
    features = compute_clip_features(audio, info.sample_rate, info.frame_rate,
                                     data["crepe_capacity"], data["crepe_viterbi"],
                                     notes=notes, instrument_id=instrument_id)
    return features, name


def training_statistics(params: dict, info) -> dict:
    """Statistics of the training split (`inference.dataset_statistics_of`: mean pitch and
    loudness, note ranges, quantile transforms) and its most common instrument id."""
    from ddsp_models.training.data import PreparedTfdsProvider
    from ddsp_models.training.inference import dataset_statistics_of

    return dataset_statistics_of(PreparedTfdsProvider(data_dir=info.data_dir, split="train"))


def _batched(features: dict) -> dict:
    """One example -> a batch of one (float32 arrays, int64 ids)."""
    batch = {}
    for key, value in features.items():
        if key == "id":
            continue
        array = np.asarray(value)
        batch[key] = array[np.newaxis].astype(
            np.int64 if np.issubdtype(array.dtype, np.integer) else np.float32)
    return batch


def _audio(model, outputs) -> np.ndarray:
    return np.asarray(model.get_audio_from_outputs(outputs))


def resynthesize(model, run: str, batch: dict, out_dir: str, info) -> list[dict]:
    """Writes original / resynthesis wavs and a spectrogram PNG per clip of `batch`."""
    from ddsp_models.audio_io import write_wav
    from ddsp_models.training.plotting import plot_spectrograms

    features = {k: v for k, v in batch.items() if k != "id"}
    audio_gen = _audio(model, model(features, training=False))
    ids = [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(batch["id"])]
    written = []
    for i, clip_id in enumerate(ids):
        original = np.asarray(features["audio"][i])
        stem = os.path.join(out_dir, "resynth", clip_id.replace("/", "_"))
        paths = {"original": write_wav(f"{stem}_original.wav", original, info.sample_rate),
                 "resynth": write_wav(f"{stem}_resynth.wav", audio_gen[i], info.sample_rate)}
        paths["spectrogram"] = plot_spectrograms(
            {"original": original, f"{run} resynthesis": audio_gen[i]}, f"{stem}.png",
            sample_rate=info.sample_rate, title=f"{run}: {clip_id}")
        written.append({"clip": clip_id, **paths})
    return written


def timbre_transfer(model, run: str, source: dict, name: str, stats: dict, params: dict,
                    out_dir: str, info) -> dict:
    """Drives `model` with the shifted source features; writes wavs and a PNG."""
    from ddsp_models.audio_io import write_wav
    from ddsp_models.training.evaluation import adjust_for_timbre_transfer
    from ddsp_models.training.plotting import plot_spectrograms

    settings = params["sample"]
    octave = settings["octave_shift"]
    loudness = settings["loudness_shift_db"]
    adjusted, shifts = adjust_for_timbre_transfer(
        source, octave_shift=0 if octave == "auto" else int(octave),
        loudness_shift_db=0.0 if loudness == "auto" else float(loudness),
        auto_adjust=True, dataset_stats=_auto_parts(stats, octave, loudness))
    adjusted = shift_notes(adjusted, shifts["octave_shift"])
    adjusted["instrument_id"] = np.int64(stats["instrument_id"])
    audio_gen = _audio(model, model(_batched(adjusted), training=False))[0]
    folder = os.path.join(out_dir, "transfer")
    paths = {"source": write_wav(os.path.join(folder, f"source_{name}.wav"), source["audio"],
                                 info.sample_rate),
             "transfer": write_wav(os.path.join(folder, f"transfer_from_{name}.wav"),
                                   audio_gen, info.sample_rate)}
    paths["spectrogram"] = plot_spectrograms(
        {f"source ({name})": source["audio"], f"{run} driven by it": audio_gen},
        os.path.join(folder, f"transfer_from_{name}.png"), sample_rate=info.sample_rate,
        title=f"{run}: timbre transfer, {shifts['octave_shift']:+d} octaves, "
              f"{shifts['loudness_shift_db']:+.1f} dB")
    return {**paths, **shifts}


def _auto_parts(stats: dict, octave, loudness) -> dict:
    """Dataset statistics restricted to the quantities set to ``auto``."""
    parts = dict(stats)
    if octave != "auto":
        parts["mean_pitch"] = None
    if loudness != "auto":
        parts["mean_loudness_db"] = None
    return parts


def sample_one(params: dict, run: str, info, source, name: str, stats: dict, runs_dir: str,
               samples_dir: str) -> dict:
    """Resynthesis and timbre transfer of the run ``<runs_dir>/<run>`` into
    ``<samples_dir>/<run>/``; writes ``samples.json``."""
    from ddsp_models.training.inference import load_trained_model

    settings = params["sample"]
    out_dir = os.path.join(samples_dir, run)
    batches = run_config.split_batches(info.data_dir, settings["split"], settings["n_clips"])
    batch = {k: v.numpy() for k, v in next(iter(batches)).items()}
    model = load_trained_model(run_config.run_dir(runs_dir, run),
                               {k: v for k, v in batch.items() if k != "id"})
    record = {"run": run, "resynthesis": resynthesize(model, run, batch, out_dir, info)}
    if run in AUDIO_ONLY_RUNS:
        record["transfer"] = None
        record["transfer_skipped"] = f"{run} resynthesises audio; it has no controls to drive"
    elif source is None:
        record["transfer"] = None
        record["transfer_skipped"] = "the transfer source failed (see errors.json)"
    else:
        record["transfer"] = timbre_transfer(model, run, source, name, stats, params,
                                             out_dir, info)
    with open(os.path.join(out_dir, "samples.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    return record


def publish_sample_artifacts(run: str, record: dict, files: list) -> None:
    """The spectrograms of a run's samples in the Prefect UI (data URLs) and the paths."""
    if not flow_utils.in_prefect_run():
        return
    parts = [f"# {run}: samples\n"]
    for clip in record["resynthesis"]:
        parts += [f"## {clip['clip']}: original vs resynthesis\n",
                  flow_utils.markdown_image(clip["clip"], clip["spectrogram"]), ""]
    if record["transfer"]:
        parts += ["## Timbre transfer\n",
                  flow_utils.markdown_image("timbre transfer", record["transfer"]["spectrogram"]),
                  ""]
    parts.append(flow_utils.file_links(files, "files"))
    flow_utils.publish_markdown(f"{run}-samples", "\n".join(parts), f"{run} samples")
    if record["resynthesis"]:
        first = record["resynthesis"][0]
        flow_utils.publish_image(f"{run}-spectrogram", first["spectrogram"],
                                 f"{run}: {first['clip']} original vs resynthesis")


def make_sample_flow():
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    options = dict(cache_policy=NO_CACHE, persist_result=False)

    @task(name="transfer-source", **options)
    def source_task(params: dict, info):
        return transfer_source(params, info)

    @task(name="training-statistics", **options)
    def stats_task(params: dict, info):
        stats = training_statistics(params, info)
        flow_utils.get_logger(__name__).info(
            "training data: mean pitch %.1f MIDI, mean loudness %.1f dB",
            stats["mean_pitch"] or float("nan"), stats["mean_loudness_db"] or float("nan"))
        return stats

    @task(name="sample-run", **options)
    def sample_task(params: dict, run: str, info, source, name: str, stats: dict,
                    runs_dir: str, samples_dir: str):
        record = sample_one(params, run, info, source, name, stats, runs_dir, samples_dir)
        files = [p for r in record["resynthesis"] for p in (r["resynth"], r["spectrogram"])]
        if record["transfer"]:
            t = record["transfer"]
            files += [t["source"], t["transfer"], t["spectrogram"]]
            flow_utils.get_logger(__name__).info(
                "%s: timbre transfer from %s, %+d octaves, %+.1f dB", run, name,
                t["octave_shift"], t["loudness_shift_db"])
        publish_sample_artifacts(run, record, files)
        return record

    @flow(name="sample", log_prints=True)
    def sample_flow(params_path: str | None, runs: list | None, overrides: dict | None,
                    folders: dict) -> dict:
        """Resynthesis and timbre-transfer samples of trained runs (`folders`:
        ``data_dir``, ``runs_dir``, ``samples_dir``)."""
        with flow_utils.untagged_tasks():
            params = load_params(params_path, overrides)
            folders = run_config.Folders.of(folders)
            runs_dir, samples_dir = folders.get("runs_dir"), folders.get("samples_dir")
            info = run_config.dataset_info(folders.get("data_dir"))
            logger = flow_utils.get_logger(__name__)
            failed = {}
            try:  # without a transfer source the runs still resynthesise
                source, name = source_task(params, info)
                stats = stats_task(params, info)
            except Exception as error:  # noqa: BLE001 - reported below
                failed["transfer-source"] = flow_utils.error_entry("transfer-source", error)
                logger.error("no timbre transfer: %s", failed["transfer-source"]["error"])
                source, name, stats = None, None, None
            records = {}
            for run in runs or params["sample"]["runs"]:
                run_config.check_run(run)
                try:  # one run's failure never stops the others
                    records[run] = sample_task.with_options(task_run_name=f"sample-{run}")(
                        params, run, info, source, name, stats, runs_dir, samples_dir)
                except Exception as error:  # noqa: BLE001 - reported, then the next run
                    failed[run] = flow_utils.error_entry(run, error)
                    logger.error("%s: no samples: %s", run, failed[run]["error"])
            flow_utils.write_errors(samples_dir, failed)
            return {**records, **failed}

    return sample_flow


def sample_runs(params_path: str | None, runs: list | None = None,
                overrides: dict | None = None, *, folders) -> dict:
    """Runs the ``sample`` flow, named and tagged with its runs and params digest
    (`folders`: a `run_config.Folders` or mapping with ``data_dir``, ``runs_dir`` and
    ``samples_dir``)."""
    return flow_utils.run_flow_over_runs(make_sample_flow, "sample", params_path, runs,
                                         overrides, folders)


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--data-dir": "the prepared dataset (stage dataset)",
        "--runs-dir": "folder of the trained runs, <runs-dir>/<run>",
        "--out-dir": "output folder of the samples"}, runs="sample")
    args = flow_utils.parse_stage_args(parser, argv)
    records = sample_runs(args.params, args.run, folders=run_config.Folders(
        data_dir=args.data_dir, runs_dir=args.runs_dir, samples_dir=args.out_dir))
    for run, record in records.items():
        if "error" in record:
            print(run, "FAILED:", record["error"])
            continue
        print(run, len(record["resynthesis"]), "clips resynthesised;",
              "transfer:", (record["transfer"] or {}).get("transfer"))
    # Every run that could be rendered was; a failure makes the stage fail at the end.
    return 1 if any("error" in r for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
