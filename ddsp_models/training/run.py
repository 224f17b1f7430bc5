"""Command line: train a model from gin configs (the original `ddsp_run` for training).

Example (the dataset built by `dvc repro`, the solo-instrument model)::

    python -m ddsp_models.training.run --save_dir runs/solo \\
        --gin_file models/solo_instrument.gin --gin_file datasets/prepared.gin \\
        --gin_file optimization/base.gin --gin_param "train.num_steps=3000"

Configs are looked up in `--gin_search_path` folders, then in this repository's `gin/`
(configs written for the original DDSP library bind unchanged: see `config.parse_gin`).
Rerunning the same command resumes from the latest checkpoint in `--save_dir`;
`--restore_dir` with `--gin_param "Trainer.restore_keys=['decoder']"` warm-starts
selected sub-modules from another run.
"""
import argparse
import logging
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--save_dir", required=True, help="run folder: checkpoints, logs, configs")
    parser.add_argument("--gin_file", action="append", default=[], help="gin config (repeatable)")
    parser.add_argument("--gin_param", action="append", default=[], help="gin binding (repeatable)")
    parser.add_argument("--gin_search_path", action="append", default=[], help="extra config folder")
    parser.add_argument("--restore_dir", default=None, help="checkpoint folder to warm-start from")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from ddsp_models.training.train_loop import run_train

    result = run_train(args.save_dir, args.gin_file, args.gin_param, args.gin_search_path,
                       restore_dir=args.restore_dir)
    logging.getLogger("ddsp_models.training.run").info(
        "finished at step %d: %s", result["step"], result["losses"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
