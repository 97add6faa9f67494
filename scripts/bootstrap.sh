#!/usr/bin/env bash
# Set up everything `make test` and `make demo` need, on a fresh Debian machine with Python >= 3.10:
# Debian build packages (gcld3 compiles against protobuf), a virtual environment in .venv, and the
# Python stack pinned in constraints.txt. Idempotent: a second run with the same pyproject.toml and
# constraints.txt only checks a stamp and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.sdrrl-installed"
want=$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

log() { printf '[bootstrap] %s\n' "$*"; }
start=$(date +%s)

# 1. Python (3.10+; 3.11 preferred).
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
[[ -n "$PY" ]] || { echo "bootstrap: no python3 found; install Python 3.11 (apt-get install python3 python3-venv)" >&2; exit 1; }
pyname=$("$PY" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')

# 2. Debian packages: gcld3 has no cp311 wheel and builds against libprotobuf and Python's headers;
#    g++/ninja let DeepSpeed compile its ops on first use. Debian's Python lacks ensurepip (venv)
#    and Python.h until pythonX.Y-venv / pythonX.Y-dev are installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need=()
"$PY" -c 'import ensurepip' >/dev/null 2>&1 || need+=("$pyname-venv")
"$PY" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  >/dev/null 2>&1 || need+=("$pyname-dev")
for pkg in protobuf-compiler libprotobuf-dev g++ make; do
  installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "bootstrap: Debian packages missing: ${need[*]}; this user is not root and sudo is absent." \
           "Fix: as root run 'apt-get update && apt-get install -y ${need[*]}', then run this again." >&2
      exit 1
    }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The virtual environment (inside the checkout). A half-made one (venv failed for want of
# ensurepip: bin/python but no pip) is rebuilt, not reused.
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  log "creating $VENV with $("$PY" --version)"
  "$PY" -m venv --clear "$VENV" || { echo "bootstrap: '$PY -m venv' failed; install $pyname-venv (apt-get install $pyname-venv)" >&2; exit 1; }
fi

# 3. The pinned stack (constraints.txt is the one place for pins), then a health check.
log "installing the Python stack (first time: several minutes, ~7 GB with the CUDA torch build)"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel "setuptools<81"
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
log "environment ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1) in $VENV)"
