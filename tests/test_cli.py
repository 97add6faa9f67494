"""The command line: fast help, no heavy imports, clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SDRRL = str(Path(sys.executable).parent / "sdrrl")
HEAVY = ("torch", "transformers", "comet", "vllm", "llamafactory", "lm_eval", "ctranslate2", "gcld3",
         "datasets", "deepspeed", "pyarrow")


def test_import_and_help_load_no_heavy_library():
    code = ("import sys, sdrrl, sdrrl.cli, sdrrl.registry, sdrrl.languages\n"
            "try:\n    sdrrl.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_is_fast():
    best = min(_timed([SDRRL, "--help"]) for _ in range(3))
    assert best < 1.0, f"sdrrl --help took {best:.2f}s"


def _timed(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage: sdrrl" in proc.stdout
    return time.perf_counter() - start


def test_languages_command_prints_the_table():
    proc = subprocess.run([SDRRL, "languages"], capture_output=True, text=True, check=True)
    assert "khm_Khmr" in proc.stdout and "nob_Latn" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1 + 18


# --- scripts/bootstrap.sh on a bare Debian machine, with apt-get, dpkg-query, id and Python as stubs
# that log what they are asked (the real ones would install packages on this machine).

FAKE_PY = """#!/bin/bash
echo "py $*" >> "$LOG"
case "$*" in
  *version_info*) echo python3.11 ;;
  --version) echo "Python 3.11.2" ;;
  *ensurepip*|*Python.h*) exit "$BARE" ;;
  "-m venv --clear "*) mkdir -p "${@: -1}/bin"; cp "$GOOD_VENV_PY" "${@: -1}/bin/python" ;;
  *) exit 1 ;;
esac
"""
GOOD_VENV_PY = """#!/bin/bash
echo "venv-python $*" >> "$LOG"
"""


def _bootstrap(tmp_path, uid=0, bare=1, broken_venv=False):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "scripts" / "bootstrap.sh", repo / "scripts")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "constraints.txt").write_text("")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "cat", "sha256sum", "cut", "date", "dirname", "du", "grep", "mkdir", "cp"):
        os.symlink(shutil.which(tool), bindir / tool)
    stubs = {"python3.11": FAKE_PY, "good_venv_python": GOOD_VENV_PY,
             "apt-get": '#!/bin/bash\necho "apt-get $*" >> "$LOG"\n',
             "dpkg-query": "#!/bin/bash\nexit 1\n",  # nothing installed
             "id": f"#!/bin/bash\necho {uid}\n"}
    for name, text in stubs.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    if broken_venv:  # what a failed `python3 -m venv` (no ensurepip) leaves behind
        (repo / ".venv" / "bin").mkdir(parents=True)
        (repo / ".venv" / "bin" / "python").write_text("#!/bin/bash\nexit 1\n")
        (repo / ".venv" / "bin" / "python").chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {"PATH": str(bindir), "LOG": str(log), "BARE": str(bare), "HOME": str(tmp_path),
           "GOOD_VENV_PY": str(bindir / "good_venv_python")}
    proc = subprocess.run([str(bindir / "bash"), str(repo / "scripts" / "bootstrap.sh")], capture_output=True,
                          text=True, env=env, timeout=60)
    return proc, log.read_text()


def test_bootstrap_installs_python_venv_and_headers_on_a_bare_debian(tmp_path):
    proc, log = _bootstrap(tmp_path)
    assert proc.returncode == 0, proc.stderr
    install = next(line for line in log.splitlines() if line.startswith("apt-get install"))
    for pkg in ("python3.11-venv", "python3.11-dev", "protobuf-compiler", "libprotobuf-dev", "g++", "make"):
        assert pkg in install.split(), (pkg, install)
    assert "apt-get update" in log and log.index("apt-get update") < log.index("apt-get install")
    assert "venv-python -m pip check" in log


def test_bootstrap_without_root_or_sudo_names_the_packages_and_the_fix(tmp_path):
    proc, log = _bootstrap(tmp_path, uid=1000)
    assert proc.returncode == 1
    assert "sudo" in proc.stderr and "python3.11-dev" in proc.stderr and "apt-get install" in proc.stderr
    assert "apt-get" not in log and "venv" not in log


@pytest.mark.parametrize("broken", [True, False], ids=["half-made venv", "no venv yet"])
def test_bootstrap_rebuilds_a_half_made_venv(tmp_path, broken):
    proc, log = _bootstrap(tmp_path, bare=0, broken_venv=broken)
    assert proc.returncode == 0, proc.stderr
    assert "py -m venv --clear" in log and "venv-python -m pip install" in log
    assert "apt-get install" in log and "python3.11" not in log.split("apt-get install", 1)[1].split("\n")[0]
