"""Model folders the original DDSP wrote: load them, or convert them into this project's runs.

An original model folder (what its ``ddsp_run`` or training notebook saves) holds
``operative_config-<step>.gin`` (with ``import ddsp`` lines), ``ckpt-<step>.index`` /
``.data-*`` (``tf.train.Checkpoint(model=..., optimizer=...)`` under Keras 2) and, from the
notebook, ``dataset_statistics.pkl``.

- `load_upstream_model` rebuilds the model from the newest operative config through this
  package's configurables (`parse_upstream_operative_config`) and restores the checkpoint's
  weights into it (`checkpoints.restore_upstream_checkpoint`: every variable assigned and
  checked).
- `convert` writes a run folder of this project (``operative_config-<step>.gin`` in this
  package's names, ``ckpt-<step>`` written by ``tf.train.Checkpoint(model=...)``,
  ``dataset_statistics.json``) that `training.inference.load_run`, the sample and transfer
  flows and warm starts read like any trained run. The optimizer state is not converted, so
  a converted run is for inference and warm starts, not for resuming its training.
- `inference.load_run` also reads original folders directly (`load_upstream_run`).
"""
from __future__ import annotations

import glob
import logging
import os
import re

import gin
from gin import config_parser

from ddsp_models.compat.checkpoints import restore_upstream_checkpoint
from ddsp_models.compat.statistics import load_dataset_statistics, to_run_statistics
from ddsp_models.training import checkpoints

logger = logging.getLogger(__name__)

STATISTICS_PICKLE = "dataset_statistics.pkl"
_ORIGINAL_IMPORT = re.compile(r"^\s*(import|from)\s+ddsp(\.|\s|$)", re.MULTILINE)

# Configurables that only drive training, evaluation or logging: bindings of theirs this
# package does not know (e.g. `train.report_loss_to_hypertune`) cannot change the model.
NON_MODEL_CONFIGURABLES = frozenset({
    "train", "Trainer", "get_trainer_class", "evaluate", "sample", "evaluate_or_sample",
    "run_dag", "get_strategy", "TFRecordProvider", "TfdsProvider", "NSynthTfds",
    "LegacyTFRecordProvider", "ExperimentalDataProvider", "BasicEvaluator", "F0LdEvaluator",
    "MidiAutoencoderEvaluator", "TWMEvaluator", "MidiHeuristicEvaluator"})
# Bindings of settings this package does not expose, accepted when they hold the value whose
# behaviour this package implements (anything else would sound different: an error).
IMPLEMENTED_VALUES = {("oscillator_bank", "sum_sinusoids"): True}
# Layers the original's models build in Python, with sizes no operative config records (so
# not gin-configurable there); this package builds them through gin: {model: bindings, or a
# function of the bound config returning them}.
_MIDI_REVERB = {("FilteredNoiseReverb", "reverb_length"): 24000, ("FilteredNoiseReverb", "n_frames"): 500,
                ("FilteredNoiseReverb", "n_filter_banks"): 32}
INVERSE_SYNTHESIS_SAMPLE_RATE = 16000  # the original InverseSynthesis' default sample_rate (Hz)


def inverse_synthesis_reverb() -> dict:
    """The original InverseSynthesis' reverb: 2 s (2 x its `sample_rate`, as bound in the
    config, else 16000 Hz), 500 frames, 16 filter banks, window 257."""
    try:
        sample_rate = gin.query_parameter("InverseSynthesis.sample_rate")
    except ValueError:  # not bound: the constructor's default
        sample_rate = INVERSE_SYNTHESIS_SAMPLE_RATE
    return {("FilteredNoiseReverb", "reverb_length"): int(sample_rate * 2),
            ("FilteredNoiseReverb", "window_size"): 257, ("FilteredNoiseReverb", "n_frames"): 500,
            ("FilteredNoiseReverb", "n_filter_banks"): 16}


HARD_CODED_BINDINGS = {"MidiAutoencoder": _MIDI_REVERB, "ZMidiAutoencoder": _MIDI_REVERB,
                       "InverseSynthesis": inverse_synthesis_reverb}
_MODEL_BINDING = re.compile(r"^\s*get_model\.model\s*=\s*@(?:[\w.]*\.)?(\w+)\(\)", re.MULTILINE)


def is_upstream_folder(folder) -> bool:
    """True when `folder`'s newest operative config was written by the original DDSP (its
    configs import ``ddsp``; this package's import ``ddsp_models``)."""
    from ddsp_models.training.config import latest_operative_config

    path = latest_operative_config(folder) if os.path.isdir(os.fspath(folder)) else None
    if path is None:
        return False
    with open(path, encoding="utf-8") as f:
        return bool(_ORIGINAL_IMPORT.search(f.read()))


def parse_upstream_operative_config(path) -> list[str]:
    """Binds an original operative config (a file, or a folder's newest) in this package's
    names. Returns the bindings skipped (unknown to this package but harmless).

    Bindings this package cannot take are skipped when they configure training only
    (`NON_MODEL_CONFIGURABLES`) or hold the value this package implements
    (`IMPLEMENTED_VALUES`); any other raises, because the model would differ. The sizes the
    original's model hard-codes (`HARD_CODED_BINDINGS`, e.g. the MidiAutoencoder's reverb)
    are bound too (InverseSynthesis': from its bound sample_rate).

    Raises:
      ValueError: naming the file and the bindings that cannot be honoured.
    """
    from ddsp_models.training.config import (
        expand_config_file,
        import_all,
        latest_operative_config,
        translate,
    )

    path = os.fspath(path)
    if os.path.isdir(path):
        found = latest_operative_config(path)
        if found is None:
            raise ValueError(f"model folder {path!r} has no operative_config-<step>.gin")
        path = found
    import_all()
    text = translate(expand_config_file(path))
    skipped, refused = [], []
    parser = config_parser.ConfigParser(text, gin.config.ParserDelegate(skip_unknown=True))
    with gin.unlock_config():
        for statement in parser:
            if not isinstance(statement, config_parser.BindingStatement):
                continue  # imports: every module is imported above
            scope, selector, arg_name, value, _ = statement
            if not arg_name:  # a macro
                gin.bind_parameter((f"{scope}/{selector}" if scope else selector, "gin.macro",
                                    "value"), value)
                continue
            try:
                gin.bind_parameter((scope, selector, arg_name), value)
            except ValueError as error:
                name = selector.split(".")[-1]
                binding = f"{selector}.{arg_name} = {value!r}"
                harmless = name in NON_MODEL_CONFIGURABLES or (
                    (name, arg_name) in IMPLEMENTED_VALUES
                    and IMPLEMENTED_VALUES[(name, arg_name)] == value)
                (skipped if harmless else refused).append(binding)
                if not harmless:
                    logger.debug("cannot bind %s: %s", binding, error)
    if refused:
        raise ValueError(f"{path}: this package cannot honour {refused} (unknown "
                         "configurables or parameters that change the model)")
    model = _MODEL_BINDING.search(text)
    hard_coded = HARD_CODED_BINDINGS.get(model and model.group(1), {})
    hard_coded = hard_coded() if callable(hard_coded) else hard_coded
    with gin.unlock_config():
        for (selector, arg_name), value in hard_coded.items():
            gin.bind_parameter(("", selector, arg_name), value)
    if skipped:
        logger.info("%s: skipped training-only or default bindings %s", path, skipped)
    return skipped


def _build_inputs(model, folder: str) -> dict:
    """A zero feature batch of the clip shape the model was configured for (with empty
    note rolls for a model with a `midi_decoder`: the MIDI autoencoders read them; only
    audio of its `n_samples` for an InverseSynthesis, which reads nothing else)."""
    import numpy as np

    from ddsp_models.training.inference import example_features, synth_processors

    if getattr(model, "sinusoidal_encoder", None) is not None:
        return {"audio": np.zeros([1, int(model.n_samples)], np.float32)}
    preprocessor = getattr(model, "preprocessor", None)
    n_frames = getattr(preprocessor, "time_steps", None)
    try:
        harmonic = synth_processors(model)[0]
    except ValueError:
        harmonic = None
    if n_frames is None or harmonic is None:
        raise ValueError(f"model folder {folder!r}: cannot tell the clip shape of a "
                         f"{type(model).__name__} (no frame preprocessor or Harmonic "
                         "synthesizer): pass example_batch, a feature batch to build it with")
    midi = getattr(model, "midi_decoder", None) is not None
    return example_features(int(n_frames), int(harmonic.n_samples), midi=midi)


def checkpoint_of(folder) -> tuple[str, int]:
    """(newest checkpoint prefix, its step) of a model folder."""
    from ddsp_models.training.checkpoints import checkpoint_step, resolve_checkpoint

    prefix = resolve_checkpoint(folder)
    return prefix, checkpoint_step(prefix)


def load_upstream_model(model_dir, example_batch=None):
    """The model of an original DDSP model folder, with its trained weights.

    Args:
      model_dir: the folder (newest ``operative_config-*.gin`` and ``ckpt-*``).
      example_batch: features to build the model with (default: zeros of the configured
        clip shape, from the preprocessor's ``time_steps`` and the Harmonic's
        ``n_samples``).

    Returns:
      The restored model (gin holds the folder's config afterwards).

    Raises:
      ValueError: naming the folder, the binding or the variable that does not fit.
    """
    from ddsp_models.training import models

    model_dir = os.fspath(model_dir)
    prefix, _ = checkpoint_of(model_dir)
    gin.clear_config()
    parse_upstream_operative_config(model_dir)
    model = models.get_model()
    batch = example_batch if example_batch is not None else _build_inputs(model, model_dir)
    model({k: v[:1] for k, v in batch.items()}, training=False)
    count = restore_upstream_checkpoint(model, prefix)
    logger.info("restored %d variables of %s from %s", count, type(model).__name__, prefix)
    return model


def read_upstream_statistics(model_dir) -> dict | None:
    """The folder's ``dataset_statistics.pkl`` in this project's layout (None: absent)."""
    path = os.path.join(os.fspath(model_dir), STATISTICS_PICKLE)
    if not os.path.isfile(path):
        return None
    return to_run_statistics(load_dataset_statistics(path))


def convert(model_dir, out_dir) -> dict:
    """Writes original model folder `model_dir` as a run folder of this project.

    Returns:
      {'checkpoint': our checkpoint prefix, 'operative_config': path, 'statistics': path
      or None, 'variables': number of variables, 'step': the original's step}.
    """
    import tensorflow as tf

    from ddsp_models.training.config import write_operative_config
    from ddsp_models.training.inference import write_statistics

    model_dir, out_dir = os.fspath(model_dir), os.fspath(out_dir)
    if os.path.abspath(model_dir) == os.path.abspath(out_dir):
        raise ValueError(f"convert: out_dir must differ from the original folder {model_dir!r}")
    if os.path.isdir(out_dir) and glob.glob(os.path.join(out_dir, "*.index")):
        raise ValueError(f"convert: {out_dir!r} already holds checkpoints; choose an empty folder")
    statistics = read_upstream_statistics(model_dir)  # fails early on a bad pickle
    prefix, step = checkpoint_of(model_dir)
    model = load_upstream_model(model_dir)
    os.makedirs(out_dir, exist_ok=True)
    checkpoint = tf.train.Checkpoint(model=model)
    ours = checkpoint.write(os.path.join(out_dir, f"ckpt-{step}"))
    tf.compat.v1.train.update_checkpoint_state(out_dir, ours, all_model_checkpoint_paths=[ours])
    operative = write_operative_config(out_dir, step)
    stats_path = write_statistics(out_dir, statistics) if statistics is not None else None
    count = checkpoints.verify(model, ours)  # what we wrote reads back as the original's values
    return {"checkpoint": ours, "operative_config": operative, "statistics": stats_path,
            "variables": count, "step": step, "source": prefix}


def load_upstream_run(folder):
    """`inference.load_run` loader of original folders (None for other folders)."""
    from ddsp_models.training.inference import LoadedRun, synth_processors

    if not is_upstream_folder(folder):
        return None
    model = load_upstream_model(folder)
    harmonic = synth_processors(model)[0]
    n_frames = int(model.preprocessor.time_steps)
    hop = int(harmonic.n_samples) // n_frames
    prefix, _ = checkpoint_of(folder)
    return LoadedRun(os.fspath(folder), prefix, model, int(harmonic.sample_rate),
                     int(harmonic.sample_rate) // hop, hop, n_frames,
                     read_upstream_statistics(folder))
