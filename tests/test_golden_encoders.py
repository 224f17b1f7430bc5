"""The original's ResnetSinusoidalEncoder (raw outputs) and InverseSynthesis' scaling of them
compute the original DDSP 3.7.0's numbers.

scripts/golden/record_upstream_encoders.py built the original's encoder (its `nn.ResNet`
'small'), gave it seeded weights, wrote its checkpoint (tests/data/golden/upstream_encoders,
the data file xz-compressed) and recorded its raw outputs and the original InverseSynthesis'
sin_freqs, sin_amps, noise_magnitudes and sinusoidal signal for fixed audio. Here ours is built from
the same (original) arguments, the checkpoint restored through
`compat.checkpoints.restore_upstream_checkpoint` (every variable mapped, none left over), and
its outputs must equal the original's to float32 round-off.
"""
import functools
import json
import lzma
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import spectral_ops
from ddsp_models.compat.checkpoints import restore_upstream_checkpoint
from ddsp_models.training import encoders, models, nn

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden", "upstream_encoders")
with open(os.path.join(GOLDEN, "manifest.json")) as f:
    MANIFEST = json.load(f)
HEADER, CASES = MANIFEST["header"], {case["id"]: case for case in MANIFEST["cases"]}
with np.load(os.path.join(GOLDEN, "arrays.npz")) as data:
    ARRAYS = {key: data[key] for key in data.files}
CONTROL_KEYS = ("sin_amps", "sin_freqs", "noise_magnitudes")


def checkpoint(case_id, tmp_path):
    """The recorded checkpoint prefix, its data file decompressed into tmp_path."""
    shutil.copy(os.path.join(GOLDEN, f"{case_id}.index"), tmp_path / f"{case_id}.index")
    data = f"{case_id}.data-00000-of-00001"
    with lzma.open(os.path.join(GOLDEN, data + ".xz")) as src, open(tmp_path / data, "wb") as dst:
        dst.write(src.read())
    return str(tmp_path / case_id)


def restored_encoder(case_id, tmp_path):
    case = CASES[case_id]
    kwargs = {"output_splits": tuple(tuple(s) for s in case["init"]["output_splits"]), "size": case["init"]["size"]}
    if case["spectral_fn"] is not None:
        kwargs["spectral_fn"] = functools.partial(spectral_ops.compute_logmel, **case["spectral_fn"])
    encoder = encoders.ResnetSinusoidalEncoder(**kwargs)
    encoder({"audio": tf.constant(ARRAYS["audio"])})  # build, then restore
    assert restore_upstream_checkpoint(encoder, checkpoint(case_id, tmp_path)) == case["n_variables"]
    return encoder


def assert_close(actual, key):
    expected = ARRAYS[key]
    assert actual.shape == expected.shape, key
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-5 * scale, err_msg=key)
    return float(np.abs(actual - expected).max())


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_raw_outputs_and_the_models_scaling_match_the_original(case_id, tmp_path):
    encoder = restored_encoder(case_id, tmp_path)
    assert isinstance(encoder.resnet, nn.ResNet) and not encoder.scale_outputs
    audio = tf.constant(ARRAYS["audio"])
    raw = encoder({"audio": audio})
    # Raw network outputs at the log-mel frame rate (4096 samples, hop 512: 8 frames).
    assert list(raw) == [key for key, _ in CASES[case_id]["init"]["output_splits"]]
    for key, value in raw.items():
        assert_close(value.numpy(), f"{case_id}/raw/{key}")
    model = models.InverseSynthesis(sinusoidal_encoder=encoder, reverb=False, n_samples=HEADER["n_samples"],
                                    sample_rate=HEADER["sample_rate"])
    outputs = model.forward(audio)
    for key in CONTROL_KEYS:
        assert_close(outputs[key].numpy(), f"{case_id}/model/{key}")
    # The Sinusoidal synth's signal (sin_audio less its random noise). On the original's
    # controls it matches to round-off; from our controls, whose frequencies differ by
    # ~6e-6 relative (float32 through the ResNet), the phases drift over 4096 samples.
    expected = ARRAYS[f"{case_id}/model/sinusoidal_signal"]
    peak = np.abs(expected).max()
    for source, atol in (("golden", 1e-6), ("ours", 1e-3)):
        controls = ({k: tf.constant(ARRAYS[f"{case_id}/model/{k}"]) for k in CONTROL_KEYS} if source == "golden"
                    else {k: outputs[k] for k in CONTROL_KEYS})
        signal = model.synthesize_outputs(**controls)["sinusoidal/signal"]
        np.testing.assert_allclose(signal.numpy(), expected, rtol=0, atol=atol * peak, err_msg=source)

def test_the_golden_outputs_depend_on_the_weights_and_the_audio():
    # Guards the recording: non-degenerate outputs that differ between the two clips and
    # between the two log-mel front ends, so matching them checks the mapping and the maths.
    default, icml = (ARRAYS[f"{case}/raw/frequencies"] for case in sorted(CASES))
    assert np.abs(default[0] - default[1]).max() > 1.0 and np.abs(default - icml).max() > 1.0
    assert np.abs(np.diff(default, axis=1)).max() > 0.1  # frames differ
    assert all(case["n_values"] > 5_000_000 for case in CASES.values())  # the original's 'small' ResNet
    assert HEADER["ddsp_version"] == "3.7.0"
