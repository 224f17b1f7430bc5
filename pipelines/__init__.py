"""DVC stages and Prefect flows around `ddsp_models`.

One module per stage (``python -m pipelines.<stage> --params params.yaml``): `prepare`
(recordings or built-in MIDI melodies -> clips), `features` (f0, loudness, power per clip),
`dataset` (TFDS dataset from the features; builder package `pipelines.ddsp_tfds`).

Importing the package gives Prefect safe defaults for this machine (a long start-up
timeout for the temporary local server, no analytics, ``PREFECT_HOME`` inside the project)
unless the environment already sets them.
"""
import copy
import os

import yaml

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PREFECT_HOME", os.path.join(_PROJECT_ROOT, ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# The library's log lines (training progress: step, loss, steps/s, ETA) go to the Prefect
# run's logs (UI) as well as the terminal.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ddsp_models")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # library use outside flows
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPLITS = ("train", "valid", "test")

# Every knob of the data stages (params.yaml `data:`), with its default.
DATA_DEFAULTS = {
    "source": "builtin",          # 'builtin' (rendered MIDI melodies) or a folder of recordings
    "n_melodies": 20,             # built-in: number of melodies (one source file each)
    "melody_seconds": 12.0,       # built-in: length of each melody
    "instruments": ["violin", "flute", "trumpet", "cello", "clarinet"],
    "soundfont": None,            # built-in: .sf2 path; None = pretty_midi's TimGM6mb.sf2
    "render_gain": 6.0,           # built-in: gain on FluidSynth's 16-bit-scaled output
    "seed": 0,
    "sample_rate": 16000,
    "frame_rate": 250,
    "clip_seconds": 4.0,
    "hop_seconds": 4.0,
    "silence_db": -50.0,          # clips with RMS below this (dBFS) are dropped
    "splits": {"train": 0.8, "valid": 0.1, "test": 0.1},
    "crepe_capacity": "tiny",
    "crepe_viterbi": True,
    "task_runner": "thread",      # 'thread' (ThreadPoolTaskRunner) or 'dask' (DaskTaskRunner)
    "max_workers": 2,             # threads, or local Dask workers when dask_address is None
    "dask_address": None,         # scheduler address of an existing Dask cluster
    "batch_size": 4,              # clips per Prefect task
    "log_every_s": 10.0,          # seconds between progress log lines
}


def load_data_params(path: str | None = "params.yaml", overrides: dict | None = None) -> dict:
    """The ``data:`` section of a params file merged over `DATA_DEFAULTS`.

    Raises ValueError naming the file or key when the file is missing, a key is unknown,
    or the split fractions are not non-negative numbers summing to 1.
    """
    params = copy.deepcopy(DATA_DEFAULTS)
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(f"params file {path!r} not found")
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        section = loaded.get("data") or {}
        if not isinstance(section, dict):
            raise ValueError(f"{path}: 'data' must be a mapping, got {type(section).__name__}")
        params.update(section)
    params.update(overrides or {})
    unknown = sorted(set(params) - set(DATA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown data params {unknown}; known: {sorted(DATA_DEFAULTS)}")
    splits = params["splits"]
    if (not isinstance(splits, dict) or set(splits) - set(SPLITS)
            or any(float(v) < 0 for v in splits.values())
            or abs(sum(float(v) for v in splits.values()) - 1.0) > 1e-6):
        raise ValueError(f"data.splits must map {SPLITS} to fractions summing to 1, got {splits}")
    if params["hop_seconds"] <= 0 or params["clip_seconds"] <= 0:
        raise ValueError("data.clip_seconds and data.hop_seconds must be positive")
    return params
