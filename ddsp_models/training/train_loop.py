"""The training loop: steps, TensorBoard summaries, a JSON-lines loss log, checkpoints.

Files written in ``save_dir``:

- ``ckpt-<step>.*`` checkpoints (model, optimizer, step) every ``steps_per_save`` steps
  and at the end;
- ``operative_config-<step>.gin``: the gin settings in force, next to each checkpoint;
- ``losses.jsonl``: one JSON object per logged step, ``{"step", "losses": {name: mean over
  the steps since the last line}, "steps_per_sec", "learning_rate", "wall_s"}``;
- ``summaries/train/``: TensorBoard scalars (each loss, steps per second, learning rate);
- ``summaries/valid/``: every ``steps_per_eval`` steps, audio, spectrograms, f0 and piano
  rolls of a fixed validation batch (`summaries.ValidationSummaries`).
"""
import glob
import json
import logging
import math
import os
import re
import shutil
import time

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ddsp_models.gin_utils import register
from ddsp_models.training.models.model import resolve_checkpoint
from ddsp_models.training.config import write_operative_config
from ddsp_models.training.summaries import ValidationSummaries

logger = logging.getLogger(__name__)

LOSS_LOG = "losses.jsonl"
BROKEN_DIR = "broken_checkpoints"  # half-written checkpoints found on resume are moved here
_CKPT_RE = re.compile(r"-(\d+)$")


def _checkpoint_prefixes(folder) -> list[tuple[int, str]]:
    """``(step, prefix)`` of every ``<name>-<step>.index`` in `folder`, newest first."""
    found = []
    for index in glob.glob(os.path.join(os.fspath(folder), "*.index")):
        prefix = index[:-len(".index")]
        match = _CKPT_RE.search(prefix)
        if match:
            found.append((int(match.group(1)), prefix))
    return sorted(found, reverse=True)


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
    ``<folder>/broken_checkpoints/`` with a warning, temporary save folders of killed
    saves are removed, and the ``checkpoint`` state file is rewritten to the good ones.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    for leftover in glob.glob(os.path.join(folder, "*_temp*")):
        shutil.rmtree(leftover, ignore_errors=True) if os.path.isdir(leftover) \
            else os.remove(leftover)
    prefixes = _checkpoint_prefixes(folder)
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


def truncate_loss_log(save_dir, step: int) -> int:
    """Keeps the records of ``losses.jsonl`` up to `step` (the restored checkpoint's step)
    and drops a line cut off by a kill; rewritten atomically. Returns the records dropped.

    Without this, steps logged after the last checkpoint of a killed run would be logged
    again when the rerun trains them a second time.
    """
    path = os.path.join(os.fspath(save_dir), LOSS_LOG)
    if not os.path.isfile(path):
        return 0
    kept, dropped = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if record.get("step", math.inf) <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
            else:
                dropped += 1
    if dropped:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        logger.info("%s: dropped %d record(s) logged after step %d (not in the checkpoint)",
                    path, dropped, step)
    return dropped


def has_checkpoint(folder, repair: bool = False) -> bool:
    """True when `folder` is a directory holding at least one checkpoint.

    With `repair` (a run's own folder, before resuming it), a half-written newest
    checkpoint is set aside first and only complete ones count (see
    `newest_complete_checkpoint`); never repair another process's folder."""
    if not folder or not tf.io.gfile.isdir(os.fspath(folder)):
        return False
    if repair and _checkpoint_prefixes(folder):
        return newest_complete_checkpoint(folder) is not None
    try:
        resolve_checkpoint(folder)
        return True
    except ValueError:
        return False


def save_checkpoint(trainer, save_dir) -> str:
    """A checkpoint of `trainer` (model, optimizer, step) plus the gin operative config of
    the same step in `save_dir`; returns the checkpoint prefix."""
    path = trainer.save(save_dir)
    write_operative_config(save_dir, trainer.get_step())
    return path


_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def write_scalar(name: str, value, step: int) -> None:
    """A TensorBoard scalar via TF's own summary op (the `tensorboard` package, which
    `tf.summary.scalar` needs, is optional here)."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_SCALAR_METADATA)


class _LossWindow:
    """Running sums of the losses since the last log line (read with one host sync)."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, losses: dict):
        for key, value in losses.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1

    def means(self) -> dict:
        return {k: float(v) / self.count for k, v in self.sums.items()}


@register("training")
def train(data_provider, trainer, batch_size: int = 32, num_steps: int = 1000000,
          steps_per_summary: int = 300, steps_per_save: int = 300, save_dir="/tmp/ddsp",
          restore_dir="/tmp/ddsp", early_stop_loss_value=None,
          report_loss_to_hpo: bool = False, steps_per_eval: int = 0,
          eval_data_provider=None, eval_examples: int = 2, seed: int | None = None) -> dict:
    """Trains until the trainer's step reaches `num_steps` (or the loss gets low enough).

    Resumes from the newest complete checkpoint in `save_dir` (step, optimizer and model;
    a half-written newer one is set aside with a warning); if there is none there,
    warm-starts from `restore_dir` (with the trainer's ``restore_keys``, e.g.
    ``['synthcoder=decoder']``) when it holds a checkpoint. Records of ``losses.jsonl``
    after the restored step (logged by a run killed before its next checkpoint) are
    dropped, so every step is logged once. With a `seed` (or a seeded data provider) the
    data order is deterministic and a resumed run first skips the batches the checkpoint
    already trained on, so kill + rerun ends with the weights of an uninterrupted run.

    Args:
      data_provider: a `DataProvider` (``get_batch(batch_size, shuffle, repeats)``).
      trainer: a `Trainer` whose model was made inside ``trainer.strategy.scope()``.
      batch_size: global batch size (split across the strategy's replicas).
      num_steps: stop when the global step reaches this.
      steps_per_summary: log losses (TensorBoard, ``losses.jsonl``, logger) this often.
      steps_per_save: checkpoint and write the operative config this often.
      save_dir: folder for checkpoints, summaries and logs.
      restore_dir: folder (or checkpoint prefix) to warm-start from.
      early_stop_loss_value: stop once the mean ``total_loss`` of a logging window is
        below this.
      report_loss_to_hpo: write the final mean total loss to ``<save_dir>/hpo_metric.json``
        (and to cloudml-hypertune when that package is installed).
      steps_per_eval: every this many steps and at the last step, write audio, spectrogram,
        f0 and piano-roll summaries of a fixed validation batch to ``summaries/valid/``
        (0: never).
      eval_data_provider: where that batch comes from (None: `data_provider`, unshuffled).
      eval_examples: examples in that batch.
      seed: seeds what the provider and the trainer leave unseeded: the data order
        (``data_provider.seed``) and the model's random draws (``trainer.seed``). Weight
        initialisation is seeded where the model is made (`run_train`).

    Returns:
      ``{'step': final step, 'losses': last logged mean losses}``.
    """
    if batch_size % trainer.num_replicas:
        raise ValueError(f"batch_size {batch_size} must be divisible by the "
                         f"{trainer.num_replicas} replicas")
    if steps_per_summary < 1 or steps_per_save < 1:
        raise ValueError("steps_per_summary and steps_per_save must be >= 1")
    if steps_per_eval < 0:
        raise ValueError(f"steps_per_eval must be >= 0 (0: no validation summaries), got {steps_per_eval}")
    from ddsp_models.training.trainer import worker_save_dir

    save_dir = worker_save_dir(save_dir, trainer.strategy)  # non-chief workers: own copy
    os.makedirs(save_dir, exist_ok=True)

    if seed is not None:
        if getattr(data_provider, "seed", 0) is None:
            data_provider.seed = int(seed)
        if trainer.seed is None:
            trainer.seed = int(seed)
    # Build from an unshuffled copy: an iterator over the training dataset itself would
    # draw (and, prefetching, use up a timing-dependent number of) its reshuffle seeds.
    trainer.build(next(iter(data_provider.get_batch(batch_size, shuffle=False, repeats=-1))))
    dataset = data_provider.get_batch(batch_size, shuffle=True, repeats=-1)
    if has_checkpoint(save_dir, repair=True):
        trainer.restore(save_dir, restore_keys=[])  # resume: everything
    elif restore_dir and os.path.abspath(os.fspath(restore_dir)) != os.path.abspath(save_dir) \
            and (has_checkpoint(restore_dir)
                 or tf.io.gfile.exists(os.fspath(restore_dir) + ".index")):
        trainer.restore(restore_dir)  # warm start (the trainer's restore_keys)
    truncate_loss_log(save_dir, trainer.get_step())
    if trainer.get_step() > 0 and getattr(data_provider, "seed", None) is not None:
        # A deterministic order: continue it where the checkpoint left it.
        logger.info("skipping the %d batches trained before step %d (seeded data order)",
                    trainer.get_step(), trainer.get_step())
        dataset = dataset.skip(trainer.get_step())
    iterator = iter(trainer.distribute_dataset(dataset))
    validation = None
    if steps_per_eval > 0:
        validation = ValidationSummaries.from_provider(
            eval_data_provider or data_provider, eval_examples,
            os.path.join(save_dir, "summaries", "valid"))

    writer = tf.summary.create_file_writer(os.path.join(save_dir, "summaries", "train"))
    step = trainer.get_step()
    first_step = step
    logger.info("training from step %d to %d (batch %d, %d replica(s))", step, num_steps,
                batch_size, trainer.num_replicas)
    window = _LossWindow()
    last = {}
    t_window = t_start = time.perf_counter()
    steps_in_window = 0
    saved_at = None
    with writer.as_default(), open(os.path.join(save_dir, LOSS_LOG), "a", encoding="utf-8") as log:
        while step < num_steps:
            losses = trainer.train_step(iterator)
            if trainer.last_step_skipped:  # a non-finite batch, skipped (no update)
                continue
            window.add(losses)
            step += 1
            steps_in_window += 1
            stop = False
            if step % steps_per_summary == 0 or step >= num_steps:
                now = time.perf_counter()
                last = window.means()
                rate = steps_in_window / max(now - t_window, 1e-9)
                learning_rate = trainer.learning_rate()
                for key, value in last.items():
                    write_scalar(f"losses/{key}", value, step)
                write_scalar("steps_per_sec", rate, step)
                write_scalar("learning_rate", learning_rate, step)
                writer.flush()
                log.write(json.dumps({"step": step, "losses": last, "steps_per_sec": rate,
                                      "learning_rate": learning_rate,
                                      "wall_s": now - t_start}) + "\n")
                log.flush()
                eta = (num_steps - step) / rate if rate > 0 else math.inf
                logger.info("step %d  total_loss %.4f  %.2f steps/s  ETA %s", step,
                            last.get("total_loss", math.nan), rate, format_seconds(eta))
                window = _LossWindow()
                t_window, steps_in_window = now, 0
                if early_stop_loss_value is not None and \
                        last.get("total_loss", math.inf) < early_stop_loss_value:
                    logger.info("total_loss %.4f < %.4f: stopping early", last["total_loss"],
                                early_stop_loss_value)
                    stop = True
            if validation and (step % steps_per_eval == 0 or step >= num_steps or stop):
                validation.write(trainer.model, step)
            if step % steps_per_save == 0 or step >= num_steps or stop:
                save_checkpoint(trainer, save_dir)
                saved_at = step
            if stop:
                break
    if saved_at != step and step > first_step:
        save_checkpoint(trainer, save_dir)
    if step == first_step and not has_checkpoint(save_dir):
        save_checkpoint(trainer, save_dir)
    if report_loss_to_hpo and last:
        _report_to_hpo(save_dir, step, last.get("total_loss", math.nan))
    return {"step": step, "losses": last}


def run_train(save_dir, gin_files=(), gin_bindings=(), gin_search_paths=(), strategy=None,
              data_provider=None, restore_dir=None) -> dict:
    """Parses configs and trains: the whole of a training run, as a pipeline stage calls it.

    When `save_dir` already holds an ``operative_config-*.gin`` (an interrupted run), it is
    parsed first, so the run resumes with its own settings; `gin_files` and
    `gin_bindings` come after and win. The model is made inside ``strategy.scope()``.

    Args:
      save_dir: the run folder (checkpoints, logs, operative configs).
      gin_files, gin_bindings, gin_search_paths: see `config.parse_gin`.
      strategy: a `tf.distribute` strategy (default: `trainer.get_strategy()`).
      data_provider: overrides the configured ``train.data_provider``.
      restore_dir: checkpoint folder to warm-start from (default: `save_dir`).

    Returns:
      what `train` returns.
    """
    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin
    from ddsp_models.training.trainer import Trainer, get_strategy

    save_dir = os.fspath(save_dir)
    parse_gin(gin_files, gin_bindings, gin_search_paths,
              operative_config_dir=save_dir if os.path.isdir(save_dir) else None)
    strategy = strategy or get_strategy()
    seed = configured_seed()
    if seed is not None:  # weight initialisation (and any other Python/numpy/TF draws)
        keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = models.get_model()
        trainer = Trainer(model, strategy)
    kwargs = {} if data_provider is None else {"data_provider": data_provider}
    return train(trainer=trainer, save_dir=save_dir,
                 restore_dir=save_dir if restore_dir is None else restore_dir, **kwargs)


def configured_seed() -> int | None:
    """The ``train.seed`` gin binding (None when unbound)."""
    import gin

    try:
        value = gin.query_parameter("train.seed")
    except ValueError:
        return None
    return None if value is None else int(value)


def _report_to_hpo(save_dir, step, value):
    with open(os.path.join(save_dir, "hpo_metric.json"), "w", encoding="utf-8") as f:
        json.dump({"step": step, "total_loss": value}, f)
    try:
        import hypertune  # cloudml-hypertune, optional
    except ImportError:
        return
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag="Loss", metric_value=value, global_step=step)


def read_loss_log(save_dir) -> list[dict]:
    """The records of ``<save_dir>/losses.jsonl`` in order (a last line cut off by a kill
    is left out)."""
    records = []
    with open(os.path.join(os.fspath(save_dir), LOSS_LOG), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    if line.endswith("\n"):
                        raise
    return records


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` for an ETA or a duration; ``?`` when not finite."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
