"""The library works as a plain (non-editable) wheel: built from the sources, installed into a
fresh virtual environment, and run from a folder outside the repository, it finds its
packaged gin configs, trains a step, and takes the CREPE weights from
$DDSP_CREPE_WEIGHTS_DIR (with an error naming that variable when it is not set)."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside the fresh environment, from a folder outside the repository.
SCRIPT = textwrap.dedent('''
    import json, os, sys

    import numpy as np

    import ddsp_models
    from ddsp_models import crepe
    from ddsp_models.training import config, data
    from ddsp_models.training.train_loop import read_loss_log, run_train

    result = {"package": ddsp_models.__file__, "gin_dir": str(config.GIN_DIR),
              "config": config.find_config("papers/iclr2020/solo_instrument.gin"),
              "prefix": sys.prefix}

    # One training step of a tiny solo-instrument model from the packaged config (which
    # includes models/solo_instrument.gin, models/ae.gin and optimization/base.gin).
    seconds, n_samples, n_frames = 0.256, 4096, 64
    t = np.arange(n_samples) / 16000
    examples = []
    for f0 in (220.0, 330.0):
        audio = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)).astype(np.float32)
        level = np.full(n_frames, -20.0, np.float32)
        examples.append({"audio": audio, "f0_hz": np.full(n_frames, f0, np.float32),
                         "f0_confidence": np.ones(n_frames, np.float32), "loudness_db": level,
                         "power_db": level})
    data.write_tfrecord("train.tfrecord", examples)
    bindings = [
        "TFRecordProvider.file_pattern = 'train.tfrecord'",
        f"TFRecordProvider.example_secs = {seconds}",
        f"F0LoudnessPreprocessor.time_steps = {n_frames}",
        f"Harmonic.n_samples = {n_samples}", f"FilteredNoise.n_samples = {n_samples}",
        "Reverb.reverb_length = 1024", "RnnFcDecoder.rnn_channels = 4", "RnnFcDecoder.ch = 4",
        "RnnFcDecoder.layers_per_stack = 1", "SpectralLoss.fft_sizes = (256, 64)",
        "train.batch_size = 2", "train.num_steps = 1", "train.steps_per_summary = 1",
        "train.steps_per_save = 1"]
    run_train("run", ["papers/iclr2020/solo_instrument.gin"], bindings)
    result["losses"] = [line["losses"]["total_loss"] for line in read_loss_log("run")]
    result["operative_config"] = config.latest_operative_config("run")

    # CREPE weights: none around an installed package and this folder...
    os.environ.pop(crepe.WEIGHTS_DIR_ENV, None)
    try:
        crepe.weights_file("tiny")
        result["missing_weights_error"] = None
    except FileNotFoundError as error:
        result["missing_weights_error"] = str(error)
    # ... found through the variable.
    os.environ[crepe.WEIGHTS_DIR_ENV] = sys.argv[1]
    result["weights_file"] = crepe.weights_file("tiny")
    print("RESULT " + json.dumps(result))
''')


def run(command, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert completed.returncode == 0, (command, completed.stdout[-3000:], completed.stderr[-3000:])
    return completed


def test_a_plain_wheel_installed_elsewhere_trains_from_packaged_configs(tmp_path):
    # 1. Build the wheel from a clean copy of the sources (no stale build/ folder).
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("ddsp_models", "pipelines"):
        shutil.copytree(os.path.join(ROOT, folder), source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)])
    wheels = os.listdir(tmp_path / "dist")
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl")

    # 2. A fresh environment with the wheel installed (nothing else there yet, so pip never
    # sees the project's own editable install), then the project's dependencies made
    # visible through a .pth file (the project venv is not the system Python).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "-q", "--disable-pip-version-check", str(tmp_path / "dist" / wheels[0])])
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                        ).stdout.strip()
    with open(os.path.join(site_packages, "project-dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")

    # 3. Run from a folder outside the repository.
    work = tmp_path / "work"
    work.mkdir()
    (work / "check.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    weights = os.path.join(ROOT, ".cache", "crepe")
    completed = run([python, "check.py", weights], cwd=work, env=env)
    result = json.loads(completed.stdout.split("RESULT ", 1)[1])

    installed = os.path.join(site_packages, "ddsp_models")
    assert result["package"] == os.path.join(installed, "__init__.py")
    assert result["gin_dir"] == os.path.join(installed, "training", "gin")
    assert result["config"] == os.path.join(installed, "training", "gin", "papers", "iclr2020",
                                            "solo_instrument.gin")
    assert len(result["losses"]) == 1 and 0.0 < result["losses"][0] < 1e4
    assert result["operative_config"].endswith(os.path.join("run", "operative_config-1.gin"))
    message = result["missing_weights_error"]
    assert message is not None and "$DDSP_CREPE_WEIGHTS_DIR" in message and "tiny.pth" in message
    assert str(work / ".cache" / "crepe") in message  # it looked beside the caller, not in ROOT
    assert result["weights_file"] == os.path.join(weights, "tiny.pth")
