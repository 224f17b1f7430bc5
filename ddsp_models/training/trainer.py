"""Trainer: optimizer and the distributed train step (checkpoints: `checkpoints`).

The train step runs under a `tf.distribute` strategy. Each replica computes its losses
(means over its share of the global batch) and the gradient of ``total_loss /
num_replicas``; the gradients are summed across replicas, clipped by global norm and
applied once, so the update equals a single-device step on the same global batch.
"""
import json
import logging
import math
import os

import keras
import numpy as np
import tensorflow as tf

from ddsp_models import seeding
from ddsp_models.checks import non_negative_int, positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training import checkpoints

logger = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """A training step whose loss or gradient norm is NaN or infinite (nothing was updated).

    Attributes: ``step`` (the step it would have been), ``terms`` (the non-finite loss
    names), ``grad_norm`` (global norm of the gradients), ``clips`` (the batch's clip ids,
    empty when the batch has no ``id`` feature).
    """

    def __init__(self, step: int, terms: list, grad_norm: float, clips: list):
        self.step, self.terms, self.grad_norm, self.clips = step, terms, grad_norm, clips
        self.summary = (f"step {step}: non-finite loss terms {terms or 'none'}, gradient "
                        f"global norm {grad_norm}; batch clips "
                        f"{clips if clips else '(unknown: the batch has no id feature)'}")
        super().__init__(
            f"training stopped at {self.summary}. No weight was updated by this batch, so the "
            "newest checkpoint is the last good state. Check those clips for NaN/inf or "
            "extreme values (re-run the data stages), lower the learning rate, or set "
            "Trainer.max_nonfinite_steps (params: train.max_nonfinite_steps) to skip up to "
            "that many bad batches.")


STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(tpu: str = "", cluster_config: str = "", devices=None,
                 kind: str = "default"):
    """A `tf.distribute` strategy for the available hardware.

    Args:
      tpu: address of a TPU ('' for none).
      cluster_config: JSON ``TF_CONFIG`` for multi-worker training ('' for none); when set,
        a `MultiWorkerMirroredStrategy` is returned.
      devices: explicit devices for a `MirroredStrategy` (e.g. two logical CPUs).
      kind: ``'default'`` (the choices above, else every local GPU when there are
        several, else one device), ``'mirrored'`` (`MirroredStrategy` over the local GPUs,
        or the CPU) or ``'multi_worker'`` (`MultiWorkerMirroredStrategy` over the hosts of
        the ``TF_CONFIG`` environment variable; create it before any other TensorFlow
        work in the process).

    Returns:
      `TPUStrategy`, `MultiWorkerMirroredStrategy`, `MirroredStrategy` (several local
      devices), or the default strategy (one device).
    """
    if kind not in STRATEGIES:
        raise ValueError(f"strategy {kind!r} unknown; expected one of {list(STRATEGIES)}")
    if tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if cluster_config:
        os.environ["TF_CONFIG"] = cluster_config
        kind = "multi_worker"
    if kind == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy 'multi_worker' needs the TF_CONFIG environment variable on every "
                "host, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", "
                "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
                "(index 1 on the second host); see README 'Training on several machines'")
        try:
            config = json.loads(os.environ["TF_CONFIG"])
            workers = config["cluster"]["worker"]
            config["task"]["index"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"TF_CONFIG is not a valid cluster config ({error!r}): expected "
                             "{'cluster': {'worker': [...]}, 'task': {'type': 'worker', "
                             "'index': i}}") from None
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("MultiWorkerMirroredStrategy: %d workers %s, this is %s %s, %d replicas",
                    len(workers), workers, config["task"].get("type"), config["task"]["index"],
                    strategy.num_replicas_in_sync)
        return strategy
    if devices:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """True unless `strategy` is multi-worker and this process is not its chief (the
    ``chief`` task, or worker 0 when the cluster has no chief)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and \
        "chief" not in resolver.cluster_spec().as_dict()


def worker_save_dir(save_dir, strategy) -> str:
    """Where this process writes its checkpoints and logs: `save_dir` for the chief (and
    single-process training); ``<save_dir>/worker-<i>`` for the other workers of a
    multi-worker run (each keeps its own complete copy, so hosts need no shared
    filesystem and each resumes from its own copy)."""
    save_dir = os.fspath(save_dir)
    if is_chief(strategy):
        return save_dir
    return os.path.join(save_dir, f"worker-{strategy.cluster_resolver.task_id}")


@register("training")
class Trainer:
    """Trains a model: Adam (or SGD) with exponential learning-rate decay and global-norm
    clipping.

    Args:
      model: a `ddsp_models.training.models.Model` (built inside the strategy's scope by `build`).
      strategy: a `tf.distribute.Strategy` (None: the default one-device strategy).
      checkpoints_to_keep: checkpoints `save` keeps in a folder.
      learning_rate: initial learning rate.
      lr_decay_steps, lr_decay_rate: the rate is multiplied by ``lr_decay_rate`` every
        ``lr_decay_steps`` steps (continuously).
      grad_clip_norm: clip gradients to this global norm (None or <= 0: no clipping).
      restore_keys: sub-modules `restore` loads by default (None: everything, resuming the
        optimizer and step); see `Model.restore` for ``'target=source'`` keys.
      jit_compile: XLA-compile the train step (measured slower on CPU; off by default).
      seed: makes the model's random draws (filtered noise, noise reverbs, latent samples)
        functions of ``[seed, step]``, so a resumed run draws what an uninterrupted one
        would (None: fresh random values every step).
      optimizer: ``'adam'`` (default) or ``'sgd'`` (plain gradient descent).
      max_nonfinite_steps: batches whose loss or gradient norm is NaN/inf that are skipped
        with a warning (no update) before training stops with `NonFiniteError`; 0 stops at
        the first one.
    """

    def __init__(self, model, strategy=None, checkpoints_to_keep: int = 100,
                 learning_rate: float = 0.001, lr_decay_steps: int = 10000,
                 lr_decay_rate: float = 0.98, grad_clip_norm: float = 3.0,
                 restore_keys=None, jit_compile: bool = False, seed: int | None = None,
                 max_nonfinite_steps: int = 0, optimizer: str = "adam"):
        if model is None:
            raise ValueError("Trainer: model is required")
        positive_int("checkpoints_to_keep", checkpoints_to_keep)
        self.model = model
        self.strategy = strategy or tf.distribute.get_strategy()
        self.checkpoints_to_keep = int(checkpoints_to_keep)
        self.grad_clip_norm = grad_clip_norm
        self.restore_keys = restore_keys
        self.jit_compile = bool(jit_compile)
        non_negative_int("Trainer.max_nonfinite_steps", max_nonfinite_steps)
        self.seed = None if seed is None else int(seed)
        self.max_nonfinite_steps = int(max_nonfinite_steps)
        self.nonfinite_steps = 0  # batches skipped so far for a non-finite loss / gradient
        self.last_step_skipped = False
        self.variables_without_gradient = []
        self._reported_no_gradient = False
        with self.strategy.scope():
            schedule = keras.optimizers.schedules.ExponentialDecay(
                initial_learning_rate=learning_rate, decay_steps=lr_decay_steps,
                decay_rate=lr_decay_rate)
            if optimizer == "adam":
                self.optimizer = keras.optimizers.Adam(learning_rate=schedule)
            elif optimizer == "sgd":  # the update is linear in the gradient
                self.optimizer = keras.optimizers.SGD(learning_rate=schedule)
            else:
                raise ValueError(f"Trainer.optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        # Python-side work per step is one dict check; all else runs in these graphs.
        self._step_on_batch = tf.function(self._compute_on_batch_fn, reduce_retracing=True)
        self._step_on_iterator = tf.function(self._compute_on_iterator_fn,
                                             reduce_retracing=True)
        self._apply_step = tf.function(self._apply_step_fn, reduce_retracing=True)
        self._replica_step = (tf.function(self._replica_step_fn, jit_compile=True)
                              if self.jit_compile else self._replica_step_fn)

    # ------------------------------------------------------------------ basics
    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def step(self):
        """The global step: the optimizer's iteration counter (a variable)."""
        return self.optimizer.iterations

    def get_step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def learning_rate(self) -> float:
        """Current learning rate."""
        return float(self.optimizer.learning_rate.numpy()
                     if hasattr(self.optimizer.learning_rate, "numpy")
                     else self.optimizer.learning_rate)

    def distribute_dataset(self, dataset: tf.data.Dataset):
        """Splits each global batch of `dataset` across the strategy's replicas.

        Multi-worker: every worker reads the same global batches (a seeded order) and
        `train_step` gives each replica its slice, so the update equals one process's on
        the same global batch (no tf.data auto-sharding, whose split depends on files)."""
        if self.num_replicas == 1 or is_multi_worker(self.strategy):
            return dataset
        return self.strategy.experimental_distribute_dataset(dataset)

    def build(self, batch):
        """Creates the model's and optimizer's variables inside the strategy's scope.

        Args:
          batch: a feature dict, or a zipped batch (a tuple of them, `data.ZippedProvider`);
            only its first example (of each part) is run through the model.
        """
        if not is_batch(batch):
            raise TypeError(f"Trainer.build: batch must be a dict of features (or a tuple of them, "
                            f"a zipped batch), got {type(batch).__name__}")
        one = tf.nest.map_structure(lambda v: v[:1], batch)
        with self.strategy.scope():
            if not self.model.built:
                tf.function(lambda features: self.model(features, training=False))(one)
            if self.num_replicas > 1:
                local = [v.path for v in self.model.variables
                         if not isinstance(getattr(v, "value", v), tf.distribute.DistributedValues)]
                if local:
                    raise ValueError(f"Trainer.build: variables {local[:3]} were not created by "
                                     "the strategy: construct the model inside "
                                     "`with strategy.scope():`")
            if not self.optimizer.built:
                self.optimizer.build(self.model.trainable_variables)
        n_params = sum(int(tf.size(v)) for v in self.model.trainable_variables)
        logger.info("built %s: %d trainable parameters", type(self.model).__name__, n_params)
        return n_params

    # ------------------------------------------------------------------ training
    def _replica_step_fn(self, batch):
        """One replica: losses and gradients (of total_loss / num_replicas). Random draws
        inside the model (filtered noise, ...) are functions of ``[seed, step, replica]``
        when the trainer has a seed (`ddsp_models.seeding`)."""
        with tf.GradientTape() as tape:
            if self.seed is None:
                _, losses = self.model(batch, training=True, return_losses=True)
            else:
                replica = tf.distribute.get_replica_context().replica_id_in_sync_group
                noise_seed = tf.stack([tf.constant(self.seed, tf.int64),
                                       tf.cast(self.step, tf.int64) * 1024
                                       + tf.cast(replica, tf.int64)])
                with seeding.seed_scope(noise_seed):
                    _, losses = self.model(batch, training=True, return_losses=True)
            scaled_loss = losses["total_loss"] / self.num_replicas
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        return losses, grads

    def _report_no_gradient(self, grads, variables):
        """Names the trainable variables that get no gradient (once per trainer)."""
        missing = [v.path for g, v in zip(grads, variables) if g is None]
        if len(missing) == len(variables):
            raise ValueError("no gradients: the loss does not depend on any trainable variable")
        if missing and not self._reported_no_gradient:
            logger.warning("%d trainable variable(s) get no gradient from the loss and stay "
                           "as they are: %s", len(missing), missing)
        self._reported_no_gradient = True
        self.variables_without_gradient = missing

    def _gradients_fn(self, batch):
        """Replica function: losses, gradients summed across replicas and clipped, their
        global norm (before clipping) and whether every loss term and the norm are finite."""
        # Clip ids (text) ride along for error messages; the model never sees them.
        losses, grads = self._replica_step(map_parts(
            lambda part: {k: v for k, v in part.items() if k != "id"}, batch))
        variables = self.model.trainable_variables
        self._report_no_gradient(grads, variables)
        grads = [g for g in grads if g is not None]
        context = tf.distribute.get_replica_context()
        if self.num_replicas > 1:
            # Sum before clipping so every replica clips the global gradient alike.
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        norm = tf.linalg.global_norm(grads)
        finite_terms = {k: tf.reduce_all(tf.math.is_finite(v)) for k, v in losses.items()}
        finite = tf.reduce_all(tf.stack([tf.math.is_finite(norm)] + list(finite_terms.values())))
        if self.num_replicas > 1:
            bad = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                     1.0 - tf.cast(finite, tf.float32))
            finite = bad < 0.5  # no replica saw a non-finite loss
        if self.grad_clip_norm is not None and self.grad_clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.grad_clip_norm, use_norm=norm)
        ids = [part["id"] for part in parts_of(batch) if "id" in part]
        ids = tf.concat(ids, axis=0) if ids else tf.constant([], tf.string)
        return losses, grads, norm, finite, ids

    def _apply_fn(self, grads):
        """Replica function: applies the (summed, clipped) gradients once."""
        variables = [v for v in self.model.trainable_variables
                     if v.path not in set(self.variables_without_gradient)]
        if self.num_replicas > 1:
            # The Keras optimizer sums gradients across replicas again: pre-divide.
            grads = [g / self.num_replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, variables))

    def _reduce(self, per_replica_losses):
        if self.num_replicas == 1:
            return per_replica_losses
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica_losses.items()}

    def _compute(self, batch):
        losses, grads, norm, finite, ids = self.strategy.run(self._gradients_fn, args=(batch,))
        if self.num_replicas > 1:
            norm = self.strategy.experimental_local_results(norm)[0]
            finite = self.strategy.experimental_local_results(finite)[0]
        return self._reduce(losses), grads, norm, finite, ids

    def _compute_on_batch_fn(self, batch):
        return self._compute(batch)

    def _compute_on_iterator_fn(self, iterator):
        return self._compute(next(iterator))

    def _apply_step_fn(self, grads):
        self.strategy.run(self._apply_fn, args=(grads,))

    def train_step(self, inputs):
        """One optimisation step on a global batch.

        The loss terms and the gradients' global norm are checked first: when any is NaN or
        infinite, no weight, optimizer slot or step changes, and `NonFiniteError` is raised
        (naming the step, the non-finite terms and the batch's clip ids when the batch has
        an ``id`` feature); with ``max_nonfinite_steps`` > 0 the first that many such
        batches are skipped with a warning instead (``last_step_skipped`` is then True).

        Args:
          inputs: an iterator over (distributed) batches, e.g.
            ``iter(trainer.distribute_dataset(dataset))``, or one batch (a dict, or a
            tuple of dicts when zipped; split across replicas here when there are several).

        Returns:
          dict of scalar losses (means over the global batch), including ``total_loss``.
        """
        if not is_batch(inputs) and is_multi_worker(self.strategy):
            inputs = next(inputs)  # the global batch; sliced per replica below
        if is_batch(inputs):
            if self.num_replicas > 1 and not _is_distributed(inputs):
                inputs = self._split_batch(inputs)
            losses, grads, norm, finite, ids = self._step_on_batch(inputs)
        else:
            losses, grads, norm, finite, ids = self._step_on_iterator(inputs)
        self.last_step_skipped = False
        if not bool(finite):
            self._non_finite(losses, norm, ids)
            self.last_step_skipped = True
            return losses
        self._apply_step(grads)
        return losses

    def _non_finite(self, losses, norm, ids):
        """Raises `NonFiniteError`, or warns while skipping is allowed."""
        step = self.get_step() + 1
        values = {k: float(v) for k, v in losses.items()}
        terms = sorted(k for k, v in values.items() if not math.isfinite(v))
        clips = []
        for part in (self.strategy.experimental_local_results(ids)
                     if self.num_replicas > 1 else [ids]):
            clips += [c.decode() if isinstance(c, bytes) else str(c)
                      for c in np.asarray(part).reshape(-1)]
        error = NonFiniteError(step, terms, float(norm), clips)
        if self.nonfinite_steps >= self.max_nonfinite_steps:
            raise error
        self.nonfinite_steps += 1
        logger.warning("%s; skipped this batch (%d of at most %d, Trainer.max_nonfinite_steps)",
                       error.summary, self.nonfinite_steps, self.max_nonfinite_steps)

    def _split_batch(self, batch):
        """Each replica's slice of a global batch (of each part of a zipped one)."""
        n = self.num_replicas
        pers = []
        for part in parts_of(batch):
            sizes = {int(v.shape[0]) for v in part.values()}
            if len(sizes) != 1 or next(iter(sizes)) % n:
                raise ValueError(f"batch sizes {sorted(sizes)} must be equal and divisible by the "
                                 f"{n} replicas")
            pers.append(next(iter(sizes)) // n)

        def value_fn(ctx):
            i = ctx.replica_id_in_sync_group
            sliced = [{k: v[i * per:(i + 1) * per] for k, v in part.items()}
                      for part, per in zip(parts_of(batch), pers)]
            return sliced[0] if isinstance(batch, dict) else type(batch)(sliced)

        return self.strategy.experimental_distribute_values_from_function(value_fn)

    # ------------------------------------------------------------------ checkpoints
    def save(self, save_dir) -> str:
        """Writes ``<save_dir>/ckpt-<step>`` (model, optimizer, step); keeps the newest
        ``checkpoints_to_keep``. Returns the prefix (`checkpoints.save`, without the
        operative config)."""
        return checkpoints.save(self, save_dir, operative_config=False)

    def restore(self, checkpoint_path, restore_keys=None, verify: bool = True) -> str:
        """Restores a checkpoint (a prefix or a folder's newest); build the trainer first.

        With keys (the argument, else the trainer's ``restore_keys``): only those model
        sub-modules (`checkpoints.warm_start`, ``'decoder'``, ``'synthcoder=decoder'``);
        optimizer and step stay as they are. Without: everything, optimizer state and step
        included (`checkpoints.resume`), so training continues where it stopped.

        Returns:
          the checkpoint prefix restored from.
        """
        keys = restore_keys or self.restore_keys
        if keys:
            return checkpoints.warm_start(self, checkpoint_path, keys, verify=verify)
        return checkpoints.resume(self, checkpoint_path, verify=verify)


def is_batch(value) -> bool:
    """A batch: a feature dict, or a zipped batch (a list/tuple of feature dicts)."""
    return isinstance(value, dict) or (isinstance(value, (list, tuple)) and bool(value)
                                       and all(isinstance(part, dict) for part in value))


def parts_of(batch) -> list:
    """The feature dicts of a batch: [batch] for a dict, the parts of a zipped batch."""
    return [batch] if isinstance(batch, dict) else list(batch)


def map_parts(fn, batch):
    """`fn` applied to each feature dict of a batch, keeping its structure."""
    return fn(batch) if isinstance(batch, dict) else type(batch)(fn(part) for part in batch)


def _is_distributed(value) -> bool:
    return any(isinstance(v, tf.distribute.DistributedValues) for v in tf.nest.flatten(value))


@register("training")
def get_trainer_class(trainer_class=Trainer):
    """The trainer class gin binds (``get_trainer_class.trainer_class = @Trainer``), as the
    original's training entry point chooses it."""
    return trainer_class
