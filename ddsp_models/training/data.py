"""Data providers: turn stored examples into `tf.data.Dataset`s of feature dicts.

Every provider yields dict examples with (at least) these features, one example at a time:

- ``audio``: float32 ``[n_samples]`` at ``sample_rate`` Hz (4 s at 16 kHz = 64000 samples).
- ``f0_hz``: float32 ``[n_frames]``, fundamental frequency in Hz at ``frame_rate`` Hz.
- ``f0_confidence``: float32 ``[n_frames]`` in [0, 1].
- ``loudness_db``: float32 ``[n_frames]``, A-weighted loudness in dB.
- ``power_db``: float32 ``[n_frames]``, frame power in dB (where the source has it).

`DataProvider.get_batch` stacks them batch first: ``audio`` ``[batch, n_samples]``, frame
features ``[batch, n_frames]``. Names, shapes and units: `ddsp_models.training.features`.
"""
import glob
import itertools
import os

import numpy as np
import tensorflow as tf

from ddsp_models.checks import positive_float, positive_int
from ddsp_models.gin_utils import register
from ddsp_models.spectral_ops import get_framed_lengths  # noqa: F401  (the original's data.get_framed_lengths)
from ddsp_models.training.features import FRAME_FEATURES  # noqa: F401  (the providers' frame keys)

_AUTOTUNE = tf.data.AUTOTUNE
# TFRecord providers live in `data_tfrecord` (importing it from here would be circular);
# `data.TFRecordProvider` etc. still work through the module's __getattr__.
_TFRECORD_PROVIDERS = ("TFRecordProvider", "LegacyTFRecordProvider", "SyntheticNotes", "Urmp", "UrmpMidi",
                       "UrmpMidiUnsegmented")


def __getattr__(name: str):
    if name in _TFRECORD_PROVIDERS:
        from ddsp_models.training import data_tfrecord

        return getattr(data_tfrecord, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DataProvider:
    """Base class: subclasses implement `get_dataset`.

    Args:
      sample_rate: audio sample rate in Hz.
      frame_rate: rate of the frame features (f0, loudness, power) in Hz.
    """

    def __init__(self, sample_rate: int = 16000, frame_rate: int = 250):
        self.sample_rate = int(positive_float("sample_rate", sample_rate))
        self.frame_rate = int(positive_float("frame_rate", frame_rate))

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """A dataset of single (unbatched) dict examples; shuffled when `shuffle`."""
        raise NotImplementedError

    def get_batch(self, batch_size: int, shuffle: bool = True, repeats: int = -1,
                  drop_remainder: bool = True) -> tf.data.Dataset:
        """Batched dataset: ``repeats`` passes (-1 = forever) cut into ``batch_size`` batches.

        Args:
          batch_size: examples per batch.
          shuffle: shuffle the examples (and files) before batching.
          repeats: number of passes over the data; -1 repeats indefinitely.
          drop_remainder: drop the last, smaller batch so every batch has a static size.
        """
        positive_int("batch_size", batch_size)
        dataset = self.get_dataset(shuffle=shuffle)
        if getattr(self, "seed", None) is not None:
            # A seeded order must not depend on thread timing (TFDS readers allow that).
            options = tf.data.Options()
            options.deterministic = True
            dataset = dataset.with_options(options)
        dataset = dataset.repeat(repeats)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.prefetch(_AUTOTUNE)


def _as_tensor_dtype(array: np.ndarray) -> tf.DType:
    """float -> float32, bool -> bool, integers -> int64, text -> string."""
    if array.dtype.kind == "f":
        return tf.float32
    if array.dtype.kind == "b":
        return tf.bool
    if array.dtype.kind in "iu":
        return tf.int64
    if array.dtype.kind in "US":
        return tf.string
    raise TypeError(f"unsupported array dtype {array.dtype} (expected float, int, bool or text)")


def _cast_example(example: dict) -> dict:
    """numpy arrays -> arrays with the dtypes of `_as_tensor_dtype` (float32, int64, ...)."""
    out = {}
    for key, value in example.items():
        value = np.asarray(value)
        dtype = _as_tensor_dtype(value)
        if dtype == tf.string:
            out[key] = value.astype(np.bytes_) if value.dtype.kind == "U" else value
        else:
            out[key] = value.astype(dtype.as_numpy_dtype)
    return out


@register("data")
class InMemoryProvider(DataProvider):
    """Examples held in memory: a dict of arrays whose first axis indexes examples.

    Args:
      examples: e.g. ``{'audio': [n, n_samples], 'f0_hz': [n, n_frames], ...}``; every
        value must have the same length along axis 0.
      sample_rate, frame_rate: as in `DataProvider`.
      seed: shuffle seed (None: a different order each pass).
    """

    def __init__(self, examples: dict, sample_rate: int = 16000, frame_rate: int = 250,
                 seed: int | None = None):
        super().__init__(sample_rate, frame_rate)
        if not isinstance(examples, dict) or not examples:
            raise TypeError("examples must be a non-empty dict of arrays, "
                            f"got {type(examples).__name__}")
        self.examples = _cast_example(examples)
        lengths = {k: (v.shape[0] if v.ndim else None) for k, v in self.examples.items()}
        if len(set(lengths.values())) != 1 or None in lengths.values():
            raise ValueError(f"examples must share the first (example) axis, got lengths {lengths}")
        self.n_examples = next(iter(lengths.values()))
        self.seed = seed

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        dataset = tf.data.Dataset.from_tensor_slices(self.examples)
        if shuffle:
            dataset = dataset.shuffle(self.n_examples, seed=self.seed,
                                      reshuffle_each_iteration=True)
        return dataset


def list_files(file_pattern) -> list[str]:
    """Sorted files matching a glob pattern (or a list of patterns); raises if none."""
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else file_pattern
    files = sorted({f for p in patterns for f in glob.glob(os.fspath(p))})
    if not files:
        raise ValueError(f"file_pattern {file_pattern!r} matches no files")
    return files


@register("data")
class NpzProvider(DataProvider):
    """One example per ``.npz`` file (the `features` stage writes one per clip).

    Arrays keep their stored shapes (``audio`` ``[n_samples]``, frame features
    ``[n_frames]``, MIDI features ``[n_frames, 128]``, scalars ``[]``); floats become
    float32, integers int64, text tf.string. Every file must hold the same keys and shapes
    as the first one.

    Args:
      file_pattern: glob (or list of globs) of ``.npz`` files.
      keys: the arrays to read (default: all arrays of the first file whose names do not
        start with ``_``, e.g. not the `features` stage's ``_fingerprint``).
      sample_rate, frame_rate: as in `DataProvider`.
      seed: shuffle seed.
    """

    def __init__(self, file_pattern, keys=None, sample_rate: int = 16000,
                 frame_rate: int = 250, seed: int | None = None):
        super().__init__(sample_rate, frame_rate)
        self.files = list_files(file_pattern)
        if keys is None:
            with np.load(self.files[0], allow_pickle=False) as npz:
                keys = [k for k in npz.files if not k.startswith("_")]
        first = self._load(self.files[0], keys)
        self.keys = tuple(first)
        self.output_signature = {
            k: tf.TensorSpec(shape=v.shape, dtype=_as_tensor_dtype(v)) for k, v in first.items()}
        self.seed = seed

    @staticmethod
    def _load(path: str, keys=None) -> dict:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in (keys or ()) if k not in npz.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}, has {npz.files}")
            return _cast_example({k: npz[k] for k in (keys or npz.files)})

    def _generate(self, order):
        for index in order:
            path = self.files[int(index)]
            example = self._load(path, self.keys)
            for key, spec in self.output_signature.items():
                if tuple(example[key].shape) != tuple(spec.shape):
                    raise ValueError(f"{path}: array {key!r} has shape {example[key].shape}, "
                                     f"expected {tuple(spec.shape)} like {self.files[0]}")
            yield example

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        n = len(self.files)
        rng = np.random.default_rng(self.seed)
        # The generator is re-entered on every pass, so each repeat draws a fresh order.
        return tf.data.Dataset.from_generator(
            lambda: self._generate(rng.permutation(n) if shuffle else range(n)),
            output_signature=self.output_signature)


def _feature_list(value: np.ndarray) -> tf.train.Feature:
    flat = np.asarray(value).reshape(-1)
    if flat.dtype.kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=flat.astype(np.float32)))
    if flat.dtype.kind in "iub":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.astype(np.int64)))
    if flat.dtype.kind in "US":
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[v.encode() if isinstance(v, str) else bytes(v) for v in flat.tolist()]))
    raise TypeError(f"cannot serialise dtype {flat.dtype}")


def serialize_example(example: dict) -> bytes:
    """A dict of arrays -> a serialised ``tf.train.Example`` (arrays flattened)."""
    return tf.train.Example(features=tf.train.Features(
        feature={k: _feature_list(v) for k, v in example.items()})).SerializeToString()


def write_tfrecord(path, examples) -> int:
    """Writes dict examples (audio, f0_hz, f0_confidence, loudness_db, power_db, ...) to a
    TFRecord file readable by `data_tfrecord.TFRecordProvider`; returns the number written."""
    count = 0
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for example in examples:
            writer.write(serialize_example(example))
            count += 1
    return count


@register("data")
class TfdsProvider(DataProvider):
    """A prepared TensorFlow Datasets dataset, read offline (never downloads).

    Args:
      name: TFDS name, e.g. ``'nsynth/gansynth_subset.f0_and_loudness:2.3.3'``.
      split: split name or slice (``'train'``, ``'valid[:10%]'``, ...).
      data_dir: folder holding the prepared dataset (TFDS's default when None).
      sample_rate, frame_rate: as in `DataProvider`.
      shuffle_buffer: examples held for shuffling.
      seed: shuffle seed (file order and example order).
    """

    def __init__(self, name: str, split: str = "train", data_dir: str | None = None,
                 sample_rate: int = 16000, frame_rate: int = 250, shuffle_buffer: int = 1000,
                 seed: int | None = None):
        super().__init__(sample_rate, frame_rate)
        self.name = name
        self.split = split
        self.data_dir = data_dir
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed

    def _load(self, shuffle: bool) -> tf.data.Dataset:
        import tensorflow_datasets as tfds

        try:
            return tfds.load(self.name, split=self.split, data_dir=self.data_dir, download=False,
                             shuffle_files=shuffle,
                             read_config=tfds.ReadConfig(shuffle_seed=self.seed))
        except AssertionError as error:  # TFDS's way of saying the data is not prepared
            raise FileNotFoundError(
                f"{type(self).__name__}: TFDS dataset {self.name!r} is not prepared under data_dir "
                f"{self.data_dir!r}; this provider never downloads: prepare it first "
                f"({error})") from error

    def _map(self, example: dict) -> dict:
        """Hook: renames / reshapes one example (identity here)."""
        return example

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        dataset = self._load(shuffle).map(self._map, num_parallel_calls=_AUTOTUNE,
                                          deterministic=not shuffle or self.seed is not None)
        if shuffle:
            dataset = dataset.shuffle(self.shuffle_buffer, seed=self.seed)
        return dataset


@register("data")
class NSynthTfds(TfdsProvider):
    """NSynth (TFDS) with CREPE f0 and loudness, renamed to this project's features.

    NSynth's ``audio``, ``f0/hz``, ``f0/confidence``, ``loudness/db`` become ``audio``,
    ``f0_hz``, ``f0_confidence``, ``loudness_db`` (4 s: 64000 samples, 1000 frames). With
    `include_note_labels` its ``pitch`` and ``velocity`` (MIDI numbers), ``instrument/label``
    (as ``instrument_id``, and as the original DDSP names it ``instrument``),
    ``instrument/source`` and ``instrument/family`` (``instrument_source``,
    ``instrument_family``) ride along. The dataset must already be prepared under ``data_dir``.
    """

    def __init__(self, name: str = "nsynth/gansynth_subset.f0_and_loudness:2.3.3",
                 split: str = "train", data_dir: str | None = None, sample_rate: int = 16000,
                 frame_rate: int = 250, include_note_labels: bool = True, shuffle_buffer: int = 1000,
                 seed: int | None = None):
        super().__init__(name, split, data_dir, sample_rate, frame_rate, shuffle_buffer, seed)
        self.include_note_labels = bool(include_note_labels)

    def _map(self, example: dict) -> dict:
        out = {
            "audio": example["audio"],
            "f0_hz": example["f0"]["hz"],
            "f0_confidence": example["f0"]["confidence"],
            "loudness_db": example["loudness"]["db"],
        }
        if self.include_note_labels:
            instrument = example["instrument"]
            out.update(pitch=example["pitch"], velocity=example["velocity"], instrument_id=instrument["label"],
                       instrument=instrument["label"], instrument_source=instrument["source"],
                       instrument_family=instrument["family"])
        return out


PREPARED_TFDS_NAME = "ddsp_prepared"


@register("data")
class PreparedTfdsProvider(TfdsProvider):
    """This project's TFDS dataset (DVC stage ``dataset``; its builder:
    ``ddsp_models/training/tfds_builder``).

    Read straight from its folder (``data_dir/ddsp_prepared/<config>/<version>``) with
    `tfds.builder_from_directory`, so the builder code need not be importable. Audio and
    frame features get static shapes from the dataset's metadata (clip length, rates).

    Args:
      data_dir: the stage's output folder (``data/tfds``).
      split: ``'train'``, ``'valid'`` or ``'test'`` (slices allowed).
      config: ``'midi'`` (with MIDI note features) or ``'audio'``; None picks the only one
        present.
      shuffle_buffer, seed: as in `TfdsProvider`.
    """

    def __init__(self, data_dir: str = "data/tfds", split: str = "train",
                 config: str | None = None, shuffle_buffer: int = 1000,
                 seed: int | None = None):
        import tensorflow_datasets as tfds

        root = os.path.join(os.fspath(data_dir), PREPARED_TFDS_NAME)
        configs = sorted(os.listdir(root)) if os.path.isdir(root) else []
        configs = [c for c in configs
                   if not c.startswith(".") and os.path.isdir(os.path.join(root, c))]
        if config is None:
            if len(configs) != 1:
                raise ValueError(f"data_dir {data_dir!r}: expected exactly one prepared config "
                                 f"under {root}, found {configs}; pass config=")
            config = configs[0]
        if config not in configs:
            raise ValueError(f"data_dir {data_dir!r}: config {config!r} not prepared "
                             f"(found {configs})")
        versions = sorted(os.listdir(os.path.join(root, config)),
                          key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))
        self.builder = tfds.builder_from_directory(os.path.join(root, config, versions[-1]))
        meta = self.builder.info.metadata or {}
        super().__init__(f"{PREPARED_TFDS_NAME}/{config}", split, data_dir,
                         int(meta.get("sample_rate", 16000)), int(meta.get("frame_rate", 250)),
                         shuffle_buffer, seed)
        self.config = config
        clip_seconds = float(meta.get("clip_seconds", 4.0))
        self.n_samples = int(round(clip_seconds * self.sample_rate))
        self.n_frames = int(round(clip_seconds * self.frame_rate))

    def _load(self, shuffle: bool) -> tf.data.Dataset:
        import tensorflow_datasets as tfds

        return self.builder.as_dataset(split=self.split, shuffle_files=shuffle,
                                       read_config=tfds.ReadConfig(shuffle_seed=self.seed))

    def distinct_values(self, key: str = "instrument_id", splits=None) -> tuple:
        """Sorted distinct values of a scalar feature (e.g. ``instrument_id``) over `splits`
        (default: every split of the dataset). Only that feature is decoded.

        Raises:
          ValueError: naming the key and the features the dataset has, when it lacks it.
        """
        import tensorflow_datasets as tfds

        features = self.builder.info.features
        if key not in features:
            raise ValueError(f"{PREPARED_TFDS_NAME}/{self.config}: no feature {key!r} "
                             f"(has {sorted(features.keys())})")
        values = set()
        for split in splits or list(self.builder.info.splits.keys()):
            dataset = self.builder.as_dataset(
                split=split, decoders=tfds.decode.PartialDecoding({key: True}))
            for batch in dataset.map(lambda x: x[key]).batch(4096).as_numpy_iterator():
                values.update(np.asarray(batch).reshape(-1).tolist())
        return tuple(sorted(values))

    def _map(self, example: dict) -> dict:
        out = dict(example)
        out["audio"] = tf.ensure_shape(example["audio"], [self.n_samples])
        for key, value in example.items():
            if key != "audio" and value.shape.rank and value.shape[0] is None:
                out[key] = tf.ensure_shape(value, [self.n_frames] + value.shape[1:].as_list())
        return out


@register("data")
class SyntheticNotesProvider(DataProvider):
    """Random synthetic notes with their true controls (`training.synthetic_notes`).

    Examples (unbatched): ``audio`` ``[n_samples]``, ``f0_hz`` and ``harm_amp``
    ``[n_frames, 1]``, ``harm_dist`` and ``sin_amps`` / ``sin_freqs`` ``[n_frames,
    n_harmonics]``, ``noise_magnitudes`` ``[n_frames, n_noise_bands]`` (see
    `generate_synthetic_notes`, whose other ranges, e.g. ``midi_range``, take their gin
    bindings of ``data.generate_synthetic_notes``).

    Args:
      n_seconds: note length (n_seconds * frame_rate frames).
      sample_rate, frame_rate: Hz.
      n_harmonics, n_noise_bands: control sizes.
      n_examples: examples per pass (None: endless).
      chunk_size: notes rendered per call of the generator.
      seed: the first chunk's seed; later chunks (and passes) use the following seeds, so a
        repeated dataset keeps drawing new notes. Every dataset `get_dataset` makes starts at
        `seed`: how far another one was read (or prefetched ahead, which depends on thread
        timing) changes nothing, so a seeded run is reproducible and a resumed one can skip
        the batches it trained on.
    """

    def __init__(self, n_seconds: float = 4.0, sample_rate: int = 16000, frame_rate: int = 250,
                 n_harmonics: int = 20, n_noise_bands: int = 33, n_examples: int | None = None,
                 chunk_size: int = 16, seed: int = 0):
        super().__init__(sample_rate, frame_rate)
        self.n_seconds = float(n_seconds)
        self.n_harmonics, self.n_noise_bands = int(n_harmonics), int(n_noise_bands)
        self.n_examples = None if n_examples is None else positive_int("SyntheticNotesProvider `n_examples`",
                                                                       n_examples)
        self.chunk_size = positive_int("SyntheticNotesProvider `chunk_size`", chunk_size)
        self.n_frames = int(round(self.n_seconds * self.frame_rate))
        if self.n_frames < 2 or self.sample_rate % self.frame_rate:
            raise ValueError(f"SyntheticNotesProvider: `n_seconds` ({n_seconds!r}) must give at least 2 frames "
                             f"and `sample_rate` ({sample_rate}) be a multiple of `frame_rate` ({frame_rate})")
        self.n_samples = self.n_frames * (self.sample_rate // self.frame_rate)
        self.seed = int(seed)

    @property
    def output_signature(self) -> dict:
        t, h = self.n_frames, self.n_harmonics
        shapes = {"audio": [self.n_samples], "f0_hz": [t, 1], "harm_amp": [t, 1], "harm_dist": [t, h],
                  "sin_amps": [t, h], "sin_freqs": [t, h], "noise_magnitudes": [t, self.n_noise_bands]}
        return {k: tf.TensorSpec(shape=s, dtype=tf.float32) for k, s in shapes.items()}

    def _generate(self, first_seed: int):
        """One pass: chunks of notes drawn with seeds `first_seed`, `first_seed` + 1, ..."""
        from ddsp_models.training.synthetic_notes import generate_synthetic_notes

        produced = 0
        for seed in itertools.count(int(first_seed)):
            if self.n_examples is not None and produced >= self.n_examples:
                return
            notes = generate_synthetic_notes(
                batch_size=self.chunk_size, n_seconds=self.n_seconds, sample_rate=self.sample_rate,
                frame_rate=self.frame_rate, n_harmonics=self.n_harmonics, n_noise_bands=self.n_noise_bands,
                seed=seed)
            notes = {k: np.asarray(v, np.float32) for k, v in notes.items()}
            for index in range(self.chunk_size):
                if self.n_examples is not None and produced >= self.n_examples:
                    return
                yield {k: v[index] for k, v in notes.items()}
                produced += 1

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """The notes from `seed` on; each pass of the dataset repeated continues the seeds."""
        del shuffle  # every note is already random
        chunks_per_pass = 0 if self.n_examples is None else -(-self.n_examples // self.chunk_size)
        passes = itertools.count()  # a repeated dataset calls the generator once per pass, in turn
        start = self.seed

        def one_pass():
            return self._generate(start + next(passes) * chunks_per_pass)

        return tf.data.Dataset.from_generator(one_pass, output_signature=self.output_signature)


def _audio_length(provider: DataProvider):
    """Static audio length (samples) of a provider's examples; None when unknown or when it
    yields no audio (e.g. `SyntheticNotes`' controls, which the model renders)."""
    spec = provider.get_dataset(shuffle=False).element_spec
    if not isinstance(spec, dict):
        raise ValueError(f"{type(provider).__name__} must yield dict examples, got {spec}")
    audio = spec.get("audio")
    return audio.shape[0] if audio is not None and audio.shape.rank else None


@register("data")
class ZippedProvider(DataProvider):
    """Pairs the examples of several providers, as the original DDSP: a tuple of their dicts.

    An element is ``(synthetic_example, real_example)`` (one dict per provider, in the
    providers' order); `get_batch(batch_size)` batches each part with `batch_size` examples
    (or its share, with `batch_size_ratios`), so a batch is a tuple of feature dicts (the
    `models.InverseSynthesis` zipped mode runs them as one batch of all parts' examples).
    A pass ends with the shortest provider. `names` name the parts (the model's
    `zipped_parts`, the prefix of each part's loss names).

    Args:
      data_providers: the providers, e.g. ``[SyntheticNotesProvider(), PreparedTfdsProvider()]``.
      batch_size_ratios: () for `batch_size` examples of every part per batch, else one
        ratio per provider: part i gets int(batch_size * ratio_i / sum(ratios)) examples.
      names: one name per provider (no '/'), default ``('synthetic', 'real')``.
      providers: this package's earlier name of `data_providers` (wins when given).

    Raises:
      ValueError: names do not match the providers, or the audio lengths or sample rates
        differ (naming each provider and its value). Frame rates may differ (the parts'
        frame features are used separately).
    """

    def __init__(self, data_providers=(), batch_size_ratios=(), names=("synthetic", "real"), providers=None):
        providers = data_providers if providers is None else providers
        providers, names = list(providers), [str(n) for n in names]
        ratios = [float(r) for r in batch_size_ratios or ()]
        if ratios and (len(ratios) != len(providers) or min(ratios) <= 0):
            raise ValueError(f"ZippedProvider `batch_size_ratios` must hold one positive ratio per provider "
                             f"({len(providers)}), got {list(batch_size_ratios)}")
        if len(providers) < 2 or len(providers) != len(names):
            raise ValueError(f"ZippedProvider needs at least 2 `providers` and one of `names` each, got "
                             f"{len(providers)} providers and names {names}")
        if len(set(names)) != len(names) or any("/" in n or not n for n in names):
            raise ValueError(f"ZippedProvider `names` must be distinct, non-empty and without '/', got {names}")
        rates = {p.sample_rate for p in providers}
        super().__init__(providers[0].sample_rate, providers[0].frame_rate)
        lengths = {name: _audio_length(p) for name, p in zip(names, providers)}
        known = {n: length for n, length in lengths.items() if length is not None}
        if len(set(known.values())) > 1:
            described = ", ".join(f"{n} ({type(p).__name__}): {lengths[n]} samples"
                                  for n, p in zip(names, providers))
            raise ValueError(f"ZippedProvider: audio lengths differ: {described}")
        if len(rates) > 1:
            raise ValueError(f"ZippedProvider: providers disagree on sample_rate: "
                             f"{dict(zip(names, [p.sample_rate for p in providers]))}")
        self.providers, self.names = providers, names
        self.batch_size_ratios = [r / sum(ratios) for r in ratios]

    @property
    def seed(self):
        """The parts' seeds (a tuple), or None while any part's order is unseeded."""
        seeds = tuple(getattr(p, "seed", 0) for p in self.providers)
        return None if any(seed is None for seed in seeds) else seeds

    @seed.setter
    def seed(self, value):
        """Seeds the parts that are unseeded (a part keeps a seed it has)."""
        for provider in self.providers:
            if getattr(provider, "seed", 0) is None:
                provider.seed = value

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """A dataset of tuples of single examples, one dict per provider."""
        datasets = tuple(p.get_dataset(shuffle=shuffle) for p in self.providers)
        return tf.data.Dataset.zip(datasets)

    def get_batch(self, batch_size: int, shuffle: bool = True, repeats: int = -1,
                  drop_remainder: bool = True) -> tf.data.Dataset:
        """As `DataProvider.get_batch`; with `batch_size_ratios` each part is batched with its
        own share of `batch_size` (each at least 1) before zipping."""
        if not self.batch_size_ratios:
            return super().get_batch(batch_size, shuffle, repeats, drop_remainder)
        sizes = [max(1, int(batch_size * ratio)) for ratio in self.batch_size_ratios]
        datasets = tuple(p.get_dataset(shuffle=shuffle).repeat(repeats).batch(size, drop_remainder=drop_remainder)
                         for p, size in zip(self.providers, sizes))
        return tf.data.Dataset.zip(datasets).prefetch(_AUTOTUNE)


# The original DDSP's other providers and constants (its arguments and behaviour).
from ddsp_models.training.data_original import (  # noqa: E402,F401
    CREPE_FRAME_SIZE,
    CREPE_SAMPLE_RATE,
    BaseMultiProvider,
    ExperimentalDataProvider,
    MixedProvider,
)
