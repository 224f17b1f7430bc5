"""Evaluation: audio metrics (spectral, loudness, CREPE pitch), note metrics, summaries,
evaluate_model on a tiny Autoencoder, and the timbre-transfer adjustments."""
import json
import math

import keras
import numpy as np
import pytest

from conftest import tone
from ddsp_models import crepe, losses, spectral_ops
from ddsp_models.training import evaluation
from ddsp_models.training.evaluation import (MetricsAccumulator, adjust_for_timbre_transfer, audio_metrics,
                                    compute_dataset_statistics, evaluate_model, note_metrics,
                                    pianoroll_to_notes)
from model_fixtures import NO_NOISE_DAG, harmonic_notes, make_model, shrink_bindings

SR, FR = 16000, 250
SEMITONE = 2.0 ** (1.0 / 12.0)


# ------------------------------------------------------------------------ audio metrics
@pytest.fixture(scope="module")
def reference():
    """1 s of 440 Hz with the features stage's CREPE f0 / confidence / loudness."""
    audio = tone(440.0, seconds=1.0, amplitude=0.5)
    f0, confidence = crepe.compute_f0(audio, SR, FR, viterbi=True, capacity="tiny")
    loudness = np.asarray(spectral_ops.compute_loudness(audio, SR, FR))[:FR]
    return {"audio": audio, "f0_hz": f0, "f0_confidence": confidence, "loudness_db": loudness}


@pytest.fixture(scope="module")
def resyntheses(reference):
    """Metrics of three resyntheses of the reference: itself, a semitone sharp, silence."""
    a = reference["audio"]
    batch = lambda x: np.stack([x] * 3)  # noqa: E731
    gen = np.stack([a, tone(440.0 * SEMITONE, seconds=1.0, amplitude=0.5), np.zeros_like(a)])
    loss = losses.SpectralLoss(fft_sizes=(1024, 256, 64))
    strict = audio_metrics(batch(a), gen, batch(reference["f0_hz"]), batch(reference["f0_confidence"]),
                           None, SR, FR, outlier_semitones=0.5, spectral_loss=loss)
    loose = audio_metrics(batch(a), gen, batch(reference["f0_hz"]), batch(reference["f0_confidence"]),
                          batch(reference["loudness_db"]), SR, FR, outlier_semitones=2.0, spectral_loss=loss)
    return strict, loose, gen, loss


def test_identical_audio_scores_perfectly(reference, resyntheses):
    strict, loose, _, _ = resyntheses
    assert set(strict) == set(evaluation.AUDIO_METRIC_NAMES)
    assert all(v.shape == (3,) for v in strict.values())
    assert strict["spectral_loss"][0] == pytest.approx(0.0, abs=1e-6)
    assert strict["loudness_l1_db"][0] == pytest.approx(0.0, abs=1e-3)
    assert loose["loudness_l1_db"][0] == pytest.approx(0.0, abs=1e-3)  # given loudness_db
    assert strict["f0_l1_semitones"][0] == pytest.approx(0.0, abs=1e-4)
    assert strict["f0_outlier_ratio"][0] == 0.0
    confident = int(np.sum(reference["f0_confidence"] >= 0.85))
    assert confident > 200  # a steady sine: nearly every frame
    assert strict["n_confident_frames"][0] == confident


def test_a_semitone_sharp_resynthesis_is_one_semitone_off(resyntheses):
    strict, loose, _, _ = resyntheses
    assert strict["f0_l1_semitones"][1] == pytest.approx(1.0, abs=0.15)
    assert strict["spectral_loss"][1] > 0.5 * strict["spectral_loss"][2]  # silence: all energy missing
    assert strict["loudness_l1_db"][1] < 1.0  # same level, different pitch
    # Outliers: off by more than 0.5 semitone -> nearly all; by more than 2 -> nearly none.
    assert strict["f0_outlier_ratio"][1] > 0.9
    assert loose["f0_outlier_ratio"][1] < 0.1


def test_silence_is_all_outliers_and_much_quieter(resyntheses):
    strict, loose, _, _ = resyntheses
    assert strict["f0_outlier_ratio"][2] == 1.0
    assert loose["f0_outlier_ratio"][2] == 1.0
    assert strict["loudness_l1_db"][2] > 100.0  # +10 dB vs. the -120 dB floor


def test_spectral_loss_is_the_per_example_spectral_loss(resyntheses):
    strict, _, gen, loss = resyntheses
    target = np.stack([gen[0]] * 3)
    for i in range(3):
        assert strict["spectral_loss"][i] == pytest.approx(float(loss(target[i:i + 1], gen[i:i + 1])), rel=1e-5)
    assert strict["spectral_loss"].mean() == pytest.approx(float(loss(target, gen)), rel=1e-4)


def test_no_confident_frame_gives_nan_pitch_metrics_and_bad_input_is_named():
    audio = tone(300.0, seconds=0.25)[None]
    frames = int(0.25 * FR)
    metrics = audio_metrics(audio, audio, np.full([1, frames], 300.0), np.zeros([1, frames]), sample_rate=SR,
                            frame_rate=FR, spectral_loss=losses.SpectralLoss(fft_sizes=(256,)))
    assert math.isnan(metrics["f0_l1_semitones"][0]) and math.isnan(metrics["f0_outlier_ratio"][0])
    assert metrics["n_confident_frames"][0] == 0
    with pytest.raises(ValueError, match="audio_gen"):
        audio_metrics(audio, audio[:, :100], np.ones([1, frames]), np.ones([1, frames]))
    with pytest.raises(ValueError, match="f0_confidence"):
        audio_metrics(audio, audio, np.ones([1, frames]), np.ones([1, frames + 5]))


# ------------------------------------------------------------------------- note metrics
def roll_with(notes, n_frames=100):
    """[n_frames, 128] roll with (pitch, first_frame, stop_frame, velocity) notes."""
    roll = np.zeros([n_frames, 128], np.float32)
    for pitch, first, stop, velocity in notes:
        roll[first:stop, pitch] = velocity
    return roll


NOTES = [(60, 0, 25, 0.5), (64, 25, 50, 0.8), (67, 50, 100, 1.0)]


def test_pianoroll_to_notes_gives_intervals_pitches_and_velocities():
    intervals, pitches, velocities = pianoroll_to_notes(roll_with(NOTES), frame_rate=FR)
    np.testing.assert_allclose(intervals, [[0.0, 0.1], [0.1, 0.2], [0.2, 0.4]])
    np.testing.assert_array_equal(pitches, [60, 64, 67])
    np.testing.assert_allclose(velocities, [0.5, 0.8, 1.0])
    # Short notes dropped; an onset roll splits a repeated note.
    _, pitches, _ = pianoroll_to_notes(roll_with(NOTES + [(70, 10, 12, 1.0)]), FR, min_frames=3)
    assert list(pitches) == [60, 64, 67]
    onsets = np.zeros([100, 128], np.float32)
    onsets[[50, 75], 67] = 1.0
    intervals, pitches, _ = pianoroll_to_notes(roll_with(NOTES), FR, onsets=onsets)
    assert list(pitches) == [60, 64, 67, 67]
    np.testing.assert_allclose(intervals[-2:], [[0.2, 0.3], [0.3, 0.4]])
    assert pianoroll_to_notes(np.zeros([10, 128]), FR)[0].shape == (0, 2)
    with pytest.raises(ValueError, match="pianoroll"):
        pianoroll_to_notes(np.zeros([10, 88]), FR)


def test_identical_rolls_score_one():
    roll = roll_with(NOTES)
    metrics = note_metrics(roll, roll.copy(), FR)
    for name in ("note_precision", "note_recall", "note_f1", "note_onset_f1", "frame_precision", "frame_recall",
                 "frame_f1"):
        assert metrics[name] == 1.0, name
    assert metrics["n_ref_notes"] == metrics["n_est_notes"] == metrics["n_matched_notes"] == 3


def test_a_shifted_or_shortened_note_lowers_the_scores():
    ref = roll_with(NOTES)
    semitone_up = roll_with([(60, 0, 25, 0.5), (65, 25, 50, 0.8), (67, 50, 100, 1.0)])
    metrics = note_metrics(ref, semitone_up, FR)
    assert metrics["n_matched_notes"] == 2
    assert metrics["note_precision"] == pytest.approx(2 / 3) and metrics["note_recall"] == pytest.approx(2 / 3)
    assert metrics["note_f1"] == pytest.approx(2 / 3)
    assert metrics["frame_f1"] == pytest.approx(75 / 100)
    # Last note ends 30 frames (0.12 s) early: onset still matches, offset does not.
    short = roll_with([(60, 0, 25, 0.5), (64, 25, 50, 0.8), (67, 50, 70, 1.0)])
    metrics = note_metrics(ref, short, FR)
    assert metrics["note_onset_f1"] == 1.0
    assert metrics["n_matched_notes"] == 2 and metrics["note_f1"] == pytest.approx(2 / 3)
    assert metrics["frame_precision"] == 1.0 and metrics["frame_recall"] == pytest.approx(0.7)


def test_empty_rolls_follow_the_zero_over_zero_rule():
    empty, roll = np.zeros([100, 128], np.float32), roll_with(NOTES)
    both = note_metrics(empty, empty, FR)
    assert both["note_f1"] == both["frame_f1"] == both["note_precision"] == 1.0
    missed = note_metrics(roll, empty, FR)
    assert (missed["note_precision"], missed["note_recall"], missed["note_f1"]) == (1.0, 0.0, 0.0)
    spurious = note_metrics(empty, roll, FR)
    assert (spurious["note_precision"], spurious["note_recall"], spurious["frame_f1"]) == (0.0, 1.0, 0.0)


def test_reference_from_features_uses_active_velocities_and_onsets():
    features = {"note_active_velocities": roll_with([(62, 0, 100, 0.7)]),
                "note_active_frame_indices": roll_with([(62, 0, 60, 1.0)]),
                "note_onsets": np.zeros([100, 128], np.float32)}
    features["note_onsets"][[0, 30], 62] = 1.0
    # Reference: two notes (split at the onset of frame 30), active only up to frame 60.
    metrics = note_metrics(features, roll_with([(62, 0, 60, 0.5)]), FR)
    assert metrics["n_ref_notes"] == 2 and metrics["n_est_notes"] == 1
    assert metrics["frame_f1"] == 1.0  # velocities beyond frame 60 are masked out
    assert metrics["note_onset_precision"] == 1.0 and metrics["note_onset_recall"] == 0.5
    assert metrics["n_matched_notes"] == 0  # the estimate's offset is 0.12 s late
    with pytest.raises(ValueError, match="estimate"):
        note_metrics(features, np.zeros([50, 128]), FR)


# ---------------------------------------------------------------------------- summary
def test_accumulator_summarises_ignoring_nan_and_is_json_serialisable():
    acc = MetricsAccumulator()
    acc.add({"a": np.array([1.0, 2.0, np.nan]), "b": np.array([np.nan, np.nan, np.nan])})
    acc.add({"a": np.float32(6.0), "b": [4.0]})
    summary = acc.summary()
    assert summary["a"] == {"mean": 3.0, "median": 2.0, "std": pytest.approx(np.std([1, 2, 6])), "n": 3,
                            "n_nan": 1}
    assert summary["b"]["mean"] == 4.0 and summary["b"]["n"] == 1 and summary["b"]["n_nan"] == 3
    assert acc.flat() == {"a": 3.0, "b": 4.0, "n_examples": 4}
    assert json.loads(json.dumps(summary)) == summary
    empty = MetricsAccumulator()
    empty.add({"c": [np.nan]})
    assert empty.summary()["c"] == {"mean": None, "median": None, "std": None, "n": 0, "n_nan": 1}
    with pytest.raises(TypeError, match="metrics"):
        acc.add([1.0])


# ---------------------------------------------------------------------- evaluate_model
SECONDS = 0.512


def test_evaluate_model_on_a_tiny_autoencoder_matches_a_direct_spectral_loss():
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8) + [NO_NOISE_DAG])
    batches = [harmonic_notes(n_examples=2, seconds=SECONDS, seed=s) for s in (1, 2)]
    loss = losses.SpectralLoss(fft_sizes=(1024, 256, 64))
    summary, acc = evaluate_model(model, batches, SR, FR, spectral_loss=loss, return_accumulator=True)
    for name in evaluation.AUDIO_METRIC_NAMES:
        assert summary[name]["n"] == 4 and math.isfinite(summary[name]["mean"]), name
    assert summary["spectral_loss"]["mean"] > 0.0
    assert summary["n_confident_frames"]["mean"] == SECONDS * FR  # harmonic_notes: confidence 1
    direct = [float(loss(b["audio"], model.get_audio_from_outputs(model(b, training=False)))) for b in batches]
    assert summary["spectral_loss"]["mean"] == pytest.approx(np.mean(direct), rel=1e-4)
    assert acc.flat()["n_examples"] == 4
    with pytest.raises(ValueError, match="batches"):
        evaluate_model(model, [], SR, FR)


def test_evaluating_the_same_weights_twice_gives_identical_metrics_despite_the_noise():
    """The filtered noise is drawn from `[seed, batch index]`: two evaluations agree exactly,
    another seed draws other noise (so the noise is really there and really seeded)."""
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))
    batches = [harmonic_notes(n_examples=2, seconds=SECONDS, seed=s) for s in (1, 2)]
    loss = losses.SpectralLoss(fft_sizes=(1024, 256, 64))

    def scores(seed, global_seed):
        keras.utils.set_random_seed(global_seed)  # the global RNG must not matter
        summary = evaluate_model(model, batches, SR, FR, spectral_loss=loss, seed=seed)
        return [summary[name]["mean"] for name in ("spectral_loss", "loudness_l1_db")]

    first, again, other = scores(0, 123), scores(0, 456), scores(1, 123)
    assert first == again
    assert other[0] != first[0]


def transcribing_midi_autoencoder(batch, velocity_logit: float = 1.0):
    """A tiny encoded-MIDI MidiAutoencoder (HarmonicToMidiEncoder) whose transcription is
    known: the encoder's pitch residual and velocity layers are set to constants, so it
    transcribes round(f0 in MIDI) on every frame at velocity round(127 sigmoid(logit))."""
    from midi_fixtures import MIDI_ENCODER_MIXIN, make_midi_model, midi_shrink_bindings

    keras.utils.set_random_seed(0)
    seconds = batch["audio"].shape[1] / SR
    model = make_midi_model(["models/midiae/midiae.gin", MIDI_ENCODER_MIXIN], midi_shrink_bindings(seconds))
    model(batch)  # build
    encoder = model.midi_encoder
    for layer, bias in ((encoder.dense_pitch, 0.0), (encoder.dense_velocity, velocity_logit)):
        layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
        layer.bias.assign(np.full(layer.bias.shape, bias, np.float32))
    return model


def test_evaluate_model_with_midi_scores_a_transcribing_model_against_the_note_features():
    n_frames = 64
    seconds = n_frames / FR
    # Example 0 is in tune with its annotation (MIDI 57); example 1 is annotated 64 but plays
    # (and its f0 track says) 63, one semitone flat: the model transcribes 63.
    audio = np.stack([tone(220.0, seconds=seconds), tone(311.127, seconds=seconds)])
    roll, other = roll_with([(57, 0, 64, 0.8)], n_frames), roll_with([(64, 0, 64, 0.8)], n_frames)
    batch = {"audio": audio, "f0_hz": np.array([[220.0] * n_frames, [311.127] * n_frames], np.float32),
             "f0_confidence": np.ones([2, n_frames], np.float32),
             "loudness_db": np.asarray(spectral_ops.compute_loudness(audio, SR, FR), np.float32)[:, :n_frames],
             "power_db": np.asarray(spectral_ops.compute_power(audio, SR, FR), np.float32)[:, :n_frames],
             "note_active_velocities": np.stack([roll, other]),
             "note_active_frame_indices": np.stack([roll > 0, other > 0]).astype(np.float32)}
    model = transcribing_midi_autoencoder(batch)
    outputs = model(batch, training=False)
    transcribed = outputs["pianoroll"].numpy()
    np.testing.assert_array_equal(transcribed.argmax(-1), [[57] * n_frames, [63] * n_frames])
    np.testing.assert_array_equal(transcribed.max(-1), np.round(127.0 / (1.0 + np.exp(-1.0))))
    summary = evaluate_model(model, [batch], SR, FR, midi=True, spectral_loss=losses.SpectralLoss(fft_sizes=(256,)))
    assert summary["note_f1"]["mean"] == 0.5 and summary["frame_f1"]["mean"] == 0.5
    assert summary["note_f1"]["n"] == 2 and summary["n_ref_notes"]["mean"] == 1.0
    assert summary["spectral_loss"]["mean"] > 0.0 and math.isfinite(summary["f0_l1_semitones"]["mean"])
    # The same model on the in-tune clip alone scores a perfect transcription.
    alone = evaluate_model(model, [{k: v[:1] for k, v in batch.items()}], SR, FR, midi=True,
                           spectral_loss=losses.SpectralLoss(fft_sizes=(256,)))
    assert alone["note_f1"]["mean"] == 1.0 and alone["note_onset_f1"]["mean"] == 1.0


# --------------------------------------------------------------------- timbre transfer
def clip_features(f0=220.0, loud_db=-20.0, n_frames=100, n_quiet=20):
    loudness = np.full([n_frames], loud_db, np.float32)
    loudness[:n_quiet] = -120.0
    confidence = np.ones([n_frames], np.float32)
    confidence[:n_quiet] = 0.1
    return {"f0_hz": np.full([n_frames], f0, np.float32), "f0_confidence": confidence, "loudness_db": loudness,
            "power_db": loudness - 3.0, "audio": np.zeros(1600, np.float32)}


def test_octave_and_loudness_shifts():
    features = clip_features()
    shifted, shifts = adjust_for_timbre_transfer(features, octave_shift=1, loudness_shift_db=6.0)
    np.testing.assert_allclose(shifted["f0_hz"], 2.0 * features["f0_hz"])
    np.testing.assert_allclose(shifted["loudness_db"], features["loudness_db"] + 6.0)
    np.testing.assert_allclose(shifted["power_db"], features["power_db"] + 6.0)
    assert shifted["audio"] is features["audio"] and shifts == {"octave_shift": 1, "semitone_shift": 0.0, "loudness_shift_db": 6.0, "autotune": 0.0}
    down, _ = adjust_for_timbre_transfer(features, octave_shift=-2)
    np.testing.assert_allclose(down["f0_hz"], features["f0_hz"] / 4.0)
    np.testing.assert_array_equal(features["f0_hz"], 220.0)  # input untouched
    with pytest.raises(ValueError, match="octave_shift"):
        adjust_for_timbre_transfer(features, octave_shift=0.5)


def test_auto_adjust_picks_the_nearest_octave_and_matches_mean_loudness():
    dataset = [{key: np.stack([clip_features(f0=f, loud_db=ld)[key]] * 2) for key in
                ("f0_hz", "f0_confidence", "loudness_db")} for f, ld in ((440.0, 0.0), (440.0 * SEMITONE, 0.0))]
    stats = compute_dataset_statistics(dataset)
    assert stats["mean_pitch"] == pytest.approx(69.5, abs=1e-4)  # confident frames only
    assert stats["mean_loudness_db"] == pytest.approx(0.0)  # quiet frames ignored
    assert stats["n_pitch_frames"] == stats["n_loudness_frames"] == 4 * 80
    assert json.loads(json.dumps(stats)) == stats
    # A clip at 110 Hz (MIDI 45, two octaves below) and -20 dB.
    clip = clip_features(f0=110.0, loud_db=-20.0)
    adjusted, shifts = adjust_for_timbre_transfer(clip, auto_adjust=True, dataset_stats=stats)
    assert shifts["octave_shift"] == 2 and shifts["loudness_shift_db"] == pytest.approx(20.0, abs=1e-4)
    np.testing.assert_allclose(adjusted["f0_hz"], 440.0)
    np.testing.assert_allclose(adjusted["loudness_db"][20:], 0.0, atol=1e-4)
    # A user shift adds to the automatic one; 900 Hz (MIDI 81.8) -> nearest is one octave down.
    _, shifts = adjust_for_timbre_transfer(clip_features(f0=900.0), octave_shift=1, auto_adjust=True,
                                           dataset_stats=stats)
    assert shifts["octave_shift"] == 0
    with pytest.raises(ValueError, match="dataset_stats"):
        adjust_for_timbre_transfer(clip, auto_adjust=True)


def test_note_scores_agree_with_mir_eval_when_both_rolls_have_notes():
    import mir_eval

    ref = roll_with(NOTES)
    est = roll_with([(60, 2, 25, 0.5), (65, 25, 50, 0.8), (67, 52, 80, 1.0), (40, 0, 100, 1.0)])
    metrics = note_metrics(ref, est, FR)
    (ri, rp, _), (ei, ep, _) = pianoroll_to_notes(ref, FR), pianoroll_to_notes(est, FR)
    hz = lambda p: 440.0 * 2.0 ** ((p - 69.0) / 12.0)  # noqa: E731
    for prefix, offset_ratio in (("note_", 0.2), ("note_onset_", None)):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, hz(rp), ei, hz(ep),
                                                                         offset_ratio=offset_ratio)
        assert (metrics[f"{prefix}precision"], metrics[f"{prefix}recall"]) == pytest.approx((p, r))
        assert metrics[f"{prefix}f1"] == pytest.approx(f)
    assert metrics["n_matched_onset_notes"] == 2 and metrics["n_matched_notes"] == 1
