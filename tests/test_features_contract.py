"""The feature contract (`ddsp_models.training.features`): frame counts, note rolls, the
reference pianoroll, and that every stage, provider, model and evaluator uses it."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import features


# ------------------------------------------------------------------------ frame counts
def test_frame_counts_follow_floor_of_samples_times_rates():
    assert features.n_frames_of(64000, 16000, 250) == 1000  # 4 s
    assert features.n_frames_of(63999, 16000, 250) == 999
    assert features.n_frames_of(13230, 22050, 100) == 60
    assert features.n_frames_of(1000, 22050.0, 100.5) == 4  # 4.557... frames
    with pytest.raises(ValueError, match="sample_rate"):
        features.n_frames_of(100, 0, 250)


def test_crepe_frames_a_clip_into_the_contracts_frame_count():
    from ddsp_models import crepe

    for n_samples, sample_rate, frame_rate in [(64000, 16000, 250), (8000, 16000, 100),
                                               (22050, 22050, 250), (16001, 44100, 31.25)]:
        assert crepe.count_frames(n_samples, sample_rate, frame_rate) == \
            features.n_frames_of(n_samples, sample_rate, frame_rate)


# ------------------------------------------------------------------------ note rolls
def test_midi_frame_features_mark_active_onset_and_offset_frames():
    notes = [{"pitch": 60, "velocity": 127, "start": 0.0, "end": 0.1, "onset": False},
             {"pitch": 62, "velocity": 64, "start": 0.1, "end": 0.2},        # legato
             {"pitch": 64, "velocity": 32, "start": 0.3, "end": 0.5, "offset": False}]
    out = features.midi_frame_features(notes, n_frames=125, frame_rate=250)
    assert set(out) == set(features.MIDI_FEATURES)
    active, velocity = out["note_active_frame_indices"], out["note_active_velocities"]
    assert all(v.shape == (125, 128) and v.dtype == np.float32 for v in out.values())
    np.testing.assert_array_equal(np.nonzero(active[:, 60])[0], np.arange(0, 25))
    np.testing.assert_array_equal(np.nonzero(active[:, 62])[0], np.arange(25, 50))
    np.testing.assert_array_equal(np.nonzero(active[:, 64])[0], np.arange(75, 125))
    assert active.sum() == 25 + 25 + 50  # nothing else, one pitch at a time
    # MIDI velocity units (1..127), the unit the MIDI models read.
    np.testing.assert_allclose(velocity[10, 60], 127.0)
    np.testing.assert_allclose(velocity[30, 62], 64.0)
    np.testing.assert_allclose(velocity[100, 64], 32.0)
    assert np.all((velocity > 0) == (active > 0))
    # Onsets: not for the note cut by the clip start; offsets: not for the one cut at the end.
    assert np.argwhere(out["note_onsets"]).tolist() == [[25, 62], [75, 64]]
    assert np.argwhere(out["note_offsets"]).tolist() == [[24, 60], [49, 62]]
    with pytest.raises(ValueError, match="pitch"):
        features.midi_frame_features([{"pitch": 128, "velocity": 1, "start": 0, "end": 1}], 10)


def test_fit_frames_tolerates_centring_but_not_wrong_rates():
    np.testing.assert_array_equal(features.fit_frames(np.arange(6), 5, "x"), np.arange(5))
    np.testing.assert_array_equal(features.fit_frames(np.arange(4), 5, "x"), [0, 1, 2, 3, 3])
    with pytest.raises(ValueError, match="loudness_db: got 10 frames, expected 5"):
        features.fit_frames(np.arange(10), 5, "loudness_db")


def test_reference_pianoroll_is_velocity_where_a_note_sounds_in_numpy_and_tensorflow():
    notes = [{"pitch": 60, "velocity": 100, "start": 0.0, "end": 0.04},
             {"pitch": 67, "velocity": 20, "start": 0.08, "end": 0.1}]
    rolls = features.midi_frame_features(notes, n_frames=25, frame_rate=250)
    rolls["note_active_velocities"][3, 61] = 55.0  # a velocity without an active frame
    roll = features.reference_pianoroll(rolls)
    assert isinstance(roll, np.ndarray) and roll.dtype == np.float32
    assert roll[:10, 60].tolist() == [100.0] * 10 and roll[10:, 60].sum() == 0.0
    assert roll[20:25, 67].tolist() == [20.0] * 5
    assert roll[3, 61] == 0.0 and roll.sum() == 100.0 * 10 + 20.0 * 5
    # Velocities alone when the activity roll is absent.
    velocities_only = {"note_active_velocities": rolls["note_active_velocities"]}
    assert features.reference_pianoroll(velocities_only)[3, 61] == 55.0
    # Tensors give the same values and the gradient of the velocities is the activity mask.
    velocities = tf.constant(rolls["note_active_velocities"][None])
    with tf.GradientTape() as tape:
        tape.watch(velocities)
        tf_roll = features.reference_pianoroll(
            {"note_active_velocities": velocities,
             "note_active_frame_indices": tf.constant(rolls["note_active_frame_indices"][None])})
        total = tf.reduce_sum(tf_roll)
    assert tf.is_tensor(tf_roll)
    np.testing.assert_array_equal(tf_roll.numpy()[0], roll)
    np.testing.assert_array_equal(tape.gradient(total, velocities).numpy()[0],
                                  rolls["note_active_frame_indices"])
    with pytest.raises(ValueError, match="note_active_velocities"):
        features.reference_pianoroll({"note_onsets": rolls["note_onsets"]})
    with pytest.raises(ValueError,
                       match=r"note_active_velocities: expected a \[\.\.\., n_frames, 128\]"):
        features.reference_pianoroll({"note_active_velocities": np.zeros([25, 127])})


def test_a_models_pianoroll_of_a_note_equals_the_ground_truth_roll_of_that_note():
    """Velocity units agree: the MIDI model's (pitch, velocity) -> roll and the features'
    roll of the same note hold the same MIDI velocity at the same pitch."""
    from ddsp_models.training import midi

    rolls = features.midi_frame_features([{"pitch": 64, "velocity": 90, "start": 0.0, "end": 0.1}],
                                         n_frames=25, frame_rate=250)
    pitch = np.full([1, 25, 1], 64.0, np.float32)
    velocity = np.full([1, 25, 1], 90.0, np.float32)
    model_roll = midi.velocity_pianoroll(pitch, velocity).numpy()[0]
    np.testing.assert_array_equal(model_roll, features.reference_pianoroll(rolls))
    back_pitch, back_velocity = midi.pianoroll_to_midi(features.reference_pianoroll(rolls)[None])
    assert back_pitch.numpy().max() == 64.0 and back_velocity.numpy().max() == 90.0


def test_empty_note_rolls_of_a_clip_or_a_batch():
    single = features.empty_midi_features(7)
    batch = features.empty_midi_features(7, batch_size=2)
    assert set(single) == set(batch) == set(features.MIDI_FEATURES)
    assert all(v.shape == (7, 128) and v.dtype == np.float32 and not v.any()
               for v in single.values())
    assert all(v.shape == (2, 7, 128) for v in batch.values())


# ----------------------------------------------------------------- one home for the contract
def test_stages_builder_providers_and_models_share_the_contracts_names():
    from ddsp_models.training import data, encoders, metrics, params, run_folders
    from ddsp_models.training.tfds_builder import ddsp_prepared
    from pipelines import features as features_stage
    from pipelines import prepare, sample

    assert features.SPLITS == ("train", "valid", "test")
    assert params.SPLITS is features.SPLITS and ddsp_prepared.SPLITS is features.SPLITS
    assert prepare.SPLITS is features_stage.SPLITS is features.SPLITS
    assert ddsp_prepared.FRAME_FEATURES is features.FRAME_FEATURES is data.FRAME_FEATURES
    assert ddsp_prepared.MIDI_FEATURES is features.MIDI_FEATURES is sample.MIDI_FEATURES
    assert encoders.N_PITCHES == metrics.N_PITCHES == midi_pitches() == 128
    assert metrics.reference_pianoroll is features.reference_pianoroll
    batch = run_folders.example_features(n_frames=5, n_samples=320, midi=True)
    assert set(features.FRAME_FEATURES) | set(features.MIDI_FEATURES) | {"audio", "instrument_id"} \
        == set(batch)
    with pytest.raises(ValueError, match=r"data\.splits"):
        params.load_params(None, {"data": {"splits": {"training": 1.0}}})


def midi_pitches() -> int:
    from ddsp_models.training import midi

    return int(midi.velocity_pianoroll(np.zeros([1, 1, 1], np.float32),
                                      np.ones([1, 1, 1], np.float32)).shape[-1])


def test_the_contract_and_the_pipeline_package_import_without_tensorflow():
    code = ("import sys, ddsp_models.training.features, pipelines; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
