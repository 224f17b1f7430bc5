"""The original DDSP's inference classes under its names: AutoencoderInference and the
DDSP-VST modules, on a model folder the original trained (tests/data/golden/upstream_models)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import compat
from ddsp_models.training import inference

FOLDER = os.path.join(os.path.dirname(__file__), "data", "golden", "upstream_models",
                      "solo_instrument")


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(os.path.join(FOLDER, "golden.npz")))


def _clip(golden, n_frames, n_samples):
    return {"f0_hz": golden["input/f0_hz"][:1, :n_frames],
            "loudness_db": golden["input/loudness_db"][:1, :n_frames],
            "audio": golden["input/audio"][:1, :n_samples]}


def test_autoencoder_inference_rebuilds_for_a_new_length(golden, tmp_path):
    model = inference.AutoencoderInference(FOLDER, length_seconds=0.5, verbose=False)
    assert (model.n_frames, model.n_samples, model.hop_size) == (125, 8000, 64)
    names = [p.name for p in model.processor_group.processors]
    assert names == ["harmonic", "filtered_noise", "add"]
    features = {k: golden[f"features/{k}"][:1, :125] for k in ("f0_scaled", "ld_scaled")}
    decoded = model.decoder(features)  # the original's weights: the original's controls
    np.testing.assert_allclose(decoded["amps"].numpy(), golden["decoder/amps"][:1, :125], atol=2e-6)
    clip = _clip(golden, 125, 8000)
    outputs = model(clip)
    assert outputs["audio_synth"].shape == (1, 8000)
    saved = tf.saved_model.load(model.save_model(tmp_path / "saved"))
    served = saved.signatures["serving_default"](**{k: tf.constant(v) for k, v in clip.items()})
    np.testing.assert_allclose(served["amps"].numpy(), outputs["amps"].numpy(), atol=1e-6)


def test_autoencoder_inference_of_a_converted_run_keeps_the_reverb(golden, tmp_path):
    compat.convert(FOLDER, tmp_path / "run")
    model = inference.AutoencoderInference(str(tmp_path / "run" / "ckpt-3"), length_seconds=1,
                                           remove_reverb=False, verbose=False)
    assert [p.name for p in model.processor_group.processors][-1] == "reverb"
    assert model(_clip(golden, 250, 16000))["audio_synth"].shape == (1, 16000)
    features = {k: golden[f"features/{k}"] for k in ("f0_scaled", "ld_scaled")}
    np.testing.assert_allclose(model.decoder(features)["harmonic_distribution"].numpy(),
                               golden["decoder/harmonic_distribution"], atol=2e-6)


@pytest.fixture(scope="module")
def vst():
    return {"features": inference.VSTExtractFeatures(FOLDER),
            "controls": inference.VSTPredictControls(FOLDER),
            "stateless": inference.VSTStatelessPredictControls(FOLDER),
            "harmonic": inference.VSTSynthesizeHarmonic(FOLDER)}


def test_vst_features_of_a_sine_frame(vst):
    t = np.arange(1024) / 16000.0
    frame = tf.constant(0.5 * np.sin(2 * np.pi * 440.0 * t), tf.float32)
    f0_hz, f0_scaled, pw_db, pw_scaled = vst["features"].call(frame)
    assert float(f0_hz[0]) == pytest.approx(440.0, rel=0.01)
    assert float(pw_db[0]) == pytest.approx(10 * np.log10(0.125), abs=0.05)  # mean square 1/8
    midi = 69.0 + 12.0 * np.log2(float(f0_hz[0]) / 440.0)
    assert float(f0_scaled[0]) == pytest.approx(midi / 127.0, abs=1e-5)
    assert float(pw_scaled[0]) == pytest.approx(float(pw_db[0]) / 80 + 1, abs=1e-6)


def test_vst_controls_carry_the_gru_state_like_a_whole_clip(vst, tmp_path):
    module = vst["stateless"]
    f0 = tf.constant([0.5, 0.52])
    pw = tf.constant([0.7, 0.75])
    amps0, hd0, noise0, state = module.call(f0[:1], pw[:1], tf.zeros([module.state_size]))
    stateful = vst["controls"].call(f0[:1], pw[:1])
    np.testing.assert_allclose(amps0.numpy(), stateful[0].numpy(), atol=1e-6)
    amps1, hd1, noise1, state1 = module.call(f0[1:], pw[1:], state)
    from ddsp_models.training.preprocessing import inv_scale_db, inv_scale_f0_hz

    clip = module.module.controls(inv_scale_f0_hz(f0[None]), inv_scale_db(pw[None]))
    np.testing.assert_allclose(amps1.numpy(), clip["amplitudes"][0, 1].numpy(), atol=1e-5)
    np.testing.assert_allclose(hd1.numpy(), clip["harmonic_distribution"][0, 1].numpy(), atol=1e-5)
    assert hd1.shape == (20,) and noise0.shape == (17,)
    assert float(tf.reduce_sum(hd1)) == pytest.approx(1.0, abs=1e-4)
    saved = tf.saved_model.load(module.save_model(tmp_path / "vst"))
    served = saved.signatures["call"](f0_scaled=f0[1:], pw_scaled=pw[1:], state=state)
    np.testing.assert_allclose(sorted(v.numpy().sum() for v in served.values()),
                               sorted(v.numpy().sum() for v in (amps1, hd1, noise1, state1)),
                               atol=1e-4)


def test_vst_synthesis_continues_the_phase(vst):
    module = vst["harmonic"]
    hd = tf.one_hot(0, module.n_harmonics)
    amps, f0 = tf.constant([0.5]), tf.constant([440.0])
    audio, phase = module.call(amps, amps, hd, hd, f0, f0, tf.zeros([1]))
    assert audio.shape == (64,)
    assert float(phase) == pytest.approx((2 * np.pi * 440 * 64 / 16000) % (2 * np.pi), abs=1e-3)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1, 65) / 16000)
    offset = 0.5 * np.sin(2 * np.pi * 440 * np.arange(0, 64) / 16000)
    best = min(np.abs(audio.numpy() - expected).max(), np.abs(audio.numpy() - offset).max())
    assert best < 1e-3
    noise = inference.VSTSynthesizeNoise(FOLDER)
    assert np.abs(noise.call(tf.zeros([17])).numpy()).max() == 0.0
    assert np.abs(noise.call(tf.fill([17], 0.5)).numpy()).max() > 0.01
