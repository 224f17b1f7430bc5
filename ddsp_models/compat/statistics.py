"""The original DDSP's ``dataset_statistics.pkl``, read without the original or sklearn.

The original's timbre-transfer notebook pickles the dict that its
``postprocessing.compute_dataset_statistics`` returns: float32 numpy scalars
``{mean,max,min,mean_max,mean_min,std}_{pitch,power,loudness}`` (pitch in MIDI notes over
all frames, power and loudness in dB), the same six with a ``_note`` suffix (only frames its
note detector marks as notes), and ``quantile_transform``: a fitted quantile transformer of
the note frames' loudness (the original's own ``postprocessing.QuantileTransformer``, or
sklearn's ``QuantileTransformer`` in files of older versions), whose state holds
``quantiles_`` `[n, 1]` and ``references_`` `[n]`.

`load_dataset_statistics` reads such a file with a restricted unpickler: it reconstructs
numpy arrays, scalars and dtypes (no object arrays), records the transformer's state into a
plain stand-in object and refuses every other global, so a pickle can run no code and needs
neither ``ddsp`` nor ``sklearn`` to be installed. `to_run_statistics` turns the result into
this project's ``dataset_statistics.json`` layout (that of
`training.evaluation.compute_dataset_statistics`).
"""
from __future__ import annotations

import os
import pickle

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

STAT_NAMES = ("mean", "max", "min", "mean_max", "mean_min", "std")
STAT_FEATURES = ("pitch", "power", "loudness", "pitch_note", "power_note", "loudness_note")
_TRANSFORMER_MODULES = ("ddsp.training.postprocessing", "sklearn.preprocessing._data",
                        "sklearn.preprocessing.data")


class _PickledObject:
    """Stand-in for an object of a class the pickle names: keeps its state, runs nothing."""

    pickled_class = "object"

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots dict)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state if isinstance(state, dict) else {"state": state}


class _PickledQuantileTransformer(_PickledObject):
    pickled_class = "QuantileTransformer"


class _PickledRandomState(_PickledObject):
    pickled_class = "RandomState"


def _dtype(name, align=False, copy=False):
    dtype = np.dtype(name, bool(align), bool(copy))
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object arrays ({dtype}) are not allowed")
    return dtype


def _reconstructor(cls, base, state=None):
    """``copyreg._reconstructor`` (protocol 0/1 pickles) for the stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _PickledObject)) or base is not object:
        raise pickle.UnpicklingError(f"copyreg._reconstructor of {cls!r} is not allowed")
    return cls()


def _new_object(cls, *args):
    if not (isinstance(cls, type) and issubclass(cls, _PickledObject)):
        raise pickle.UnpicklingError(f"creating {cls!r} is not allowed")
    return cls()


def _latin1_bytes(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it to store bytes (latin-1 only)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin-1 text")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "__newobj__"): _new_object,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("numpy.random._pickle", "__randomstate_ctor"): _PickledRandomState,
    ("numpy.random._pickle", "__bit_generator_ctor"): _PickledRandomState,
    ("numpy.random.mtrand", "RandomState"): _PickledRandomState,
    ("numpy.random", "__RandomState_ctor"): _PickledRandomState,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
for _module in _TRANSFORMER_MODULES:
    _ALLOWED[(_module, "QuantileTransformer")] = _PickledQuantileTransformer


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"{self.path}: the pickle needs {module}.{name}, which is not allowed "
                "(dataset statistics hold numpy scalars and arrays and a quantile "
                "transformer only)")
        return found


def _plain(value):
    """numpy scalars -> Python floats/ints; arrays stay arrays."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _quantile_state(transformer: _PickledQuantileTransformer, path: str) -> dict:
    state = getattr(transformer, "state", None) or {}
    missing = [k for k in ("quantiles_", "references_") if k not in state]
    if missing:
        raise ValueError(f"{path}: quantile_transform is not fitted (its state lacks {missing})")
    quantiles = np.asarray(state["quantiles_"], np.float64)
    references = np.asarray(state["references_"], np.float64).reshape(-1)
    if quantiles.ndim == 2 and quantiles.shape[1] != 1:
        raise ValueError(f"{path}: quantile_transform has {quantiles.shape[1]} features; "
                         "expected one (loudness)")
    quantiles = quantiles.reshape(-1)
    if quantiles.size != references.size or quantiles.size == 0:
        raise ValueError(f"{path}: quantile_transform has {quantiles.size} quantiles for "
                         f"{references.size} references")
    return {"quantiles": quantiles, "references": references,
            "n_quantiles": int(state.get("n_quantiles_", quantiles.size)),
            "output_distribution": str(state.get("output_distribution", "uniform"))}


def load_dataset_statistics(path) -> dict:
    """The original's ``dataset_statistics.pkl`` as a plain dict.

    Returns:
      Every statistic of the file as a Python float (keys as in the original:
      ``mean_pitch``, ``std_loudness``, ``mean_max_power_note``, ...), and
      ``quantile_transform`` as ``{'quantiles': [n] float64 (dB), 'references': [n]
      float64 (in [0, 1]), 'n_quantiles': n, 'output_distribution': 'uniform'|'normal'}``
      (None when the file has none). Unknown extra entries are kept when they are plain
      values or arrays.

    Raises:
      ValueError: naming the file when it cannot be read, is not a dict, or needs any
        class or function beyond numpy arrays/scalars and a quantile transformer.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f, path).load()
    except pickle.UnpicklingError as error:
        message = str(error)
        raise ValueError(message if message.startswith(path) else f"{path}: {message}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path}: not a readable dataset statistics pickle ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a pickled dict of statistics, got "
                         f"{type(data).__name__}")
    stats = {}
    for key, value in data.items():
        if isinstance(value, _PickledQuantileTransformer):
            stats[str(key)] = _quantile_state(value, path)
        elif isinstance(value, _PickledObject):
            raise ValueError(f"{path}: entry {key!r} is a pickled {value.pickled_class}, "
                             "not a statistic")
        else:
            stats[str(key)] = _plain(value)
    stats.setdefault("quantile_transform", None)
    return stats


def to_run_statistics(stats: dict) -> dict:
    """`load_dataset_statistics`' dict in this project's ``dataset_statistics.json`` layout.

    The original's statistics are computed over every frame (``mean_pitch``,
    ``mean_loudness``) and over note frames (``*_note``); this project's readers use
    ``mean_pitch`` (MIDI), ``mean_loudness_db`` (dB), the ``*_note`` statistics and
    ``loudness_transform`` ({'quantiles', 'references'} of the note frames' loudness),
    which are taken from the corresponding original entries. Statistics the original does
    not compute are None.
    """
    def get(key):
        value = stats.get(key)
        return None if value is None else float(value)

    transform = stats.get("quantile_transform")
    out = {"mean_pitch": get("mean_pitch"), "min_pitch": get("min_pitch"),
           "max_pitch": get("max_pitch"), "mean_loudness_db": get("mean_loudness"),
           "loudness_quantiles": None, "n_pitch_frames": None, "n_loudness_frames": None,
           "min_f0_confidence": None, "quiet_db": None}
    if transform is not None:
        quantiles, references = transform["quantiles"], transform["references"]
        out["loudness_transform"] = {"quantiles": [float(v) for v in quantiles],
                                     "references": [float(v) for v in references]}
        out["loudness_quantiles"] = {str(q): float(np.interp(q, references, quantiles))
                                     for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    else:
        out["loudness_transform"] = None
    for feature in ("pitch_note", "power_note", "loudness_note"):
        for name in STAT_NAMES:
            out[f"{name}_{feature}"] = get(f"{name}_{feature}")
    out.update({"power_transform": None, "n_examples": None, "n_note_frames": None,
                "instrument_id": -1, "source": "original DDSP dataset_statistics.pkl"})
    return out
