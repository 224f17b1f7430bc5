"""Specification of the encoders: MFCC frame counts per z_time_steps, z shapes at the f0's time
steps, z following the audio, global z constant over time, gradients and checkpoints."""
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import spectral_ops
from ddsp_models.training import encoders

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


# ------------------------------------------------------------ inverse synthesis encoders
def _tone(freq_hz, seconds=0.5, amplitude=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_resnet_sinusoidal_encoder_outputs_scaled_controls_at_the_frame_rate():
    encoder = encoders.ResnetSinusoidalEncoder(size="tiny", scale_outputs=True, n_sinusoids=6, n_freq_bins=16,
                                               n_noise_bands=9,
                                               frame_rate=100, fft_size=512, overlap=0.75, mel_bins=32,
                                               hz_min=40.0, hz_max=6000.0)
    audio = tf.constant(np.stack([_tone(220.0), _tone(880.0)]))
    outputs = encoder({"audio": audio})
    assert outputs["sin_amps"].shape == outputs["sin_freqs"].shape == (2, 50, 6)
    assert outputs["noise_magnitudes"].shape == (2, 50, 9)
    freqs = outputs["sin_freqs"].numpy()
    assert freqs.min() >= 40.0 * 0.999 and freqs.max() <= 6000.0 * 1.001
    assert outputs["sin_amps"].numpy().min() > 0.0 and outputs["noise_magnitudes"].numpy().min() > 0.0
    # The controls follow the audio: the two tones give different sinusoids.
    assert np.abs(freqs[0] - freqs[1]).max() > 1e-3
    with tf.GradientTape() as tape:
        outputs = encoder(audio)
        loss = tf.reduce_sum(outputs["sin_freqs"]) + tf.reduce_sum(outputs["sin_amps"])
    gradients = tape.gradient(loss, encoder.trainable_weights)
    assert gradients and all(g is not None for g in gradients)
    assert sum(float(tf.norm(g)) for g in gradients) > 0.0


def test_resnet_sizes_grow_and_bad_arguments_raise():
    counts = {}
    for size in ("tiny", "small"):
        encoder = encoders.ResnetSinusoidalEncoder(size=size, scale_outputs=True, n_sinusoids=4, mel_bins=32,
                                                   frame_rate=100)
        encoder(tf.zeros([1, 1600]))
        counts[size] = sum(int(tf.size(w)) for w in encoder.resnet.trainable_weights)
    assert counts["tiny"] < counts["small"]
    with pytest.raises(ValueError, match="size"):
        encoders.ResnetSinusoidalEncoder(size="huge", scale_outputs=True)
    with pytest.raises(ValueError, match="n_freq_bins"):
        encoders.ResnetSinusoidalEncoder(n_freq_bins=1, scale_outputs=True)
    with pytest.raises(ValueError, match="whole number of frames"):
        encoders.ResnetSinusoidalEncoder(size="tiny", scale_outputs=True, frame_rate=250)(tf.zeros([1, 1000]))


def test_sinusoidal_to_harmonic_encoder_gives_normalised_harmonics_and_f0_in_range():
    encoder = encoders.SinusoidalToHarmonicEncoder(n_harmonics=12, rnn_channels=8, ch=8, layers_per_stack=1,
                                                   f0_midi_range=(40.0, 100.0), sample_rate=SR,
                                                   scale_inputs=True)
    rng = np.random.default_rng(0)
    sin_amps = tf.constant(rng.uniform(0, 0.2, (2, 20, 5)), tf.float32)
    sin_freqs = tf.constant(rng.uniform(100, 4000, (2, 20, 5)), tf.float32)
    outputs = encoder({"sin_amps": sin_amps, "sin_freqs": sin_freqs})
    assert outputs["harm_amp"].shape == outputs["f0_hz"].shape == (2, 20, 1)
    midi = 69 + 12 * np.log2(outputs["f0_hz"].numpy() / 440.0)
    assert midi.min() >= 40.0 - 1e-3 and midi.max() <= 100.0 + 1e-3
    dist = outputs["harm_dist"].numpy()
    np.testing.assert_allclose(dist.sum(-1), 1.0, rtol=1e-5)
    above_nyquist = outputs["f0_hz"].numpy() * np.arange(1, 13) >= SR / 2
    assert np.all(dist[above_nyquist] == 0.0)
    positional = encoder(sin_freqs, sin_amps)  # the original's order
    np.testing.assert_allclose(positional["f0_hz"], outputs["f0_hz"], rtol=1e-6)
    with pytest.raises(ValueError, match="f0_midi_range"):
        encoders.SinusoidalToHarmonicEncoder(f0_midi_range=(60.0, 50.0))
    with pytest.raises(ValueError, match="'sin_freqs' is missing"):
        encoder({"sin_amps": sin_amps})


# ------------------------------------------------------------------------ OneHotEncoder
def test_one_hot_encoder_returns_the_embedding_row_of_each_label():
    encoder = encoders.OneHotEncoder(n_classes=5, z_dims=3, input_key="instrument_id")
    encoder({"instrument_id": np.array([0], np.int64)})  # build
    kernel = np.arange(15, dtype=np.float32).reshape(5, 3)
    encoder.embedding.embeddings.assign(kernel)
    out = encoder({"instrument_id": np.array([4, 0, 2], np.int64)}).numpy()
    np.testing.assert_array_equal(out, kernel[[4, 0, 2]])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf_function"])
@pytest.mark.parametrize("bad_id", [16, 127, -1])
def test_one_hot_encoder_rejects_ids_outside_its_classes_naming_id_and_size(graph, bad_id):
    encoder = encoders.OneHotEncoder(n_classes=16, z_dims=2, input_key="instrument_id", name="instrument")
    call = tf.function(encoder) if graph else encoder
    call({"instrument_id": tf.constant([3, 15], tf.int64)})  # in range: fine
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call({"instrument_id": tf.constant([3, bad_id], tf.int64)})
    message = str(error.value)
    assert "n_classes=16" in message and "OneHotEncoder instrument " in message
    assert re.search(rf"ids outside:[^\d-]*{bad_id}(?!\d)", message), message  # the offending id


def test_one_hot_encoder_unknown_id_gets_the_zero_embedding():
    encoder = encoders.OneHotEncoder(n_classes=4, z_dims=2, unknown_id=-1, input_key="instrument_id")
    out = encoder({"instrument_id": np.array([-1, 1], np.int64)}).numpy()
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_array_equal(out[1], encoder.embedding.embeddings.numpy()[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="n_classes=4"):
        encoder({"instrument_id": np.array([-2], np.int64)})
    with pytest.raises(ValueError, match="unknown_id"):
        encoders.OneHotEncoder(n_classes=4, unknown_id=2)
    with pytest.raises(ValueError, match="n_classes"):
        encoders.OneHotEncoder(n_classes=0)


# ------------------------------------------------------------ the original's arguments
def test_one_hot_encoder_original_names_and_expansion_over_time():
    encoder = encoders.OneHotEncoder(one_hot_key="instrument", vocab_size=13, n_dims=4, skip_expand=False)
    assert (encoder.n_classes, encoder.z_dims, encoder.input_key) == (13, 4, "instrument")
    out = encoder({"instrument": np.array([12, 3], np.int64), "f0_scaled": np.zeros([2, 6, 1], np.float32)})
    kernel = encoder.embedding.embeddings.numpy()
    assert out.shape == (2, 6, 4)
    np.testing.assert_array_equal(out.numpy()[0], np.tile(kernel[12], (6, 1)))
    np.testing.assert_array_equal(out.numpy()[1, 5], kernel[3])


def test_expression_encoder_with_a_net_pools_over_time_when_asked():
    from ddsp_models.training import nn

    x = {"f0_scaled": RNG.uniform(size=[1, 8, 1]).astype(np.float32),
         "amps_scaled": RNG.uniform(size=[1, 8, 1]).astype(np.float32)}
    pooled = encoders.ExpressionEncoder(net=nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1), z_dims=3,
                                        input_keys=("f0_scaled", "amps_scaled"), pool_time=True)
    frames = encoders.ExpressionEncoder(net=nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1), z_dims=3,
                                        input_keys=("f0_scaled", "amps_scaled"), pool_time=False)
    z_pooled, z_frames = pooled(x).numpy(), frames(x).numpy()
    assert z_pooled.shape == z_frames.shape == (1, 8, 3)
    np.testing.assert_allclose(z_pooled, np.broadcast_to(z_pooled[:, :1], z_pooled.shape))
    assert np.std(z_frames[0, :, 0]) > 0  # per-frame latents vary
    with_audio = encoders.ExpressionEncoder(z_dims=2, input_keys=("f0_scaled", "audio"), mfcc_bins=5,
                                            fft_size=256, mel_bins=16, pool_time=False)
    z_a = with_audio({**features(0.25, 8, 1), "f0_scaled": x["f0_scaled"]}).numpy()
    z_b = with_audio({**features(0.25, 8, 1, freqs=(880.0,)), "f0_scaled": x["f0_scaled"]}).numpy()
    assert z_a.shape == (1, 8, 2) and not np.allclose(z_a, z_b)  # the MFCCs of the audio count


def test_harmonic_to_midi_encoder_with_a_net_adds_an_unbounded_residual_to_f0():
    from ddsp_models.training import nn

    encoder = encoders.HarmonicToMidiEncoder(net=nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1))
    inputs = {"f0_midi": np.full([1, 6, 1], 60.0, np.float32), "amps": np.ones([1, 6, 1], np.float32),
              "hd": np.ones([1, 6, 3], np.float32) / 3, "noise": np.zeros([1, 6, 2], np.float32)}
    out = encoder(inputs)
    x = encoder.norm(encoder.net(tf.concat([inputs[k] for k in ("f0_midi", "amps", "hd", "noise")], -1)))
    np.testing.assert_allclose(out["z_pitch"].numpy(), 60.0 + encoder.dense_pitch(x).numpy(), atol=1e-4)
    np.testing.assert_array_equal(out["q_pitch"].numpy(), np.round(out["z_pitch"].numpy()))
    with pytest.raises(ValueError, match="residual"):
        encoders.HarmonicToMidiEncoder(net=nn.DilatedConvStack(ch=4), pitch_mode="logits")


def test_resnet_sinusoidal_encoder_takes_the_originals_output_splits_and_spectral_fn():
    calls = []

    def spectral_fn(audio):
        calls.append(audio.shape)
        return spectral_ops.compute_logmel(audio, bins=32, fft_size=512, overlap=0.75, pad_end=True)

    encoder = encoders.ResnetSinusoidalEncoder(
        size="tiny", output_splits=(("frequencies", 4 * 8), ("amplitudes", 4), ("noise_magnitudes", 5)),
        spectral_fn=spectral_fn, scale_outputs=True)
    assert (encoder.n_sinusoids, encoder.n_freq_bins, encoder.n_noise_bands) == (4, 8, 5)
    out = encoder(features(0.256, 64, 1)["audio"])
    assert calls == [(1, 4096)]
    assert out["sin_freqs"].shape == (1, 64, 4) and out["noise_magnitudes"].shape == (1, 64, 5)
    with pytest.raises(ValueError, match="output_splits"):
        encoders.ResnetSinusoidalEncoder(scale_outputs=True, output_splits=(("frequencies", 10), ("amplitudes", 3),
                                                        ("noise_magnitudes", 5)))


def test_sinusoidal_to_harmonic_encoder_with_a_net_replaces_its_stacks():
    from ddsp_models.training import nn

    net = nn.RnnSandwich(fc_stack_ch=6, fc_stack_layers=1, rnn_ch=5)
    encoder = encoders.SinusoidalToHarmonicEncoder(net=net, n_harmonics=7)
    sin = {"sin_amps": RNG.uniform(size=[1, 5, 4]).astype(np.float32),
           "sin_freqs": RNG.uniform(100, 2000, size=[1, 5, 4]).astype(np.float32)}
    out = encoder(sin)
    assert out["harm_dist"].shape == (1, 5, 7) and not hasattr(encoder, "in_stack")
    np.testing.assert_allclose(out["harm_dist"].numpy().sum(-1), 1.0, atol=1e-5)
    assert encoders.SinusoidalToHarmonicEncoder().n_harmonics == 100  # the original's default


def test_mfcc_rnn_encoder_mean_aggregate_is_the_time_mean_of_the_rnn_outputs():
    """The original's `mean_aggregate=True`: one z per clip, Dense(mean over time of the RNN
    outputs); False: Dense(the RNN's last state)."""
    batch = features(time_steps=40)
    mean_encoder = encoders.MfccRnnEncoder(rnn_channels=6, z_dims=3, mean_aggregate=True, z_time_steps=31)
    assert mean_encoder.pooling == "mean" and mean_encoder.mean_aggregate
    z = mean_encoder(batch)["z"].numpy()
    frames = mean_encoder.rnn(mean_encoder.z_norm(mean_encoder.mfccs(batch["audio"])))
    assert frames.shape[1] > 1  # a sequence, averaged below
    expected = mean_encoder.dense_out(tf.reduce_mean(frames, axis=1)).numpy()
    np.testing.assert_allclose(z, np.repeat(expected[:, np.newaxis], 40, axis=1), atol=1e-5)
    last = encoders.MfccRnnEncoder(rnn_channels=6, z_dims=3, z_time_steps=31)
    assert last.pooling == "final" and last.z_dims == 3
    assert encoders.MfccRnnEncoder().z_dims == 512  # the original's default


def test_sinusoidal_to_harmonic_encoder_applies_the_originals_scale_functions():
    """Original inputs (hz_to_unit(freqs, 0, Nyquist), linear amplitudes) -> net -> Dense:
    harm_amp = amp_scale_fn(logit), f0_hz = freq_scale_fn(f0_depth logits), harm_dist =
    amp_scale_fn(logits) normalised below Nyquist."""
    net = tf.keras.layers.Dense(6)
    encoder = encoders.SinusoidalToHarmonicEncoder(
        net=net, n_harmonics=4, f0_depth=3, amp_scale_fn=tf.nn.softplus,
        freq_scale_fn=lambda x: 100.0 + 10.0 * tf.reduce_sum(x, axis=-1, keepdims=True), sample_rate=SR)
    sin_freqs = RNG.uniform(100, 2000, size=[1, 5, 2]).astype(np.float32)
    sin_amps = RNG.uniform(size=[1, 5, 2]).astype(np.float32)
    out = encoder(sin_freqs, sin_amps)
    from ddsp_models import core

    unit = core.hz_to_unit(sin_freqs, hz_min=0.0, hz_max=SR / 2).numpy()  # MIDI-linear, as the original
    h = net(np.concatenate([unit, sin_amps], -1))  # one Dense per output, as the original
    x = np.concatenate([encoder.amp_out(h), encoder.f0_out(h), encoder.hd_out(h)], -1)
    assert x.shape[-1] == 1 + 3 + 4
    softplus = np.log1p(np.exp(x))
    np.testing.assert_allclose(out["harm_amp"].numpy(), softplus[..., :1], rtol=1e-5)
    np.testing.assert_allclose(out["f0_hz"].numpy(), 100.0 + 10.0 * x[..., 1:4].sum(-1, keepdims=True), rtol=1e-5)
    dist = softplus[..., 4:] * (out["f0_hz"].numpy() * np.arange(1, 5) < SR / 2)
    np.testing.assert_allclose(out["harm_dist"].numpy(), dist / dist.sum(-1, keepdims=True), rtol=1e-5)
    default = encoders.SinusoidalToHarmonicEncoder(net=tf.keras.layers.Dense(4), n_harmonics=3)
    f0 = default({"sin_freqs": sin_freqs, "sin_amps": sin_amps})["f0_hz"].numpy()
    assert default.n_f0 == 64 and np.all((f0 >= 20.0 - 1e-3) & (f0 <= 1200.0 + 1e-3))  # 20 - 1200 Hz softmax


def test_resnet_sinusoidal_encoder_spread_frequencies_start_across_the_spectrum():
    """Untrained, the shared softmax puts every sinusoid near the range's geometric mean
    (~400 Hz for 20 - 8000 Hz); with spread_frequencies sinusoid i starts near log-frequency
    position (i + 0.5) / n, so each has a partial nearby to learn from."""
    kwargs = dict(size="tiny", scale_outputs=True, n_sinusoids=16, n_freq_bins=64, n_noise_bands=9, frame_rate=100,
                  fft_size=512,
                  overlap=0.75, mel_bins=32, hz_min=20.0, hz_max=8000.0)
    audio = tf.constant(_tone(440.0)[np.newaxis])
    tf.keras.utils.set_random_seed(0)  # untrained weights: a fixed draw (unseeded, it sometimes missed by > 2 st)
    shared = encoders.ResnetSinusoidalEncoder(**kwargs)(audio)["sin_freqs"].numpy()
    spread = encoders.ResnetSinusoidalEncoder(spread_frequencies=True, **kwargs)(audio)["sin_freqs"].numpy()
    midi = lambda hz: 69.0 + 12.0 * np.log2(hz / 440.0)  # noqa: E731
    span = midi(8000.0) - midi(20.0)  # 103.7 semitones
    assert np.all(np.abs(midi(shared) - midi(400.0)) < 0.2 * span)
    expected = midi(20.0) + span * (np.arange(16) + 0.5) / 16  # 6.5 semitones apart
    np.testing.assert_allclose(np.median(midi(spread), axis=1)[0, 1:-1], expected[1:-1], atol=2.0)
