"""Specification of the data providers and of the TFDS dataset `ddsp_prepared`."""
import hashlib
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_fixtures import write_fake_nsynth
from ddsp_models.training import data
from ddsp_models.training.tfds_builder import ddsp_prepared
from pipelines import dataset as dataset_stage


def synthetic_examples(n=5, n_samples=160, n_frames=10, seed=0):
    """Distinct, recognisable values per example: example i's f0 is 100 * (i + 1) Hz."""
    rng = np.random.default_rng(seed)
    return {
        "audio": rng.uniform(-1, 1, (n, n_samples)).astype(np.float32),
        "f0_hz": np.repeat(100.0 * np.arange(1, n + 1)[:, None], n_frames, 1).astype(np.float32),
        "f0_confidence": rng.uniform(0, 1, (n, n_frames)).astype(np.float32),
        "loudness_db": rng.uniform(-80, 0, (n, n_frames)).astype(np.float32),
        "power_db": rng.uniform(-80, 0, (n, n_frames)).astype(np.float32),
    }


def collect(dataset):
    batches = [{k: v.numpy() for k, v in b.items()} for b in dataset]
    return batches, {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


# --------------------------------------------------------------------- in memory
def test_in_memory_batches_in_order_and_values_match():
    examples = synthetic_examples(5)
    provider = data.InMemoryProvider(examples, sample_rate=16000, frame_rate=250)
    assert (provider.sample_rate, provider.frame_rate) == (16000, 250)
    batches, joined = collect(provider.get_batch(2, shuffle=False, repeats=1))
    assert [b["audio"].shape for b in batches] == [(2, 160), (2, 160)]   # remainder dropped
    for key, value in examples.items():
        np.testing.assert_array_equal(joined[key], value[:4])
    batches, _ = collect(provider.get_batch(2, shuffle=False, repeats=1, drop_remainder=False))
    assert [b["f0_hz"].shape for b in batches] == [(2, 10), (2, 10), (1, 10)]


def test_shuffled_epochs_cover_every_example_once_in_new_orders():
    examples = synthetic_examples(8)
    provider = data.InMemoryProvider(examples, seed=3)
    _, joined = collect(provider.get_batch(4, shuffle=True, repeats=2))
    first, second = joined["f0_hz"][:8, 0], joined["f0_hz"][8:, 0]
    assert sorted(first) == sorted(second) == list(100.0 * np.arange(1, 9))
    assert not np.array_equal(first, second)
    # Rows stay whole: audio moves with its f0.
    for row in range(16):
        i = int(joined["f0_hz"][row, 0] / 100) - 1
        np.testing.assert_array_equal(joined["audio"][row], examples["audio"][i])
    repeat_forever = provider.get_batch(3)
    assert [next(iter(repeat_forever))["audio"].shape] == [(3, 160)]


def test_in_memory_rejects_ragged_examples():
    with pytest.raises(ValueError, match="share the first"):
        data.InMemoryProvider({"audio": np.zeros((3, 4)), "f0_hz": np.zeros((2, 1))})
    with pytest.raises(TypeError, match="non-empty dict"):
        data.InMemoryProvider([np.zeros(3)])


# --------------------------------------------------------------------------- npz
def test_npz_provider_reads_one_example_per_file(tmp_path):
    examples = synthetic_examples(4)
    for i in range(4):
        np.savez(tmp_path / f"clip{i}.npz", instrument_id=np.int64(40 + i), id=np.array(f"c{i}"),
                 _fingerprint=np.array("x"), **{k: v[i] for k, v in examples.items()})
    provider = data.NpzProvider(str(tmp_path / "*.npz"))
    assert "_fingerprint" not in provider.keys
    batches, joined = collect(provider.get_batch(2, shuffle=False, repeats=1))
    assert len(batches) == 2
    for key, value in examples.items():
        np.testing.assert_array_equal(joined[key], value)
    np.testing.assert_array_equal(joined["instrument_id"], [40, 41, 42, 43])
    assert joined["id"].tolist() == [b"c0", b"c1", b"c2", b"c3"]
    shuffled_provider = data.NpzProvider(str(tmp_path / "*.npz"), seed=1)
    _, shuffled = collect(shuffled_provider.get_batch(4, repeats=1))
    assert sorted(shuffled["instrument_id"][:4]) == [40, 41, 42, 43]
    selected = data.NpzProvider(str(tmp_path / "*.npz"), keys=["audio", "f0_hz"])
    assert set(selected.get_dataset().element_spec) == {"audio", "f0_hz"}


def test_npz_provider_names_bad_files(tmp_path):
    with pytest.raises(ValueError, match="matches no files"):
        data.NpzProvider(str(tmp_path / "*.npz"))
    np.savez(tmp_path / "a.npz", audio=np.zeros(16, np.float32))
    np.savez(tmp_path / "b.npz", audio=np.zeros(8, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"b\.npz: array 'audio' has shape \(8,\)"):
        collect(data.NpzProvider(str(tmp_path / "*.npz")).get_batch(1, shuffle=False,
                                                                    repeats=1))


# ---------------------------------------------------------------------- tfrecord
def test_tfrecord_round_trip_with_writer(tmp_path):
    examples = synthetic_examples(6, n_samples=16000, n_frames=250)
    rows = [{k: v[i] for k, v in examples.items()} for i in range(6)]
    assert data.write_tfrecord(tmp_path / "a.tfrecord", rows[:3]) == 3
    assert data.write_tfrecord(tmp_path / "b.tfrecord", rows[3:]) == 3
    provider = data.TFRecordProvider(str(tmp_path / "*.tfrecord"), example_secs=1)
    assert (provider.n_samples, provider.n_frames) == (16000, 250)
    _, joined = collect(provider.get_batch(3, shuffle=False, repeats=1))
    order = np.argsort(joined["f0_hz"][:, 0])
    for key, value in examples.items():
        np.testing.assert_array_equal(joined[key][order], value)
    centered = data.TFRecordProvider(str(tmp_path / "*.tfrecord"), example_secs=1, centered=True)
    assert centered.features_dict["f0_hz"].shape == [251]


def test_providers_are_gin_configurable(tmp_path):
    examples = synthetic_examples(2, n_samples=8000, n_frames=125)
    data.write_tfrecord(tmp_path / "x.tfrecord", [{k: v[i] for k, v in examples.items()}
                                                   for i in range(2)])
    gin.parse_config([f"data.TFRecordProvider.file_pattern = '{tmp_path}/x.tfrecord'",
                      "TFRecordProvider.example_secs = 0.5"])
    try:
        provider = data.TFRecordProvider()
        batch = next(iter(provider.get_batch(2, shuffle=False)))
        np.testing.assert_array_equal(batch["audio"].numpy(), examples["audio"])
    finally:
        gin.clear_config()


# ------------------------------------------- the original DDSP's TFRecords (golden)
GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden")
# name: (sample_rate, centered), as scripts/golden/record_upstream_tfrecords.py wrote them
UPSTREAM_RECORDS = {"upstream_same": (16000, False), "upstream_center": (8000, True)}
UPSTREAM_KEYS = {"audio", "audio_16k", "f0_hz", "f0_confidence", "loudness_db"}


def upstream_provider(name, **kwargs):
    sample_rate, centered = UPSTREAM_RECORDS[name]
    return data.TFRecordProvider(os.path.join(GOLDEN, f"{name}.tfrecord"), example_secs=1,
                                 sample_rate=sample_rate, frame_rate=250, centered=centered, **kwargs)


def first_batch(provider):
    batch = next(iter(provider.get_batch(8, shuffle=False, repeats=1, drop_remainder=False)))
    return {key: value.numpy() for key, value in batch.items()}


@pytest.mark.parametrize("name", sorted(UPSTREAM_RECORDS))
def test_original_records_read_as_the_original_reads_them(name):
    """Records of the original's prepare_tfrecord (audio_16k, no power_db), read with its
    arguments: the same keys, frame counts (centred: n + 1) and values as its own provider."""
    golden = np.load(os.path.join(GOLDEN, "upstream_batches.npz"))
    batch = first_batch(upstream_provider(name))
    assert set(batch) == UPSTREAM_KEYS
    for key, value in batch.items():
        if key.startswith("audio"):
            assert value.shape == tuple(golden[f"{name}/{key}.shape"])
            digest = hashlib.sha256(value.astype("<f4").tobytes()).hexdigest()
            assert digest == str(golden[f"{name}/{key}.sha256"])
        else:
            np.testing.assert_array_equal(value, golden[f"{name}/{key}"])
    n_frames = 251 if UPSTREAM_RECORDS[name][1] else 250
    assert batch["f0_hz"].shape[1] == n_frames


@pytest.mark.parametrize("name", sorted(UPSTREAM_RECORDS))
def test_power_of_original_records_matches_the_originals_compute_power(name):
    """with_power=True adds power_db from audio_16k with the original's framing: equal (to
    1e-4 dB) to the original's spectral_ops.compute_power of the same audio."""
    golden = np.load(os.path.join(GOLDEN, "upstream_batches.npz"))
    batch = first_batch(upstream_provider(name, with_power=True))
    assert set(batch) == UPSTREAM_KEYS | {"power_db"}
    assert batch["power_db"].shape == golden[f"{name}/power_db"].shape
    np.testing.assert_allclose(batch["power_db"], golden[f"{name}/power_db"], atol=1e-4)
    assert batch["power_db"].max() > -20.0 and batch["power_db"].min() >= -80.0


def test_stored_power_is_read_and_with_power_false_drops_it(tmp_path):
    examples = synthetic_examples(2, n_samples=16000, n_frames=250)
    data.write_tfrecord(tmp_path / "p.tfrecord", [{k: v[i] for k, v in examples.items()} for i in range(2)])
    for with_power in (None, True):
        batch = first_batch(data.TFRecordProvider(str(tmp_path / "p.tfrecord"), example_secs=1,
                                                  with_power=with_power))
        np.testing.assert_array_equal(batch["power_db"], examples["power_db"])  # stored, not recomputed
    batch = first_batch(data.TFRecordProvider(str(tmp_path / "p.tfrecord"), example_secs=1, with_power=False))
    assert "power_db" not in batch and "audio_16k" not in batch


def test_records_without_a_needed_feature_name_the_file_and_key(tmp_path):
    examples = synthetic_examples(1, n_samples=16000, n_frames=250)
    del examples["f0_confidence"]
    data.write_tfrecord(tmp_path / "bad.tfrecord", [{k: v[0] for k, v in examples.items()}])
    provider = data.TFRecordProvider(str(tmp_path / "bad.tfrecord"), example_secs=1)
    with pytest.raises(ValueError, match=r"bad\.tfrecord.*f0_confidence"):
        provider.get_dataset(shuffle=False)


# ---------------------------------------------------------- NSynth (fake builder)
def test_nsynth_tfds_maps_feature_names_offline(tmp_path):
    rows = write_fake_nsynth(tmp_path)
    provider = data.NSynthTfds(split="valid", data_dir=str(tmp_path))
    _, joined = collect(provider.get_batch(3, shuffle=False, repeats=1))
    assert {"audio", "f0_hz", "f0_confidence", "loudness_db"} <= set(joined)
    order = np.argsort(joined["f0_hz"][:, 0])
    for got, row in zip(order, rows):
        np.testing.assert_array_equal(joined["audio"][got], row["audio"])
        np.testing.assert_array_equal(joined["f0_hz"][got], row["f0"]["hz"])
        np.testing.assert_array_equal(joined["f0_confidence"][got], row["f0"]["confidence"])
        np.testing.assert_array_equal(joined["loudness_db"][got], row["loudness"]["db"])
        assert joined["pitch"][got] == row["pitch"]
        assert joined["instrument_id"][got] == row["instrument"]["label"]
    # Never downloads: an unprepared folder is an error naming it (TFDS with download=True
    # would try the network instead).
    with pytest.raises(FileNotFoundError, match=r"NSynthTfds: TFDS dataset "
                       r"'nsynth/gansynth_subset.f0_and_loudness:2.3.3' is not prepared under "
                       r"data_dir '.*empty'; this provider never downloads"):
        data.NSynthTfds(split="train", data_dir=str(tmp_path / "empty")).get_dataset()


# ------------------------------------------------- TFDS ddsp_prepared round trip
def write_features_dir(root, with_midi=True, n_per_split=(3, 2, 1)):
    """Feature files as the `features` stage writes them, with made-up values."""
    rng = np.random.default_rng(1)
    written = {}
    for split, n in zip(("train", "valid", "test"), n_per_split):
        os.makedirs(root / split, exist_ok=True)
        for i in range(n):
            clip_id = f"{split}_clip{i}"
            example = {"audio": rng.uniform(-1, 1, 8000).astype(np.float32),
                       "instrument_id": np.int64(40 + i), "id": np.array(clip_id),
                       "_fingerprint": np.array("abc")}
            for key in ddsp_prepared.FRAME_FEATURES:
                example[key] = rng.uniform(0, 1, 125).astype(np.float32)
            if with_midi:
                for key in ddsp_prepared.MIDI_FEATURES:
                    example[key] = (rng.uniform(0, 1, (125, 128)) > 0.99).astype(np.float32)
            np.savez_compressed(root / split / f"{clip_id}.npz", **example)
            written[clip_id] = (split, example)
    with open(root / "meta.json", "w") as f:
        json.dump({"sample_rate": 16000, "frame_rate": 250, "clip_seconds": 0.5,
                   "crepe_capacity": "tiny", "crepe_viterbi": True}, f)
    return written


def test_prepared_tfds_round_trip_equals_the_feature_files(tmp_path):
    written = write_features_dir(tmp_path / "features")
    assert dataset_stage.choose_config(str(tmp_path / "features")) == "midi"
    builder = dataset_stage.build_dataset(str(tmp_path / "features"), str(tmp_path / "tfds"))
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 3, "valid": 2, "test": 1}

    # Offline by name (the package registers the builder), in a fresh read.
    seen = set()
    for split in ("train", "valid", "test"):
        ds = tfds.load("ddsp_prepared/midi", split=split, data_dir=str(tmp_path / "tfds"),
                       download=False)
        for ex in tfds.as_numpy(ds):
            clip_id = ex["id"].decode()
            expected_split, expected = written[clip_id]
            assert expected_split == split
            for key in ("audio", "instrument_id") + ddsp_prepared.FRAME_FEATURES \
                    + ddsp_prepared.MIDI_FEATURES:
                np.testing.assert_array_equal(ex[key], expected[key], err_msg=key)
            seen.add(clip_id)
    assert seen == set(written)

    # The provider reads the folder without the builder code and gives static shapes.
    provider = data.PreparedTfdsProvider(str(tmp_path / "tfds"), split="train")
    assert (provider.sample_rate, provider.frame_rate, provider.config) == (16000, 250, "midi")
    batch = next(iter(provider.get_batch(2, shuffle=False)))
    assert batch["audio"].shape == (2, 8000) and batch["f0_hz"].shape == (2, 125)
    assert batch["note_onsets"].shape == (2, 125, 128)
    for row in range(2):
        _, expected = written[batch["id"][row].numpy().decode()]
        np.testing.assert_array_equal(batch["loudness_db"][row].numpy(), expected["loudness_db"])

    @tf.function
    def mean_f0(b):
        return tf.reduce_mean(b["f0_hz"])
    assert np.isfinite(mean_f0(batch).numpy())


def test_audio_only_features_build_the_audio_config(tmp_path):
    write_features_dir(tmp_path / "features", with_midi=False, n_per_split=(2, 1, 1))
    dataset_stage.build_dataset(str(tmp_path / "features"), str(tmp_path / "tfds"))
    provider = data.PreparedTfdsProvider(str(tmp_path / "tfds"), split="valid")
    assert provider.config == "audio"
    batch = next(iter(provider.get_batch(1, shuffle=False)))
    assert "note_onsets" not in batch and batch["power_db"].shape == (1, 125)
    with pytest.raises(ValueError, match="config 'midi' not prepared"):
        data.PreparedTfdsProvider(str(tmp_path / "tfds"), config="midi")


# ------------------------------------------------- synthetic notes and zipped providers
def test_synthetic_notes_provider_yields_the_generator_notes_with_new_seeds_per_chunk():
    from ddsp_models.training.synthetic_notes import generate_synthetic_notes

    provider = data.SyntheticNotesProvider(n_seconds=0.25, frame_rate=100, n_harmonics=6, n_noise_bands=9,
                                           n_examples=3, chunk_size=2, seed=5)
    _, examples = collect(provider.get_batch(1, repeats=1))
    assert examples["audio"].shape == (3, 4000) and examples["sin_freqs"].shape == (3, 25, 6)
    expected = [generate_synthetic_notes(batch_size=2, n_seconds=0.25, frame_rate=100, n_harmonics=6,
                                         n_noise_bands=9, seed=s) for s in (5, 6)]
    for key in ("audio", "f0_hz", "harm_dist", "noise_magnitudes"):
        want = np.concatenate([e[key].numpy() for e in expected])[:3]
        np.testing.assert_allclose(examples[key], want, rtol=1e-6, atol=1e-7, err_msg=key)
    # A second pass of a repeated dataset draws new notes (the seeds continue: 7, 8).
    _, two_passes = collect(provider.get_batch(1, repeats=2))
    np.testing.assert_array_equal(two_passes["f0_hz"][:3], examples["f0_hz"])
    third = generate_synthetic_notes(batch_size=2, n_seconds=0.25, frame_rate=100, n_harmonics=6,
                                     n_noise_bands=9, seed=7)
    np.testing.assert_allclose(two_passes["f0_hz"][3:5], third["f0_hz"].numpy(), rtol=1e-6)
    # Each new dataset starts at the seed, however far another was read or prefetched.
    ahead = iter(provider.get_batch(1, repeats=-1).prefetch(8))
    for _ in range(5):
        next(ahead)
    _, again = collect(provider.get_batch(1, repeats=1))
    np.testing.assert_array_equal(again["f0_hz"], examples["f0_hz"])


def test_zipped_provider_yields_a_tuple_of_parts_and_checks_audio_lengths():
    synthetic = data.SyntheticNotesProvider(n_seconds=0.02, frame_rate=100, n_harmonics=3, n_noise_bands=5,
                                            chunk_size=2)
    real = data.InMemoryProvider(synthetic_examples(n=3, n_samples=320, n_frames=10))
    zipped = data.ZippedProvider([synthetic, real])
    synthetic_batch, real_batch = next(iter(zipped.get_batch(2, shuffle=False)))  # the original's tuple
    assert synthetic_batch["audio"].shape == real_batch["audio"].shape == (2, 320)
    assert synthetic_batch["sin_amps"].shape == (2, 2, 3) and real_batch["f0_hz"].shape == (2, 10)
    np.testing.assert_array_equal(real_batch["audio"], real.examples["audio"][:2])
    # Unseeded while a part's order is; seeding it (train.seed) seeds only the unseeded parts.
    assert real.seed is None and synthetic.seed == 0 and zipped.seed is None
    zipped.seed = 3
    assert (synthetic.seed, real.seed) == (0, 3) and zipped.seed == (0, 3)
    short = data.InMemoryProvider(synthetic_examples(n=3, n_samples=80, n_frames=5))
    with pytest.raises(ValueError, match=r"synthetic \(SyntheticNotesProvider\): 320 samples, "
                                         r"real \(InMemoryProvider\): 80 samples"):
        data.ZippedProvider([synthetic, short])
    with pytest.raises(ValueError, match="names"):
        data.ZippedProvider([synthetic, real], names=("a", "a"))
    with pytest.raises(ValueError, match="sample_rate"):
        data.ZippedProvider([synthetic, data.InMemoryProvider(real.examples, sample_rate=8000)])
    with pytest.raises(ValueError, match="n_seconds"):
        data.SyntheticNotesProvider(n_seconds=0.01, frame_rate=100)


def test_prepared_tfds_distinct_values_scan_every_split(tmp_path):
    """Instrument ids 7, 5 (train), 5 (valid), -1 (test): the scan finds each once."""
    rng = np.random.default_rng(0)
    features_dir = tmp_path / "features"
    ids = {"train": [7, 5, 7], "valid": [5], "test": [-1]}
    for split, split_ids in ids.items():
        (features_dir / split).mkdir(parents=True)
        for i, instrument_id in enumerate(split_ids):
            example = {"audio": rng.uniform(-0.1, 0.1, 800).astype(np.float32),
                       "instrument_id": np.int64(instrument_id), "id": np.array(f"{split}_{i}")}
            for key in ddsp_prepared.FRAME_FEATURES:
                example[key] = rng.uniform(0, 1, 12).astype(np.float32)
            np.savez_compressed(features_dir / split / f"{split}_{i}.npz", **example)
    (features_dir / "meta.json").write_text(json.dumps({"sample_rate": 16000, "frame_rate": 250,
                                                        "clip_seconds": 0.05}))
    dataset_stage.build_dataset(str(features_dir), str(tmp_path / "tfds"))
    provider = data.PreparedTfdsProvider(data_dir=str(tmp_path / "tfds"), split="test")
    assert provider.distinct_values("instrument_id") == (-1, 5, 7)
    assert provider.distinct_values("instrument_id", splits=["train"]) == (5, 7)
    with pytest.raises(ValueError, match="no feature 'program'.*instrument_id"):
        provider.distinct_values("program")
