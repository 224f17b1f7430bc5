"""The experiment knobs of ``params.yaml``: ``train``, ``evaluate``, ``sample``,
``transfer`` and ``export`` sections.

`load_params` merges a params file over the defaults below (nested mappings merge key by
key), checks every key, and returns ``{'data': ..., 'train': ..., 'evaluate': ...,
'sample': ..., 'transfer': ..., 'export': ...}``. The ``data`` section is
`pipelines.load_data_params`'s.

Runs (``train.<run>``): ``ae`` (Autoencoder, solo-instrument decoder), ``midiae``
(MidiAutoencoder, warm-started from ``ae`` with ``synthcoder=decoder``), ``zmidiae``
(ZMidiAutoencoder) and ``inverse`` (InverseSynthesis). Each run has ``steps``, its sizes,
``gin_files`` (looked up in ``gin/``) and ``gin_params`` (extra bindings, applied last).
"""
import copy
import os

import yaml

from pipelines import load_data_params

RUNS = ("ae", "midiae", "zmidiae", "inverse")

TRAIN_DEFAULTS = {
    "batch_size": 4,
    "learning_rate": 0.001,
    "lr_decay_steps": 10000,
    "chunk_steps": 200,          # steps per Prefect task; every chunk ends with a checkpoint
    "steps_per_summary": 50,     # steps between loss log lines (terminal, Prefect, losses.jsonl)
    "retries": 1,                # times Prefect retries a failed chunk (from its checkpoint)
    "data_dir": "data/tfds",
    "runs_dir": "runs",
    "plots_dir": "plots",
    "ae": {
        "steps": 1200,
        "rnn_channels": 256,     # decoder GRU units (paper: 512)
        "mlp_units": 128,        # decoder FC width (paper: 512)
        "mlp_layers": 1,         # FC layers per stack (paper: 3)
        "n_harmonics": 60,
        "noise_bands": 65,
        "reverb_seconds": 1.0,   # trainable reverb impulse response (paper: 3 s)
        "gin_files": ["models/solo_instrument.gin", "datasets/prepared.gin",
                      "optimization/base.gin"],
        "gin_params": [],
    },
    "midiae": {
        "steps": 400,
        "notes": "auto",         # auto | ground_truth | encoded (auto: encoded without notes)
        "warm_start": "ae",      # run whose decoder initialises the synthcoder; null: none
        "rnn_channels": 128,     # MIDI decoder / MIDI encoder GRU units (paper: 512 / 256)
        "mlp_units": 128,
        "mlp_layers": 1,
        "gin_files": ["models/midiae/warm_start_from_solo_instrument.gin",
                      "datasets/prepared.gin", "optimization/base.gin"],
        "gin_params": [],
    },
    "zmidiae": {
        "steps": 200,
        "notes": "auto",
        "rnn_channels": 128,
        "mlp_units": 128,
        "mlp_layers": 1,
        "z_dims": 16,            # per-note and synth expression latents
        "gin_files": ["models/midiae/z_midiae.gin", "datasets/prepared.gin",
                      "optimization/base.gin"],
        "gin_params": [],
    },
    "inverse": {
        "steps": 200,
        "mode": "zipped",        # zipped (synthetic notes with true controls + the dataset)
                                 # or audio (the dataset alone)
        "encoder_size": "tiny",  # ResNet of the sinusoidal encoder: tiny | small | large
        "n_sinusoids": 16,
        "n_harmonics": 32,
        "noise_bands": 65,
        "rnn_channels": 64,      # harmonic encoder GRU units (paper-like: 256)
        "mlp_units": 64,
        "mlp_layers": 1,
        "gin_files": ["models/inverse_synthesis.gin", "optimization/base.gin"],
        "gin_params": [],
    },
}

EVALUATE_DEFAULTS = {
    "runs": list(RUNS),
    "split": "test",
    "batch_size": 4,
    "crepe_capacity": "tiny",
    "min_f0_confidence": 0.85,   # ground-truth frames counted in the f0 metrics
    "outlier_semitones": 1.0,    # f0 error above which a confident frame is an outlier
    "metrics_dir": "metrics",
}

SAMPLE_DEFAULTS = {
    "runs": list(RUNS),
    "split": "test",
    "n_clips": 3,                # resynthesised test clips per run
    "transfer_audio": None,      # a recording to drive the models; null: a built-in melody
    "transfer_instrument": "alto_sax",  # built-in melody's instrument (pipelines.midi_melodies)
    "transfer_seed": 1234,       # not a training melody's seed
    "octave_shift": "auto",      # integer, or auto (nearest the training data's mean pitch)
    "loudness_shift_db": "auto",  # dB, or auto (match the training data's mean loudness)
    "samples_dir": "samples",
}

TRANSFER_DEFAULTS = {
    "runs": ["ae", "midiae", "zmidiae"],  # models driven by f0 and loudness / power
    "audio": None,               # a whole recording; null: a built-in melody (below)
    "instrument": "alto_sax",    # built-in melody's instrument (not in the training set)
    "seed": 4321,                # built-in melody's seed (not a training melody's)
    "seconds": 12.0,             # built-in melody's length
    "octaves": 0,                # pitch shift on top of the automatic one, octaves
    "semitones": 0.0,            # and semitones
    "loudness_db": 0.0,          # loudness shift, dB
    "auto": True,                # adjust to the training data (pitch register, loudness)
    "autotune": 0.0,             # 0..1 toward the nearest semitone
    "quiet_db": 20.0,            # dB frames off a note are turned down (auto)
    "mute": True,                # mute frames off a note instead of synthesising them
    "crepe_capacity": "tiny",
    "chunk_seconds": 20.0,       # audio per chunk (memory bound)
    "transfers_dir": "transfers",
}

EXPORT_DEFAULTS = {
    "run": "ae",                 # the run exported
    "out_dir": "exported",       # -> <out_dir>/<run>/
    "block_frames": 1,           # frames per synthesize.tflite call
    "ir_rates": [44100, 48000],  # extra sample rates of the reverb IR wav
}

SECTION_DEFAULTS = {"train": TRAIN_DEFAULTS, "evaluate": EVALUATE_DEFAULTS,
                    "sample": SAMPLE_DEFAULTS, "transfer": TRANSFER_DEFAULTS,
                    "export": EXPORT_DEFAULTS}


def _merge(defaults: dict, given: dict, where: str) -> dict:
    """`given` over a copy of `defaults`, recursing into mappings; unknown keys raise."""
    if not isinstance(given, dict):
        raise ValueError(f"{where} must be a mapping, got {type(given).__name__}")
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise ValueError(f"unknown param {where}.{key}; known: {sorted(defaults)}")
        if isinstance(defaults[key], dict):
            merged[key] = _merge(defaults[key], value or {}, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def validate(params: dict, path: str) -> None:
    """Raises ValueError naming the file and key of the first bad value."""
    train = params["train"]
    for key in ("batch_size", "chunk_steps", "steps_per_summary", "lr_decay_steps"):
        _check_positive_int(train[key], f"{path}: train.{key}")
    if isinstance(train["retries"], bool) or not isinstance(train["retries"], int) \
            or train["retries"] < 0:
        raise ValueError(f"{path}: train.retries must be an integer >= 0")
    for run in RUNS:
        section = train[run]
        _check_positive_int(section["steps"], f"{path}: train.{run}.steps")
        for key in ("rnn_channels", "mlp_units", "mlp_layers", "n_harmonics", "noise_bands",
                    "z_dims", "n_sinusoids"):
            if key in section:
                _check_positive_int(section[key], f"{path}: train.{run}.{key}")
        for key in ("gin_files", "gin_params"):
            if not isinstance(section[key], list) or \
                    not all(isinstance(v, str) for v in section[key]):
                raise ValueError(f"{path}: train.{run}.{key} must be a list of strings")
        if "notes" in section and section["notes"] not in ("auto", "ground_truth", "encoded"):
            raise ValueError(f"{path}: train.{run}.notes must be auto, ground_truth or "
                             f"encoded, got {section['notes']!r}")
    if train["inverse"]["mode"] not in ("zipped", "audio"):
        raise ValueError(f"{path}: train.inverse.mode must be zipped or audio, got "
                         f"{train['inverse']['mode']!r}")
    if train["inverse"]["encoder_size"] not in ("tiny", "small", "large"):
        raise ValueError(f"{path}: train.inverse.encoder_size must be tiny, small or large")
    warm = train["midiae"]["warm_start"]
    if warm is not None and warm not in RUNS:
        raise ValueError(f"{path}: train.midiae.warm_start must be one of {RUNS} or null")
    for section in ("evaluate", "sample", "transfer"):
        unknown = [r for r in params[section]["runs"] if r not in RUNS]
        if unknown:
            raise ValueError(f"{path}: {section}.runs has unknown runs {unknown}; known {RUNS}")
    _check_positive_int(params["evaluate"]["batch_size"], f"{path}: evaluate.batch_size")
    _check_positive_int(params["sample"]["n_clips"], f"{path}: sample.n_clips")
    for key in ("octave_shift", "loudness_shift_db"):
        value = params["sample"][key]
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{path}: sample.{key} must be a number or 'auto', got {value!r}")
    if params["sample"]["octave_shift"] != "auto" and \
            int(params["sample"]["octave_shift"]) != params["sample"]["octave_shift"]:
        raise ValueError(f"{path}: sample.octave_shift must be a whole number of octaves")
    transfer = params["transfer"]
    if "inverse" in transfer["runs"]:
        raise ValueError(f"{path}: transfer.runs: 'inverse' resynthesises fixed-length clips "
                         "from audio; it has no f0 / loudness controls to transfer")
    if isinstance(transfer["octaves"], bool) or not isinstance(transfer["octaves"], int):
        raise ValueError(f"{path}: transfer.octaves must be a whole number, got "
                         f"{transfer['octaves']!r}")
    if not 0.0 <= float(transfer["autotune"]) <= 1.0:
        raise ValueError(f"{path}: transfer.autotune must be in [0, 1], got {transfer['autotune']!r}")
    if float(transfer["seconds"]) <= 0 or float(transfer["chunk_seconds"]) <= 0:
        raise ValueError(f"{path}: transfer.seconds and transfer.chunk_seconds must be > 0")
    if params["export"]["run"] not in RUNS:
        raise ValueError(f"{path}: export.run must be one of {RUNS}, got {params['export']['run']!r}")
    _check_positive_int(params["export"]["block_frames"], f"{path}: export.block_frames")


def load_params(path: str | None = "params.yaml", overrides: dict | None = None) -> dict:
    """All sections of a params file over the defaults, checked.

    Args:
      path: the YAML file (None: defaults only).
      overrides: ``{section: {key: value}}`` merged last (tests, notebooks).

    Raises:
      ValueError: naming the file and the key of a missing file, an unknown key or a bad
        value.
    """
    loaded = {}
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(f"params file {path!r} not found")
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
    overrides = overrides or {}
    params = {"data": load_data_params(path, overrides.get("data"))}
    where = path or "<defaults>"
    for section, defaults in SECTION_DEFAULTS.items():
        merged = _merge(defaults, loaded.get(section) or {}, f"{where}: {section}")
        params[section] = _merge(merged, overrides.get(section) or {}, f"overrides: {section}")
    validate(params, where)
    return params
