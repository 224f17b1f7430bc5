"""Restoring checkpoints the original DDSP (TF 2.x, Keras 2) wrote into this package's models.

The original saves ``tf.train.Checkpoint(model=<model>, optimizer=<optimizer>)``; its
object graph names the Keras 2 layers, this package's Keras 3 layers are named slightly
differently. The variables are the same maths with the same layouts: Dense kernels
``[in, out]`` and biases, LayerNormalization gamma/beta, GRU kernels ``[in, 3 units]``,
recurrent kernels ``[units, 3 units]`` and biases ``[2, 3 units]`` (Keras reset_after GRU,
gates z, r, h: the layout of `nn.FastGRU` as of `keras.layers.GRU`), the reverb's impulse
response ``[n]``, `nn.Normalize` scales and shifts (``[1, 1, 1, ch]`` there, ``[ch]``
here). The mapping walks this model's trackable tree and the checkpoint's object graph
together, matching each child of ours to one of the checkpoint's by these rules (the first
that exists wins):

1. the same name;
2. without Keras 3's leading underscore (``_kernel`` -> ``kernel``);
3. ``<name>_<i>`` (our numbered sub-layers) -> ``<name>s/<i>`` or ``<name>/<i>`` (the
   original's Python lists, e.g. ``input_stacks/0``) or ``layer_with_weights-<i>`` (a
   Keras 2 ``Sequential``, e.g. `FcStack`);
4. inside a Keras 2 ``Sequential`` node (one with ``layer_with_weights-*`` children), our
   i-th child holding variables -> ``layer_with_weights-<i>`` (the original's `nn.Fc` is
   ``Sequential([Dense, LayerNormalization, Activation])``; ours has ``dense``, ``norm``);
5. before all of these, the renames of `upstream_renames` for layers whose original keeps
   its sub-layers in one list with weightless ones among them (`nn.ResNet`'s ``layers``
   list holds a max-pool, `nn.ResidualStack`'s its final norm after the blocks,
   `nn.ResidualLayer`'s ``bottleneck`` is a Keras 2 ``Sequential``).

Every variable of ours must find a checkpoint value of the same size (reshaped when only
unit axes differ), and every model variable of the checkpoint must be used, else a
ValueError names the path: a different architecture is never half-restored.
"""
from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from ddsp_models.training.checkpoints import (
    CheckpointGraph,
    has_variables,
    is_variable,
    resolve_checkpoint,
)

_NUMBERED = re.compile(r"^(.*)_(\d+)$")
_SEQUENTIAL_CHILD = "layer_with_weights-"


def upstream_renames(obj) -> dict[str, str]:
    """{our child name: its path below the original's node} for the layers whose variables
    the original keeps at other positions than `_candidates`' rules find."""
    from ddsp_models.training import nn

    if isinstance(obj, nn.ResNet):  # layers = [conv, max-pool, stack, stack]
        return {"conv_in": "layers/0", "stack_0": "layers/2", "stack_1": "layers/3"}
    if isinstance(obj, nn.ResidualStack):  # layers = [block, ..., block, norm, activation]
        blocks = sorted((int(name.rsplit("_", 1)[1]), name) for name in vars(obj)
                        if _NUMBERED.match(name) and name.startswith("block_"))
        renames = {name: f"layers/{index}" for index, name in blocks}
        renames["norm"] = f"layers/{len(blocks)}"
        return renames
    if isinstance(obj, nn.ResidualLayer):  # bottleneck = Sequential([conv, NormReluConv, NormReluConv])
        return {"conv_in": "bottleneck/layer_with_weights-0",
                "norm_relu_conv_0": "bottleneck/layer_with_weights-1",
                "norm_relu_conv_1": "bottleneck/layer_with_weights-2"}
    return {}


def _candidates(name: str, position: int, upstream_children: list[str],
                renames: dict[str, str] | None = None) -> list[list[str]]:
    """Paths (lists of names below the current checkpoint node) to try for our child."""
    paths = [renames[name].split("/")] if renames and name in renames else []
    paths.append([name])
    if name.startswith("_"):
        paths.append([name.lstrip("_")])
    match = _NUMBERED.match(name)
    if match:
        prefix, index = match.group(1), match.group(2)
        paths += [[prefix + "s", index], [prefix, index], [_SEQUENTIAL_CHILD + index]]
    if any(c.startswith(_SEQUENTIAL_CHILD) for c in upstream_children):
        paths.append([f"{_SEQUENTIAL_CHILD}{position}"])
    return paths


def _variable_children(obj) -> list[tuple[str, object]]:
    return [(name, child) for name, child in tf.train.TrackableView.children(obj).items()
            if has_variables(child)]


def _all_variable_nodes(graph: CheckpointGraph, node_id: int) -> dict[int, str]:
    """{node id: one path} of every variable below `node_id` in the checkpoint's graph."""
    found, seen, stack = {}, set(), [(node_id, "")]
    while stack:
        node, path = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if any(a.name == "VARIABLE_VALUE" for a in graph.nodes[node].attributes):
            found[node] = path
            continue
        for ref in graph.nodes[node].children:
            stack.append((ref.node_id, f"{path}/{ref.local_name}" if path else ref.local_name))
    return found


def map_variables(obj, checkpoint_path, root: str = "model",
                  allow_unused: bool = False) -> list[tuple[str, object, str, np.ndarray]]:
    """Pairs every variable of `obj` with its value in an original-DDSP checkpoint.

    Args:
      obj: a built model (or layer) of this package.
      checkpoint_path: a checkpoint prefix or a folder (its newest checkpoint).
      root: the checkpoint object that corresponds to `obj` (``'model'``; a path like
        ``'model/decoder'`` maps a sub-module).
      allow_unused: accept checkpoint variables nothing of ours takes (a model built
        without some layer of the original, e.g. its reverb removed for inference).

    Returns:
      ``[(our path, variable, checkpoint path, value reshaped to the variable's shape)]``.

    Raises:
      ValueError: naming the path of a variable of ours without a checkpoint value, a size
        mismatch, or (unless `allow_unused`) checkpoint variables nothing of ours takes.
    """
    path = resolve_checkpoint(checkpoint_path)
    graph = CheckpointGraph(path)
    root_node = graph.find(root.split("/"))
    if root_node is None:
        raise ValueError(f"checkpoint {path}: has no object {root!r} (top level: "
                         f"{graph.child_names(0)})")
    if not obj.weights:
        raise ValueError(f"{type(obj).__name__} has no variables: build it (call it once) "
                         "before mapping a checkpoint onto it")
    pairs, used, seen = [], set(), set()
    stack = [(obj, root_node, type(obj).__name__, root)]
    while stack:
        current, node, ours, theirs = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        children = _variable_children(current)
        upstream_children = graph.child_names(node)
        renames = upstream_renames(current)
        for position, (name, child) in enumerate(children):
            found = None
            for candidate in _candidates(name, position, upstream_children, renames):
                target = node
                for part in candidate:
                    target = graph.child(target, part)
                    if target is None:
                        break
                if target is not None:
                    found = (target, "/".join(candidate))
                    break
            if found is None:
                raise ValueError(f"checkpoint {path}: {ours}/{name} has no counterpart under "
                                 f"{theirs} (it has {upstream_children}): the original model "
                                 "was built differently (another config or architecture)")
            target, matched = found
            if is_variable(child):
                value = graph.value(target)
                if value is None:
                    raise ValueError(f"checkpoint {path}: {theirs}/{matched} (for {ours}/{name}) "
                                     "holds no variable value")
                shape = tuple(child.shape)
                if value.size != int(np.prod(shape, dtype=np.int64)) or \
                        [d for d in value.shape if d != 1] != [d for d in shape if d != 1]:
                    raise ValueError(f"checkpoint {path}: {theirs}/{matched} has shape "
                                     f"{list(value.shape)}, {ours}/{name} needs {list(shape)}")
                pairs.append((f"{ours}/{name}", child, f"{theirs}/{matched}",
                              value.reshape(shape)))
                used.add(target)
            else:
                stack.append((child, target, f"{ours}/{name}", f"{theirs}/{matched}"))
    unused = {n: p for n, p in _all_variable_nodes(graph, root_node).items() if n not in used}
    if unused and not allow_unused:
        names = sorted(f"{root}/{p}" for p in unused.values())
        raise ValueError(f"checkpoint {path}: {len(names)} variable(s) have no counterpart in "
                         f"this {type(obj).__name__}: {names[:8]}"
                         f"{' ...' if len(names) > 8 else ''} "
                         "(the original model has layers this one lacks)")
    return pairs


def restore_upstream_checkpoint(obj, checkpoint_path, root: str = "model",
                                allow_unused: bool = False) -> int:
    """Assigns an original-DDSP checkpoint's values to every variable of `obj` and checks
    each one reads back equal to the stored value. Returns the number of variables.
    Arguments as `map_variables`."""
    pairs = map_variables(obj, checkpoint_path, root, allow_unused)
    for _, variable, _, value in pairs:
        variable.assign(value.astype(variable.dtype.name if hasattr(variable.dtype, "name")
                                     else str(variable.dtype)))
    for ours, variable, theirs, value in pairs:
        if not np.array_equal(np.asarray(variable.numpy()), value):
            raise ValueError(f"restore: {ours} does not equal {theirs} after assignment")
    return len(pairs)
