"""In a real browser (headless Chromium driven by Selenium): the report page and a Prefect UI
flow-run page served by a real ``prefect server start`` on 127.0.0.1.

Checks that every image has loaded (natural width > 0), every audio element has a playable
source of the right duration, the metrics table shows the numbers of ``metrics/*.json``,
and the flow run's image, markdown, table and progress artifacts render. Screenshots are
saved under the test's tmp dir.

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver``, installed by
``scripts/setup.sh``; without them these tests fail and say so.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from pipelines.report import build_report, fmt
from report_fixtures import (
    CLIPS,
    CURRENT,
    report_folders,
    report_params,
    write_pipeline_outputs,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000")


def _find(*names):
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}")
                                      else None)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (fresh profile) driven through chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: run scripts/setup.sh (it installs the project's "
                    "[test] extra) or `pip install -e '.[test]'`")
    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("Chromium and chromedriver are needed for the browser tests: run "
                    "scripts/setup.sh (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    options.binary_location = chromium
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script: str, timeout: float = 60.0, what: str = ""):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or script}")
        time.sleep(0.5)


def full_page_screenshot(driver, path) -> str:
    """The whole page (beyond the window) as a PNG file."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    return str(path)


IMAGES_JS = ("Array.from(document.images).map(i => ({src: i.src.slice(0, 30), "
             "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))")


def test_report_page_loads_every_image_and_audio_and_shows_the_metrics(tmp_path, browser):
    write_pipeline_outputs(tmp_path / "repo")
    cwd = os.getcwd()
    os.chdir(tmp_path / "repo")
    try:
        summary = build_report(report_params(), "reports", report_folders())
    finally:
        os.chdir(cwd)
    page = tmp_path / "repo" / summary["path"]
    browser.get(page.as_uri())
    wait_for(browser, "document.readyState === 'complete'", what="the page")
    wait_for(browser, "Array.from(document.querySelectorAll('audio')).every("
                      "a => a.readyState >= 1 || a.error)", what="audio metadata")
    images = browser.execute_script("return " + IMAGES_JS)
    assert len(images) == 4
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    audio = browser.execute_script(
        "return Array.from(document.querySelectorAll('audio')).map(a => ({"
        "error: a.error && a.error.code, ready: a.readyState, duration: a.duration, "
        "seconds: parseFloat(a.dataset.seconds), file: a.dataset.file, "
        "playable: a.canPlayType('audio/ogg; codecs=\"vorbis\"')}))")
    assert len(audio) == 4
    for clip in audio:
        assert clip["error"] is None and clip["ready"] >= 1, clip
        assert clip["playable"] in ("probably", "maybe"), clip
        expected = next(s for p, _, s in CLIPS.values() if p == clip["file"])
        assert abs(clip["duration"] - expected) < 0.02, clip
    # It really plays: a second of playback advances the clock (muted, headless).
    played = browser.execute_async_script(
        "const done = arguments[0]; const a = document.querySelector('audio'); a.muted = true;"
        "a.play().then(() => setTimeout(() => { a.pause(); done(a.currentTime); }, 600),"
        " e => done('play failed: ' + e));")
    assert isinstance(played, (int, float)) and played > 0.1, played
    # The metrics table shows the numbers of metrics/ae.json.
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#metrics-table td')).map(td => "
        "[td.dataset.metric, td.innerText.trim()])")
    shown = dict(cells)
    with open(tmp_path / "repo" / "metrics" / "ae.json") as f:
        stored = json.load(f)
    assert stored == CURRENT
    for key in ("step", "n_examples", "spectral_loss", "loudness_l1_db", "f0_l1_semitones",
                "f0_outlier_ratio", "note_f1"):
        assert shown[key] == fmt(stored[key]), (key, shown[key])
    diff = browser.execute_script("return document.querySelector('#metrics-diff').innerText")
    assert "spectral_loss\t6\t5.123\t-0.8765" in diff
    shot = full_page_screenshot(browser, tmp_path / "report.png")
    assert os.path.getsize(shot) > 10_000


# ------------------------------------------------------------------------- Prefect UI
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """``prefect server start`` on a free 127.0.0.1 port with its own PREFECT_HOME; yields
    its URL; killed (with its process group) at the end."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_API_URL=f"{url}/api")  # the UI's API (default: port 4200)
    log = open(home / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not _healthy(f"{url}/api/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError("prefect server did not start:\n"
                                     + (home / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
        log.close()


TRAIN_SCRIPT = """
import sys
from pipeline_fixtures import tiny_folders, tiny_overrides, write_tone_dataset
from pipelines.train import train_run

root = sys.argv[1]
folders = tiny_folders(root, write_tone_dataset(root))
overrides = tiny_overrides()
overrides["train"]["ae"]["steps"] = 3  # one chunk
print("FLOW_RUN_ID=" + train_run(None, "ae", overrides, folders=folders)["flow_run_id"])
"""

ARTIFACTS = ("ae-training-progress", "ae-losses", "ae-loss-curve", "ae-spectrogram",
             "ae-training")


def test_prefect_ui_shows_a_training_runs_pictures_table_and_progress(tmp_path, browser,
                                                                     prefect_server):
    """A tiny `ae` run of the real train flow (3 steps, one chunk) against the server,
    then its flow-run page: the artifact cards, and on their pages the pictures (loaded,
    800 px wide), the loss table and the finished progress bar."""
    from selenium.webdriver.common.by import By

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=f"{prefect_server}/api", PREFECT_HOME=str(tmp_path / "client"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
               DDSP_CREPE_WEIGHTS_DIR=os.path.join(ROOT, ".cache", "crepe"))
    result = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path / "run")],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    flow_run_id = result.stdout.split("FLOW_RUN_ID=")[1].split()[0]

    # The flow wrote its artifacts (server side) before any page is looked at.
    request = urllib.request.Request(
        f"{prefect_server}/api/artifacts/filter", method="POST",
        data=json.dumps({"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        stored = {a["key"] for a in json.load(response)}
    assert set(ARTIFACTS) <= stored, f"artifacts on the server: {sorted(stored)}"
    links_js = ("(() => { const l = Array.from(document.querySelectorAll("
                f"'a[href*=\"/artifacts/artifact/\"]')).map(a => [a.href, a.innerText]);"
                f" return l.length >= {len(ARTIFACTS)} ? l : null; }})()")
    # The artifacts tab queries the server once when opened: on a loaded machine that
    # answer can come back incomplete, so the page is opened afresh a few times.
    for attempt in range(4):
        browser.get(f"{prefect_server}/runs/flow-run/{flow_run_id}")
        wait_for(browser, "document.body.innerText.includes('train-ae-3steps')", 90,
                 "the flow run page")
        tab = next(e for e in browser.find_elements(By.CSS_SELECTOR, "li.p-tab")
                   if e.text.strip() == "Artifacts")
        tab.click()
        try:
            links = wait_for(browser, links_js, 60, "the artifact cards")
            break
        except AssertionError:
            full_page_screenshot(browser, tmp_path / f"flow-run-artifacts-attempt-{attempt}.png")
            if attempt == 3:
                raise
    full_page_screenshot(browser, tmp_path / "flow-run-artifacts.png")
    by_key = {}
    for href, text in links:
        key = text.split("\n")[1].strip() if "\n" in text else ""
        if key in ARTIFACTS:
            by_key[key] = href
    assert set(by_key) == set(ARTIFACTS), links

    # The image artifacts and the markdown artifact show the pictures themselves.
    for key, n_pictures in (("ae-loss-curve", 1), ("ae-spectrogram", 1), ("ae-training", 2)):
        browser.get(by_key[key])
        images = wait_for(
            browser, f"(() => {{ const i = {IMAGES_JS}.filter(x => x.src.startsWith("
            f"'data:image/')); return i.length >= {n_pictures} && i.every(x => x.complete) "
            "? i : null; })()", 60, f"the {key} picture")
        assert len(images) == n_pictures, images
        assert all(i["width"] == 800 and i["height"] in (450, 500) for i in images), images
        full_page_screenshot(browser, tmp_path / f"{key}.png")
    browser.get(by_key["ae-training-progress"])
    wait_for(browser, "document.body.innerText.includes('Progress: 100%')", 60,
             "the finished progress bar")
    assert "ae: step 3 of 3" in browser.execute_script("return document.body.innerText")
    browser.get(by_key["ae-losses"])
    wait_for(browser, "document.body.innerText.includes('total_loss')", 60, "the loss table")
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('tbody tr')).map(r => "
        "Array.from(r.querySelectorAll('td')).map(td => td.innerText.trim()))")
    with open(tmp_path / "run" / "runs" / "ae" / "losses.jsonl") as f:
        logged = [json.loads(line) for line in f]
    assert [r[0] for r in rows] == [str(r["step"]) for r in logged] == list("123"), rows
    full_page_screenshot(browser, tmp_path / "ae-losses.png")
