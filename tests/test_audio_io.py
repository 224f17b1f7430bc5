"""audio_io.write_wav: float audio -> 16-bit PCM WAV, folders created, clipping warned."""
import logging

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from conftest import tone
from ddsp_models.audio_io import read_wav, write_wav


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
