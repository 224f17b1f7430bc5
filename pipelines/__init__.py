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

from ddsp_models.training.features import SPLITS  # noqa: F401  (pipelines.SPLITS)

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

    Raises ValueError naming the file and the key path when the file is missing, a key is
    unknown, or a value breaks `pipelines.params.SCHEMA` (type, range, allowed values).
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
        raise ValueError(f"{path or '<defaults>'}: unknown param(s) "
                         f"{['data.' + k for k in unknown]}; known: {sorted(DATA_DEFAULTS)}")
    from pipelines.params import SCHEMA, check_section  # the one schema of params.yaml

    check_section(params, SCHEMA["data"], "data", path or "<defaults>")
    return params
