"""MidiAutoencoder built with the original DDSP's loss arguments (qpitch_f0rec_loss,
pitch_f0rec_loss, pitch_qpitch_loss, midi_slowness_loss) adds those losses, under their
objects' names, with the values the objects compute on the quantities the original hands
them; the weighted losses of this package's formulation are then not added."""
import numpy as np
import pytest

from midi_fixtures import MIDI_ENCODER_MIXIN as MIDI_ENCODER
from midi_fixtures import midi_notes
from test_midi_autoencoder import MIDIAE, SECONDS, build


@pytest.fixture(scope="module")
def notes():
    return midi_notes(n_examples=2, seconds=SECONDS, seed=1)


def test_the_originals_loss_objects_give_the_named_losses(notes):
    model = build([MIDIAE, MIDI_ENCODER], extra=[
        "MidiAutoencoder.qpitch_f0rec_loss = @qpitch/losses.MarginLoss()",
        "qpitch/MarginLoss.weight = 50.0", "qpitch/MarginLoss.margin = 0.5",
        "qpitch/MarginLoss.name = 'q_pitch-f0_rec'",
        "MidiAutoencoder.pitch_f0rec_loss = @zpitch/losses.MarginLoss()",
        "zpitch/MarginLoss.weight = 2.0", "zpitch/MarginLoss.margin = 0.1",
        "zpitch/MarginLoss.name = 'z_pitch-f0_rec'",
        "MidiAutoencoder.pitch_qpitch_loss = @zq/losses.MarginLoss()",
        "zq/MarginLoss.weight = 3.0", "zq/MarginLoss.name = 'z_pitch-q_pitch'",
        "MidiAutoencoder.midi_slowness_loss = @losses.SlownessLoss()",
        "SlownessLoss.weight = 4.0", "SlownessLoss.name = 'slow'"])
    model(notes)
    model.midi_encoder.dense_pitch.bias.assign([np.arctanh(0.8 / model.midi_encoder.pitch_range)])
    outputs, losses = model(notes, training=False, return_losses=True)
    z, q, f0_pred = (outputs[k].numpy().astype(np.float64) for k in ("z_pitch", "q_pitch", "f0_midi_pred"))
    np.testing.assert_allclose(float(losses["q_pitch-f0_rec"]),
                               50.0 * np.mean(np.maximum(np.abs(q - f0_pred) - 0.5, 0.0)), rtol=1e-4)
    np.testing.assert_allclose(float(losses["z_pitch-f0_rec"]),
                               2.0 * np.mean(np.maximum(np.abs(z - f0_pred) - 0.1, 0.0)), rtol=1e-4)
    np.testing.assert_allclose(float(losses["z_pitch-q_pitch"]), 3.0 * np.mean(np.abs(z - q)), rtol=1e-4)
    slowness = model.midi_slowness_loss
    assert slowness.name == "slow" and slowness.weight == 4.0
    np.testing.assert_allclose(float(losses["slow"]), float(slowness(
        outputs["z_pitch"], outputs["q_pitch"], outputs["q_vel"])), rtol=1e-5)
    assert float(losses["z_pitch-f0_rec"]) > 0.0
    # The original's objects replace this package's weighted losses of the same role.
    assert not {"pitch_loss", "pitch_qt_loss", "pitch_q_loss", "slowness_loss"} & set(losses)


def test_no_midi_losses_unless_asked(notes):
    """The original's defaults (no loss objects) and this package's weights 0 (the
    constructor's defaults; the package's midiae.gin binds its own weights): none added."""
    model = build([MIDIAE], extra=["MidiAutoencoder.midi_encoder = @encoders.HarmonicToMidiEncoder()"] + [
        f"MidiAutoencoder.{weight} = 0.0"
        for weight in ("pitch_weight", "pitch_qt_weight", "pitch_q_weight", "slowness_weight")])
    _, losses = model(notes, training=False, return_losses=True)
    assert not {"pitch_loss", "pitch_qt_loss", "pitch_q_loss", "slowness_loss"} & set(losses)
    assert model.pitch_weight == 0.0
