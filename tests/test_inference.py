"""Inference on any length: chunked features and rendering equal one pass (no clicks at
chunk borders), lazy streaming, timbre-transfer controls, MIDI files through a MIDI model,
and run-folder errors."""
import json
import os
import weakref

import numpy as np
import pretty_midi
import pytest

from ddsp_models import crepe
from ddsp_models.audio_io import read_wav, write_wav
from ddsp_models.training import chunked_features, chunked_render, inference, run_folders
from inference_fixtures import make_ae_run, make_midi_run, tone, tone_statistics

SR = 16000


def semitones(f_a, f_b):
    return 12.0 * np.log2(np.asarray(f_a, np.float64) / np.asarray(f_b, np.float64))


def rms_db(x):
    return 20.0 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    folder = make_ae_run(tmp_path_factory.mktemp("runs") / "ae", statistics=tone_statistics(60.0))
    return run_folders.load_run(folder)


def test_three_chunks_equal_one_pass_and_borders_do_not_click(ae_run, tmp_path):
    audio = tone(330.0, 1.5)
    write_wav(tmp_path / "tone.wav", audio, SR)
    options = dict(crepe_capacity="tiny", context_seconds=0.25, progress=False, seed=3)
    chunked = inference.resynthesize(ae_run, str(tmp_path / "tone.wav"), str(tmp_path / "a.wav"),
                                     chunk_seconds=0.5, **options)
    whole = inference.resynthesize(ae_run, str(tmp_path / "tone.wav"), str(tmp_path / "b.wav"),
                                   chunk_seconds=10.0, plot=False, **options)
    a, rate = read_wav(tmp_path / "a.wav")
    b, _ = read_wav(tmp_path / "b.wav")
    assert rate == SR and a.size == b.size == audio.size == chunked["samples"] == whole["samples"]
    # The same audio whether rendered in 3 chunks or in one pass (16-bit files: a few LSBs).
    assert np.max(np.abs(a - b)) < 2e-4
    # No discontinuity at the chunk borders (0.5 s, 1.0 s) above the interior's largest step.
    steps = np.abs(np.diff(a.astype(np.float64)))
    interior = steps[int(0.1 * SR):int(1.4 * SR)].max()
    for border in (int(0.5 * SR), int(1.0 * SR)):
        assert steps[border - 3:border + 3].max() <= 1.05 * interior
    # The harmonics sit at the input's f0.
    f0, confidence = crepe.compute_f0(a, SR, 250, capacity="tiny")
    confident = confidence > 0.5
    assert confident.mean() > 0.8
    assert abs(np.median(semitones(f0[confident], 330.0))) < 0.3
    assert os.path.getsize(chunked["spectrogram"]) > 10000


def test_features_are_read_lazily_and_audio_is_written_as_it_is_rendered(ae_run):
    block = int(0.1 * SR)
    refs, alive_at_yield = [], []

    def blocks():
        for i in range(15):
            # numpy blocks hold no reference cycles: refcounting frees them at once.
            alive_at_yield.append(sum(r() is not None for r in refs))
            x = tone(330.0, 0.1) * 1.0
            refs.append(weakref.ref(x))
            yield x

    features = chunked_features.compute_features(blocks(), SR, 250, "tiny", True, chunk_seconds=0.5,
                                                 context_seconds=0.25)
    assert features.n_samples == 15 * block and features.n_frames == 15 * block // 64
    # At most a chunk plus its context of input blocks is held at any time.
    assert max(alive_at_yield) <= (0.5 + 2 * 0.25) / 0.1 + 2
    writes, alive_at_write = [], []

    def sink(x):
        alive_at_write.append(sum(r() is not None for r in refs))
        writes.append(x.size)

    n = chunked_render.render(ae_run, chunked_render.ControlStream(ae_run),
                              chunked_features.frame_chunks(features.as_dict(), 125),
                              features.n_samples, sink)
    assert n == sum(writes) == features.n_samples
    assert len(writes) >= 3 and max(writes) <= 125 * 64 + 64
    assert max(alive_at_write) == 0


def test_transfer_shifts_pitch_mutes_quiet_parts_and_auto_adjusts(ae_run, tmp_path):
    audio = np.concatenate([tone(330.0, 0.6), np.zeros(int(0.5 * SR), np.float32),
                            tone(330.0, 0.5)])
    path = str(tmp_path / "in.wav")
    write_wav(path, audio, SR)
    out = str(tmp_path / "up3.wav")
    result = inference.transfer(ae_run, path, out, semitones=3.0, auto=False, progress=False,
                                context_seconds=0.25, plot=False)
    y, _ = read_wav(out)
    assert y.size == audio.size and result["semitone_shift"] == 3.0
    f0, confidence = crepe.compute_f0(y, SR, 250, capacity="tiny")
    notes = np.zeros(f0.size, bool)
    notes[25:125] = notes[300:350] = True
    confident = notes & (confidence > 0.5)
    assert confident.sum() > 80
    assert abs(np.median(semitones(f0[confident], 330.0)) - 3.0) < 0.3
    # The silent middle is muted (not synthesised), after the reverb's tail.
    assert rms_db(y[int(0.85 * SR):int(1.05 * SR)]) < rms_db(y[int(0.1 * SR):int(0.5 * SR)]) - 60
    # Automatic adjustment: the data sits an octave above (MIDI 76 vs 64): +1 octave.
    ae_run.statistics = tone_statistics(76.0)
    try:
        auto = inference.transfer(ae_run, path, str(tmp_path / "auto.wav"), progress=False,
                                  context_seconds=0.25, plot=False, autotune=1.0)
    finally:
        ae_run.statistics = tone_statistics(60.0)
    assert auto["octave_shift"] == 1
    y, _ = read_wav(tmp_path / "auto.wav")
    f0, confidence = crepe.compute_f0(y, SR, 250, capacity="tiny")
    confident = notes & (confidence > 0.5)
    # 330 Hz is MIDI 63.86: an octave up, autotuned to the semitone: MIDI 76 = 659.3 Hz.
    assert abs(np.median(semitones(f0[confident], 659.255))) < 0.3


def write_song(path, chord: bool = False, spacing: float = 0.9):
    song = pretty_midi.PrettyMIDI()
    lead = pretty_midi.Instrument(program=40, name="lead")
    for i, pitch in enumerate((60, 64, 67)):
        lead.notes.append(pretty_midi.Note(velocity=100, pitch=pitch, start=0.2 + spacing * i,
                                           end=0.6 + spacing * i))
    if chord:
        lead.notes.append(pretty_midi.Note(velocity=80, pitch=72, start=0.3, end=0.5))
    song.instruments.append(lead)
    song.write(str(path))
    return str(path)


@pytest.mark.parametrize("config", ["models/midiae/midiae.gin", "models/midiae/z_midiae.gin"])
def test_midi_file_renders_its_notes_and_silence_between(config, tmp_path):
    run = run_folders.load_run(make_midi_run(tmp_path / "run", config))
    # The package's configs hold the pitch between notes: the voice sounds its learnt release
    # for RELEASE_SECONDS after each note, then it is muted.
    assert run.model.hold_pitch
    release, spacing = inference.RELEASE_SECONDS, 1.5
    song = write_song(tmp_path / "song.mid", spacing=spacing)
    out = str(tmp_path / "song.wav")
    result = inference.render_midi(run, song, out, chunk_seconds=0.5, progress=False, plot=False,
                                   tempo=1.0)
    y, _ = read_wav(out)
    assert y.size == int(round(result["seconds"] * SR)) and os.path.isfile(result["stems"]["lead"])
    f0, confidence = crepe.compute_f0(y, SR, 250, capacity="tiny")
    for i, pitch in enumerate((60, 64, 67)):
        frames = slice(int((0.25 + spacing * i) * 250), int((0.55 + spacing * i) * 250))
        hz = 440.0 * 2 ** ((pitch - 69) / 12)
        assert abs(np.median(semitones(f0[frames], hz))) < 0.3, (i, np.median(f0[frames]))
        end = 0.6 + spacing * i
        note = y[int((end - 0.3) * SR):int((end - 0.1) * SR)]
        # The release is not muted; after it and the 0.25 s reverb, silence.
        tail = y[int((end + 0.05) * SR):int((end + release - 0.05) * SR)]
        assert rms_db(tail) > rms_db(note) - 40, i
        if i < 2:
            gap = y[int((end + release + 0.27) * SR):int((end + spacing - 0.42) * SR)]
            assert rms_db(gap) < rms_db(note) - 60, i
    assert rms_db(y[:int(0.15 * SR)]) < -100


def test_midi_polyphony_is_split_into_voices_or_refused(tmp_path):
    song = write_song(tmp_path / "chord.mid", chord=True)
    voices = inference.midi_voices(song, 250, polyphony="split", pitch_offset=2, tempo=2.0)
    assert [v["n_notes"] for v in voices] == [3, 1]
    # Tempo 2: the first note starts at 0.1 s; pitch offset +2.
    assert voices[0]["pitch"][int(0.11 * 250)] == 62 and voices[0]["pitch"][int(0.09 * 250)] == 0
    assert voices[0]["velocity"][int(0.11 * 250)] == 100
    with pytest.raises(ValueError, match="track 'lead' is polyphonic"):
        inference.midi_voices(song, 250, polyphony="error")


def test_run_folder_errors_name_the_folder(tmp_path, ae_run):
    with pytest.raises(ValueError, match="does not exist"):
        run_folders.load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no operative_config"):
        run_folders.load_run(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a MIDI model"):
        chunked_render.ControlStream(ae_run, "midi")
    # The inference module's public API is the one of the modules it puts together.
    assert inference.load_run is run_folders.load_run
    assert inference.register_run_loader is run_folders.register_run_loader
    assert inference.compute_features is chunked_features.compute_features


def test_cli_resynthesizes_and_keeps_going_past_a_bad_file(ae_run, tmp_path, capsys):
    write_wav(tmp_path / "good.wav", tone(220.0, 0.5), SR)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    code = inference.main(["resynthesize", "--run-dir", ae_run.folder, "--audio",
                           str(tmp_path / "bad.wav"), str(tmp_path / "good.wav"),
                           "--out", str(tmp_path / "out"), "--quiet", "--no-plot",
                           "--context-seconds", "0.25"])
    assert code == 1  # one file failed
    y, _ = read_wav(tmp_path / "out" / "good.wav")
    assert y.size == int(0.5 * SR)
    printed = json.loads(capsys.readouterr().out)
    assert printed["samples"] == y.size
