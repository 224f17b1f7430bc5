"""Command line: train a model from gin configs (the original `ddsp_run` for training).

Example (the dataset built by `dvc repro`, the solo-instrument model)::

    python -m ddsp_models.training.run --save_dir runs/solo \\
        --gin_file models/solo_instrument.gin --gin_file datasets/prepared.gin \\
        --gin_file optimization/base.gin --gin_param "train.num_steps=3000"

Configs are looked up in `--gin_search_path` folders, then in the package's own
`ddsp_models/training/gin/` (configs written for the original DDSP library bind unchanged:
see `config.parse_gin`).
Rerunning the same command resumes from the latest checkpoint in `--save_dir`;
`--restore_dir` with `--gin_param "Trainer.restore_keys=['decoder']"` warm-starts
selected sub-modules from another run. `--strategy multi_worker` trains on several hosts
(`MultiWorkerMirroredStrategy`; the same command on each host with its own ``TF_CONFIG``);
the chief (worker 0) writes `--save_dir`, worker ``i`` its own copy in
``<save_dir>/worker-<i>``.
"""
import argparse
import logging
import sys

from ddsp_models.cli_logging import configure_cli_logging
from ddsp_models.training.precision import PRECISIONS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--save_dir", required=True, help="run folder: checkpoints, logs, configs")
    parser.add_argument("--gin_file", action="append", default=[], help="gin config (repeatable)")
    parser.add_argument("--gin_param", action="append", default=[], help="gin binding (repeatable)")
    parser.add_argument("--gin_search_path", action="append", default=[], help="extra config folder")
    parser.add_argument("--restore_dir", default=None, help="checkpoint folder to warm-start from")
    parser.add_argument("--strategy", default="default",
                        choices=("default", "mirrored", "multi_worker"),
                        help="tf.distribute strategy; multi_worker reads the hosts from the "
                             "TF_CONFIG environment variable (run the same command on each)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="float32, or mixed_bfloat16 (bf16 matrix products; recurrence, "
                             "synthesis and losses stay float32)")
    args = parser.parse_args(argv)

    configure_cli_logging()
    from ddsp_models.training.trainer import get_strategy

    # First, before any other TensorFlow work (collective ops are set up at start-up).
    strategy = get_strategy(kind=args.strategy)
    from ddsp_models.training.train_loop import run_train

    result = run_train(args.save_dir, args.gin_file, args.gin_param, args.gin_search_path,
                       strategy=strategy, restore_dir=args.restore_dir, precision=args.precision)
    logging.getLogger("ddsp_models.training.run").info(
        "finished at step %d: %s", result["step"], result["losses"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
