"""The paper's tables filled with our values.

Our lm-eval values are scaled as the paper prints them (x100 for accuracy, ROUGE, F1, COMET and the
off-target rate; spBLEU as is). A cell our runs do not give stays None (shown as "—"), never 0.

Every average and every difference is like for like (``sdrrl.report.compare``): the paper's value
beside ours is over exactly the languages and benchmark cells ours has, and a change against our
SFT run is over the cells both runs have, the paper's change over the same cells.

NLU / NLG averages (Tables 6, 12), as the paper's numbers show they are computed (checked against
Tables 2-5 in tests/test_report.py): NLU = BELEBELE accuracy averaged over the target languages;
NLG = the mean over FLORES spBLEU, XL-Sum ROUGE-L and MKQA F1 of each benchmark's average over the
languages the paper's table of it has; "target" uses FLORES English->X and the tasks in the target
language, "English" uses FLORES X->English and the English tasks. Table 7 averages each benchmark's
headline metric over the SeaLLM languages of its table. Which benchmark enters which average with
which metric, the metrics' scales, task names, methods' rows and the model families' tables come
from the catalog (``sdrrl.catalog``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean

from sdrrl import catalog
from sdrrl.errors import SdrrlError
from sdrrl.languages import get as get_language
from sdrrl.report import paper
from sdrrl.report.compare import (AVERAGES_TABLE, BENCHMARK_AVERAGES_TABLE, ROUNDING, SOURCE, Cell, Results, Spec,
                                  all_spec, atom_spec, average_spec, benchmark_spec, change, composite_spec,
                                  family_benchmarks, measure, row_spec)

__all__ = ["Cell", "Results", "Section", "Table", "build", "offtarget_tables", "num", "langs_text", "row_label"]

SECTION_TITLES = {"": "on the target language", "eng": "on English", "x-eng": "X→English",
                  "eng-x": "English→X"}


DASH = "—"


def num(v: float | None, signed: bool = False) -> str:
    """Two decimals as the paper prints them ("—" for none); never "-0.00"."""
    if v is None:
        return DASH
    v = round(v, 2) + 0.0
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def langs_text(n: int | None) -> str:
    return f"{n} lang" + ("" if n == 1 else "s")


def row_label(key: str) -> str:
    """A row's label: a method's (or the base model's) from the catalog; other rows (runs in the
    off-target tables, source languages in Table 12) are keyed by their label already."""
    return catalog.label(key) if key == catalog.BASE or key in catalog.METHODS else key


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return fmean(values) if values else None


@dataclass
class Section:
    title: str
    benchmark: str
    metric: str
    direction: str
    rows: dict[str, list[Cell]] = field(default_factory=dict)      # row key -> one cell per column
    specs: list[Spec] = field(default_factory=list)                # what each column averages


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    labels: list[str]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    has_paper: bool = True
    per_language: bool = False      # Tables 2-5 / 8-11: one column per language, then Avg.
    plots: list[tuple[str, str]] = field(default_factory=list)     # (file under the report, caption)
    colors: dict[str, str] = field(default_factory=dict)           # row key -> plot colour (run rows)

    @property
    def has_ours(self) -> bool:
        return any(c.ours is not None for s in self.sections for cells in s.rows.values() for c in cells)


def _rows_for(res: Results, model: str) -> list[str]:
    """The base model's row when there is a run of it, then the methods of the paper's benchmark tables."""
    ours = res.methods(model)
    return ([catalog.BASE] if catalog.BASE in ours else []) + list(catalog.paper_methods(catalog.BENCHMARK_ROWS))


def _fill(res: Results, sec: Section, model: str, methods) -> None:
    """Each row's cells (ours beside the paper) and their changes against our SFT run (the paper's
    change against its SFT over the same cells)."""
    for method in methods:
        sec.rows[method] = [measure(res, method, model, spec) for spec in sec.specs]
    for method, cells in sec.rows.items():
        if method == catalog.REFERENCE:
            continue
        for cell, spec in zip(cells, sec.specs):
            ch = change(res, method, catalog.REFERENCE, model, spec)
            cell.ours_vs_sft, cell.paper_vs_sft, cell.n_vs_sft, cell.vs_sft_recomputed = \
                ch.ours, ch.paper, ch.n, ch.recomputed


def language_table(res: Results, table: int) -> Table:
    """Tables 2-5 and 8-11: methods x languages + Avg., one section per metric and direction."""
    model, langs = paper.model_of(table), paper.columns(table)
    t = Table(str(table), f"Table {table}: {paper.TITLES[table]}", [*langs, "avg"],
              [*(lang.upper() for lang in langs), "Avg."], [], per_language=True)
    for benchmark, metric, direction in paper.sections(table):
        title = f"{catalog.benchmark(benchmark).metric(metric).label} {SECTION_TITLES[direction]}"
        sec = Section(title, benchmark, metric, direction,
                      specs=[*(atom_spec(table, benchmark, metric, direction, lang) for lang in langs),
                             row_spec(table, benchmark, metric, direction)])
        _fill(res, sec, model, _rows_for(res, model))
        t.sections.append(sec)
    return t


def ablation_table(res: Results, family: catalog.ModelFamily) -> Table:
    """Table 6: NLU / NLG averages of SDRRL and its ablations, target and English; an SFT row (not
    in the paper's table, its paper values computed from the per-language tables) as the reference."""
    model = family.name
    cols = [("nlu", ""), ("nlu", "eng"), ("nlg", ""), ("nlg", "eng")]
    t = Table("6", "Table 6: " + paper.TITLES[6], [f"{b}{'-eng' if d else '-tar'}" for b, d in cols],
              ["NLU TAR.", "NLU ENG", "NLG TAR.", "NLG ENG"], [])
    sec = Section("averages", "nlu/nlg", "score", "",
                  specs=[average_spec(k, s, family) for k, s in cols])
    _fill(res, sec, model, (catalog.REFERENCE, *catalog.paper_methods(catalog.ABLATION_ROWS)))
    t.sections.append(sec)
    t.notes.append("NLU = BELEBELE accuracy; NLG = the mean over FLORES spBLEU (English→X for TAR., "
                   "X→English for ENG), XL-Sum ROUGE-L and MKQA F1 of each benchmark's average over its "
                   "languages. A benchmark enters a language's average only where the paper's table has it for "
                   "that language (MKQA's English only for the runs of MKQA's languages). The SFT row is not in "
                   "the paper's table: its paper values are computed from Tables 2-5 (*).")
    return t


def benchmark_average_table(res: Results, family: catalog.ModelFamily) -> Table:
    """Table 7: per-benchmark averages (the languages of each benchmark's table), target and English."""
    model = family.name
    benches = family_benchmarks(family)
    t = Table("7", "Table 7: " + paper.TITLES[7], [b.name for b in benches] + ["avg"],
              [b.label.upper() for b in benches] + ["Avg."], [])
    for side in ("", "eng"):
        specs = [*(benchmark_spec(b, side, family) for b in benches), all_spec(side, family)]
        sec = Section(SECTION_TITLES[side], "all", "score", side, specs=specs)
        _fill(res, sec, model, _rows_for(res, model))
        t.sections.append(sec)
    t.notes.append("Each column averages the languages of the benchmark's table (Tables 8-11) that ours has; "
                   "FLORES is English→X on the target side and X→English on the English side, as in the paper; "
                   "Avg. is the mean over the benchmarks.")
    return t


def _gain_cell(res: Results, family: catalog.ModelFamily, kind: str, src: str) -> Cell:
    """One cell of Table 12: SDRRL minus the SFT run of the same source language on NLU or NLG."""
    model = family.name
    spec = composite_spec(kind, "", family, (12, kind, "gain", f"{src}-x", model, "avg"), paper.TABLE12_TARGETS)
    ch = change(res, catalog.SDRRL, catalog.REFERENCE, model, spec, src)
    printed = spec.printed_value(catalog.SDRRL)
    tol = spec.tolerance
    cell = Cell(ours=ch.ours, printed=printed, multi=True, n=ch.n,
                tolerance=None if tol is None else 2 * tol)   # a difference of two scores
    full = change(Results([]), catalog.SDRRL, catalog.REFERENCE, model, spec, src).paper
    cell.printed_not_mean = printed is not None and full is not None and abs(printed - full) > ROUNDING
    if ch.ours is None:
        cell.paper = full if full is not None else printed
        return cell
    if ch.paper is not None:
        cell.paper, cell.recomputed = ch.paper, ch.recomputed
    elif ch.atoms == spec.full and printed is not None:
        cell.paper = printed
    else:
        cell.not_compared = printed is not None
    cell.leaf = src != SOURCE
    cell.settings_differ = any(res.settings_differ(m, model, a, src) for a in ch.atoms
                               for m in (catalog.SDRRL, catalog.REFERENCE))
    return cell


def source_table(res: Results, family: catalog.ModelFamily) -> Table | None:
    """Table 12: SDRRL's gain over SFT (same source language) on NLU / NLG, per source language;
    None without a run of SDRRL or SFT from another source than English."""
    model, ref = family.name, catalog.REFERENCE
    if not any(r.src not in (None, SOURCE) for r in res.runs if r.method in (catalog.SDRRL, ref)):
        return None
    t = Table("12", "Table 12: " + paper.TITLES[12], ["nlu", "nlg"], ["NLU Avg.", "NLG Avg."], [])
    sec = Section("gain of SDRRL over SFT on the target languages", "nlu/nlg", "gain", "")
    given = {r.src for r in res.runs if r.method == catalog.SDRRL and r.model == model and r.src}
    in_paper = {direction.split("-")[0] for _, _, direction in paper.sections(12)}  # eng, fra
    for src in sorted(given | in_paper, key=lambda s: (s != SOURCE, s)):
        sec.rows[f"{get_language(src).name} source"] = [_gain_cell(res, family, k, src) for k in ("nlu", "nlg")]
    t.sections.append(sec)
    t.notes.append("Rows are source languages. Ours: SDRRL minus the SFT run of the same source language, over "
                   "the cells (target languages, benchmarks) both have. The paper's gains are over Indonesian, "
                   f"Japanese and Korean ({', '.join(paper.TABLE12_TARGETS)}); its English row is recomputed from "
                   "Tables 2-5 over ours' cells (*), its French row has no per-language values, so it is compared "
                   "only when ours covers exactly its cells (§ otherwise). Tolerance: twice a score's (a "
                   "difference of two scores).")
    return t


# The paper's tables of averages, by number (a model family lists its own: ModelFamily.summary_tables).
SUMMARY_TABLES = {AVERAGES_TABLE: ablation_table, BENCHMARK_AVERAGES_TABLE: benchmark_average_table, 12: source_table}


def offtarget_tables(res: Results) -> list[Table]:
    """Appendix E: the off-target rate (%) of every run on every task it ran, per model family.

    Rows are runs; a column is the language of the task (for FLORES the non-English side of the
    direction), whether or not it is the run's own target language."""
    out = []
    kinds = [(b.name, d, f"{b.label} {SECTION_TITLES[d]}" if b.paired else b.label)
             for b in catalog.BENCHMARKS.values() if "offtarget" in b.metric_names
             for d in (("x-eng", "eng-x") if b.paired else ("",))]

    def lang_of(bench: str, direction: str, task: str) -> str | None:
        try:
            name, a, b = catalog.parse_task(task)
        except SdrrlError:
            return None
        if name != bench:
            return None
        if b is None:
            return a
        return a if (direction == "x-eng" and b == "eng") else b if (direction == "eng-x" and a == "eng") else None

    for model in res.models():
        runs = [r for r in res.runs if r.model == model]
        found: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
        for bench, direction, _ in kinds:
            for run in runs:
                for task in run.metrics:
                    lang = lang_of(bench, direction, task)
                    v = run.value(task, "offtarget") if lang else None
                    if v is not None:
                        scale = catalog.benchmark(bench).metric("offtarget").scale
                        found.setdefault((bench, direction), {}).setdefault(run.label, {})[lang] = v * scale
        if not found:
            continue
        langs = sorted({lang for d in found.values() for per in d.values() for lang in per},
                       key=lambda x: (x == "eng", x))
        sections = []
        for bench, direction, title in kinds:
            if (bench, direction) not in found:
                continue
            sec = Section(title, bench, "offtarget", direction)
            for label, per in found[(bench, direction)].items():
                cells = [Cell(per.get(lang)) for lang in langs]
                sec.rows[label] = [*cells, Cell(_mean(c.ours for c in cells), n=len(per), multi=True)]
            sections.append(sec)
        t = Table(f"offtarget-{model}", f"Off-target rates (appendix E), {model}", [*langs, "avg"],
                  [*(lang.upper() for lang in langs), "Avg."], sections, has_paper=False,
                  colors={r.label: res.colors[r.label] for r in runs})
        t.notes.append("Share of outputs (%) that CLD3 does not identify as the expected language (the "
                       "column's language; English for FLORES X→English); lower is better. Rows are runs, "
                       "columns the language of each task the run was evaluated on; a row's Avg. is over its "
                       "own languages (their number in brackets), so compare rows by language.")
        out.append(t)
    return out


def build(res: Results) -> list[Table]:
    """The paper's tables in its order: the main model family's always, another family's when a run
    of it is given (each family's tables as the catalog lists them)."""
    tables = []
    shown = res.models()
    for family in catalog.FAMILIES.values():
        if not (family.main or family.name in shown):
            continue
        for number in family.paper_tables:
            table = SUMMARY_TABLES[number](res, family) if number in SUMMARY_TABLES else language_table(res, number)
            if table is not None:
                tables.append(table)
    return sorted(tables, key=lambda t: int(t.key))
