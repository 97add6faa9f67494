"""D in every published form: JSON Lines, a JSON array (alpaca_data.json), Parquet, a datasets folder,
a hub id. The work directory's source.jsonl is the same whatever the form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdrrl.errors import SdrrlError
from sdrrl.pipeline import config as pipeline_config
from sdrrl import layout
from sdrrl.pipeline import workdir

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat well.\n2. Sleep.\n3. Move."},
    {"instruction": "Translate the sentence.", "input": "Où est la gare ?", "output": "Where is the station?"},
    {"instruction": "Ünïcödé ✓ 日本語 ไทย \"quoted\" \\ back", "input": "", "output": "emoji 🦊 \u2028 sep"},
    {"instruction": "Sum the numbers.", "input": "2, 3", "output": "5"},
]


def write_forms(tmp: Path) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    forms = {"jsonl": tmp / "alpaca.jsonl", "array": tmp / "alpaca_data.json", "parquet": tmp / "alpaca.parquet",
             "folder": tmp / "alpaca_ds"}
    forms["jsonl"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    # as Stanford Alpaca publishes it: one JSON array, indented by 4, non-ASCII kept
    forms["array"].write_text(json.dumps(ROWS, indent=4, ensure_ascii=False), encoding="utf-8")
    table = pa.Table.from_pylist([dict(r, text=f"### {r['instruction']}") for r in ROWS])  # hub's extra column
    pq.write_table(table, forms["parquet"], row_group_size=2)
    (forms["folder"] / "data").mkdir(parents=True)
    pq.write_table(table, forms["folder"] / "data" / "train-00000-of-00001.parquet")
    return forms


def test_json_array_parquet_and_datasets_folder_give_the_same_source_as_json_lines(tmp_path):
    forms = write_forms(tmp_path)
    sources = {}
    for form, path in forms.items():
        work = tmp_path / f"work_{form}"
        work.mkdir()
        rows, skipped = workdir.prepare_source(work, str(path))
        assert len(rows) == len(ROWS) and skipped == 0, form
        sources[form] = layout.source_path(work).read_bytes()
    assert sources["jsonl"].count(b"\n") == len(ROWS)
    for form in ("array", "parquet", "folder"):
        assert sources[form] == sources["jsonl"], form
    first = json.loads(sources["jsonl"].splitlines()[2])
    assert first == {"id": "2", **ROWS[2]}


def test_bad_json_array_inputs_name_the_problem(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(ROWS, indent=4)[:-40])
    with pytest.raises(SdrrlError, match=r"broken.json: not valid JSON \(line \d+, column \d+"):
        workdir.prepare_source(tmp_path, str(broken))
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([ROWS[0], "just a string"]))
    with pytest.raises(SdrrlError, match=r"element 2 is str, not an object"):
        workdir.prepare_source(tmp_path, str(mixed))
    bad_row = tmp_path / "bad_row.json"
    bad_row.write_text(json.dumps([ROWS[0], {"instruction": "no answer"}]))
    with pytest.raises(SdrrlError, match=r"row 2: missing 'output'"):
        workdir.prepare_source(tmp_path, str(bad_row))
    with pytest.raises(SdrrlError, match=r"Input file not found: .*nope.jsonl"):
        workdir.prepare_source(tmp_path, str(tmp_path / "nope.jsonl"))


def test_a_hub_id_offline_and_not_cached_is_a_clear_error(tmp_path):
    code = ("from sdrrl.pipeline import workdir; from sdrrl.errors import SdrrlError\n"
            "from pathlib import Path\n"
            "try:\n    workdir.prepare_source(Path('.'), 'tatsu-lab/alpaca')\n"
            "except SdrrlError as err:\n    print(err)\n")
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert len(out.splitlines()) == 1
    assert "'tatsu-lab/alpaca' is not a local file" in out and "not in the local cache" in out
    assert "datasets.load_dataset('tatsu-lab/alpaca')" in out
    assert not (tmp_path / "source.jsonl").exists()


def test_config_keeps_a_hub_id_and_resolves_a_relative_path(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    for value, expected in (("tatsu-lab/alpaca", "tatsu-lab/alpaca"), ("hf:tatsu-lab/alpaca", "hf:tatsu-lab/alpaca"),
                            ("d.jsonl", str((tmp_path / "d.jsonl").resolve()))):
        cfg_file = tmp_path / "build.yaml"
        cfg_file.write_text(f"input: {value}\n")
        assert pipeline_config.load(cfg_file).input == expected
