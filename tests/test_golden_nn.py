"""The nn layers and functions compute the original DDSP 3.7.0's numbers.

scripts/golden/record_upstream_nn.py ran each case on the original (TF 2.15 / Keras 2), for
every layer the two share and the decoders built on `DilatedConvStack`:
seeded random weights, written as the original's trainer checkpoints a layer, and the
outputs for fixed inputs (tests/data/golden/upstream_nn). Here the same layer is built with
the same arguments, the original's checkpoint is restored into it by
`compat.checkpoints.restore_upstream_checkpoint` (every variable of ours must find one of the
original's and every one of the original's must be used), and the outputs must equal the
original's to float32 round-off.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.compat.checkpoints import restore_upstream_checkpoint
from ddsp_models.training import decoders, nn

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden", "upstream_nn")
with open(os.path.join(GOLDEN, "manifest.json")) as f:
    MANIFEST = json.load(f)
CASES = {case["id"]: case for case in MANIFEST["cases"]}
with np.load(os.path.join(GOLDEN, "arrays.npz")) as data:
    ARRAYS = {key: data[key] for key in data.files}


def flat(value, name):
    if isinstance(value, dict):
        return {k: v for key, child in value.items() for k, v in flat(child, f"{name}.{key}").items()}
    return {name: np.asarray(value)}


# Our constructor arguments where ours differ from the original's (a documented deviation):
# our MidiToHarmonicDecoder reads its inputs by key, the original's by its call() arguments.
OUR_INIT = {"decoder_midi_to_harmonic_net": {"input_keys": ("pitch", "velocity", "z")}}


def resolve(target):
    module, name = target.split(".")
    return getattr({"nn": nn, "decoders": decoders}[module], name)


def build(case):
    init = {k: resolve(v["target"])(**v["init"]) if isinstance(v, dict) else v
            for k, v in case["init"].items()}
    init.update(OUR_INIT.get(case["id"], {}))
    if "output_splits" in init:
        init["output_splits"] = [tuple(split) for split in init["output_splits"]]
    return resolve(case["target"])(**init)


def run_ours(case):
    """Our outputs for the case, {stored name: array}."""
    args, kwargs = [], {}
    for spec in case["inputs"]:
        if "dict" in spec:
            args.append({k: tf.constant(ARRAYS[v]) for k, v in spec["dict"].items()})
        elif "kwarg" in spec:
            value = spec["value"]
            kwargs[spec["kwarg"]] = [tuple(v) for v in value] if isinstance(value, list) else value
        else:
            args.append(tf.constant(ARRAYS[spec["array"]]))
    prefix = f"{case['id']}/out"
    if case["init"] is None:
        return flat(resolve(case["target"])(*args, **kwargs), prefix)
    layer = build(case)
    call_args = [args] if len(args) > 1 and case["target"].startswith("nn.") else args
    layer(*call_args)  # build, then restore the original's checkpoint
    restore_upstream_checkpoint(layer, os.path.join(GOLDEN, case["checkpoint"]))
    outputs = {}
    training = case["call_kwargs"].get("training")
    if training:
        outputs.update(flat(layer(*call_args), f"{prefix}_inference"))
    outputs.update(flat(layer(*call_args, **case["call_kwargs"]), prefix))
    if training:
        outputs.update(flat(layer(*call_args, **case["call_kwargs"]), f"{prefix}_again"))
    return outputs


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_nn_matches_the_original(case_id):
    case = CASES[case_id]
    ours = run_ours(case)
    if case["target"].startswith("decoders."):  # ours may return more (e.g. f0_midi)
        assert set(case["outputs"]) <= set(ours)
    else:
        assert sorted(ours) == case["outputs"]
    for key in case["outputs"]:
        actual, expected = ours[key], ARRAYS[key]
        assert actual.shape == expected.shape, key
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-5 * scale, err_msg=key)


def test_the_golden_cases_cover_every_shared_layer_and_variant():
    targets = {case["target"] for case in CASES.values()}
    assert {"nn.Fc", "nn.FcStack", "nn.FcStackOut", "nn.Rnn", "nn.RnnFc", "nn.RnnSandwich",
            "nn.Normalize", "nn.ConditionalNorm", "nn.DilatedConvStack", "nn.split_to_dict",
            "nn.normalize_op"} <= targets
    stacks = [case["init"] for case in CASES.values() if case["target"] == "nn.DilatedConvStack"]
    assert {s.get("norm_type") for s in stacks} == {None, "layer", "instance", "group"}
    assert {s.get("resample_type") for s in stacks} == {None, "downsample", "upsample"}
    assert any(s.get("shift_only") for s in stacks) and any(s.get("spectral_norm") for s in stacks)
    assert any(s.get("resample_after_convolve") is False for s in stacks)
    assert MANIFEST["header"]["ddsp_version"] == "3.7.0"
    # Models' layers built on the stack: their original checkpoints map onto ours too.
    assert "decoders.DilatedConvDecoder" in targets
    nets = [case["init"].get("net") for case in CASES.values() if case["target"].startswith("decoders.")]
    assert any(net and net["target"] == "nn.DilatedConvStack" for net in nets)


def test_spectral_norm_training_calls_rewrite_the_kernels_as_the_original():
    # Guards the golden case itself: the training call changed the output (kernels divided
    # by their spectral norm), so matching it checks the power iteration, not a no-op.
    out = ARRAYS["dcs_spectral_norm/out"]
    assert np.abs(out - ARRAYS["dcs_spectral_norm/out_inference"]).max() > 0.1
    assert np.abs(out - ARRAYS["dcs_spectral_norm/out_again"]).max() > 0.01
