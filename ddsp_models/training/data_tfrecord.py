"""TFRecord providers, reading the original DDSP's records as well as this project's.

`TFRecordProvider` reads ``tf.train.Example`` records of fixed-length float features:

- ``audio`` ``[example_secs * sample_rate]``;
- ``audio_16k`` ``[example_secs * 16000]`` (the original's `prepare_tfrecord` always writes it:
  its features are computed at CREPE's 16 kHz), read when the records have it;
- ``f0_hz``, ``f0_confidence``, ``loudness_db`` ``[n_frames]``;
- ``power_db`` ``[n_frames]`` when the records have it; records without it (the original's)
  get it computed from the 16 kHz audio with the original's framing when ``with_power`` is
  set (else the model's power preprocessor computes it from the audio, as the original does).

Frame counts are the original's (`original_n_frames`): hop = 16000 / frame_rate samples of
the 16 kHz audio; ``centered`` records (frames centred on i * hop, the audio padded by half a
frame at both ends) have n_samples_16k / hop + 1 frames, others ('same' padding)
ceil(n_samples_16k / hop): 4 s at 250 Hz -> 1001 or 1000.

Also here, with the original's names and arguments: `LegacyTFRecordProvider` (no
``audio_16k``), `SyntheticNotes` (the DDSP-inv synthetic-notes records), `Urmp` and
`UrmpMidi` (the URMP records of the MIDI-DDSP paper).
"""
import os

import numpy as np
import tensorflow as tf

from ddsp_models.gin_utils import register
from ddsp_models.training.data import DataProvider, list_files
from ddsp_models.training.features import FRAME_FEATURES, N_PITCHES

FEATURES_SAMPLE_RATE = 16000  # Hz: the original computes every frame feature at CREPE's rate
FRAME_KEYS = tuple(key for key in FRAME_FEATURES if key != "power_db")  # in every record


def original_n_frames(example_secs: float, frame_rate: float, centered: bool) -> int:
    """Frames per example as the original DDSP counts them (see the module docstring)."""
    n_samples = int(example_secs * FEATURES_SAMPLE_RATE)
    hop = FEATURES_SAMPLE_RATE / frame_rate
    if centered:  # padded by CREPE_FRAME_SIZE // 2 at both ends, then 'valid' frames
        return int(np.floor(n_samples / hop)) + 1
    return int(np.ceil(n_samples / hop))


def record_keys(path: str) -> set:
    """The feature names of the first ``tf.train.Example`` of a TFRecord file.

    Raises:
      ValueError: naming the file when it holds no record or is not a TFRecord file.
    """
    try:
        first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as error:
        raise ValueError(f"{path}: not a readable TFRecord file ({error.message})") from None
    if first is None:
        raise ValueError(f"{path}: holds no records")
    return set(tf.train.Example.FromString(first.numpy()).features.feature.keys())


@register("data")
class TFRecordProvider(DataProvider):
    """``tf.train.Example`` records with fixed-length audio and frame features.

    Args:
      file_pattern: glob (or list of globs) of TFRecord files (required; the original's
        subclasses supply `default_file_pattern`).
      example_secs: seconds per example.
      sample_rate, frame_rate: in Hz.
      centered: the frame features are centred (n_frames + 1 frames, see the module doc).
      with_power: None: read ``power_db`` when the records have it; True: also compute it
        when they lack it (`spectral_ops.compute_power` of the 16 kHz audio,
        `power_frame_size` samples per frame, 'center' or 'same' as `centered`, floored at
        -80 dB); False: never yield it.
      power_frame_size: samples (at 16 kHz) per power frame.
      seed: shuffle seed.

    Raises:
      ValueError: no files match; the first record lacks a needed feature (naming the file,
        the feature and the features it has); a record's feature has another length (when
        read).
    """

    read_audio_16k = True

    def __init__(self, file_pattern=None, example_secs: float = 4, sample_rate: int = 16000,
                 frame_rate: int = 250, centered: bool = False, with_power: bool | None = None,
                 power_frame_size: int = 1024, seed: int | None = None):
        super().__init__(sample_rate, frame_rate)
        self.file_pattern = file_pattern if file_pattern is not None else self.default_file_pattern
        self.example_secs = example_secs
        self.centered = bool(centered)
        self.n_samples = round(example_secs * self.sample_rate)
        self.n_samples_16k = round(example_secs * FEATURES_SAMPLE_RATE)
        self.n_frames = original_n_frames(example_secs, self.frame_rate, self.centered)
        self.with_power = with_power
        self.power_frame_size = int(power_frame_size)
        self.seed = seed
        self._present = None

    @property
    def default_file_pattern(self):
        """Subclasses name their files; this class needs `file_pattern`."""
        raise ValueError(f"{type(self).__name__}: pass `file_pattern` (a glob of TFRecord files)")

    @property
    def present_keys(self) -> set:
        """Feature names of the first record of the first file (read once)."""
        if self._present is None:
            self._present = record_keys(list_files(self.file_pattern)[0])
        return self._present

    def required_features(self) -> dict:
        """Feature name -> `tf.io.FixedLenFeature` every record must hold."""
        features = {"audio": tf.io.FixedLenFeature([self.n_samples], tf.float32)}
        for key in FRAME_KEYS:
            features[key] = tf.io.FixedLenFeature([self.n_frames], tf.float32)
        return features

    @property
    def features_dict(self) -> dict:
        """Feature name -> `tf.io.FixedLenFeature` used to parse each record: the required
        ones, plus ``audio_16k`` and ``power_db`` when the records have them."""
        features = self.required_features()
        first = list_files(self.file_pattern)[0]
        missing = sorted(set(features) - self.present_keys)
        if missing:
            raise ValueError(f"{first}: the records lack {missing} (they hold {sorted(self.present_keys)}); "
                             f"{type(self).__name__} needs {sorted(features)}")
        if self.read_audio_16k and "audio_16k" in self.present_keys:
            features["audio_16k"] = tf.io.FixedLenFeature([self.n_samples_16k], tf.float32)
        if self.with_power is not False and "power_db" in self.present_keys:
            features["power_db"] = tf.io.FixedLenFeature([self.n_frames], tf.float32)
        return features

    def _add_power(self, example: dict) -> dict:
        """``power_db`` from the 16 kHz audio (``audio_16k``, or ``audio`` at 16 kHz)."""
        from ddsp_models import spectral_ops

        audio = example.get("audio_16k")
        if audio is None:
            if self.sample_rate != FEATURES_SAMPLE_RATE:
                raise ValueError(f"{type(self).__name__}: computing 'power_db' needs 'audio_16k' in the "
                                 f"records or audio at {FEATURES_SAMPLE_RATE} Hz (sample_rate is {self.sample_rate})")
            audio = example["audio"]
        power = spectral_ops.compute_power(
            audio, FEATURES_SAMPLE_RATE, self.frame_rate, self.power_frame_size,
            padding="center" if self.centered else "same")
        return dict(example, power_db=tf.ensure_shape(power, [self.n_frames]))

    def parse(self, record) -> dict:
        """One serialised record -> dict of float32 tensors (see `features_dict`)."""
        return tf.io.parse_single_example(record, self.features_dict)

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        files = list_files(self.file_pattern)
        deterministic = not shuffle or self.seed is not None
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            dataset = dataset.shuffle(len(files), seed=self.seed)
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
                                     deterministic=deterministic)
        features = self.features_dict  # checks the first record now, not inside the pipeline
        dataset = dataset.map(lambda record: tf.io.parse_single_example(record, features),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if self.with_power and "power_db" not in features:
            dataset = dataset.map(self._add_power, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if shuffle:
            dataset = dataset.shuffle(256, seed=self.seed)
        return dataset


@register("data")
class LegacyTFRecordProvider(TFRecordProvider):
    """`TFRecordProvider` for records without ``audio_16k`` (it is never read)."""

    read_audio_16k = False


@register("data")
class SyntheticNotes(LegacyTFRecordProvider):
    """The original DDSP-inv synthetic-notes records (its `ddsp_generate_synthetic_dataset`):
    true controls without audio (`models.InverseSynthesis` renders the audio from them).

    Each example: ``f0_hz``, ``harm_amp`` ``[n_timesteps, 1]``; ``harm_dist``, ``sin_amps``,
    ``sin_freqs`` ``[n_timesteps, n_harmonics]``; ``noise_magnitudes`` ``[n_timesteps, n_mags]``.

    Args:
      n_timesteps, n_harmonics, n_mags: the records' sizes.
      file_pattern: glob of the TFRecord files.
      sample_rate: of the audio rendered from them, Hz.
    """

    def __init__(self, n_timesteps: int, n_harmonics: int, n_mags: int, file_pattern=None,
                 sample_rate: int = 16000):
        self.n_timesteps, self.n_harmonics, self.n_mags = int(n_timesteps), int(n_harmonics), int(n_mags)
        super().__init__(file_pattern=file_pattern, sample_rate=sample_rate)

    def required_features(self) -> dict:
        t, h = self.n_timesteps, self.n_harmonics
        shapes = {"f0_hz": [t, 1], "harm_amp": [t, 1], "harm_dist": [t, h], "sin_amps": [t, h],
                  "sin_freqs": [t, h], "noise_magnitudes": [t, self.n_mags]}
        return {key: tf.io.FixedLenFeature(shape, tf.float32) for key, shape in shapes.items()}


URMP_INSTRUMENTS = ("vn", "va", "vc", "db", "fl", "ob", "cl", "sax", "bn", "tpt", "hn", "tbn", "tba")


@register("data")
class Urmp(LegacyTFRecordProvider):
    """URMP solo-instrument records (4 s, 16 kHz, 250 Hz features).

    Files: ``<base_dir>/all_instruments_<split><_suffix>.tfrecord*`` for instrument_key
    'all', else ``<base_dir>/urmp_<instrument_key>_solo_ddsp_conditioning_<split><_suffix>.tfrecord*``.

    Args:
      base_dir: folder of the records.
      instrument_key: 'all' or one of `URMP_INSTRUMENTS`.
      split: 'train' or 'test'.
      suffix: None, or e.g. 'batched' (adds '_batched' to the file names).
    """

    def __init__(self, base_dir, instrument_key: str = "tpt", split: str = "train", suffix=None):
        if instrument_key != "all" and instrument_key not in URMP_INSTRUMENTS:
            raise ValueError(f"{type(self).__name__} `instrument_key` must be 'all' or one of "
                             f"{URMP_INSTRUMENTS}, got {instrument_key!r}")
        self.base_dir, self.instrument_key, self.split = os.fspath(base_dir), instrument_key, split
        self.suffix = "" if suffix is None else f"_{suffix}"
        super().__init__()

    @property
    def default_file_pattern(self) -> str:
        if self.instrument_key == "all":
            name = f"all_instruments_{self.split}{self.suffix}.tfrecord*"
        else:
            name = f"urmp_{self.instrument_key}_solo_ddsp_conditioning_{self.split}{self.suffix}.tfrecord*"
        return os.path.join(self.base_dir, name)


def instrument_vocabulary() -> tf.lookup.StaticHashTable:
    """URMP instrument code (bytes) -> its index in `URMP_INSTRUMENTS` (int64; -1 unknown)."""
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        list(URMP_INSTRUMENTS), tf.range(len(URMP_INSTRUMENTS), dtype=tf.int64)), -1)


def urmp_midi_example(example: dict, vocabulary: tf.lookup.StaticHashTable) -> dict:
    """A parsed URMP-with-notes record -> the original's example: rolls ``[n_frames, 128]``,
    ``instrument_id`` as an index into `URMP_INSTRUMENTS` (-1 unknown), ``midi`` (argmax of
    the active frame indices), ``onsets`` / ``offsets`` (int64 ``[n_frames]``, 1 where any note
    starts / ends), ``f0_hz`` and ``loudness_db`` as ``[n_frames, 1]``. `vocabulary`:
    `instrument_vocabulary()`."""
    example = dict(example)
    for key in ("note_active_frame_indices", "note_active_velocities"):
        example[key] = tf.reshape(example[key], (-1, N_PITCHES))
    example["instrument_id"] = vocabulary.lookup(example["instrument_id"])
    example["midi"] = tf.argmax(example["note_active_frame_indices"], axis=-1)
    for key in ("f0_hz", "loudness_db"):
        example[key] = example[key][..., tf.newaxis]
    for key, name in (("note_onsets", "onsets"), ("note_offsets", "offsets")):
        any_note = tf.reduce_sum(tf.reshape(example[key], (-1, N_PITCHES)), axis=-1)
        example[name] = tf.cast(any_note > 0, tf.int64)
    return example


@register("data")
class UrmpMidi(Urmp):
    """URMP records with note annotations, as the original's `UrmpMidi` yields them.

    Besides the `Urmp` features: ``note_active_velocities``, ``note_active_frame_indices``
    ``[n_frames, 128]``; ``power_db`` ``[n_frames]``; ``instrument_id`` (int: index of the
    record's instrument code in `URMP_INSTRUMENTS`, -1 if unknown); ``recording_id``
    (bytes); ``midi`` (argmax of the active frame indices, int64 ``[n_frames]``); ``onsets``,
    ``offsets`` (int64 ``[n_frames]``, 1 where any note starts / ends); ``f0_hz`` and
    ``loudness_db`` become ``[n_frames, 1]``.
    """

    def required_features(self) -> dict:
        features = super().required_features()
        rolls = [self.n_frames * N_PITCHES]
        features.update({
            "note_active_velocities": tf.io.FixedLenFeature(rolls, tf.float32),
            "note_active_frame_indices": tf.io.FixedLenFeature(rolls, tf.float32),
            "note_onsets": tf.io.FixedLenFeature(rolls, tf.float32),
            "note_offsets": tf.io.FixedLenFeature(rolls, tf.float32),
            "instrument_id": tf.io.FixedLenFeature([], tf.string),
            "recording_id": tf.io.FixedLenFeature([], tf.string),
            "power_db": tf.io.FixedLenFeature([self.n_frames], tf.float32),
        })
        return features

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        vocabulary = instrument_vocabulary()
        return super().get_dataset(shuffle).map(lambda example: urmp_midi_example(example, vocabulary),
                                                num_parallel_calls=tf.data.AUTOTUNE)



@register("data")
class UrmpMidiUnsegmented(Urmp):
    """URMP records of whole (unsegmented) recordings with note annotations, as the
    original's `UrmpMidiUnsegmented` yields them (its files: `Urmp`'s, e.g. with
    suffix='unbatched').

    Every feature has the recording's own length (variable-length records; the first record
    must hold them all, ValueError naming the file otherwise). Each example: ``audio``
    ``[n_samples]``; ``f0_hz``, ``loudness_db`` ``[n_frames, 1]``; ``f0_confidence``,
    ``power_db`` ``[n_frames]``; ``note_active_velocities``, ``note_active_frame_indices``
    ``[n_frames, 128]``; ``note_onsets``, ``note_offsets`` ``[n_frames * 128]`` (flat, as
    stored); ``instrument_id`` (int64: index in `URMP_INSTRUMENTS`, -1 if unknown);
    ``recording_id`` (bytes); ``midi`` (argmax of the active frame indices, int64
    ``[n_frames]``); ``onsets``, ``offsets`` (int64 ``[n_frames]``, 1 where any note starts /
    ends). The original leaves f0_confidence, power_db and the flat onset/offset rolls as
    sparse tensors; here they are their dense values, so examples batch (padded).
    """

    VARIABLE_LENGTH = ("audio", "f0_hz", "f0_confidence", "loudness_db", "note_active_velocities",
                       "note_active_frame_indices", "power_db", "note_onsets", "note_offsets")

    @property
    def features_dict(self) -> dict:
        features = {key: tf.io.VarLenFeature(tf.float32) for key in self.VARIABLE_LENGTH}
        features.update(instrument_id=tf.io.FixedLenFeature([], tf.string),
                        recording_id=tf.io.FixedLenFeature([], tf.string))
        missing = sorted(set(features) - self.present_keys)
        if missing:
            raise ValueError(f"{list_files(self.file_pattern)[0]}: the records lack {missing} (they hold "
                             f"{sorted(self.present_keys)}); {type(self).__name__} needs {sorted(features)}")
        return features

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        vocabulary = instrument_vocabulary()

        def dense(example):
            return urmp_midi_example({key: tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor)
                                      else value for key, value in example.items()}, vocabulary)

        return super().get_dataset(shuffle).map(dense, num_parallel_calls=tf.data.AUTOTUNE)
