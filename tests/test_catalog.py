"""The catalog (plugin/sdrrl/catalog.py): lookups, its agreement with the paper's tables, and one new
method, model family and benchmark, each one catalog entry, reaching the export, the dataset card,
the recipes, the shipped registry, the task generator, `sdrrl score` and the report with no other
edit (the entries are added inside the test, never to the shipped catalog)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from sdrrl import catalog
from sdrrl.compose.subsets import SubsetSpec
from sdrrl.errors import UnknownNameError

REPO = Path(__file__).resolve().parents[1]


def _script(path: Path):
    """A generator script of the repository (recipes/, eval_tasks/, scripts/) as a module."""
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lookup, name, known", [
    (catalog.method, "sdrrl-v2", "sdrrl-no-cs"), (catalog.family, "mistral", "seallm"),
    (catalog.benchmark, "dolly", "mkqa"), (catalog.benchmark("flores").metric, "bleu", "spbleu"),
])
def test_an_unknown_name_is_an_error_that_lists_the_known_ones(lookup, name, known):
    with pytest.raises(UnknownNameError) as err:
        lookup(name)
    text = str(err.value)
    assert repr(name) in text and known in text and "Fix:" in text and "sdrrl/catalog.py" in text
    assert "\n" not in text


def test_the_catalog_says_what_the_papers_tables_hold():
    """Each benchmark's table per model family, the languages and English side it has there, the
    metrics, the methods' rows and each family's targets: as paper_results.csv has them."""
    from sdrrl.report import paper

    rows = paper.rows()
    assert {r.model for r in rows} == set(catalog.FAMILIES)
    assert {r.method for r in rows} <= set(catalog.METHODS)
    language_tables = set()
    for fam in catalog.FAMILIES.values():
        assert set(fam.paper_tables) == {r.table for r in rows if r.model == fam.name}, fam.name
        covered = set()
        for b in catalog.BENCHMARKS.values():
            table = b.table(fam.name)
            if table is None:  # a benchmark of a figure (Figure 3), which prints no numbers
                assert b.paper_figure is not None and not b.paper_tables, b.name
                continue
            language_tables.add(table)
            assert {r.benchmark for r in rows if r.table == table} == {b.name}
            assert set(b.paper_languages(fam.name)) == set(paper.columns(table)), (fam.name, b.name)
            covered |= set(paper.columns(table))
            directions = {d for _, _, d in paper.sections(table)}
            assert (b.direction("eng") in directions) == b.paper_english and b.direction("") in directions
            for _, metric, _ in paper.sections(table):
                b.metric(metric)
        assert covered == set(fam.paper_targets), fam.name
    # MKQA has only some targets in the paper's tables; XL-Sum's English side is there
    assert catalog.benchmark("mkqa").paper_languages("seallm") == ("tha", "khm")
    assert len(catalog.benchmark("mkqa").paper_languages("llama2")) == 9
    assert catalog.benchmark("xlsum").paper_english
    assert {r.method for r in rows if r.table in language_tables} == set(catalog.paper_methods(catalog.BENCHMARK_ROWS))
    assert {r.method for r in rows if r.table == 6} == set(catalog.paper_methods(catalog.ABLATION_ROWS))
    # Table 7 averages each benchmark's headline metric, as the composites take it
    seven = {(b, m, d) for b, m, d in paper.sections(7) if b != "all"}
    assert seven == {(b.name, b.headline, b.direction(side)) for b in catalog.BENCHMARKS.values()
                     if b.table("seallm") for side in ("", "eng")}
    assert {p[0] for side in ("", "eng") for p in catalog.composite_parts("nlg", side)} == {"flores", "xlsum", "mkqa"}
    assert catalog.composite_parts("nlu", "") == [("belebele", "acc", "")]


def test_names_the_code_relies_on_are_in_the_catalog():
    assert {catalog.SDRRL, catalog.REFERENCE} <= set(catalog.METHODS) and catalog.BASE not in catalog.METHODS
    assert catalog.method(catalog.REFERENCE).source_only and not catalog.method(catalog.SDRRL).source_only
    assert catalog.main_family().name == "llama2" and sum(f.main for f in catalog.FAMILIES.values()) == 1
    colors = [m.color for m in catalog.METHODS.values()] + [catalog.BASE_COLOR]
    assert len(set(colors)) == len(colors)  # every method has its own colour in the plots
    assert catalog.family_of_save_dir("SeaLLM-7B").name == "seallm" and catalog.family_of_save_dir("tiny") is None
    for path in ("meta-llama/Llama-2-7b-hf", "/models/Llama-2-7b-hf/", "out/meta-llama__Llama-2-7b-hf"):
        assert catalog.family_of_base_model(path).name == "llama2", path
    for path in ("meta-llama/Llama-2-7b-chat-hf", "my-llama-2-7b-hf-copy", "saves/llama2-7b/sdrrl/eng-ind"):
        assert catalog.family_of_base_model(path) is None, path


# ---- a new method, model family and benchmark: one catalog entry each -------------------------------

NEW_METHOD = catalog.Method(
    "sdrrl-only-tt", "only D_TT", "An ablation of ours: the translated pairs with D_synth answers only.",
    lambda cfg: [SubsetSpec("tt", "synth", True)], (catalog.BENCHMARK_ROWS,), "#123456")
NEW_FAMILY = catalog.ModelFamily(
    "mistral", "Mistral-7B", "mistralai/Mistral-7B-v0.1", "a family of ours (test)", "mistral-7b",
    ("ind", "jpn"), (), "jpn")
NEW_BENCHMARK = catalog.Benchmark(
    "dolly", "Dolly", "nllb", (catalog.Metric("offtarget", "off-target %"),),
    catalog.DataSource("databricks/databricks-dolly-15k"))


@pytest.fixture
def extended(monkeypatch):
    monkeypatch.setitem(catalog.METHODS, NEW_METHOD.name, NEW_METHOD)
    monkeypatch.setitem(catalog.FAMILIES, NEW_FAMILY.name, NEW_FAMILY)
    monkeypatch.setitem(catalog.BENCHMARKS, NEW_BENCHMARK.name, NEW_BENCHMARK)


def test_a_new_method_reaches_the_export_the_card_and_the_shipped_registry(tmp_path, extended, capsys):
    from fixtures.compose import helpers

    from sdrrl.compose.export import export
    from sdrrl.compose.hfcopy import write_hf_copy

    assert helpers.config(tmp_path, methods="all").methods[-1] == NEW_METHOD.name
    out = tmp_path / "out"
    manifest = export(helpers.config(tmp_path, methods=["sft", NEW_METHOD.name]), out)
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"sft_eng", "sdrrl-only-tt_eng-ind_tt"}
    entry = manifest.entries["sdrrl-only-tt_eng-ind_tt"]
    assert entry.method == NEW_METHOD.name and entry.rows > 0 and entry.config["code_switch"]
    write_hf_copy(out, manifest, tmp_path / "hf")
    card = (tmp_path / "hf" / "sdrrl-only-tt_eng-ind" / "README.md").read_text(encoding="utf-8")
    assert NEW_METHOD.description in card

    from sdrrl.compose.methods import shipped_registry

    assert "sdrrl-only-tt_eng-khm_tt" in shipped_registry()
    generator = _script(REPO / "scripts" / "generate_dataset_info.py")
    assert generator.main(["--check"]) == 1 and "out of date" in capsys.readouterr().err


def test_a_new_method_and_family_reach_the_recipes(extended, capsys):
    from sdrrl.recipes import as_dict, build_recipes

    recipes = build_recipes()
    mine = as_dict(recipes["sdrrl_only_tt_llama2"])
    assert mine["dataset"] == "sdrrl-only-tt_eng-ind_tt"
    assert mine["output_dir"] == "saves/llama2-7b/sdrrl-only-tt/eng-ind"
    family = as_dict(recipes["sdrrl_mistral"])
    assert family["model_name_or_path"] == "mistralai/Mistral-7B-v0.1"
    assert family["output_dir"] == "saves/mistral-7b/sdrrl/eng-jpn"
    assert family["dataset"].split(",") == [f"sdrrl_eng-jpn_{s}" for s in ("ll", "tl", "lt", "tt", "mt", "comp")]
    assert _script(REPO / "recipes" / "generate.py").main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "sdrrl_only_tt_llama2.yaml" in err and "sdrrl_mistral.yaml" in err


def test_a_new_benchmark_reaches_the_task_generator_and_the_language_table(extended, capsys):
    generator = _script(REPO / "eval_tasks" / "generate_tasks.py")
    files = {p.relative_to(REPO / "eval_tasks").as_posix(): text for p, text in generator.expected_files().items()}
    task = files["sdrrl_dolly_ind.yaml"]
    assert "include: _dolly_template\n" in task and "task: sdrrl_dolly_ind\n" in task
    assert "  - sdrrlgroup_dolly\n" in task and "  - sdrrlgroup_ind\n" in task and "  sdrrl_lang: ind\n" in task
    # no table of the paper has it, so it has no sdrrlavg_* group (the paper's Avg. columns)
    assert not any("dolly" in name for name in files if name.startswith("groups/"))
    assert sum(name.startswith("sdrrl_dolly_") for name in files) == 17  # 16 targets and English
    assert generator.main(["--check"]) == 1 and "sdrrl_dolly_ind.yaml" in capsys.readouterr().err

    from sdrrl.cli import main

    assert main(["languages", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["khm"]["eval"] == ["belebele", "flores", "mkqa", "offtarget", "dolly"]


def test_a_new_benchmark_is_scored_by_sdrrl_score(tmp_path, extended, capsys):
    """Its off-target rate by the real gcld3, from lm-eval's logged samples, with no scoring code."""
    from sdrrl.cli import main

    answers = ["Saya suka makan nasi goreng bersama keluarga saya setiap pagi sebelum berangkat kerja.",
               "I like to eat fried rice with my family every morning before I leave for work."]
    samples = tmp_path / "samples_sdrrl_dolly_ind_2024-05-01T10-00-00.123.jsonl"
    samples.write_text("".join(json.dumps({"doc": {"lang": "ind"}, "filtered_resps": [a]}) + "\n" for a in answers),
                       encoding="utf-8")
    assert main(["score", str(samples), "--no-comet", "--output", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert scores["tasks"]["sdrrl_dolly_ind"]["offtarget"] == 0.5
    assert scores["groups"] == {} and scores["incomplete_groups"] == {}  # no paper table: no Avg.


def _results(folder: Path, model: str, results: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "results_2024-05-01T10-00-00.json").write_text(json.dumps({
        "results": {task: {f"{k},none": v for k, v in metrics.items()} for task, metrics in results.items()},
        "config": {"model_args": f"pretrained={model},dtype=bfloat16"}}), encoding="utf-8")


def test_a_new_method_family_and_benchmark_reach_the_report(tmp_path, extended):
    from sdrrl.cli import main

    res = tmp_path / "results"
    _results(res / "a", "saves/mistral-7b/sdrrl-only-tt/eng-ind",
             {"sdrrl_dolly_ind": {"offtarget": 0.25}, "sdrrl_belebele_ind": {"acc": 0.5}})
    _results(res / "b", "saves/llama2-7b/sdrrl-only-tt/eng-ind",
             {"sdrrl_dolly_ind": {"offtarget": 0.5}, "sdrrl_belebele_ind": {"acc": 0.625}})
    _results(res / "c", "mistralai/Mistral-7B-v0.1", {"sdrrl_dolly_ind": {"offtarget": 0.75}})
    out = tmp_path / "report"
    assert main(["report", str(res), "--out", str(out)]) == 0
    data = json.loads((out / "tables.json").read_text(encoding="utf-8"))
    assert sorted((r["method"], r["tgt"], r["model"]) for r in data["runs"]) == [
        ("base", None, "mistral"), ("sdrrl-only-tt", "ind", "llama2"), ("sdrrl-only-tt", "ind", "mistral")]
    cells = {(c["table"], c["benchmark"], c["direction"], c["method"], c["column"]): c for c in data["cells"]}
    mine = cells[("2", "belebele", "", "sdrrl-only-tt", "ind")]   # its row in the paper's Table 2 (LLaMA-2)
    assert mine["ours"] == pytest.approx(62.5) and mine["paper"] is None
    assert cells[("offtarget-mistral", "dolly", "", "sdrrl-only-tt eng-ind (mistral)", "ind")]["ours"] == 25.0
    assert cells[("offtarget-mistral", "dolly", "", "base (mistral)", "ind")]["ours"] == 75.0
    assert cells[("offtarget-llama2", "dolly", "", "sdrrl-only-tt eng-ind", "ind")]["ours"] == 50.0
    md = (out / "REPORT.md").read_text(encoding="utf-8")
    assert "| only D_TT | " in md and "**Dolly**" in md and "## Off-target rates (appendix E), mistral" in md
    assert (out / "plots" / "offtarget-mistral.png").stat().st_size > 10_000
