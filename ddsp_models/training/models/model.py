"""Model base class: named losses of a call, and restore (delegating to `checkpoints`).

A model is called on a dict of features (``audio`` ``[batch, n_samples]``, ``f0_hz`` and
``loudness_db`` ``[batch, n_frames]``, ...) and returns a dict of outputs; with
``return_losses=True`` it also returns ``{loss_name: scalar, ..., 'total_loss': scalar}``.
"""
import logging

import keras
import tensorflow as tf

from ddsp_models.gin_utils import register
from ddsp_models.training import checkpoints

logger = logging.getLogger(__name__)


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


def add_original_layout(outputs: dict, nested: dict) -> dict:
    """Adds to `outputs` every key of `nested` it lacks (never replacing one) and returns it.

    The models keep this package's flat keys ('harmonic/signal',
    'harmonic/controls/amplitudes', 'out/signal') and add, with this, the original DDSP's
    nested layout of the same tensors (`outputs['harmonic']['signal']`,
    `outputs['harmonic']['controls']['amplitudes']`, `outputs['out']['signal']`,
    `outputs['inputs']`; see `ProcessorGroup.nested_outputs`). Both are plain dicts, so the
    outputs pass through Keras layers, `tf.function` and `tf.nest` as any nested structure.
    """
    for key, value in nested.items():
        outputs.setdefault(key, value)
    return outputs


@register("models")
class Model(keras.Model):
    """Base model: collects named losses during a call; restores checkpoints with checks.

    Subclasses implement ``call(features, training=False)`` returning a dict of outputs and
    add losses with `_update_losses_dict` (only while ``self.compute_losses`` is True).
    """

    accepts_zipped_batches = False  # a list/tuple of feature dicts (`data.ZippedProvider`)

    def __init__(self, **kwargs):
        # Features enter as they are (float32 audio, f0 in Hz): under mixed precision only the
        # network layers cast their own inputs (training/precision.py).
        kwargs.setdefault("autocast", False)
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
          features: dict of batched feature tensors (``audio`` ``[batch, n_samples]``, ...);
            for a model with ``accepts_zipped_batches``, also a list/tuple of such dicts.
          training: training mode (passed to sub-layers).
          return_losses: also compute and return the losses dict (with ``total_loss``).

        Returns:
          outputs dict, or ``(outputs, losses)`` when ``return_losses``.
        """
        zipped = (self.accepts_zipped_batches and isinstance(features, (list, tuple))
                  and all(isinstance(part, dict) for part in features))
        if not isinstance(features, dict) and not zipped:
            raise TypeError(f"{type(self).__name__}: features must be a dict of tensors"
                            + (" or a list/tuple of them (a zipped batch)" if self.accepts_zipped_batches else "")
                            + f", got {type(features).__name__}")
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

    def _update_losses_dict(self, loss_objs, *args, prefix: str = "", **kwargs):
        """The one way a model adds named losses: runs each loss object on the arguments
        and adds its ``get_losses_dict(*args, **kwargs)`` (or, for a plain callable, its
        scalar under its ``name``) to this call's losses, each name prefixed by `prefix`.

        Args:
          loss_objs: a loss object, a list of them, or None (entries that are None are
            skipped, e.g. a loss whose weight is 0).
          prefix: put before every name (e.g. ``'harm_'``, ``'real/sin_'``).

        Raises:
          ValueError: a name was already added in this call.
        """
        if loss_objs is None:
            return
        if not isinstance(loss_objs, (list, tuple)):
            loss_objs = [loss_objs]
        for loss_obj in loss_objs:
            if loss_obj is None:
                continue
            if hasattr(loss_obj, "get_losses_dict"):
                new_losses = loss_obj.get_losses_dict(*args, **kwargs)
            else:
                new_losses = {getattr(loss_obj, "name", type(loss_obj).__name__):
                              loss_obj(*args, **kwargs)}
            new_losses = {f"{prefix}{name}": value for name, value in new_losses.items()}
            duplicate = set(new_losses) & set(self._losses_dict)
            if duplicate:
                raise ValueError(f"{type(self).__name__}: losses {sorted(duplicate)} are "
                                 "computed twice; give the loss objects distinct names")
            self._losses_dict.update(new_losses)

    def get_audio_from_outputs(self, outputs):
        """The synthesized audio ``[batch, n_samples]`` from a call's outputs."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checkpoints
    def restore(self, checkpoint_path, verbose: bool = True, restore_keys=None, *,
                verify: bool = True, build_inputs=None) -> str:
        """Restores weights from a checkpoint (the original DDSP signature).

        Without `restore_keys`: `checkpoints.resume` (every weight); with them:
        `checkpoints.warm_start` (only those sub-modules, ``'target=source'`` maps a
        differently named one, e.g. ``'synthcoder=decoder'``). Restored values are
        verified unless `verify` is False.

        Args:
          checkpoint_path: a checkpoint prefix (``.../ckpt-300``) or a folder (its newest).
          verbose: log what was restored.
          restore_keys: None (everything) or sub-module names.
          verify: check every restored variable equals the checkpoint value.
          build_inputs: a feature batch to build a never-called model with.

        Returns:
          The checkpoint prefix restored from.
        """
        if restore_keys is None:
            path = checkpoints.resume(self, checkpoint_path, verify=verify,
                                      build_inputs=build_inputs)
        else:
            path = checkpoints.warm_start(self, checkpoint_path, restore_keys, verify=verify,
                                          build_inputs=build_inputs)
        if verbose:
            logger.info("%s restored from %s (%s)", type(self).__name__, path,
                        "everything" if restore_keys is None else list(restore_keys))
        return path
