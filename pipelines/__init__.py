"""DVC stages and Prefect flows around `ddsp_models`: one module per stage, run as
``python -m pipelines.<stage> --params params.yaml <folder flags>`` (dvc.yaml):
`prepare`, `features`, `dataset`, `train`, `evaluate`, `sample`, `transfer`, `export`,
`report`. Stages never import each other; what they share lives in
`ddsp_models.training` (`params`, `run_config`, `flow_utils`, `features` (the feature
contract), `feature_extraction`, `melodies`, `tfds_builder`).

Importing the package gives Prefect safe defaults for this machine (a long start-up
timeout for the temporary local server, no analytics, ``PREFECT_HOME`` inside the project)
unless the environment already sets them.
"""
import os

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PREFECT_HOME", os.path.join(_PROJECT_ROOT, ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# The library's log lines (training progress: step, loss, steps/s, ETA) go to the Prefect
# run's logs (UI) as well as the terminal.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ddsp_models")
# Library use outside flows logs locally instead of failing.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
