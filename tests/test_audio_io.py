"""audio_io: the one writer (float -> 16-bit PCM, clipping warned), reader and resampler."""
import logging

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from conftest import tone
from ddsp_models.audio_io import load_audio, read_wav, resample, resample_tf, rms_db, write_wav


def test_writes_16_bit_pcm_that_reads_back_within_one_step(tmp_path):
    audio = tone(440.0, seconds=0.25, amplitude=0.8)
    path = write_wav(tmp_path / "a" / "b" / "tone.wav", audio, 16000)
    assert path == str(tmp_path / "a" / "b" / "tone.wav")
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 4000, "PCM_16")
    back, rate = read_wav(path)
    assert rate == 16000 and back.dtype == np.float32
    np.testing.assert_allclose(back, audio, atol=1.0 / 32768 + 1e-6)


def test_tensors_and_stereo_are_accepted(tmp_path):
    stereo = np.stack([tone(300.0, 0.1), tone(600.0, 0.1)], axis=1)
    write_wav(tmp_path / "stereo.wav", tf.constant(stereo), 22050)
    back, rate = read_wav(tmp_path / "stereo.wav")
    assert rate == 22050 and back.shape == (1600, 2)
    np.testing.assert_allclose(back, stereo, atol=1.0 / 32768 + 1e-6)


def test_out_of_range_audio_is_clipped_with_a_warning(tmp_path, caplog):
    audio = np.array([0.0, 1.5, -2.0, 0.5], np.float32)
    with caplog.at_level(logging.WARNING, logger="ddsp_models.audio_io"):
        write_wav(tmp_path / "loud.wav", audio, 16000)
    assert "clipping 2 samples" in caplog.text
    back, _ = read_wav(tmp_path / "loud.wav")
    np.testing.assert_allclose(back, [0.0, 32767 / 32768, -1.0, 0.5], atol=1e-4)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="audio"):
        write_wav(tmp_path / "x.wav", np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="audio"):
        write_wav(tmp_path / "x.wav", np.zeros([2, 3, 4]), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        write_wav(tmp_path / "x.wav", np.zeros(10), 0)


# ------------------------------------------------------------------ reading and resampling
def dominant_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sample_rate / len(audio))


def test_resample_keeps_a_sines_pitch_and_level_and_the_reader_uses_it(tmp_path):
    x = tone(1000.0, seconds=1.0, amplitude=0.5, sample_rate=44100)
    y = resample(x, 44100, 16000)
    assert y.shape == (16000,) and y.dtype == np.float32
    assert dominant_hz(y, 16000) == pytest.approx(1000.0, abs=1.0)
    assert rms_db(y[1000:-1000]) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.02)
    # Leading axes are separate signals; float64 stays float64; equal rates change nothing.
    both = resample(np.stack([x, 0.25 * x]), 44100, 16000)
    assert both.shape == (2, 16000)
    np.testing.assert_array_equal(both[0], y)
    np.testing.assert_allclose(both[1], resample(0.25 * x, 44100, 16000), atol=1e-7)
    assert resample(x.astype(np.float64), 44100, 16000).dtype == np.float64
    assert resample(x, 16000, 16000) is x
    # The one reader resamples with the same engine, block by block: the same samples.
    write_wav(tmp_path / "44k.wav", x, 44100, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "44k.wav", 16000), y)
    with pytest.raises(ValueError, match="target_rate"):
        resample(x, 44100, 0)


def test_resample_tf_is_band_limited_differentiable_and_agrees_with_resample():
    x = tone(440.0, seconds=0.5, amplitude=0.5, sample_rate=22050)
    audio = tf.constant(x[None])
    with tf.GradientTape() as tape:
        tape.watch(audio)
        y = resample_tf(audio, 22050, 16000)
        energy = tf.reduce_sum(tf.square(y))
    assert y.shape == (1, 8000)
    assert dominant_hz(y.numpy()[0], 16000) == pytest.approx(440.0, abs=2.0)
    # Away from the edges (the FFT treats the clip as periodic) both resamplers agree.
    np.testing.assert_allclose(y.numpy()[0, 800:-800], resample(x, 22050, 16000)[800:-800], atol=2e-3)
    gradient = tape.gradient(energy, audio).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
    assert resample_tf(audio, 16000, 16000) is audio


def test_rms_db_is_the_level_in_dbfs():
    assert rms_db(tone(440.0, 1.0, amplitude=1.0)) == pytest.approx(-3.01, abs=0.01)
    assert rms_db(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0, abs=1e-6)
    assert rms_db(np.zeros(10, np.float32)) == pytest.approx(-200.0)
