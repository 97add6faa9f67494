"""`sdrrl train --check-only` reads every data file through and names the first bad line of each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from sdrrl import registry
from sdrrl.recipes import RECIPES, as_dict

SDRRL = str(Path(sys.executable).parent / "sdrrl")
ROWS = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(50)]
NAMES = ["sdrrl_eng-ind_ll", "sdrrl_eng-ind_tl", "sdrrl_eng-ind_tt", "sdrrl_eng-ind_mt"]


def check(tmp_path: Path) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**as_dict(RECIPES["sdrrl_tiny_cpu"]), "dataset": NAMES,
                                      "dataset_dir": str(tmp_path / "reg"), "model_name_or_path": str(tmp_path)}))
    return subprocess.run([SDRRL, "train", "--check-only", str(recipe)], capture_output=True, text=True, timeout=60)


def test_check_only_names_the_first_bad_line_of_every_file(tmp_path):
    reg = tmp_path / "reg"
    registry.update_dataset_info(reg, [registry.write_dataset(reg, n, ROWS)[0] for n in NAMES])
    ok = check(tmp_path)
    assert ok.returncode == 0, ok.stderr
    files = {n: reg / f"{n}.jsonl" for n in NAMES}
    data = {n: f.read_bytes() for n, f in files.items()}
    lines = data["sdrrl_eng-ind_ll"].splitlines(keepends=True)
    # cut in the middle of line 31, as an interrupted copy leaves it
    files["sdrrl_eng-ind_ll"].write_bytes(b"".join(lines[:30]) + lines[30][:17])
    # cut right after a row's closing brace: every line is valid JSON, only the newline is missing
    files["sdrrl_eng-ind_tl"].write_bytes(data["sdrrl_eng-ind_tl"][:-1])
    # a bad line deep inside the file (not the first row), then more bad lines: only the first is named
    tt = data["sdrrl_eng-ind_tt"].splitlines(keepends=True)
    tt[39] = b'{"instruction": "q", "input": "", "output": "a"\n'
    tt[44] = b"garbage\n"
    files["sdrrl_eng-ind_tt"].write_bytes(b"".join(tt))
    proc = check(tmp_path)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, proc.stderr
    assert "3 problem(s)" in err
    assert "sdrrl_eng-ind_ll.jsonl line 31: ends without a newline: the file was cut mid-line" in err
    assert "sdrrl_eng-ind_tl.jsonl line 50: ends without a newline" in err
    assert "sdrrl_eng-ind_tt.jsonl line 40: is not valid JSON" in err and "line 45" not in err
    assert "sdrrl_eng-ind_mt" not in err and "Traceback" not in proc.stderr


def test_check_only_names_a_row_without_its_columns_by_line(tmp_path):
    reg = tmp_path / "reg"
    registry.update_dataset_info(reg, [registry.write_dataset(reg, n, ROWS)[0] for n in NAMES])
    path = reg / "sdrrl_eng-ind_mt.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[24] = b'{"instruction": "q", "input": ""}\n'
    path.write_bytes(b"".join(lines))
    proc = check(tmp_path)
    assert proc.returncode == 2
    assert "sdrrl_eng-ind_mt.jsonl line 25 lacks declared column(s) ['output']" in proc.stderr


def test_check_only_refuses_a_registry_that_mixes_two_exports(tmp_path):
    """The mix issue 10 found after a killed export (a data file of seed 42 beside a manifest of
    seed 43), made by hand here: the manifest's sha256 of each file names the stranger."""
    from fixtures.compose import helpers
    from sdrrl.compose.export import export

    reg, other = tmp_path / "reg", tmp_path / "other"
    subsets = ("ll", "tl", "lt", "tt", "mt", "comp")
    export(helpers.config(tmp_path, methods=["sdrrl"], parallel={"pairs": 12}), reg)
    export(helpers.config(tmp_path, methods=["sdrrl"], parallel={"pairs": 12}, seed=43), other)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**as_dict(RECIPES["sdrrl_tiny_cpu"]), "dataset_dir": str(reg),
                                      "dataset": [f"sdrrl_eng-ind_{s}" for s in subsets],
                                      "model_name_or_path": str(tmp_path)}))
    run = [SDRRL, "train", "--check-only", str(recipe)]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    name = "sdrrl_eng-ind_tt.jsonl"
    assert (other / name).read_bytes() != (reg / name).read_bytes()
    (reg / name).unlink()
    (reg / name).write_bytes((other / name).read_bytes())  # valid JSON Lines, same columns, other export
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, proc.stderr
    assert f"1 data file(s) in {str(reg)!r} are not the files the export recorded in manifest.json" in err
    assert name in err and "sdrrl_eng-ind_ll" not in err
