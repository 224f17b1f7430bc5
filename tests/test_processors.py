"""Specification of Processor, ProcessorGroup and the routing processors."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import effects, processors, synths

RNG = np.random.default_rng(3)
N_FRAMES, N_SAMPLES = 20, 1600


def solo_instrument(reverb_trainable=False):
    """harmonic + filtered_noise -> add -> reverb, as in DDSP's solo-instrument models."""
    harmonic = synths.Harmonic(n_samples=N_SAMPLES)
    noise = synths.FilteredNoise(n_samples=N_SAMPLES)
    add = processors.Add()
    reverb = effects.Reverb(trainable=reverb_trainable, reverb_length=400)
    dag = [
        (harmonic, ["amps", "harmonic_distribution", "f0_hz"]),
        (noise, ["noise_magnitudes"]),
        (add, ["filtered_noise/signal", "harmonic/signal"]),
        (reverb, ["add/signal"] if reverb_trainable else ["add/signal", "ir"]),
    ]
    return processors.ProcessorGroup(dag), (harmonic, noise, add, reverb)


def solo_inputs(batch=2):
    return {
        "amps": RNG.normal(size=[batch, N_FRAMES, 1]).astype(np.float32),
        "harmonic_distribution": RNG.normal(size=[batch, N_FRAMES, 10]).astype(np.float32),
        "f0_hz": RNG.uniform(100, 600, size=[batch, N_FRAMES, 1]).astype(np.float32),
        "noise_magnitudes": RNG.normal(size=[batch, N_FRAMES, 33]).astype(np.float32),
        "ir": (RNG.normal(size=[batch, 400]) * np.exp(-np.arange(400) / 80.0)).astype(np.float32),
    }


def test_processor_group_equals_running_the_processors_by_hand():
    group, (harmonic, noise, add, reverb) = solo_instrument()
    inputs = solo_inputs()
    tf.random.set_seed(11)
    outputs = group(inputs, return_outputs_dict=True)

    tf.random.set_seed(11)
    harmonic_out = harmonic(inputs["amps"], inputs["harmonic_distribution"], inputs["f0_hz"],
                            return_outputs_dict=True)
    noise_out = noise(inputs["noise_magnitudes"], return_outputs_dict=True)
    mixed = add(noise_out["signal"], harmonic_out["signal"])
    by_hand = reverb(mixed, inputs["ir"])

    for name in ("amplitudes", "harmonic_distribution", "f0_hz"):
        np.testing.assert_allclose(outputs[f"harmonic/controls/{name}"].numpy(),
                                   harmonic_out["controls"][name].numpy())
    np.testing.assert_allclose(outputs["filtered_noise/controls/magnitudes"].numpy(),
                               noise_out["controls"]["magnitudes"].numpy())
    np.testing.assert_allclose(outputs["filtered_noise/signal"].numpy(), noise_out["signal"].numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["add/signal"].numpy(), mixed.numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["reverb/signal"].numpy(), by_hand.numpy(), atol=1e-5)
    np.testing.assert_allclose(outputs["out/signal"].numpy(), by_hand.numpy(), atol=1e-5)
    assert {"amps", "ir", "reverb/controls/ir", "add/controls/signal_one"} <= set(outputs)
    # The plain call returns the last node's signal.
    tf.random.set_seed(11)
    np.testing.assert_allclose(group(inputs).numpy(), by_hand.numpy(), atol=1e-5)


def test_processor_group_runs_in_graph_mode_with_the_same_values():
    group, (harmonic, _, _, _) = solo_instrument()
    inputs = solo_inputs()
    eager = group(inputs, return_outputs_dict=True)
    graph = tf.function(lambda x: group(x, return_outputs_dict=True))(inputs)
    np.testing.assert_allclose(graph["harmonic/signal"].numpy(), eager["harmonic/signal"].numpy(), atol=1e-5)
    # The noise draw differs between runs; the rest of the chain must agree given it.
    np.testing.assert_allclose(graph["add/signal"].numpy(),
                               (graph["harmonic/signal"] + graph["filtered_noise/signal"]).numpy(), atol=1e-6)
    np.testing.assert_allclose(graph["out/signal"].numpy(),
                               effects.Reverb()(graph["add/signal"], inputs["ir"]).numpy(), atol=1e-4)


class RecordingProcessor(processors.Processor):
    """Identity processor that records calls."""

    def __init__(self, name):
        super().__init__(name=name)
        self.calls = 0

    def get_controls(self, audio):
        self.calls += 1
        return {"audio": tf.convert_to_tensor(audio)}

    def get_signal(self, audio):
        return audio


def test_processor_group_rejects_a_missing_input_before_running_anything():
    first, second = RecordingProcessor("first"), RecordingProcessor("second")
    group = processors.ProcessorGroup([(first, ["audio"]), (second, ["frist/signal"])])
    with pytest.raises(ValueError) as error:
        group({"audio": np.zeros([1, 10], np.float32)})
    message = str(error.value)
    assert "'frist/signal'" in message and "'second'" in message
    assert "first/signal" in message and "audio" in message  # available keys are listed
    assert first.calls == 0
    # Control keys of earlier nodes are known in advance too.
    group = processors.ProcessorGroup([(first, ["audio"]), (second, ["first/controls/audio"])])
    np.testing.assert_array_equal(group({"audio": np.ones([1, 10], np.float32)}).numpy(), 1.0)
    with pytest.raises(ValueError, match="first/controls/gain"):
        processors.ProcessorGroup([(first, ["audio"]), (second, ["first/controls/gain"])])({"audio": np.ones([1, 4])})


def test_processor_group_checks_the_dag_at_construction():
    first, second = RecordingProcessor("first"), RecordingProcessor("second")
    with pytest.raises(ValueError, match="'second/signal'.*does not run before"):
        processors.ProcessorGroup([(first, ["second/signal"]), (second, ["audio"])])
    with pytest.raises(ValueError, match="unique name"):
        processors.ProcessorGroup([(first, ["audio"]), (first, ["first/signal"])])
    with pytest.raises(ValueError, match="processor"):
        processors.ProcessorGroup([(first,)])
    with pytest.raises(ValueError, match="'first'.*keyword processors"):
        processors.ProcessorGroup([("first", ["audio"])])
    with pytest.raises(TypeError, match="not a Processor"):
        processors.ProcessorGroup([(tf.keras.layers.Dense(2), ["audio"])])
    # As in the original, nodes may name processors passed as keyword arguments.
    group = processors.ProcessorGroup([("first", ["audio"]), ("second", ["first/signal"])], first=first,
                                      second=second, name="by_name")
    assert group.name == "by_name" and group.processors == [first, second]
    np.testing.assert_array_equal(group({"audio": np.full([1, 3], 5.0, np.float32)}).numpy(), 5.0)
    # Dict nodes, 3-element nodes, nested inputs and 'inputs/' keys are accepted.
    group = processors.ProcessorGroup([{"processor": first, "inputs": ["inputs/sound/dry"]},
                                       (second, ["first/signal"], ["ignored"])])
    np.testing.assert_array_equal(group({"sound": {"dry": np.full([1, 3], 2.0, np.float32)}}).numpy(), 2.0)


def test_processor_group_tracks_and_restores_processor_weights(tmp_path):
    group, (_, _, _, reverb) = solo_instrument(reverb_trainable=True)
    inputs = solo_inputs()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(group(inputs) ** 2)
    assert [v.path for v in group.trainable_variables] == ["reverb/ir"]
    (grad,) = tape.gradient(loss, group.trainable_variables)
    assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0
    reverb.ir.assign(RNG.normal(size=[400]).astype(np.float32))
    path = tf.train.Checkpoint(group=group).write(str(tmp_path / "group"))
    restored, _ = solo_instrument(reverb_trainable=True)
    restored(inputs)
    tf.train.Checkpoint(group=restored).read(path).assert_consumed()
    np.testing.assert_array_equal(restored.trainable_variables[0].numpy(), reverb.ir.numpy())


def test_processor_returns_controls_and_signal_dict():
    harmonic = synths.Harmonic(n_samples=N_SAMPLES)
    inputs = solo_inputs()
    outputs = harmonic(inputs["amps"], inputs["harmonic_distribution"], inputs["f0_hz"], return_outputs_dict=True)
    assert set(outputs) == {"signal", "controls"}  # the original's layout
    assert set(outputs["controls"]) == {"amplitudes", "harmonic_distribution", "f0_hz"}
    signal = harmonic.get_signal(**harmonic.get_controls(inputs["amps"], inputs["harmonic_distribution"],
                                                         inputs["f0_hz"]))
    np.testing.assert_allclose(outputs["signal"].numpy(), signal.numpy(), atol=1e-6)
    np.testing.assert_allclose(harmonic(inputs["amps"], inputs["harmonic_distribution"], inputs["f0_hz"],
                                        training=True).numpy(), signal.numpy(), atol=1e-6)


# ---------------------------------------------------------------------- routing processors
def test_add_sums_and_rejects_mismatched_lengths():
    one, two = RNG.normal(size=[2, 50]).astype(np.float32), RNG.normal(size=[2, 50]).astype(np.float32)
    np.testing.assert_allclose(processors.Add()(one, two).numpy(), one + two, atol=1e-6)
    with pytest.raises(ValueError, match="signal_two"):
        processors.Add()(one, two[:, :40])


def test_mix_gains_follow_the_original_curves_or_a_constant_power_crossfade():
    one, two = np.ones([1, 100], np.float32), -np.ones([1, 100], np.float32)
    level = lambda logit: np.full([1, 5, 1], logit, np.float32)  # noqa: E731
    # The original: sqrt(m) * one + (1 - sqrt(1 - m)) * two, both gains rising with m.
    mix = processors.Mix()
    np.testing.assert_allclose(mix(one, 2 * two, level(30.0)).numpy(), -1.0, atol=1e-6)  # m = 1: 1 and 1
    np.testing.assert_allclose(mix(one, two, level(-30.0)).numpy(), 0.0, atol=1e-6)  # m = 0: 0 and 0
    halfway = mix(one, 3 * one, level(0.0)).numpy()
    np.testing.assert_allclose(halfway, np.sqrt(0.5) + 3 * (1 - np.sqrt(0.5)), atol=1e-6)
    # constant_power: sqrt(m) and sqrt(1 - m).
    crossfade = processors.Mix(constant_power=True)
    np.testing.assert_allclose(crossfade(one, two, level(30.0)).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(crossfade(one, two, level(-30.0)).numpy(), -1.0, atol=1e-6)
    np.testing.assert_allclose(crossfade(one, one, level(0.0)).numpy(), 2 * np.sqrt(0.5), atol=1e-6)
    # Signals with a channel axis keep it (the original's layout).
    assert mix(one[..., None], two[..., None], level(0.0)).shape == (1, 100, 1)
    # Mix level ramps along time at audio rate.
    ramp = crossfade(one, 0 * two, np.array([[[-30.0], [30.0]]], np.float32), return_outputs_dict=True)
    assert ramp["controls"]["mix_level"].shape == (1, 100, 1)
    assert np.all(np.diff(ramp["signal"].numpy()[0]) >= 0)
    logits = tf.Variable(np.full([1, 5, 1], 100.0, np.float32))  # saturated sigmoid
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(mix(one, two, logits))
    assert np.all(np.isfinite(tape.gradient(out, logits).numpy()))
    with pytest.raises(ValueError, match="nn_out_mix_level"):
        mix(one, two, np.zeros([1, 5, 2], np.float32))


def test_crop_removes_the_padding_of_framing():
    audio = np.arange(24, dtype=np.float32)[np.newaxis]
    # The original: 2 * (frame_size // 2) samples, from the back by default.
    np.testing.assert_array_equal(processors.Crop(7)(audio).numpy(), audio[:, :-6])
    np.testing.assert_array_equal(processors.Crop(7, "front")(audio).numpy(), audio[:, 6:])
    np.testing.assert_array_equal(processors.Crop(7, "center")(audio).numpy(), audio[:, 3:-3])
    # With frame_rate: the frame_size - hop samples beyond the hop grid (frame_size 10 at
    # 2 frames/s with sample_rate 8 -> hop 4, 6 extra samples).
    np.testing.assert_array_equal(processors.Crop(10, "front", frame_rate=2, sample_rate=8)(audio).numpy(),
                                  audio[:, 6:])
    np.testing.assert_array_equal(processors.Crop(10, "center", frame_rate=2, sample_rate=8)(audio).numpy(),
                                  audio[:, 3:-3])
    with pytest.raises(ValueError, match="crop_location"):
        processors.Crop(10, "middle")
