"""Specification of the preprocessors: f0 / loudness / power scaling to [0, 1] and back,
resampling to the model's time steps, loudness and power computed from audio, and errors for
missing features."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.training import preprocessing

SR, FRAME_RATE = 16000, 250


def sine(freq_hz=440.0, seconds=1.0, amplitude=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_scaling_of_pitch_and_decibels():
    f0_scaled = preprocessing.scale_f0_hz([440.0, 880.0, 0.0]).numpy()
    np.testing.assert_allclose(f0_scaled, [69 / 127, 81 / 127, 0.0], atol=1e-6)
    np.testing.assert_allclose(preprocessing.scale_db([-80.0, -40.0, 0.0]), [0.0, 0.5, 1.0], atol=1e-6)
    assert core.DB_RANGE == 80.0


def test_inverse_scaling_round_trips():
    f0_hz = np.array([55.0, 261.63, 440.0, 1760.0], np.float32)
    db = np.array([-80.0, -33.3, -6.0, 0.0], np.float32)
    np.testing.assert_allclose(preprocessing.inv_scale_f0_hz(preprocessing.scale_f0_hz(f0_hz)), f0_hz, rtol=1e-5)
    np.testing.assert_allclose(preprocessing.inv_scale_db(preprocessing.scale_db(db)), db, atol=1e-4)
    inverted = preprocessing.invert_scaling({"f0_scaled": preprocessing.scale_f0_hz(f0_hz),
                                             "ld_scaled": preprocessing.scale_db(db), "z": 1.0})
    np.testing.assert_allclose(inverted["f0_hz"], f0_hz, rtol=1e-5)
    np.testing.assert_allclose(inverted["loudness_db"], db, atol=1e-4)
    assert inverted["z"] == 1.0
    f0_back, db_back = preprocessing.F0LoudnessPreprocessor.invert_scaling(69 / 127, 0.5)
    assert float(f0_back) == pytest.approx(440.0, rel=1e-5) and float(db_back) == pytest.approx(-40.0)


def test_f0_loudness_preprocessor_values_and_shapes():
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=250)
    features = {"f0_hz": np.full([2, 250], 440.0, np.float32),
                "loudness_db": np.tile(np.array([[-80.0], [0.0]], np.float32), [1, 250])}
    outputs = preprocessor(features)
    assert sorted(outputs) == ["f0_hz", "f0_scaled", "ld_scaled", "loudness_db"]
    for value in outputs.values():
        assert value.shape == (2, 250, 1)
    np.testing.assert_allclose(outputs["f0_scaled"], 69 / 127, atol=1e-6)
    np.testing.assert_allclose(outputs["ld_scaled"][0], 0.0, atol=1e-6)  # -80 dB
    np.testing.assert_allclose(outputs["ld_scaled"][1], 1.0, atol=1e-6)  # 0 dB
    np.testing.assert_allclose(outputs["loudness_db"][:, :, 0], features["loudness_db"])


def test_features_are_resampled_linearly_to_time_steps():
    ramp = np.linspace(100.0, 200.0, 250, dtype=np.float32)[np.newaxis]  # [1, 250]
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=1000, compute_loudness=False)
    outputs = preprocessor(np.full([1, 250], -20.0, np.float32), ramp)  # positional: (loudness, f0)
    f0 = outputs["f0_hz"].numpy()[0, :, 0]
    assert f0.shape == (1000,)
    # core.resample: step t reads frame t * 250 / 1000; the last frame holds (the original).
    np.testing.assert_allclose(f0, np.interp(np.arange(1000) / 4.0, np.arange(250), ramp[0]), atol=1e-3)
    np.testing.assert_allclose(outputs["loudness_db"], -20.0)


def test_loudness_is_computed_from_audio_when_asked_or_missing():
    audio = np.stack([sine(amplitude=0.5), sine(amplitude=0.05)])
    # 'center' framing gives 251 frames, resampled to the 250 time steps (as the original).
    expected = spectral_ops.compute_loudness(audio, sample_rate=SR, frame_rate=FRAME_RATE)
    expected = core.resample(expected, 250).numpy()
    f0 = np.full([2, 250], 220.0, np.float32)
    missing = preprocessing.F0LoudnessPreprocessor(time_steps=250, compute_loudness=False)(
        {"f0_hz": f0, "audio": audio})
    np.testing.assert_allclose(missing["loudness_db"][:, :, 0], expected, atol=1e-4)
    # 10x quieter is 20 dB lower, a quarter of the 80 dB scaling range.
    ld_drop = missing["ld_scaled"][0, 125, 0] - missing["ld_scaled"][1, 125, 0]
    assert float(ld_drop) == pytest.approx(20.0 / 80.0, abs=1e-3)
    forced = preprocessing.F0LoudnessPreprocessor(time_steps=250)(  # compute_loudness=True by default
        {"f0_hz": f0, "audio": audio, "loudness_db": np.zeros([2, 250], np.float32)})
    np.testing.assert_allclose(forced["loudness_db"], missing["loudness_db"])


def test_missing_features_raise_errors_naming_them():
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=250)
    with pytest.raises(ValueError, match=r"'f0_hz' is missing.*\['audio', 'loudness_db'\]"):
        preprocessor({"loudness_db": np.zeros([1, 250], np.float32), "audio": np.zeros([1, 16000], np.float32)})
    with pytest.raises(ValueError, match=r"loudness_db.*'audio' is missing.*\['f0_hz'\]"):
        preprocessor({"f0_hz": np.zeros([1, 250], np.float32)})
    with pytest.raises(ValueError, match="time_steps"):
        preprocessing.F0LoudnessPreprocessor(time_steps=0)


def test_f0_power_preprocessor_scales_and_computes_power():
    audio = sine(amplitude=1.0)[np.newaxis]  # full-scale sine: -3 dB
    f0 = np.full([1, 250], 440.0, np.float32)
    computed = preprocessing.F0PowerPreprocessor(time_steps=500)({"f0_hz": f0, "audio": audio})
    assert sorted(computed) == ["f0_hz", "f0_scaled", "pw_db", "pw_scaled"]
    assert computed["pw_db"].shape == (1, 500, 1)
    assert float(computed["pw_db"][0, 250, 0]) == pytest.approx(-3.01, abs=0.05)
    np.testing.assert_allclose(computed["pw_scaled"], computed["pw_db"] / 80.0 + 1.0, atol=1e-6)
    given = preprocessing.F0PowerPreprocessor(time_steps=250)({"f0_hz": f0, "power_db": np.full([1, 250], -40.0)})
    np.testing.assert_allclose(given["pw_scaled"], 0.5, atol=1e-6)
    np.testing.assert_allclose(given["f0_scaled"], 69 / 127, atol=1e-6)
    with pytest.raises(ValueError, match="'audio' is missing"):
        preprocessing.F0PowerPreprocessor()({"f0_hz": f0})


def test_preprocessor_works_in_tf_function():
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=100, compute_loudness=True)

    @tf.function
    def run(f0_hz, audio):
        return preprocessor({"f0_hz": f0_hz, "audio": audio})

    outputs = run(tf.fill([1, 250], 440.0), tf.constant(sine()[np.newaxis]))
    assert outputs["ld_scaled"].shape == (1, 100, 1)
    eager = preprocessor({"f0_hz": np.full([1, 250], 440.0, np.float32), "audio": sine()[np.newaxis]})
    np.testing.assert_allclose(outputs["ld_scaled"], eager["ld_scaled"], atol=1e-5)


def test_online_f0_power_preprocessor_tracks_pitch_from_audio_alone():
    """Only audio in: CREPE (tiny) inside the layer finds the pitch, power comes from audio."""
    sample_rate, seconds, f0 = 16000, 0.5, 330.0
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    tone = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)
    audio = np.stack([tone, 0.5 * tone])
    layer = preprocessing.OnlineF0PowerPreprocessor(time_steps=125, frame_rate=250,
                                                    sample_rate=sample_rate, padding=None,
                                                    crepe_capacity="tiny")
    outputs = layer({"audio": audio})
    assert set(outputs) == {"f0_hz", "f0_confidence", "pw_db", "f0_scaled", "pw_scaled"}
    for value in outputs.values():
        assert value.shape == (2, 125, 1)
    # Away from the padded edges, the tracked pitch is the tone's, within 10 cents.
    f0_hz = outputs["f0_hz"].numpy()[:, 10:-10, 0]
    cents = 1200 * np.abs(np.log2(f0_hz / f0))
    assert np.median(cents) < 10.0
    assert outputs["f0_confidence"].numpy()[:, 10:-10].min() > 0.5
    # Half the amplitude is 6 dB less power; power matches spectral_ops on the same audio.
    pw_db = outputs["pw_db"].numpy()[:, 10:-10, 0]
    assert np.median(pw_db[0] - pw_db[1]) == pytest.approx(6.02, abs=0.3)
    expected = spectral_ops.compute_power(audio, sample_rate=sample_rate, frame_rate=250, frame_size=1024)
    np.testing.assert_allclose(outputs["pw_db"].numpy()[..., 0], core.resample(expected, 125).numpy(),
                               atol=1e-3)
    # The same inside tf.function; the pitch tracker's weights stay frozen.
    graph_outputs = tf.function(lambda x: layer({"audio": x}))(audio)
    np.testing.assert_allclose(graph_outputs["f0_hz"].numpy(), outputs["f0_hz"].numpy(), rtol=1e-4)
    assert not layer.trainable_weights


def test_online_preprocessor_in_the_originals_form_keeps_its_frame_counts():
    """models/vst/*.gin: padding='center', compute_f0=False, no CREPE. Power of the 16 kHz
    audio ('audio_16k' when given) with the original's centred framing: n / hop + 1 frames,
    frame i the mean square of the audio (zero padded by half a frame) around sample i * hop."""
    layer = preprocessing.OnlineF0PowerPreprocessor(frame_rate=50, frame_size=1024, padding="center",
                                                    compute_f0=False, crepe_saved_model_path=None)
    assert layer.crepe is None
    audio_16k = sine(220.0, seconds=0.5)
    f0 = np.full([1, 26], 220.0, np.float32)
    features = {"audio": np.zeros([1, 16000], np.float32), "audio_16k": audio_16k[None], "f0_hz": f0,
                "f0_confidence": np.ones_like(f0)}
    out = layer(features)
    assert out["pw_db"].shape == (1, 26, 1)  # 8000 / 320 + 1, not resampled
    padded = np.pad(audio_16k.astype(np.float64), 512)
    frame_10 = padded[10 * 320:10 * 320 + 1024]
    assert out["pw_db"].numpy()[0, 10, 0] == pytest.approx(10 * np.log10(np.mean(frame_10 ** 2)), abs=1e-3)
    np.testing.assert_array_equal(out["f0_hz"].numpy()[..., 0], f0)
    with pytest.raises(ValueError, match="'f0_hz' has 25 frames.*give 26"):
        layer(dict(features, f0_hz=f0[:, :25], f0_confidence=f0[:, :25]))


def test_online_preprocessor_original_arguments_are_checked():
    with pytest.raises(ValueError, match="crepe_saved_model_path"):
        preprocessing.OnlineF0PowerPreprocessor(crepe_saved_model_path="/models/crepe_saved_model")
    with pytest.raises(ValueError, match="compute_f0=True needs a CREPE"):
        preprocessing.OnlineF0PowerPreprocessor(crepe_saved_model_path=None)
    with pytest.raises(ValueError, match="viterbi"):
        preprocessing.OnlineF0PowerPreprocessor(viterbi=True)
    with pytest.raises(ValueError, match="padding"):
        preprocessing.OnlineF0PowerPreprocessor(padding="causal", compute_f0=False)
