"""What a pipeline run is: its folder and its gin configuration; the stages' folders.

A run (`RUNS`: ``ae``, ``midiae``, ``zmidiae``, ``inverse``; `ddsp_models.training.params`)
lives in ``<runs_dir>/<run>/`` (checkpoints ``ckpt-<step>``, ``operative_config-<step>.gin``,
``losses.jsonl``, TensorBoard summaries). Its configuration is the run's ``gin_files``,
then fixed pipeline bindings, then gin macros set from the params and the prepared dataset,
then the run's own ``gin_params``, which win.

The knobs reach gin as macros, declared as data: `RUN_MACROS` maps each ``train`` params
key a run reads to the macro(s) it sets, `dataset_macros` gives the values that follow from
the dataset (clip length, rates, instrument classes) and the reverb length. The gin files
bind their configurables to the macros and give them their own defaults
(``RNN_CHANNELS = 512`` and ``RnnFcDecoder.rnn_channels = %RNN_CHANNELS``); a run binds the
macros its files (and ``gin_params``) use, and a params key whose macros none of them use
is reported with a warning (it has no effect).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re

from ddsp_models.training.params import RUNS

log = logging.getLogger(__name__)

# gin files added for the encoded-MIDI variant (no note annotations in the dataset).
MIDI_ENCODER_MIXIN = "models/midiae/mixins/midi_encoder.gin"
MIDI_RUNS = ("midiae", "zmidiae")
# Training data of the InverseSynthesis run: synthetic notes with their true controls
# zipped with the dataset (self-supervised + real audio), or the dataset alone.
INVERSE_DATASETS = {"zipped": "papers/icml2020/finetune_dataset.gin",
                    "audio": "datasets/prepared.gin"}
# Bindings of every pipeline run that are not knobs.
PIPELINE_BINDINGS = ("Trainer.checkpoints_to_keep = 2",)
# Frames of the MIDI models' FilteredNoiseReverb decay envelope; its length is rounded up
# to a whole number of them.
NOISE_REVERB_FRAMES = 50

# ``train`` params keys (relative to ``train``) -> the gin macros they set.
_OPTIMIZATION = {"batch_size": ("batch_size",), "learning_rate": ("learning_rate",),
                 "lr_decay_steps": ("LR_DECAY_STEPS",)}
# The solo-instrument decoder: the ae run's decoder and the MIDI models' synthcoder (same
# sizes, so the warm start matches shape for shape).
_SYNTH = {"ae.rnn_channels": ("RNN_CHANNELS",), "ae.mlp_units": ("MLP_UNITS",),
          "ae.mlp_layers": ("MLP_LAYERS",), "ae.n_harmonics": ("N_HARMONICS",),
          "ae.noise_bands": ("NOISE_BANDS",)}


def _midi(run: str) -> dict:
    """A MIDI run's sizes: its MIDI decoder, its MIDI encoder (encoded notes) and, in the
    ZMidiAutoencoder, its expression encoders."""
    return {f"{run}.rnn_channels": ("MIDI_RNN_CHANNELS", "MIDI_ENCODER_RNN_CHANNELS",
                                    "EXPRESSION_RNN_CHANNELS"),
            f"{run}.mlp_units": ("MIDI_MLP_UNITS", "MIDI_ENCODER_MLP_UNITS",
                                 "EXPRESSION_MLP_UNITS"),
            f"{run}.mlp_layers": ("MIDI_MLP_LAYERS", "MIDI_ENCODER_MLP_LAYERS")}


RUN_MACROS = {
    "ae": {**_OPTIMIZATION, **_SYNTH},
    "midiae": {**_OPTIMIZATION, **_SYNTH, **_midi("midiae")},
    "zmidiae": {**_OPTIMIZATION, **_SYNTH, **_midi("zmidiae"), "zmidiae.z_dims": ("Z_DIMS",)},
    "inverse": {**_OPTIMIZATION, "inverse.encoder_size": ("ENCODER_SIZE",),
                "inverse.n_sinusoids": ("N_SINUSOIDS",), "inverse.n_harmonics": ("N_HARMONICS",),
                "inverse.noise_bands": ("NOISE_BANDS",), "inverse.rnn_channels": ("RNN_CHANNELS",),
                "inverse.mlp_units": ("MLP_UNITS",), "inverse.mlp_layers": ("MLP_LAYERS",)},
}
_MACRO_USE = re.compile(r"%([A-Za-z_]\w*)")


@dataclasses.dataclass(frozen=True)
class Folders:
    """Where the stages read and write. The stages' command lines give them (dvc.yaml);
    each stage needs only some (None: not given)."""
    data_dir: str | None = None       # the prepared TFDS dataset (stage dataset)
    runs_dir: str | None = None       # one folder per run, <runs_dir>/<run> (train stages)
    plots_dir: str | None = None      # <plots_dir>/<run>/losses.{csv,png} (train stages)
    metrics_dir: str | None = None    # <metrics_dir>/<run>.json (stage evaluate)
    samples_dir: str | None = None    # <samples_dir>/<run>/ (stage sample)
    transfers_dir: str | None = None  # <transfers_dir>/<run>/ (stage transfer)
    exported_dir: str | None = None   # <exported_dir>/<run>/ (stage export)

    @classmethod
    def of(cls, folders) -> Folders:
        """A `Folders` from itself or a mapping of its fields (a flow's parameter)."""
        if isinstance(folders, cls):
            return folders
        unknown = sorted(set(folders or {}) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown folder(s) {unknown}; known: "
                             f"{[f.name for f in dataclasses.fields(cls)]}")
        return cls(**{k: os.fspath(v) if v is not None else None
                      for k, v in (folders or {}).items()})

    def get(self, name: str) -> str:
        """The folder `name` (a field); ValueError naming its command-line flag when it
        was not given."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"no {name} given (command-line flag --{name.replace('_', '-')})")
        return value


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the prepared dataset holds (read from its TFDS metadata)."""
    data_dir: str
    config: str           # 'midi' (note annotations) or 'audio'
    sample_rate: int
    frame_rate: int
    n_samples: int        # per clip
    n_frames: int
    splits: dict          # {split: n_examples}
    instrument_ids: tuple = ()  # distinct `instrument_id`s over all splits (-1: unknown)

    @property
    def has_notes(self) -> bool:
        return self.config == "midi"


def dataset_info(data_dir: str) -> DatasetInfo:
    """Reads the prepared dataset's metadata (`PreparedTfdsProvider`); ValueError naming
    the folder when it is missing (run ``dvc repro dataset`` first)."""
    from ddsp_models.training.data import PreparedTfdsProvider

    try:
        provider = PreparedTfdsProvider(data_dir=data_dir, split="train")
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"no prepared dataset in {data_dir!r} ({error}); run "
                         "`dvc repro dataset` first") from None
    splits = {name: int(split.num_examples)
              for name, split in provider.builder.info.splits.items()}
    return DatasetInfo(os.fspath(data_dir), provider.config, provider.sample_rate,
                       provider.frame_rate, provider.n_samples, provider.n_frames, splits,
                       tuple(int(i) for i in provider.distinct_values("instrument_id")))


def split_batches(data_dir: str, split: str, batch_size: int):
    """Unshuffled batches of a split of the prepared dataset, once (the last one may be
    smaller)."""
    from ddsp_models.training.data import PreparedTfdsProvider

    provider = PreparedTfdsProvider(data_dir=data_dir, split=split)
    return provider.get_batch(batch_size, shuffle=False, repeats=1, drop_remainder=False)


def run_dir(runs_dir: str, run: str) -> str:
    """``<runs_dir>/<run>``."""
    check_run(run)
    return os.path.join(runs_dir, run)


def check_run(run: str) -> None:
    if run not in RUNS:
        raise ValueError(f"unknown run {run!r}; known runs: {RUNS}")


def notes_mode(params: dict, run: str, info: DatasetInfo) -> str:
    """``'ground_truth'`` or ``'encoded'`` for a MIDI run (``auto``: ground truth when the
    dataset has note annotations). Ground truth without annotations is an error."""
    mode = params["train"][run]["notes"]
    if mode == "auto":
        return "ground_truth" if info.has_notes else "encoded"
    if mode == "ground_truth" and not info.has_notes:
        raise ValueError(f"train.{run}.notes is 'ground_truth' but the dataset in "
                         f"{info.data_dir!r} has no note annotations (config "
                         f"{info.config!r}); use 'auto' or 'encoded'")
    return mode


def dataset_macros(params: dict, info: DatasetInfo) -> dict:
    """Macros that follow from the dataset: clip length, rates, frames, the dataset folder,
    the instrument embedding's size (the largest instrument id + 1, ids being General MIDI
    programs; with clips of unknown instrument (-1) also ``UNKNOWN_INSTRUMENT_ID = -1``:
    they get the zero embedding), and the reverb lengths from ``train.ae.reverb_seconds``
    (the MIDI models' rounded up to whole `NOISE_REVERB_FRAMES`)."""
    known = [i for i in info.instrument_ids if i >= 0]
    reverb = max(1, int(round(params["train"]["ae"]["reverb_seconds"] * info.sample_rate)))
    return {
        "N_SAMPLES": info.n_samples, "SAMPLE_RATE": info.sample_rate,
        "FRAME_RATE": info.frame_rate, "N_FRAMES": info.n_frames,
        "CLIP_SECONDS": info.n_samples / info.sample_rate, "DATA_DIR": info.data_dir,
        "N_INSTRUMENTS": max(known, default=0) + 1,
        "UNKNOWN_INSTRUMENT_ID": -1 if any(i < 0 for i in info.instrument_ids) else None,
        "REVERB_LENGTH": reverb,
        "NOISE_REVERB_FRAMES": NOISE_REVERB_FRAMES,
        "NOISE_REVERB_LENGTH": -(-reverb // NOISE_REVERB_FRAMES) * NOISE_REVERB_FRAMES,
    }


def params_macros(params: dict, run: str) -> dict:
    """``{params key: {macro: value}}`` of a run (`RUN_MACROS`)."""
    out = {}
    for key, macros in RUN_MACROS[run].items():
        value = params["train"]
        for part in key.split("."):
            value = value[part]
        out[f"train.{key}"] = {macro: value for macro in macros}
    return out


def used_macros(gin_files: list, gin_params: list) -> set:
    """Macro names that the files (with their includes) and the bindings refer to
    (``%NAME`` outside comments)."""
    from ddsp_models.training.config import expand_config_file, find_config

    texts = [expand_config_file(find_config(name)) for name in gin_files] + list(gin_params)
    used = set()
    for text in texts:
        for line in text.splitlines():
            used.update(_MACRO_USE.findall(line.split("#", 1)[0]))
    return used


def gin_config(params: dict, run: str, info: DatasetInfo) -> tuple[list[str], list[str]]:
    """``(gin_files, gin_bindings)`` of a run for this dataset."""
    check_run(run)
    section = params["train"][run]
    files = list(section["gin_files"])
    if run in MIDI_RUNS and notes_mode(params, run, info) == "encoded":
        files.append(MIDI_ENCODER_MIXIN)
    if run == "inverse":
        files.append(INVERSE_DATASETS[section["mode"]])
    used = used_macros(files, section["gin_params"])
    macros = dict(dataset_macros(params, info))
    for key, values in params_macros(params, run).items():
        if not used & set(values):
            log.warning("%s has no effect on the %s run: none of its gin files uses %s", key,
                        run, " or ".join(f"%{m}" for m in values))
        macros.update(values)
    bindings = list(PIPELINE_BINDINGS)
    bindings += [f"{name} = {value!r}" for name, value in macros.items() if name in used]
    bindings += list(section["gin_params"])
    return files, bindings


def warm_start_source(params: dict, runs_dir: str, run: str) -> tuple[str | None, list[str]]:
    """``(checkpoint folder, restore_keys)`` a run starts from, or ``(None, [])``."""
    if run == "midiae" and params["train"]["midiae"]["warm_start"]:
        return run_dir(runs_dir, params["train"]["midiae"]["warm_start"]), ["synthcoder=decoder"]
    return None, []

