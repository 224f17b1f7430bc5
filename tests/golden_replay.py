"""Replays the original DDSP's recorded cases (tests/data/golden) on ddsp_models.

scripts/golden/record_upstream_dsp.py ran each case on DDSP 3.7.0 and stored its inputs,
outputs and random draws; `run_case` makes the same call here and returns both outputs as
flat {name: array} dicts. Used by tests/test_golden_dsp.py and scripts/golden/compare.py.
"""
import importlib
import json
import os
from contextlib import contextmanager

import numpy as np
import tensorflow as tf

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden")
MODULES = {"core": "ddsp_models.core", "spectral_ops": "ddsp_models.spectral_ops",
           "synths": "ddsp_models.synths", "effects": "ddsp_models.effects",
           "processors": "ddsp_models.processors", "losses": "ddsp_models.losses",
           "dags": "ddsp_models.dags"}


def load_manifest() -> dict:
    with open(os.path.join(GOLDEN_DIR, "manifest.json")) as f:
        return json.load(f)


def load_public_names() -> dict:
    with open(os.path.join(GOLDEN_DIR, "public_names.json")) as f:
        return json.load(f)


_ARRAYS = {}


def arrays(file: str):
    if file not in _ARRAYS:
        with np.load(os.path.join(GOLDEN_DIR, file)) as data:
            _ARRAYS[file] = {k: data[k] for k in data.files}
    return _ARRAYS[file]


def resolve(target: str):
    module, name = target.split(".")
    return getattr(importlib.import_module(MODULES[module]), name)


def _decode(value, stored):
    if isinstance(value, dict) and "array" in value:
        array = stored[value["array"]]
        return array if value.get("numpy") else tf.constant(array)
    if isinstance(value, dict) and "list" in value:
        return [_decode(v, stored) for v in value["list"]]
    return value


def expected_outputs(entry) -> dict:
    """The recorded outputs as {name: array} ('out', 'out.0', 'out.amplitudes', ...)."""
    stored = arrays(entry["file"])
    flat = {}

    def walk(node, name):
        if "array" in node:
            flat[name] = stored[node["array"]]
        elif "tuple" in node:
            for i, child in enumerate(node["tuple"]):
                walk(child, f"{name}.{i}")
        else:
            for key, child in node["dict"].items():
                walk(child, f"{name}.{key}")

    walk(entry["output"], "out")
    return flat


def _flatten_output(value, name="out") -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, child in value.items():
            flat.update(_flatten_output(child, f"{name}.{key}"))
        return flat
    if isinstance(value, (tuple, list)):
        flat = {}
        for i, child in enumerate(value):
            flat.update(_flatten_output(child, f"{name}.{i}"))
        return flat
    return {name: np.asarray(value.numpy() if hasattr(value, "numpy") else value)}


@contextmanager
def replayed_noise(draws):
    """Makes ddsp_models.seeding.uniform return the recorded draws, in order."""
    from ddsp_models import seeding

    queue = [np.asarray(d) for d in draws]
    original = seeding.uniform

    def uniform(shape, minval=0.0, maxval=1.0):
        if not queue:
            raise AssertionError("the case drew more random numbers than the original did")
        values = queue.pop(0)
        shape = [int(s) for s in (shape.numpy() if hasattr(shape, "numpy") else shape)]
        if list(values.shape) != shape:
            raise AssertionError(f"random draw of shape {shape}; the original drew {list(values.shape)}")
        return tf.constant(values)

    seeding.uniform = uniform
    try:
        yield queue
    finally:
        seeding.uniform = original


def set_weights(layer, weights: dict) -> None:
    """Assigns {short variable name: array} (e.g. 'ir', 'magnitudes') to the layer's variables."""
    for short, value in weights.items():
        matches = [v for v in layer.weights if v.name.split("/")[-1].split(":")[0] == short]
        if len(matches) != 1:
            raise AssertionError(f"weight {short!r}: layer has {[v.name for v in layer.weights]}")
        matches[0].assign(np.asarray(value, np.float32))


def run_case(entry) -> dict:
    """Runs the case on ddsp_models; returns its outputs flat as in expected_outputs."""
    stored = arrays(entry["file"])
    noise = [stored[n["array"]] for n in entry.get("noise", [])]
    weights = {k: stored[v["array"]] for k, v in (entry.get("weights") or {}).items()}
    if entry.get("kind") == "group":
        return _run_group(entry, stored, noise, weights)
    args = [_decode(a, stored) for a in entry["args"]]
    kwargs = {k: _decode(v, stored) for k, v in entry["kwargs"].items()}
    target = resolve(entry["target"])
    if entry["init"] is None:
        with replayed_noise(noise):
            return _flatten_output(target(*args, **kwargs))
    obj = target(**entry["init"])
    call = getattr(obj, entry["method"]) if entry["method"] else obj
    if weights:
        call(*args, **kwargs)  # builds the variables
        set_weights(obj, weights)
    with replayed_noise(noise) as left:
        output = call(*args, **kwargs)
        if left:
            raise AssertionError(f"{len(left)} recorded random draws were not used")
    return _flatten_output(output)


def _flatten_nested(nested: dict, prefix: str = "") -> dict:
    """{'a': {'b': x}} -> {'a/b': x}, tensors only (as the recorder flattens)."""
    flat = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_nested(value, f"{path}/"))
        elif hasattr(value, "shape"):
            flat[path] = value
    return flat


def processor_group_outputs_as_original(outputs: dict, dag, inputs: dict) -> dict:
    """Our ProcessorGroup's flat outputs dict in the original's layout (flattened with '/'):
    {'signal': ..., 'controls/<node>/signal', 'controls/<node>/controls/<c>', 'controls/inputs/<k>',
    'controls/<k>', 'controls/out/...'}. Ours keeps '<node>/signal' and '<node>/controls/<c>'
    flat at the top level, and 'out/signal' only (a documented difference)."""
    adapted = {"signal": outputs["out/signal"]}
    for key, value in inputs.items():
        adapted[f"controls/inputs/{key}"] = value
        adapted[f"controls/{key}"] = value
    last = dag[-1][0].name
    for key, value in outputs.items():
        if key.startswith(tuple(f"{p.name}/" for p, _ in dag)):
            adapted[f"controls/{key}"] = value
            if key.startswith(f"{last}/"):
                adapted[f"controls/out/{key[len(last) + 1:]}"] = value
    return adapted


def _run_group(entry, stored, noise, weights) -> dict:
    dag = [(resolve(node["target"])(**node["init"]), node["inputs"]) for node in entry["nodes"]]
    group = resolve(entry["target"])(dag, **entry["init"])
    feed = {k: _decode(v, stored) for k, v in entry["inputs"].items()}
    if weights:
        group(feed)
        set_weights(group, weights)
    with replayed_noise(noise):
        if entry["return_outputs_dict"]:
            output = group(feed, return_outputs_dict=True)
        else:
            output = group(feed)
    if not isinstance(output, dict):
        return _flatten_output(output)
    if entry["target"] == "processors.ProcessorGroup":
        output = processor_group_outputs_as_original(output, dag, feed)
    return {f"out.{k}": np.asarray(v) for k, v in _flatten_nested(output).items()}


def max_abs_difference(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        raise AssertionError(f"shape {list(actual.shape)}, the original's {list(expected.shape)}")
    if expected.size == 0:
        return 0.0
    both_nan = np.isnan(expected) & np.isnan(actual) if expected.dtype.kind in "fc" else False
    difference = np.abs(expected.astype(np.complex128 if expected.dtype.kind == "c" else np.float64)
                        - actual)
    return float(np.max(np.where(both_nan, 0.0, difference)))
