"""Bad recordings in `prepare` and bad clips in `features`: every good file comes through,
every bad one is named with a reason, nothing else is lost (issue 14, item 3).

Generated here: empty, truncated (600 bytes), non-audio, stereo, 8-bit, 44.1 / 48 kHz,
0.2 s, all-silent, NaN-containing, very loud clipped files, and a corrupt `.mid` beside a
good recording."""
import io
import json
import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone


def _bytes_of_wav(audio, rate, subtype="PCM_16"):
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def write_bad_and_good(folder, seconds):
    """Writes the files; returns {kind: file name} of the good and the bad ones."""
    os.makedirs(folder, exist_ok=True)
    path = lambda name: os.path.join(folder, name)  # noqa: E731
    stereo = np.stack([tone(440.0, seconds, 0.5, 44100), tone(440.0, seconds, 0.3, 44100)], 1)
    sf.write(path("stereo44k.wav"), stereo, 44100)
    sf.write(path("mono48k.wav"), tone(523.25, seconds, 0.4, 48000), 48000)
    sf.write(path("eightbit.wav"), tone(330.0, seconds, 0.4), 16000, subtype="PCM_U8")
    sf.write(path("annotated.flac"), tone(392.0, seconds, 0.4), 16000)
    with open(path("annotated.mid"), "wb") as f:
        f.write(b"MThd\x00\x00\x00\x06 this MIDI file is cut off")
    sf.write(path("loud.wav"), np.clip(tone(262.0, seconds, 3.0), -1.0, 1.0), 16000)
    open(path("empty.wav"), "wb").close()
    with open(path("text.wav"), "w") as f:
        f.write("not audio at all\n" * 40)
    with open(path("truncated.wav"), "wb") as f:
        f.write(_bytes_of_wav(tone(440.0, 1.0), 16000)[:600])
    sf.write(path("short.wav"), tone(440.0, 0.2), 16000)
    sf.write(path("silent.wav"), np.zeros(int(seconds * 16000), np.float32), 16000)
    nan = tone(440.0, seconds)
    nan[100:200] = np.nan
    sf.write(path("nan.wav"), nan, 16000, subtype="FLOAT")
    good = {"stereo44k.wav": 440.0, "mono48k.wav": 523.25, "eightbit.wav": 330.0,
            "annotated.flac": 392.0, "loud.wav": 262.0}
    bad = ["empty.wav", "text.wav", "truncated.wav", "short.wav", "nan.wav"]
    return good, bad


def test_prepare_keeps_every_good_recording_and_names_every_bad_one(tmp_path, data_params):
    from pipelines import prepare

    rec, out = tmp_path / "rec", tmp_path / "clips"
    good, bad = write_bad_and_good(rec, seconds=1.0)
    report = prepare.prepare(data_params(source=str(rec)), str(out), progress=False)
    assert report["n_sources"] == len(good) + len(bad) + 1  # + silent.wav
    reasons = {b["file"]: b["error"] for b in report["bad_files"]}
    assert sorted(reasons) == sorted(bad)
    assert all(len(r) > 10 for r in reasons.values()), reasons
    assert "shorter than half a clip" in reasons["short.wav"]
    assert "non-finite" in reasons["nan.wav"]
    assert report["silent_files"] == ["silent.wav"]
    # The flac's annotation is corrupt, its audio is fine: kept, without notes.
    assert [a["file"] for a in report["bad_annotations"]] == ["annotated.mid"]
    assert "kept without note annotations" in report["bad_annotations"][0]["error"]
    assert [w["file"] for w in report["warnings"]] == ["loud.wav"]
    assert "clipped" in report["warnings"][0]["warning"]
    with open(out / "manifest.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert sorted({r["source"] for r in rows}) == sorted(good)
    assert len(rows) == 2 * len(good)  # two 0.5 s clips per 1 s recording, none lost
    for row in rows:
        audio, rate = sf.read(out / row["path"], dtype="float32")
        assert rate == 16000 and audio.shape == (8000,)
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        assert np.argmax(spectrum) * 2.0 == pytest.approx(good[row["source"]], abs=2.0)
        assert row["notes"] is None
    # Every split gets a source (5 usable of 11 files; the bad ones never held a place).
    assert all(n >= 1 for n in report["sources_per_split"].values()), report
    assert not (out / prepare.STAGING).exists()


def test_features_compute_the_good_clips_and_name_the_bad_ones(tmp_path, prefect_harness,
                                                               data_params):
    from pipelines import features

    clips, out = tmp_path / "clips", tmp_path / "features"
    good, bad = write_bad_and_good(clips / "train", seconds=0.5)
    del good["annotated.flac"]  # the features stage reads the prepared <split>/*.wav clips
    report = features.compute_features(data_params(), str(clips), str(out), progress=False)
    reasons = {b["file"]: b["error"] for b in report["bad_files"]}
    assert sorted(reasons) == sorted(f"train/{n}" for n in bad)
    assert all(len(r) > 10 for r in reasons.values()), reasons
    assert "expected 0.500 s" in reasons["train/short.wav"]
    assert [s["file"] for s in report["silent_files"]] == ["train/silent.wav"]
    assert [w["file"] for w in report["warnings"]] == ["train/loud.wav"]
    assert report["computed"] == len(good)
    for name, freq in good.items():
        with np.load(out / "train" / name.replace(".wav", ".npz")) as npz:
            assert npz["audio"].shape == (8000,)
            assert np.median(npz["f0_hz"][20:-20]) == pytest.approx(freq, rel=0.02), name
