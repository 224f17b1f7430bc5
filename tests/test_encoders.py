"""Specification of the encoders: MFCC frame counts per z_time_steps, z shapes at the f0's time
steps, z following the audio, global z constant over time, gradients and checkpoints."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import encoders, spectral_ops

SR = 16000
RNG = np.random.default_rng(5)


def features(seconds=1.0, time_steps=250, batch=2, freqs=(220.0, 660.0)):
    """Two different tones (and their f0_scaled placeholder) as encoder input."""
    t = np.arange(int(seconds * SR)) / SR
    audio = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in freqs[:batch]]).astype(np.float32)
    return {"audio": audio, "f0_scaled": np.zeros([batch, time_steps, 1], np.float32)}


@pytest.mark.parametrize("z_time_steps", sorted(encoders.Z_AUDIO_SPEC) + [31, 100])
def test_mfcc_frames_per_four_second_example_match_z_time_steps(z_time_steps):
    fft_size, overlap = encoders.mfcc_frame_spec(z_time_steps, 64000)
    mfccs = spectral_ops.compute_mfcc(np.zeros([1, 64000], np.float32), fft_size=fft_size, overlap=overlap,
                                      mfcc_bins=30, pad_end=True)
    assert mfccs.shape[1] == z_time_steps


def test_time_distributed_encoder_z_shape_and_dependence_on_audio():
    encoder = encoders.MfccTimeDistributedRnnEncoder(rnn_channels=16, z_dims=4, z_time_steps=31)
    inputs = features()
    outputs = encoder(inputs)
    z = outputs["z"].numpy()
    assert z.shape == (2, 250, 4)  # resampled from 31 MFCC frames to the f0's 250 steps
    assert set(outputs) == {"audio", "f0_scaled", "z"}  # the features, updated with z
    # Different audio gives a different z; the same audio the same z.
    assert np.abs(z[0] - z[1]).mean() > 1e-2
    np.testing.assert_allclose(encoder(inputs)["z"], z)
    swapped = {"audio": inputs["audio"][::-1], "f0_scaled": inputs["f0_scaled"]}
    np.testing.assert_allclose(encoder(swapped)["z"].numpy()[0], z[1], atol=1e-5)
    # z varies over time for a note whose pitch changes half way.
    t = np.arange(SR) / SR
    glide = np.where(t < 0.5, np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 990 * t)).astype(np.float32)
    z_glide = encoder({"audio": glide[np.newaxis], "f0_scaled": np.zeros([1, 250, 1], np.float32)})["z"].numpy()
    assert np.abs(z_glide[0, 240] - z_glide[0, 10]).max() > 1e-2


def test_global_encoder_z_is_constant_over_time():
    for pooling in ("final", "mean"):
        encoder = encoders.MfccRnnEncoder(rnn_channels=8, z_dims=3, z_time_steps=31, pooling=pooling)
        z = encoder(features(time_steps=100))["z"].numpy()
        assert z.shape == (2, 100, 3)
        np.testing.assert_allclose(z, np.repeat(z[:, :1], 100, axis=1))
        assert np.abs(z[0, 0] - z[1, 0]).max() > 1e-3


def test_encoder_gradients_reach_every_weight_and_checkpoint_round_trip(tmp_path):
    encoder = encoders.MfccTimeDistributedRnnEncoder(rnn_channels=8, z_dims=3, z_time_steps=31)
    inputs = features()
    with tf.GradientTape() as tape:
        z = encoder(inputs)["z"]
        loss = tf.reduce_sum(z * tf.sin(z))
    gradients = tape.gradient(loss, encoder.trainable_weights)
    assert len(gradients) == 3 + 2 + 2  # GRU kernel, recurrent kernel, bias; norm; dense
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in gradients)
    path = tf.train.Checkpoint(encoder=encoder).save(str(tmp_path / "ckpt"))
    restored = encoders.MfccTimeDistributedRnnEncoder(rnn_channels=8, z_dims=3, z_time_steps=31)
    restored(inputs)  # build first
    tf.train.Checkpoint(encoder=restored).restore(path).assert_consumed()
    np.testing.assert_allclose(restored(inputs)["z"], z, atol=1e-6)


def test_encoder_errors_and_positional_call():
    encoder = encoders.MfccTimeDistributedRnnEncoder(rnn_channels=4, z_dims=2, z_time_steps=31)
    with pytest.raises(ValueError, match=r"'f0_scaled' is missing.*\['audio'\]"):
        encoder({"audio": features()["audio"]})
    inputs = features(batch=1)
    outputs = encoder(inputs["audio"], inputs["f0_scaled"])
    assert outputs["z"].shape == (1, 250, 2)
    with pytest.raises(ValueError, match="z_dims"):
        encoders.MfccTimeDistributedRnnEncoder(z_dims=0)
    with pytest.raises(ValueError, match="pooling"):
        encoders.MfccRnnEncoder(pooling="max")
