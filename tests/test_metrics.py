"""Metrics: audio metrics (spectral, loudness, CREPE pitch) and note metrics (notes of a piano
roll, mir_eval matching, frame scores, the empty-set rule)."""
import math

import numpy as np
import pytest

from conftest import tone
from ddsp_models import crepe, losses, spectral_ops
from ddsp_models.training import metrics as metrics_lib
from ddsp_models.training.metrics import audio_metrics, note_metrics, pianoroll_to_notes
from midi_fixtures import piano_roll as roll_with

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
    strict = audio_metrics(batch(a), gen, batch(reference["f0_hz"]),
                           batch(reference["f0_confidence"]),
                           None, SR, FR, outlier_semitones=0.5, spectral_loss=loss)
    loose = audio_metrics(batch(a), gen, batch(reference["f0_hz"]),
                          batch(reference["f0_confidence"]), batch(reference["loudness_db"]), SR,
                          FR, outlier_semitones=2.0, spectral_loss=loss)
    return strict, loose, gen, loss


def test_identical_audio_scores_perfectly(reference, resyntheses):
    strict, loose, _, _ = resyntheses
    assert set(strict) == set(metrics_lib.AUDIO_METRIC_NAMES)
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
    # Silence: all energy missing.
    assert strict["spectral_loss"][1] > 0.5 * strict["spectral_loss"][2]
    assert strict["loudness_l1_db"][1] < 1.0  # same level, different pitch
    # Outliers: off by more than 0.5 semitone -> nearly all; by more than 2 -> nearly none.
    assert strict["f0_outlier_ratio"][1] > 0.9
    assert loose["f0_outlier_ratio"][1] < 0.1


def test_silence_is_all_outliers_and_much_quieter(resyntheses):
    strict, loose, _, _ = resyntheses
    assert strict["f0_outlier_ratio"][2] == 1.0
    assert loose["f0_outlier_ratio"][2] == 1.0
    # +10 dB vs. the -80 dB floor (compute_loudness default).
    assert strict["loudness_l1_db"][2] > 85.0


def test_spectral_loss_is_the_per_example_spectral_loss(resyntheses):
    strict, _, gen, loss = resyntheses
    target = np.stack([gen[0]] * 3)
    for i in range(3):
        assert strict["spectral_loss"][i] == pytest.approx(
            float(loss(target[i:i + 1], gen[i:i + 1])), rel=1e-5)
    assert strict["spectral_loss"].mean() == pytest.approx(float(loss(target, gen)), rel=1e-4)


def test_no_confident_frame_gives_nan_pitch_metrics_and_bad_input_is_named():
    audio = tone(300.0, seconds=0.25)[None]
    frames = int(0.25 * FR)
    metrics = audio_metrics(audio, audio, np.full([1, frames], 300.0), np.zeros([1, frames]),
                            sample_rate=SR,
                            frame_rate=FR, spectral_loss=losses.SpectralLoss(fft_sizes=(256,)))
    assert math.isnan(metrics["f0_l1_semitones"][0]) and math.isnan(metrics["f0_outlier_ratio"][0])
    assert metrics["n_confident_frames"][0] == 0
    with pytest.raises(ValueError, match="audio_gen"):
        audio_metrics(audio, audio[:, :100], np.ones([1, frames]), np.ones([1, frames]))
    with pytest.raises(ValueError, match="f0_confidence"):
        audio_metrics(audio, audio, np.ones([1, frames]), np.ones([1, frames + 5]))


# ------------------------------------------------------------------------- note metrics
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
    for name in ("note_precision", "note_recall", "note_f1", "note_onset_f1", "frame_precision",
                 "frame_recall",
                 "frame_f1"):
        assert metrics[name] == 1.0, name
    assert metrics["n_ref_notes"] == metrics["n_est_notes"] == metrics["n_matched_notes"] == 3


def test_a_shifted_or_shortened_note_lowers_the_scores():
    ref = roll_with(NOTES)
    semitone_up = roll_with([(60, 0, 25, 0.5), (65, 25, 50, 0.8), (67, 50, 100, 1.0)])
    metrics = note_metrics(ref, semitone_up, FR)
    assert metrics["n_matched_notes"] == 2
    assert metrics["note_precision"] == pytest.approx(2 / 3)
    assert metrics["note_recall"] == pytest.approx(2 / 3)
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
    scores = (spurious["note_precision"], spurious["note_recall"], spurious["frame_f1"])
    assert scores == (0.0, 1.0, 0.0)


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
