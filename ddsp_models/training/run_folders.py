"""Run folders: restoring a trained model with what is needed to drive it (`LoadedRun`), and
the training data's statistics stored beside it.

A run folder (the pipeline's ``runs/<run>/`` or any ``ddsp_models.training.run`` save dir)
holds ``operative_config-<step>.gin``, checkpoints ``ckpt-<step>`` and, from the train stage,
``dataset_statistics.json`` (`evaluation.compute_dataset_statistics` of the training split).
`load_run` turns it into a `LoadedRun`; other folder layouts (original DDSP model folders)
plug in with `register_run_loader`.

Units: audio at the run's `sample_rate` (Hz); frames at its `frame_rate` (Hz); `hop` samples
per frame.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ddsp_models.training.chunked_render import synth_processors
from ddsp_models.training.features import empty_midi_features

STATISTICS_FILE = "dataset_statistics.json"


@dataclasses.dataclass
class LoadedRun:
    """A restored model and what is needed to drive it.

    Attributes:
      folder: the run folder; checkpoint: the checkpoint prefix restored.
      model: the Keras model (`models.Autoencoder`, `MidiAutoencoder`, ...).
      sample_rate, frame_rate: Hz; hop: samples per frame.
      n_frames: frames of one training clip (what the model was built with).
      statistics: the training data's `dataset_statistics.json` (None when absent).
    """
    folder: str
    checkpoint: str
    model: object
    sample_rate: int
    frame_rate: int
    hop: int
    n_frames: int
    statistics: dict | None

    @property
    def is_midi_model(self) -> bool:
        return hasattr(self.model, "midi_decoder")


_RUN_LOADERS = []


def register_run_loader(loader, first: bool = True) -> None:
    """Adds a loader ``folder -> LoadedRun | None`` (None: not its kind of folder);
    `load_run` tries them in order, newest first when `first`. Registering a loader again
    changes nothing."""
    if loader in _RUN_LOADERS:
        return
    if first:
        _RUN_LOADERS.insert(0, loader)
    else:
        _RUN_LOADERS.append(loader)


def load_run(folder) -> LoadedRun:
    """The model of a run folder, restored from its newest checkpoint (every variable
    verified), with rates and training-data statistics. ValueError naming the folder when
    no loader recognises it."""
    import ddsp_models.compat  # noqa: F401 - registers the loader of original DDSP folders

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"run folder {folder!r} does not exist")
    for loader in _RUN_LOADERS:
        run = loader(folder)
        if run is not None:
            return run
    raise ValueError(f"run folder {folder!r} has no operative_config-*.gin and checkpoint "
                     "(train it first, or register a loader for its layout)")


def read_statistics(folder) -> dict | None:
    """``<folder>/dataset_statistics.json`` (None when absent; ValueError when unreadable)."""
    path = os.path.join(os.fspath(folder), STATISTICS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(stats, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return stats


def write_statistics(folder, stats: dict) -> str:
    """Writes `stats` as ``<folder>/dataset_statistics.json`` (atomically); returns the path."""
    path = os.path.join(os.fspath(folder), STATISTICS_FILE)
    os.makedirs(os.fspath(folder), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    os.replace(tmp, path)
    return path


def dataset_statistics_of(provider, batch_size: int = 16) -> dict:
    """`evaluation.compute_dataset_statistics` over one pass of a data provider, plus its
    most common ``instrument_id`` (-1 when the data has none)."""
    from ddsp_models.training.evaluation import compute_dataset_statistics

    keys = ("f0_hz", "f0_confidence", "loudness_db", "power_db", "instrument_id")
    batches = [{k: v.numpy() for k, v in b.items() if k in keys} for b in  # frames only
               provider.get_batch(batch_size, shuffle=False, repeats=1, drop_remainder=False)]
    stats = compute_dataset_statistics(batches)
    ids = [np.asarray(b["instrument_id"]).reshape(-1) for b in batches if "instrument_id" in b]
    stats["instrument_id"] = -1
    if ids:
        values, counts = np.unique(np.concatenate(ids), return_counts=True)
        stats["instrument_id"] = int(values[np.argmax(counts)])
    return stats


def example_features(n_frames: int, n_samples: int, midi: bool = True) -> dict:
    """A batch of one all-zero feature dict of a clip's shapes, to build a model with."""
    frames = np.zeros([1, n_frames], np.float32)
    batch = {"audio": np.zeros([1, n_samples], np.float32), "f0_hz": frames + 220.0,
             "f0_confidence": frames, "loudness_db": frames - 60.0, "power_db": frames - 60.0,
             "instrument_id": np.zeros([1], np.int64)}
    if midi:
        batch.update(empty_midi_features(n_frames, batch_size=1))
    return batch


def load_trained_model(folder, example_batch: dict):
    """The model of a finished run, rebuilt from its newest operative config and restored
    from its newest checkpoint (every variable verified).

    Args:
      folder: the run folder.
      example_batch: a feature batch to build the model with.

    Raises:
      ValueError: naming the folder when it has no operative config or checkpoint.
    """
    import gin

    from ddsp_models.training import checkpoints, models
    from ddsp_models.training.config import latest_operative_config, parse_gin

    if latest_operative_config(folder) is None:
        raise ValueError(f"run folder {folder!r} has no operative_config-*.gin: train it first")
    gin.clear_config()
    parse_gin(operative_config_dir=folder)
    model = models.get_model()
    checkpoints.resume(model, folder, build_inputs={k: v[:1] for k, v in example_batch.items()})
    return model


def _load_own_run(folder: str) -> LoadedRun | None:
    """Loader of this project's run folders (operative config + ``ckpt-<step>``)."""
    import gin

    from ddsp_models.training import checkpoints, models
    from ddsp_models.training.config import latest_operative_config, parse_gin

    if latest_operative_config(folder) is None:
        return None
    checkpoint = checkpoints.resolve_checkpoint(folder)
    gin.clear_config()
    parse_gin(operative_config_dir=folder)
    model = models.get_model()
    harmonic, _, _ = synth_processors(model)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None or not hasattr(preprocessor, "time_steps"):
        raise ValueError(f"run {folder!r}: {type(model).__name__} has no frame preprocessor "
                         "(f0 / loudness inputs); inference drives models with such controls")
    n_samples, sample_rate = harmonic.n_samples, harmonic.sample_rate
    n_frames = int(preprocessor.time_steps)
    if n_samples % n_frames:
        raise ValueError(f"run {folder!r}: {n_samples} samples per clip is not a whole number "
                         f"of its {n_frames} frames")
    hop = n_samples // n_frames
    if sample_rate % hop:
        raise ValueError(f"run {folder!r}: sample rate {sample_rate} is not a whole number of "
                         f"{hop}-sample frames")
    checkpoints.resume(model, checkpoint, build_inputs=example_features(n_frames, n_samples))
    return LoadedRun(folder, checkpoint, model, sample_rate, sample_rate // hop, hop, n_frames,
                     read_statistics(folder))


register_run_loader(_load_own_run, first=False)
