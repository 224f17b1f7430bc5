"""Model base class: loss bookkeeping and verified (partial, mapped) checkpoint restore.

A model is called on a dict of features (``audio`` ``[batch, n_samples]``, ``f0_hz`` and
``loudness_db`` ``[batch, n_frames]``, ...) and returns a dict of outputs; with
``return_losses=True`` it also returns ``{loss_name: scalar, ..., 'total_loss': scalar}``.

Checkpoints are written by `tf.train.Checkpoint(model=<model>, ...)` (see
`ddsp_models.training.trainer.Trainer.save`), so the model's sub-modules live under the
checkpoint object ``model``: ``model/decoder/...``, ``model/processor_group/...``.
"""
import glob
import os
import re

import numpy as np
import tensorflow as tf
import keras
from tensorflow.core.protobuf import trackable_object_graph_pb2

from ddsp_models.gin_utils import register

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def resolve_checkpoint(checkpoint_path) -> str:
    """A checkpoint prefix (``.../ckpt-300``) from a prefix or a directory (its latest one).

    Raises:
      ValueError: the path is neither a checkpoint prefix nor a folder holding one.
    """
    path = os.fspath(checkpoint_path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is not None and not tf.io.gfile.exists(latest + ".index"):
            latest = None  # the state file names a checkpoint that is gone
        if latest is None:  # no usable `checkpoint` state file: the highest numbered prefix
            prefixes = [f[: -len(".index")] for f in glob.glob(os.path.join(path, "*.index"))]
            numbered = [(int(m.group(1)), p) for p in prefixes
                        if (m := re.search(r"-(\d+)$", p))]
            latest = max(numbered)[1] if numbered else (prefixes[0] if len(prefixes) == 1 else None)
        if latest is None:
            raise ValueError(f"checkpoint_path {path!r}: folder holds no checkpoint "
                             "(expected '<prefix>.index' files or a 'checkpoint' state file)")
        return latest
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise ValueError(f"checkpoint_path {path!r} is neither a checkpoint prefix "
                     f"('{path}.index' is missing) nor a folder holding checkpoints")


def incomplete_checkpoint_message(path: str, error) -> str:
    """What to do about checkpoint `path` whose data cannot be read."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (f"checkpoint {path} cannot be read ({first}); it was probably written by a "
            "process that was killed: rerun the training (it sets a half-written newest "
            "checkpoint aside and resumes from the one before) or restore an older "
            "checkpoint prefix of the folder")


def checkpoint_step(checkpoint_path) -> int:
    """The step of a checkpoint (``.../ckpt-<step>``, or a folder's latest one).

    Raises:
      ValueError: no checkpoint there, or its name does not end in ``-<step>``.
    """
    prefix = resolve_checkpoint(checkpoint_path)
    match = re.search(r"-(\d+)$", prefix)
    if match is None:
        raise ValueError(f"checkpoint {prefix!r}: name does not end in '-<step>'")
    return int(match.group(1))


def parse_restore_keys(restore_keys) -> list[tuple[str, str]]:
    """``['decoder', 'synthcoder=decoder']`` -> ``[('decoder', 'decoder'), ('synthcoder', 'decoder')]``.

    Each pair is (attribute of this model, name of the sub-module in the checkpoint).
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


def preprocess_and_encode(preprocessor, encoder, features: dict, training: bool = True) -> dict:
    """A copy of `features` updated with the preprocessor's outputs and the encoder's ``z``.

    Either layer may be None. An encoder may return a dict (merged) or a tensor (``z``).
    """
    features = dict(features)
    if preprocessor is not None:
        features.update(preprocessor(features, training=training))
    if encoder is not None:
        encoded = encoder(features, training=training)
        features.update(encoded if isinstance(encoded, dict) else {"z": encoded})
    return features


class _CheckpointGraph:
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


def _is_variable(obj) -> bool:
    return isinstance(obj, (tf.Variable, keras.Variable))


def verify_restored(obj, graph: _CheckpointGraph, node_id: int, path: str) -> int:
    """Checks every variable reachable from `obj` equals its value in the checkpoint.

    Walks this object's trackable children and the checkpoint's object graph in step
    (by attribute name). Returns the number of variables checked.

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
        if _is_variable(current):
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
                if _has_variables(child):
                    raise ValueError(f"restore: {where}/{name} is not in checkpoint "
                                     f"{graph.path} (it has {graph.child_names(node)}): the "
                                     "checkpoint was written by a model without it. Restore "
                                     "only the sub-modules both have (restore_keys=[...], "
                                     "e.g. ['decoder']), or rebuild the model from the run's "
                                     "own operative_config-*.gin")
                continue
            stack.append((child, child_node, f"{where}/{name}"))
    return checked


def _has_variables(obj, _seen=None) -> bool:
    """True when a trackable object holds (or is) a variable."""
    _seen = set() if _seen is None else _seen
    if id(obj) in _seen:
        return False
    _seen.add(id(obj))
    if _is_variable(obj):
        return True
    return any(_has_variables(c, _seen) for c in tf.train.TrackableView.children(obj).values())


@register("models")
class Model(keras.Model):
    """Base model: collects named losses during a call; restores checkpoints with checks.

    Subclasses implement ``call(features, training=False)`` returning a dict of outputs and
    add losses with `_update_losses_dict` (only while ``self.compute_losses`` is True).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._losses_dict = {}
        self.compute_losses = False
        self.input_shapes = None  # {feature: shape} of the first call

    def build(self, input_shape):
        """Keras build hook, run before the first call: records the feature shapes.

        Sub-layers build themselves during that first call, so Keras need not trace the
        whole model symbolically first (its default for layers without `build`).
        """
        if isinstance(input_shape, dict):
            self.input_shapes = {k: tuple(s) for k, s in input_shape.items() if s is not None}
        self.built = True

    def __call__(self, features, training=False, return_losses=False, **kwargs):
        """Runs the model.

        Args:
          features: dict of batched feature tensors (``audio`` ``[batch, n_samples]``, ...).
          training: training mode (passed to sub-layers).
          return_losses: also compute and return the losses dict (with ``total_loss``).

        Returns:
          outputs dict, or ``(outputs, losses)`` when ``return_losses``.
        """
        if not isinstance(features, dict):
            raise TypeError(f"features must be a dict of tensors, got {type(features).__name__}")
        self._losses_dict = {}
        self.compute_losses = bool(return_losses)
        try:
            outputs = super().__call__(features, training=training, **kwargs)
        finally:
            self.compute_losses = False
        if not return_losses:
            return outputs
        losses = dict(self._losses_dict)
        if not losses:
            raise ValueError(f"{type(self).__name__}: return_losses=True but the model has no "
                             "losses (pass `losses=[...]`)")
        losses["total_loss"] = tf.add_n([tf.convert_to_tensor(v) for v in losses.values()])
        return outputs, losses

    def _update_losses_dict(self, loss_objs, *args, **kwargs):
        """Adds each loss object's ``get_losses_dict(*args)`` (or its scalar) to the losses."""
        for loss_obj in loss_objs or ():
            if hasattr(loss_obj, "get_losses_dict"):
                new_losses = loss_obj.get_losses_dict(*args, **kwargs)
            else:
                new_losses = {getattr(loss_obj, "name", type(loss_obj).__name__):
                              loss_obj(*args, **kwargs)}
            duplicate = set(new_losses) & set(self._losses_dict)
            if duplicate:
                raise ValueError(f"{type(self).__name__}: losses {sorted(duplicate)} are "
                                 "computed twice; give the loss objects distinct names")
            self._losses_dict.update(new_losses)

    def get_audio_from_outputs(self, outputs):
        """The synthesized audio ``[batch, n_samples]`` from a call's outputs."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checkpoints
    def restore(self, checkpoint_path, restore_keys=None, verify: bool = True,
                build_inputs=None) -> str:
        """Restores weights from a checkpoint written with ``tf.train.Checkpoint(model=...)``.

        Args:
          checkpoint_path: a checkpoint prefix (``.../ckpt-300``) or a folder (its latest).
          restore_keys: None restores the whole model. Otherwise names of sub-modules to
            restore, each ``'name'`` (same name in the checkpoint) or ``'target=source'``
            (the checkpoint's ``source`` sub-module into this model's ``target``, e.g.
            ``'synthcoder=decoder'``); everything else is left untouched.
          verify: check every restored variable equals the checkpoint value.
          build_inputs: a feature batch to build a never-called model with (restoring into
            a model without variables would silently restore nothing).

        Returns:
          The checkpoint prefix restored from.

        Raises:
          ValueError: bad path; a key naming no sub-module on this model or in the
            checkpoint; a variable missing from the checkpoint or differing after restore.
        """
        path = resolve_checkpoint(checkpoint_path)
        if not self.built:
            if build_inputs is None:
                raise ValueError(f"{type(self).__name__} has never been called, so it has no "
                                 "variables to restore into: pass build_inputs (a batch of "
                                 "features) or call it once first")
            self(build_inputs, training=False)
        checkpoint, targets = self._restore_plan(path, restore_keys)
        try:
            checkpoint.restore(path).expect_partial()
        except ValueError as error:  # e.g. a variable's shape differs (another architecture)
            raise ValueError(f"restore from {path} (keys {restore_keys}): {error}") from None
        except (tf.errors.OpError, IndexError, OSError) as error:  # half-written data
            raise ValueError(incomplete_checkpoint_message(path, error)) from None
        if verify:
            self._verify(path, targets)
        return path

    def verify_restore(self, checkpoint_path, restore_keys=None) -> int:
        """Checks the model's (or the keyed sub-modules') variables equal a checkpoint's.

        Returns the number of variables checked; raises ValueError naming a mismatch.
        """
        path = resolve_checkpoint(checkpoint_path)
        _, targets = self._restore_plan(path, restore_keys)
        return self._verify(path, targets)

    def _restore_plan(self, path, restore_keys):
        """(checkpoint object to restore with, [(key, module, graph, node, checkpoint path)])."""
        graph = _CheckpointGraph(path)
        model_node = graph.child(0, "model")
        if model_node is None:
            raise ValueError(f"checkpoint {path} has no 'model' object (it has "
                             f"{graph.child_names(0)}), so it holds no model weights to "
                             "restore: point at a checkpoint written by this project's "
                             "Trainer (or by tf.train.Checkpoint(model=...))")
        if restore_keys is None:
            return (tf.train.Checkpoint(model=self),
                    [("model", self, graph, model_node, "model")])
        targets, modules = [], {}
        for target, source in parse_restore_keys(restore_keys):
            module = getattr(self, target, None)
            if module is None or not hasattr(module, "weights"):
                raise ValueError(f"restore_keys: {target!r} is not a sub-module of "
                                 f"{type(self).__name__}")
            if not module.weights:
                raise ValueError(f"restore_keys: sub-module {target!r} has no variables")
            source_node = graph.child(model_node, source)
            if source_node is None:
                raise ValueError(f"restore_keys: {source!r} is not in checkpoint {path} "
                                 f"(its model has {graph.child_names(model_node)})")
            if source in modules:
                raise ValueError(f"restore_keys: checkpoint module {source!r} is named twice "
                                 f"in {list(restore_keys)}; name each source once (restore "
                                 "into a second target by copying weights after restoring)")
            modules[source] = module
            targets.append((target, module, graph, source_node, f"model/{source}"))
        return tf.train.Checkpoint(model=tf.train.Checkpoint(**modules)), targets

    @staticmethod
    def _verify(path, targets) -> int:
        total = 0
        for key, module, graph, node, where in targets:
            checked = verify_restored(module, graph, node, where)
            if checked == 0:
                raise ValueError(f"restore: {key!r} matched no variables in {path}")
            total += checked
        return total
