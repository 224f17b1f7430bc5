"""Evaluation: the metrics summary, evaluate_model on a tiny Autoencoder and a transcribing
MidiAutoencoder, dataset statistics and the timbre-transfer adjustments."""
import json
import math

import keras
import numpy as np
import pytest

from conftest import tone
from ddsp_models import losses, spectral_ops
from ddsp_models.training import metrics
from ddsp_models.training.evaluation import (
    MetricsAccumulator,
    adjust_for_timbre_transfer,
    compute_dataset_statistics,
    evaluate_model,
)
from midi_fixtures import piano_roll as roll_with
from model_fixtures import NO_NOISE_DAG, harmonic_notes, make_model, shrink_bindings

SR, FR = 16000, 250
SEMITONE = 2.0 ** (1.0 / 12.0)


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
    for name in metrics.AUDIO_METRIC_NAMES:
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
    assert shifted["audio"] is features["audio"]
    assert shifts == {"octave_shift": 1, "semitone_shift": 0.0, "loudness_shift_db": 6.0, "autotune": 0.0}
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
