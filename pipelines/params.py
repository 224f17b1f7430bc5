"""The experiment knobs of ``params.yaml``: ``train``, ``evaluate``, ``sample``,
``transfer``, ``export`` and ``report`` sections.

`load_params` merges a params file over the defaults below (nested mappings merge key by
key), checks every key, and returns ``{'data': ..., 'train': ..., 'evaluate': ...,
'sample': ..., 'transfer': ..., 'export': ..., 'report': ...}``. The ``data`` section is
`pipelines.load_data_params`'s.

Runs (``train.<run>``): ``ae`` (Autoencoder, solo-instrument decoder), ``midiae``
(MidiAutoencoder, warm-started from ``ae`` with ``synthcoder=decoder``), ``zmidiae``
(ZMidiAutoencoder) and ``inverse`` (InverseSynthesis). Each run has ``steps``, its sizes,
``gin_files`` (the package's configs, ``ddsp_models/training/gin/``) and ``gin_params``
(extra bindings, applied last).
"""
import copy
import os

import yaml

from ddsp_models.training.features import SPLITS
from pipelines import load_data_params

RUNS = ("ae", "midiae", "zmidiae", "inverse")

TRAIN_DEFAULTS = {
    "batch_size": 4,
    "learning_rate": 0.001,
    "lr_decay_steps": 10000,
    "chunk_steps": 200,          # steps per Prefect task; every chunk ends with a checkpoint
    "steps_per_summary": 50,     # steps between loss log lines (terminal, Prefect, losses.jsonl)
    "steps_per_eval": 200,       # steps between TensorBoard audio/image summaries (0: none)
    "eval_examples": 2,          # validation clips in those summaries
    "retries": 1,                # times Prefect retries a failed chunk (from its checkpoint)
    "seed": 0,                   # weight init, data order, filtered noise (reproducible runs)
    "strategy": "default",       # default | mirrored (local GPUs) | multi_worker (TF_CONFIG)
    "max_nonfinite_steps": 0,    # NaN/inf batches skipped with a warning before stopping
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

REPORT_DEFAULTS = {
    "out_dir": "reports",        # index.html: metrics, loss curves, spectrograms, audio
    "max_audio_seconds": 60.0,   # longer clips are cut on the page (the files stay whole)
}

SECTION_DEFAULTS = {"train": TRAIN_DEFAULTS, "evaluate": EVALUATE_DEFAULTS,
                    "sample": SAMPLE_DEFAULTS, "transfer": TRANSFER_DEFAULTS,
                    "export": EXPORT_DEFAULTS, "report": REPORT_DEFAULTS}


def _merge(defaults: dict, given: dict, where: str) -> dict:
    """`given` over a copy of `defaults`, recursing into mappings; unknown keys raise."""
    if not isinstance(given, dict):
        raise ValueError(f"{where} must be a mapping, got {type(given).__name__}")
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            file, _, section = where.rpartition(": ")
            raise ValueError(f"{file}: unknown param {section}.{key}; known: {sorted(defaults)}")
        if isinstance(defaults[key], dict):
            merged[key] = _merge(defaults[key], value or {}, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------
# The schema: every key of params.yaml, its type and range or allowed values.
# ---------------------------------------------------------------------------------------
class Spec:
    """What one params key accepts: `check(value)` -> bool, `expected` for messages."""

    def __init__(self, expected: str, check):
        self.expected, self.check = expected, check


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integer(low=None, high=None) -> Spec:
    bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
    what = " ".join(["an integer", " and ".join(b for b in bounds if b)]).strip()
    return Spec(what, lambda v: _is_int(v) and (low is None or v >= low)
                and (high is None or v <= high))


def number(low=None, high=None, above=None) -> Spec:
    parts = [f"> {above}" if above is not None else "", f">= {low}" if low is not None else "",
             f"<= {high}" if high is not None else ""]
    what = "a number " + " and ".join(p for p in parts if p)
    return Spec(what.strip(), lambda v: _is_num(v) and (above is None or v > above)
                and (low is None or v >= low) and (high is None or v <= high))


def choice(*values) -> Spec:
    return Spec(f"one of {list(values)}", lambda v: v in values)


def optional(spec: Spec) -> Spec:
    return Spec(f"null or {spec.expected}", lambda v: v is None or spec.check(v))


def either(*specs: Spec) -> Spec:
    return Spec(" or ".join(s.expected for s in specs), lambda v: any(s.check(v) for s in specs))


def list_of(spec: Spec, non_empty: bool = False) -> Spec:
    return Spec(f"a {'non-empty ' if non_empty else ''}list, each item {spec.expected}",
                lambda v: isinstance(v, list) and (v or not non_empty)
                and all(spec.check(x) for x in v))


TEXT = Spec("a string", lambda v: isinstance(v, str) and v != "")
BOOL = Spec("true or false", lambda v: isinstance(v, bool))
CREPE_CAPACITIES = ("tiny", "small", "medium", "large", "full")
STRATEGIES = ("default", "mirrored", "multi_worker")
POSITIVE = integer(1)

_SIZES = {"rnn_channels": POSITIVE, "mlp_units": POSITIVE, "mlp_layers": POSITIVE}
_GIN = {"gin_files": list_of(TEXT), "gin_params": list_of(TEXT)}
SCHEMA = {
    "data": {
        "source": TEXT, "n_melodies": POSITIVE, "melody_seconds": number(above=0),
        "instruments": list_of(TEXT, non_empty=True), "soundfont": optional(TEXT),
        "render_gain": number(above=0), "seed": integer(0),
        "sample_rate": integer(1000, 384000), "frame_rate": integer(1, 2000),
        "clip_seconds": number(above=0), "hop_seconds": number(above=0),
        "silence_db": number(high=0),
        "splits": Spec(f"a mapping of {list(SPLITS)} to fractions >= 0 summing to 1",
                       lambda v: isinstance(v, dict) and set(v) <= set(SPLITS)
                       and all(_is_num(x) and x >= 0 for x in v.values())
                       and abs(sum(v.values()) - 1.0) <= 1e-6),
        "crepe_capacity": choice(*CREPE_CAPACITIES), "crepe_viterbi": BOOL,
        "task_runner": choice("thread", "dask"), "max_workers": POSITIVE,
        "dask_address": optional(TEXT), "batch_size": POSITIVE, "log_every_s": number(low=0),
    },
    "train": {
        "batch_size": POSITIVE, "learning_rate": number(above=0, high=1.0),
        "lr_decay_steps": POSITIVE, "chunk_steps": POSITIVE, "steps_per_summary": POSITIVE,
        "steps_per_eval": integer(0), "eval_examples": POSITIVE,
        "retries": integer(0), "seed": integer(0), "strategy": choice(*STRATEGIES),
        "max_nonfinite_steps": integer(0),
        "data_dir": TEXT, "runs_dir": TEXT, "plots_dir": TEXT,
        "ae": {"steps": POSITIVE, **_SIZES, "n_harmonics": POSITIVE, "noise_bands": POSITIVE,
               "reverb_seconds": number(above=0), **_GIN},
        "midiae": {"steps": POSITIVE, "notes": choice("auto", "ground_truth", "encoded"),
                   "warm_start": optional(choice(*RUNS)), **_SIZES, **_GIN},
        "zmidiae": {"steps": POSITIVE, "notes": choice("auto", "ground_truth", "encoded"),
                    **_SIZES, "z_dims": POSITIVE, **_GIN},
        "inverse": {"steps": POSITIVE, "mode": choice("zipped", "audio"),
                    "encoder_size": choice("tiny", "small", "large"),
                    "n_sinusoids": POSITIVE, "n_harmonics": POSITIVE, "noise_bands": POSITIVE,
                    **_SIZES, **_GIN},
    },
    "evaluate": {
        "runs": list_of(choice(*RUNS)), "split": choice(*SPLITS), "batch_size": POSITIVE,
        "crepe_capacity": choice(*CREPE_CAPACITIES), "min_f0_confidence": number(0.0, 1.0),
        "outlier_semitones": number(above=0), "metrics_dir": TEXT,
    },
    "sample": {
        "runs": list_of(choice(*RUNS)), "split": choice(*SPLITS), "n_clips": POSITIVE,
        "transfer_audio": optional(TEXT), "transfer_instrument": TEXT,
        "transfer_seed": integer(0),
        "octave_shift": either(choice("auto"), integer(-8, 8)),
        "loudness_shift_db": either(choice("auto"), number(-120, 120)),
        "samples_dir": TEXT,
    },
    "transfer": {
        "runs": list_of(choice(*RUNS)), "audio": optional(TEXT), "instrument": TEXT,
        "seed": integer(0), "seconds": number(above=0), "octaves": integer(-8, 8),
        "semitones": number(-48, 48), "loudness_db": number(-120, 120), "auto": BOOL,
        "autotune": number(0.0, 1.0), "quiet_db": number(low=0), "mute": BOOL,
        "crepe_capacity": choice(*CREPE_CAPACITIES), "chunk_seconds": number(above=0),
        "transfers_dir": TEXT,
    },
    "export": {"run": choice(*RUNS), "out_dir": TEXT, "block_frames": POSITIVE,
               "ir_rates": list_of(integer(1000, 384000))},
    "report": {"out_dir": TEXT, "max_audio_seconds": number(above=0)},
}


def check_section(values: dict, schema: dict, where: str, file: str) -> None:
    """Checks every key of `values` against `schema` (recursively).

    Raises:
      ValueError: ``<file>: <key path> = <value>: expected <what the key accepts>`` for
        the first bad value, or naming an unknown key with the known ones.
    """
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            raise ValueError(f"{file}: unknown param {path}; known: {sorted(schema)}")
        spec = schema[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ValueError(f"{file}: {path} must be a mapping of {sorted(spec)}, got "
                                 f"{value!r}")
            check_section(value, spec, path, file)
        elif not spec.check(value):
            raise ValueError(f"{file}: {path} = {value!r}: expected {spec.expected}")


def validate(params: dict, path: str) -> None:
    """Raises ValueError naming the file, the key path and the allowed values of the first
    bad value (`SCHEMA`), then of cross-key rules."""
    check_section(params, {k: SCHEMA[k] for k in params}, "", path)
    for section in ("evaluate", "sample"):
        if section in params and not params[section]["runs"]:
            raise ValueError(f"{path}: {section}.runs = []: expected at least one of {RUNS}")
    if "transfer" in params and "inverse" in params["transfer"]["runs"]:
        raise ValueError(f"{path}: transfer.runs: 'inverse' resynthesises fixed-length clips "
                         "from audio; it has no f0 / loudness controls to transfer")


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
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of sections {sorted(SCHEMA)}")
        unknown = sorted(set(loaded) - set(SCHEMA))
        if unknown:
            raise ValueError(f"{path}: unknown section(s) {unknown}; known: {sorted(SCHEMA)}")
    overrides = overrides or {}
    params = {"data": load_data_params(path, overrides.get("data"))}
    where = path or "<defaults>"
    for section, defaults in SECTION_DEFAULTS.items():
        merged = _merge(defaults, loaded.get(section) or {}, f"{where}: {section}")
        params[section] = _merge(merged, overrides.get(section) or {}, f"overrides: {section}")
    validate(params, where)
    return params
