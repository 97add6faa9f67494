"""The paper's tables filled with our values.

Our lm-eval values are scaled as the paper prints them (x100 for accuracy, ROUGE, F1, COMET and the
off-target rate; spBLEU as is). A cell our runs do not give stays None (shown as "—"), never 0.

Avg. columns: ours is the mean over the languages we have; when that is not every language of the
paper's table, the paper's value beside it is recomputed over the same languages from the paper's
own cells (flagged ``partial``), so the two are comparable.

NLU / NLG averages (Tables 6, 7, 12), as the paper's numbers show they are computed (checked
against Tables 2-5 in tests/test_report.py): NLU = BELEBELE accuracy averaged over the target
languages; NLG = the mean over FLORES spBLEU, XL-Sum ROUGE-L and MKQA F1 of each benchmark's
average over the target languages it covers; "target" uses FLORES English->X and the tasks in the
target language, "English" uses FLORES X->English and the English tasks. Which benchmark enters
which average with which metric, the metrics' scales, task names, methods' rows and the model
families' tables come from the catalog (``sdrrl.catalog``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean

from sdrrl import catalog
from sdrrl.errors import SdrrlError
from sdrrl.languages import get as get_language
from sdrrl.report import paper
from sdrrl.report.runs import Run

SECTION_TITLES = {"": "on the target language", "eng": "on English", "x-eng": "X→English",
                  "eng-x": "English→X"}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return fmean(values) if values else None


@dataclass
class Cell:
    ours: float | None = None
    paper: float | None = None
    ours_vs_sft: float | None = None
    paper_vs_sft: float | None = None
    partial: bool = False            # an Avg. over fewer languages than the paper's
    n: int | None = None             # languages behind an Avg.

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper


@dataclass
class Section:
    title: str
    benchmark: str
    metric: str
    direction: str
    rows: dict[str, list[Cell]] = field(default_factory=dict)      # method -> one cell per column


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    labels: list[str]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    has_paper: bool = True
    plot: str | None = None

    @property
    def has_ours(self) -> bool:
        return any(c.ours is not None for s in self.sections for cells in s.rows.values() for c in cells)


class Results:
    """Looks our values up by (method, model family, target language, task)."""

    def __init__(self, runs: list[Run]):
        self.runs = runs

    def run_for(self, method: str, model: str, lang: str | None, src: str = "eng") -> Run | None:
        for run in self.runs:
            if run.method != method or run.model != model:
                continue
            if method == catalog.BASE:
                return run
            if catalog.method(method).source_only and run.src == src:
                return run
            if run.src == src and run.tgt == lang:
                return run
        return None

    def value(self, method: str, model: str, lang: str, benchmark: str, metric: str, direction: str,
              src: str = "eng") -> float | None:
        run = self.run_for(method, model, lang, src)
        if run is None:
            return None
        bench = catalog.benchmark(benchmark)
        v = run.value(bench.task_for(direction, lang), metric)
        return None if v is None else v * bench.metric(metric).scale

    def methods(self, model: str) -> list[str]:
        return sorted({r.method for r in self.runs if r.model == model})

    def targets(self, method: str, model: str, src: str = "eng") -> list[str]:
        return sorted({r.tgt for r in self.runs if r.method == method and r.model == model
                       and r.src == src and r.tgt})

    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})

    # -- the paper's averages -----------------------------------------------------------------
    def composite(self, kind, method, model, langs, side, src="eng") -> float | None:
        """The paper's NLU or NLG average (``kind``): the mean over the benchmarks it takes of each
        benchmark's mean over ``langs`` (catalog ``Benchmark.composite`` and ``headline``)."""
        return _mean(_mean(self.value(method, model, lang, b, m, d, src) for lang in langs)
                     for b, m, d in catalog.composite_parts(kind, side))


def _rows_for(res: Results, model: str) -> list[str]:
    """The base model's row when there is a run of it, then the methods of the paper's benchmark tables."""
    ours = res.methods(model)
    return ([catalog.BASE] if catalog.BASE in ours else []) + list(catalog.paper_methods(catalog.BENCHMARK_ROWS))


def _fill_sft_deltas(section: Section, n_langs: int) -> None:
    sft = section.rows.get(catalog.REFERENCE)
    for method, cells in section.rows.items():
        if sft is None or method == catalog.REFERENCE:
            continue
        for i, (cell, base) in enumerate(zip(cells[:n_langs], sft[:n_langs])):
            if cell.ours is not None and base.ours is not None:
                cell.ours_vs_sft = cell.ours - base.ours
            if cell.paper is not None and base.paper is not None:
                cell.paper_vs_sft = cell.paper - base.paper
        if len(cells) > n_langs:  # the Avg. column: over the columns where ours has a change
            avg = cells[n_langs]
            deltas = [c.ours_vs_sft for c in cells[:n_langs]]
            have = [i for i, d in enumerate(deltas) if d is not None] or list(range(n_langs))
            avg.ours_vs_sft = _mean(deltas)
            avg.paper_vs_sft = _mean(cells[i].paper_vs_sft for i in have)


def language_table(res: Results, table: int) -> Table:
    """Tables 2-5 and 8-11: methods x languages + Avg., one section per metric and direction."""
    model, langs = paper.model_of(table), paper.columns(table)
    t = Table(str(table), f"Table {table}: {paper.TITLES[table]}", [*langs, "avg"],
              [*(lang.upper() for lang in langs), "Avg."], [])
    for benchmark, metric, direction in paper.sections(table):
        title = f"{catalog.benchmark(benchmark).metric(metric).label} {SECTION_TITLES[direction]}"
        sec = Section(title, benchmark, metric, direction)
        for method in _rows_for(res, model):
            cells = [Cell(res.value(method, model, lang, benchmark, metric, direction),
                          paper.value(table, benchmark, metric, direction, model, method, lang))
                     for lang in langs]
            have = [c for c in cells if c.ours is not None]
            avg = Cell(_mean(c.ours for c in cells), n=len(have))
            if have and len(have) < len(langs):
                avg.paper = _mean(c.paper for c in have)
                avg.partial = True
            else:
                avg.paper = paper.value(table, benchmark, metric, direction, model, method, "avg")
            sec.rows[method] = [*cells, avg]
        _fill_sft_deltas(sec, len(langs))
        t.sections.append(sec)
    return t


def ablation_table(res: Results, family: catalog.ModelFamily) -> Table:
    """Table 6: NLU / NLG averages of SDRRL and its ablations, target and English."""
    model, ref = family.name, catalog.REFERENCE
    cols = [("nlu", ""), ("nlu", "eng"), ("nlg", ""), ("nlg", "eng")]
    t = Table("6", "Table 6: " + paper.TITLES[6], [f"{b}{'-eng' if d else '-tar'}" for b, d in cols],
              ["NLU TAR.", "NLU ENG", "NLG TAR.", "NLG ENG"], [])
    sec = Section("averages", "nlu/nlg", "score", "")
    covered = set()
    for method in (ref, *catalog.paper_methods(catalog.ABLATION_ROWS)):
        langs = res.targets(method, model)
        covered.update(langs)
        if method == ref:   # not in the paper's Table 6; our reference, over the ablations' languages
            continue
        cells = []
        for bench, side in cols:
            ours = res.composite(bench, method, model, langs, side)
            cells.append(Cell(ours, paper.value(6, bench, "score", side, model, method, "avg"), n=len(langs)))
        sec.rows[method] = cells
    if res.run_for(ref, model, None):
        langs = sorted(covered)
        sec.rows = {ref: [Cell(res.composite(b, ref, model, langs, s), None, n=len(langs)) for b, s in cols],
                    **sec.rows}
        _fill_sft_deltas(sec, len(cols))
    t.sections.append(sec)
    t.notes.append("The paper averages over its 14 target languages; ours over the target languages "
                   f"our runs of each method cover ({', '.join(sorted(covered)) or 'none'}). "
                   "NLG = mean of FLORES spBLEU (English→X for TAR., X→English for ENG), XL-Sum ROUGE-L "
                   "and MKQA F1, each averaged over its languages. The SFT row (not in the paper's table) "
                   "is our reference for the change view.")
    return t


def benchmark_average_table(res: Results, family: catalog.ModelFamily) -> Table:
    """Table 7: per-benchmark averages on SeaLLM (the languages of Tables 8-11), target and English."""
    model = family.name
    benches = sorted(((b, b.table(model)) for b in catalog.BENCHMARKS.values() if b.table(model) is not None),
                     key=lambda bt: bt[1])
    t = Table("7", "Table 7: " + paper.TITLES[7], [b.name for b, _ in benches] + ["avg"],
              [b.label.upper() for b, _ in benches] + ["Avg."], [])
    for side in ("", "eng"):
        sec = Section(SECTION_TITLES[side], "all", "score", side)
        for method in _rows_for(res, model):
            cells = []
            for bench, src_table in benches:
                direction = bench.direction(side)
                langs = paper.columns(src_table)
                ours = _mean(res.value(method, model, lang, bench.name, bench.headline, direction) for lang in langs)
                cells.append(Cell(ours, paper.value(7, bench.name, bench.headline, direction, model, method, "avg")))
            have = [c for c in cells if c.ours is not None]
            avg = Cell(_mean(c.ours for c in have), paper.value(7, "all", "score", side, model, method, "avg"),
                       partial=0 < len(have) < len(cells), n=len(have))
            if avg.partial:  # the paper's average over the same benchmarks
                avg.paper = _mean(c.paper for c in have)
            sec.rows[method] = [*cells, avg]
        _fill_sft_deltas(sec, len(benches))
        t.sections.append(sec)
    t.notes.append("Each column averages the languages of Tables 8-11 that our runs cover; FLORES is "
                   "English→X on the target side and X→English on the English side, as in the paper.")
    return t


def source_table(res: Results, family: catalog.ModelFamily) -> Table | None:
    """Table 12: SDRRL's gain over SFT (same source language) on NLU / NLG, per source language;
    None without a run of SDRRL or SFT from another source than English."""
    model, ref = family.name, catalog.REFERENCE
    if not any(r.src not in (None, "eng") for r in res.runs if r.method in (catalog.SDRRL, ref)):
        return None
    t = Table("12", "Table 12: " + paper.TITLES[12], ["nlu", "nlg"], ["NLU Avg.", "NLG Avg."], [])
    sec = Section("gain of SDRRL over SFT on the target languages", "nlu/nlg", "gain", "")
    given = {r.src for r in res.runs if r.method == catalog.SDRRL and r.model == model and r.src}
    in_paper = {direction.split("-")[0] for _, _, direction in paper.sections(12)}  # eng, fra
    sources = sorted(given | in_paper, key=lambda s: (s != "eng", s))
    for src in sources:
        langs = res.targets(catalog.SDRRL, model, src)
        cells = []
        for bench in ("nlu", "nlg"):
            a = res.composite(bench, catalog.SDRRL, model, langs, "", src)
            b = res.composite(bench, ref, model, langs, "", src)
            ours = None if a is None or b is None else a - b
            cells.append(Cell(ours, paper.value(12, bench, "gain", f"{src}-x", model, catalog.SDRRL, "avg"),
                              n=len(langs)))
        sec.rows[f"{get_language(src).name} source"] = cells
    t.sections.append(sec)
    t.notes.append("Rows are source languages. Ours: SDRRL minus the SFT run of the same source language, "
                   "over the target languages of our SDRRL runs from that source; the paper uses "
                   "Indonesian, Japanese and Korean.")
    return t


# The paper's tables of averages, by number (a model family lists its own: ModelFamily.summary_tables).
SUMMARY_TABLES = {6: ablation_table, 7: benchmark_average_table, 12: source_table}


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
                sec.rows[label] = [*cells, Cell(_mean(c.ours for c in cells))]
            sections.append(sec)
        t = Table(f"offtarget-{model}", f"Off-target rates (appendix E), {model}", [*langs, "avg"],
                  [*(lang.upper() for lang in langs), "Avg."], sections, has_paper=False)
        t.notes.append("Share of outputs (%) that CLD3 does not identify as the expected language (the "
                       "column's language; English for FLORES X→English); lower is better. Rows are runs, "
                       "columns the language of each task the run was evaluated on.")
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
