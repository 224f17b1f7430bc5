"""Export: the SavedModel (reloaded in a fresh process) and the TFLite control predictor
give the Keras model's controls; streaming 250 frames block by block gives the controls
and (noise off) the audio of the whole-clip call; metadata and reverb IR."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core
from ddsp_models.audio_io import read_wav
from ddsp_models.training import chunked_render, export, run_folders
from inference_fixtures import make_ae_run, tone_statistics

N = 250  # frames of the test clip (one training clip of the tiny model)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run_dir = make_ae_run(root / "ae", statistics=tone_statistics(60.0))
    paths = export.export_run(run_dir, str(root / "out"), block_frames=1, ir_rates=(44100,))
    run = run_folders.load_run(run_dir)
    rng = np.random.default_rng(1)
    # A gliding pitch and a swelling loudness, so every frame's controls differ.
    f0 = (220.0 * 2 ** (np.linspace(0, 7, N) / 12)).astype(np.float32)[None]
    loudness = (-50.0 + 30.0 * np.sin(np.linspace(0, 3, N)) + rng.normal(0, 1, N)).astype(np.float32)[None]
    outputs = run.model({"f0_hz": f0, "loudness_db": loudness,
                         "audio": np.zeros([1, 16000], np.float32)}, training=False)
    keras_controls = {
        "amplitudes": np.asarray(outputs["harmonic/controls/amplitudes"]),
        "harmonic_distribution": np.asarray(outputs["harmonic/controls/harmonic_distribution"]),
        "noise_magnitudes": np.asarray(outputs["filtered_noise/controls/magnitudes"]),
    }
    return {"paths": paths, "run": run, "f0": f0, "loudness": loudness, "keras": keras_controls,
            "outputs": outputs, "root": root}


def assert_controls_match(got: dict, want: dict, atol: float):
    for key, value in want.items():
        np.testing.assert_allclose(np.asarray(got[key]).reshape(value.shape), value, atol=atol,
                                   rtol=1e-4, err_msg=key)


def test_saved_model_in_a_fresh_process_gives_the_keras_controls(exported, tmp_path):
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "d = np.load(sys.argv[2])\n"
        "f = m.signatures['predict_controls']\n"
        "o = f(f0_hz=tf.constant(d['f0']), loudness_db=tf.constant(d['ld']),"
        " state=tf.zeros([1, int(d['state'])]))\n"
        "a = m.signatures['controls_to_audio'](f0_hz=tf.constant(d['f0']),"
        " loudness_db=tf.constant(d['ld']))\n"
        "np.savez(sys.argv[3], audio=a['audio'].numpy(), harmonic=a['harmonic'].numpy(),"
        " **{k: v.numpy() for k, v in o.items()})\n")
    np.savez(tmp_path / "in.npz", f0=exported["f0"], ld=exported["loudness"],
             state=export.InferenceModule(exported["run"]).state_size)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, "-c", script, exported["paths"]["saved_model"],
                    str(tmp_path / "in.npz"), str(tmp_path / "out.npz")], check=True, env=env,
                   timeout=300)
    got = dict(np.load(tmp_path / "out.npz"))
    assert_controls_match(got, exported["keras"], atol=1e-5)
    assert got["audio"].shape == (1, N * 64) and np.all(np.isfinite(got["audio"]))
    # The whole-clip harmonic sound of the SavedModel is that of the in-process module.
    module = export.InferenceModule(exported["run"])
    local = module.controls_to_audio(exported["f0"], exported["loudness"])
    np.testing.assert_allclose(got["harmonic"], np.asarray(local["harmonic"]), atol=1e-4)


def tflite_runner(path):
    interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    return runner


def test_tflite_streams_the_keras_controls_frame_by_frame(exported):
    paths = exported["paths"]["tflite"]
    predict = tflite_runner(paths["predict_controls"])
    module = export.InferenceModule(exported["run"])
    state = np.zeros([1, module.state_size], np.float32)
    frames = {k: [] for k in exported["keras"]}
    for i in range(N):
        out = predict(f0_hz=exported["f0"][:, i:i + 1], loudness_db=exported["loudness"][:, i:i + 1],
                      state=state)
        state = out["state"]
        for key in frames:
            frames[key].append(out[key].reshape(1, 1, -1))
    streamed = {k: np.concatenate(v, axis=1) for k, v in frames.items()}
    assert_controls_match(streamed, exported["keras"], atol=1e-5)
    # The metadata travels inside every .tflite file.
    with open(exported["paths"]["metadata"]) as f:
        metadata = json.load(f)
    for path in paths.values():
        assert export.read_attached_metadata(path) == metadata


def test_streaming_blocks_give_the_whole_clip_audio_with_noise_off(exported):
    module = export.InferenceModule(exported["run"])
    synth = tflite_runner(exported["paths"]["tflite"]["synthesize"])
    whole = module.controls(exported["f0"], exported["loudness"])
    f0 = np.asarray(whole["f0_hz"])
    amps = np.asarray(whole["harmonic_amplitudes"])
    mags = np.asarray(whole["noise_magnitudes"])
    # Whole clip in one call (last frame held).
    reference, _, _, _ = module.synthesize(np.concatenate([f0, f0[:, -1:]], 1),
                                           np.concatenate([amps, amps[:, -1:]], 1), None,
                                           np.zeros([1, 1], np.float32))
    # One frame per call, the phase carried; each call sees the next frame (one frame late).
    phase = np.zeros([1, 1], np.float32)
    blocks = []
    zeros = np.zeros([1, 1, mags.shape[-1]], np.float32)
    for i in range(N):
        nxt = min(i + 1, N - 1)
        out = synth(f0_hz=np.concatenate([f0[:, i:i + 1], f0[:, nxt:nxt + 1]], 1),
                    harmonic_amplitudes=np.concatenate([amps[:, i:i + 1], amps[:, nxt:nxt + 1]], 1),
                    noise_magnitudes=zeros, noise=np.zeros([1, 64], np.float32), phase=phase)
        phase = out["phase"]
        blocks.append(out["audio"])
    streamed = np.concatenate(blocks, axis=1)
    reference = np.asarray(reference)
    assert np.max(np.abs(reference)) > 0.05
    np.testing.assert_allclose(streamed, reference, atol=2e-4)
    # With a steady f0 the block synthesizer is the Keras model's harmonic synthesis with the
    # accurate phase (use_angular_cumsum=True; the synth's default float32 phase, the original
    # DDSP's, drifts from it over a second).
    steady = np.full([1, N], 330.0, np.float32)
    outputs = exported["run"].model({"f0_hz": steady, "loudness_db": exported["loudness"],
                                     "audio": np.zeros([1, 16000], np.float32)}, training=False)
    accurate = core.harmonic_synthesis(outputs["harmonic/controls/f0_hz"], outputs["harmonic/controls/amplitudes"],
                                       harmonic_distribution=outputs["harmonic/controls/harmonic_distribution"],
                                       n_samples=16000, use_angular_cumsum=True)
    mine = module.controls_to_audio(steady, exported["loudness"])
    np.testing.assert_allclose(np.asarray(mine["harmonic"]), accurate.numpy(), atol=2e-4)


def test_metadata_reverb_ir_and_audio_signature(exported):
    with open(exported["paths"]["metadata"]) as f:
        metadata = json.load(f)
    stats = exported["run"].statistics
    assert metadata["mean_min_pitch_note"] == pytest.approx(stats["mean_min_pitch_note"])
    assert metadata["mean_max_pitch_note_hz"] == pytest.approx(
        440.0 * 2 ** ((stats["mean_max_pitch_note"] - 69) / 12), rel=1e-5)
    assert metadata["mean_min_power_note"] == pytest.approx(stats["mean_min_power_note"])
    assert (metadata["frame_rate"], metadata["sample_rate"], metadata["num_harmonics"]) == (250, 16000, 60)
    ir, rate = read_wav(exported["paths"]["reverb_ir"][0])
    model_ir = chunked_render.reverb_impulse_response(
        chunked_render.synth_processors(exported["run"].model)[2])
    assert rate == 16000
    np.testing.assert_allclose(ir, model_ir, atol=1e-7)
    # The feature extractor of the streaming split: one 1024-sample frame.
    extract = tflite_runner(exported["paths"]["tflite"]["extract_features"])
    frame = (0.4 * np.sin(2 * np.pi * 330 * np.arange(1024) / 16000)).astype(np.float32)[None]
    features = extract(audio=frame)
    assert abs(12 * np.log2(float(features["f0_hz"].ravel()[0]) / 330.0)) < 0.2
    assert float(features["f0_confidence"].ravel()[0]) > 0.8
    assert float(features["power_db"].ravel()[0]) == pytest.approx(10 * np.log10(0.08), abs=0.1)
    loaded = tf.saved_model.load(exported["paths"]["saved_model"])
    t = np.arange(12000) / 16000
    audio = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)[None]
    out = loaded.signatures["audio_to_audio"](audio=tf.constant(audio))
    assert out["audio"].shape == (1, 12000)
    f0 = out["f0_hz"].numpy()[0, 10:-10]
    assert np.median(np.abs(12 * np.log2(f0 / 330.0))) < 0.2


def test_a_decoder_with_a_latent_takes_z_as_an_input(tmp_path):
    """ae.gin's decoder reads z from an MFCC encoder: the exported functions take z."""
    import keras

    from inference_fixtures import write_run
    from model_fixtures import make_model, shrink_bindings

    keras.utils.set_random_seed(0)
    model = make_model("models/ae.gin", shrink_bindings(seconds=1.0, width=16))
    run = run_folders.load_run(write_run(tmp_path / "ae_z", model))
    module = export.InferenceModule(run)
    assert module.z_dims == 4
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
    f0 = np.full([1, N], 220.0, np.float32)
    loudness = np.linspace(-60, -20, N, dtype=np.float32)[None]
    outputs = run.model({"audio": audio, "f0_hz": f0, "loudness_db": loudness}, training=False)
    z = np.asarray(outputs["z"])
    assert z.shape == (1, N, 4)
    got = module.controls(f0, loudness, z=z)
    np.testing.assert_allclose(np.asarray(got["amplitudes"]),
                               np.asarray(outputs["harmonic/controls/amplitudes"]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["harmonic_distribution"]),
                               np.asarray(outputs["harmonic/controls/harmonic_distribution"]),
                               atol=1e-5)
    with pytest.raises(ValueError, match="latent z"):
        module.controls(f0, loudness)
