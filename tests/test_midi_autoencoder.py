"""MidiAutoencoder / ZMidiAutoencoder: configs build, MIDI branches, learning, quantiser
gradients, priors, and warm start from a solo_instrument Autoencoder."""
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import midi, models
from ddsp_models.training.trainer import Trainer
from midi_fixtures import MIDI_ENCODER_MIXIN, make_midi_model, midi_notes, midi_shrink_bindings
from model_fixtures import make_model, shrink_bindings

SECONDS = 0.256  # 64 frames, 4096 samples
MIDIAE = "models/midiae/midiae.gin"
Z_MIDIAE = "models/midiae/z_midiae.gin"
WARM_START = "models/midiae/warm_start_from_solo_instrument.gin"


def build(files, seed=0, extra=()):
    keras.utils.set_random_seed(seed)
    return make_midi_model(files, midi_shrink_bindings(SECONDS) + list(extra))


@pytest.fixture(scope="module")
def notes():
    return midi_notes(n_examples=2, seconds=SECONDS, seed=1)


@pytest.mark.parametrize("files, model_class", [
    ([MIDIAE], models.MidiAutoencoder),
    ([MIDIAE, MIDI_ENCODER_MIXIN], models.MidiAutoencoder),
    ([Z_MIDIAE], models.ZMidiAutoencoder),
    ([Z_MIDIAE, MIDI_ENCODER_MIXIN], models.ZMidiAutoencoder),
])
def test_configs_build_and_return_audio_of_the_input_shape(files, model_class, notes):
    model = build(files)
    assert type(model) is model_class
    outputs, losses = model(notes, return_losses=True)
    audio = model.get_audio_from_outputs(outputs)
    assert audio.shape == notes["audio"].shape
    np.testing.assert_array_equal(audio.numpy(), outputs["midi_audio"].numpy())
    for key in ("synth_audio", "midi_audio"):
        assert np.all(np.isfinite(outputs[key].numpy())) and float(tf.reduce_max(tf.abs(outputs[key]))) > 0.0
    assert "reverb/signal" in outputs  # the configs add the trainable reverb
    for key in ("q_pitch", "q_vel", "z_pitch", "f0_midi_pred", "f0_hz_pred", "amps", "amps_pred",
                "f0_loss_weights"):
        assert outputs[key].shape == (2, 64, 1), key
    assert outputs["hd"].shape == outputs["hd_pred"].shape == (2, 64, 60)
    assert outputs["noise"].shape == outputs["noise_pred"].shape == (2, 64, 65)
    assert outputs["pianoroll"].shape == (2, 64, 128)
    # f0_hz_pred is f0_midi_pred in Hz; f0_midi_pred is the pitch plus the decoder's
    # (unbounded, as in the original) residual.
    np.testing.assert_allclose(outputs["f0_hz_pred"].numpy(),
                               440.0 * 2 ** ((outputs["f0_midi_pred"].numpy() - 69) / 12), rtol=1e-4)
    np.testing.assert_allclose(outputs["f0_midi_pred"].numpy() - outputs["q_pitch"].numpy(),
                               outputs["midi_decoder/f0_midi"].numpy() - outputs["q_pitch"].numpy())
    # MIDI is integer; the roll holds the velocity at the pitch.
    q_pitch, q_vel = outputs["q_pitch"].numpy(), outputs["q_vel"].numpy()
    np.testing.assert_array_equal(q_pitch, np.round(q_pitch))
    np.testing.assert_array_equal(q_vel, np.round(q_vel))
    np.testing.assert_array_equal(outputs["pianoroll"].numpy(),
                                  midi.velocity_pianoroll(q_pitch, q_vel).numpy())
    expected = {"spectral_loss", "midi_spectral_loss", "f0_loss", "amps_loss", "hd_loss", "noise_loss",
                "total_loss"}
    if MIDI_ENCODER_MIXIN in files:
        expected |= {"pitch_loss", "pitch_qt_loss", "pitch_q_loss", "slowness_loss"}
    if model_class is models.ZMidiAutoencoder:
        expected |= {"kl_global_loss", "kl_note_loss"}
        assert outputs["z_midi"].shape == (2, 64, 8)
    assert set(losses) == expected
    assert float(losses["total_loss"]) == pytest.approx(sum(float(v) for k, v in losses.items()
                                                            if k != "total_loss"), rel=1e-5)


def test_ground_truth_midi_comes_from_the_note_features(notes):
    model = build([MIDIAE])
    outputs = model(notes)
    roll = notes["note_active_velocities"] * notes["note_active_frame_indices"]
    np.testing.assert_array_equal(outputs["pianoroll"].numpy(), roll)
    pitch, velocity = model.pianoroll_to_midi(roll)
    np.testing.assert_array_equal(outputs["q_pitch"].numpy(), pitch.numpy())
    np.testing.assert_array_equal(midi.velocity_pianoroll(pitch, velocity).numpy(), roll)
    np.testing.assert_array_equal(outputs["q_pitch"].numpy()[:, 0, 0], notes["pitches"][:, 0])
    # The package's configs hold the decoder's pitch through the gaps (the last note's), so
    # the f0 loss covers the gaps too, where the fixture's f0 rings on at that pitch.
    sounding = roll.max(-1) > 0
    assert np.any(~sounding)
    np.testing.assert_array_equal(outputs["decoder_pitch"].numpy()[..., 0],
                                  np_held_pitch(pitch.numpy()[..., 0]))
    np.testing.assert_array_equal(outputs["f0_loss_weights"].numpy(), 1.0)
    # The original's: pitch 0 in the gaps, so the f0 loss is off there.
    original = build([MIDIAE], extra=["MidiAutoencoder.hold_pitch = False"])(notes)
    np.testing.assert_array_equal(original["decoder_pitch"].numpy(), original["q_pitch"].numpy())
    weights = original["f0_loss_weights"].numpy()[..., 0]
    assert np.all(weights[sounding] == 1.0) and np.all(weights[~sounding] == 0.0)
    without = {k: v for k, v in notes.items() if k != "note_active_velocities"}
    with pytest.raises(ValueError, match="note_active_velocities"):
        model(without)


def test_encoded_midi_tracks_f0_and_the_quantiser_passes_gradients(notes):
    model = build([MIDIAE, MIDI_ENCODER_MIXIN])
    with tf.GradientTape() as tape:
        outputs, losses = model(notes, training=True, return_losses=True)
        # midi_audio reaches the midi_encoder only through q_pitch / q_vel (straight through).
        loss = losses["midi_spectral_loss"]
    z_pitch, f0_midi = outputs["z_pitch"].numpy(), outputs["f0_midi"].numpy()
    assert np.all(np.abs(z_pitch - f0_midi) <= 2.0 + 1e-4)
    np.testing.assert_array_equal(outputs["q_pitch"].numpy(), np.round(z_pitch))
    grads = tape.gradient(loss, model.midi_encoder.trainable_variables)
    assert all(g is not None for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0.0


def _train(model, batch, steps, learning_rate=3e-3):
    trainer = Trainer(model, learning_rate=learning_rate, lr_decay_steps=10000, grad_clip_norm=3.0)
    trainer.build(batch)
    return [float(trainer.train_step(batch)["total_loss"]) for _ in range(steps)]


@pytest.mark.parametrize("files", [[MIDIAE], [MIDIAE, MIDI_ENCODER_MIXIN], [Z_MIDIAE, MIDI_ENCODER_MIXIN]],
                         ids=["ground_truth_midi", "encoded_midi", "encoded_midi_z"])
def test_training_steps_lower_the_total_loss(files, notes):
    model = build(files, extra=["MidiAutoencoder.reverb = False", "ZMidiAutoencoder.reverb = False"])
    losses = _train(model, notes, steps=12, learning_rate=3e-2)
    assert np.all(np.isfinite(losses))
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < 0.8 * first, f"total loss {first:.3f} -> {last:.3f}"


def test_global_prior_kl_is_zero_for_a_standard_normal_posterior(notes):
    model = build([Z_MIDIAE])
    model(notes)  # build
    embedding = model.z_global_encoder_0.embedding.embeddings
    embedding.assign(tf.zeros_like(embedding))  # mean 0, log-variance 0 for every instrument
    outputs, losses = model(notes, training=False, return_losses=True)
    assert float(losses["kl_global_loss"]) == 0.0
    np.testing.assert_array_equal(outputs["z_global"].numpy(), np.zeros([2, 2]))  # the mean
    embedding.assign(tf.ones_like(embedding))
    _, losses = model(notes, training=False, return_losses=True)
    # Mean 1, log-variance 1 in each of 2 dims: KL = 2 * 0.5 (1 + e - 1 - 1) = e - 1, times kl_weight.
    assert float(losses["kl_global_loss"]) == pytest.approx(1e-3 * (np.e - 1.0), rel=1e-4)
    assert float(losses["kl_note_loss"]) > 0.0


def test_warm_start_synthcoder_reproduces_the_solo_instrument_decoder(notes, tmp_path):
    keras.utils.set_random_seed(0)
    autoencoder = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))
    autoencoder(notes)
    for variable in autoencoder.trainable_variables:  # a "trained" checkpoint, away from init
        variable.assign(variable + 0.05 * tf.random.normal(variable.shape, seed=3))
    tf.train.Checkpoint(model=autoencoder).save(str(tmp_path / "ckpt"))
    expected = autoencoder(notes)

    model = build([WARM_START], seed=1)
    assert gin.query_parameter("Trainer.restore_keys") == ["synthcoder=decoder"]
    trainer = Trainer(model)  # restore_keys from the config
    trainer.build(notes)
    before = model(notes)
    assert not np.allclose(before["synthcoder/amps"].numpy(), expected["amps"].numpy())
    trainer.restore(tmp_path)
    outputs = model(notes)
    for key in ("amps", "harmonic_distribution", "noise_magnitudes"):
        np.testing.assert_array_equal(outputs[f"synthcoder/{key}"].numpy(), expected[key].numpy())
    for mine, theirs in zip(model.synthcoder.weights, autoencoder.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    # The harmonic part of the synth audio is the autoencoder's (before its reverb).
    np.testing.assert_allclose(outputs["harmonic/signal"].numpy(), expected["harmonic/signal"].numpy(),
                               atol=1e-6)


def test_required_parts_raise(notes):
    model = build([MIDIAE])
    with pytest.raises(ValueError, match="synthcoder"):
        models.MidiAutoencoder(synthcoder=None, midi_decoder=model.midi_decoder)
    with pytest.raises(ValueError, match="midi_decoder"):
        models.MidiAutoencoder(synthcoder=model.synthcoder, midi_decoder=None)


@pytest.mark.parametrize("pitch_mode", ["residual", "logits"])
def test_midi_encoder_quantises_pitch_with_straight_through_gradients(pitch_mode):
    from ddsp_models.training.encoders import HarmonicToMidiEncoder

    keras.utils.set_random_seed(0)
    encoder = HarmonicToMidiEncoder(rnn_channels=4, ch=4, layers_per_stack=1, pitch_mode=pitch_mode)
    rng = np.random.default_rng(0)
    features = {"f0_midi": tf.constant(rng.uniform(50, 70, [2, 16, 1]), tf.float32),
                "amps": tf.constant(rng.uniform(0, 1, [2, 16, 1]), tf.float32),
                "hd": tf.constant(rng.uniform(0, 1, [2, 16, 6]), tf.float32),
                "noise": tf.constant(rng.uniform(0, 1, [2, 16, 5]), tf.float32)}
    weights = tf.constant(rng.normal(size=[2, 16, 1]), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features["amps"])
        outputs = encoder(features)
        loss = tf.reduce_sum(weights * outputs["q_pitch"])
    q_pitch = outputs["q_pitch"].numpy()
    np.testing.assert_array_equal(q_pitch, np.round(q_pitch))
    np.testing.assert_array_equal(outputs["q_vel"].numpy(), np.round(outputs["q_vel"].numpy()))
    if pitch_mode == "residual":
        np.testing.assert_array_equal(q_pitch, np.round(outputs["z_pitch"].numpy()))
        assert np.all(np.abs(outputs["z_pitch"].numpy() - features["f0_midi"].numpy()) <= 2.0 + 1e-4)
    else:
        assert outputs["pitch_logits"].shape == (2, 16, 128)
        np.testing.assert_array_equal(q_pitch[..., 0], np.argmax(outputs["pitch_logits"].numpy(), -1))
    # The gradient passes the quantiser to its input and to the weights before it.
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, features["amps"])))) > 0.0
    grads = tape.gradient(loss, encoder.trainable_variables)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads if g is not None) > 0.0


def _detuned(notes, semitones):
    """The notes with their f0 track `semitones` above the note pitch (a player who plays
    sharp): the MIDI decoder has to learn that offset as its f0 residual."""
    return {**notes, "f0_hz": notes["f0_hz"] * np.float32(2.0 ** (semitones / 12.0))}


@pytest.mark.parametrize("residual_range", [None, 2.0], ids=["unbounded", "tanh_bounded"])
def test_midi_decoder_f0_moves_to_the_target_f0_and_the_residual_is_not_pinned(notes, residual_range):
    offset = 0.4  # semitones
    batch = _detuned(notes, offset)
    model = build([MIDIAE], extra=["MidiAutoencoder.reverb = False",
                                   f"MidiToHarmonicDecoder.f0_residual_range = {residual_range}"])

    def residual_error():
        outputs = model(batch)
        weights = outputs["f0_loss_weights"].numpy()[..., 0] * (outputs["q_vel"].numpy()[..., 0] > 0)
        f0_midi_pred = np.asarray(outputs["f0_midi_pred"])[..., 0]
        residual = (f0_midi_pred - np.asarray(outputs["q_pitch"])[..., 0])[weights > 0]
        error = np.abs(f0_midi_pred - np.asarray(outputs["f0_midi"])[..., 0])[weights > 0]
        return residual, float(np.mean(error))

    residual, error_before = residual_error()
    assert residual.size > 50  # masked-in note frames
    _train(model, batch, steps=40, learning_rate=1e-2)
    residual, error_after = residual_error()
    # Before the fix the error grew (0.15 -> 0.35, 0.23 -> 1.16 semitones); now it falls to
    # about 0.06-0.12 semitones, a floor set by the frames around note changes.
    assert error_after < min(0.6 * error_before, 0.15), \
        f"f0 error {error_before:.3f} -> {error_after:.3f} semitones"
    assert abs(float(np.median(residual)) - offset) < 0.15, np.median(residual)
    if residual_range is not None:  # not saturated at either bound of the tanh
        assert np.max(np.abs(residual)) < 0.8 * residual_range


@pytest.mark.parametrize("audio_gradient", [False, True])
def test_only_the_f0_loss_trains_the_midi_decoder_f0_unless_asked(notes, audio_gradient):
    """The spectral loss's gradient through a harmonic oscillator's phase dwarfs the f0
    loss's (and drove the f0 residual to its bound): off by default."""
    model = build([MIDIAE], extra=["MidiAutoencoder.reverb = False",
                                   f"MidiAutoencoder.f0_audio_gradient = {audio_gradient}"])
    model(notes)
    with tf.GradientTape() as tape:
        outputs, losses = model(notes, return_losses=True)
    gradient = tape.gradient(losses["midi_spectral_loss"], outputs["midi_decoder/f0_midi"])
    magnitude = 0.0 if gradient is None else float(tf.reduce_max(tf.abs(gradient)))
    if audio_gradient:
        assert magnitude > 1e-3
    else:
        assert magnitude == 0.0


# ----------------------------------------------------------------- loss values, closed forms
def np_midi(hz):
    """Hz -> MIDI in numpy (0 Hz -> 0)."""
    hz = np.asarray(hz, np.float64)
    return np.where(hz > 0, 12.0 * np.log2(np.maximum(hz, 1e-5) / 440.0) + 69.0, 0.0)


def np_note_mask(pitch, max_notes):
    """`[batch, n_frames]` quantised pitch (0 = silence) -> `[batch, n_frames, max_notes]`:
    a note is a run of frames of one pitch; silence or a new pitch ends it."""
    mask = np.zeros(pitch.shape + (max_notes,))
    for i, row in enumerate(pitch):
        note, previous = -1, 0.0
        for t, p in enumerate(row):
            if p > 0 and p != previous:
                note += 1
            if p > 0 and note < max_notes:
                mask[i, t, note] = 1.0
            previous = p
    return mask


def np_note_means(x, mask):
    """Mean of `x` `[b, t, c]` over each note's frames -> `[b, notes, c]` (0 for no note)."""
    lengths = mask.sum(1)[..., None]
    return np.einsum("btn,btc->bnc", mask, x) / np.maximum(lengths, 1.0)


def np_kl(mean, log_var):
    return 0.5 * (mean ** 2 + np.exp(log_var) - 1.0 - log_var)


def loss_objects(model):
    """{name: (loss object, input keys)} of the model's LossGroup."""
    (group,) = model.loss_objs
    return {loss.name: (loss, keys) for loss, keys in group.losses_and_keys}


def ground_truth_pitch(features):
    """Pitch of the sounding note per frame (0 in silence), from the note features."""
    roll = features["note_active_velocities"] * (features["note_active_frame_indices"] > 0)
    return np.where(roll.max(-1) > 0, roll.argmax(-1), 0).astype(np.float64)


def np_held_pitch(pitch, sounding=None):
    """`[batch, n_frames]` pitch with each silent frame (`sounding` False; default: pitch 0)
    given the pitch of the last sounding frame (the first one's before it)."""
    held = np.array(pitch, np.float64)
    sounding = held > 0 if sounding is None else np.asarray(sounding)
    for example, on in zip(held, sounding):
        notes = np.flatnonzero(on)
        for t in np.flatnonzero(~on):
            before = notes[notes < t]
            example[t] = example[before[-1] if before.size else notes[0]] if notes.size else 0.0
    return held


def check_param_losses(model, outputs, losses, f0_midi, q_pitch):
    """f0 (masked where the note is off pitch), amps, hd and noise losses, recomputed."""
    objs = loss_objects(model)
    mask = (np.abs(f0_midi - q_pitch) < model.f0_mask_semitones).astype(np.float64)
    np.testing.assert_array_equal(outputs["f0_loss_weights"].numpy()[..., 0], mask)
    f0_loss, _ = objs["f0_loss"]
    assert f0_loss.loss_type == "L1"
    pred = outputs["f0_midi_pred"].numpy()[..., 0]
    expected = f0_loss.weight * np.mean(np.abs(f0_midi - pred) * mask)
    np.testing.assert_allclose(float(losses["f0_loss"]), expected, rtol=1e-4)
    for name, (target, predicted) in {"amps_loss": ("amps", "amps_pred"), "hd_loss": ("hd", "hd_pred"),
                                      "noise_loss": ("noise", "noise_pred")}.items():
        loss, _ = objs[name]
        expected = loss.weight * np.mean(np.abs(outputs[target].numpy() - outputs[predicted].numpy()))
        assert expected > 0.0
        np.testing.assert_allclose(float(losses[name]), expected, rtol=1e-4, err_msg=name)
    return mask


def test_ground_truth_midi_losses_equal_their_closed_forms_and_the_f0_loss_skips_off_pitch_frames(notes):
    model = build([MIDIAE])
    features = dict(notes)
    f0_hz = features["f0_hz"].copy()
    f0_hz[0, 2:8] *= 2.0 ** (3.0 / 12.0)   # 3 semitones off the note: masked out
    f0_hz[0, 8:12] *= 2.0 ** (1.0 / 12.0)  # 1 semitone off: still scored
    features["f0_hz"] = f0_hz
    outputs, losses = model(features, training=False, return_losses=True)
    f0_midi, q_pitch = outputs["f0_midi"].numpy()[..., 0], ground_truth_pitch(features)
    np.testing.assert_allclose(f0_midi, np_midi(f0_hz), atol=1e-4)  # the input f0 in MIDI
    mask = check_param_losses(model, outputs, losses, f0_midi, np_held_pitch(q_pitch))
    assert np.all(mask[0, 2:8] == 0.0) and np.all(mask[0, 8:12] == 1.0)
    # Between notes the decoder's pitch is held, and the fixture's f0 rings on at it: scored.
    assert np.any(q_pitch == 0) and np.all(mask[q_pitch == 0] == 1.0)
    # The spectral terms are the group's spectral losses of each branch against the audio.
    objs = loss_objects(model)
    for name, key in (("spectral_loss", "synth_audio"), ("midi_spectral_loss", "midi_audio")):
        np.testing.assert_allclose(float(losses[name]), float(objs[name][0](features["audio"], outputs[key])),
                                   rtol=1e-5, err_msg=name)
    assert not {"pitch_loss", "pitch_qt_loss", "pitch_q_loss", "slowness_loss"} & set(losses)


def test_encoded_midi_margin_pitch_and_slowness_losses_equal_their_closed_forms(notes):
    model = build([MIDIAE, MIDI_ENCODER_MIXIN])
    features = dict(notes)
    # A vibrato of +-0.7 semitones on the first 24 frames: the quantised pitch changes every
    # few frames there (short notes); steady notes after.
    t = np.arange(features["f0_hz"].shape[1])
    vibrato = np.where(t < 24, 0.7 * np.sin(2 * np.pi * t / 10.0), 0.0)
    features["f0_hz"] = (features["f0_hz"] * 2.0 ** (vibrato / 12.0)).astype(np.float32)
    model(features)  # build, then push z_pitch about 0.8 semitones above f0
    model.midi_encoder.dense_pitch.bias.assign([np.arctanh(0.8 / model.midi_encoder.pitch_range)])
    outputs, losses = model(features, training=False, return_losses=True)
    f0 = outputs["f0_midi"].numpy()[..., 0]
    np.testing.assert_allclose(f0, np_midi(features["f0_hz"]), atol=1e-4)
    z, q, vel = (outputs[k].numpy()[..., 0].astype(np.float64) for k in ("z_pitch", "q_pitch", "q_vel"))
    np.testing.assert_array_equal(q, np.round(z))
    check_param_losses(model, outputs, losses, f0, np_held_pitch(q, vel > 0))
    expected = {
        "pitch_loss": model.pitch_weight * np.mean(np.maximum(np.abs(z - f0) - model.pitch_margin, 0.0)),
        "pitch_qt_loss": model.pitch_qt_weight * np.mean(np.maximum(np.abs(q - f0) - model.pitch_qt_margin, 0.0)),
        "pitch_q_loss": model.pitch_q_weight * np.mean(np.abs(z - q)),
    }
    mask = np_note_mask(q * (vel > 0), model.max_notes)
    short_notes = (mask.sum(1) > 0) & (mask.sum(1) < model.min_note_length)
    short = np.einsum("btn,bn->bt", mask, short_notes.astype(np.float64))
    assert 0.0 < short.mean() < 1.0  # some frames in short notes, some not
    expected["slowness_loss"] = model.slowness_weight * np.mean(np.abs(np.diff(z, axis=1)) * short[:, 1:])
    for name, value in expected.items():
        assert value > 0.0, name  # each term is active on this input
        np.testing.assert_allclose(float(losses[name]), value, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("priors", [True, False], ids=["priors", "no_priors"])
def test_z_midi_latents_and_kl_losses_equal_their_closed_forms(notes, priors):
    extra = [] if priors else ["ZMidiAutoencoder.global_prior = False", "ZMidiAutoencoder.note_prior = False"]
    model = build([Z_MIDIAE], extra=extra)
    outputs, losses = model(notes, training=False, return_losses=True)
    # Global latent: the instrument's row of the embedding.
    kernel = model.z_global_encoder_0.embedding.embeddings.numpy().astype(np.float64)
    params = kernel[notes["instrument_id"]]
    # Note latent: the note encoder's frame outputs averaged over each ground-truth note.
    frame_params = model.z_note_encoder(outputs).numpy().astype(np.float64)
    mask = np_note_mask(ground_truth_pitch(notes), model.max_notes)
    note_params = np_note_means(frame_params, mask)
    present = mask.sum(1) > 0
    assert present.sum() == 6  # 3 notes in each of 2 examples
    if priors:
        mean, log_var = np.split(params, 2, axis=-1)
        np.testing.assert_allclose(outputs["z_global"].numpy(), mean, rtol=1e-5, atol=1e-7)  # eval: the mean
        kl_global = model.kl_weight * np.mean(np_kl(mean, log_var).sum(-1))
        np.testing.assert_allclose(float(losses["kl_global_loss"]), kl_global, rtol=1e-4)
        note_mean, note_log_var = np.split(note_params, 2, axis=-1)
        kl_note = model.kl_weight * np_kl(note_mean, note_log_var).sum(-1)[present].mean()
        np.testing.assert_allclose(float(losses["kl_note_loss"]), kl_note, rtol=1e-4)
        assert kl_global > 0.0 and kl_note > 0.0
        note_z = note_mean
    else:
        assert not {"kl_global_loss", "kl_note_loss"} & set(losses)
        # The original's global latent: per frame (the embedding row on every frame).
        np.testing.assert_allclose(outputs["z_global"].numpy(), np.repeat(params[:, None], 64, axis=1),
                                   rtol=1e-5, atol=1e-7)
        note_z = note_params
    # Every frame of a note carries its note's latent; frames outside notes carry zeros.
    np.testing.assert_allclose(outputs["z_notes"].numpy(), np.einsum("btn,bnc->btc", mask, note_z),
                               rtol=1e-4, atol=1e-6)
    assert float(losses["total_loss"]) == pytest.approx(
        sum(float(v) for k, v in losses.items() if k != "total_loss"), rel=1e-5)


def test_the_originals_db_controls_and_zeroed_velocities_unless_the_package_configs_ask(notes):
    """Constructor defaults (the original's): 'amps' / 'noise' (and their '_pred') in dB,
    20 log10(a) floored at -80 dB, and 'q_vel' zero for the midi_decoder, while the
    pianoroll keeps the notes' velocities. The package's midiae.gin binds 'unit' and True."""
    ours = build([Z_MIDIAE])
    original = build([Z_MIDIAE], extra=["ZMidiAutoencoder.control_scale = 'db'",
                                        "ZMidiAutoencoder.use_velocity = False"])
    assert (ours.control_scale, ours.use_velocity) == ("unit", True)
    out_ours, out = ours(notes), original(notes)
    for key, control in (("amps", "harmonic/controls/amplitudes"), ("noise", "filtered_noise/controls/magnitudes"),
                         ("amps_pred", "midi/harmonic/controls/amplitudes"),
                         ("noise_pred", "midi/filtered_noise/controls/magnitudes")):
        linear = out[control].numpy().astype(np.float64)
        np.testing.assert_allclose(out[key].numpy(), np.maximum(20.0 * np.log10(np.maximum(linear, 1e-4)), -80.0),
                                   atol=1e-4, err_msg=key)
        linear = out_ours[control].numpy().astype(np.float64)
        np.testing.assert_allclose(out_ours[key].numpy(), 20.0 * np.log10(linear + 1e-4) / 80.0 + 1.0,
                                   atol=1e-5, err_msg=key)
    assert out["noise"].numpy().min() < 0.0 and out_ours["noise"].numpy().min() >= 0.0
    velocities = out_ours["q_vel"].numpy()
    assert velocities.max() > 0.0 and not out["q_vel"].numpy().any()
    np.testing.assert_array_equal(out["note_velocity"].numpy(), velocities)
    np.testing.assert_array_equal(out["pianoroll"].numpy(), out_ours["pianoroll"].numpy())
    # The note latents see the same notes in both modes.
    np.testing.assert_array_equal(out["note_mask"].numpy(), out_ours["note_mask"].numpy())
    with pytest.raises(ValueError, match="control_scale"):
        build([MIDIAE], extra=["MidiAutoencoder.control_scale = 'linear'"])


@pytest.mark.parametrize("controls_stopped", [False, True])
def test_parameter_losses_train_the_synthcoder_unless_the_package_configs_stop_them(notes, controls_stopped):
    """The original's sg_before_midiae stops the gradient only into the MIDI encoder: its
    amps / hd / noise losses pull the synthcoder toward the MIDI branch too. The package's
    midiae.gin also stops the controls (stop_gradient_controls = True). The MIDI encoder's
    pitch never trains the synthcoder."""
    model = build([MIDIAE, MIDI_ENCODER_MIXIN],
                  extra=[f"MidiAutoencoder.stop_gradient_controls = {controls_stopped}"])
    model(notes)
    synthcoder = model.synthcoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        outputs, losses = model(notes, return_losses=True)
        param_losses = losses["amps_loss"] + losses["hd_loss"] + losses["noise_loss"]
    grads = [g for g in tape.gradient(param_losses, synthcoder) if g is not None]
    norm = float(tf.linalg.global_norm(grads)) if grads else 0.0
    if controls_stopped:
        assert norm == 0.0
    else:
        assert norm > 1e-4
    pitch_grads = tape.gradient(outputs["z_pitch"], synthcoder)
    assert all(g is None for g in pitch_grads)


def test_the_originals_pianoroll_is_a_one_hot_of_the_pitch_ignoring_velocity():
    """`MidiAutoencoder.midi_to_pianoroll(q_pitch, q_vel, piano_keys=128, thresh=20.0)`:
    key int(pitch) (truncated) lit with 1, pitches <= 20 (silence included) at key 0,
    pitches past the keys light nothing; the velocity plays no part."""
    pitch = np.array([[[0.0], [20.0], [21.0], [60.7], [127.0], [130.0], [-3.0]]], np.float32)
    velocity = np.full_like(pitch, 90.0)
    roll = models.MidiAutoencoder.midi_to_pianoroll(pitch, velocity).numpy()
    assert roll.shape == (1, 7, 128)
    np.testing.assert_array_equal(roll.argmax(-1)[0, :5], [0, 0, 21, 60, 127])
    np.testing.assert_array_equal(roll.sum(-1)[0], [1, 1, 1, 1, 1, 0, 1])
    assert roll.max() == 1.0
    np.testing.assert_array_equal(models.MidiAutoencoder.midi_to_pianoroll(pitch, 0 * velocity).numpy(), roll)
    low = midi.midi_to_pianoroll(pitch, velocity, piano_keys=64, thresh=0.0).numpy()
    assert low.shape == (1, 7, 64) and low[0, 1].argmax() == 20 and low[0, 3].argmax() == 60
    # This package's roll (the model's output 'pianoroll'): the velocity at round(pitch).
    ours = midi.velocity_pianoroll(pitch[:, 3:4], velocity[:, 3:4]).numpy()
    assert ours[0, 0, 61] == 90.0 and ours.sum() == 90.0


def test_gaussian_prior_kl_and_seeded_samples():
    """`losses.GaussianPrior`, the original's prior interface: a (mean, std) pair or
    (mean, log-variance) halves; loss the KL to N(0, 1); call a sample with seeded noise."""
    mean = tf.constant([[[1.0, -2.0]], [[0.0, 0.5]]])
    std = tf.constant([[[2.0, 1.0]], [[1.0, 0.0]]])
    prior = midi.GaussianPrior(weight=0.5, seed=3, name="kl")
    var = std.numpy() ** 2
    kl = 0.5 * (mean.numpy() ** 2 + var - 1.0 - np.log(var + 1e-6))
    losses = prior.get_losses_dict((mean, std))
    np.testing.assert_allclose(float(losses["kl"]), 0.5 * kl.sum(-1).mean(), rtol=1e-5)
    eps = tf.random.stateless_normal([2, 1, 2], seed=[3, 0]).numpy()
    sample = prior((mean, std)).numpy()
    np.testing.assert_allclose(sample, mean.numpy() + std.numpy() * eps, rtol=1e-6)
    np.testing.assert_array_equal(prior((mean, std)).numpy(), sample)  # the same noise
    halves = tf.concat([mean, tf.math.log(std ** 2 + 1e-30)], axis=-1)
    np.testing.assert_allclose(prior(halves).numpy(), sample, rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:  # the std of a pair passes no gradient (pool_over_notes' sqrt)
        tape.watch(std)
        loss = prior.kl((mean, std))
    assert tape.gradient(loss, std) is None
    with pytest.raises(ValueError, match="even number"):
        prior(tf.zeros([1, 3]))
