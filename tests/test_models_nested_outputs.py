"""Model outputs read the original DDSP's nested way too: `outputs['harmonic']['signal']`,
`outputs['harmonic']['controls']['amplitudes']`, `outputs['out']['signal']`, ... are the
very tensors of this package's flat keys ('harmonic/signal', ...), in plain dicts (so the
outputs still pass through Keras layers and `tf.function`)."""
import keras
import numpy as np
import tensorflow as tf

from inverse_fixtures import synthetic_notes, tiny_model
from midi_fixtures import make_midi_model, midi_notes, midi_shrink_bindings
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SECONDS = 0.256


def assert_same(nested, flat, name):
    assert type(nested) is not dict, name  # a tensor, not a dict
    np.testing.assert_array_equal(np.asarray(nested), np.asarray(flat), err_msg=name)


def assert_nodes(outputs, flat_prefix, nested, nodes):
    """Each node's signal and controls at its nested path equal the flat keys'."""
    for node in nodes:
        assert type(nested[node]) is dict and set(nested[node]) == {"signal", "controls"}
        assert_same(nested[node]["signal"], outputs[f"{flat_prefix}{node}/signal"], node)
        controls = {k.split("/controls/", 1)[1] for k in outputs if k.startswith(f"{flat_prefix}{node}/controls/")}
        assert set(nested[node]["controls"]) == controls, node
        for control in controls:
            assert_same(nested[node]["controls"][control], outputs[f"{flat_prefix}{node}/controls/{control}"],
                        f"{node}/{control}")
    assert nested["out"] is nested[nodes[-1]]  # the last node, as the original's DAG aliases it


def test_autoencoder_outputs_nested_as_the_original():
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))
    batch = harmonic_notes(n_examples=2, seconds=SECONDS, seed=2)
    outputs = model(batch)
    assert_nodes(outputs, "", outputs, ["harmonic", "filtered_noise", "add", "reverb"])
    assert_same(outputs["out"]["signal"], outputs["audio_synth"], "out/signal")
    assert outputs["harmonic"]["controls"]["amplitudes"].shape == (2, 64, 1)
    # 'inputs': the processor group's input dict (the features and decoder controls).
    assert {"f0_hz", "amps", "harmonic_distribution", "noise_magnitudes", "audio"} <= set(outputs["inputs"])
    assert_same(outputs["inputs"]["amps"], outputs["amps"], "inputs/amps")
    # Plain nested dicts: tf.nest / tf.function handle them as any structure.
    traced = tf.function(lambda features: model(features)["harmonic"]["controls"]["amplitudes"])(batch)
    np.testing.assert_allclose(traced, outputs["harmonic/controls/amplitudes"], rtol=1e-5, atol=1e-7)
    assert len(tf.nest.flatten(outputs)) > len([v for v in outputs.values() if not isinstance(v, dict)])


def test_midi_autoencoders_outputs_nested_as_the_original():
    notes = midi_notes(n_examples=2, seconds=SECONDS, seed=1)
    for gin_file in ("models/midiae/midiae.gin", "models/midiae/z_midiae.gin"):
        keras.utils.set_random_seed(0)
        model = make_midi_model([gin_file], midi_shrink_bindings(SECONDS))
        outputs = model(notes)
        nodes = ["harmonic", "filtered_noise", "add", "reverb"]
        assert_nodes(outputs, "", outputs["synth_params"], nodes)
        assert_nodes(outputs, "midi/", outputs["midi_synth_params"], nodes)
        assert_nodes(outputs, "", outputs, nodes)  # the synthcoder pass at the top, as the original
        assert_same(outputs["synth_params"]["out"]["signal"], outputs["synth_audio"], gin_file)
        assert_same(outputs["midi_synth_params"]["out"]["signal"], outputs["midi_audio"], gin_file)
        # The original's MidiAutoencoder.extract_harm_controls path.
        np.testing.assert_allclose(
            outputs["amps"], model.scaled_controls(outputs)[0].numpy(), rtol=1e-6)
        assert_same(outputs["midi_synth_params"]["harmonic"]["controls"]["harmonic_distribution"],
                    outputs["midi/harmonic/controls/harmonic_distribution"], gin_file)


def test_inverse_synthesis_outputs_nested_as_the_original():
    tf.random.set_seed(0)
    model = tiny_model(reverb=True)
    notes = synthetic_notes(batch_size=2)
    outputs = model({"audio": notes["audio"]})
    assert_nodes(outputs, "", outputs, ["sinusoidal", "filtered_noise", "add", "reverb"])
    assert_same(outputs["out"]["signal"], outputs["sin_audio"], "out/signal")
    assert_same(outputs["sinusoidal"]["controls"]["frequencies"], outputs["sin_freqs"], "frequencies")
    assert_same(outputs["filtered_noise"]["controls"]["magnitudes"], outputs["noise_magnitudes"], "noise")
    # The original's other names of the same tensors.
    for original, ours in (("audio", None), ("amplitudes", "sin_amps"), ("frequencies", "sin_freqs"),
                           ("harm_freqs", "harm_sin_freqs"), ("harm_amps", "harm_sin_amps")):
        assert_same(outputs[original], notes["audio"] if ours is None else outputs[ours], original)
    assert set(outputs["inputs"]) == {"amplitudes", "frequencies", "noise_magnitudes"}
    # Zipped: as the original, the real part's tensors (no nested views), each part's too.
    zipped = model((notes, {"audio": notes["audio"][:1]}))
    assert zipped["sin_audio"].shape[0] == 1 and zipped["synthetic/sin_audio"].shape[0] == 2
    assert_same(zipped["sinusoidal/signal"], zipped["real/sinusoidal/signal"], "real part")
    assert not any(isinstance(v, dict) for v in zipped.values())
