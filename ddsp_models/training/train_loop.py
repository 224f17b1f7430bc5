"""The training loop: steps, TensorBoard summaries, a JSON-lines loss log, checkpoints.

One way through, for the `train` function (gin, the ``ddsp_models.training.run`` CLI) and
the ``train`` flow's chunks (`TrainingSession`) alike: build the trainer,
`resume_or_warm_start` (the run's newest checkpoint, else a warm start), iterate over
`training_batches` (continuing a seeded data order where the checkpoint left it), and
`run_steps` up to a step. Checkpoint files themselves are `checkpoints`' business.

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
import dataclasses
import json
import logging
import math
import os
import time

import tensorflow as tf

from ddsp_models.checks import non_negative_int, positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training import checkpoints
from ddsp_models.training.reproducibility import seed_training
from ddsp_models.training.summaries import ValidationSummaries, scalar_summary

logger = logging.getLogger(__name__)

LOSS_LOG = "losses.jsonl"


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


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a run starts: the trainer's step after `resume_or_warm_start`, and from what.

    ``resumed_from``: the run's own newest checkpoint (everything restored), or None.
    ``warm_started_from``: another run's checkpoint (only ``keys``, or everything when
    ``keys`` is empty), or None. Both None: a fresh start.
    """
    step: int
    resumed_from: str | None = None
    warm_started_from: str | None = None
    keys: tuple = ()


def resume_or_warm_start(trainer, save_dir, warm_start=None, keys=None) -> Start:
    """Brings a built trainer to where its run starts, the one way every entry point does.

    1. `save_dir` holds a checkpoint: resume from the newest complete one (a half-written
       newer one is set aside with a warning): weights, optimizer state and step.
    2. Else, `warm_start` (another folder, or a checkpoint prefix) holds one: restore the
       model sub-modules `keys` from it (default: ``trainer.restore_keys``; e.g.
       ``['synthcoder=decoder']``), or everything when there are no keys. A `warm_start`
       that is `save_dir` itself, or holds no checkpoint, is skipped (with a log line).
    3. Else: a fresh start at the trainer's current step.

    Records of ``<save_dir>/losses.jsonl`` after the start step (logged by a process killed
    before its next checkpoint) are dropped, so every step is logged once.

    Args:
      trainer: a `Trainer`, built (``trainer.build(batch)``).
      save_dir: the run folder.
      warm_start: folder or prefix to warm-start from (None: none).
      keys: sub-modules to warm-start (None: ``trainer.restore_keys``).

    Returns:
      a `Start`.
    """
    save_dir = os.fspath(save_dir)
    keys = trainer.restore_keys if keys is None else keys
    keys = (keys,) if isinstance(keys, str) else tuple(keys or ())
    start = Start(trainer.get_step())
    if checkpoints.has_checkpoint(save_dir, repair=True):
        path = checkpoints.resume(trainer, save_dir)
        start = Start(trainer.get_step(), resumed_from=path)
    elif warm_start and os.path.abspath(os.fspath(warm_start)) != os.path.abspath(save_dir):
        if checkpoints.has_checkpoint(warm_start) or \
                tf.io.gfile.exists(os.fspath(warm_start) + ".index"):
            path = checkpoints.warm_start(trainer, warm_start, keys) if keys else \
                checkpoints.resume(trainer, warm_start)
            start = Start(trainer.get_step(), warm_started_from=path, keys=keys)
        else:
            logger.info("no checkpoint in %s to warm-start from: starting afresh", warm_start)
    truncate_loss_log(save_dir, start.step)
    return start


def apply_seed(data_provider, trainer, seed: int | None) -> None:
    """Seeds what the provider and the trainer leave unseeded: the data order
    (``data_provider.seed``) and the model's random draws (``trainer.seed``)."""
    if seed is None:
        return
    if getattr(data_provider, "seed", 0) is None:
        data_provider.seed = int(seed)
    if trainer.seed is None:
        trainer.seed = int(seed)


def tell_zipped_parts(data_provider, model) -> None:
    """Gives a model that trains on zipped batches (`InverseSynthesis.zipped_parts`) the part
    names of its `data.ZippedProvider` (``names``), unless the config bound them already:
    the original DDSP's papers/icml2020/finetune_dataset.gin binds a ZippedProvider but
    never the model's parts (its model told them apart by their order)."""
    names = getattr(data_provider, "names", None)
    if names and hasattr(model, "zipped_parts") and not model.zipped_parts:
        model.zipped_parts = tuple(str(name) for name in names)


def training_batches(data_provider, trainer, batch_size: int):
    """An iterator over shuffled, repeated, distributed training batches from the
    trainer's current step on: with a deterministic (seeded) data order the batches the
    checkpoint already trained on are skipped, so a resumed run sees the batches an
    uninterrupted one would."""
    dataset = data_provider.get_batch(batch_size, shuffle=True, repeats=-1)
    step = trainer.get_step()
    if step > 0 and getattr(data_provider, "seed", None) is not None:
        logger.info("skipping the %d batches trained before step %d (seeded data order)",
                    step, step)
        dataset = dataset.skip(step)
    return iter(trainer.distribute_dataset(dataset))


def validation_summaries(provider, n_examples: int, save_dir, steps_per_eval: int):
    """The `ValidationSummaries` of a run (``<save_dir>/summaries/valid``) over the first
    `n_examples` of `provider`; None when `steps_per_eval` is 0 (none written)."""
    if steps_per_eval <= 0:
        return None
    log_dir = os.path.join(os.fspath(save_dir), "summaries", "valid")
    return ValidationSummaries.from_provider(provider, n_examples, log_dir)


def run_steps(trainer, iterator, until_step: int, save_dir, steps_per_summary: int = 300,
              steps_per_save: int | None = None, early_stop_loss_value=None,
              validation=None, steps_per_eval: int = 0) -> dict:
    """Trains from the trainer's step up to `until_step`, logging and checkpointing.

    Every `steps_per_summary` steps and at `until_step`: the mean losses since the last
    log line go to TensorBoard (``summaries/train``), ``losses.jsonl`` and the logger
    (with steps/s and ETA). Every `steps_per_save` steps (None: only at the end), at
    `until_step` and on an early stop: a checkpoint plus operative config
    (`checkpoints.save`). A batch skipped for a non-finite loss does not count as a step.

    Args:
      trainer: a built `Trainer` at its start step (see `resume_or_warm_start`).
      iterator: batches (`training_batches`).
      until_step: the global step to stop at.
      save_dir: the run folder.
      early_stop_loss_value: stop once a logging window's mean ``total_loss`` is below.
      validation: a `summaries.ValidationSummaries` (audio, spectrograms, f0 and piano
        rolls of a fixed validation batch), written every `steps_per_eval` steps and at
        the last step (None: never).

    Returns:
      ``{'start_step', 'step', 'losses' (last logged means), 'seconds', 'stopped'}``.
    """
    positive_int("steps_per_summary", steps_per_summary)
    if steps_per_save is not None:
        positive_int("steps_per_save", steps_per_save)
    non_negative_int("steps_per_eval (0: no validation summaries)", steps_per_eval)
    save_dir = os.fspath(save_dir)
    os.makedirs(save_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(os.path.join(save_dir, "summaries", "train"))
    step = first_step = trainer.get_step()
    logger.info("training from step %d to %d (%d replica(s))", step, until_step,
                trainer.num_replicas)
    window, last, stop = _LossWindow(), {}, False
    t_window = t_start = time.perf_counter()
    steps_in_window = 0
    with writer.as_default(), open(os.path.join(save_dir, LOSS_LOG), "a", encoding="utf-8") as log:
        while step < until_step and not stop:
            losses = trainer.train_step(iterator)
            if trainer.last_step_skipped:  # a non-finite batch, skipped (no update)
                continue
            window.add(losses)
            step += 1
            steps_in_window += 1
            if step % steps_per_summary == 0 or step >= until_step:
                now = time.perf_counter()
                last = window.means()
                rate = steps_in_window / max(now - t_window, 1e-9)
                _log_losses(log, step, last, rate, trainer.learning_rate(), now - t_start,
                            until_step)
                writer.flush()
                window, t_window, steps_in_window = _LossWindow(), now, 0
                if early_stop_loss_value is not None and \
                        last.get("total_loss", math.inf) < early_stop_loss_value:
                    logger.info("total_loss %.4f < %.4f: stopping early", last["total_loss"],
                                early_stop_loss_value)
                    stop = True
            end = step >= until_step or stop
            if validation is not None and (end or steps_per_eval and step % steps_per_eval == 0):
                validation.write(trainer.model, step)
            if end or (steps_per_save is not None and step % steps_per_save == 0):
                checkpoints.save(trainer, save_dir)
    return {"start_step": first_step, "step": step, "losses": last,
            "seconds": time.perf_counter() - t_start, "stopped": stop}


def _log_losses(log, step, losses, rate, learning_rate, wall_s, until_step):
    """One logging point: TensorBoard scalars, a ``losses.jsonl`` line, a logger line."""
    for key, value in losses.items():
        scalar_summary(f"losses/{key}", value, step)
    scalar_summary("steps_per_sec", rate, step)
    scalar_summary("learning_rate", learning_rate, step)
    log.write(json.dumps({"step": step, "losses": losses, "steps_per_sec": rate,
                          "learning_rate": learning_rate, "wall_s": wall_s}) + "\n")
    log.flush()
    eta = (until_step - step) / rate if rate > 0 else math.inf
    logger.info("step %d  total_loss %.4f  %.2f steps/s  ETA %s", step,
                losses.get("total_loss", math.nan), rate, format_seconds(eta))


def chunk_ends(start_step: int, total_steps: int, chunk_steps: int) -> list[int]:
    """Steps at which the chunks after `start_step` end: multiples of `chunk_steps`, then
    `total_steps` (``chunk_ends(0, 250, 100) == [100, 200, 250]``)."""
    positive_int("chunk_steps", chunk_steps)
    ends = list(range((start_step // chunk_steps + 1) * chunk_steps, total_steps, chunk_steps))
    if start_step < total_steps:
        ends.append(total_steps)
    return ends


class TrainingSession:
    """Training in chunks inside one process (the ``train`` flow's chunk tasks, the
    convergence benchmark): each `run_until` continues where the previous one stopped
    (trainer, data iterator) and ends with a checkpoint; `resume` goes back to the newest
    checkpoint after a failed attempt.

    Args:
      save_dir: the run folder.
      provider: training data (`DataProvider`).
      trainer: a built `Trainer`, at its start step (`resume_or_warm_start`).
      batch_size: global batch size.
      steps_per_summary: log losses this often (and at the end of each chunk).
      steps_per_eval, eval_provider, eval_examples: validation summaries, see `train`.
      seed: seeds the data order and the model's random draws when they are unseeded.
    """

    def __init__(self, save_dir, provider, trainer, batch_size: int,
                 steps_per_summary: int = 300, steps_per_eval: int = 0, eval_provider=None,
                 eval_examples: int = 2, seed: int | None = None):
        self.save_dir = os.fspath(save_dir)
        self.provider, self.trainer, self.batch_size = provider, trainer, int(batch_size)
        self.steps_per_summary, self.steps_per_eval = steps_per_summary, steps_per_eval
        apply_seed(provider, trainer, seed)
        self.validation = validation_summaries(eval_provider or provider, eval_examples,
                                               self.save_dir, steps_per_eval)
        self.batches = None  # made on the first chunk, continued by the next

    def run_until(self, until_step: int) -> dict:
        """Trains up to `until_step` (`run_steps`), then checkpoints.

        Returns:
          ``{'start_step', 'end_step', 'seconds', 'losses'}`` (the last logged means).
        """
        if self.batches is None:
            self.batches = training_batches(self.provider, self.trainer, self.batch_size)
        result = run_steps(self.trainer, self.batches, until_step, self.save_dir,
                           self.steps_per_summary, validation=self.validation,
                           steps_per_eval=self.steps_per_eval)
        return {"start_step": result["start_step"], "end_step": int(result["step"]),
                "seconds": result["seconds"], "losses": result["losses"]}

    def resume(self) -> int:
        """Back to the newest checkpoint (weights, optimizer, step, loss log; the data
        continue from that step), dropping unsaved work. Returns the step."""
        self.batches = None
        return resume_or_warm_start(self.trainer, self.save_dir).step


@register("training")
def train(data_provider, trainer, batch_size: int = 32, num_steps: int = 1000000,
          steps_per_summary: int = 300, steps_per_save: int = 300, save_dir="/tmp/ddsp",
          restore_dir="/tmp/ddsp", early_stop_loss_value=None,
          report_loss_to_hypertune: bool = False, steps_per_eval: int = 0,
          eval_data_provider=None, eval_examples: int = 2, seed: int | None = None,
          report_loss_to_hpo: bool | None = None) -> dict:
    """Trains until the trainer's step reaches `num_steps` (or the loss gets low enough).

    `resume_or_warm_start` first: resumes from the newest complete checkpoint in
    `save_dir`, else warm-starts from `restore_dir` (with the trainer's ``restore_keys``,
    e.g. ``['synthcoder=decoder']``) when it holds a checkpoint; then `run_steps`. With a
    `seed` (or a seeded data provider) the data order is deterministic and a resumed run
    first skips the batches the checkpoint already trained on, so kill + rerun ends with
    the weights of an uninterrupted run.

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
      report_loss_to_hypertune: write the final mean total loss to
        ``<save_dir>/hpo_metric.json`` (and to cloudml-hypertune when that package is
        installed); `report_loss_to_hpo` is this package's earlier name for it (wins when
        given).
      steps_per_eval: every this many steps and at the last step, write audio, spectrogram,
        f0 and piano-roll summaries of a fixed validation batch to ``summaries/valid/``
        (0: never).
      eval_data_provider: where that batch comes from (None: `data_provider`, unshuffled).
      eval_examples: examples in that batch.
      seed: seeds what the provider and the trainer leave unseeded (`apply_seed`). Weight
        initialisation is seeded where the model is made (`run_train`).

    Returns:
      ``{'step': final step, 'losses': last logged mean losses}``.
    """
    if batch_size % trainer.num_replicas:
        raise ValueError(f"batch_size {batch_size} must be divisible by the "
                         f"{trainer.num_replicas} replicas")
    positive_int("steps_per_summary", steps_per_summary)
    positive_int("steps_per_save", steps_per_save)
    non_negative_int("steps_per_eval (0: no validation summaries)", steps_per_eval)
    from ddsp_models.training.trainer import worker_save_dir

    save_dir = worker_save_dir(save_dir, trainer.strategy)  # non-chief workers: own copy
    os.makedirs(save_dir, exist_ok=True)
    apply_seed(data_provider, trainer, seed)
    # Build from an unshuffled copy: an iterator over the training dataset itself would
    # draw (and, prefetching, use up a timing-dependent number of) its reshuffle seeds.
    tell_zipped_parts(data_provider, trainer.model)
    trainer.build(next(iter(data_provider.get_batch(batch_size, shuffle=False, repeats=-1))))
    start = resume_or_warm_start(trainer, save_dir, restore_dir)
    batches = training_batches(data_provider, trainer, batch_size)
    validation = validation_summaries(eval_data_provider or data_provider, eval_examples,
                                      save_dir, steps_per_eval)
    result = run_steps(trainer, batches, num_steps, save_dir, steps_per_summary,
                       steps_per_save, early_stop_loss_value, validation, steps_per_eval)
    if result["step"] == start.step and not checkpoints.has_checkpoint(save_dir):
        checkpoints.save(trainer, save_dir)
    if report_loss_to_hpo is not None:
        report_loss_to_hypertune = report_loss_to_hpo
    if report_loss_to_hypertune and result["losses"]:
        _report_to_hpo(save_dir, result["step"], result["losses"].get("total_loss", math.nan))
    return {"step": result["step"], "losses": result["losses"]}


def run_train(save_dir, gin_files=(), gin_bindings=(), gin_search_paths=(), strategy=None,
              data_provider=None, restore_dir=None, precision: str = "float32") -> dict:
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
      precision: 'float32' or 'mixed_bfloat16' (`precision.precision_scope`).

    Returns:
      what `train` returns.
    """
    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin
    from ddsp_models.training.precision import check_precision, precision_scope
    from ddsp_models.training.trainer import Trainer, get_strategy

    check_precision(precision)
    save_dir = os.fspath(save_dir)
    parse_gin(gin_files, gin_bindings, gin_search_paths,
              operative_config_dir=save_dir if os.path.isdir(save_dir) else None)
    strategy = strategy or get_strategy()
    seed = configured_seed()
    if seed is not None:  # weight initialisation, deterministic graphs
        seed_training(seed)
    with strategy.scope(), precision_scope(precision):
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
