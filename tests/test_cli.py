"""The command line: fast help, no heavy imports, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
