"""DVC stage ``dataset``: builds the TFDS dataset ``ddsp_prepared`` from the features.

The config is ``midi`` when every feature file carries the MIDI note features, else
``audio``. Feature files that cannot be read, lack a feature, have the wrong length (not
``clip_seconds`` of ``meta.json``) or hold NaN/inf are skipped and listed with the reason
in ``<out-dir>/report.json``; the rest are built. The output folder is emptied first, then
holds ``ddsp_prepared/<config>/<version>/``; read it offline with
``tfds.load('ddsp_prepared/<config>', data_dir=<out-dir>, download=False)`` (after importing
`ddsp_models.training.tfds_builder`), `tfds.builder_from_directory`, or
`ddsp_models.training.data.PreparedTfdsProvider`.

CLI: ``python -m pipelines.dataset --params params.yaml --features-dir data/features
--out-dir data/tfds [--config midi|audio]`` (the params file is only checked: this stage
has no knobs).
"""
import glob
import json
import logging
import os
import shutil
import sys

import numpy as np

from ddsp_models.training import flow_utils
from ddsp_models.training.features import MIDI_FEATURES
from ddsp_models.training.params import load_params
from ddsp_models.training.tfds_builder import DdspPrepared

log = logging.getLogger("pipelines.dataset")
REPORT = "report.json"  # examples per split and the feature files skipped (file, reason)


def choose_config(features_dir: str) -> str:
    """``'midi'`` if every ``<split>/*.npz`` holds the MIDI features, else ``'audio'``."""
    files = glob.glob(os.path.join(features_dir, "*", "*.npz"))
    if not files:
        raise ValueError(f"features folder {features_dir!r} holds no <split>/*.npz files")
    readable = 0
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as npz:
                names = set(npz.files)
        except Exception:  # noqa: BLE001 - unreadable: skipped and reported by the build
            continue
        readable += 1
        if not set(MIDI_FEATURES) <= names:
            return "audio"
    if not readable:
        raise ValueError(f"features folder {features_dir!r}: none of its {len(files)} .npz "
                         "files can be read; rerun the features stage")
    return "midi"


def build_dataset(features_dir: str, out_dir: str, config: str | None = None):
    """Builds ``ddsp_prepared/<config>`` into ``out_dir`` (emptied first); returns the
    builder."""
    import tensorflow_datasets as tfds

    config = config or choose_config(features_dir)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    builder = DdspPrepared(config=config, data_dir=out_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.path.abspath(features_dir)))
    shutil.rmtree(os.path.join(out_dir, "downloads"), ignore_errors=True)
    for bad in builder.skipped:
        log.warning("skipped %s: %s", bad["file"], bad["error"])
    splits = {name: int(split.num_examples) for name, split in builder.info.splits.items()}
    with open(os.path.join(out_dir, REPORT), "w", encoding="utf-8") as f:
        json.dump({"config": config, "examples_per_split": splits,
                   "skipped_files": [{"file": os.path.relpath(b["file"], features_dir),
                                      "error": b["error"]} for b in builder.skipped]},
                  f, indent=1)
    return builder


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--features-dir": "the features stage's output",
        "--out-dir": "output folder of the TFDS dataset (emptied first)"})
    parser.add_argument("--config", default=None, choices=("midi", "audio"),
                        help="default: midi when every clip has MIDI features, else audio")
    args = flow_utils.parse_stage_args(parser, argv)
    load_params(args.params)  # ValueError naming the key path and the allowed values
    builder = build_dataset(args.features_dir, args.out_dir, args.config)
    splits = {name: split.num_examples for name, split in builder.info.splits.items()}
    log.info("built %s in %s: %s", builder.info.full_name, args.out_dir, splits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
