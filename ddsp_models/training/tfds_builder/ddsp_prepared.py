"""`DdspPrepared`: the clips and features of the ``prepare`` and ``features`` stages as a
TFDS dataset with splits ``train``, ``valid``, ``test``.

The source is the ``features`` stage's folder, given as TFDS's manual folder
(``DownloadConfig(manual_dir='data/features')``): ``<split>/<id>.npz`` plus ``meta.json``
(sample_rate, frame_rate, clip_seconds, CREPE settings), which becomes the dataset's
metadata. Configs:

- ``midi``: audio and frame features plus the MIDI note features (every clip must carry
  them; the built-in dataset does).
- ``audio``: audio and frame features only (recordings without note annotations).

Features of one example (frames at ``frame_rate`` Hz):
``id`` text; ``audio`` float32 ``[n_samples]``; ``f0_hz``, ``f0_confidence``,
``loudness_db``, ``power_db`` float32 ``[n_frames]``; ``instrument_id`` int64 (General
MIDI program, -1 unknown); with ``midi``: ``note_active_velocities``,
``note_active_frame_indices``, ``note_onsets``, ``note_offsets`` float32
``[n_frames, 128]`` (zlib-compressed on disk): the feature contract of
`ddsp_models.training.features`.
"""
import glob
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from ddsp_models.training.features import (
    AUDIO,
    FRAME_FEATURES,
    INSTRUMENT_ID,
    MIDI_FEATURES,
    N_PITCHES,
    SPLITS,
    n_frames_of,
)


class DdspPreparedConfig(tfds.core.BuilderConfig):
    """A `DdspPrepared` variant; ``with_midi`` adds the MIDI note features."""

    def __init__(self, *, with_midi: bool, **kwargs):
        super().__init__(**kwargs)
        self.with_midi = with_midi


class DdspPrepared(tfds.core.GeneratorBasedBuilder):
    """Prepared DDSP clips with CREPE f0, loudness, power (and MIDI note features)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Clips, f0/confidence, loudness, power, MIDI note features."}
    BUILDER_CONFIGS = [
        DdspPreparedConfig(name="midi", with_midi=True,
                           description="Audio, frame features and MIDI note features."),
        DdspPreparedConfig(name="audio", with_midi=False,
                           description="Audio and frame features."),
    ]
    DEFAULT_CONFIG_NAME = "midi"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Run `dvc repro features` (or python -m pipelines.prepare / pipelines.features) and "
        "pass its output folder as manual_dir, e.g. DownloadConfig(manual_dir='data/features').")

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "id": tfds.features.Text(),
            AUDIO: tfds.features.Tensor(shape=(None,), dtype=np.float32),
            INSTRUMENT_ID: tfds.features.Tensor(shape=(), dtype=np.int64),
        }
        for key in FRAME_FEATURES:
            features[key] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
        if self.builder_config.with_midi:
            for key in MIDI_FEATURES:
                features[key] = tfds.features.Tensor(shape=(None, N_PITCHES), dtype=np.float32,
                                                     encoding=tfds.features.Encoding.ZLIB)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            metadata=tfds.core.MetadataDict(),
            description=__doc__.split("\n\n")[0],
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = os.fspath(dl_manager.manual_dir)
        meta_path = os.path.join(root, "meta.json")
        if not os.path.isfile(meta_path):
            raise ValueError(f"manual_dir {root!r}: no meta.json; run the features stage first")
        with open(meta_path) as f:
            self.info.metadata.update(json.load(f))
        splits = {}
        for split in SPLITS:
            files = sorted(glob.glob(os.path.join(root, split, "*.npz")))
            if files:
                splits[split] = self._generate_examples(files)
        if not splits:
            raise ValueError(f"manual_dir {root!r}: no <split>/*.npz files")
        return splits

    def _generate_examples(self, files):
        """Examples of the readable, complete, right-length feature files; the others are
        skipped and listed (file + reason) in ``self.skipped``."""
        keys = (AUDIO, INSTRUMENT_ID) + FRAME_FEATURES
        if self.builder_config.with_midi:
            keys += MIDI_FEATURES
        meta = self.info.metadata
        n_samples = n_frames = None
        if {"sample_rate", "frame_rate", "clip_seconds"} <= set(meta.keys()):
            n_samples = int(round(float(meta["clip_seconds"]) * int(meta["sample_rate"])))
            n_frames = n_frames_of(n_samples, int(meta["sample_rate"]), int(meta["frame_rate"]))
        for path in files:
            try:
                example, clip_id = self._read(path, keys, n_samples, n_frames)
            except Exception as error:  # noqa: BLE001 - skip it, name it, go on
                self.skipped.append({"file": path, "error": f"{type(error).__name__}: {error}"})
                continue
            yield clip_id, example

    @property
    def skipped(self) -> list:
        """Feature files left out of the dataset, ``[{'file', 'error'}]``."""
        if not hasattr(self, "_skipped"):
            self._skipped = []
        return self._skipped

    def _read(self, path, keys, n_samples, n_frames):
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"missing {missing} (config {self.builder_config.name!r})")
            clip_id = str(npz["id"]) if "id" in npz.files else os.path.basename(path)[:-4]
            example = {k: npz[k] for k in keys}
        if n_samples is not None and example[AUDIO].shape != (n_samples,):
            raise ValueError(f"audio has shape {example[AUDIO].shape}, expected "
                             f"({n_samples},) (clip_seconds * sample_rate of meta.json)")
        for key in keys:
            if key in FRAME_FEATURES and n_frames is not None and \
                    example[key].shape != (n_frames,):
                raise ValueError(f"{key} has shape {example[key].shape}, expected "
                                 f"({n_frames},)")
            if key in MIDI_FEATURES and n_frames is not None and \
                    example[key].shape != (n_frames, N_PITCHES):
                raise ValueError(f"{key} has shape {example[key].shape}, expected "
                                 f"({n_frames}, {N_PITCHES})")
            if example[key].dtype.kind == "f" and not np.all(np.isfinite(example[key])):
                raise ValueError(f"{key} holds NaN or infinite values")
        example["id"] = clip_id
        return example, clip_id
