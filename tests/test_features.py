"""Specification of the `features` stage: the per-clip maths
(ddsp_models/training/feature_extraction.py), the flow (pipelines/features.py), resumption,
Dask. The note rolls and frame fitting are the contract's (tests/test_features_contract.py)."""
import glob
import json
import os

import numpy as np
import pytest

from ddsp_models.training.feature_extraction import compute_clip_features
from ddsp_models.training.features import FRAME_FEATURES
from pipelines import features
from tests.conftest import tone


# ------------------------------------------------------------------------ clip maths
def test_tone_features_have_its_pitch_power_and_6db_loudness_steps():
    loud = compute_clip_features(tone(440.0, 0.5, 0.5), crepe_capacity="tiny")
    soft = compute_clip_features(tone(440.0, 0.5, 0.25), crepe_capacity="tiny")
    n_frames = 125  # 0.5 s at 250 Hz
    for out in (loud, soft):
        assert set(out) == {"audio", "f0_hz", "f0_confidence", "loudness_db", "power_db",
                            "instrument_id"}
        assert all(out[k].shape == (n_frames,) and out[k].dtype == np.float32
                   for k in FRAME_FEATURES)
    inner = slice(10, -10)  # frames whose analysis windows lie inside the tone
    assert np.median(loud["f0_hz"][inner]) == pytest.approx(440.0, rel=0.01)
    assert np.min(loud["f0_confidence"][inner]) > 0.8
    # Halving the amplitude lowers loudness and power by 20 log10(2) = 6.02 dB.
    np.testing.assert_allclose(loud["loudness_db"][inner] - soft["loudness_db"][inner],
                               6.02, atol=0.05)
    np.testing.assert_allclose(loud["power_db"][inner] - soft["power_db"][inner], 6.02, atol=0.05)
    # Power of a sine of amplitude A: 10 log10(A^2 / 2) = -9.03 dB for A = 0.5.
    np.testing.assert_allclose(loud["power_db"][inner], -9.03, atol=0.1)
    np.testing.assert_array_equal(loud["audio"], tone(440.0, 0.5, 0.5))


# ---------------------------------------------------------------------------- the flow
def _clips(root, write_audio, bad_audio_files):
    """Three good clips (one with notes) and the four kinds of bad input in train/."""
    write_audio(root / "train" / "a440.wav", tone(440.0), subtype="FLOAT")
    write_audio(root / "train" / "b330.wav", tone(330.0), subtype="FLOAT")
    write_audio(root / "valid" / "c262.wav", tone(261.63), subtype="FLOAT")
    with open(root / "train" / "b330.notes.json", "w") as f:
        json.dump({"id": "b330", "program": 73, "notes": [
            {"pitch": 64, "velocity": 100, "start": 0.0, "end": 0.5, "onset": True,
             "offset": True}]}, f)
    return bad_audio_files(root / "train")


def test_flow_reports_bad_files_and_resumes_without_recomputing(
        tmp_path, prefect_harness, write_audio, bad_audio_files, data_params):
    clips, out = tmp_path / "clips", tmp_path / "features"
    bad = _clips(clips, write_audio, bad_audio_files)
    params = data_params()
    report = features.compute_features(params, str(clips), str(out), progress=False)

    with open(out / "report.json") as f:
        assert json.load(f) == report
    assert report["n_clips"] == 7 and report["computed"] == 3 and report["skipped_done"] == 0
    assert sorted(b["file"] for b in report["bad_files"]) == sorted(
        f"train/{bad[k]}" for k in ("corrupt", "empty", "text"))
    assert [s["file"] for s in report["silent_files"]] == [f"train/{bad['silent']}"]
    done = sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "*" / "*.npz")))
    assert done == ["train/a440.npz", "train/b330.npz", "valid/c262.npz"]
    with np.load(out / "train" / "b330.npz") as npz:
        assert str(npz["id"]) == "b330" and int(npz["instrument_id"]) == 73
        assert np.median(npz["f0_hz"][10:-10]) == pytest.approx(330.0, rel=0.01)
        np.testing.assert_array_equal(np.nonzero(npz["note_active_frame_indices"])[1], 64)
        assert npz["note_active_frame_indices"].sum() == 125
    with np.load(out / "train" / "a440.npz") as npz:
        assert "note_onsets" not in npz.files and int(npz["instrument_id"]) == -1
        assert np.median(npz["f0_hz"][10:-10]) == pytest.approx(440.0, rel=0.01)
    with open(out / "meta.json") as f:
        assert json.load(f)["frame_rate"] == 250

    # An interrupted run: one clip never finished (a temporary file left behind), one
    # output half-written by a crash. The rerun redoes exactly those two.
    os.remove(out / "valid" / "c262.npz")
    (out / "valid" / "c262.npz.tmp-123-456").write_bytes(b"partial")
    (out / "train" / "b330.npz").write_bytes(b"PK\x03\x04 truncated")
    kept_mtime = os.stat(out / "train" / "a440.npz").st_mtime_ns
    report = features.compute_features(params, str(clips), str(out), progress=False)
    assert report["computed"] == 2 and report["skipped_done"] == 1
    assert os.stat(out / "train" / "a440.npz").st_mtime_ns == kept_mtime
    assert not os.path.exists(out / "valid" / "c262.npz.tmp-123-456")
    with np.load(out / "valid" / "c262.npz") as npz:
        assert np.median(npz["f0_hz"][10:-10]) == pytest.approx(261.63, rel=0.01)

    # A changed clip is recomputed; a removed clip's output goes away.
    write_audio(clips / "train" / "a440.wav", tone(440.0, amplitude=0.25), subtype="FLOAT")
    os.remove(clips / "valid" / "c262.wav")
    report = features.compute_features(params, str(clips), str(out), progress=False)
    assert report["computed"] == 1 and report["skipped_done"] == 1
    assert not os.path.exists(out / "valid" / "c262.npz")
    with np.load(out / "train" / "a440.npz") as npz:
        np.testing.assert_allclose(np.max(npz["audio"]), 0.25, rtol=1e-3)


def test_dask_task_runner_on_a_local_cluster(tmp_path, prefect_harness, write_audio,
                                            data_params):
    from distributed import LocalCluster

    clips = tmp_path / "clips"
    write_audio(clips / "train" / "d392.wav", tone(392.0), subtype="FLOAT")
    write_audio(clips / "test" / "e494.wav", tone(493.88), subtype="FLOAT")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        params = data_params(task_runner="dask", dask_address=cluster.scheduler_address,
                             batch_size=1)
        transitions = cluster.scheduler.transition_counter
        report = features.compute_features(params, str(clips), str(tmp_path / "out"),
                                           progress=False)
        # Two task runs (one per batch of one clip) went through the scheduler.
        assert cluster.scheduler.transition_counter - transitions >= 2 * 3
    assert report["computed"] == 2 and report["bad_files"] == []
    for name, freq in (("train/d392", 392.0), ("test/e494", 493.88)):
        with np.load(tmp_path / "out" / f"{name}.npz") as npz:
            assert np.median(npz["f0_hz"][10:-10]) == pytest.approx(freq, rel=0.01)


def test_task_runner_choice():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    base = {"max_workers": 3, "dask_address": None}
    assert isinstance(features.make_task_runner({**base, "task_runner": "thread"}),
                      ThreadPoolTaskRunner)
    runner = features.make_task_runner({**base, "task_runner": "dask",
                                        "dask_address": "tcp://10.0.0.1:8786"})
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://10.0.0.1:8786"
    with pytest.raises(ValueError, match="task_runner must be 'thread' or 'dask'"):
        features.make_task_runner({**base, "task_runner": "ray"})


def test_note_velocities_reach_the_midi_decoder_in_midi_units(tmp_path):
    """A clip with known notes goes through the features stage's own computation, the TFDS
    dataset stage and a ground-truth-MIDI MidiAutoencoder: the decoder receives each
    note's pitch and MIDI velocity (1..127) on that note's frames."""
    import keras

    from ddsp_models.training.data import PreparedTfdsProvider
    from midi_fixtures import make_midi_model, midi_shrink_bindings
    from pipeline_fixtures import CLIP_SECONDS, FRAME_RATE, N_FRAMES, SAMPLE_RATE, harmonic_tone
    from pipelines.dataset import build_dataset

    notes = [{"pitch": 60, "velocity": 30, "start": 0.0, "end": 0.2},
             {"pitch": 67, "velocity": 110, "start": 0.24, "end": 0.5}]
    audio = np.zeros(int(SAMPLE_RATE * CLIP_SECONDS), np.float32)
    for note in notes:
        start, stop = int(note["start"] * SAMPLE_RATE), int(note["end"] * SAMPLE_RATE)
        audio[start:stop] = note["velocity"] / 127.0 * harmonic_tone(note["pitch"])[:stop - start]
    computed = compute_clip_features(audio, SAMPLE_RATE, FRAME_RATE, "tiny", True,
                                                notes, 40)
    for split in ("train", "valid", "test"):
        os.makedirs(tmp_path / "features" / split)
        np.savez_compressed(tmp_path / "features" / split / f"{split}_clip.npz",
                            id=np.array(f"{split}_clip"), **computed)
    with open(tmp_path / "features" / "meta.json", "w") as f:
        json.dump({"sample_rate": SAMPLE_RATE, "frame_rate": FRAME_RATE,
                   "clip_seconds": CLIP_SECONDS, "crepe_capacity": "tiny", "crepe_viterbi": True},
                  f)
    build_dataset(str(tmp_path / "features"), str(tmp_path / "tfds"))
    provider = PreparedTfdsProvider(str(tmp_path / "tfds"), split="test")
    batch = next(iter(provider.get_batch(1, shuffle=False)))

    keras.utils.set_random_seed(0)
    model = make_midi_model(["models/midiae/midiae.gin"], midi_shrink_bindings(CLIP_SECONDS))
    outputs = model(batch)
    pitch, velocity = outputs["q_pitch"].numpy()[0, :, 0], outputs["q_vel"].numpy()[0, :, 0]
    expected_pitch, expected_velocity = np.zeros(N_FRAMES), np.zeros(N_FRAMES)
    for note in notes:
        frames = slice(int(note["start"] * FRAME_RATE), int(note["end"] * FRAME_RATE))
        expected_pitch[frames], expected_velocity[frames] = note["pitch"], note["velocity"]
    np.testing.assert_array_equal(velocity, expected_velocity)
    np.testing.assert_array_equal(pitch, expected_pitch)
