"""The LLaMA-Factory registry writer: what it writes, what it refuses, and that LF trains on it."""

from __future__ import annotations

import json
import os
import re

import pytest

from sdrrl import registry
from sdrrl.errors import RegistryError, SdrrlError

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
    {"instruction": "Translate to Czech.", "input": "Good morning", "output": "Dobré ráno"},
    {"instruction": "Name a color.", "output": "Blue."},  # input omitted: written as ""
]


def test_write_dataset_writes_alpaca_jsonl_with_explicit_columns(tmp_path):
    entry, n = registry.write_dataset(tmp_path, "demo_eng", ROWS)
    info = registry.update_dataset_info(tmp_path, [entry])
    assert n == 3
    assert info["demo_eng"] == {
        "file_name": "demo_eng.jsonl", "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output"},
    }
    lines = (tmp_path / "demo_eng.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines][2] == {"instruction": "Name a color.", "input": "", "output": "Blue."}
    assert "Dobré ráno" in lines[1]  # UTF-8, not \u escapes
    assert registry.validate(tmp_path) == info
    assert registry.count_rows(tmp_path, "demo_eng") == 3


def test_system_column_is_declared_and_required(tmp_path):
    rows = [dict(r, system="You are helpful.") for r in ROWS]
    entry, _ = registry.write_dataset(tmp_path, "with_sys", rows, system=True)
    assert entry.to_json()["columns"]["system"] == "system"
    with pytest.raises(RegistryError, match="row 1: column 'system'"):
        registry.write_dataset(tmp_path, "bad_sys", [rows[0], ROWS[1]], system=True)


@pytest.mark.parametrize("row, message", [
    ({"input": "", "output": "x"}, "row 1: column 'instruction' must be a non-empty string \\(missing\\)"),
    ({"instruction": 5, "output": "x"}, "row 1: column 'instruction' must be a non-empty string \\(int"),
    ({"instruction": "q", "output": "  "}, "row 1: column 'output'"),
    ({"instruction": "q", "output": "a", "input": ["x"]}, "row 1: column 'input' must be a string"),
    ({"instruction": "q", "output": "a", "lang": "ces"}, "unexpected columns \\['lang'\\]"),
    ("just a string", "row 1: expected a mapping"),
])
def test_malformed_rows_are_refused_and_nothing_is_lost(tmp_path, row, message):
    entry, _ = registry.write_dataset(tmp_path, "keep", ROWS)
    before = (tmp_path / "keep.jsonl").read_bytes()
    with pytest.raises(RegistryError, match=message):
        registry.write_dataset(tmp_path, "keep", [ROWS[0], row])
    assert (tmp_path / "keep.jsonl").read_bytes() == before  # the finished file survived
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp litter


def test_empty_dataset_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match="no rows"):
        registry.write_dataset(tmp_path, "empty", [])
    assert not (tmp_path / "empty.jsonl").exists()


def test_merge_keeps_other_entries_and_refuses_silent_overwrite(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "someone_elses": {"hf_hub_url": "org/data", "split": "train"},
    }))
    entry, _ = registry.write_dataset(tmp_path, "mine", ROWS)
    info = registry.update_dataset_info(tmp_path, [entry])
    assert set(info) == {"alpaca_en_demo", "someone_elses", "mine"}
    assert info["someone_elses"] == {"hf_hub_url": "org/data", "split": "train"}
    registry.update_dataset_info(tmp_path, [entry])  # same content again: fine, idempotent
    changed = registry.Entry("mine", "other.jsonl")
    with pytest.raises(RegistryError, match="already has a different entry 'mine'"):
        registry.update_dataset_info(tmp_path, [changed])
    assert json.loads((tmp_path / "dataset_info.json").read_text())["mine"]["file_name"] == "mine.jsonl"
    info = registry.update_dataset_info(tmp_path, [changed], replace=True)
    assert info["mine"]["file_name"] == "other.jsonl" and "alpaca_en_demo" in info


def test_malformed_existing_registry_is_never_overwritten(tmp_path):
    (tmp_path / "dataset_info.json").write_text('{"a": {"file_name": "a.json"},')
    entry, _ = registry.write_dataset(tmp_path, "mine", ROWS)
    with pytest.raises(RegistryError, match="not valid JSON"):
        registry.update_dataset_info(tmp_path, [entry])
    assert (tmp_path / "dataset_info.json").read_text() == '{"a": {"file_name": "a.json"},'


def test_validate_reports_every_kind_of_problem(tmp_path):
    registry.write_dataset(tmp_path, "good", ROWS)
    (tmp_path / "nocols.jsonl").write_text(json.dumps({"instruction": "q", "answer": "a"}) + "\n")
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "good": registry.Entry("good", "good.jsonl").to_json(),
        "typo": {"file_name": "good.jsonl", "colums": {"prompt": "instruction"}},
        "missing_file": {"file_name": "nope.jsonl"},
        "bad_columns": {"file_name": "nocols.jsonl"},
        "bad_role": {"file_name": "good.jsonl", "columns": {"question": "instruction"}},
        "two_sources": {"file_name": "good.jsonl", "hf_hub_url": "x/y"},
    }))
    with pytest.raises(RegistryError) as err:
        registry.validate(tmp_path)
    msg = str(err.value)
    for needle in ("unknown keys ['colums']", "nope.jsonl", "lacks declared column(s) ['output']",
                   "unknown column roles ['question']", "needs exactly one of"):
        assert needle in msg, needle
    assert registry.validate(tmp_path, ["good"])["good"]["file_name"] == "good.jsonl"
    with pytest.raises(RegistryError, match="'absent' is not registered"):
        registry.validate(tmp_path, ["absent"])


def test_validate_reads_entries_the_way_llamafactory_does(tmp_path):
    """Entries that validate() used to accept but LLaMA-Factory 0.9.5 misreads or rejects."""
    registry.write_dataset(tmp_path, "good", ROWS)
    (tmp_path / "noinput.jsonl").write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    (tmp_path / "mixed").mkdir()
    registry.write_dataset(tmp_path / "mixed", "part", ROWS)
    (tmp_path / "mixed" / "README.md").write_text("notes")
    (tmp_path / "nested").mkdir()
    registry.write_dataset(tmp_path / "nested" / "sub", "part", ROWS)
    full = dict(registry.ALPACA_ROLES)
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        # a columns mapping replaces every default: no "prompt" means LF drops the instruction
        "no_prompt": {"file_name": "good.jsonl", "columns": {"query": "input", "response": "output"}},
        # ... and no "response" means no target: LF drops every example
        "no_response": {"file_name": "good.jsonl", "columns": {"prompt": "instruction"}},
        # the json builder of a local file has only a "train" split
        "bad_split": {"file_name": "good.jsonl", "columns": full, "split": "validation"},
        # LF slices with num_samples: a string or float crashes it
        "bad_num": {"file_name": "good.jsonl", "columns": full, "num_samples": "100"},
        # a declared query column that no row has: KeyError in LF's converter
        "no_input_col": {"file_name": "noinput.jsonl", "columns": full},
        # LF loads every entry of a folder (not recursively) and needs one file type
        "mixed_folder": {"file_name": "mixed", "columns": full},
        "nested_folder": {"file_name": "nested", "columns": full},
    }))
    with pytest.raises(RegistryError) as err:
        registry.validate(tmp_path)
    msg = str(err.value)
    assert msg.startswith("7 problem(s)"), msg
    for name in ("no_prompt", "no_response", "bad_split", "bad_num", "no_input_col", "mixed_folder",
                 "nested_folder"):
        with pytest.raises(RegistryError, match=f"'{name}'"):
            registry.validate(tmp_path, [name])
    # still accepted: a train slice, an integer num_samples, a folder of JSON Lines files
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "slice": {"file_name": "good.jsonl", "columns": full, "split": "train[:2]", "num_samples": 5},
        "folder": {"file_name": "nested/sub", "columns": full},
        "defaults": {"file_name": "good.jsonl"},
    }))
    assert set(registry.validate(tmp_path)) == {"slice", "folder", "defaults"}


def test_validate_leaves_parquet_to_llamafactorys_loader(tmp_path):
    """The code says Parquet is checked by LLaMA-Factory's loader: validate() must not call it empty."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([dict(r, input=r.get("input", "")) for r in ROWS]), tmp_path / "p.parquet")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"pq": {"file_name": "p.parquet",
                                                                   "columns": registry.ALPACA_ROLES}}))
    assert set(registry.validate(tmp_path)) == {"pq"}


def test_duplicate_names_in_registry_are_reported(tmp_path):
    registry.write_dataset(tmp_path, "good", ROWS)
    (tmp_path / "dataset_info.json").write_text(
        '{"good": {"file_name": "good.jsonl"}, "good": {"file_name": "good.jsonl"}}')
    with pytest.raises(RegistryError, match="'good' appears twice"):
        registry.validate(tmp_path)


def test_missing_registry_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(RegistryError, match="sdrrl export"):
        registry.validate(tmp_path / "nothing_here")


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    with pytest.raises(SdrrlError, match="Cannot write to directory"):
        registry.write_dataset(blocker / "sub", "x", ROWS)


def test_bad_names_and_keys_are_refused(tmp_path):
    with pytest.raises(RegistryError, match="Invalid dataset name"):
        registry.write_dataset(tmp_path, "a,b", ROWS)
    with pytest.raises(RegistryError, match="Unknown registry keys \\['num_sample'\\]"):
        registry.write_dataset(tmp_path, "ok", ROWS, num_sample=3)


@pytest.mark.slow
def test_llamafactory_trains_the_tiny_llama_on_a_written_registry(tmp_path, tiny_models):
    from lf_utils import train_tiny

    data = tmp_path / "data"
    rows = [{"instruction": f"Question number {i}?", "input": "", "output": f"Answer number {i}."}
            for i in range(7)]
    e1, _ = registry.write_dataset(data, "reg_a", rows)
    e2, _ = registry.write_dataset(data, "reg_b", ROWS)
    registry.update_dataset_info(data, [e1, e2])
    registry.validate(data)
    proc, out = train_tiny(tmp_path, tiny_models.llama, data, ["reg_a", "reg_b"], max_steps=2)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert re.search(r"Num examples = 10\b", log), log[-4000:]
    assert (out / "model.safetensors").exists() or (out / "pytorch_model.bin").exists()


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        registry.write_dataset(tmp_path, "perm", ROWS)
    finally:
        os.umask(old)
    assert (tmp_path / "perm.jsonl").stat().st_mode & 0o777 == 0o644


def test_read_jsonl_accepts_a_file_saved_with_a_bom_and_crlf(tmp_path):
    from sdrrl.io import read_jsonl

    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"instruction": "q", "output": "a"}\r\n{"instruction": "q2", "output": "b"}\r\n')
    assert list(read_jsonl(path)) == [{"instruction": "q", "output": "a"}, {"instruction": "q2", "output": "b"}]
    path.write_bytes(b'{"instruction": "q"}\n{oops\n')
    with pytest.raises(SdrrlError, match=r"d.jsonl:2: not valid JSON"):
        list(read_jsonl(path))
