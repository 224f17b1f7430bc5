"""Records the original DDSP 3.7.0's `training.nn` layers and functions, for
tests/test_golden_nn.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_nn.py [OUT_DIR]

For each case below it builds the original's layer, gives every variable seeded random
values, writes the layer as the original's trainer would checkpoint it
(``tf.train.Checkpoint(model=layer)``, one prefix per case under ``ckpt/``), then calls it on
fixed inputs and stores inputs and outputs in ``arrays.npz`` and the cases in
``manifest.json``. Cases with ``training`` (spectral normalisation) also store an inference
call before the training call (``out_inference``, the stored kernels) and a second training
call after it (``out_again``: one more power-iteration step on the rewritten kernels).
Functions (no variables) store only inputs and outputs.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ddsp  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ddsp.training import decoders, nn  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "golden", "upstream_nn")
SEED = 20261130

# (case id, target, constructor kwargs or None for a function, input shapes, ('kwarg', value)
#  pairs or {feature: shape} dicts, call kwargs). Inputs are seeded normal noise of those
#  shapes. A target without a module is in nn; a constructor kwarg {'target': ..., 'init':
#  ...} is built first (a decoder's `net`).
X3 = (2, 9, 3)
CASES = [
    ("fc", "Fc", {"ch": 5}, [X3], {}),
    ("fc_tanh", "Fc", {"ch": 5, "nonlinearity": "tanh"}, [X3], {}),
    ("fc_stack", "FcStack", {"ch": 6, "layers": 2}, [X3], {}),
    ("fc_stack_out", "FcStackOut", {"ch": 6, "layers": 2, "n_out": 4}, [X3], {}),
    ("rnn_gru", "Rnn", {"dims": 5, "rnn_type": "gru"}, [X3], {}),
    ("rnn_lstm_last", "Rnn", {"dims": 5, "rnn_type": "lstm", "return_sequences": False}, [X3], {}),
    ("rnn_gru_bidir", "Rnn", {"dims": 4, "rnn_type": "gru", "bidir": True}, [X3], {}),
    ("rnn_fc_defaults", "RnnFc", {"rnn_feat": 4, "out_feat": 3}, [X3], {}),
    ("rnn_fc_gru_seq", "RnnFc", {"rnn_feat": 4, "out_feat": 3, "rnn_type": "gru",
                                 "nonlinearity": "leaky_relu", "bidir": True, "n_rnn": 2}, [X3], {}),
    ("rnn_sandwich", "RnnSandwich", {"fc_stack_ch": 6, "fc_stack_layers": 1, "rnn_ch": 5,
                                     "rnn_type": "gru"}, [X3], {}),
    ("normalize_layer", "Normalize", {"norm_type": "layer"}, [(2, 9, 6)], {}),
    ("normalize_instance", "Normalize", {"norm_type": "instance"}, [(2, 9, 6)], {}),
    ("normalize_group", "Normalize", {"norm_type": "group"}, [(2, 9, 64)], {}),
    ("normalize_none", "Normalize", {"norm_type": None}, [(2, 9, 6)], {}),
    ("conditional_norm", "ConditionalNorm", {"norm_type": "instance"},
     [(2, 9, 1, 6), (2, 9, 1, 3)], {}),
    ("conditional_norm_shift", "ConditionalNorm", {"norm_type": "layer", "shift_only": True},
     [(2, 9, 1, 6), (2, 1, 1, 3)], {}),
    ("dcs_plain", "DilatedConvStack", {"ch": 8, "layers_per_stack": 2, "stacks": 2}, [X3], {}),
    ("dcs_layer_negative_dilation", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 3, "stacks": 1, "dilation": -2, "norm_type": "layer",
      "kernel_size": 5}, [X3], {}),
    ("dcs_instance_downsample", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 1, "stacks": 2, "norm_type": "instance",
      "resample_type": "downsample", "resample_stride": 2}, [(2, 12, 3)], {}),
    ("dcs_group_upsample_before", "DilatedConvStack",
     {"ch": 32, "layers_per_stack": 1, "stacks": 4, "norm_type": "group",
      "resample_type": "upsample", "resample_stride": 2, "stacks_per_resample": 2,
      "resample_after_convolve": False}, [(2, 5, 3)], {}),
    ("dcs_conditional", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 2, "stacks": 1, "norm_type": "layer", "conditional": True},
     [X3, (2, 9, 4)], {}),
    ("dcs_conditional_shift_global", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 2, "stacks": 1, "norm_type": "instance",
      "conditional": True, "shift_only": True}, [X3, (2, 4)], {}),
    ("dcs_conditional_downsample", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 1, "stacks": 2, "norm_type": "layer", "conditional": True,
      "resample_type": "downsample", "resample_stride": 3}, [X3, (2, 1, 4)], {}),
    ("dcs_spectral_norm", "DilatedConvStack",
     {"ch": 8, "layers_per_stack": 2, "stacks": 1, "norm_type": "layer", "spectral_norm": True},
     [X3], {"training": True}),
    ("decoder_dilated_conv", "decoders.DilatedConvDecoder",
     {"ch": 8, "layers_per_stack": 2, "stacks": 1, "norm_type": "layer", "conditioning_keys": None,
      "output_splits": [["amps", 1], ["harmonic_distribution", 4]]},
     [{"ld_scaled": (2, 9, 1), "f0_scaled": (2, 9, 1)}], {}),
    ("decoder_dilated_conv_z_upsample", "decoders.DilatedConvDecoder",
     {"ch": 8, "layers_per_stack": 1, "stacks": 2, "norm_type": "instance", "resample_stride": 2,
      "output_splits": [["amps", 1], ["noise_magnitudes", 3]]},
     [{"ld_scaled": (2, 3, 1), "f0_scaled": (2, 3, 1), "z": (2, 1, 2)}], {}),
    ("decoder_midi_to_harmonic_net", "decoders.MidiToHarmonicDecoder",
     {"net": {"target": "nn.DilatedConvStack",
              "init": {"ch": 8, "layers_per_stack": 2, "stacks": 1, "norm_type": "layer",
                       "conditional": True}},
      "output_splits": [["f0_midi", 1], ["amplitudes", 1], ["harmonic_distribution", 4]]},
     [(2, 9, 1), (2, 9, 1), (2, 9, 3)], {}),
    ("split_to_dict", "split_to_dict", None,
     [(2, 9, 6), ("tensor_splits", [["amps", 1], ["harmonic_distribution", 3], ["noise", 2]])], {}),
    ("normalize_op_group", "normalize_op", None, [(2, 9, 1, 64), ("norm_type", "group")], {}),
    ("normalize_op_instance", "normalize_op", None, [(2, 9, 1, 6), ("norm_type", "instance")], {}),
    ("normalize_op_layer", "normalize_op", None, [(2, 9, 1, 6), ("norm_type", "layer")], {}),
]


def resolve(target):
    module, name = target.split(".")
    return getattr({"nn": nn, "decoders": decoders}[module], name)


def flat_outputs(value, name):
    if isinstance(value, dict):
        return {k: v for key, child in value.items() for k, v in flat_outputs(child, f"{name}.{key}").items()}
    return {name: np.asarray(value.numpy(), np.float32)}


def record(out_dir):
    rng = np.random.default_rng(SEED)
    os.makedirs(os.path.join(out_dir, "ckpt"), exist_ok=True)
    arrays, manifest = {}, []
    for case_id, target, init, inputs, call_kwargs in CASES:
        args, kwargs, entry_inputs = [], dict(call_kwargs), []
        for i, spec in enumerate(inputs):
            if isinstance(spec, dict):  # a dict of features
                features = {}
                for name, shape in spec.items():
                    arrays[f"{case_id}/in{i}.{name}"] = rng.normal(size=shape).astype(np.float32)
                    features[name] = tf.constant(arrays[f"{case_id}/in{i}.{name}"])
                args.append(features)
                entry_inputs.append({"dict": {n: f"{case_id}/in{i}.{n}" for n in spec}})
                continue
            if isinstance(spec[0], str):  # a plain keyword argument
                kwargs[spec[0]] = spec[1]
                entry_inputs.append({"kwarg": spec[0], "value": spec[1]})
                continue
            key = f"{case_id}/in{i}"
            arrays[key] = rng.normal(size=spec).astype(np.float32)
            args.append(tf.constant(arrays[key]))
            entry_inputs.append({"array": key})
        target = target if "." in target else f"nn.{target}"
        entry = {"id": case_id, "target": target, "init": init, "inputs": entry_inputs,
                 "call_kwargs": call_kwargs}
        fn = resolve(target)
        if init is None:
            outputs = flat_outputs(fn(*args, **kwargs), f"{case_id}/out")
        else:
            layer = fn(**{k: resolve(v["target"])(**v["init"]) if isinstance(v, dict) else v
                          for k, v in init.items()})
            call_args = [args] if len(args) > 1 and target.startswith("nn.") else args
            layer(*call_args)  # builds the variables
            for variable in layer.weights:
                variable.assign(rng.normal(scale=0.4, size=variable.shape).astype(np.float32))
            prefix = tf.train.Checkpoint(model=layer).write(os.path.join(out_dir, "ckpt", case_id))
            entry["checkpoint"] = os.path.relpath(prefix, out_dir)
            outputs = {}
            if kwargs.get("training"):  # the stored weights, as an inference call sees them
                outputs.update(flat_outputs(layer(*call_args), f"{case_id}/out_inference"))
            outputs.update(flat_outputs(layer(*call_args, **kwargs), f"{case_id}/out"))
            if kwargs.get("training"):  # a second power-iteration step
                outputs.update(flat_outputs(layer(*call_args, **kwargs), f"{case_id}/out_again"))
        arrays.update(outputs)
        entry["outputs"] = sorted(outputs)
        manifest.append(entry)
        print(case_id, {k.split("/")[-1]: v.shape for k, v in outputs.items()})
    np.savez_compressed(os.path.join(out_dir, "arrays.npz"), **arrays)
    header = {"ddsp_version": ddsp.__version__, "tensorflow_version": tf.__version__,
              "recorded_by": "scripts/golden/record_upstream_nn.py", "seed": SEED}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"header": header, "cases": manifest}, f, indent=1)


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
