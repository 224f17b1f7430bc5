"""DVC stage ``features``: f0, confidence, loudness, power (and MIDI features) per clip.

For every clip ``<clips-dir>/{train,valid,test}/<id>.wav`` the stage writes
``<out-dir>/<split>/<id>.npz`` (compressed) holding the features of the clip contract
(`ddsp_models.training.features`: ``audio``, ``f0_hz``, ``f0_confidence``,
``loudness_db``, ``power_db``, ``instrument_id`` and, for clips with note annotations
``<id>.notes.json``, the MIDI note features), its ``id`` (text) and ``_fingerprint``
(hash of the clip bytes, its notes and the feature params).

The work fans out over a Prefect 3 flow (one task per batch of clips) whose task runner
params choose: ``thread`` (ThreadPoolTaskRunner) or ``dask`` (prefect_dask
DaskTaskRunner on ``dask_address``, or a temporary local cluster). It is resumable: each
``.npz`` is written to a temporary file and renamed, and clips whose output already holds
the current fingerprint are skipped. Unreadable, empty, non-audio, non-finite, wrong-length
or silent clips are listed by name with the reason in ``<out>/report.json`` and skipped;
clipped ones are kept and listed under ``warnings``; the others go on.

CLI: ``python -m pipelines.features --params params.yaml --clips-dir data/clips
--out-dir data/features``.
"""
import glob
import hashlib
import io
import json
import logging
import os
import sys
import time

import numpy as np

from ddsp_models.audio_io import clipping_warning, load_audio, rms_db
from ddsp_models.training import flow_utils
from ddsp_models.training.feature_extraction import compute_clip_features
from ddsp_models.training.features import FEATURE_VERSION, SPLITS
from ddsp_models.training.params import load_params

log = logging.getLogger("pipelines.features")

# Library modules (or packages: all their modules) whose source is part of every clip's
# fingerprint (edit one: recompute).
FINGERPRINT_MODULES = ("ddsp_models.crepe", "ddsp_models.spectral_ops", "ddsp_models.core",
                       "ddsp_models.audio_io", "ddsp_models.training.features",
                       "ddsp_models.training.feature_extraction")


def code_fingerprint() -> str:
    """SHA-1 of the sources of `FINGERPRINT_MODULES`, every ``.py`` file of a package
    (found without importing them)."""
    import importlib.util

    digest = hashlib.sha1()
    for name in FINGERPRINT_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise ValueError(f"module {name!r} not found")
        files = [spec.origin]
        if spec.submodule_search_locations:
            files = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "**", "*.py"),
                                     recursive=True))
        for path in files:
            digest.update(os.path.basename(path).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# Clip bookkeeping: listing, fingerprints, atomic writes.
# ---------------------------------------------------------------------------------------
def list_clips(clips_dir: str) -> list[dict]:
    """Clip jobs (id, split, wav, notes, instrument_id) for every ``<split>/*.wav``; the
    instrument comes from ``manifest.jsonl`` or the notes file, else -1."""
    manifest = {}
    manifest_path = os.path.join(clips_dir, "manifest.jsonl")
    if os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            manifest = {row["id"]: row for row in map(json.loads, filter(str.strip, f))}
    jobs = []
    for split in SPLITS:
        for wav in sorted(glob.glob(os.path.join(clips_dir, split, "*.wav"))):
            clip_id = os.path.basename(wav)[:-len(".wav")]
            notes = os.path.join(clips_dir, split, f"{clip_id}.notes.json")
            jobs.append({"id": clip_id, "split": split, "wav": wav,
                         "notes": notes if os.path.isfile(notes) else None,
                         "program": int(manifest.get(clip_id, {}).get("program", -1))})
    return jobs


def fingerprint(job: dict, settings: dict) -> str:
    """Hash of the clip's bytes, its notes file and the settings the features depend on."""
    digest = hashlib.sha1()
    for path in (job["wav"], job["notes"]):
        if path:
            with open(path, "rb") as f:
                digest.update(f.read())
        digest.update(b"|")
    keys = ("sample_rate", "frame_rate", "crepe_capacity", "crepe_viterbi")
    digest.update(json.dumps([FEATURE_VERSION, settings.get("code", ""), job["program"]]
                             + [settings[k] for k in keys]).encode())
    return digest.hexdigest()


def output_path(out_dir: str, job: dict) -> str:
    return os.path.join(out_dir, job["split"], f"{job['id']}.npz")


def stored_fingerprint(path: str) -> str | None:
    """The ``_fingerprint`` of a finished output, None when absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["_fingerprint"])
    except Exception:  # noqa: BLE001 - missing, partial or foreign file: redo it
        return None


def write_npz_atomic(path: str, arrays: dict) -> None:
    """Writes a compressed ``.npz`` to a temporary file beside ``path``, then renames it, so
    a reader (or a resumed run) never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with open(tmp, "wb") as f:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def process_clip(job: dict, out_dir: str, settings: dict) -> dict:
    """Computes and writes one clip's features; returns ``{'id', 'status', 'error'}`` with
    status ``done`` / ``bad`` / ``silent`` (never raises for a bad clip)."""
    result = {"id": job["id"], "file": os.path.relpath(job["wav"], settings.get("clips_dir", "."))}
    stale = output_path(out_dir, job)
    if os.path.exists(stale):  # an output of an older version of this clip
        os.remove(stale)
    try:
        audio = load_audio(job["wav"], int(settings["sample_rate"]))
        if np.max(np.abs(audio)) == 0.0 or rms_db(audio) < float(settings["silence_db"]):
            return {**result, "status": "silent", "error": f"RMS {rms_db(audio):.1f} dBFS"}
        expected = int(round(float(settings["clip_seconds"]) * int(settings["sample_rate"])))
        if abs(len(audio) - expected) > 2:  # resampling may round by a sample
            raise ValueError(f"{len(audio) / int(settings['sample_rate']):.3f} s of audio, "
                             f"expected {float(settings['clip_seconds']):.3f} s "
                             "(data.clip_seconds); rerun the prepare stage")
        audio = np.pad(audio[:expected], (0, max(0, expected - len(audio))))
        warning = clipping_warning(audio)
        notes, program = None, job["program"]
        if job["notes"]:
            with open(job["notes"]) as f:
                annotation = json.load(f)
            notes = annotation["notes"]
            program = int(annotation.get("program", program))
        features = compute_clip_features(
            audio, int(settings["sample_rate"]), int(settings["frame_rate"]),
            settings["crepe_capacity"], bool(settings["crepe_viterbi"]), notes, program)
        features["id"] = np.array(job["id"])
        features["_fingerprint"] = np.array(job["fingerprint"])
        write_npz_atomic(output_path(out_dir, job), features)
        return {**result, "status": "done", "error": None, "warning": warning}
    except Exception as error:  # noqa: BLE001 - report and go on
        return {**result, "status": "bad", "error": f"{type(error).__name__}: {error}"}


# ---------------------------------------------------------------------------------------
# Prefect flow.
# ---------------------------------------------------------------------------------------
def make_task_runner(params: dict):
    """The Prefect task runner params ask for: ``thread`` -> ThreadPoolTaskRunner
    (``max_workers``); ``dask`` -> DaskTaskRunner on ``dask_address`` or, without an address,
    on a temporary local cluster of ``max_workers`` single-threaded worker processes. Workers
    of a remote cluster read the clips and write the outputs by path: they need the project
    folder on a shared filesystem (same absolute path) and the same environment."""
    kind = str(params["task_runner"]).lower()
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=int(params["max_workers"]))
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if params.get("dask_address"):
            return DaskTaskRunner(address=str(params["dask_address"]))
        return DaskTaskRunner(cluster_kwargs={"n_workers": int(params["max_workers"]),
                                              "threads_per_worker": 1,
                                              "host": "127.0.0.1", "dashboard_address": None})
    raise ValueError(f"data.task_runner must be 'thread' or 'dask', got {params['task_runner']!r}")


def _features_task():
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    @task(name="clip-features", cache_policy=NO_CACHE, persist_result=False)
    def clip_features(jobs: list[dict], out_dir: str, settings: dict) -> list[dict]:
        """Features of a batch of clips (one Prefect task run)."""
        return [process_clip(job, out_dir, settings) for job in jobs]

    return clip_features



def run_batches(pending: list[dict], out_dir: str, settings: dict, progress: bool) -> list[dict]:
    """Inside a flow: submits batches of clips as tasks, collects results as they finish,
    shows a progress bar and logs progress every ``log_every_s`` seconds."""
    from prefect import get_run_logger
    from prefect.futures import as_completed
    from tqdm import tqdm

    from ddsp_models.training.train_loop import format_seconds

    logger = get_run_logger()
    task = _features_task()
    size = max(int(settings["batch_size"]), 1)
    batches = [pending[i:i + size] for i in range(0, len(pending), size)]
    futures = {task.submit(batch, out_dir, settings): batch for batch in batches}
    results, start, last_log = [], time.monotonic(), time.monotonic()
    with tqdm(total=len(pending), desc="features", unit="clip", disable=not progress,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for future in as_completed(list(futures)):
            batch = futures[future]
            try:
                batch_results = future.result()
            except Exception as error:  # noqa: BLE001 - a lost worker: report its clips
                batch_results = [{"id": j["id"],
                                  "file": os.path.relpath(j["wav"], settings["clips_dir"]),
                                  "status": "bad", "error": f"task failed: {error}"}
                                 for j in batch]
            results += batch_results
            bar.update(len(batch))
            now = time.monotonic()
            if now - last_log >= float(settings["log_every_s"]) or len(results) == len(pending):
                rate = len(results) / max(now - start, 1e-9)
                eta = format_seconds((len(pending) - len(results)) / rate)
                logger.info("features: %d/%d clips, %.2f clips/s, ETA %s", len(results),
                            len(pending), rate, eta)
                last_log = now
    return results


def compute_features(params: dict, clips_dir: str, out_dir: str, progress: bool = True) -> dict:
    """Runs the stage (a Prefect flow on the task runner params choose); returns the report,
    also written to ``<out_dir>/report.json``."""
    from prefect import flow

    settings = {k: params[k] for k in ("sample_rate", "frame_rate", "crepe_capacity",
                                       "crepe_viterbi", "silence_db", "batch_size",
                                       "log_every_s", "clip_seconds")}
    settings["clips_dir"] = os.path.abspath(clips_dir)
    settings["code"] = code_fingerprint()
    out_dir = os.path.abspath(out_dir)
    jobs = list_clips(clips_dir)
    for job in jobs:
        job["wav"] = os.path.abspath(job["wav"])
        job["notes"] = job["notes"] and os.path.abspath(job["notes"])
        job["fingerprint"] = fingerprint(job, settings)

    # Leftovers: outputs of clips that no longer exist, temporary files of killed runs.
    wanted = {output_path(out_dir, j) for j in jobs}
    for path in glob.glob(os.path.join(out_dir, "*", "*.npz*")):
        if path not in wanted:
            os.remove(path)
    pending = [j for j in jobs if stored_fingerprint(output_path(out_dir, j)) != j["fingerprint"]]
    if pending:  # a set-up problem (missing CREPE weights) fails here, not as N bad clips
        from ddsp_models import crepe

        crepe.load_crepe_weights(params["crepe_capacity"])

    @flow(name="features", task_runner=make_task_runner(params), log_prints=True)
    def features_flow(pending: list[dict]) -> list[dict]:
        from prefect import get_run_logger

        get_run_logger().info("features: %d clips, %d already done, %d to compute",
                              len(jobs), len(jobs) - len(pending), len(pending))
        return run_batches(pending, out_dir, settings, progress) if pending else []

    start = time.monotonic()
    results = features_flow(pending)
    report = {
        "n_clips": len(jobs),
        "skipped_done": len(jobs) - len(pending),
        "computed": sum(r["status"] == "done" for r in results),
        "bad_files": [{"file": r["file"], "error": r["error"]} for r in results
                      if r["status"] == "bad"],
        "silent_files": [{"file": r["file"], "error": r["error"]} for r in results
                         if r["status"] == "silent"],
        "warnings": [{"file": r["file"], "warning": r["warning"]} for r in results
                     if r.get("warning")],
        "seconds": round(time.monotonic() - start, 2),
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    meta = {k: params[k] for k in ("sample_rate", "frame_rate", "clip_seconds",
                                   "crepe_capacity", "crepe_viterbi")}
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return report


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--clips-dir": "the prepare stage's clips", "--out-dir": "output folder (resumable)"})
    args = flow_utils.parse_stage_args(parser, argv)
    report = compute_features(load_params(args.params)["data"], args.clips_dir, args.out_dir)
    log.info("features: %d clips, %d computed, %d already done, bad: %s, silent: %s",
             report["n_clips"], report["computed"], report["skipped_done"],
             [b["file"] for b in report["bad_files"]] or "none",
             [s["file"] for s in report["silent_files"]] or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
