"""Checkpoints: one home for finding, saving, restoring and verifying them.

A checkpoint is what `tf.train.Checkpoint(model=..., optimizer=..., step=...)` writes:
``<folder>/ckpt-<step>.index`` plus ``.data-*`` files (the *prefix* is
``<folder>/ckpt-<step>``), and a ``checkpoint`` state file naming the newest. The model's
sub-modules sit under the checkpoint object ``model`` (``model/decoder/...``,
``model/processor_group/...``).

- Find: `resolve_checkpoint` (a prefix or a folder's newest), `checkpoint_step`,
  `newest_complete_checkpoint` (sets a half-written newest one aside), `has_checkpoint`.
- Save: `save` (model, optimizer and step, plus the gin operative config of that step).
- Restore: `resume` (everything: weights, and for a trainer the optimizer state and the
  step, so training continues where it stopped) and `warm_start` (named sub-modules only,
  ``'synthcoder=decoder'`` maps the checkpoint's ``decoder`` into ``synthcoder``).
  Both check afterwards that every restored variable equals its stored value (`verify`).

Restoring into a model that has never been called restores nothing silently (Keras makes
variables on the first call), so both refuse an unbuilt model unless given `build_inputs`.
"""
import contextlib
import glob
import logging
import os
import re
import shutil

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

logger = logging.getLogger(__name__)

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
BROKEN_DIR = "broken_checkpoints"  # half-written checkpoints found on resume are moved here
_STEP_RE = re.compile(r"-(\d+)$")


# ---------------------------------------------------------------------------- finding
def step_of(prefix) -> int | None:
    """The step of checkpoint prefix ``.../<name>-<step>`` (None: no ``-<step>`` ending)."""
    match = _STEP_RE.search(os.fspath(prefix))
    return int(match.group(1)) if match else None


def checkpoint_prefixes(folder) -> list[tuple[int, str]]:
    """``(step, prefix)`` of every ``<name>-<step>.index`` in `folder`, newest first."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(os.fspath(folder)), "*.index")):
        prefix = index[:-len(".index")]
        step = step_of(prefix)
        if step is not None:
            found.append((step, prefix))
    return sorted(found, reverse=True)


def resolve_checkpoint(checkpoint_path) -> str:
    """A checkpoint prefix (``.../ckpt-300``) from a prefix or a folder (its newest one).

    A folder's newest is the one its ``checkpoint`` state file names, else the highest
    numbered ``<name>-<step>.index``.

    Raises:
      ValueError: the path is neither a checkpoint prefix nor a folder holding one.
    """
    path = os.fspath(checkpoint_path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is not None and not tf.io.gfile.exists(latest + ".index"):
            latest = None  # the state file names a checkpoint that is gone
        if latest is None:  # no usable state file: the highest numbered prefix
            numbered = checkpoint_prefixes(path)
            others = glob.glob(os.path.join(glob.escape(path), "*.index"))
            latest = numbered[0][1] if numbered else (
                others[0][:-len(".index")] if len(others) == 1 else None)
        if latest is None:
            raise ValueError(f"checkpoint_path {path!r}: folder holds no checkpoint "
                             "(expected '<prefix>.index' files or a 'checkpoint' state file)")
        return latest
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise ValueError(f"checkpoint_path {path!r} is neither a checkpoint prefix "
                     f"('{path}.index' is missing) nor a folder holding checkpoints")


def checkpoint_step(checkpoint_path) -> int:
    """The step of a checkpoint (``.../ckpt-<step>``, or a folder's newest one).

    Raises:
      ValueError: no checkpoint there, or its name does not end in ``-<step>``.
    """
    prefix = resolve_checkpoint(checkpoint_path)
    step = step_of(prefix)
    if step is None:
        raise ValueError(f"checkpoint {prefix!r}: name does not end in '-<step>'")
    return step


def incomplete_checkpoint_message(path: str, error) -> str:
    """What to do about checkpoint `path` whose data cannot be read."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (f"checkpoint {path} cannot be read ({first}); it was probably written by a "
            "process that was killed: rerun the training (it sets a half-written newest "
            "checkpoint aside and resumes from the one before) or restore an older "
            "checkpoint prefix of the folder")


def checkpoint_is_complete(prefix: str) -> str | None:
    """None when every tensor of checkpoint `prefix` reads back; else why not."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 - any read failure means unusable
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


def newest_complete_checkpoint(folder) -> str | None:
    """The newest checkpoint of `folder` that reads back completely (None: none).

    A newer one that does not (a process killed while writing it) is moved to
    ``<folder>/broken_checkpoints/`` with a warning, temporary folders of killed saves
    are removed, and the ``checkpoint`` state file is rewritten to name the good one.
    Only for a run's own folder: it changes files.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    for leftover in glob.glob(os.path.join(glob.escape(folder), "*_temp*")):
        shutil.rmtree(leftover, ignore_errors=True) if os.path.isdir(leftover) \
            else os.remove(leftover)
    prefixes = checkpoint_prefixes(folder)
    good = []
    for step, prefix in prefixes:
        problem = checkpoint_is_complete(prefix)
        if problem is None:
            good.append(prefix)
            continue
        if good:  # an older broken one below a good newest one: leave it
            continue
        broken = os.path.join(folder, BROKEN_DIR)
        os.makedirs(broken, exist_ok=True)
        for path in glob.glob(glob.escape(prefix) + ".*"):
            os.replace(path, os.path.join(broken, os.path.basename(path)))
        logger.warning("checkpoint %s (step %d) is incomplete (%s), probably written by a "
                       "killed process: moved to %s; resuming from the one before", prefix,
                       step, problem, broken)
    if not good:
        if prefixes and os.path.isfile(os.path.join(folder, "checkpoint")):
            os.remove(os.path.join(folder, "checkpoint"))
        return None
    state = tf.train.get_checkpoint_state(folder)
    listed = list(state.all_model_checkpoint_paths) if state else []
    if not state or state.model_checkpoint_path != good[0] and \
            os.path.basename(state.model_checkpoint_path) != os.path.basename(good[0]):
        kept = [p for p in listed if os.path.exists(
            (p if os.path.isabs(p) else os.path.join(folder, p)) + ".index")]
        tf.compat.v1.train.update_checkpoint_state(folder, good[0], all_model_checkpoint_paths=(
            [p for p in kept if os.path.basename(p) != os.path.basename(good[0])] + [good[0]]))
    return good[0]


def has_checkpoint(folder, repair: bool = False) -> bool:
    """True when `folder` is a directory holding at least one checkpoint.

    With `repair` (a run's own folder, before resuming it), a half-written newest
    checkpoint is set aside first and only complete ones count (see
    `newest_complete_checkpoint`); never repair another process's folder."""
    if not folder or not tf.io.gfile.isdir(os.fspath(folder)):
        return False
    if repair and checkpoint_prefixes(folder):
        return newest_complete_checkpoint(folder) is not None
    try:
        resolve_checkpoint(folder)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------- saving
def trainer_checkpoint(trainer) -> tf.train.Checkpoint:
    """The objects a training checkpoint holds: model, optimizer and the global step."""
    return tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer,
                               step=trainer.step)


def save(trainer, save_dir, operative_config: bool = True) -> str:
    """Writes ``<save_dir>/ckpt-<step>`` (model, optimizer, step), keeping the newest
    ``trainer.checkpoints_to_keep``, and with `operative_config` the gin settings in force
    as ``operative_config-<step>.gin`` beside it. Returns the checkpoint prefix."""
    from ddsp_models.training.config import write_operative_config

    save_dir = os.fspath(save_dir)
    manager = tf.train.CheckpointManager(trainer_checkpoint(trainer), directory=save_dir,
                                         max_to_keep=trainer.checkpoints_to_keep)
    step = trainer.get_step()
    path = manager.save(checkpoint_number=step)
    logger.info("saved checkpoint %s", path)
    if operative_config:
        write_operative_config(save_dir, step)
    return path


# ---------------------------------------------------------------------------- restoring
def parse_restore_keys(restore_keys) -> list[tuple[str, str]]:
    """``['decoder', 'synthcoder=decoder']`` -> ``[('decoder', 'decoder'), ('synthcoder', 'decoder')]``.

    Each pair is (attribute of the model, name of the sub-module in the checkpoint).
    """
    if isinstance(restore_keys, str):
        restore_keys = [restore_keys]
    pairs = []
    for key in restore_keys:
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"restore_keys: expected names like 'decoder' or 'target=source', "
                             f"got {key!r}")
        target, _, source = key.partition("=")
        target, source = target.strip(), (source.strip() or target.strip())
        if not target or not source:
            raise ValueError(f"restore_keys: bad key {key!r} (expected 'name' or 'target=source')")
        pairs.append((target, source))
    return pairs


def _is_trainer(target) -> bool:
    return hasattr(target, "optimizer") and hasattr(target, "model") and \
        hasattr(target, "strategy")


def _ensure_built(model, build_inputs, who: str):
    if model.built:
        return
    if build_inputs is None:
        raise ValueError(f"{who}: {type(model).__name__} has never been called, so it has no "
                         "variables to restore into: pass build_inputs (a batch of features), "
                         "call it once first, or call trainer.build(batch) before restoring")
    model(build_inputs, training=False)


def resume(target, checkpoint_path, verify: bool = True, build_inputs=None) -> str:
    """Restores everything of a checkpoint (a prefix, or a folder's newest).

    Args:
      target: a `Trainer` (model weights, optimizer state and step: training continues as
        if never stopped; build it first) or a `Model` (all its weights).
      checkpoint_path: prefix ``.../ckpt-<step>`` or a folder.
      verify: check every model variable equals the stored value and (trainer) that the
        optimizer and step found their values.
      build_inputs: a feature batch to build a never-called model with.

    Returns:
      the checkpoint prefix restored from.

    Raises:
      ValueError: naming the path and what to do: no checkpoint; half-written data;
        another architecture or optimizer; a variable missing or differing afterwards.
    """
    if not _is_trainer(target):
        path = resolve_checkpoint(checkpoint_path)
        _ensure_built(target, build_inputs, "restore")
        graph, model_node = _model_graph(path)
        _restore(tf.train.Checkpoint(model=target), path, None)
        if verify:
            _verify([("model", target, graph, model_node, "model")], path)
        return path
    trainer = target
    _ensure_built(trainer.model, build_inputs, "Trainer.restore")
    path = resolve_checkpoint(checkpoint_path)
    with trainer.strategy.scope():
        if not trainer.optimizer.built:
            trainer.optimizer.build(trainer.model.trainable_variables)
        status = _restore(trainer_checkpoint(trainer), path, None, trainer=True)
        if verify:
            graph, model_node = _model_graph(path)
            _verify([("model", trainer.model, graph, model_node, "model")], path)
            try:
                status.assert_existing_objects_matched()
            except AssertionError as error:
                raise ValueError(
                    f"Trainer.restore: checkpoint {path} does not match this "
                    f"model/optimizer ({str(error)[:300]}): it was written with another "
                    "optimizer or without one. Restore the model only "
                    "(restore_keys=['<sub-module>', ...] or Model.restore) and let the "
                    "optimizer start afresh, or train with the optimizer settings of "
                    "the run that wrote it") from None
    logger.info("restored %s (everything) at step %d", path, trainer.get_step())
    return path


def warm_start(target, checkpoint_path, keys, verify: bool = True, build_inputs=None) -> str:
    """Restores only the named model sub-modules of a checkpoint; nothing else changes
    (for a trainer: the optimizer state and the step stay as they are).

    Args:
      target: a `Model`, or a `Trainer` (its model, inside its strategy's scope).
      checkpoint_path: prefix ``.../ckpt-<step>`` or a folder (its newest).
      keys: sub-module names, each ``'name'`` (the same name in the checkpoint) or
        ``'target=source'`` (the checkpoint's ``source`` into the model's ``target``, e.g.
        ``'synthcoder=decoder'``: an Autoencoder's decoder into a MidiAutoencoder).
      verify: check every restored variable equals its stored value.
      build_inputs: a feature batch to build a never-called model with.

    Returns:
      the checkpoint prefix restored from.

    Raises:
      ValueError: a key naming no sub-module of the model (or none in the checkpoint),
        a source named twice, shapes that differ, or a variable differing afterwards.
    """
    is_trainer = _is_trainer(target)
    model = target.model if is_trainer else target
    if is_trainer:  # (a trainer is built before anything else is looked at)
        _ensure_built(model, build_inputs, "Trainer.restore")
    path = resolve_checkpoint(checkpoint_path)
    _ensure_built(model, build_inputs, "restore")
    pairs = parse_restore_keys(keys)
    if not pairs:
        raise ValueError(f"warm_start from {path}: keys {keys!r} name no sub-module (use "
                         "checkpoints.resume to restore everything)")
    graph, model_node = _model_graph(path)
    targets, modules = [], {}
    for name, source in pairs:
        module = getattr(model, name, None)
        if module is None or not hasattr(module, "weights"):
            raise ValueError(f"restore_keys: {name!r} is not a sub-module of "
                             f"{type(model).__name__}")
        if not module.weights:
            raise ValueError(f"restore_keys: sub-module {name!r} has no variables")
        source_node = graph.child(model_node, source)
        if source_node is None:
            raise ValueError(f"restore_keys: {source!r} is not in checkpoint {path} "
                             f"(its model has {graph.child_names(model_node)})")
        if source in modules:
            raise ValueError(f"restore_keys: checkpoint module {source!r} is named twice "
                             f"in {list(keys)}; name each source once (restore "
                             "into a second target by copying weights after restoring)")
        modules[source] = module
        targets.append((name, module, graph, source_node, f"model/{source}"))
    scope = target.strategy.scope() if is_trainer else contextlib.nullcontext()
    with scope:
        _restore(tf.train.Checkpoint(model=tf.train.Checkpoint(**modules)), path, keys)
    if verify:
        _verify(targets, path)
    logger.info("warm start: %s from %s", list(keys), path)
    return path


def verify(model, checkpoint_path, keys=None) -> int:
    """Checks the model's variables (or those of the keyed sub-modules, see `warm_start`)
    equal a checkpoint's. Returns the number of variables checked.

    Raises:
      ValueError: naming the first variable missing from the checkpoint or differing.
    """
    path = resolve_checkpoint(checkpoint_path)
    graph, model_node = _model_graph(path)
    if keys is None:
        return _verify([("model", model, graph, model_node, "model")], path)
    targets = []
    for name, source in parse_restore_keys(keys):
        node = graph.child(model_node, source)
        if node is None or getattr(model, name, None) is None:
            raise ValueError(f"verify: {name}={source} is not in both the model and {path}")
        targets.append((name, getattr(model, name), graph, node, f"model/{source}"))
    return _verify(targets, path)


def _restore(checkpoint, path, keys, trainer: bool = False):
    """`checkpoint.restore(path)` with errors that say what to do."""
    try:
        return checkpoint.restore(path).expect_partial()
    except (tf.errors.OpError, IndexError, OSError) as error:  # half-written data
        raise ValueError(incomplete_checkpoint_message(path, error)) from None
    except ValueError as error:  # e.g. a variable's shape differs (another architecture)
        if not trainer:
            raise ValueError(f"restore from {path} (keys {keys}): {error}") from None
        raise ValueError(
            f"Trainer.restore from {path}: {error} The checkpoint was written by "
            "another model architecture or another optimizer. Restore the model "
            "only (restore_keys=['<sub-module>', ...] or Model.restore) and let the "
            "optimizer start afresh, or train with the settings of the run that "
            "wrote it; make a new Trainer before training (this one may be partly "
            "overwritten).") from None


# ---------------------------------------------------------------------------- verifying
class CheckpointGraph:
    """The object graph of a checkpoint: find objects by path and read their values."""

    def __init__(self, path: str):
        self.path = path
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        try:
            self.reader = tf.train.load_checkpoint(path)
            graph.ParseFromString(self.reader.get_tensor(OBJECT_GRAPH_KEY))
        except (tf.errors.OpError, ValueError, IndexError, OSError) as error:
            raise ValueError(incomplete_checkpoint_message(path, error)) from None
        self.nodes = graph.nodes

    def child(self, node_id: int, name: str):
        for ref in self.nodes[node_id].children:
            if ref.local_name == name:
                return ref.node_id
        return None

    def child_names(self, node_id: int) -> list[str]:
        return sorted(ref.local_name for ref in self.nodes[node_id].children)

    def find(self, names) -> int | None:
        """The node at the path `names` (local names from the root), None when absent."""
        node = 0
        for name in names:
            node = self.child(node, name)
            if node is None:
                return None
        return node

    def value(self, node_id: int):
        for attribute in self.nodes[node_id].attributes:
            if attribute.name == "VARIABLE_VALUE":
                return self.reader.get_tensor(attribute.checkpoint_key)
        return None


def _model_graph(path: str) -> tuple[CheckpointGraph, int]:
    """The checkpoint's object graph and the node id of its ``model`` object."""
    graph = CheckpointGraph(path)
    model_node = graph.child(0, "model")
    if model_node is None:
        raise ValueError(f"checkpoint {path} has no 'model' object (it has "
                         f"{graph.child_names(0)}), so it holds no model weights to "
                         "restore: point at a checkpoint written by this project's "
                         "Trainer (or by tf.train.Checkpoint(model=...))")
    return graph, model_node


def _verify(targets, path) -> int:
    total = 0
    for key, module, graph, node, where in targets:
        checked = verify_restored(module, graph, node, where)
        if checked == 0:
            raise ValueError(f"restore: {key!r} matched no variables in {path}")
        total += checked
    return total


def is_variable(obj) -> bool:
    return isinstance(obj, (tf.Variable, keras.Variable))


def has_variables(obj, _seen=None) -> bool:
    """True when a trackable object holds (or is) a variable."""
    _seen = set() if _seen is None else _seen
    if id(obj) in _seen:
        return False
    _seen.add(id(obj))
    if is_variable(obj):
        return True
    return any(has_variables(c, _seen) for c in tf.train.TrackableView.children(obj).values())


def verify_restored(obj, graph: CheckpointGraph, node_id: int, path: str) -> int:
    """Checks every variable reachable from `obj` equals its value in the checkpoint.

    Walks the object's trackable children and the checkpoint's object graph in step (by
    attribute name). Returns the number of variables checked.

    Raises:
      ValueError: naming the path of a variable missing from the checkpoint or whose
        value differs from the stored one.
    """
    checked, seen = 0, set()
    stack = [(obj, node_id, path)]
    while stack:
        current, node, where = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if is_variable(current):
            stored = graph.value(node)
            if stored is None:
                raise ValueError(f"restore: variable {where} has no value in {graph.path}")
            value = current.numpy()
            if value.shape != stored.shape or not np.array_equal(value, stored):
                raise ValueError(f"restore: variable {where} {value.shape} does not match the "
                                 f"checkpoint value {stored.shape} in {graph.path}")
            checked += 1
            continue
        for name, child in tf.train.TrackableView.children(current).items():
            child_node = graph.child(node, name)
            if child_node is None:
                if has_variables(child):
                    raise ValueError(f"restore: {where}/{name} is not in checkpoint "
                                     f"{graph.path} (it has {graph.child_names(node)}): the "
                                     "checkpoint was written by a model without it. Restore "
                                     "only the sub-modules both have (restore_keys=[...], "
                                     "e.g. ['decoder']), or rebuild the model from the run's "
                                     "own operative_config-*.gin")
                continue
            stack.append((child, child_node, f"{where}/{name}"))
    return checked
