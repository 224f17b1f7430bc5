"""Note detection, quantile transforms, autotune, the dataset statistics that runs save,
and the notebook-style timbre-transfer adjustment."""
import json

import numpy as np
import pytest

from ddsp_models.training import postprocessing
from ddsp_models.training.evaluation import adjust_for_timbre_transfer, compute_dataset_statistics


def test_detect_notes_marks_loud_confident_frames():
    loudness = np.concatenate([np.full(100, -20.0), np.full(100, -75.0), np.full(100, -20.0)])
    confidence = np.concatenate([np.full(100, 0.95), np.full(100, 0.95), np.full(100, 0.1)])
    mask, ratio = postprocessing.detect_notes(loudness, confidence, smoothing=5)
    assert mask[5:95].all()            # loud and pitched
    assert not mask[105:195].any()     # quiet
    assert not mask[205:295].any()     # loud but unpitched
    assert ratio[50] > 1.0 > ratio[150]


def test_quantile_transform_maps_one_distribution_onto_another_and_survives_json():
    rng = np.random.default_rng(0)
    data = rng.normal(-20.0, 2.0, 20000)
    fitted = postprocessing.QuantileTransform.fit(data)
    restored = postprocessing.QuantileTransform.from_dict(json.loads(json.dumps(fitted.to_dict())))
    x = np.array([-24.0, -20.0, -16.0])
    # transform is the empirical CDF: Phi(-2), Phi(0), Phi(2).
    np.testing.assert_allclose(restored.transform(x), [0.0228, 0.5, 0.9772], atol=0.01)
    np.testing.assert_allclose(restored.inverse_transform(restored.transform(x)), x, atol=0.05)
    source = rng.normal(-45.0, 6.0, 5000)
    own = postprocessing.QuantileTransform.fit(source)
    moved = restored.inverse_transform(own.transform(source))
    assert abs(moved.mean() + 20.0) < 0.1 and abs(moved.std() - 2.0) < 0.1
    # Order is kept: a louder frame stays louder.
    assert np.all(np.diff(moved[np.argsort(source)]) >= -1e-9)
    with pytest.raises(ValueError, match="no finite value"):
        postprocessing.QuantileTransform.fit([np.nan])


def test_autotune_moves_toward_the_nearest_semitone_on_note_frames():
    pitch = np.array([60.3, 61.8, 64.4])
    np.testing.assert_allclose(postprocessing.autotune(pitch, 1.0), [60, 62, 64])
    np.testing.assert_allclose(postprocessing.autotune(pitch, 0.5), [60.15, 61.9, 64.2])
    np.testing.assert_allclose(postprocessing.autotune(pitch, 1.0, [True, False, True]),
                               [60, 61.8, 64])
    with pytest.raises(ValueError, match="amount"):
        postprocessing.autotune(pitch, 1.5)


def test_dataset_statistics_hold_note_ranges_and_transforms():
    n = 300
    # Example 0 glides from MIDI 60 to 70, example 1 from 50 to 56; the last 20 frames
    # are trimmed; power 3 dB above loudness.
    pitch = np.stack([np.linspace(60, 70, n), np.linspace(50, 56, n)])
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    loudness = np.full([2, n], -30.0)
    stats = compute_dataset_statistics([{"f0_hz": f0, "f0_confidence": np.ones([2, n]),
                                         "loudness_db": loudness, "power_db": loudness + 3.0}])
    trimmed_end = (70 - 60) * (n - 21) / (n - 1) + 60, (56 - 50) * (n - 21) / (n - 1) + 50
    assert stats["mean_min_pitch_note"] == pytest.approx((60 + 50) / 2, abs=0.05)
    assert stats["mean_max_pitch_note"] == pytest.approx(np.mean(trimmed_end), abs=0.05)
    assert stats["mean_min_power_note"] == pytest.approx(-27.0, abs=1e-4)
    assert stats["mean_pitch"] == pytest.approx(pitch.mean(), abs=1e-3)
    transform = postprocessing.QuantileTransform.from_dict(stats["loudness_transform"])
    assert transform.inverse_transform(0.5) == pytest.approx(-30.0)
    json.dumps(stats)  # plain JSON


def test_notebook_adjustment_moves_register_and_loudness_and_quiets_off_frames():
    rng = np.random.default_rng(1)
    n = 400
    stats = {"mean_pitch": 72.0, "mean_loudness_db": -20.0,
             "loudness_transform": postprocessing.QuantileTransform.fit(
                 rng.normal(-20.0, 1.0, 4000)).to_dict()}
    f0 = np.full(n, 440.0 * 2 ** ((59 - 69) / 12), np.float32)  # MIDI 59: 13 below 72
    loudness = np.where(np.arange(n) < 300, rng.normal(-50.0, 3.0, n), -70.0).astype(np.float32)
    mask = np.arange(n) < 300
    ratio = np.where(mask, 1.5, 0.25)
    features = {"f0_hz": f0, "f0_confidence": np.ones(n, np.float32), "loudness_db": loudness}
    adjusted, info = adjust_for_timbre_transfer(features, auto_adjust=True, dataset_stats=stats,
                                                mask_on=mask, note_on_ratio=ratio,
                                                quiet_off_db=20.0, semitone_shift=1.0)
    assert info["octave_shift"] == 1
    # Octave up plus one semitone: MIDI 72.
    np.testing.assert_allclose(adjusted["f0_hz"], 440.0 * 2 ** ((72 - 69) / 12), rtol=1e-4)
    on = adjusted["loudness_db"][mask]
    assert abs(on.mean() + 20.0) < 0.2 and abs(on.std() - 1.0) < 0.2
    np.testing.assert_allclose(adjusted["loudness_db"][~mask], -70.0 - 20.0 * 0.75, atol=1e-4)
