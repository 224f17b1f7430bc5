"""DVC stage ``report``: one page to see and hear the whole pipeline run.

``<out-dir>/index.html`` is a single self-contained file that works offline (no network, no
server, no JavaScript library): every run's metrics side by side and against the previous
commit's (``git show HEAD:<metrics-dir>/<run>.json``, like ``dvc metrics diff``), the loss
curves, the spectrograms and audio players for the original clips, their resyntheses and
the timbre transfers, and the newest validation f0 / piano-roll / sinusoid plots of each
run's TensorBoard summaries. Folders written by later stages are picked up when present:
``<transfers-dir>/<run>/`` and ``<exported-dir>/<run>/`` (their audio, PNGs and JSON
files).

Everything is embedded as ``data:`` URLs, so the page can be copied, mailed or archived as
one file. To keep it light, pictures over 150 kB (the spectrograms, ~350 kB as PNG) go in
as JPEG (~80 kB), and audio is re-encoded to Ogg Vorbis (about a tenth of a 16-bit wav; a
4 s clip is 10-40 kB); clips longer than ``report.max_audio_seconds`` are cut; the wav
files of the sample stage stay the reference. A file that cannot be read is listed under
"Problems" on the page and in the log; the rest of the page is still written.

CLI: ``python -m pipelines.report --params params.yaml --metrics-dir metrics --plots-dir plots
--runs-dir runs --samples-dir samples --transfers-dir transfers --exported-dir exported
--out-dir reports``.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import math
import os
import subprocess
import sys

from ddsp_models.training import flow_utils, run_config
from ddsp_models.training.params import RUNS, load_params

logger = logging.getLogger(__name__)

# Folders written by the later stages, shown when they exist.
OPTIONAL_FOLDERS = ("transfers_dir", "exported_dir")
INFO_KEYS = ("run", "step", "split", "n_examples")
HIGHER_IS_BETTER = ("f1", "precision", "recall", "accuracy")
MAX_JSON_CHARS = 4000


# ---------------------------------------------------------------------------- metrics
def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        value = json.load(f)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def previous_metrics(path: str) -> tuple[dict | None, str]:
    """The committed version of a metrics file: ``(record, '')`` from ``git show
    HEAD:./<path>``, or ``(None, why not)`` outside a git repository, before the first
    commit, or when the file is not committed."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=folder,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"no previous: git unavailable ({error})"
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None, "no previous: not a git repository"
    shown = subprocess.run(["git", "show", f"HEAD:./{os.path.basename(path)}"], cwd=folder,
                           capture_output=True, text=True, timeout=30)
    if shown.returncode != 0:
        return None, "no previous: not in the last commit"
    try:
        value = json.loads(shown.stdout)
    except json.JSONDecodeError:
        return None, "no previous: the committed file is not JSON"
    return (value, "") if isinstance(value, dict) else (None, "no previous: not a JSON object")


def metric_names(records: list[dict]) -> list[str]:
    """Numeric (or null) metric keys of the records, in first-seen order, without the
    identification keys."""
    names = []
    for record in records:
        for key, value in record.items():
            if key in INFO_KEYS or key in names:
                continue
            if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                names.append(key)
    return names


def fmt(value) -> str:
    """How a metric value is shown: 4 significant digits, '-' for null / NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def change(name: str, old, new) -> tuple[str, str]:
    """``(text, css class)`` of a metric's change: the difference, 'better'/'worse' by the
    metric's direction (F1, precision, recall: higher is better; losses: lower)."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (old, new)):
        return "", ""
    delta = new - old
    if delta == 0:
        return "0", "same"
    if name in INFO_KEYS:  # the step or the number of clips: neither better nor worse
        return f"{delta:+.4g}", "info"
    higher = any(word in name for word in HIGHER_IS_BETTER)
    better = (delta > 0) == higher
    return f"{delta:+.4g}", "better" if better else "worse"


# ---------------------------------------------------------------------------- media
def png_data_url(path: str) -> str:
    """The PNG as a data URL (JPEG when large: `flow_utils.png_data_url`)."""
    try:
        return flow_utils.png_data_url(path)
    except ValueError:
        raise ValueError(f"{path}: not a PNG file") from None


def audio_data_url(path: str, max_seconds: float) -> tuple[str, float, bool]:
    """``(data URL of an Ogg Vorbis encoding, seconds, cut)`` of an audio file (mono mix;
    cut to `max_seconds`)."""
    import numpy as np
    import soundfile as sf

    from ddsp_models.audio_io import read_wav

    audio, rate = read_wav(path)
    if audio.shape[0] == 0:
        raise ValueError(f"{path}: no samples")
    audio = audio.reshape(audio.shape[0], -1).mean(axis=1)
    cut = audio.shape[0] > max_seconds * rate
    if cut:
        audio = audio[:int(max_seconds * rate)]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), rate, format="OGG", subtype="VORBIS")
    url = "data:audio/ogg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return url, audio.shape[0] / rate, cut


class Page:
    """The HTML being built, and the problems met on the way."""

    def __init__(self, max_audio_seconds: float):
        self.parts: list[str] = []
        self.problems: list[str] = []
        self.n_audio = self.n_images = 0
        self.max_audio_seconds = max_audio_seconds

    def add(self, text: str) -> None:
        self.parts.append(text)

    def problem(self, message: str) -> None:
        logger.warning("report: %s", message)
        self.problems.append(message)

    def image(self, path, alt: str, png: bytes | None = None) -> None:
        """A picture from a PNG file (or from `png` bytes, `path` then only names it)."""
        try:
            url = png_data_url(path if png is None else png)
        except (OSError, ValueError) as error:
            self.problem(f"image {path}: {error}")
            return
        self.n_images += 1
        self.add(f'<figure><img src="{url}" alt="{html.escape(alt)}" '
                 f'data-file="{html.escape(path)}"><figcaption>{html.escape(alt)}'
                 "</figcaption></figure>")

    def audio(self, path: str, label: str) -> None:
        try:
            url, seconds, cut = audio_data_url(path, self.max_audio_seconds)
        except Exception as error:  # noqa: BLE001 - soundfile raises several types
            self.problem(f"audio {path}: {error}")
            return
        self.n_audio += 1
        note = f" (first {seconds:.0f} s)" if cut else ""
        self.add(f'<div class="clip"><span>{html.escape(label)}{note}</span>'
                 f'<audio controls preload="metadata" src="{url}" data-seconds="{seconds:.6f}" '
                 f'data-file="{html.escape(path)}"></audio></div>')


# ---------------------------------------------------------------------------- sections
def _metrics_sections(page: Page, runs: list[str], metrics_dir: str) -> dict:
    current, previous = {}, {}
    for run in runs:
        path = os.path.join(metrics_dir, f"{run}.json")
        if not os.path.isfile(path):
            page.problem(f"metrics {path}: missing (run the evaluate stage)")
            continue
        try:
            current[run] = read_json(path)
        except (OSError, ValueError) as error:
            page.problem(f"metrics {path}: {error}")
            continue
        previous[run] = previous_metrics(path)
    names = metric_names(list(current.values()))
    page.add('<h2 id="metrics">Metrics</h2>')
    if not current:
        page.add("<p>No metrics yet.</p>")
        return {"runs": [], "metrics": names}
    head = "".join(f"<th>{html.escape(run)}</th>" for run in current)
    page.add('<table id="metrics-table"><thead><tr><th>metric</th>' + head + "</tr></thead><tbody>")
    for key in ("step", "n_examples", *names):
        cells = []
        for run, record in current.items():
            value = record.get(key)
            cells.append(f'<td data-run="{html.escape(run)}" data-metric="{html.escape(key)}" '
                         f'data-value="{html.escape(json.dumps(value))}">{fmt(value)}</td>')
        page.add(f"<tr><th>{html.escape(key)}</th>{''.join(cells)}</tr>")
    page.add("</tbody></table>")
    page.add('<h3>Against the previous commit</h3><table id="metrics-diff"><thead><tr>'
             "<th>run</th><th>metric</th><th>HEAD</th><th>workspace</th><th>change</th>"
             "</tr></thead><tbody>")
    for run, record in current.items():
        old, why = previous[run]
        if old is None:
            page.add(f'<tr><td>{html.escape(run)}</td><td colspan="4" class="none">'
                     f"{html.escape(why)}</td></tr>")
            continue
        for key in ("step", *names):
            text, css = change(key, old.get(key), record.get(key))
            page.add(f'<tr><td>{html.escape(run)}</td><td class="name">{html.escape(key)}</td>'
                     f"<td>{fmt(old.get(key))}</td><td>{fmt(record.get(key))}</td>"
                     f'<td class="{css}">{html.escape(text)}</td></tr>')
    page.add("</tbody></table>")
    return {"runs": list(current), "metrics": names}


def _samples_section(page: Page, run: str, samples_dir: str) -> int:
    path = os.path.join(samples_dir, run, "samples.json")
    if not os.path.isfile(path):
        page.problem(f"samples {path}: missing (run the sample stage)")
        return 0
    try:
        record = read_json(path)
    except (OSError, ValueError) as error:
        page.problem(f"samples {path}: {error}")
        return 0
    n = 0
    for clip in record.get("resynthesis") or []:
        page.add(f"<h4>{html.escape(str(clip.get('clip', '?')))}</h4>")
        for key, label in (("original", "original"), ("resynth", f"{run} resynthesis")):
            if clip.get(key):
                page.audio(clip[key], label)
        if clip.get("spectrogram"):
            page.image(clip["spectrogram"], f"{run}: {clip.get('clip')} original vs resynthesis")
        n += 1
    transfer = record.get("transfer")
    if transfer:
        shifts = (f"{transfer.get('octave_shift', 0):+d} octaves, "
                  f"{transfer.get('loudness_shift_db', 0.0):+.1f} dB")
        page.add(f"<h4>Timbre transfer ({html.escape(shifts)})</h4>")
        page.audio(transfer["source"], "source")
        page.audio(transfer["transfer"], f"{run} driven by it")
        if transfer.get("spectrogram"):
            page.image(transfer["spectrogram"], f"{run}: timbre transfer")
    elif record.get("transfer_skipped"):
        page.add(f'<p class="none">{html.escape(record["transfer_skipped"])}</p>')
    return n


VALIDATION_PLOTS = (("f0/1", "f0: target vs resynthesis"),
                    ("pianoroll/1", "notes: ground truth vs predicted"),
                    ("sinusoids/1", "sinusoids vs harmonics"))


def _validation_section(page: Page, run: str, run_dir: str) -> None:
    """The newest f0 / piano-roll / sinusoid plots of the first validation clip, from the
    run's TensorBoard summaries (``<run_dir>/summaries/valid``), when there are any."""
    log_dir = os.path.join(run_dir, "summaries", "valid")
    if not os.path.isdir(log_dir):
        return
    from ddsp_models.training.summaries import latest_images

    try:
        images = latest_images(log_dir)
    except Exception as error:  # noqa: BLE001 - a damaged event file must not stop the page
        page.problem(f"validation summaries {log_dir}: {error}")
        return
    shown = [(tag, label) for tag, label in VALIDATION_PLOTS if tag in images]
    if not shown:
        return
    page.add(f"<h3>Validation clip 1, step {images[shown[0][0]][0]}</h3>")
    for tag, label in shown:
        page.image(f"{log_dir}:{tag}", f"{run}: {label}", png=images[tag][1])


def _optional_folder(page: Page, folder: str, run: str) -> bool:
    """Audio, PNG and JSON files of ``<folder>/<run>/`` (recursively), when it exists."""
    root = os.path.join(folder, run)
    if not os.path.isdir(root):
        return False
    page.add(f"<h3>{html.escape(folder)}/{html.escape(run)}</h3>")
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            label = os.path.relpath(path, folder)
            ext = os.path.splitext(name)[1].lower()
            if ext in (".wav", ".flac", ".ogg", ".aiff", ".aif"):
                page.audio(path, label)
            elif ext == ".png":
                page.image(path, label)
            elif ext == ".json":
                try:
                    with open(path, encoding="utf-8") as f:
                        text = json.dumps(json.load(f), indent=1)
                except (OSError, ValueError) as error:
                    page.problem(f"{path}: {error}")
                    continue
                if len(text) > MAX_JSON_CHARS:
                    text = text[:MAX_JSON_CHARS] + "\n..."
                page.add(f"<details><summary>{html.escape(label)}</summary><pre>"
                         f"{html.escape(text)}</pre></details>")
    return True


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th:first-child,td:first-child,td.name{text-align:left}thead th{background:#eee}
.better{color:#0a7d22}.worse{color:#b3261e}.none{color:#777;text-align:left}
figure{margin:.5em 0}img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}.clip{display:flex;align-items:center;gap:1em;margin:.2em 0}
.clip span{min-width:14em}.problems{background:#fff4e5;border:1px solid #f0b429;padding:.5em 1em}
nav a{margin-right:1em}#metrics-diff th:nth-child(2){text-align:left}
"""


def _git_head() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "no git"
    return out.stdout.strip() if out.returncode == 0 else "no commit"


def build_report(params: dict, out_dir: str, folders, runs: list | None = None) -> dict:
    """Writes ``<out_dir>/index.html``; returns ``{'path', 'bytes', 'runs', 'metrics',
    'n_audio', 'n_images', 'problems'}``. `folders`: a `run_config.Folders` (or mapping)
    with ``metrics_dir``, ``samples_dir``, ``plots_dir``, ``runs_dir`` and optionally
    ``transfers_dir``, ``exported_dir``."""
    folders = run_config.Folders.of(folders)
    runs = list(runs or dict.fromkeys(list(params["evaluate"]["runs"])
                                      + list(params["sample"]["runs"])) or RUNS)
    metrics_dir = folders.get("metrics_dir")
    samples_dir = folders.get("samples_dir")
    plots_dir = folders.get("plots_dir")
    runs_dir = folders.get("runs_dir")
    page = Page(float(params["report"]["max_audio_seconds"]))
    nav = "".join(f'<a href="#run-{html.escape(r)}">{html.escape(r)}</a>' for r in runs)
    page.add(f"<h1>ddsp-pipelines report</h1><p>commit {html.escape(_git_head())}, written "
             f"{datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}</p>"
             f'<nav><a href="#metrics">metrics</a>{nav}</nav>')
    table = _metrics_sections(page, runs, metrics_dir)
    for run in runs:
        page.add(f'<section id="run-{html.escape(run)}"><h2>{html.escape(run)}</h2>')
        curve = os.path.join(plots_dir, run, "losses.png")
        if os.path.isfile(curve):
            page.add("<h3>Training losses</h3>")
            page.image(curve, f"{run}: training losses")
        else:
            page.problem(f"loss curve {curve}: missing (run the train_{run} stage)")
        _validation_section(page, run, run_config.run_dir(runs_dir, run))
        page.add("<h3>Samples</h3>")
        _samples_section(page, run, samples_dir)
        for name in OPTIONAL_FOLDERS:
            if getattr(folders, name) is not None:
                _optional_folder(page, getattr(folders, name), run)
        page.add("</section>")
    if page.problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in page.problems)
        page.parts.insert(1, f'<div class="problems" id="problems"><b>Problems</b><ul>{items}'
                             "</ul></div>")
    text = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>ddsp-pipelines report</title><style>" + STYLE + "</style></head><body>\n"
            + "\n".join(page.parts) + "\n</body></html>\n")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "index.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    size = os.path.getsize(path)
    logger.info("report: %s (%.1f MB, %d audio players, %d images, %d problems)", path,
                size / 1e6, page.n_audio, page.n_images, len(page.problems))
    return {"path": path, "bytes": size, "runs": table["runs"], "metrics": table["metrics"],
            "n_audio": page.n_audio, "n_images": page.n_images, "problems": page.problems}


def main(argv=None) -> int:
    parser = flow_utils.stage_parser(__doc__.split("\n")[0], {
        "--metrics-dir": "the evaluate stage's metrics",
        "--plots-dir": "the train stages' loss curves, <plots-dir>/<run>/",
        "--runs-dir": "the trained runs (their TensorBoard validation plots)",
        "--samples-dir": "the sample stage's output",
        "--transfers-dir": "the transfer stage's output (shown when present)",
        "--exported-dir": "the export stage's output (shown when present)",
        "--out-dir": "output folder of index.html"})
    args = flow_utils.parse_stage_args(parser, argv)
    params = load_params(args.params)
    summary = build_report(params, args.out_dir, run_config.Folders(
        metrics_dir=args.metrics_dir, plots_dir=args.plots_dir, runs_dir=args.runs_dir,
        samples_dir=args.samples_dir, transfers_dir=args.transfers_dir,
        exported_dir=args.exported_dir))
    print(json.dumps({k: summary[k] for k in ("path", "bytes", "n_audio", "n_images",
                                              "problems")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
