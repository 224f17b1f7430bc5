"""scripts/setup.sh fails loudly when an install fails (nothing masked by `|| true`)."""
import os
import shutil
import stat
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


@pytest.mark.skipif(shutil.which("ldconfig") is None, reason="needs ldconfig (Debian/Ubuntu)")
def test_a_failing_pip_install_stops_the_setup_with_pips_message(tmp_path):
    if b"libfluidsynth" not in subprocess.run(["ldconfig", "-p"], capture_output=True).stdout:
        pytest.skip("libfluidsynth missing: the script would run apt-get first")
    os.makedirs(tmp_path / "scripts")
    shutil.copy(os.path.join(REPO, "scripts", "setup.sh"), tmp_path / "scripts")
    shutil.copy(os.path.join(REPO, "pyproject.toml"), tmp_path)
    os.makedirs(tmp_path / ".venv" / "bin")
    _executable(tmp_path / ".venv" / "bin" / "python", "#!/bin/sh\necho python-ran >> \"$0.log\"\n")
    _executable(tmp_path / ".venv" / "bin" / "pip",
                "#!/bin/sh\necho 'ERROR: No matching distribution found for keras>=99' >&2\n"
                "exit 1\n")
    proc = subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "No matching distribution found for keras>=99" in proc.stderr
    assert "FAILED: pip install" in proc.stderr
    # It stopped there: no stamp, no import check, no weights download.
    assert not any(n.startswith(".installed-") for n in os.listdir(tmp_path / ".venv"))
    assert not os.path.exists(tmp_path / ".venv" / "bin" / "python.log")


def test_the_import_check_covers_the_test_extras_and_dask():
    with open(os.path.join(REPO, "scripts", "setup.sh")) as f:
        text = f.read()
    for module in ("pytest", "pytest_timeout", "dask", "distributed", "prefect_dask",
                   "tensorflow_datasets", "fluidsynth"):
        assert f'"{module}"' in text, module
    assert "pip install" in text and "-e \".[test]\" 2>&1 | grep" not in text
