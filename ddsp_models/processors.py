"""Processor base class, the ProcessorGroup DAG runner, and routing processors (Add, Mix, Crop).

A Processor turns raw inputs (usually network outputs) into controls (`get_controls`) and
controls into a signal (`get_signal`). A ProcessorGroup wires processors into a signal chain
from a list of `(processor, [input_keys])` nodes. Tensors are float32, batch first; audio is
`[batch, n_samples]`, frame controls `[batch, n_frames, channels]`.
"""
import inspect
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import keras
import tensorflow as tf

from ddsp_models import core
from ddsp_models.gin_utils import register

TensorDict = Dict[str, tf.Tensor]
OUTPUT_KEY = "out"  # reserved node name: 'out/signal' is the group's output signal.
_KERAS_CALL_KWARGS = ("training", "mask")


class Processor(keras.layers.Layer):
    """Base class of synthesizers and effects.

    Subclasses implement `get_controls(*inputs) -> dict` (scaling and checking network outputs)
    and `get_signal(**controls) -> tensor`. Calling the processor runs both:
    `processor(*inputs)` returns the signal, `processor(*inputs, return_outputs_dict=True)`
    returns `{'signal': signal, 'controls': controls}` (as the original). Variables are
    created in `build()`, which runs once on the first call (or when a ProcessorGroup runs
    the processor).
    """

    def __init__(self, name: str, trainable: bool = False, **kwargs):
        super().__init__(name=name, trainable=trainable, autocast=False, **kwargs)

    def build(self, input_shapes=None):
        """Creates variables; `input_shapes` lists the shapes of the call's inputs."""
        del input_shapes

    def ensure_built(self, inputs: Sequence[Any]) -> None:
        """Builds the layer from its inputs' shapes if it has not been built yet."""
        if not self.built:
            self.build([getattr(x, "shape", None) for x in inputs])

    def __call__(self, *inputs, return_outputs_dict: bool = False, **kwargs):
        """Runs get_controls then get_signal.

        Args:
          *inputs: positional inputs of `get_controls`.
          return_outputs_dict: return `{'signal': signal, 'controls': controls}` instead of
            the signal.
          **kwargs: keyword inputs of `get_controls` (keras' `training` / `mask` are dropped).
        """
        for key in _KERAS_CALL_KWARGS:
            kwargs.pop(key, None)
        self.ensure_built(list(inputs) + list(kwargs.values()))
        controls = self.get_controls(*inputs, **kwargs)
        signal = self.get_signal(**controls)
        if return_outputs_dict:
            return {"signal": signal, "controls": controls}
        return signal

    def call(self, *inputs, **kwargs):
        """Keras entry point; same as calling the processor."""
        return self.__call__(*inputs, **kwargs)

    def get_controls(self, *inputs, **kwargs) -> TensorDict:
        """Converts raw inputs into a dict of controls."""
        raise NotImplementedError

    def get_signal(self, **controls) -> tf.Tensor:
        """Converts controls into a signal."""
        raise NotImplementedError


# ------------------------------------------------------------------------------ checks
def check_audio(audio, name: str = "audio") -> tf.Tensor:
    """Float32 audio `[batch, n_samples]`; TypeError/ValueError naming `name` otherwise."""
    return core.ensure_audio(audio, name)


def check_frames(x, name: str, channels: int | None = None, ranks=(2, 3)) -> tf.Tensor:
    """Float32 frame controls `[batch, n_frames, channels]` from rank 2 or 3 inputs.

    Args:
      x: `[batch, n_frames]` (rank 2 allowed if 2 in ranks) or `[batch, n_frames, channels]`.
      name: argument name used in error messages.
      channels: required size of the last axis, if any.
      ranks: accepted input ranks.
    """
    x = core.tf_float32(x, name)
    core.ensure_rank(x, ranks, name)
    if x.shape.rank == 2:
        x = x[:, :, tf.newaxis]
    if channels is not None and x.shape[-1] is not None and x.shape[-1] != channels:
        raise ValueError(
            f"`{name}` must have {channels} channel(s) on its last axis "
            f"(`[batch, n_frames, {channels}]`), got shape {x.shape.as_list()}.")
    return x


def check_same_size(tensors: Mapping[str, tf.Tensor], axis: int, what: str) -> None:
    """ValueError naming the arguments when their static sizes along `axis` differ (1 broadcasts
    for the batch axis only)."""
    sizes = {name: t.shape[axis] for name, t in tensors.items() if t.shape[axis] is not None}
    distinct = set(sizes.values())
    if axis == 0:
        distinct.discard(1)
    if len(distinct) > 1:
        detail = ", ".join(f"`{name}` {size}" for name, size in sizes.items())
        raise ValueError(f"Mismatched {what}: {detail}.")


def check_divides(n_samples: int, n_frames, name: str, owner: str) -> None:
    """ValueError unless n_samples is a multiple of the static number of frames of `name`."""
    if n_frames is not None and (n_frames < 1 or n_samples % n_frames != 0):
        raise ValueError(
            f"{owner}: n_samples ({n_samples}) must be an integer multiple of the number of "
            f"frames of `{name}` ({n_frames}).")


# ----------------------------------------------------------------------- ProcessorGroup
def _flatten_inputs(inputs: Mapping[str, Any], prefix: str = "") -> TensorDict:
    """{'a': {'b': x}} -> {'a/b': x}; flat keys pass through."""
    flat = {}
    for key, value in inputs.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_inputs(value, prefix=f"{path}/"))
        else:
            flat[path] = value
    return flat


def _named_node(node, named: Mapping[str, Any], index: int):
    """A node whose processor is given by keyword name, with that processor put in."""
    if isinstance(node, (tuple, list)) and node and isinstance(node[0], str):
        if node[0] not in named:
            raise ValueError(f"DAG node {index} names processor {node[0]!r}, which is not among the keyword "
                             f"processors {sorted(named)}.")
        return (named[node[0]], *node[1:])
    return node


def _parse_node(node, index: int) -> Tuple[Processor, List[str]]:
    """(processor, keys), (processor, keys, output_keys) or {'processor':..., 'inputs':...}."""
    if isinstance(node, Mapping):
        if "processor" not in node or "inputs" not in node:
            raise ValueError(f"DAG node {index} as a dict needs keys 'processor' and 'inputs', got "
                             f"{sorted(node)}.")
        processor, keys = node["processor"], node["inputs"]
    elif isinstance(node, (tuple, list)) and len(node) in (2, 3):
        processor, keys = node[0], node[1]  # A third element (output keys) is not needed.
    else:
        raise ValueError(f"DAG node {index} must be (processor, [input_keys]), got {node!r}.")
    if not (hasattr(processor, "get_controls") and hasattr(processor, "get_signal")):
        raise TypeError(f"DAG node {index}: {processor!r} is not a Processor.")
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if not all(isinstance(key, str) for key in keys):
        raise TypeError(f"DAG node {index} ({processor.name}): input keys must be strings, got {keys!r}.")
    return processor, keys


@register("processors")
class ProcessorGroup(keras.layers.Layer):
    """Runs processors in order, routing tensors between them by key.

    Each node is `(processor, [input_keys])` (a third element is ignored, and the dict form
    `{'processor': p, 'inputs': [...]}` is accepted); `processor` may also be the name of a
    processor passed as a keyword argument (as in the original). Input keys name entries of the input dict
    (nested dicts are flattened with '/', and 'inputs/<key>' also works) or outputs of earlier
    nodes: `'<processor.name>/signal'` and `'<processor.name>/controls/<control>'`. The last
    node's signal is the group's output, also stored as `'out/signal'`.
    """

    def __init__(self, dag, name: str = "processor_group", **kwarg_processors):
        named = {k: v for k, v in kwarg_processors.items() if isinstance(v, keras.layers.Layer)}
        kwargs = {k: v for k, v in kwarg_processors.items() if k not in named}
        super().__init__(name=name, **kwargs)
        dag = [_named_node(node, named, i) for i, node in enumerate(dag)]
        nodes = [_parse_node(node, i) for i, node in enumerate(dag)]
        if not nodes:
            raise ValueError("ProcessorGroup `dag` needs at least one (processor, [input_keys]) node.")
        names = [processor.name for processor, _ in nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"ProcessorGroup `dag` has processors sharing a name: {duplicates}; "
                             "give each processor a unique name.")
        if OUTPUT_KEY in names:
            raise ValueError(f"ProcessorGroup: '{OUTPUT_KEY}' is reserved for the group output; "
                             "rename that processor.")
        # Each processor is an attribute (named after it where possible), so keras collects its
        # weights and tf.train.Checkpoint saves them under '<group>/<processor name>/...'.
        self._processor_attributes = []
        for index, (processor, _) in enumerate(nodes):
            attribute = processor.name
            if not attribute.isidentifier() or hasattr(self, attribute):
                attribute = f"processor_{index}"
            setattr(self, attribute, processor)
            self._processor_attributes.append(attribute)
        self._input_keys = [tuple(keys) for _, keys in nodes]
        self._check_routing_to_earlier_nodes()

    @property
    def processors(self) -> List[Processor]:
        """The processors in dag order."""
        return [getattr(self, attribute) for attribute in self._processor_attributes]

    @property
    def dag(self) -> List[Tuple[Processor, List[str]]]:
        """The nodes as `(processor, [input_keys])`."""
        return [(p, list(keys)) for p, keys in zip(self.processors, self._input_keys)]

    def _check_routing_to_earlier_nodes(self) -> None:
        """At construction: a key that names a node output must name an EARLIER node."""
        seen = set()
        all_names = {p.name for p in self.processors}
        for processor, keys in zip(self.processors, self._input_keys):
            for key in keys:
                head = key.split("/", 1)[0]
                if "/" in key and head in all_names and head not in seen:
                    raise ValueError(
                        f"ProcessorGroup: input key '{key}' of processor '{processor.name}' names "
                        f"the output of '{head}', which does not run before it (the dag must be "
                        "topologically sorted).")
            seen.add(processor.name)

    def build(self, input_shape=None):
        del input_shape

    def __call__(self, dag_inputs: Mapping[str, Any], return_outputs_dict: bool = False, **kwargs):
        """Runs the dag.

        Args:
          dag_inputs: dict of input tensors (e.g. 'amps', 'f0_hz', ...).
          return_outputs_dict: return every input and node output (flat '/' keys) plus
            'out/signal', instead of only the final signal.
          **kwargs: keras' `training` / `mask` are accepted and ignored.
        """
        for key in _KERAS_CALL_KWARGS:
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"ProcessorGroup got unexpected arguments {sorted(kwargs)}.")
        if not isinstance(dag_inputs, Mapping):
            raise TypeError(f"ProcessorGroup `dag_inputs` must be a dict of tensors, got "
                            f"{type(dag_inputs).__name__}.")
        if not self.built:
            self.build(None)
            self.built = True
        outputs = _flatten_inputs(dag_inputs)
        self._check_keys_available(set(outputs))
        for processor, keys in zip(self.processors, self._input_keys):
            inputs = [outputs[_resolve(key, outputs)] for key in keys]
            processor.ensure_built(inputs)
            controls = processor.get_controls(*inputs)
            signal = processor.get_signal(**controls)
            for control_name, value in controls.items():
                outputs[f"{processor.name}/controls/{control_name}"] = value
            outputs[f"{processor.name}/signal"] = signal
        outputs[f"{OUTPUT_KEY}/signal"] = signal
        return outputs if return_outputs_dict else signal

    def call(self, dag_inputs, **kwargs):
        return self.__call__(dag_inputs, **kwargs)

    def get_controls(self, dag_inputs: Mapping[str, Any]) -> TensorDict:
        """Runs the dag; returns every output nested as the original DDSP's DAG does:
        `{'inputs': dag_inputs, **dag_inputs, '<processor name>': {'signal': ...,
        'controls': {...}}, ..., 'out': the last processor's dict}`. (`return_outputs_dict=True`
        gives the same tensors flat: '<processor name>/signal', ...)."""
        return self.nested_outputs(self(dag_inputs, return_outputs_dict=True), dag_inputs)

    def nested_outputs(self, flat_outputs: Mapping[str, Any], dag_inputs: Mapping[str, Any] | None = None) -> dict:
        """The original DDSP's nested layout of one run of this group, built from the flat dict
        that `return_outputs_dict=True` returned for `dag_inputs` (the same tensors, no
        copies): `{'inputs': dict(dag_inputs), **dag_inputs, '<processor name>': {'signal':
        [batch, n_samples], 'controls': {<control>: tensor}}, ..., 'out': the last
        processor's dict}`. Every dict is a plain `dict` (Keras' `tree` treats a dict
        subclass as a leaf). Without `dag_inputs`, the inputs are the flat dict's entries
        that no processor wrote (nested inputs then keep their flattened '/' keys)."""
        if dag_inputs is None:
            written = tuple(f"{name}/" for name in [p.name for p in self.processors] + [OUTPUT_KEY])
            dag_inputs = {k: v for k, v in flat_outputs.items() if not k.startswith(written)}
        nested = {"inputs": dict(dag_inputs), **dag_inputs}
        for processor in self.processors:
            signal_key, prefix = f"{processor.name}/signal", f"{processor.name}/controls/"
            if signal_key not in flat_outputs:
                raise ValueError(f"ProcessorGroup.nested_outputs: `flat_outputs` has no '{signal_key}'; "
                                 "pass what `return_outputs_dict=True` returned.")
            nested[processor.name] = {
                "signal": flat_outputs[signal_key],
                "controls": {k[len(prefix):]: v for k, v in flat_outputs.items() if k.startswith(prefix)}}
        nested[OUTPUT_KEY] = nested[self.processors[-1].name]
        return nested

    def get_signal(self, dag_outputs: TensorDict) -> tf.Tensor:
        """The output signal from a dict returned by get_controls (or by
        `return_outputs_dict=True`)."""
        out = dag_outputs.get(OUTPUT_KEY)
        if isinstance(out, Mapping):
            return out["signal"]
        return dag_outputs[f"{OUTPUT_KEY}/signal"]

    def _check_keys_available(self, available: set) -> None:
        """ValueError naming the key, the processor and the available keys, before running."""
        available = set(available)
        open_prefixes = []  # processors whose control names are not known in advance
        for processor, keys in zip(self.processors, self._input_keys):
            for key in keys:
                known = _resolve(key, available) in available
                if not known and not any(key.startswith(prefix) for prefix in open_prefixes):
                    raise ValueError(
                        f"ProcessorGroup: input key '{key}' of processor '{processor.name}' is not "
                        f"available. Available keys at that node: {sorted(available)}.")
            available.add(f"{processor.name}/signal")
            names = _control_names(processor)
            if names is None:
                open_prefixes.append(f"{processor.name}/controls/")
            else:
                available.update(f"{processor.name}/controls/{name}" for name in names)


def _resolve(key: str, available) -> str:
    """'inputs/<key>' also names the dag input '<key>' (as in DDSP's DAGLayer)."""
    if key not in available and key.startswith("inputs/") and key[len("inputs/"):] in available:
        return key[len("inputs/"):]
    return key


def _control_names(processor) -> List[str] | None:
    """Names of a processor's controls, from its get_signal signature; None if open-ended."""
    parameters = list(inspect.signature(processor.get_signal).parameters.values())
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# ---------------------------------------------------------------------- routing processors
@register("processors")
class Add(Processor):
    """Sum of two signals of the same shape."""

    def __init__(self, name: str = "add", **kwargs):
        super().__init__(name=name, **kwargs)

    def get_controls(self, signal_one, signal_two) -> TensorDict:
        signal_one = core.tf_float32(signal_one, "signal_one")
        signal_two = core.tf_float32(signal_two, "signal_two")
        _check_same_shape(signal_one, signal_two, "Add")
        return {"signal_one": signal_one, "signal_two": signal_two}

    def get_signal(self, signal_one, signal_two) -> tf.Tensor:
        return signal_one + signal_two


def _check_same_shape(one: tf.Tensor, two: tf.Tensor, owner: str) -> None:
    if (one.shape.rank is not None and two.shape.rank is not None
            and not one.shape.is_compatible_with(two.shape)):
        raise ValueError(f"{owner}: `signal_one` {one.shape.as_list()} and `signal_two` "
                         f"{two.shape.as_list()} must have the same shape.")


def _safe_sqrt(x: tf.Tensor) -> tf.Tensor:
    """sqrt(x) for x >= 0 with a zero (not infinite) gradient where x == 0."""
    positive = x > 0.0
    return tf.where(positive, tf.sqrt(tf.where(positive, x, 1.0)), 0.0)


@register("processors")
class Mix(Processor):
    """Mixes two signals by a frame-rate control, with the original's gain curves.

    mix_level m = sigmoid(nn_out_mix_level) in [0, 1], linearly resampled to audio rate;
    signal = sqrt(|m|) * signal_one + (1 - sqrt(|m - 1|)) * signal_two. (As in the original,
    both gains rise with m: 0 and 0 at m = 0, 1 and 1 at m = 1.) With `constant_power=True`
    (not in the original) it is a constant-power crossfade: sqrt(m) * signal_one +
    sqrt(1 - m) * signal_two.
    """

    def __init__(self, name: str = "mix", *, constant_power: bool = False, **kwargs):
        super().__init__(name=name, **kwargs)
        self.constant_power = bool(constant_power)

    def get_controls(self, signal_one, signal_two, nn_out_mix_level) -> TensorDict:
        """Args: signals `[batch, n_samples]` or `[batch, n_samples, 1]`; nn_out_mix_level
        `[batch, n_frames(, 1)]` logits.

        Returns controls with mix_level `[batch, n_samples, 1]` in [0, 1].
        """
        signal_one = core.tf_float32(signal_one, "signal_one")
        signal_two = core.tf_float32(signal_two, "signal_two")
        n_samples = signal_one.shape[1]
        if n_samples is None or signal_two.shape[1] != n_samples:
            raise ValueError(f"Mix: `signal_one` and `signal_two` must have the same static length, got "
                             f"{signal_one.shape.as_list()} and {signal_two.shape.as_list()}.")
        _check_same_shape(signal_one, signal_two, "Mix")
        mix_logits = check_frames(nn_out_mix_level, "nn_out_mix_level", channels=1)
        mix_level = core.resample(tf.nn.sigmoid(mix_logits), n_samples)
        return {"signal_one": signal_one, "signal_two": signal_two, "mix_level": mix_level}

    def get_signal(self, signal_one, signal_two, mix_level) -> tf.Tensor:
        """The mixed signal, with the rank of the inputs."""
        signal_one = core.tf_float32(signal_one, "signal_one")
        signal_two = core.tf_float32(signal_two, "signal_two")
        mix_level = check_frames(mix_level, "mix_level", channels=1)
        if signal_one.shape.rank == 2:
            mix_level = mix_level[..., 0]
        gain_one = _safe_sqrt(tf.abs(mix_level))
        if self.constant_power:
            gain_two = _safe_sqrt(tf.abs(1.0 - mix_level))
        else:
            gain_two = 1.0 - _safe_sqrt(tf.abs(mix_level - 1.0))
        return gain_one * signal_one + gain_two * signal_two


@register("processors")
class Crop(Processor):
    """Removes the audio that synthesis of padding frames added.

    The original's rule: 2 * (frame_size // 2) samples are removed from the front, from the
    back, or frame_size // 2 from each end ('center').

    Args:
      frame_size: frame length, samples.
      crop_location: 'front', 'center' or 'back'.
      name: processor name.
      frame_rate: keyword only (not in the original): crop frame_size - hop samples instead,
        hop = sample_rate / frame_rate (the samples that frames of frame_size every hop
        add beyond the hop grid).
      sample_rate: keyword only, Hz, with frame_rate.
    """

    def __init__(self, frame_size: int, crop_location: str = "back", name: str = "crop", *,
                 frame_rate: int | None = None, sample_rate: int = 16000, **kwargs):
        super().__init__(name=name, **kwargs)
        if crop_location not in ("front", "center", "back"):
            raise ValueError(f"Crop `crop_location` must be 'front', 'center' or 'back', got "
                             f"{crop_location!r}.")
        self.frame_size = int(frame_size)
        self.crop_location = crop_location
        self.frame_rate = frame_rate
        self.sample_rate = int(sample_rate)
        if frame_rate is None:
            self.crop_size = 2 * (self.frame_size // 2)
        else:
            hop, remainder = divmod(int(sample_rate), int(frame_rate))
            if remainder:
                raise ValueError(f"Crop: `sample_rate` ({sample_rate}) must be a multiple of `frame_rate` "
                                 f"({frame_rate}).")
            if frame_size < hop:
                raise ValueError(f"Crop: `frame_size` ({frame_size}) must be at least the hop ({hop}).")
            self.crop_size = self.frame_size - hop

    def get_controls(self, audio) -> TensorDict:
        return {"audio": check_audio(audio)}

    def get_signal(self, audio) -> tf.Tensor:
        audio = check_audio(audio)
        n_samples = audio.shape[1]
        if n_samples is not None and n_samples <= self.crop_size:
            raise ValueError(f"Crop: `audio` has {n_samples} samples, not more than the "
                             f"{self.crop_size} to crop.")
        if self.crop_size == 0:
            return audio
        if self.crop_location == "front":
            return audio[:, self.crop_size:]
        if self.crop_location == "back":
            return audio[:, :-self.crop_size]
        front = self.crop_size // 2
        back = self.crop_size - front
        return audio[:, front:tf.shape(audio)[1] - back]
