"""`processors.ProcessorGroup.get_controls` / `get_signal` return the original DDSP 3.7.0's
nested DAG outputs, key for key and value for value, for the group recorded by
scripts/golden/record_upstream_dsp.py (harmonic + filtered noise -> add -> reverb, with the
original's random draws replayed). (tests/test_golden_dsp.py replays the same case through
`return_outputs_dict=True`, whose flat layout it maps first.)"""
import numpy as np
import tensorflow as tf

from golden_replay import arrays, expected_outputs, load_manifest, replayed_noise, resolve, set_weights

CASE = next(c for c in load_manifest()["cases"] if c["id"] == "processor_group_outputs")


def flatten(nested, prefix=""):
    """{'a': {'b': x}} -> {'a/b': x}, tensors only (as the recorder flattened the original's)."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        elif hasattr(value, "shape"):
            flat[f"{prefix}{key}"] = np.asarray(value)
    return flat


def test_processor_group_nested_outputs_equal_the_originals():
    stored = arrays(CASE["file"])
    dag = [(resolve(node["target"])(**node["init"]), node["inputs"]) for node in CASE["nodes"]]
    group = resolve(CASE["target"])(dag, **CASE["init"])
    feed = {k: tf.constant(stored[v["array"]]) for k, v in CASE["inputs"].items()}
    noise = [stored[n["array"]] for n in CASE["noise"]]
    weights = {k: stored[v["array"]] for k, v in (CASE.get("weights") or {}).items()}
    if weights:
        group(feed)
        set_weights(group, weights)
    with replayed_noise(noise):
        controls = group.get_controls(feed)
    assert controls["out"] is controls[dag[-1][0].name]
    ours = {f"out.{k}": v for k, v in flatten({"signal": group.get_signal(controls),
                                                 "controls": controls}).items()}
    expected = expected_outputs(CASE)
    assert sorted(ours) == sorted(expected)
    assert "out.controls/harmonic/controls/harmonic_distribution" in expected
    for key, value in expected.items():
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=1e-4 * scale, err_msg=key)
