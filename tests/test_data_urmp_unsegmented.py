"""data.UrmpMidiUnsegmented reads the original's URMP records of whole recordings (every
feature a variable-length float list, rolls flattened [n_frames * 128], instrument and
recording ids as bytes) and yields the original's example: audio [n_samples], f0_hz and
loudness_db [n_frames, 1], rolls [n_frames, 128], instrument_id as an index, midi, onsets,
offsets; the features the original leaves sparse come out dense."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.training import data

FILE = "urmp_vc_solo_ddsp_conditioning_train_unbatched.tfrecord"
ORIGINAL_KEYS = {"audio", "f0_hz", "f0_confidence", "loudness_db", "note_active_velocities",
                 "note_active_frame_indices", "instrument_id", "recording_id", "power_db", "note_onsets",
                 "note_offsets", "midi", "onsets", "offsets"}


def recording(n_frames: int, notes, instrument: str, seed: int) -> dict:
    """One recording's features (250 frames/s, 64 samples/frame); `notes`: (pitch, first
    frame, last frame, velocity)."""
    rng = np.random.default_rng(seed)
    velocities = np.zeros((n_frames, 128), np.float32)
    onsets, offsets = np.zeros_like(velocities), np.zeros_like(velocities)
    for pitch, first, last, velocity in notes:
        velocities[first:last + 1, pitch] = velocity
        onsets[first, pitch], offsets[last, pitch] = 1.0, 1.0
    return {"audio": rng.uniform(-0.5, 0.5, n_frames * 64).astype(np.float32),
            "f0_hz": rng.uniform(100.0, 500.0, n_frames).astype(np.float32),
            "f0_confidence": rng.uniform(0.0, 1.0, n_frames).astype(np.float32),
            "loudness_db": rng.uniform(-80.0, 0.0, n_frames).astype(np.float32),
            "power_db": rng.uniform(-80.0, 0.0, n_frames).astype(np.float32),
            "note_active_velocities": velocities, "note_active_frame_indices": (velocities > 0).astype(np.float32),
            "note_onsets": onsets, "note_offsets": offsets,
            "instrument_id": instrument.encode(), "recording_id": f"AuSep_{seed}_{instrument}".encode()}


def write_original_records(path, recordings, drop=()):
    """The original's format: float lists (arrays flattened), bytes lists for the ids."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for features in recordings:
            feature = {}
            for key, value in features.items():
                if key in drop:
                    continue
                if isinstance(value, bytes):
                    feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
                else:
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=value.reshape(-1)))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


RECORDINGS = [recording(40, [(57, 5, 19, 90.0), (60, 25, 34, 70.0)], "vc", seed=1),
              recording(23, [(72, 0, 22, 100.0)], "xx", seed=2)]


def test_yields_the_originals_keys_and_values(tmp_path):
    write_original_records(tmp_path / FILE, RECORDINGS)
    provider = data.UrmpMidiUnsegmented(str(tmp_path), instrument_key="vc", split="train", suffix="unbatched")
    examples = list(provider.get_dataset(shuffle=False).as_numpy_iterator())
    assert len(examples) == 2
    for example, written in zip(examples, RECORDINGS):
        assert set(example) == ORIGINAL_KEYS
        n_frames = len(written["f0_hz"])
        np.testing.assert_array_equal(example["audio"], written["audio"])
        for key in ("f0_hz", "loudness_db"):  # [n_frames, 1]
            np.testing.assert_array_equal(example[key], written[key][:, np.newaxis])
        for key in ("f0_confidence", "power_db"):  # dense [n_frames] (sparse in the original)
            np.testing.assert_array_equal(example[key], written[key])
        for key in ("note_active_velocities", "note_active_frame_indices"):  # [n_frames, 128]
            np.testing.assert_array_equal(example[key], written[key])
        for key in ("note_onsets", "note_offsets"):  # flat, as stored (dense here)
            np.testing.assert_array_equal(example[key], written[key].reshape(-1))
        assert example["recording_id"] == written["recording_id"]
        # midi: argmax of the active frame indices (0 where no note plays).
        assert example["midi"].dtype == np.int64
        np.testing.assert_array_equal(example["midi"], np.argmax(written["note_active_frame_indices"], -1))
        for key, roll in (("onsets", "note_onsets"), ("offsets", "note_offsets")):
            assert example[key].dtype == np.int64 and example[key].shape == (n_frames,)
            np.testing.assert_array_equal(example[key].nonzero()[0], written[roll].sum(-1).nonzero()[0])
    first, second = examples
    assert first["instrument_id"] == 2 and second["instrument_id"] == -1  # 'vc'; unknown code
    assert first["midi"][10] == 57 and first["midi"][30] == 60 and first["midi"][22] == 0
    assert first["onsets"].nonzero()[0].tolist() == [5, 25] and first["offsets"].nonzero()[0].tolist() == [19, 34]
    assert second["onsets"].nonzero()[0].tolist() == [0] and second["offsets"].nonzero()[0].tolist() == [22]
    # Dense values: recordings of different lengths batch when padded.
    batch = next(iter(provider.get_dataset(shuffle=False).padded_batch(2)))
    assert batch["note_active_velocities"].shape == (2, 40, 128)
    np.testing.assert_array_equal(batch["f0_confidence"][1], np.pad(RECORDINGS[1]["f0_confidence"], (0, 17)))


def test_records_without_a_feature_name_the_file_and_key(tmp_path):
    write_original_records(tmp_path / FILE, RECORDINGS, drop=("note_offsets",))
    provider = data.UrmpMidiUnsegmented(str(tmp_path), instrument_key="vc", split="train", suffix="unbatched")
    with pytest.raises(ValueError, match=rf"{FILE}.*lack \['note_offsets'\]"):
        provider.get_dataset(shuffle=False)
