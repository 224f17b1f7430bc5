"""Specification of the decoders: output keys and sizes per output_splits, the full-size
RnnFcDecoder's parameter count, gradients to every weight, conditioning and upsampling of the
dilated-conv decoder, and checkpoints."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import decoders

RNG = np.random.default_rng(7)
SPLITS = (("amps", 1), ("harmonic_distribution", 6), ("noise_magnitudes", 5))


def features(batch=2, time_steps=12, z_dims=3):
    return {"ld_scaled": RNG.uniform(size=[batch, time_steps, 1]).astype(np.float32),
            "f0_scaled": RNG.uniform(size=[batch, time_steps]).astype(np.float32),  # [batch, time] is fine
            "z": RNG.normal(size=[batch, time_steps, z_dims]).astype(np.float32),
            "audio": np.zeros([batch, 100], np.float32)}


def assert_gradients_reach_every_weight(layer, inputs):
    with tf.GradientTape() as tape:
        outputs = layer(inputs)
        loss = sum(tf.reduce_sum(tf.sin(v)) for v in outputs.values())
    gradients = tape.gradient(loss, layer.trainable_weights)
    missing = [w.path for w, g in zip(layer.trainable_weights, gradients)
               if g is None or not np.abs(g.numpy()).max() > 0]
    assert not missing


def full_size_parameter_count(n_inputs, ch, layers, rnn, n_out):
    """Dense + LayerNorm parameters of the FcStacks, the GRU (reset_after: two bias rows) and the
    output Dense of an RnnFcDecoder on n_inputs one-channel inputs."""
    def stack(n_in):
        return (n_in * ch + ch + 2 * ch) + (layers - 1) * (ch * ch + ch + 2 * ch)
    gru = 3 * (n_inputs * ch * rnn + rnn * rnn + 2 * rnn)
    return n_inputs * stack(1) + gru + stack(n_inputs * ch + rnn) + (ch * n_out + n_out)


def test_rnn_fc_decoder_outputs_one_tensor_per_split():
    decoder = decoders.RnnFcDecoder(rnn_channels=8, ch=8, layers_per_stack=2, output_splits=SPLITS)
    outputs = decoder(features())
    assert list(outputs) == ["amps", "harmonic_distribution", "noise_magnitudes"]
    assert [outputs[k].shape for k in outputs] == [(2, 12, 1), (2, 12, 6), (2, 12, 5)]
    assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values())
    inputs = features()
    positional = decoder(inputs["ld_scaled"], inputs["f0_scaled"], inputs["z"])  # input_keys order
    np.testing.assert_allclose(positional["amps"], decoder(inputs)["amps"], atol=1e-6)
    with pytest.raises(ValueError, match=r"'z' is missing.*\['f0_scaled', 'ld_scaled'\]"):
        decoder({"ld_scaled": features()["ld_scaled"], "f0_scaled": features()["f0_scaled"]})


def test_full_size_rnn_fc_decoder_has_4_8_million_parameters():
    splits = (("amps", 1), ("harmonic_distribution", 60), ("noise_magnitudes", 65))
    decoder = decoders.RnnFcDecoder(rnn_channels=512, ch=512, layers_per_stack=3,
                                    input_keys=("ld_scaled", "f0_scaled"), output_splits=splits)
    decoder(features(batch=1, time_steps=2))
    expected = full_size_parameter_count(n_inputs=2, ch=512, layers=3, rnn=512, n_out=126)
    assert decoder.count_params() == expected
    assert 4.75e6 < expected < 4.85e6


def test_rnn_fc_decoder_gradients_and_time_dependence():
    decoder = decoders.RnnFcDecoder(rnn_channels=8, ch=8, layers_per_stack=2, output_splits=SPLITS)
    inputs = features()
    assert_gradients_reach_every_weight(decoder, inputs)
    # The GRU carries information forward in time only: step 3 does not see steps after it.
    ld = tf.constant(inputs["ld_scaled"])
    with tf.GradientTape() as tape:
        tape.watch(ld)
        amps = decoder(dict(inputs, ld_scaled=ld))["amps"][:, 3]
    dependence = np.abs(tape.gradient(amps, ld).numpy()).sum(axis=(0, 2))
    assert np.all(dependence[:4] > 0) and np.all(dependence[4:] == 0)


def test_rnn_fc_decoder_with_lstm_and_gru_is_causal_over_time():
    keras.utils.set_random_seed(0)
    for rnn_type, layer_class in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        decoder = decoders.RnnFcDecoder(rnn_channels=4, rnn_type=rnn_type, ch=4, layers_per_stack=1,
                                        input_keys=("f0_scaled",), output_splits=(("amps", 1),))
        inputs = features()
        amps = decoder(inputs)["amps"].numpy()
        assert isinstance(decoder.rnn.rnn, layer_class), rnn_type
        # A change at frame 6 reaches frames 6.. (the recurrence carries it on), never 0..5.
        changed = dict(inputs, f0_scaled=inputs["f0_scaled"].copy())
        changed["f0_scaled"][:, 6] += 1.0
        difference = np.abs(decoder(changed)["amps"].numpy() - amps)[..., 0]
        assert np.all(difference[:, :6] == 0.0), rnn_type
        assert np.all(difference[:, 6:] > 1e-6), rnn_type


def test_dilated_conv_decoder_with_conditioning_and_upsampling():
    decoder = decoders.DilatedConvDecoder(ch=8, layers_per_stack=2, stacks=2, resample_stride=2,
                                          stacks_per_resample=1, output_splits=SPLITS, conditioning_keys=("z",))
    inputs = features()
    outputs = decoder(inputs)
    assert [outputs[k].shape for k in outputs] == [(2, 48, 1), (2, 48, 6), (2, 48, 5)]  # 12 * 2 * 2 steps
    assert_gradients_reach_every_weight(decoder, inputs)
    changed = decoder(dict(inputs, z=inputs["z"] + 1.0))
    assert np.abs(changed["amps"] - outputs["amps"]).max() > 1e-4
    unconditioned = decoders.DilatedConvDecoder(ch=8, layers_per_stack=1, stacks=1, conditioning_keys=None,
                                                output_splits=SPLITS)
    assert unconditioned.input_keys == ["ld_scaled", "f0_scaled"]
    assert unconditioned(inputs)["noise_magnitudes"].shape == (2, 12, 5)


@pytest.mark.parametrize("kind", ["rnn_fc", "dilated_conv"])
def test_decoders_restore_from_checkpoints(kind, tmp_path):
    def make():
        if kind == "rnn_fc":
            return decoders.RnnFcDecoder(rnn_channels=6, ch=6, layers_per_stack=2, output_splits=SPLITS)
        return decoders.DilatedConvDecoder(ch=6, layers_per_stack=2, stacks=1, output_splits=SPLITS)

    inputs = features()
    saved, restored = make(), make()
    expected = saved(inputs)["harmonic_distribution"]
    before = restored(inputs)["harmonic_distribution"]  # build before restoring
    assert np.abs(before - expected).max() > 1e-3  # its own initial weights differ
    path = tf.train.Checkpoint(decoder=saved).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(decoder=restored).restore(path).assert_consumed()
    np.testing.assert_allclose(restored(inputs)["harmonic_distribution"], expected, atol=1e-6)


def midi_inputs(batch=1, time_steps=10, z_dims=0):
    pitch = np.full([batch, time_steps, 1], 60.0, np.float32)
    velocity = np.full([batch, time_steps, 1], 100.0, np.float32)
    out = {"pitch": pitch, "velocity": velocity}
    if z_dims:
        out["z"] = RNG.normal(size=[batch, time_steps, z_dims]).astype(np.float32)
    return out


def test_midi_to_harmonic_decoder_original_form_f0_midi_split_is_the_residual():
    """The original's configs name the f0 channel ('f0_midi', 1) in output_splits and pass a
    `net`: f0_midi = pitch + that channel (f0_residual), or the channel alone."""
    from ddsp_models.training import nn

    splits = (("f0_midi", 1), ("amplitudes", 1), ("harmonic_distribution", 4), ("magnitudes", 3))
    for f0_residual in (True, False):
        decoder = decoders.MidiToHarmonicDecoder(
            net=nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1), output_splits=splits,
            f0_residual=f0_residual)
        inputs = midi_inputs()
        out = decoder(inputs)
        assert sorted(out) == ["amplitudes", "f0_hz", "f0_midi", "harmonic_distribution", "magnitudes"]
        x = decoder.norm(decoder.net(inputs["pitch"]))
        channel = decoder.dense_out(x)[..., :1].numpy()
        expected = channel + (inputs["pitch"] if f0_residual else 0.0)
        np.testing.assert_allclose(out["f0_midi"].numpy(), expected, atol=1e-5)
        # midi_zero_silence (the original's): exactly MIDI 0 is 0 Hz, anything else converts.
        np.testing.assert_allclose(out["f0_hz"].numpy(), np.where(
            expected == 0, 0.0, 440.0 * 2.0 ** ((expected - 69.0) / 12.0)), rtol=1e-4)


def test_midi_to_harmonic_decoder_net_decodes_a_given_z():
    """With a conditional net the z of the features conditions it (input_keys need not name it)."""
    from ddsp_models.training import nn

    decoder = decoders.MidiToHarmonicDecoder(
        net=nn.DilatedConvStack(ch=4, layers_per_stack=1, stacks=1, conditional=True),
        output_splits=(("f0_midi", 1), ("amplitudes", 1)))
    a, b = midi_inputs(z_dims=2), midi_inputs(z_dims=2)
    b["z"] = a["z"] + 1.0
    assert not np.allclose(decoder(a)["amplitudes"].numpy(), decoder(b)["amplitudes"].numpy())
    with pytest.raises(ValueError, match="f0_hz"):
        decoders.MidiToHarmonicDecoder(output_splits=(("f0_hz", 1),))
