"""What the pipeline stages share: Prefect run names and tags, artifacts, a logger that
works inside and outside a flow run, and the stages' command lines (whose log set-up is
`ddsp_models.cli_logging`, shared with every other command line).

Artifacts the UI shows without opening files: tables (`publish_table`), images
(`publish_image`: the picture itself as a ``data:image/png;base64,...`` URL, JPEG when the
PNG is large, which the UI displays; the ``file://`` links of local files cannot be opened
from it), markdown with such images embedded (`markdown_image`), and progress bars
(`ProgressBar`).

Flows run against ``PREFECT_API_URL`` when it is set (e.g. a ``prefect server start`` on
127.0.0.1, see README), otherwise against a temporary local API that Prefect starts for
the process.

Every stage's command line has one shape (`stage_parser`, `parse_stage_args`):
``--params params.yaml``, then its inputs and outputs as folder flags (``--data-dir``,
``--runs-dir``, ``--out-dir``, ...), then its own options (``--run``).
"""
import argparse
import base64
import hashlib
import json
import logging
import os
import re

from ddsp_models.cli_logging import configure_cli_logging


def params_digest(params: dict) -> str:
    """8 hex digits identifying a params dict (its canonical JSON)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def run_tags(kind: str, run: str, params: dict, **extra) -> list[str]:
    """Tags of a flow run: its kind, run, params digest and given ``key=value`` pairs."""
    tags = [kind, f"run:{run}", f"params:{params_digest(params)}"]
    tags += [f"{key}:{value}" for key, value in extra.items()]
    return tags


def run_tagged(flow, kind: str, label: str, params: dict, parameters: dict,
               name_detail: str = "", extra_tags: dict | None = None):
    """Runs ``flow(**parameters)`` as a flow run named
    ``<kind>-<label><name_detail>-<params digest>`` and tagged with `run_tags` (`label`
    says which runs, e.g. ``ae`` or ``ae-midiae``)."""
    from prefect import tags

    name = f"{kind}-{label}{name_detail}-{params_digest(params)}"
    with tags(*run_tags(kind, label, params, **(extra_tags or {}))):
        return flow.with_options(flow_run_name=name)(**parameters)


def run_flow_over_runs(make_flow, kind: str, params_path: str | None, runs: list | None,
                       overrides: dict | None, folders) -> dict:
    """Runs a flow taking ``(params_path, runs, overrides, folders)`` (evaluate, sample,
    transfer, experiment) over `runs` (default: the params section ``<kind>.runs``, else
    every run), named and tagged by `run_tagged`. `folders`: a `run_config.Folders` or a
    mapping of its fields (the flow gets a mapping)."""
    import dataclasses

    from ddsp_models.training.params import RUNS, load_params
    from ddsp_models.training.run_config import Folders

    params = load_params(params_path, overrides)
    runs = list(runs or params.get(kind, {}).get("runs") or RUNS)
    return run_tagged(make_flow(), kind, "-".join(runs), params,
                      {"params_path": params_path, "runs": runs, "overrides": overrides,
                       "folders": dataclasses.asdict(Folders.of(folders))})


# ---------------------------------------------------------------------------------------
# The stages' command lines.
# ---------------------------------------------------------------------------------------
def stage_parser(description: str, folders: dict | None = None,
                 runs: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of a stage: ``--params`` (default ``params.yaml``), then one
    required flag per entry of `folders` (``{'--data-dir': 'what it holds', ...}``), then,
    with `runs` (the stage's kind), a repeatable ``--run`` (default: ``<runs>.runs`` of
    the params)."""
    from ddsp_models.training.params import RUNS

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml",
                        help="params file, merged over the repository's params.yaml")
    for flag, what in (folders or {}).items():
        parser.add_argument(flag, required=True, help=what)
    if runs is not None:
        parser.add_argument("--run", action="append", choices=RUNS,
                            help=f"run to {runs} (repeatable; default: {runs}.runs)")
    return parser


def parse_stage_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses a stage's command line, then sets up its logging (`configure_cli_logging`)."""
    args = parser.parse_args(argv)
    configure_cli_logging()
    return args


ERRORS_FILE = "errors.json"


def error_entry(run: str, error: BaseException) -> dict:
    """What a failed run's record holds: its name, the cause and where it was raised."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)[-3:]
    return {"run": run, "error": f"{type(error).__name__}: {error}",
            "where": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]}


def write_errors(folder: str, failed: dict) -> str | None:
    """``<folder>/errors.json`` listing the failed runs (removed when none failed, so a
    stale one never outlives the problem). Returns its path or None."""
    path = os.path.join(folder, ERRORS_FILE)
    if not failed:
        if os.path.exists(path):
            os.remove(path)
        return None
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"failed": list(failed.values())}, f, indent=1)
    return path


def errors_markdown(failed: dict) -> str:
    """A markdown section naming each failed run and its cause ('' when none failed)."""
    if not failed:
        return ""
    return "\n**Failed runs**\n\n" + "".join(
        f"- `{run}`: {entry['error']}\n" for run, entry in failed.items())


def get_logger(name: str) -> logging.Logger:
    """Prefect's run logger inside a flow or task run (shown in the UI), else a module
    logger."""
    try:
        from prefect import get_run_logger
        from prefect.exceptions import MissingContextError

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass
    return logging.getLogger(name)


def artifact_key(*parts: str) -> str:
    """A valid Prefect artifact key (lowercase letters, digits, dashes)."""
    key = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9-]+", "-", key).strip("-")


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in (None outside a run)."""
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (artifacts need one)."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_markdown(key: str, markdown: str, description: str = "") -> None:
    """A markdown artifact on the current flow run (skipped outside a run)."""
    from prefect.artifacts import create_markdown_artifact

    if not in_prefect_run():
        return
    create_markdown_artifact(markdown=markdown, key=artifact_key(key), description=description)


def publish_table(key: str, rows: list[dict], description: str = "") -> None:
    """A table artifact (one row per dict; NaN shows as an empty cell) on the current
    flow run (skipped outside a run or without rows)."""
    from prefect.artifacts import create_table_artifact

    if not in_prefect_run() or not rows:
        return
    create_table_artifact(table=rows, key=artifact_key(key), description=description)


MAX_PNG_BYTES = 150_000  # larger pictures (spectrograms: ~350 kB) go in as JPEG


def png_data_url(png, max_png_bytes: int | None = MAX_PNG_BYTES) -> str:
    """A ``data:`` URL of a PNG given as bytes or a file path: ``data:image/png;base64,...``,
    or, when the PNG is larger than `max_png_bytes` (None: never), the picture re-encoded
    as JPEG (quality 85, ``data:image/jpeg;base64,...``): a 350 kB spectrogram PNG becomes
    about 80 kB, which keeps artifacts and pages light."""
    if not isinstance(png, (bytes, bytearray)):
        with open(png, "rb") as f:
            png = f.read()
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("png_data_url: not a PNG (bad signature)")
    kind = "png"
    if max_png_bytes is not None and len(png) > max_png_bytes:
        import io

        from PIL import Image  # a matplotlib dependency

        buffer = io.BytesIO()
        with Image.open(io.BytesIO(png)) as image:
            image.convert("RGB").save(buffer, "JPEG", quality=85)
        png, kind = buffer.getvalue(), "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(png).decode("ascii")


def publish_image(key: str, png, description: str = "") -> None:
    """An image artifact showing a PNG (bytes or path) in the UI, carried inside the
    artifact as a data URL (skipped outside a run)."""
    from prefect.artifacts import create_image_artifact

    if not in_prefect_run():
        return
    create_image_artifact(image_url=png_data_url(png), key=artifact_key(key),
                          description=description)


def markdown_image(alt: str, png) -> str:
    """Markdown that shows a PNG (bytes or path) inline: ``![alt](data:image/png;base64,...)``."""
    return f"![{alt}]({png_data_url(png)})"


class ProgressBar:
    """A progress artifact (0-100 %) that advances while the flow runs; does nothing
    outside a run.

    ``bar = ProgressBar('ae-training-progress', 'ae: steps'); bar.update(40.0, 'step 320')``
    """

    def __init__(self, key: str, description: str = "", progress: float = 0.0):
        from prefect.artifacts import create_progress_artifact

        self.artifact_id = None
        if in_prefect_run():
            self.artifact_id = create_progress_artifact(
                progress=_percent(progress), key=artifact_key(key), description=description)

    def update(self, progress: float, description: str | None = None) -> None:
        """Moves the bar to `progress` percent (clipped to 0-100)."""
        from prefect.artifacts import update_progress_artifact

        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, _percent(progress), description=description)


def _percent(progress: float) -> float:
    return float(min(100.0, max(0.0, progress)))


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-style table; floats with 4 significant digits."""
    if not rows:
        return "_(no rows)_\n"
    columns = columns or list(rows[0])

    def cell(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def file_links(paths: list[str], title: str) -> str:
    """A markdown list of local files by absolute path (as text: a browser does not open
    ``file://`` links from the UI's http page; images go in as `markdown_image`)."""
    lines = [f"**{title}**", ""]
    lines += [f"- `{os.path.abspath(p)}`" for p in paths]
    return "\n".join(lines) + "\n"


def library_logs_at_info() -> None:
    """Lets the library's INFO lines (training progress) through to the handlers Prefect
    attaches (``PREFECT_LOGGING_EXTRA_LOGGERS=ddsp_models``, set by ``pipelines``), even
    when the root logger is at WARNING."""
    logger = logging.getLogger("ddsp_models")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def untagged_tasks():
    """A context in which task runs carry no tags: the flow run keeps its tags, but each
    tagged task run would first ask the API for tag concurrency slots (a round trip the
    busy temporary server sometimes answers 503, costing a retry of about 2 s)."""
    from prefect.context import TagsContext

    return TagsContext(current_tags=set())
