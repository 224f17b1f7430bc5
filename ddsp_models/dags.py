"""DAGLayer: modules wired into a directed acyclic graph by the keys of a nested dict.

The original DDSP 3.7.0 `ddsp.dags`, with its names and behaviour. A node is
`[module, [input keys], [output keys]]`: `module` a layer (or the name of one passed as a
keyword argument), input keys nested paths 'a/b' into the outputs so far (the DAG's inputs
are there both as 'inputs/<key>' and '<key>'), output keys naming the module's return
values when it does not return a dict. Each node's outputs are stored under its module
name; the last node's also under 'out'. (ddsp_models.processors.ProcessorGroup runs
processor DAGs with flat 'a/b' output keys instead.)
"""
import logging
from typing import Dict, Sequence, Tuple, TypeVar

import keras
import tensorflow as tf

from ddsp_models import core
from ddsp_models.gin_utils import register

TensorDict = Dict[str, tf.Tensor]
KeyOrModule = TypeVar("KeyOrModule", str, tf.Module)
Node = Tuple[KeyOrModule, Sequence[str], Sequence[str]]
DAG = Sequence[Node]

_KERAS_KWARGS = ("training", "mask", "name")


def filter_by_value(d: dict, cond) -> dict:
    """The items of d whose value satisfies cond."""
    return {k: v for k, v in d.items() if cond(v)}


def is_module(v) -> bool:
    """Whether v is a module a DAG can hold (a tf.Module or a Keras layer)."""
    return isinstance(v, (tf.Module, keras.layers.Layer))


def is_loss(v) -> bool:
    """Duck typing: a loss has get_losses_dict."""
    return hasattr(v, "get_losses_dict")


def is_processor(v) -> bool:
    """Duck typing: a processor has get_signal and get_controls."""
    return hasattr(v, "get_signal") and hasattr(v, "get_controls")


def split_keras_kwargs(kwargs: dict):
    """(Keras kwargs 'training', 'mask', 'name' that are not None, the other kwargs); pops
    the Keras ones from `kwargs`."""
    keras_kwargs = {}
    for key in _KERAS_KWARGS:
        if kwargs.get(key) is not None:
            keras_kwargs[key] = kwargs.pop(key)
    return keras_kwargs, kwargs


@register("dags")
class DAGLayer(keras.layers.Layer):
    """Runs modules in the order of `dag`, routing tensors between them by nested keys.

    Args:
      dag: list of nodes `[module or name, [input keys], [output keys]]` (output keys
        optional), topologically sorted.
      **kwarg_modules: modules referenced by name in `dag` (each becomes an attribute of the
        layer); Keras kwargs such as `name` are passed to the layer.

    Call: `layer(inputs_dict)` -> nested dict {'inputs': inputs, **inputs, <module name>:
    outputs, ..., 'out': last outputs}. Processors give {'signal', 'controls'}, losses their
    losses dict.
    """

    def __init__(self, dag: DAG, **kwarg_modules):
        keras_kwargs, kwarg_modules = split_keras_kwargs(kwarg_modules)
        super().__init__(**keras_kwargs)
        modules = filter_by_value(kwarg_modules, is_module)
        dag, dag_modules = self.format_dag(dag)
        self.dag = dag
        modules.update(dag_modules)
        for index, node in enumerate(dag):
            if node[0] not in modules:
                raise ValueError(f"DAGLayer: node {index} names module {node[0]!r}, which is neither in the "
                                 f"dag nor among the keyword modules {sorted(modules)}.")
        self.module_names = list(modules.keys())
        for module_name, module in modules.items():
            setattr(self, module_name, module)

    @property
    def modules(self) -> list:
        """The modules, in the order of module_names."""
        return [getattr(self, name) for name in self.module_names]

    @staticmethod
    def format_dag(dag: DAG):
        """(dag with each module replaced by its name, {name: module})."""
        modules = {}
        formatted = []
        for index, node in enumerate(dag):
            node = list(node)
            if len(node) not in (2, 3):
                raise ValueError(f"DAGLayer: node {index} must be [module, [input keys], [output keys]], "
                                 f"got {node!r}.")
            if is_module(node[0]):
                modules[node[0].name] = node[0]
                node[0] = node[0].name
            formatted.append(node)
        return formatted, modules

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs: TensorDict, **kwargs) -> TensorDict:
        """Runs the DAG on a dict of input tensors (see the class docstring)."""
        return self.run_dag(inputs, **kwargs)

    def run_dag(self, inputs: TensorDict, verbose: bool = False, **kwargs) -> TensorDict:
        """Runs every node; kwargs (e.g. training) go to every module. verbose logs shapes."""
        outputs = {"inputs": inputs}
        outputs.update(inputs)
        module_outputs = None
        for node in self.dag:
            module_key, input_keys = node[0], node[1]
            output_keys = node[2] if len(node) > 2 else None
            module = getattr(self, module_key)
            module_inputs = [core.nested_lookup(key, outputs) for key in input_keys]
            if verbose:
                logging.info("Module %s, keys %s, input shapes %s", module_key, input_keys,
                             [getattr(x, "shape", None) for x in module_inputs])
            if is_processor(module):
                module_outputs = module(*module_inputs, return_outputs_dict=True, **kwargs)
            elif is_loss(module):
                module_outputs = module.get_losses_dict(*module_inputs, **kwargs)
            else:
                module_outputs = module(*module_inputs, **kwargs)
            if not isinstance(module_outputs, dict):
                module_outputs = core.to_dict(module_outputs, output_keys)
            outputs[module_key] = module_outputs
        outputs["out"] = module_outputs
        return outputs
