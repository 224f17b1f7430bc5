"""Recording machinery for scripts/golden/record_upstream_dsp.py (the original DDSP's venv only).

Recorder.case / group_case run one call on the original and store its inputs, weights,
random draws and outputs; save() writes the manifest, one npz per module and the
original's public names.
"""
import inspect
import json
import os
import types
import typing

import ddsp  # the original library; only the golden recording scripts import it
import numpy as np
import tensorflow as tf

MODULES = ("core", "spectral_ops", "synths", "effects", "processors", "losses", "dags")
SEED = 20240612


# ------------------------------------------------------------------------------ public names
def public_names(module) -> list:
    """Names a user of the original reaches as module.X: its own functions, classes, constants
    and type aliases (imports of other modules' functions and classes, and of typing, excluded)."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType) or getattr(typing, name, None) is value:
            continue  # private, a module, or a typing import (Dict, Sequence, ...)
        defined_elsewhere = (inspect.isfunction(value) or inspect.isclass(value)) and \
            getattr(value, "__module__", None) != module.__name__
        if defined_elsewhere:
            continue
        names.append(name)
    return sorted(names)


# ---------------------------------------------------------------------------- random draws
class NoiseRecorder:
    """Replaces tf.random.uniform; keeps every draw of the current case (numpy, in order)."""

    def __init__(self):
        self.rng = np.random.default_rng(SEED + 1)
        self.draws = []
        # The original's modules import `tensorflow.compat.v2 as tf`: a separate namespace.
        self._namespaces = [tf.random, tf.compat.v2.random]
        self._originals = [ns.uniform for ns in self._namespaces]

    def __call__(self, shape, minval=0.0, maxval=None, dtype=tf.float32, seed=None, name=None):
        del seed, name
        maxval = 1.0 if maxval is None else maxval
        shape = [int(s) for s in shape]
        values = self.rng.uniform(minval, maxval, size=shape).astype(np.float32)
        self.draws.append(values)
        return tf.constant(values, dtype=dtype)

    def install(self):
        for namespace in self._namespaces:
            namespace.uniform = self

    def uninstall(self):
        for namespace, original in zip(self._namespaces, self._originals):
            namespace.uniform = original


# ---------------------------------------------------------------------------------- recorder
class Recorder:
    def __init__(self):
        self.arrays = {m: {} for m in MODULES}
        self.manifest = []
        self.rng = np.random.default_rng(SEED)
        self.noise = NoiseRecorder()

    # Arguments: numpy arrays are stored; everything else must be JSON.
    def _encode(self, value, module, key):
        if isinstance(value, Array):
            return {"array": value.key, "numpy": value.numpy}
        if isinstance(value, np.ndarray):
            stored = value.astype(np.float32) if value.dtype.kind == "f" else value
            self.arrays[module][key] = stored
            return {"array": key, "numpy": False}
        if isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, Array)) for v in value):
            return {"list": [self._encode(v, module, f"{key}.{i}") for i, v in enumerate(value)]}
        json.dumps(value)
        return value

    def _decode(self, value, module):
        if isinstance(value, dict) and "array" in value:
            array = self.arrays[module][value["array"]]
            return array if value["numpy"] else tf.constant(array)
        if isinstance(value, dict) and "list" in value:
            return [self._decode(v, module) for v in value["list"]]
        return value

    def keep(self, module, key, array, numpy=False) -> "Array":
        """Stores an input once so several cases can share it."""
        self.arrays[module][key] = np.asarray(array).astype(np.float32)
        return Array(key, numpy)

    def _store_output(self, module, key, value):
        """Output -> manifest structure; arrays stored under key (tuples/dicts nested)."""
        if isinstance(value, dict):
            return {"dict": {k: self._store_output(module, f"{key}.{k}", v) for k, v in value.items()}}
        if isinstance(value, (tuple, list)):
            return {"tuple": [self._store_output(module, f"{key}.{i}", v) for i, v in enumerate(value)]}
        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        elif array.dtype.kind == "c":
            array = array.astype(np.complex64)
        self.arrays[module][key] = array
        return {"array": key}

    def case(self, case_id, target, args=(), kwargs=None, init=None, method=None, weights=None,
             numpy_inputs=False, note=""):
        """Runs one case on the original and records it.

        Args:
          target: 'module.name' of a function or class.
          args, kwargs: call arguments (numpy arrays are stored and passed as tensors, or as
            numpy with numpy_inputs=True; Array refers to a stored input).
          init: constructor kwargs when target is a class; method: name of the method to call
            (default: the instance itself); weights: {variable name: array} set after a first
            call builds the layer.
        """
        module, name = target.split(".")
        kwargs = dict(kwargs or {})
        entry = {"id": case_id, "module": module, "target": target, "method": method, "note": note}
        def enc(v, k):
            raw = numpy_inputs and isinstance(v, np.ndarray)
            return self._encode(Array(self._store_raw(module, k, v), True) if raw else v, module, k)
        entry["args"] = [enc(a, f"{case_id}/arg{i}") for i, a in enumerate(args)]
        entry["kwargs"] = {k: enc(v, f"{case_id}/kw.{k}") for k, v in kwargs.items()}
        entry["init"] = init
        call_args = [self._decode(a, module) for a in entry["args"]]
        call_kwargs = {k: self._decode(v, module) for k, v in entry["kwargs"].items()}
        self.noise.draws = []
        self.noise.install()
        try:
            fn = getattr(getattr(ddsp, module), name)
            if init is not None:
                obj = fn(**init)
                if weights:
                    getattr(obj, method or "__call__")(*call_args, **call_kwargs)  # builds it
                    set_weights(obj, weights)
                    self.noise.draws = []
                    entry["weights"] = {k: self._encode(np.asarray(v), module, f"{case_id}/w.{k}")
                                        for k, v in weights.items()}
                output = getattr(obj, method)(*call_args, **call_kwargs) if method else obj(*call_args,
                                                                                          **call_kwargs)
            else:
                output = fn(*call_args, **call_kwargs)
        finally:
            self.noise.uninstall()
        entry["noise"] = [self._encode(d, module, f"{case_id}/noise{i}")
                          for i, d in enumerate(self.noise.draws)]
        entry["output"] = self._store_output(module, f"{case_id}/out", output)
        self.manifest.append(entry)
        return output

    def group_case(self, case_id, module, target, nodes, inputs, init_extra=None, weights=None,
                   return_outputs_dict=False):
        """A ProcessorGroup / DAGLayer / LossGroup built from node specs
        [(class 'module.Name', init kwargs, [input keys]), ...] called on a dict of inputs."""
        entry = {"id": case_id, "module": module, "target": target, "kind": "group",
                 "nodes": [{"target": t, "init": i, "inputs": k} for t, i, k in nodes],
                 "init": init_extra or {}, "return_outputs_dict": return_outputs_dict}
        entry["inputs"] = {k: self._encode(v, module, f"{case_id}/in.{k}") for k, v in inputs.items()}
        dag = []
        for t, i, k in nodes:
            mod, name = t.split(".")
            dag.append((getattr(getattr(ddsp, mod), name)(**i), k))
        mod, name = target.split(".")
        group = getattr(getattr(ddsp, mod), name)(dag, **(init_extra or {}))
        feed = {k: self._decode(v, module) for k, v in entry["inputs"].items()}
        self.noise.draws = []
        self.noise.install()
        try:
            if weights:
                group(feed)
                set_weights(group, weights)
                self.noise.draws = []
                entry["weights"] = {k: self._encode(np.asarray(v), module, f"{case_id}/w.{k}")
                                    for k, v in weights.items()}
            if return_outputs_dict:
                output = group(feed, return_outputs_dict=True)
            else:
                output = group(feed)
        finally:
            self.noise.uninstall()
        entry["noise"] = [self._encode(d, module, f"{case_id}/noise{i}")
                          for i, d in enumerate(self.noise.draws)]
        if isinstance(output, dict):
            output = flatten(output)
        entry["output"] = self._store_output(module, f"{case_id}/out", output)
        self.manifest.append(entry)

    def _store_raw(self, module, key, value):
        self.arrays[module][key] = value.astype(np.float32) if value.dtype.kind == "f" else value
        return key

    def save(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        for module, arrays in self.arrays.items():
            if arrays:
                np.savez_compressed(os.path.join(out_dir, f"{module}.npz"), **arrays)
        for entry in self.manifest:
            entry["file"] = f"{entry['module']}.npz"
        header = {"ddsp_version": ddsp.__version__, "tensorflow_version": tf.__version__,
                  "recorded_by": "scripts/golden/record_upstream_dsp.py", "seed": SEED}
        with open(os.path.join(out_dir, "manifest.json"), "w") as f:
            json.dump({"header": header, "cases": self.manifest}, f, indent=1)
        names = {m: public_names(getattr(ddsp, m)) for m in MODULES}
        with open(os.path.join(out_dir, "public_names.json"), "w") as f:
            json.dump(names, f, indent=1)


class Array:
    """Reference to an input already stored under `key` (numpy: pass as numpy, not a tensor)."""

    def __init__(self, key, numpy=False):
        self.key, self.numpy = key, numpy


def flatten(nested, prefix=""):
    """{'a': {'b': x}} -> {'a/b': x}; tensors only (the DAG's input aliases are dropped)."""
    flat = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}/"))
        elif hasattr(value, "shape"):
            flat[path] = value
    return flat


def set_weights(layer, weights):
    """Assigns {short variable name: array} to the layer's variables of that name."""
    for short, value in weights.items():
        matches = [v for v in layer.weights if v.name.split("/")[-1].split(":")[0] == short]
        if len(matches) != 1:
            raise ValueError(f"weight {short!r}: found {[v.name for v in layer.weights]}")
        matches[0].assign(np.asarray(value, np.float32))


