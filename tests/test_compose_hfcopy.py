"""The Hugging Face datasets copy of an export: every folder loads with the real ``datasets``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures.compose import helpers
from sdrrl.compose import config as compose_config
from sdrrl.compose.export import export
from sdrrl.compose.hfcopy import write_hf_copy
from sdrrl.compose.manifest import Manifest
from sdrrl.errors import SdrrlError
from sdrrl.registry import write_dataset

CONFIG = helpers.HERE / "config.yaml"


def header(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def load(folder: Path, config: str | None, cache: Path) -> list[dict]:
    import datasets

    ds = datasets.load_dataset(str(folder), config, split="train", cache_dir=str(cache))
    return ds.to_list()


def files_state(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hfcopy")
    manifest = export(compose_config.load(CONFIG), tmp / "out")  # the real export of the fixture config
    summary = write_hf_copy(tmp / "out", manifest, tmp / "hf")
    return tmp, manifest, summary


def test_every_method_loads_offline_and_equals_the_registry_files(copied):
    tmp, manifest, summary = copied
    expected: dict[str, dict[str, str]] = {}  # folder -> config -> registry entry
    for name, e in manifest.entries.items():
        folder = "sft_eng" if e.method == "sft" else f"{e.method}_eng-ind"
        expected.setdefault(folder, {})[e.subset or "default"] = name
    assert len(expected) == 10 and sum(map(len, expected.values())) == len(manifest.entries) == 35
    assert {p.name for p in (tmp / "hf").iterdir()} == set(expected) == set(summary)
    for folder, configs in expected.items():
        assert set(summary[folder]) == set(configs)
        for config, name in configs.items():
            want = helpers.rows(tmp / "out" / f"{name}.jsonl")
            got = load(tmp / "hf" / folder, config, tmp / "cache")
            assert got == want, (folder, config)
            assert summary[folder][config] == manifest.entries[name].rows == len(want)
    # SFT's single subset is the default config: no name needed
    assert load(tmp / "hf" / "sft_eng", None, tmp / "cache") == helpers.rows(tmp / "out" / "sft_eng.jsonl")
    assert not [p for p in (tmp / "hf").rglob("*") if p.name.startswith(".")]  # no temp files left


def test_cards_parse_and_name_every_subset_with_counts_config_and_licence(copied):
    tmp, manifest, summary = copied
    for folder, configs in summary.items():
        card = tmp / "hf" / folder / "README.md"
        meta = header(card)
        assert [c["config_name"] for c in meta["configs"]] == list(configs)
        for c in meta["configs"]:
            assert c["data_files"] == [{"split": "train", "path": f"data/{c['config_name']}.parquet"}]
            assert (tmp / "hf" / folder / c["data_files"][0]["path"]).is_file()
        assert meta["license"] == "cc-by-nc-4.0"
        body = card.read_text(encoding="utf-8").split("---\n", 2)[2]
        assert "Stanford Alpaca" in body and "2402.12204" in body and "Self-Distillation from Resource-Rich" in body
        if folder == "sft_eng":
            assert meta["language"] == ["en", "eng"] and list(configs) == ["default"]
            continue
        assert meta["language"] == ["en", "id", "eng", "ind"] and "NLLB-200" in body
        method = folder.split("_")[0]
        for config, rows in configs.items():
            name = f"{method}_eng-ind_{config}"
            assert f"| `{config}` | `{name}` | {rows:,} |" in body
    sdrrl = (tmp / "hf" / "sdrrl_eng-ind" / "README.md").read_text(encoding="utf-8")
    details = yaml.safe_load(sdrrl.split("```yaml\n")[1].split("```")[0])
    assert list(details) == ["ll", "tl", "lt", "tt", "mt", "comp"]
    for config, d in details.items():
        entry = manifest.entries[f"sdrrl_eng-ind_{config}"]
        assert d["config"] == entry.config and d["dropped"] == entry.dropped
    assert details["tt"]["dropped"] == {"x_mt rejected at qe: qe_below_threshold": 1,
                                        "y_hat_mt rejected at lid: off_target:en": 1}
    assert "code-switched with probability 0.15" in sdrrl and "translation" in header(
        tmp / "hf" / "sdrrl_eng-ind" / "README.md")["task_categories"]


def test_rerun_is_idempotent_and_rewrites_only_what_changed(copied, tmp_path):
    tmp, _, _ = copied
    out, hf = tmp_path / "out", tmp_path / "hf"
    shutil.copytree(tmp / "out", out)
    shutil.copytree(tmp / "hf", hf)
    before = files_state(hf)
    write_hf_copy(out, None, hf)  # manifest read from the registry folder
    assert files_state(hf) == before  # same bytes, not even touched
    # a re-export that changes one dataset: only its Parquet file and its card are rewritten
    rows = helpers.rows(out / "tsft_eng-ind_tt.jsonl")[:-1]
    write_dataset(out, "tsft_eng-ind_tt", rows)
    saved = json.loads((out / "manifest.json").read_text())
    saved["entries"]["tsft_eng-ind_tt"]["rows"] = len(rows)
    (out / "manifest.json").write_text(json.dumps(saved))
    write_hf_copy(out, None, hf)
    after = files_state(hf)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"tsft_eng-ind/data/tt.parquet", "tsft_eng-ind/README.md"}
    assert load(hf / "tsft_eng-ind", "tt", tmp_path / "cache") == rows
    assert f"| `tt` | `tsft_eng-ind_tt` | {len(rows)} |" in (hf / "tsft_eng-ind" / "README.md").read_text()


def test_a_file_that_disagrees_with_the_manifest_or_is_missing_is_named(copied, tmp_path):
    tmp, manifest, _ = copied
    out = tmp_path / "out"
    shutil.copytree(tmp / "out", out)
    path = out / "cit_eng-ind_lt.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(SdrrlError, match=r"cit_eng-ind_lt.jsonl has 8 rows but manifest.json says 9.*sdrrl export"):
        write_hf_copy(out, manifest, tmp_path / "hf")
    path.unlink()
    with pytest.raises(SdrrlError, match=r"cit_eng-ind_lt.jsonl.*'cit_eng-ind_lt'.*is missing"):
        write_hf_copy(out, manifest, tmp_path / "hf")
    with pytest.raises(SdrrlError, match="No manifest.json"):
        write_hf_copy(tmp_path, None, tmp_path / "hf")


def test_an_interrupted_write_leaves_the_old_file_and_no_half_file(copied, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    tmp, _, _ = copied
    out, hf = tmp_path / "out", tmp_path / "hf"
    shutil.copytree(tmp / "out", out)
    shutil.copytree(tmp / "hf", hf)
    manifest = Manifest.read(out)
    xcot = Manifest(entries={k: v for k, v in manifest.entries.items() if k.startswith("xcot_")})
    rows = helpers.rows(out / "xcot_eng-ind_tt.jsonl")[:-1]  # a re-export changed tt
    write_dataset(out, "xcot_eng-ind_tt", rows)
    xcot.entries["xcot_eng-ind_tt"].rows = len(rows)
    before = files_state(hf / "xcot_eng-ind")
    real = pq.write_table

    def killed_midway(table, where, **kw):  # a stand-in for a kill: some bytes out, then the interrupt
        real(table.slice(0, 1), where, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        write_hf_copy(out, xcot, hf)
    assert files_state(hf / "xcot_eng-ind") == before  # old file whole, no temp file beside it
    monkeypatch.undo()
    write_hf_copy(out, xcot, hf)
    assert load(hf / "xcot_eng-ind", "tt", tmp_path / "cache") == rows


def test_any_registry_without_a_config_round_trips_awkward_text(tmp_path):
    texts = ['He said "hi"\n\tand left \\ back', "Ünïcödé ✓ 日本語 ไทย", "emoji 🦊 and \u2028 sep \x07",
             "  leading and trailing  ", "</script> & <b> | pipe"]
    rows = [{"instruction": q, "input": q[:3], "output": a} for q in texts for a in reversed(texts)]
    reg = tmp_path / "reg"
    write_dataset(reg, "tsft_fra-khm_tt", rows)
    write_dataset(reg, "sft_fra", rows[:3])
    manifest = Manifest.from_json({"entries": {
        "tsft_fra-khm_tt": {"file": "tsft_fra-khm_tt.jsonl", "rows": len(rows), "method": "tsft", "subset": "tt",
                            "source": "fra", "target": "khm", "config": {"responses": "gold"}, "inputs": [],
                            "dropped": {}},
        "sft_fra": {"file": "sft_fra.jsonl", "rows": 3, "method": "sft", "subset": None, "source": "fra",
                    "target": None, "config": {}, "inputs": [], "dropped": {}}}}, "test manifest")
    assert write_hf_copy(reg, manifest, tmp_path / "hf") == {"tsft_fra-khm": {"tt": 25}, "sft_fra": {"default": 3}}
    assert load(tmp_path / "hf" / "tsft_fra-khm", "tt", tmp_path / "cache") == rows
    assert load(tmp_path / "hf" / "sft_fra", None, tmp_path / "cache") == rows[:3]
    meta = header(tmp_path / "hf" / "tsft_fra-khm" / "README.md")
    assert meta["language"] == ["fr", "km", "fra", "khm"] and meta["multilinguality"] == "multilingual"
    card = (tmp_path / "hf" / "tsft_fra-khm" / "README.md").read_text()
    assert "question in Khmer, answer in Khmer" in card and "; gold answers" in card


def test_cli_export_with_hf_copy(tmp_path):
    sdrrl = Path(sys.executable).parent / "sdrrl"
    cfg = tmp_path / "compose.yaml"
    cfg.write_text(f"work_dir: {helpers.WORK}\ntargets: [ind]\nmethods: [sft, cit]\n")
    cmd = [str(sdrrl), "export", "--config", str(cfg), "--out", str(tmp_path / "out"), "--hf-copy", str(tmp_path / "hf")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "wrote the Hugging Face datasets copy of 2 method folder(s)" in done.stdout
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == ["cit_eng-ind", "sft_eng"]
    assert [c["config_name"] for c in header(tmp_path / "hf" / "cit_eng-ind" / "README.md")["configs"]] == ["lt"]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and again.stderr.count("(unchanged)") == 2, again.stderr
