"""Convergence of one run of ``params.yaml``: test-split metrics every N training steps.

    .venv/bin/python benchmarks/convergence.py --run ae --steps 3000 --every 200
    .venv/bin/python benchmarks/convergence.py --run midiae --seconds 1800 --every 100
    .venv/bin/python benchmarks/convergence.py --run zmidiae --steps 600 --every 100 \\
        --set train.learning_rate=0.003 --set train.zmidiae.rnn_channels=256

Trains the run exactly as the ``train_<run>`` stage does (same gin files and bindings from
the params, same data provider, `train_loop.TrainingSession`, same warm start), but
in a scratch folder (``--out``, default ``<tmp>/ddsp-convergence/<run>``, emptied first),
and after every ``--every`` steps (and at step 0) scores the model on the
``evaluate.split`` clips with the ``evaluate`` stage's own code
(`pipelines.evaluate.score_model` -> `ddsp_models.training.evaluation.evaluate_model`): spectral
loss, loudness L1 (dB), f0 L1 (semitones, CREPE on the resynthesis) and the f0 outlier
ratio; note onset / note / frame F1 for a MIDI run that transcribes (no note annotations
in the data, or ``notes: encoded``). Each evaluation prints a table row and is appended to
``<out>/convergence.csv`` and ``<out>/convergence.jsonl`` with the step, training seconds
so far, steps/s, the mean training losses of the last ``--every`` steps and whether the audio
is "usable" (the run's `USABLE` bounds, issue 11's targets: e.g. ae f0 L1 <= 0.5 semitones,
outliers <= 0.2, loudness L1 <= 2 dB). At the end a markdown table (README-ready) with the
first usable step is printed and written to ``<out>/convergence.md``.

Stops at ``--steps`` (default: the run's ``train.<run>.steps``) or at the first
evaluation after ``--seconds`` of training, whichever comes first.

Needs the prepared dataset (``--data-dir``, default ``data/tfds``: ``dvc repro dataset``);
the midiae run warm-starts from the params' ``train.midiae.warm_start`` run in
``--runs-dir`` (default ``runs``, so ``runs/ae``: ``dvc repro train_ae``), or
``--warm-start DIR``, or
``--no-warm-start``. The run is seeded as its stage is, by ``train.seed`` (weight
initialisation, data order, noise); ``--seed N`` overrides it. ``train.precision`` applies.
"""
import argparse
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

METRICS = ("spectral_loss", "loudness_l1_db", "f0_l1_semitones", "f0_outlier_ratio",
           "note_onset_f1", "note_f1", "frame_f1")
COLUMNS = ("step", "train_s", "steps_per_s", "total_loss") + METRICS + ("usable",)
# "Usable audio" (issue 11's targets for the default pipeline's test split): upper bounds.
USABLE = {
    "ae": {"f0_l1_semitones": 0.5, "f0_outlier_ratio": 0.2, "loudness_l1_db": 2.0},
    "midiae": {"f0_l1_semitones": 1.0, "f0_outlier_ratio": 0.35, "loudness_l1_db": 4.0},
    "zmidiae": {"f0_l1_semitones": 1.0, "f0_outlier_ratio": 0.5, "loudness_l1_db": 5.0},
    "inverse": {"f0_l1_semitones": 3.0},
}


def parse_set(values) -> dict:
    """``['train.ae.steps=300', ...]`` -> nested overrides ``{'train': {'ae': {'steps': 300}}}``
    (values read as YAML: numbers, lists, null)."""
    import yaml

    overrides = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. "
                             "train.learning_rate=0.003")
        node = overrides
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        value = yaml.safe_load(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
            try:
                value = float(value)
            except ValueError:
                pass
        node[parts[-1]] = value
    return overrides


def _fmt(value, width=10):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    if isinstance(value, bool):
        return ("yes" if value else "no").rjust(width)
    if isinstance(value, int):
        return str(value).rjust(width)
    return f"{value:.4g}".rjust(width)


class Recorder:
    """Prints each evaluation as a table row and appends it to CSV and JSON lines."""

    def __init__(self, out_dir: str, columns):
        self.columns = [c for c in columns]
        self.csv_path = os.path.join(out_dir, "convergence.csv")
        self.jsonl_path = os.path.join(out_dir, "convergence.jsonl")
        self.rows = []
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(self.columns)
        print("  ".join(c[:10].rjust(10) for c in self.columns), flush=True)

    def add(self, row: dict):
        self.rows.append(row)
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(["" if row.get(c) is None else row.get(c) for c in self.columns])
        with open(self.jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print("  ".join(_fmt(row.get(c)) for c in self.columns), flush=True)


def build_trainer(params: dict, run: str, info):
    """(trainer, provider, gin files, bindings) of a run, configured as its train stage."""
    import gin

    from ddsp_models.training import models, run_config
    from ddsp_models.training.config import parse_gin
    from ddsp_models.training.precision import precision_scope
    from ddsp_models.training.trainer import Trainer, get_strategy

    train = params["train"]
    files, bindings = run_config.gin_config(params, run, info)
    gin.clear_config()
    parse_gin(files, bindings)
    provider = gin.query_parameter("train.data_provider").scoped_configurable_fn()
    strategy = get_strategy()
    with strategy.scope(), precision_scope(train["precision"]):
        model = models.get_model()
        trainer = Trainer(model, strategy, seed=train["seed"],
                          max_nonfinite_steps=train["max_nonfinite_steps"])
    trainer.build(next(iter(provider.get_batch(params["train"]["batch_size"], shuffle=False,
                                               repeats=1))))
    return trainer, provider, files, bindings


def warm_start_checkpoint(params: dict, run: str, override: str | None, disabled: bool,
                          runs_dir: str = "runs"):
    """(checkpoint prefix, restore_keys) the run warm-starts from (a run in `runs_dir`),
    or (None, []). ValueError naming the folder and the fix when the source holds no
    checkpoint."""
    from ddsp_models.training import run_config
    from ddsp_models.training.checkpoints import resolve_checkpoint

    source, keys = run_config.warm_start_source(params, runs_dir, run)
    if disabled or not keys:
        return None, []
    source = override or source
    try:
        return resolve_checkpoint(source), keys
    except ValueError:
        raise ValueError(f"{run} warm-starts ({keys}) from {source!r}, which holds no "
                         f"checkpoint: train it first (`dvc repro train_ae`), or pass "
                         f"--warm-start DIR or --no-warm-start") from None


def is_usable(run: str, row: dict) -> bool:
    """True when every metric of `USABLE[run]` is known and at most its bound."""
    return all(row.get(name) is not None and row[name] == row[name] and row[name] <= bound
               for name, bound in USABLE[run].items())


def markdown_table(run: str, rows: list[dict]) -> str:
    """The rows as a markdown table (README-ready) plus the first usable step."""
    columns = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append("" if value is None else "yes" if value is True else "no" if value is False
                         else str(value) if isinstance(value, int) else f"{value:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    first = next((r["step"] for r in rows if r.get("usable")), None)
    bounds = ", ".join(f"{k} <= {v}" for k, v in USABLE[run].items())
    lines.append("")
    lines.append(f"{run}: usable audio ({bounds}) "
                 + (f"first at step {first}" if first is not None else "not reached"))
    return "\n".join(lines) + "\n"


def finished(step: int, steps: int, train_s: float, seconds: float | None) -> bool:
    """True once `steps` are done or the training time reached the `seconds` budget."""
    return step >= steps or (seconds is not None and train_s >= seconds)


def converge(params: dict, run: str, steps: int, every: int, seconds: float | None,
             out_dir: str, seed: int | None = None, warm_start_dir: str | None = None,
             no_warm_start: bool = False, data_dir: str = "data/tfds",
             runs_dir: str = "runs") -> list[dict]:
    """Trains `run` in `out_dir` (emptied first) on the dataset in `data_dir`, evaluating at
    step 0 and every `every` steps; returns the rows (also written to
    ``<out_dir>/convergence.{csv,jsonl}``)."""
    from ddsp_models.checks import positive_int
    from ddsp_models.training import checkpoints, run_config
    from ddsp_models.training.train_loop import TrainingSession, resume_or_warm_start
    from pipelines.evaluate import n_examples_of, score_model

    positive_int("--steps", steps)
    positive_int("--every", every)
    run_config.check_run(run)
    train = params["train"]
    info = run_config.dataset_info(data_dir)  # ValueError: run `dvc repro dataset`
    if seed is not None:  # overrides train.seed
        train = dict(train, seed=int(seed))
        params = dict(params, train=train)
    seed = train["seed"]
    from ddsp_models.training.reproducibility import seed_training

    seed_training(int(seed))  # weight initialisation, deterministic graphs
    prefix, keys = warm_start_checkpoint(params, run, warm_start_dir, no_warm_start, runs_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    trainer, provider, files, bindings = build_trainer(params, run, info)
    restored = resume_or_warm_start(trainer, out_dir, prefix, keys).warm_started_from
    checkpoints.save(trainer, out_dir)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"run": run, "gin_files": files, "gin_bindings": bindings,
                   "warm_start": restored, "seed": seed, "dataset": info.data_dir,
                   "splits": info.splits, "params_train": train}, f, indent=1)
    split = params["evaluate"]["split"]
    n_test = info.splits.get(split)
    print(f"{run}: {type(trainer.model).__name__}, data {info.data_dir} ({info.config}, "
          f"{n_test} {split} clips), batch {train['batch_size']}, lr {train['learning_rate']}, "
          f"warm start {restored or 'none'}; every {every} steps up to {steps}"
          + (f" or {seconds:.0f} s" if seconds else "") + f"; results in {out_dir}", flush=True)
    batches = run_config.split_batches(info.data_dir, split, params["evaluate"]["batch_size"])
    session = TrainingSession(out_dir, provider, trainer, train["batch_size"], every, seed=seed)
    recorder = Recorder(out_dir, COLUMNS)
    train_s, losses, rate = 0.0, {}, None
    step = trainer.get_step()
    while True:
        t0 = time.perf_counter()
        summary = score_model(trainer.model, params, run, info, batches)
        row = {"step": step, "train_s": round(train_s, 1), "steps_per_s": rate,
               "total_loss": losses.get("total_loss"),
               "eval_s": round(time.perf_counter() - t0, 1), "n_examples": n_examples_of(summary),
               "losses": losses}
        row.update({name: summary[name]["mean"] for name in METRICS if name in summary})
        row["usable"] = is_usable(run, row)
        recorder.add(row)
        if finished(step, steps, train_s, seconds):
            table = markdown_table(run, recorder.rows)
            with open(os.path.join(out_dir, "convergence.md"), "w", encoding="utf-8") as f:
                f.write(table)
            print("\n" + table, flush=True)
            return recorder.rows
        result = session.run_until(min(step + every, steps))
        train_s += result["seconds"]
        rate = (result["end_step"] - result["start_step"]) / max(result["seconds"], 1e-9)
        step, losses = result["end_step"], result["losses"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--run", required=True, choices=("ae", "midiae", "zmidiae", "inverse"))
    parser.add_argument("--steps", type=int, default=None,
                        help="last step (default: the run's train.<run>.steps)")
    parser.add_argument("--every", type=int, default=100, help="steps between evaluations")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop at the first evaluation after this much training time")
    parser.add_argument("--out", default=None,
                        help="scratch folder (emptied first); default <tmp>/ddsp-convergence/<run>")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="params override, e.g. train.learning_rate=0.003 (repeatable)")
    parser.add_argument("--seed", type=int, default=None,
                        help="weight init, data order, noise (default: params' train.seed)")
    parser.add_argument("--warm-start", default=None, help="checkpoint folder to warm-start from")
    parser.add_argument("--no-warm-start", action="store_true")
    parser.add_argument("--data-dir", default="data/tfds", help="the prepared dataset")
    parser.add_argument("--runs-dir", default="runs",
                        help="folder of the runs (warm-start source <runs-dir>/<run>)")
    args = parser.parse_args(argv)
    from ddsp_models.cli_logging import configure_cli_logging

    configure_cli_logging("WARNING")  # absl (TFDS deprecation notes) at ERROR
    from ddsp_models.training.params import load_params

    params = load_params(args.params, parse_set(args.set))
    steps = args.steps or params["train"][args.run]["steps"]
    out = args.out or os.path.join(tempfile.gettempdir(), "ddsp-convergence", args.run)
    converge(params, args.run, steps, args.every, args.seconds, out, args.seed,
             args.warm_start, args.no_warm_start, args.data_dir, args.runs_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
