"""An original DDSP ZMidiAutoencoder folder: it loads, restores every weight and computes
the original's latents, controls, signals and losses.

tests/data/golden/upstream_models/z_midiae/ was trained for 3 steps by the original DDSP
3.7.0 (scripts/golden/record_upstream_zmidiae.py, in its own TF 2.15 / Keras 2
environment) from the original repository's models/midiae/z_midiae.gin, shrunk; both priors
bound to `losses.GaussianPrior` with fixed noise seeds (3.7.0 ships no prior class, and its
model cannot run a note encoder without one). `golden.npz` holds what it computed for a
fixed feature batch.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import compat
from ddsp_models.training import midi, nn

FOLDER = os.path.join(os.path.dirname(__file__), "data", "golden", "upstream_models", "z_midiae")
ATOL = 2e-6  # float32: the original's and this package's kernels order sums differently


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(os.path.join(FOLDER, "golden.npz")))


@pytest.fixture(scope="module")
def features(golden):
    batch = {k.split("/", 1)[1]: tf.constant(v) for k, v in golden.items() if k.startswith("input/")}
    batch["note_active_frame_indices"] = tf.cast(batch["note_active_velocities"] > 0.0, tf.float32)
    return batch


@pytest.fixture(scope="module")
def model(features):
    return compat.load_upstream_model(FOLDER, example_batch=features)


@pytest.fixture(scope="module")
def outputs(model, features):
    return model(dict(features), training=False)


def close(ours, theirs, atol=ATOL, rtol=1e-6, name=""):
    ours = ours.numpy() if hasattr(ours, "numpy") else np.asarray(ours)
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=name)


def test_every_variable_is_restored_from_the_original_checkpoint(model):
    pairs = compat.map_variables(model, FOLDER)
    assert len(pairs) == len(model.weights)
    reader = tf.train.load_checkpoint(os.path.join(FOLDER, "ckpt-3"))
    stored = {k for k in reader.get_variable_to_shape_map() if k.startswith("model/")}
    assert {theirs + "/.ATTRIBUTES/VARIABLE_VALUE" for _, _, theirs, _ in pairs} == stored
    # Two instrument embeddings (synthcoder and global latents), 3 instruments x 4 dims each.
    embeddings = [p for p in pairs if "embedding" in p[2]]
    assert len(embeddings) == 2 and all(p[1].shape == (3, 4) for p in embeddings)
    # The original's arguments, the original's behaviour: its prior objects, none of ours.
    assert not model.global_prior and not model.note_prior
    assert isinstance(model.z_global_prior, midi.GaussianPrior) and model.z_note_prior.seed == 12


def test_synthcoder_latent_is_the_originals(model, features, golden):
    """Instrument embedding (tiled over time: skip_expand=False) + MFCC-GRU features."""
    z = model.encode(dict(features), training=False)["z"]
    close(z, golden["z/synth"], atol=1e-5, rtol=1e-5, name="z/synth")  # MFCCs of 4 s of audio
    assert np.ptp(golden["z/synth"][0, :, :4], axis=0).max() == 0.0  # the embedding: constant


def test_global_and_note_latents_before_the_priors_are_the_originals(model, outputs, golden):
    """Global: the embedding and the time-pooled expression, per frame and concatenated as
    they are (no averaging, no tiling of ours); notes: `nn.pool_over_notes` (mean, std) over
    the regions of `nn.get_note_mask(q_pitch)`."""
    z_global = tf.concat([model.per_frame(e(outputs), 250) for e in model.z_global_encoders], -1)
    close(z_global, golden["z/global"], name="z/global")
    np.testing.assert_array_equal(outputs["note_mask"].numpy(), golden["z/note_mask"])
    assert 1.0 < golden["z/note_mask"].sum(axis=(1, 2)).min()  # notes exist
    frames = model.z_note_encoder(outputs)
    close(frames, golden["z/note_frames"], name="z/note_frames")
    mean, std = nn.pool_over_notes(frames, outputs["note_mask"])
    close(mean, golden["z/note_mean"], name="note mean")
    close(std, golden["z/note_std"], atol=1e-5, name="note std")
    assert np.abs(golden["z/note_std"]).max() > 0.0


def test_sampled_latents_with_the_same_noise_and_the_midi_decoders_latent(outputs, golden):
    close(outputs["z_global"], golden["outputs/z_global"], atol=1e-5, rtol=1e-5, name="z_global")
    close(outputs["z_notes"], golden["outputs/z_notes"], atol=1e-5, rtol=1e-5, name="z_notes")
    close(outputs["z_midi"], golden["z/midi_decoder"], atol=1e-5, rtol=1e-5, name="z_midi")
    # Sampled: the global latent differs from its mean half, the same noise on every call.
    assert np.abs(golden["outputs/z_global"] - golden["z/global"][..., :5]).max() > 0.01


def test_controls_and_harmonic_signals_are_the_originals(outputs, golden):
    np.testing.assert_array_equal(outputs["q_pitch"].numpy(), golden["outputs/q_pitch"])
    np.testing.assert_array_equal(outputs["q_vel"].numpy(), golden["outputs/q_vel"])
    close(outputs["f0_midi_pred"], golden["outputs/f0_midi_pred"], atol=1e-5, rtol=1e-5, name="f0_midi_pred")
    for key, theirs in (("hd", "synth"), ("hd_pred", "midi")):
        close(outputs[key], golden[f"{theirs}/harmonic/harmonic_distribution"], atol=1e-6, rtol=1e-5, name=key)
    for key in ("amps", "noise", "amps_pred", "noise_pred"):  # dB
        close(outputs[key], golden[f"outputs/{key}"], atol=5e-5, rtol=1e-5, name=key)
    for branch, prefix in (("synth", ""), ("midi", "midi/")):
        for key in ("amplitudes", "harmonic_distribution", "f0_hz"):
            close(outputs[f"{prefix}harmonic/controls/{key}"], golden[f"{branch}/harmonic/{key}"],
                  atol=1e-6, rtol=1e-5, name=f"{branch} {key}")
        close(outputs[f"{prefix}filtered_noise/controls/magnitudes"], golden[f"{branch}/filtered_noise/magnitudes"],
              atol=1e-7, rtol=1e-5, name=f"{branch} noise")
    # The synthcoder branch hears the original's f0 exactly (measured 3e-7). The MIDI branch's
    # f0 differs by float32 round-off (measured 9.2e-5 Hz): over 64000 samples and 12
    # harmonics the phases drift (measured 1.2e-3 on a signal of magnitude 0.33).
    for branch, prefix, atol in (("synth", "", 1e-6), ("midi", "midi/", 2e-3)):
        close(outputs[f"{prefix}harmonic/signal"].numpy()[:, ::16], golden[f"{branch}/harmonic/signal_every_16th"],
              atol=atol, name=f"{branch} signal")


def test_the_originals_pianoroll_function(model, outputs, golden):
    roll = model.midi_to_pianoroll(outputs["q_pitch"], outputs["q_vel"])
    np.testing.assert_array_equal(roll.numpy(), golden["outputs/pianoroll"])
    silent = golden["outputs/q_pitch"][..., 0] == 0.0
    assert silent.any() and np.all(golden["outputs/pianoroll"][..., 0][silent] == 1.0)


def test_losses_are_the_originals(model, features, golden):
    """Parameter losses and both priors' KL losses equal the original's; the spectral loss
    hears random noise and reverb, so the total is checked without it."""
    _, losses = model(dict(features), training=True, return_losses=True)
    theirs = {k.split("/", 1)[1]: float(v) for k, v in golden.items() if k.startswith("losses/")}
    exact = {"f0_reconstruction", "amplitude_reconstruction", "harmonic_distribution_reconstruction",
             "noise_reconstruction", "global_kl", "note_kl"}
    assert set(losses) == set(theirs) == exact | {"spectral_loss_synth", "total_loss"}
    for key in exact:
        np.testing.assert_allclose(float(losses[key]), theirs[key], rtol=2e-5, err_msg=key)
    np.testing.assert_allclose(float(losses["total_loss"]) - float(losses["spectral_loss_synth"]),
                               theirs["total_loss"] - theirs["spectral_loss_synth"], rtol=2e-5)
