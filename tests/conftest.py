"""Shared fixtures: a Prefect test server, tiny tones, audio files and data params.

Prefect reads its settings from the environment when it is first imported, so this module
points ``PREFECT_HOME`` at a fresh temporary folder (removed at the end of the session) and
turns analytics off before any test module can import prefect.
"""
import os
import shutil
import tempfile

import numpy as np
import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ddsp_models")
# Library use outside flows logs locally instead of failing.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (own database) for every test that runs a flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def _fresh_gin_config():
    """Every test starts and ends with an empty gin config (no bindings leak between tests)."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


def tone(freq_hz: float = 440.0, seconds: float = 0.5, amplitude: float = 0.5,
         sample_rate: int = 16000) -> np.ndarray:
    """A sine of ``amplitude`` (peak) at ``freq_hz``, float32 ``[seconds * sample_rate]``."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def make_tone():
    """The `tone` helper as a fixture."""
    return tone


@pytest.fixture
def write_audio():
    """``write_audio(path, audio, sample_rate=16000, **soundfile_kwargs)``: writes a file
    (parent folders created), returns its path."""
    import soundfile as sf

    def write(path, audio, sample_rate=16000, **kwargs):
        os.makedirs(os.path.dirname(str(path)), exist_ok=True)
        sf.write(str(path), audio, sample_rate, **kwargs)
        return str(path)

    return write


@pytest.fixture
def bad_audio_files():
    """``bad_audio_files(folder)``: writes the four kinds of unusable input, returns
    {kind: file name}: a corrupt wav (RIFF header, garbage body), an empty file, a text
    file named .wav, and an all-silent (zeros) wav."""
    import soundfile as sf

    def write(folder):
        folder = str(folder)
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(0)
        with open(os.path.join(folder, "corrupt.wav"), "wb") as f:
            f.write(b"RIFF\x24\x08\x00\x00WAVEfmt " + rng.bytes(64))
        open(os.path.join(folder, "empty.wav"), "wb").close()
        with open(os.path.join(folder, "notes_to_self.wav"), "w") as f:
            f.write("this is a text file, not audio\n" * 20)
        sf.write(os.path.join(folder, "silent.wav"), np.zeros(8000, np.float32), 16000)
        return {"corrupt": "corrupt.wav", "empty": "empty.wav", "text": "notes_to_self.wav",
                "silent": "silent.wav"}

    return write


@pytest.fixture
def data_params():
    """``data_params(**overrides)``: the data params (params.yaml + overrides), tiny by
    default: 0.5 s clips, CREPE tiny, 2 threads, no progress logs."""
    from ddsp_models.training.params import load_params

    def make(**overrides):
        tiny = {"clip_seconds": 0.5, "hop_seconds": 0.5, "melody_seconds": 2.0,
                "n_melodies": 2, "crepe_capacity": "tiny", "batch_size": 2,
                "max_workers": 2, "log_every_s": 0.0}
        tiny.update(overrides)
        return load_params(None, {"data": tiny})["data"]

    return make


@pytest.fixture(scope="session")
def tone_dataset(tmp_path_factory):
    """A prepared TFDS dataset (``midi`` config) of 0.5 s harmonic tones with known pitch
    (tests/pipeline_fixtures.py); returns its folder."""
    from pipeline_fixtures import write_tone_dataset

    return write_tone_dataset(tmp_path_factory.mktemp("tone-dataset"), with_midi=True)


@pytest.fixture(scope="session")
def trained_tiny_runs(tmp_path_factory, tone_dataset, prefect_harness):
    """Tiny ``ae`` then ``midiae`` (warm-started from it) trained once by the ``train``
    flow on `tone_dataset`; returns ``{'root', 'overrides', 'folders', 'results': {run:
    summary}}``."""
    from pipeline_fixtures import tiny_folders, tiny_overrides
    from pipelines.train import train_run

    root = tmp_path_factory.mktemp("tiny-runs")
    overrides, folders = tiny_overrides(), tiny_folders(root, tone_dataset)
    results = {run: train_run(None, run, overrides, folders=folders) for run in ("ae", "midiae")}
    return {"root": str(root), "overrides": overrides, "folders": folders, "results": results}
