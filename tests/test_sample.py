"""The ``sample`` flow (pipelines/sample.py): resynthesis and timbre transfer."""
import json
import os

import numpy as np
import soundfile as sf

from pipelines.sample import sample_runs, shift_notes


def test_notes_move_by_whole_octaves_and_fall_off_the_keyboard_edge():
    roll = np.zeros((4, 128), np.float32)
    roll[:, 60] = 1.0
    roll[:, 120] = 0.5
    up = shift_notes({"note_active_velocities": roll, "f0_hz": np.ones(4)}, 1)
    assert np.all(up["note_active_velocities"][:, 72] == 1.0)
    assert up["note_active_velocities"].sum() == 4.0  # the note at 120 left the range
    down = shift_notes({"note_onsets": roll}, -2)["note_onsets"]
    assert np.all(down[:, 36] == 1.0) and np.all(down[:, 96] == 0.5)


def test_sample_flow_writes_resynthesis_and_timbre_transfer(trained_tiny_runs):
    folders = trained_tiny_runs["folders"]
    records = sample_runs(None, ["ae", "midiae"], trained_tiny_runs["overrides"],
                          folders=folders)
    samples_dir = folders.samples_dir
    for run in ("ae", "midiae"):
        with open(os.path.join(samples_dir, run, "samples.json")) as f:
            stored = json.load(f)
        assert stored == json.loads(json.dumps(records[run]))
        (clip,) = stored["resynthesis"]  # sample.n_clips = 1
        assert clip["clip"] == "test_tone60"
        original, rate = sf.read(clip["original"])
        resynth, _ = sf.read(clip["resynth"])
        assert rate == 16000 and original.shape == resynth.shape == (8000,)
        assert np.all(np.isfinite(resynth)) and np.abs(resynth).max() > 0
        assert os.path.getsize(clip["spectrogram"]) > 1000
        transfer = stored["transfer"]
        source, _ = sf.read(transfer["source"])
        driven, _ = sf.read(transfer["transfer"])
        assert source.shape == driven.shape == (8000,)
        assert np.abs(source).max() > 0.01 and np.abs(driven).max() > 0
        # auto: the alto-sax melody moves to the octave nearest the tones (mean MIDI ~62).
        assert isinstance(transfer["octave_shift"], int) and abs(transfer["octave_shift"]) <= 1
        assert math_is_finite(transfer["loudness_shift_db"])


def math_is_finite(x):
    return bool(np.isfinite(x))
