"""``sdrrl report``: every average and every difference like for like (issue 20).

Runs are lm-eval results files written here with known values (lm-eval's shape: ``results[<task>]
["<metric>,none"]``, the model path in ``config.model_args``); every expected number is computed by
hand below from those values and the paper's (Tables 2-12 as the paper prints them), and checked in
REPORT.md, tables.csv, tables.json and the plots' data."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from statistics import fmean

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER_CSV = REPO / "plugin" / "sdrrl" / "data" / "paper_results.csv"
TOL = 1e-9


def _paper() -> dict[tuple, float]:
    with PAPER_CSV.open(encoding="utf-8") as f:
        return {(int(r["table"]), r["benchmark"], r["metric"], r["direction"], r["model"], r["method"], r["lang"]):
                float(r["value"]) for r in csv.DictReader(f)}


P = _paper()


def write_run(root: Path, name: str, model_path: str, results: dict[str, dict[str, object]]) -> Path:
    """One lm-eval output folder: ``results`` task -> metric -> value (lm-eval's scale: fractions for
    accuracy, ROUGE, F1 and COMET, spBLEU as is; strings for the recorded settings)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "results_2024-05-01T10-00-00.json").write_text(json.dumps({
        "results": {task: {f"{k},none": v for k, v in metrics.items()} for task, metrics in results.items()},
        "config": {"model_args": f"pretrained={model_path},dtype=bfloat16", "limit": None},
        "lm_eval_version": "0.4.13"}), encoding="utf-8")
    return folder


def report(tmp_path: Path, *folders: Path, args: tuple[str, ...] = ()) -> tuple[str, dict, list[dict], Path]:
    from sdrrl.cli import main

    out = tmp_path / "report"
    assert main(["report", *map(str, folders), *args, "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text(encoding="utf-8")
    data = json.loads((out / "tables.json").read_text(encoding="utf-8"))
    with (out / "tables.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return md, data, rows, out


def cells(data: dict) -> dict[tuple, dict]:
    return {(c["table"], c["direction"], c["metric"], c["method"], c["column"]): c for c in data["cells"]}


def csv_cell(rows: list[dict], table, direction, metric, method, column) -> dict:
    (row,) = [r for r in rows if (r["table"], r["direction"], r["metric"], r["method"], r["column"])
              == (table, direction, metric, method, column)]
    return row


def num(v: float, signed: bool = False) -> str:
    v = round(v, 2) + 0.0
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def section(md: str, heading: str) -> str:
    start = md.index(heading)
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else None]


def md_row(md: str, table_heading: str, sub: str, label: str, change_view: bool = False) -> list[str]:
    """The cells of row ``label`` under the bold (or, change view: italic) section title ``sub``."""
    text = section(md, table_heading)
    marker = f"*{sub}*" if change_view else f"**{sub}**"
    if change_view:
        text = text[text.index("Change against SFT"):]
    start = text.index(marker + "\n")
    block = text[start:].split("\n\n")[1]
    (line,) = [ln for ln in block.splitlines() if ln.startswith(f"| {label} |")]
    return [c.strip() for c in line.strip().strip("|").split("|")][1:]


def plot_series(out: Path, name: str, panel_title_start: str, label: str) -> tuple[list, list]:
    data = json.loads((out / "plots" / f"{name}.json").read_text(encoding="utf-8"))
    (panel,) = [p for p in data["panels"] if p["title"].startswith(panel_title_start)]
    (series,) = [s for s in panel["series"] if s["label"] == label]
    return panel["x"], series["values"]


# ---- LLaMA-2: runs over different languages, a missing metric, MKQA's English ---------------------

def llama_runs(root: Path) -> list[Path]:
    """SFT evaluated on ind, jpn, kor; SDRRL eng-ind and eng-jpn (the Japanese run lacks XL-Sum's
    ROUGE-L); one ablation on Indonesian only. Runs of Indonesian (no MKQA in the paper's Table 5)
    report MKQA's English too, which must enter no average."""
    sft = write_run(root, "sft", "saves/llama2-7b/sft/eng", {
        "sdrrl_belebele_ind": {"acc": 0.40}, "sdrrl_belebele_jpn": {"acc": 0.30}, "sdrrl_belebele_kor": {"acc": 0.20},
        "sdrrl_belebele_eng": {"acc": 0.60},
        "sdrrl_flores_eng-ind": {"spbleu": 10.0}, "sdrrl_flores_eng-jpn": {"spbleu": 8.0},
        "sdrrl_flores_ind-eng": {"spbleu": 20.0}, "sdrrl_flores_jpn-eng": {"spbleu": 15.0},
        "sdrrl_xlsum_ind": {"rouge1": 0.15, "rougeL": 0.10}, "sdrrl_xlsum_jpn": {"rouge1": 0.08, "rougeL": 0.05},
        "sdrrl_xlsum_eng": {"rouge1": 0.25, "rougeL": 0.20},
        "sdrrl_mkqa_jpn": {"f1": 0.30}, "sdrrl_mkqa_eng": {"f1": 0.40}})
    ind = write_run(root, "sdrrl-ind", "saves/llama2-7b/sdrrl/eng-ind", {
        "sdrrl_belebele_ind": {"acc": 0.45}, "sdrrl_belebele_eng": {"acc": 0.61},
        "sdrrl_flores_eng-ind": {"spbleu": 12.0}, "sdrrl_flores_ind-eng": {"spbleu": 21.0},
        "sdrrl_xlsum_ind": {"rouge1": 0.18, "rougeL": 0.12}, "sdrrl_xlsum_eng": {"rouge1": 0.26, "rougeL": 0.21},
        "sdrrl_mkqa_eng": {"f1": 0.50}})
    jpn = write_run(root, "sdrrl-jpn", "saves/llama2-7b/sdrrl/eng-jpn", {
        "sdrrl_belebele_jpn": {"acc": 0.33}, "sdrrl_belebele_eng": {"acc": 0.59},
        "sdrrl_flores_eng-jpn": {"spbleu": 9.0}, "sdrrl_flores_jpn-eng": {"spbleu": 16.5},
        "sdrrl_xlsum_jpn": {"rouge1": 0.09}, "sdrrl_xlsum_eng": {"rouge1": 0.24, "rougeL": 0.19},
        "sdrrl_mkqa_jpn": {"f1": 0.35}, "sdrrl_mkqa_eng": {"f1": 0.41}})
    ablation = write_run(root, "no-cs", "saves/llama2-7b/sdrrl-no-cs/eng-ind", {
        "sdrrl_belebele_ind": {"acc": 0.42}, "sdrrl_belebele_eng": {"acc": 0.60},
        "sdrrl_flores_eng-ind": {"spbleu": 11.0}, "sdrrl_flores_ind-eng": {"spbleu": 20.5},
        "sdrrl_xlsum_ind": {"rougeL": 0.11}, "sdrrl_xlsum_eng": {"rougeL": 0.20},
        "sdrrl_mkqa_eng": {"f1": 0.45}})
    return [sft, ind, jpn, ablation]


def _llama(key_table, benchmark, metric, direction, method, lang):
    return P[(key_table, benchmark, metric, direction, "llama2", method, lang)]


def p2(method, lang, d=""):
    return _llama(2, "belebele", "acc", d, method, lang)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    md, data, rows, out = report(root, *llama_runs(root / "res"))
    return md, cells(data), rows, out


def test_table6_compares_an_ablation_with_sft_on_the_ablations_languages(llama):
    """The ablation ran on Indonesian only: its change against SFT is over Indonesian (+2.00), not
    against SFT's mean over Indonesian, Japanese and Korean (+12.00); the paper has no per-language
    values for it, so its printed 14-language average is shown and not compared (§)."""
    md, c, _, _ = llama
    nlu = c[("6", "", "score", "sdrrl-no-cs", "nlu-tar")]
    assert nlu["ours"] == pytest.approx(42.0) and nlu["ours_vs_sft"] == pytest.approx(42 - 40)
    assert nlu["paper"] is None and nlu["diff"] is None and nlu["paper_vs_sft"] is None
    assert nlu["not_compared"] and nlu["paper_printed"] == 50.37 and nlu["n_vs_sft"] == 1
    assert md_row(md, "## Table 6:", "averages", "- code switching")[0] == "42.00 / 50.37§"
    assert md_row(md, "## Table 6:", "averages", "- code switching", change_view=True)[0] == "+2.00 / — (1 lang)"
    assert "§ - code switching, averages, NLU TAR.: the paper prints 50.37" in md
    # SDRRL's two languages beside the paper's mean over the same two, starred
    sd = c[("6", "", "score", "sdrrl", "nlu-tar")]
    paper_sd = fmean([p2("sdrrl", "ind"), p2("sdrrl", "jpn")])
    assert sd["ours"] == pytest.approx(39.0) and sd["paper"] == pytest.approx(paper_sd) and sd["recomputed"]
    assert md_row(md, "## Table 6:", "averages", "SDRRL")[0] == f"39.00 / {num(paper_sd)}* ({num(39 - paper_sd, True)}; 2 langs)"
    # SFT's row: the paper's values computed from Table 2 over SFT's three languages
    sft = c[("6", "", "score", "sft", "nlu-tar")]
    assert sft["ours"] == pytest.approx(30.0) and sft["recomputed"]
    assert sft["paper"] == pytest.approx(fmean([p2("sft", "ind"), p2("sft", "jpn"), p2("sft", "kor")]))


def test_a_missing_metric_leaves_its_cells_out_on_both_sides(llama):
    """The Japanese SDRRL run lacks XL-Sum ROUGE-L: NLG against SFT is over the cells both runs have."""
    md, c, _, _ = llama
    ch = fmean([fmean([12 - 10, 9 - 8]), 12 - 10, 35 - 30])   # FLORES ind jpn, ROUGE-L ind, MKQA jpn
    pch = fmean([fmean([_llama(3, "flores", "spbleu", "eng-x", "sdrrl", x) - _llama(3, "flores", "spbleu", "eng-x", "sft", x)
                        for x in ("ind", "jpn")]),
                 _llama(4, "xlsum", "rougeL", "", "sdrrl", "ind") - _llama(4, "xlsum", "rougeL", "", "sft", "ind"),
                 _llama(5, "mkqa", "f1", "", "sdrrl", "jpn") - _llama(5, "mkqa", "f1", "", "sft", "jpn")])
    t6 = c[("6", "", "score", "sdrrl", "nlg-tar")]
    assert t6["ours_vs_sft"] == pytest.approx(ch) and t6["paper_vs_sft"] == pytest.approx(pch) and t6["n_vs_sft"] == 2
    assert md_row(md, "## Table 6:", "averages", "SDRRL", change_view=True)[2] == f"{num(ch, True)} / {num(pch, True)}* (2 langs)"
    nlg = fmean([fmean([12, 9]), 12, 35])
    paper_nlg = fmean([fmean([_llama(3, "flores", "spbleu", "eng-x", "sdrrl", x) for x in ("ind", "jpn")]),
                       _llama(4, "xlsum", "rougeL", "", "sdrrl", "ind"), _llama(5, "mkqa", "f1", "", "sdrrl", "jpn")])
    assert t6["ours"] == pytest.approx(nlg) and t6["paper"] == pytest.approx(paper_nlg) and t6["recomputed"]
    # Table 4: the Avg. is Indonesian alone on both sides; Japanese is "—"
    rl = c[("4", "", "rougeL", "sdrrl", "avg")]
    assert rl["ours"] == pytest.approx(12.0) and rl["paper"] == pytest.approx(_llama(4, "xlsum", "rougeL", "", "sdrrl", "ind"))
    assert rl["ours_vs_sft"] == pytest.approx(2.0) and rl["n_vs_sft"] == 1 and rl["n"] == 1
    assert c[("4", "", "rougeL", "sdrrl", "jpn")]["ours"] is None
    assert md_row(md, "## Table 4:", "ROUGE-L on the target language", "SDRRL")[1] == "— / 22.81"


def test_mkqa_english_enters_only_for_runs_of_mkqa_languages(llama):
    """MKQA has no Indonesian column in the paper: the Indonesian runs' MKQA English (50, 45) is in no average."""
    md, c, _, _ = llama
    nlg_eng = fmean([fmean([21, 16.5]), fmean([21, 19]), 41])   # FLORES X→English, ROUGE-L English, MKQA English (jpn)
    paper = fmean([fmean([_llama(3, "flores", "spbleu", "x-eng", "sdrrl", x) for x in ("ind", "jpn")]),
                   fmean([_llama(4, "xlsum", "rougeL", "eng", "sdrrl", x) for x in ("ind", "jpn")]),
                   _llama(5, "mkqa", "f1", "eng", "sdrrl", "jpn")])
    sd = c[("6", "", "score", "sdrrl", "nlg-eng")]
    assert sd["ours"] == pytest.approx(nlg_eng) and sd["paper"] == pytest.approx(paper)
    assert c[("6", "", "score", "sdrrl-no-cs", "nlg-eng")]["ours"] == pytest.approx(fmean([20.5, 20.0]))
    assert c[("5", "eng", "f1", "sdrrl", "avg")]["ours"] == pytest.approx(41.0)


def test_table2_averages_and_changes_over_the_same_languages(llama):
    md, c, rows, out = llama
    sft_avg = c[("2", "", "acc", "sft", "avg")]
    assert sft_avg["ours"] == pytest.approx(fmean([40, 30, 20]))
    assert sft_avg["paper"] == pytest.approx(fmean([p2("sft", "ind"), p2("sft", "jpn"), p2("sft", "kor")]))
    assert sft_avg["recomputed"] and sft_avg["n"] == 3 and sft_avg["paper_printed"] == 45.58
    sd = c[("2", "", "acc", "sdrrl", "avg")]
    paper_sd = fmean([p2("sdrrl", "ind"), p2("sdrrl", "jpn")])
    assert sd["ours"] == pytest.approx(39.0) and sd["paper"] == pytest.approx(paper_sd) and sd["n"] == 2
    assert sd["diff"] == pytest.approx(39.0 - paper_sd)
    # the change against SFT over ind and jpn only (SFT's Korean left out of both sides)
    change = fmean([45 - 40, 33 - 30])
    paper_change = fmean([p2("sdrrl", "ind") - p2("sft", "ind"), p2("sdrrl", "jpn") - p2("sft", "jpn")])
    assert sd["ours_vs_sft"] == pytest.approx(change) and sd["paper_vs_sft"] == pytest.approx(paper_change)
    assert sd["n_vs_sft"] == 2 and sd["vs_sft_recomputed"]
    assert md_row(md, "## Table 2:", "accuracy on the target language", "SDRRL")[-1] == \
        f"39.00 / {num(paper_sd)}* ({num(39.0 - paper_sd, True)}; 2 langs)"
    assert md_row(md, "## Table 2:", "accuracy on the target language", "SDRRL", change_view=True)[-1] == \
        f"+4.00 / {num(paper_change, True)}* (2 langs)"
    # English: SFT has every column (one English score), SDRRL two; the change is +1 and -1: +0.00
    eng = c[("2", "eng", "acc", "sdrrl", "avg")]
    assert eng["ours_vs_sft"] == pytest.approx(0.0) and eng["n_vs_sft"] == 2
    assert eng["paper_vs_sft"] == pytest.approx(fmean([p2("sdrrl", "ind", "eng") - 65.39, p2("sdrrl", "jpn", "eng") - 65.39]))
    assert md_row(md, "## Table 2:", "accuracy on English", "SDRRL", change_view=True)[-1].startswith("+0.00 / ")
    full = c[("2", "eng", "acc", "sft", "avg")]   # all 14 languages: the printed Avg., no star
    assert full["ours"] == pytest.approx(60.0) and full["paper"] == pytest.approx(65.39) and not full["recomputed"]
    assert md_row(md, "## Table 2:", "accuracy on English", "SFT")[-1] == "60.00 / 65.39 (-5.39)"

    # CSV: the same numbers as the JSON
    row = csv_cell(rows, "2", "", "acc", "sdrrl", "avg")
    assert float(row["paper"]) == pytest.approx(paper_sd) and row["n"] == "2" and row["recomputed"] == "True"
    assert float(row["ours_vs_sft"]) == pytest.approx(change) and float(row["paper_vs_sft"]) == pytest.approx(paper_change)
    row = csv_cell(rows, "6", "", "score", "sdrrl-no-cs", "nlu-tar")
    assert float(row["ours_vs_sft"]) == pytest.approx(2.0) and row["paper"] == "" and row["not_compared"] == "True"
    # plots draw exactly these numbers: the change view and the gap to the paper
    x, ours = plot_series(out, "gains_table2", "accuracy on the target language", "SDRRL (ours)")
    _, theirs = plot_series(out, "gains_table2", "accuracy on the target language", "SDRRL (paper)")
    assert x[-1] == "Avg." and ours[-1] == pytest.approx(change) and theirs[-1] == pytest.approx(paper_change)
    assert ours[x.index("IND")] == pytest.approx(5.0) and ours[x.index("KOR")] is None
    _, gap = plot_series(out, "gap_table2", "accuracy on the target language", "SDRRL")
    assert gap[-1] == pytest.approx(39.0 - paper_sd) and gap[x.index("JPN")] == pytest.approx(33 - p2("sdrrl", "jpn"))
    x6, ours6 = plot_series(out, "gains_table6", "averages", "- code switching (ours)")
    assert ours6[x6.index("NLU TAR.")] == pytest.approx(2.0)


# ---- SeaLLM: a pair of SDRRL runs over two of the three languages ------------------------------------

def seallm_runs(root: Path) -> list[Path]:
    """SFT on SeaLLM's three languages; SDRRL eng-ind and eng-tha, each +1.00 over SFT on BELEBELE."""
    sft = write_run(root, "sft", "saves/seallm-7b/sft/eng", {
        "sdrrl_belebele_ind": {"acc": 0.40}, "sdrrl_belebele_tha": {"acc": 0.38}, "sdrrl_belebele_khm": {"acc": 0.30}})
    ind = write_run(root, "sdrrl-ind", "saves/seallm-7b/sdrrl/eng-ind", {"sdrrl_belebele_ind": {"acc": 0.41}})
    tha = write_run(root, "sdrrl-tha", "saves/seallm-7b/sdrrl/eng-tha", {"sdrrl_belebele_tha": {"acc": 0.39}})
    return [sft, ind, tha]


def test_seallm_pair_table7_compares_the_same_languages_with_the_right_sign(tmp_path):
    md, data, rows, out = report(tmp_path, *seallm_runs(tmp_path / "res"))
    c = cells(data)
    p8 = lambda method, lang: P[(8, "belebele", "acc", "", "seallm", method, lang)]
    paper_sd = fmean([p8("sdrrl", "ind"), p8("sdrrl", "tha")])
    paper_change = fmean([p8("sdrrl", x) - p8("sft", x) for x in ("ind", "tha")])
    for table, column in (("7", "belebele"), ("7", "avg"), ("8", "avg")):
        sd = c[(table, "", "score" if table == "7" else "acc", "sdrrl", column)]
        assert sd["ours"] == pytest.approx(40.0) and sd["paper"] == pytest.approx(paper_sd) and sd["recomputed"], table
        assert sd["ours_vs_sft"] == pytest.approx(1.0) and sd["n_vs_sft"] == 2, table   # +1.00, not -1.50
        assert sd["paper_vs_sft"] == pytest.approx(paper_change), table
    assert md_row(md, "## Table 7:", "on the target language", "SDRRL")[0] == \
        f"40.00 / {num(paper_sd)}* ({num(40 - paper_sd, True)}; 2 langs)"
    assert md_row(md, "## Table 7:", "on the target language", "SDRRL", change_view=True)[0] == \
        f"+1.00 / {num(paper_change, True)}* (2 langs)"
    sft = c[("7", "", "score", "sft", "belebele")]   # SFT has all three: the printed Avg. (the row's mean)
    assert sft["ours"] == pytest.approx(36.0) and sft["paper_printed"] == 42.24 and not sft["recomputed"]
    assert sft["paper"] == pytest.approx(fmean(p8("sft", x) for x in ("ind", "tha", "khm")))
    assert md_row(md, "## Table 7:", "on the target language", "SFT")[0] == \
        f"36.00 / 42.24 ({num(36 - fmean(p8('sft', x) for x in ('ind', 'tha', 'khm')), True)})"
    x, values = plot_series(out, "gains_table7", "on the target language", "SDRRL (ours)")
    assert values[x.index("BELEBELE")] == pytest.approx(1.0) and values[x.index("Avg.")] == pytest.approx(1.0)
    row = csv_cell(rows, "7", "", "score", "sdrrl", "belebele")
    assert float(row["ours_vs_sft"]) == pytest.approx(1.0) and float(row["diff"]) == pytest.approx(40 - paper_sd)


# ---- a perfect reproduction: every difference is +0.00 ----------------------------------------------

LANGUAGE_TABLES = (2, 3, 4, 5, 8, 9, 10, 11)


def paper_runs(root: Path) -> list[Path]:
    """Runs whose every value is the paper's: each method of Tables 2-5 and 8-11 per language
    (SFT: one run per model family), and the ablations of Table 6 with every cell at their printed
    average. The paper's SeaLLM SFT has two English scores for one model (Tables 8, 9): left out."""
    from sdrrl import catalog

    values: dict[tuple, dict[str, dict[str, float]]] = {}
    clash: set[tuple] = set()
    for (table, b, m, d, model, method, lang), v in P.items():
        if table not in LANGUAGE_TABLES or lang == "avg":
            continue
        bench = catalog.benchmark(b)
        run = (model, method, None if method == "sft" else lang)
        task = bench.task_for(d, lang)
        seen = values.setdefault(run, {}).setdefault(task, {})
        if m in seen and seen[m] != v / bench.metric(m).scale:
            clash.add((run, task))
        seen[m] = v / bench.metric(m).scale
    for run, task in clash:
        del values[run][task]
    for method in ("sdrrl-no-tl-lt", "sdrrl-no-synth", "sdrrl-no-mt-comp", "sdrrl-no-cs", "sdrrl-only-mt-comp"):
        printed = {(k, d): P[(6, k, "score", d, "llama2", method, "avg")] for k in ("nlu", "nlg") for d in ("", "eng")}
        for lang in catalog.family("llama2").paper_targets:
            run = values.setdefault(("llama2", method, lang), {})
            run[f"sdrrl_belebele_{lang}"] = {"acc": printed[("nlu", "")] / 100}
            run["sdrrl_belebele_eng"] = {"acc": printed[("nlu", "eng")] / 100}
            run[f"sdrrl_flores_eng-{lang}"] = {"spbleu": printed[("nlg", "")]}
            run[f"sdrrl_flores_{lang}-eng"] = {"spbleu": printed[("nlg", "eng")]}
            for b, metric in (("xlsum", "rougeL"), ("mkqa", "f1")):
                if lang in catalog.benchmark(b).paper_languages("llama2"):
                    run[f"sdrrl_{b}_{lang}"] = {metric: printed[("nlg", "")] / 100}
                    run[f"sdrrl_{b}_eng"] = {metric: printed[("nlg", "eng")] / 100}
    folders = []
    for (model, method, lang), results in values.items():
        save = catalog.family(model).save_dir
        path = f"saves/{save}/{method}/eng" if lang is None else f"saves/{save}/{method}/eng-{lang}"
        folders.append(write_run(root, f"{model}-{method}-{lang}", path, results))
    return folders


def test_a_perfect_reproduction_differs_by_zero_everywhere(tmp_path):
    """Ours = the paper's per-language values: +0.00 in every cell, average and change, including the
    Avg. of Table 10 (printed Avgs. that are not the mean of their row: shown with ‡, no -2.52) and
    Table 7 (which repeats them); every claim of the paper holds."""
    import re

    md, data, rows, out = report(tmp_path, *paper_runs(tmp_path / "res"))
    compared = [c for c in data["cells"] if c["diff"] is not None]
    assert all(abs(c["diff"]) < 1e-9 for c in compared)
    # every number of Tables 2-11 (978 minus Table 12's 4), less the SeaLLM SFT English cells left out
    # (Table 8: 3 + Avg., Table 9: 2 x (2 + Avg.), and the two Table 7 columns they make), plus the
    # SFT row of Table 6 (4 averages, computed from Tables 2-5)
    assert len(compared) == 978 - 4 - 10 - 2 + 4
    assert all(abs(c["ours_vs_sft"] - c["paper_vs_sft"]) < 1e-9 for c in data["cells"]
               if c["ours_vs_sft"] is not None and c["paper_vs_sft"] is not None)
    # Table 10, SFT X→English spBLEU: printed 28.49, the mean of the row 25.97
    c = cells(data)[("10", "x-eng", "spbleu", "sft", "avg")]
    row_mean = fmean(P[(10, "flores", "spbleu", "x-eng", "seallm", "sft", x)] for x in ("ind", "tha", "khm"))
    assert c["printed_not_mean"] and c["paper_printed"] == 28.49 and c["paper"] == pytest.approx(row_mean)
    assert md_row(md, "## Table 10:", "spBLEU X→English", "SFT")[-1] == f"{num(row_mean)} / 28.49‡ (+0.00)"
    assert f"‡ SFT, spBLEU X→English, Avg.: the paper prints 28.49; the mean of the per-language values it averages is {num(row_mean)}." in md
    t7 = cells(data)[("7", "", "score", "sdrrl", "flores")]
    assert t7["printed_not_mean"] and abs(t7["diff"]) < 1e-9 and t7["paper_printed"] == 25.86
    assert cells(data)[("9", "eng", "rouge1", "sdrrl", "avg")]["printed_not_mean"]      # 23.01, mean 23.51
    assert cells(data)[("8", "", "acc", "tsft", "avg")]["printed_not_mean"]             # 42.77, mean 42.66
    assert not cells(data)[("2", "", "acc", "sdrrl", "avg")]["printed_not_mean"]
    # in REPORT.md every difference "ours / paper (ours − paper)" is +0.00, and every change is
    # the paper's ("+x / +x")
    tables_md = md[md.index("## Table 2:"):md.index("## Off-target")]
    diffs = re.findall(r"[0-9.]+ / [0-9.]+[*‡§]? \(([+-][0-9.]+)", tables_md)
    assert len(diffs) == len(compared) and set(diffs) == {"+0.00"}
    changes = re.findall(r"\| ([+-][0-9.]+) / ([+-][0-9.]+)", tables_md)
    assert len(changes) > 500 and all(a == b for a, b in changes)
    # the summary: every compared cell within tolerance; the claims hold on these runs
    assert all(t["within"] == t["compared"] > 0 for t in data["summary"]["tables"])
    assert {cl["status"] for cl in data["summary"]["claims"]} == {"holds"}
    gap = json.loads((out / "plots" / "gap_table10.json").read_text(encoding="utf-8"))
    assert all(abs(v) < 1e-9 for p in gap["panels"] for s in p["series"] for v in s["values"] if v is not None)


# ---- Table 12: gains per source language ----------------------------------------------------------

def test_table12_gains_over_the_cells_both_runs_have(tmp_path):
    res = tmp_path / "res"
    folders = llama_runs(res)[:2]   # SFT and SDRRL eng-ind
    folders.append(write_run(res, "sft-fra", "saves/llama2-7b/sft/fra", {
        "sdrrl_belebele_ind": {"acc": 0.41}, "sdrrl_belebele_jpn": {"acc": 0.31}}))
    folders.append(write_run(res, "sdrrl-fra-ind", "saves/llama2-7b/sdrrl/fra-ind", {"sdrrl_belebele_ind": {"acc": 0.44}}))
    md, data, rows, out = report(tmp_path, *folders)
    c = cells(data)
    # English source: SDRRL eng-ind - SFT over Indonesian; the paper's from Table 2 over the same
    eng = c[("12", "", "gain", "English source", "nlu")]
    assert eng["ours"] == pytest.approx(45 - 40) and eng["paper"] == pytest.approx(p2("sdrrl", "ind") - p2("sft", "ind"))
    assert eng["recomputed"] and eng["paper_printed"] == 6.29 and eng["tolerance"] == 4.0   # twice BELEBELE's
    nlg = c[("12", "", "gain", "English source", "nlg")]   # FLORES and ROUGE-L on Indonesian (MKQA has none)
    assert nlg["ours"] == pytest.approx(fmean([12 - 10, 12 - 10]))
    assert nlg["paper"] == pytest.approx(fmean([
        _llama(3, "flores", "spbleu", "eng-x", "sdrrl", "ind") - _llama(3, "flores", "spbleu", "eng-x", "sft", "ind"),
        _llama(4, "xlsum", "rougeL", "", "sdrrl", "ind") - _llama(4, "xlsum", "rougeL", "", "sft", "ind")]))
    # French source: the paper printed only its gain over ind, jpn, kor: ours (Indonesian) is not compared
    fra = c[("12", "", "gain", "French source", "nlu")]
    assert fra["ours"] == pytest.approx(44 - 41) and fra["paper"] is None and fra["not_compared"]
    assert md_row(md, "## Table 12:", "gain of SDRRL over SFT on the target languages", "French source")[0] == "3.00 / 2.94§"
    assert md_row(md, "## Table 12:", "gain of SDRRL over SFT on the target languages", "English source")[0] == \
        f"5.00 / {num(eng['paper'])}* ({num(5 - eng['paper'], True)}; 1 lang)"


# ---- † and the COMET model record -----------------------------------------------------------------

SIG = "nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:2.4.3"


def test_metric_settings_that_differ_from_the_papers_mark_their_cells(tmp_path):
    """A sacrebleu signature or COMET model other than the paper's marks (†) the cells computed with it,
    averages included; the COMET record (``comet_model`` beside ``spbleu_signature``) is printed, and
    results without it say "not recorded"."""
    from sdrrl.report import paper

    res = tmp_path / "res"
    hub_copy = "/root/.cache/huggingface/hub/models--Unbabel--wmt22-comet-da/snapshots/1a2b/checkpoints/model.ckpt"
    sft = write_run(res, "sft", "saves/llama2-7b/sft/eng", {
        "sdrrl_flores_eng-ind": {"spbleu": 10.0, "spbleu_signature": SIG, "comet": 0.80,
                                 "comet_model": "Unbabel/wmt22-comet-da|sha256:" + "a" * 64},
        "sdrrl_flores_eng-jpn": {"spbleu": 8.0, "spbleu_signature": SIG, "comet": 0.70,
                                 "comet_model": f"{hub_copy}|sha256:" + "b" * 64}})
    ind = write_run(res, "ind", "saves/llama2-7b/sdrrl/eng-ind", {
        "sdrrl_flores_eng-ind": {"spbleu": 12.0, "spbleu_signature": SIG.replace("tok:flores200", "tok:13a"),
                                 "comet": 0.85, "comet_model": "/models/tiny-comet/checkpoints/model.ckpt|sha256:" + "c" * 64}})
    jpn = write_run(res, "jpn", "saves/llama2-7b/sdrrl/eng-jpn", {   # older results: no COMET record
        "sdrrl_flores_eng-jpn": {"spbleu": 9.0, "spbleu_signature": SIG, "comet": 0.75}})
    off = write_run(res, "cit", "saves/llama2-7b/cit/eng-ind", {
        "sdrrl_flores_eng-ind": {"spbleu": 11.0, "spbleu_signature": SIG, "comet": float("nan"), "comet_model": "off"}})
    md, data, rows, out = report(tmp_path, sft, ind, jpn, off)
    c = cells(data)
    assert c[("3", "eng-x", "spbleu", "sdrrl", "ind")]["settings_differ"]
    assert c[("3", "eng-x", "spbleu", "sdrrl", "avg")]["settings_differ"]          # averages it
    assert not c[("3", "eng-x", "spbleu", "sdrrl", "jpn")]["settings_differ"]
    assert c[("3", "eng-x", "comet", "sdrrl", "ind")]["settings_differ"]
    assert not c[("3", "eng-x", "comet", "sdrrl", "jpn")]["settings_differ"]       # not recorded: no mark
    assert not any(c[("3", "eng-x", m, "sft", x)]["settings_differ"] for m in ("spbleu", "comet") for x in ("ind", "jpn"))
    assert c[("6", "", "score", "sdrrl", "nlg-tar")]["settings_differ"]             # NLG takes FLORES spBLEU
    assert c[("3", "eng-x", "comet", "cit", "ind")]["ours"] is None
    row = md_row(md, "## Table 3:", "spBLEU English→X", "SDRRL")
    assert row[7] == "12.00† / 35.32 (-23.32)" and row[8] == "9.00 / 20.51 (-11.51)" and row[-1].startswith("10.50† / ")
    assert md_row(md, "## Table 3:", "COMET English→X", "SDRRL")[7] == "85.00† / 86.00 (-1.00)"
    assert "† a metric setting of ours differs from the paper's" in section(md, "## Table 3:")
    prov = section(md, "## Metric signatures")
    assert "COMET model `/models/tiny-comet/checkpoints/model.ckpt` (checkpoint sha256:" + "c" * 64 + \
        "): **not the paper's model**, its COMET cells are marked † (runs: sdrrl eng-ind)" in prov
    assert "COMET model `Unbabel/wmt22-comet-da` (checkpoint sha256:" + "a" * 64 + "): the paper's model" in prov
    assert f"COMET model `{hub_copy}` (checkpoint sha256:" + "b" * 64 + "): the paper's model" in prov
    assert "COMET turned off (its cells are empty) (runs: cit eng-ind)" in prov
    assert "COMET model not recorded in the results of sdrrl eng-jpn" in prov
    assert "tok:13a" in prov and "**differs from the paper's settings**: its spBLEU cells are marked †" in prov
    # the summary counts the marked cells among those compared
    t3 = next(t for t in data["summary"]["tables"] if t["table"] == "3")
    assert t3["settings_differ"] == sum(1 for x in data["cells"] if x["table"] == "3" and x["diff"] is not None
                                        and x["settings_differ"]) == 4   # spBLEU IND + Avg., COMET IND + Avg.
    # the rule itself
    assert not paper.setting_differs("spbleu", paper.SIGNATURE) and not paper.setting_differs("spbleu", None)
    assert paper.setting_differs("spbleu", SIG.replace("case:mixed", "case:lc"))
    assert not paper.setting_differs("comet", "Unbabel/wmt22-comet-da") and not paper.setting_differs("comet", "off")
    assert paper.setting_differs("comet", "Unbabel/wmt22-cometkiwi-da|sha256:00")


# ---- plots a reader can read ------------------------------------------------------------------------

def test_every_plot_has_labelled_axes_and_one_colour_per_run(tmp_path):
    from sdrrl import catalog

    res = tmp_path / "res"
    folders = [write_run(res, "sft", "saves/llama2-7b/sft/eng", {"sdrrl_mkqa_jpn": {"f1": 0.3, "offtarget": 0.5}}),
               write_run(res, "ind", "saves/llama2-7b/sdrrl/eng-ind", {"sdrrl_flores_eng-ind": {"spbleu": 1.0, "offtarget": 0.25},
                                                                       "sdrrl_mkqa_jpn": {"f1": 0.2, "offtarget": 0.75}}),
               write_run(res, "jpn", "saves/llama2-7b/sdrrl/eng-jpn", {"sdrrl_mkqa_jpn": {"f1": 0.4, "offtarget": 0.125}}),
               write_run(res, "kor", "saves/llama2-7b/sdrrl/eng-kor", {"sdrrl_mkqa_kor": {"f1": 0.4, "offtarget": 0.0}})]
    md, data, rows, out = report(tmp_path, *folders)
    for f in sorted((out / "plots").glob("*.json")):
        plot = json.loads(f.read_text(encoding="utf-8"))
        assert plot["xlabel"] and plot["title"], f.name
        for panel in plot["panels"]:
            assert panel["ylabel"] and "(" in panel["ylabel"], (f.name, panel["title"])   # with its unit
            assert all(len(s["values"]) == len(panel["x"]) for s in panel["series"])
        assert (out / "plots" / f.with_suffix(".png").name).stat().st_size > 10_000
    off = json.loads((out / "plots" / "offtarget-llama2.json").read_text(encoding="utf-8"))
    (mkqa,) = [p for p in off["panels"] if p["title"] == "MKQA"]
    colors = {s["label"]: s["color"] for s in mkqa["series"]}
    assert set(colors) == {"sft eng", "sdrrl eng-ind", "sdrrl eng-jpn", "sdrrl eng-kor"}
    assert len(set(colors.values())) == 4 and colors["sdrrl eng-ind"] == catalog.color("sdrrl")
    values = {s["label"]: s["values"] for s in mkqa["series"]}
    assert values["sdrrl eng-ind"][mkqa["x"].index("JPN")] == 75.0 and values["sdrrl eng-kor"][mkqa["x"].index("KOR")] == 0.0
    assert values["sdrrl eng-jpn"][-1] == 12.5 and mkqa["ylabel"] == "off-target rate (%)"
    # the off-target table says over how many languages each run's Avg. is
    assert md_row(md, "## Off-target rates", "MKQA", "sdrrl eng-ind")[-1] == "75.00 (1)"
    gap = json.loads((out / "plots" / "gap_table5.json").read_text(encoding="utf-8"))
    assert gap["panels"][0]["band"] == catalog.benchmark("mkqa").metric("f1").tolerance
