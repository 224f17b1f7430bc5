"""``params.yaml``: the schema of every knob the pipeline reads, and the one loader.

The repository's ``params.yaml`` (`DEFAULTS_FILE`) holds the defaults: there is no copy of
them in Python. `load_params` reads it, merges a given params file over it, then
``overrides`` (nested mappings key by key; a value the schema checks whole, such as
``data.splits`` or a list, is replaced whole), and checks every key against `SCHEMA`: its
type, range or allowed values, unknown keys, missing keys (where the package is installed
without the repository, the given file must be complete), and a few cross-key rules.

Sections: ``data`` (stages prepare, features, dataset), ``train`` (one run each of `RUNS`:
``ae`` Autoencoder, ``midiae`` MidiAutoencoder warm-started from ``ae``, ``zmidiae``,
``inverse`` InverseSynthesis; each with ``steps``, sizes, ``gin_files`` (the package's
configs, ``ddsp_models/training/gin/``) and ``gin_params``), ``evaluate``, ``sample``,
``transfer``, ``export`` and ``report``. Folders are not params: the stages get them on
their command lines (dvc.yaml).
"""
from __future__ import annotations

import copy
import os

import yaml

from ddsp_models.training.features import SPLITS
from ddsp_models.training.precision import PRECISIONS

RUNS = ("ae", "midiae", "zmidiae", "inverse")
DEFAULTS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "params.yaml")


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
        "max_nonfinite_steps": integer(0), "precision": choice(*PRECISIONS),
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
        "outlier_semitones": number(above=0),
    },
    "sample": {
        "runs": list_of(choice(*RUNS)), "split": choice(*SPLITS), "n_clips": POSITIVE,
        "transfer_audio": optional(TEXT), "transfer_instrument": TEXT,
        "transfer_seed": integer(0),
        "octave_shift": either(choice("auto"), integer(-8, 8)),
        "loudness_shift_db": either(choice("auto"), number(-120, 120)),
    },
    "transfer": {
        "runs": list_of(choice(*RUNS)), "audio": optional(TEXT), "instrument": TEXT,
        "seed": integer(0), "seconds": number(above=0), "octaves": integer(-8, 8),
        "semitones": number(-48, 48), "loudness_db": number(-120, 120), "auto": BOOL,
        "autotune": number(0.0, 1.0), "quiet_db": number(low=0), "mute": BOOL,
        "crepe_capacity": choice(*CREPE_CAPACITIES), "chunk_seconds": number(above=0),
    },
    "export": {"run": choice(*RUNS), "block_frames": POSITIVE,
               "ir_rates": list_of(integer(1000, 384000))},
    "report": {"max_audio_seconds": number(above=0)},
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
    bad value (`SCHEMA`), then of the first missing key, then of cross-key rules."""
    check_section(params, SCHEMA, "", path)
    check_complete(params, SCHEMA, "", path)
    for section in ("evaluate", "sample"):
        if not params[section]["runs"]:
            raise ValueError(f"{path}: {section}.runs = []: expected at least one of {RUNS}")
    if "inverse" in params["transfer"]["runs"]:
        raise ValueError(f"{path}: transfer.runs: 'inverse' resynthesises fixed-length clips "
                         "from audio; it has no f0 / loudness controls to transfer")


def read_params_file(path: str) -> dict:
    """The sections of a YAML params file; ValueError naming the file when it is missing,
    not YAML, not a mapping of sections, or names an unknown section."""
    if not os.path.isfile(path):
        raise ValueError(f"params file {path!r} not found")
    with open(path, encoding="utf-8") as f:
        try:
            loaded = yaml.safe_load(f) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not YAML ({error})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of sections {sorted(SCHEMA)}")
    unknown = sorted(set(loaded) - set(SCHEMA))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; known: {sorted(SCHEMA)}")
    return loaded


def merge_params(base: dict, given: dict, schema: dict, where: str, file: str) -> dict:
    """`given` over a copy of `base`: mappings of the schema merge key by key, every other
    value (numbers, lists, ``data.splits``) is replaced whole. Unknown keys raise
    ValueError naming `file` and the key path."""
    if not isinstance(given, dict):
        raise ValueError(f"{file}: {where or 'params'} must be a mapping, got {given!r}")
    merged = copy.deepcopy(base)
    for key, value in given.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            raise ValueError(f"{file}: unknown param {path}; known: {sorted(schema)}")
        if isinstance(schema[key], dict):
            merged[key] = merge_params(merged.get(key) or {}, value or {}, schema[key], path,
                                       file)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_complete(values: dict, schema: dict, where: str, file: str) -> None:
    """ValueError naming the first key of `schema` that `values` lacks."""
    for key, spec in schema.items():
        path = f"{where}.{key}" if where else key
        if key not in values:
            raise ValueError(f"{file}: missing param {path} (expected "
                             f"{'a mapping' if isinstance(spec, dict) else spec.expected})")
        if isinstance(spec, dict):
            check_complete(values[key], spec, path, file)


def load_params(path: str | None = "params.yaml", overrides: dict | None = None,
                defaults: str | None = DEFAULTS_FILE) -> dict:
    """Every section of the params, checked: ``{'data': ..., 'train': ..., ...}``.

    Args:
      path: a YAML params file merged over `defaults` (None: the defaults alone).
      overrides: ``{section: {key: value}}`` merged last (tests, notebooks).
      defaults: the complete params file the others are merged over (the repository's
        ``params.yaml``); None, or a file that does not exist (an installed package),
        leaves `path` and `overrides` to give every key.

    Raises:
      ValueError: naming the file and the key path of a missing file, an unknown, missing
        or bad key, with what the key accepts.
    """
    have_defaults = defaults is not None and os.path.isfile(defaults)
    if path is None and not have_defaults:
        raise ValueError(f"no params file given and no defaults file {defaults!r}")
    params, where = (read_params_file(defaults), defaults) if have_defaults else ({}, path)
    if path is not None:  # (the defaults file itself merges over itself unchanged)
        params, where = merge_params(params, read_params_file(path), SCHEMA, "", path), path
    if overrides:
        params = merge_params(params, overrides, SCHEMA, "", f"{where} (overrides)")
    validate(params, where)
    return params
