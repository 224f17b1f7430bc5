"""The log set-up of every command line of the project: the pipeline stages (through
`flow_utils.parse_stage_args`), the library's tools (``python -m ddsp_models.training.run``,
``.inference``, ``.export``, ``python -m ddsp_models.compat``), the benchmarks and scripts.

One function, `configure_cli_logging`, so that every tool writes the same lines. It imports
nothing but the standard library (no Prefect, no TensorFlow).
"""
from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
NOISY_LOGGERS = ("httpx", "absl", "docket", "urllib3")  # chatty third-party loggers, kept at ERROR


def configure_cli_logging(level: int | str = logging.INFO) -> None:
    """Log lines at `level` and above (a `logging` level or its name, e.g. ``"WARNING"``;
    default INFO) on stderr, each with time, logger name and level (`LOG_FORMAT`); the
    `NOISY_LOGGERS` only at ERROR. Called once at the start of a command line's ``main``; a
    second call changes nothing (the root logger then already has its handler)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.ERROR)
