"""The original DDSP's layers, encoders, decoders and providers added under its names
(nn_original, nn_original_layers, codecs_original, data_original, RnnFcDecoder.stateless)."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import data, decoders, encoders, nn


def random(*shape, seed=0):
    return tf.constant(np.random.RandomState(seed).normal(size=shape).astype(np.float32))


# ------------------------------------------------------------------------ DictLayer
class _Adder(nn.DictLayer):
    def call(self, a, b, c=None) -> ["total", "c_given"]:  # noqa: F821 - the output names
        return a + b + (0.0 if c is None else c), tf.constant(c is not None)


def test_dict_layer_reads_keys_defaults_and_names_outputs():
    layer = _Adder()
    assert layer.input_keys == ["a", "b"] and layer.default_input_keys == ["c"]
    out = layer({"a": tf.constant(1.0), "b": tf.constant(2.0), "unused": tf.constant(9.0)})
    assert float(out["total"]) == 3.0 and not bool(out["c_given"])
    out = layer({"a": tf.constant(1.0)}, {"b": tf.constant(2.0), "c": tf.constant(4.0)})
    assert float(out["total"]) == 7.0 and bool(out["c_given"])
    assert float(layer(tf.constant(1.0), tf.constant(5.0))["total"]) == 6.0
    nested = _Adder(input_keys=["x/a", "b"])
    assert float(nested({"x": {"a": tf.constant(2.0)}, "b": tf.constant(3.0)})["total"]) == 5.0
    with pytest.raises(TypeError, match=r"expects 3: input keys \['a', 'b'\]"):
        layer({"a": tf.constant(1.0)})


# ----------------------------------------------------------------- normalisation
@pytest.mark.parametrize("shift_only", [False, True])
def test_conditional_norm_scales_and_shifts_by_the_conditioning(shift_only):
    x, z = random(2, 6, 1, 4), random(2, 1, 1, 3, seed=1)
    layer = nn.ConditionalNorm(norm_type="instance", shift_only=shift_only)
    out = layer([x, z]).numpy()
    dense = layer.conditional_scale_and_shift.dense
    film = z.numpy() @ dense.kernel.numpy() + dense.bias.numpy()
    normed = nn.normalize_op(x, "instance").numpy()
    expected = normed + film if shift_only else normed * film[..., :4] + film[..., 4:]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert isinstance(nn.get_norm("layer", True, shift_only), nn.ConditionalNorm)
    assert isinstance(nn.get_norm("layer", False, shift_only), nn.Normalize)


def test_resnet_small_strides_frequency_only():
    x = random(1, 4, 32, 1)
    resnet = nn.ResNet(size="small", norm_type="layer")
    out = resnet(x)
    assert out.shape == (1, 4, 1, 1024)  # 32 bins / 2 (conv) / 2 (pool) / 2 / 2 / 2; 4 * 8 * 32
    shifted = resnet(tf.concat([x[:, 1:], x[:, :1]], axis=1)).numpy()
    assert not np.allclose(shifted, out.numpy())  # every frame is its own output
    cond = nn.ResNet(size="small", conditional=True)
    a = cond([x, tf.zeros([1, 1, 1, 3])]).numpy()
    b = cond([x, tf.ones([1, 1, 1, 3])]).numpy()
    assert a.shape == out.shape and np.abs(a - b).max() > 1e-3


# ------------------------------------------------------------------------------ RNNs
def test_stateless_rnn_carries_its_state_across_calls():
    x = random(2, 7, 3)
    rnn = nn.StatelessRnn(5, "gru")
    full, last = rnn(x, tf.zeros([2, 5]))
    first, state = rnn(x[:, :4], tf.zeros([2, 5]))
    second, end = rnn(x[:, 4:], state)
    np.testing.assert_allclose(tf.concat([first, second], 1).numpy(), full.numpy(), atol=1e-5)
    np.testing.assert_allclose(end.numpy(), last.numpy(), atol=1e-5)


def test_stateless_rnn_fc_decoder_equals_the_stateful_one():
    features = {"f0_scaled": random(1, 6, 1), "ld_scaled": random(1, 6, 1, seed=1)}
    splits = (("amps", 1), ("harmonic_distribution", 3))
    stateful = decoders.RnnFcDecoder(8, "gru", 8, 1, input_keys=("ld_scaled", "f0_scaled"),
                                     output_splits=splits)
    stateless = decoders.RnnFcDecoder(8, "gru", 8, 1, stateless=True,
                                      input_keys=("ld_scaled", "f0_scaled"), output_splits=splits)
    expected = stateful(features)
    stateless({**features, "state": tf.zeros([1, 8])})
    for target, source in zip(stateless.weights, stateful.weights):
        target.assign(source)
    first = stateless({k: v[:, :2] for k, v in features.items()} | {"state": tf.zeros([1, 8])})
    second = stateless({k: v[:, 2:] for k, v in features.items()} | {"state": first["state"]})
    assert set(first) == {"amps", "harmonic_distribution", "state"}
    np.testing.assert_allclose(tf.concat([first["amps"], second["amps"]], 1).numpy(),
                               expected["amps"].numpy(), atol=1e-5)


def test_single_gru_identity_and_embedding():
    y = nn.SingleGru(6)(random(2, 5, 3)).numpy()
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-4)  # layer-normalised
    x = random(2, 3)
    np.testing.assert_array_equal(nn.Identity()(x).numpy(), x.numpy())
    embedding = nn.get_embedding(vocab_size=10, n_dims=4)
    vectors = embedding(tf.constant([[3], [3]]))
    assert vectors.shape == (2, 1, 4) and np.array_equal(vectors[0], vectors[1])
    assert nn.PolyphaseResample(2, "down")(tf.zeros([1, 6, 3])).shape == (1, 3, 6)


def test_vector_quantization_picks_the_nearest_centroid_and_tracks_its_average():
    vq = nn.VectorQuantization(k=3, gamma=0.5)
    x = tf.constant([[[0.1, 0.0], [2.1, 2.0], [-1.9, 0.1]]])
    vq.build(x.shape)
    vq.counts.assign([1.0, 1.0, 1.0])
    vq.sums.assign([[0.0, 0.0], [2.0, 2.0], [-2.0, 0.0]])
    z, codes = vq(x, training=False)
    np.testing.assert_array_equal(codes.numpy()[..., 0], [[0, 1, 2]])
    np.testing.assert_allclose(z.numpy(), [[[0.0, 0.0], [2.0, 2.0], [-2.0, 0.0]]])
    np.testing.assert_allclose(vq.unquantize(codes).numpy(), z.numpy())
    loss = vq.get_losses_dict(x, z)[vq.name + "_commitment_loss"]
    assert float(loss) == pytest.approx(0.2 * np.mean((x.numpy() - z.numpy()) ** 2), rel=1e-5)
    vq(tf.constant([[[0.2, 0.2]]]), training=True)  # one vector assigned to centroid 0
    np.testing.assert_allclose(vq.counts.numpy(), [1.0, 0.5, 0.5])
    np.testing.assert_allclose(vq.sums.numpy()[0], [0.1, 0.1])


def test_straight_through_softmax_samples_the_softmax():
    logits = tf.math.log(tf.tile([[0.7, 0.2, 0.1]], [4000, 1]))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        sample, probs = nn.straight_through_softmax(logits)
        value = tf.reduce_sum(sample * [1.0, 2.0, 3.0])
    assert set(np.unique(sample.numpy())) == {0.0, 1.0}
    np.testing.assert_allclose(sample.numpy().mean(0), [0.7, 0.2, 0.1], atol=0.03)
    assert tape.gradient(value, logits) is not None
    choice = nn.straight_through_choice(tf.constant([[50.0, 0.0]]), tf.constant([[3.0, 8.0]]))
    assert choice.numpy().tolist() == [[3.0]]


def test_keras_layers_are_referenceable_from_gin():
    dense = gin.get_configurable("tf.keras.layers.Dense")(units=2)
    assert dense(tf.zeros([1, 3])).shape == (1, 2)


# ---------------------------------------------------------------- encoders, decoders
def test_z_encoders_expand_z_to_the_frames():
    features = {"f0_scaled": random(2, 8, 1), "ld_scaled": random(2, 8, 1, seed=1)}
    aggregate = encoders.AggregateFeaturesEncoder(ch=4)
    z = aggregate(features)["z"].numpy()
    assert z.shape == (2, 8, 4) and np.allclose(z, z[:, :1])  # the time mean, repeated
    dense = aggregate.fc
    x = np.concatenate([features["f0_scaled"], features["ld_scaled"]], -1)
    np.testing.assert_allclose(z[:, 0], (x @ dense.kernel.numpy() + dense.bias.numpy()).mean(1),
                               atol=1e-5)
    audio = tf.constant(np.sin(np.linspace(0, 400, 8000)).astype(np.float32)[None])
    mfcc = encoders.MfccEncoder(time_steps=10)
    assert mfcc({"audio": audio, "f0_scaled": tf.zeros([1, 20, 1])})["z"].shape == (1, 20, 30)
    z = mfcc({"audio": audio, "f0_scaled": tf.zeros([1, 10, 1])})["z"].numpy()
    np.testing.assert_allclose(z.mean(1), 0.0, atol=1e-4)  # instance-normalised per coefficient
    np.testing.assert_allclose(z.std(1), 1.0, atol=1e-2)


def test_midi_encoder_and_decoder_residuals():
    f0_midi, loudness = tf.fill([1, 5, 1], 60.0), tf.fill([1, 5, 1], -30.0)
    encoder = encoders.MidiEncoder(net=nn.Identity())
    encoder({"f0_midi": f0_midi, "loudness": loudness})
    for w in encoder.dense_out.weights:
        w.assign(tf.zeros_like(w))
    out = encoder({"f0_midi": f0_midi, "loudness": loudness})
    np.testing.assert_allclose(out["z_pitch"].numpy(), 60.0)  # f0 + 0 residual
    np.testing.assert_allclose(out["z_vel"].numpy(), 0.0)
    decoder = decoders.MidiDecoder(net=nn.Identity(), norm=False)
    decoder({"z_pitch": f0_midi})
    decoder.dense_out.kernel.assign([[0.0, 0.0]])
    decoder.dense_out.bias.assign([0.5, 1.0])
    out = decoder({"z_pitch": f0_midi})
    np.testing.assert_allclose(out["f0_midi"].numpy(), 60.5)
    np.testing.assert_allclose(out["loudness"].numpy(), 1.0 * 30.0 - 70.0)
    with pytest.raises(ValueError, match="net"):
        decoders.MidiDecoder()


# -------------------------------------------------------------------------- providers
def _provider(value, n=40):
    return data.InMemoryProvider({"x": np.full([n, 1], value, np.float32)})


def test_mixed_provider_draws_by_ratio_and_checks_rates(tmp_path):
    mixed = data.MixedProvider([_provider(0.0, 2000), _provider(1.0, 2000)], [3, 1])
    values = [float(e["x"][0]) for e in mixed.get_dataset(shuffle=False).take(800)]
    assert np.mean(values) == pytest.approx(0.25, abs=0.06)
    odd = data.InMemoryProvider({"x": np.zeros([4, 1], np.float32)}, sample_rate=22050)
    with pytest.raises(ValueError, match="sample_rate"):
        data.BaseMultiProvider([_provider(0.0), odd])
    with pytest.raises(ValueError, match="batch_size_ratios"):
        data.MixedProvider([_provider(0.0), _provider(1.0)], [1])
    assert data.CREPE_SAMPLE_RATE == 16000 and data.CREPE_FRAME_SIZE == 1024


def test_experimental_data_provider_reads_a_saved_dataset(tmp_path):
    saved = tf.data.Dataset.from_tensor_slices({"f0_hz": np.arange(6, dtype=np.float32)})
    saved.save(str(tmp_path / "ds"))
    provider = data.ExperimentalDataProvider(str(tmp_path / "ds"), 16000, 250)
    values = [float(e["f0_hz"]) for e in provider.get_dataset()]
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="holds no saved"):
        list(data.ExperimentalDataProvider(str(tmp_path / "none"), 16000, 250).get_dataset())
