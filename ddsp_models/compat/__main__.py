"""Command line: ``python -m ddsp_models.compat convert ORIGINAL_DIR OUT_DIR``.

  convert ORIGINAL_DIR OUT_DIR   an original DDSP model folder -> a run folder of this
                                 project (operative config, checkpoint, statistics JSON)
  statistics FILE                print an original dataset_statistics.pkl as JSON
"""
import argparse
import json
import sys

from ddsp_models.cli_logging import configure_cli_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ddsp_models.compat",
                                     description="Original DDSP model folders and statistics.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="convert an original model folder into a run "
                                  "folder that this project's inference, sample and transfer "
                                  "tools read")
    convert.add_argument("original_dir", help="folder with operative_config-*.gin and ckpt-*")
    convert.add_argument("out_dir", help="new run folder (must hold no checkpoint yet)")
    statistics = commands.add_parser("statistics", help="print a dataset_statistics.pkl as JSON")
    statistics.add_argument("file")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    configure_cli_logging()
    from ddsp_models import compat

    try:
        if args.command == "convert":
            result = compat.convert(args.original_dir, args.out_dir)
        else:
            stats = compat.load_dataset_statistics(args.file)
            transform = stats.get("quantile_transform")
            if transform is not None:
                stats["quantile_transform"] = {k: (v.tolist() if hasattr(v, "tolist") else v)
                                               for k, v in transform.items()}
            result = stats
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
