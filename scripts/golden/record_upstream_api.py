"""Lists the original DDSP 3.7.0's public names of its training modules, for
tests/test_upstream_api.py.

Run with the original's own environment, never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_api.py [OUT_JSON]

A module's public names are those not starting with '_' that the module defines or
re-exports from ``ddsp`` (classes, functions, numeric and string constants); imported
third-party names (``gin``, ``tf``, ``np``) and submodules are left out. For each callable
the parameter names of its signature (of ``__init__`` for classes) are recorded too.

``behaviour.npz`` beside the JSON holds what a few of these functions return for fixed
inputs (note masks, note moments, polyphase resampling, straight-through rounding, the
quantile transformer), so the test checks values, not only names.
"""
import importlib
import inspect
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "upstream_api", "training_names.json")
MODULES = ("nn", "preprocessing", "encoders", "decoders", "models", "data", "trainers",
           "postprocessing", "inference", "train_util", "eval_util")


def parameters(value):
    target = value.__init__ if inspect.isclass(value) else value
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return [name for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def public_names(module):
    names = {}
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            if not (getattr(value, "__module__", "") or "").startswith("ddsp"):
                continue  # an imported third-party name
            names[name] = {"kind": "class" if inspect.isclass(value) else "function",
                           "parameters": parameters(value)}
        elif isinstance(value, (bool, int, float, str)):
            names[name] = {"kind": "constant", "value": value}
    return names


def record_behaviour(path):
    import numpy as np
    import tensorflow as tf
    from ddsp.training import nn, postprocessing

    out = {}
    q_pitch = np.array([[0, 0, 60, 60, 60, 62, 62, 0, 0, 64, 64, 64],
                        [50, 50, 50, 50, 0, 0, 52, 52, 52, 52, 52, 0]], np.float32)
    onset = np.zeros_like(q_pitch)
    onset[0, [2, 4, 9]] = 1.0
    onset[1, [0, 6]] = 1.0
    x = np.random.RandomState(0).normal(size=(2, 12, 2)).astype(np.float32)
    out["q_pitch"], out["onset"], out["x"] = q_pitch, onset, x
    mask = nn.get_note_mask(tf.constant(q_pitch), max_regions=6)
    out["note_mask"] = mask.numpy()
    out["note_mask_all"] = nn.get_note_mask(tf.constant(q_pitch), 6, note_on_only=False).numpy()
    out["note_mask_from_onset"] = nn.get_note_mask_from_onset(
        tf.constant(q_pitch), tf.constant(onset), max_regions=6).numpy()
    mean, std = nn.get_note_moments(tf.constant(x), mask)
    out["note_mean"], out["note_std"] = mean.numpy(), std.numpy()
    pooled_mean, pooled_std = nn.pool_over_notes(tf.constant(x), mask)
    out["pooled_mean"], out["pooled_std"] = pooled_mean.numpy(), pooled_std.numpy()
    lengths = nn.get_note_lengths(mask)
    pitches = nn.get_note_moments(tf.constant(q_pitch), mask, return_std=False)
    out["short_note_mask"] = nn.get_short_note_loss_mask(mask, lengths, pitches, 3).numpy()
    y = np.arange(2 * 11 * 3, dtype=np.float32).reshape(2, 11, 3)
    out["y"] = y
    for kind in ("down", "up"):
        for fix in ("pad", "trim"):
            resampled = nn.polyphase_resample(tf.constant(y), 2, kind, fix)
            out[f"polyphase_{kind}_{fix}"] = resampled.numpy()
    out["int_quantized"] = nn.straight_through_int_quantization(tf.constant(x * 3)).numpy()
    data = np.random.RandomState(1).gamma(2.0, 3.0, size=(500, 2)) - 40.0
    points = np.array([[-45.0, -39.0], [-35.0, -30.0], [-20.0, -10.0], [np.nan, -37.0]])
    out["qt_data"], out["qt_points"] = data, points
    for dist in ("uniform", "normal"):
        transformer = postprocessing.QuantileTransformer(n_quantiles=100, output_distribution=dist)
        transformer.fit(data)
        out[f"qt_{dist}_quantiles"] = transformer.quantiles_
        out[f"qt_{dist}_transform"] = transformer.transform(points)
        out[f"qt_{dist}_inverse"] = transformer.inverse_transform(
            np.array([[0.0, 0.3], [0.5, 0.9], [1.0, 0.05]]) if dist == "uniform"
            else np.array([[-6.0, -0.5], [0.0, 1.2], [6.0, 0.1]]))
    np.savez_compressed(path, **out)


def main(argv):
    out = argv[1] if len(argv) > 1 else DEFAULT_OUT
    import ddsp  # noqa: F401  (the original)

    api = {"ddsp_version": importlib.import_module("ddsp.version").__version__, "modules": {}}
    for name in MODULES:
        api["modules"][name] = public_names(importlib.import_module(f"ddsp.training.{name}"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(api, f, indent=1, sort_keys=True)
    print(out, {k: len(v) for k, v in api["modules"].items()})
    record_behaviour(os.path.join(os.path.dirname(out), "behaviour.npz"))


if __name__ == "__main__":
    main(sys.argv)
