"""Specification of the `prepare` stage and the built-in MIDI melodies."""
import json
import os

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from ddsp_models.audio_io import rms_db
from ddsp_models.training import melodies
from pipelines import prepare
from tests.conftest import tone


def read_manifest(out_dir):
    with open(os.path.join(out_dir, "manifest.jsonl")) as f:
        return [json.loads(line) for line in f]


def yin_hz(audio, sample_rate=16000, fmin=50.0, fmax=2000.0, threshold=0.15):
    """Pitch of a steady segment: the first lag whose cumulative-mean-normalised difference
    (YIN) dips below ``threshold``, refined by a parabola through its neighbours."""
    w = len(audio) // 2
    lags = np.arange(1, int(sample_rate / fmin) + 1)
    diff = np.array([np.sum((audio[:w] - audio[lag:lag + w]) ** 2) for lag in lags])
    cmnd = diff * lags / np.maximum(np.cumsum(diff), 1e-12)
    valid = np.where((cmnd < threshold) & (lags >= sample_rate / fmax))[0]
    i = valid[0]
    while i + 1 < len(cmnd) and cmnd[i + 1] < cmnd[i]:
        i += 1
    a, b, c = cmnd[i - 1], cmnd[i], cmnd[i + 1]
    return sample_rate / (lags[i] + 0.5 * (a - c) / (a - 2 * b + c))


def dominant_hz(audio, sample_rate=16000):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spectrum) * sample_rate / len(audio)


# ----------------------------------------------------------------------------- splits
def test_split_counts_follow_fractions_and_fill_every_split():
    fractions = {"train": 0.8, "valid": 0.1, "test": 0.1}
    assert prepare.split_counts(10, fractions) == {"train": 8, "valid": 1, "test": 1}
    assert prepare.split_counts(3, fractions) == {"train": 1, "valid": 1, "test": 1}
    assert prepare.split_counts(20, {"train": 0.5, "valid": 0.5, "test": 0.0}) == {
        "train": 10, "valid": 10, "test": 0}


def test_assign_splits_depends_only_on_the_names():
    names = [f"take_{i:02d}.wav" for i in range(20)]
    fractions = {"train": 0.7, "valid": 0.15, "test": 0.15}
    first = prepare.assign_splits(names, fractions)
    assert prepare.assign_splits(list(reversed(names)), fractions) == first
    counts = {s: sum(v == s for v in first.values()) for s in ("train", "valid", "test")}
    assert counts == {"train": 14, "valid": 3, "test": 3}
    # One more source moves at most one existing source across a cut.
    grown = prepare.assign_splits(names + ["take_new.wav"], fractions)
    assert sum(grown[n] != first[n] for n in names) <= 1


def test_folder_split_is_deterministic_and_by_source(tmp_path, write_audio, data_params):
    for i in range(6):
        write_audio(tmp_path / "rec" / f"take{i}.wav", tone(220.0 * (i + 1), 1.0))
    params = data_params(source=str(tmp_path / "rec"))
    prepare.prepare(params, str(tmp_path / "a"), progress=False)
    prepare.prepare(params, str(tmp_path / "b"), progress=False)
    rows_a, rows_b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert [(r["id"], r["split"], r["offset"]) for r in rows_a] == \
        [(r["id"], r["split"], r["offset"]) for r in rows_b]
    assert len(rows_a) == 12  # 2 clips of 0.5 s per 1 s source
    by_source = {}
    for row in rows_a:
        by_source.setdefault(row["source"], set()).add(row["split"])
        assert os.path.isfile(tmp_path / "a" / row["path"])
        assert row["path"].startswith(row["split"] + "/")
    assert all(len(splits) == 1 for splits in by_source.values())
    assert {next(iter(s)) for s in by_source.values()} == {"train", "valid", "test"}


# ------------------------------------------------------------------ folder decoding
def test_folder_source_resamples_and_mixes_to_mono(tmp_path, write_audio, data_params):
    rec = tmp_path / "rec"
    stereo = np.stack([tone(440.0, 1.0, 0.5, 44100), tone(440.0, 1.0, 0.3, 44100)], axis=1)
    write_audio(rec / "violin" / "stereo44k.wav", stereo, 44100)
    write_audio(rec / "flute" / "mono22k.flac", tone(660.0, 1.0, 0.4, 22050), 22050)
    write_audio(rec / "oboe" / "mono48k.ogg", tone(880.0, 1.0, 0.4, 48000), 48000)
    write_audio(rec / "trumpet" / "mono32k.mp3", tone(550.0, 1.0, 0.4, 32000), 32000)
    (rec / "README.txt").write_text("not a recording")
    params = data_params(source=str(rec), clip_seconds=1.0, hop_seconds=1.0,
                         splits={"train": 1.0})
    report = prepare.prepare(params, str(tmp_path / "out"), progress=False)
    assert report["bad_files"] == [] and report["n_sources"] == 4
    rows = {r["source"]: r for r in read_manifest(tmp_path / "out")}
    expected = {"violin/stereo44k.wav": (440.0, 0.4, 40), "flute/mono22k.flac": (660.0, 0.4, 73),
                "oboe/mono48k.ogg": (880.0, 0.4, 68), "trumpet/mono32k.mp3": (550.0, 0.4, 56)}
    for source, (freq, amplitude, program) in expected.items():
        row = rows[source]
        audio, rate = sf.read(tmp_path / "out" / row["path"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1 and audio.shape == (16000,)
        assert row["instrument"] == source.split("/")[0] and row["program"] == program
        assert dominant_hz(audio) == pytest.approx(freq, abs=2.0)
        middle = audio[2000:14000]  # lossy codecs smear the edges
        # Stereo (0.5, 0.3) averages to 0.4; RMS of a sine is amplitude / sqrt(2).
        assert np.sqrt(np.mean(middle**2)) == pytest.approx(amplitude / np.sqrt(2), rel=0.05)


def test_clip_starts_keep_a_long_enough_tail():
    assert prepare.clip_starts(10, 4, 4) == [0, 4, 8]       # tail of 2 >= half a clip
    assert prepare.clip_starts(9, 4, 4) == [0, 4]           # tail of 1 dropped
    assert prepare.clip_starts(8, 4, 2) == [0, 2, 4]        # nothing left uncovered
    assert prepare.clip_starts(9, 4, 2) == [0, 2, 4, 6]     # 1 uncovered, tail clip of 3
    assert prepare.clip_starts(3, 4, 4) == [0]               # short source: one padded clip
    assert prepare.clip_starts(0, 4, 4) == []


def test_clip_notes_cut_to_the_clip_and_flag_cut_boundaries():
    notes = [{"pitch": 60, "velocity": 90, "start": 0.5, "end": 1.5, "program": 40},
             {"pitch": 62, "velocity": 70, "start": 1.5, "end": 1.8, "program": 40},
             {"pitch": 64, "velocity": 50, "start": 2.5, "end": 3.0, "program": 40}]
    clipped = melodies.clip_notes(notes, start=1.0, duration=1.0)
    assert clipped == [
        {"pitch": 60, "velocity": 90, "start": 0.0, "end": 0.5, "onset": False, "offset": True,
         "program": 40},
        {"pitch": 62, "velocity": 70, "start": 0.5, "end": 0.8, "onset": True, "offset": True,
         "program": 40}]


# --------------------------------------------------------------------- bad input files
def test_bad_files_are_reported_by_name_and_others_processed(tmp_path, write_audio,
                                                             bad_audio_files, data_params):
    rec = tmp_path / "rec"
    bad = bad_audio_files(rec)
    write_audio(rec / "good.wav", tone(330.0, 1.0))
    report = prepare.prepare(data_params(source=str(rec)), str(tmp_path / "out"), progress=False)
    with open(tmp_path / "out" / "report.json") as f:
        assert json.load(f) == report
    assert sorted(b["file"] for b in report["bad_files"]) == sorted(
        [bad["corrupt"], bad["empty"], bad["text"]])
    assert all(b["error"] for b in report["bad_files"])
    assert report["silent_files"] == [bad["silent"]]
    assert report["dropped_silent_clips"] == 1
    rows = read_manifest(tmp_path / "out")
    assert [r["source"] for r in rows] == ["good.wav", "good.wav"]
    audio, _ = sf.read(tmp_path / "out" / rows[1]["path"], dtype="float32")
    np.testing.assert_allclose(audio, tone(330.0, 1.0)[8000:], atol=2.0 / 32768)  # 16-bit input


# ---------------------------------------------------------------- built-in melodies
def test_melody_has_phrases_legato_rests_dynamics_and_vibrato():
    midi = melodies.generate_melody("violin", 20.0, seed=3)
    again = melodies.generate_melody("violin", 20.0, seed=3)
    assert melodies.note_list(midi) == melodies.note_list(again)
    track, = midi.instruments
    spec = melodies.INSTRUMENTS["violin"]
    assert track.program == spec.program == 40
    notes = sorted(track.notes, key=lambda n: n.start)
    assert all(spec.low <= n.pitch <= spec.high for n in notes)
    assert notes[-1].end <= 20.0
    gaps = np.array([b.start - a.end for a, b in zip(notes, notes[1:])])
    assert np.any(np.isclose(gaps, 0.0)) and np.all(gaps >= -1e-9)  # legato, monophonic
    assert np.max(gaps) >= 0.25                                      # a rest between phrases
    velocities = [n.velocity for n in notes]
    assert max(velocities) - min(velocities) >= 20
    bends = np.array([b.pitch for b in track.pitch_bends])
    cents = bends / (8192 / 200.0)
    assert 5.0 < np.max(np.abs(cents)) <= spec.vibrato_cents + 1e-6
    with pytest.raises(ValueError, match="instrument 'kazoo' unknown"):
        melodies.generate_melody("kazoo", 5.0, seed=0)


def test_builtin_melodies_render_with_notes_aligned_to_clips(tmp_path, data_params):
    params = data_params(n_melodies=3, melody_seconds=6.0, clip_seconds=2.0, hop_seconds=2.0,
                         instruments=["flute", "cello", "clarinet"])
    report = prepare.prepare(params, str(tmp_path), progress=False)
    assert report["bad_files"] == [] and report["n_sources"] == 3
    rows = read_manifest(tmp_path)
    assert {r["instrument"] for r in rows} == {"flute", "cello", "clarinet"}
    checked = 0
    for row in rows:
        audio, rate = sf.read(tmp_path / row["path"], dtype="float32")
        assert rate == 16000 and audio.shape == (32000,)
        assert rms_db(audio) > -40.0
        midi = pretty_midi.PrettyMIDI(str(tmp_path / "midi" / row["source"]))
        starts = np.array([n.start - row["offset"] for n in midi.instruments[0].notes])
        with open(tmp_path / row["notes"]) as f:
            annotation = json.load(f)
        assert annotation["program"] == row["program"] == midi.instruments[0].program
        for note in annotation["notes"]:
            assert 0.0 <= note["start"] < note["end"] <= 2.0
            if note["onset"]:  # the saved MIDI file quantises times to ticks (~1 ms)
                assert np.min(np.abs(starts - note["start"])) < 0.002
            if note["end"] - note["start"] < 0.3 or not note["onset"]:
                continue
            # The rendered pitch in the middle of the note is the annotated one.
            middle = int((note["start"] + note["end"]) / 2 * rate)
            segment = audio[middle - 1600:middle + 1600]
            if len(segment) < 3200:
                continue
            f0 = yin_hz(segment)
            cents = 1200 * np.log2(f0 / pretty_midi.note_number_to_hz(note["pitch"]))
            assert abs(cents) < 60, (row["id"], note, f0)
            checked += 1
    assert checked >= 5


def test_render_keeps_velocity_dynamics():
    loud, soft = (pretty_midi.PrettyMIDI() for _ in range(2))
    for midi, velocity in ((loud, 120), (soft, 40)):
        track = pretty_midi.Instrument(program=73)
        track.notes.append(pretty_midi.Note(velocity, 72, 0.1, 1.1))
        midi.instruments.append(track)
    loud_audio = melodies.render_melody(loud, duration=1.2)
    soft_audio = melodies.render_melody(soft, duration=1.2)
    assert loud_audio.shape == soft_audio.shape == (19200,)
    assert rms_db(loud_audio) - rms_db(soft_audio) > 6.0
    assert dominant_hz(loud_audio[3200:16000]) == pytest.approx(523.25, rel=0.02)
