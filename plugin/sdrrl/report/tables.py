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
target language, "English" uses FLORES X->English and the English tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean

from sdrrl.languages import get as get_language
from sdrrl.report import paper
from sdrrl.report.runs import Run

SCALE = {"acc": 100.0, "rouge1": 100.0, "rougeL": 100.0, "f1": 100.0, "comet": 100.0, "spbleu": 1.0,
         "offtarget": 100.0}
SECTION_TITLES = {"": "on the target language", "eng": "on English", "x-eng": "X→English",
                  "eng-x": "English→X"}
METRIC_LABELS = {"acc": "accuracy", "spbleu": "spBLEU", "comet": "COMET", "rouge1": "ROUGE-1",
                 "rougeL": "ROUGE-L", "f1": "F1", "offtarget": "off-target %", "score": "score",
                 "gain": "gain over SFT"}
NLG_PARTS = {"": (("flores", "spbleu", "eng-x"), ("xlsum", "rougeL", ""), ("mkqa", "f1", "")),
             "eng": (("flores", "spbleu", "x-eng"), ("xlsum", "rougeL", "eng"), ("mkqa", "f1", "eng"))}
OFFTARGET_SECTIONS = (("flores", "x-eng"), ("flores", "eng-x"), ("xlsum", ""), ("xlsum", "eng"),
                      ("mkqa", ""), ("mkqa", "eng"))


def task_name(benchmark: str, direction: str, lang: str) -> str:
    if benchmark == "flores":
        return f"sdrrl_flores_{lang}-eng" if direction == "x-eng" else f"sdrrl_flores_eng-{lang}"
    return f"sdrrl_{benchmark}_{'eng' if direction == 'eng' else lang}"


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
            if method == "base":
                return run
            if method == "sft" and run.src == src:
                return run
            if run.src == src and run.tgt == lang:
                return run
        return None

    def value(self, method: str, model: str, lang: str, benchmark: str, metric: str, direction: str,
              src: str = "eng") -> float | None:
        run = self.run_for(method, model, lang, src)
        if run is None:
            return None
        v = run.value(task_name(benchmark, direction, lang), metric)
        return None if v is None else v * SCALE.get(metric, 1.0)

    def methods(self, model: str) -> list[str]:
        return sorted({r.method for r in self.runs if r.model == model})

    def targets(self, method: str, model: str, src: str = "eng") -> list[str]:
        return sorted({r.tgt for r in self.runs if r.method == method and r.model == model
                       and r.src == src and r.tgt})

    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})

    # -- the paper's averages -----------------------------------------------------------------
    def nlu(self, method, model, langs, side, src="eng") -> float | None:
        return _mean(self.value(method, model, lang, "belebele", "acc", side, src) for lang in langs)

    def nlg(self, method, model, langs, side, src="eng") -> float | None:
        return _mean(_mean(self.value(method, model, lang, b, m, d, src) for lang in langs)
                     for b, m, d in NLG_PARTS[side])


def _rows_for(res: Results, model: str, paper_methods: tuple[str, ...]) -> list[str]:
    ours = res.methods(model)
    return (["base"] if "base" in ours else []) + list(paper_methods)


def _fill_sft_deltas(section: Section, n_langs: int) -> None:
    sft = section.rows.get("sft")
    for method, cells in section.rows.items():
        if sft is None or method == "sft":
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
        title = f"{METRIC_LABELS[metric]} {SECTION_TITLES[direction]}"
        sec = Section(title, benchmark, metric, direction)
        for method in _rows_for(res, model, paper.PAPER_METHODS):
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


def ablation_table(res: Results) -> Table:
    """Table 6: NLU / NLG averages of SDRRL and its ablations, target and English."""
    cols = [("nlu", ""), ("nlu", "eng"), ("nlg", ""), ("nlg", "eng")]
    t = Table("6", "Table 6: " + paper.TITLES[6], [f"{b}{'-eng' if d else '-tar'}" for b, d in cols],
              ["NLU TAR.", "NLU ENG", "NLG TAR.", "NLG ENG"], [])
    sec = Section("averages", "nlu/nlg", "score", "")
    covered = set()
    for method in ("sft", *paper.ABLATIONS):
        langs = res.targets(method, "llama2")
        covered.update(langs)
        if method == "sft":   # not in the paper's Table 6; our reference, over the ablations' languages
            continue
        cells = []
        for bench, side in cols:
            ours = (res.nlu if bench == "nlu" else res.nlg)(method, "llama2", langs, side)
            cells.append(Cell(ours, paper.value(6, bench, "score", side, "llama2", method, "avg"), n=len(langs)))
        sec.rows[method] = cells
    if res.run_for("sft", "llama2", None):
        langs = sorted(covered)
        sec.rows = {"sft": [Cell((res.nlu if b == "nlu" else res.nlg)("sft", "llama2", langs, s), None, n=len(langs))
                            for b, s in cols], **sec.rows}
        _fill_sft_deltas(sec, len(cols))
    t.sections.append(sec)
    t.notes.append("The paper averages over its 14 target languages; ours over the target languages "
                   f"our runs of each method cover ({', '.join(sorted(covered)) or 'none'}). "
                   "NLG = mean of FLORES spBLEU (English→X for TAR., X→English for ENG), XL-Sum ROUGE-L "
                   "and MKQA F1, each averaged over its languages. The SFT row (not in the paper's table) "
                   "is our reference for the change view.")
    return t


def seallm_table(res: Results) -> Table:
    """Table 7: per-benchmark averages on SeaLLM (the languages of Tables 8-11), target and English."""
    benches = [("belebele", "acc", 8), ("xlsum", "rougeL", 9), ("flores", "spbleu", 10), ("mkqa", "f1", 11)]
    t = Table("7", "Table 7: " + paper.TITLES[7], ["belebele", "xlsum", "flores", "mkqa", "avg"],
              ["BELE.", "XL-SUM", "FLORES", "MKQA", "Avg."], [])
    for side in ("", "eng"):
        sec = Section(SECTION_TITLES[side], "all", "score", side)
        for method in _rows_for(res, "seallm", paper.PAPER_METHODS):
            cells = []
            for bench, metric, src_table in benches:
                direction = ("eng-x" if side == "" else "x-eng") if bench == "flores" else side
                langs = paper.columns(src_table)
                ours = _mean(res.value(method, "seallm", lang, bench, metric, direction) for lang in langs)
                cells.append(Cell(ours, paper.value(7, bench, metric, direction, "seallm", method, "avg")))
            have = [c for c in cells if c.ours is not None]
            avg = Cell(_mean(c.ours for c in have), paper.value(7, "all", "score", side, "seallm", method, "avg"),
                       partial=0 < len(have) < len(cells), n=len(have))
            if avg.partial:  # the paper's average over the same benchmarks
                avg.paper = _mean(c.paper for c in have)
            sec.rows[method] = [*cells, avg]
        _fill_sft_deltas(sec, len(benches))
        t.sections.append(sec)
    t.notes.append("Each column averages the languages of Tables 8-11 that our runs cover; FLORES is "
                   "English→X on the target side and X→English on the English side, as in the paper.")
    return t


def source_table(res: Results) -> Table:
    """Table 12: SDRRL's gain over SFT (same source language) on NLU / NLG, per source language."""
    t = Table("12", "Table 12: " + paper.TITLES[12], ["nlu", "nlg"], ["NLU Avg.", "NLG Avg."], [])
    sec = Section("gain of SDRRL over SFT on the target languages", "nlu/nlg", "gain", "")
    given = {r.src for r in res.runs if r.method == "sdrrl" and r.model == "llama2" and r.src}
    sources = sorted(given | {"eng", "fra"}, key=lambda s: (s != "eng", s))
    for src in sources:
        langs = res.targets("sdrrl", "llama2", src)
        cells = []
        for bench in ("nlu", "nlg"):
            f = res.nlu if bench == "nlu" else res.nlg
            a, b = f("sdrrl", "llama2", langs, "", src), f("sft", "llama2", langs, "", src)
            ours = None if a is None or b is None else a - b
            cells.append(Cell(ours, paper.value(12, bench, "gain", f"{src}-x", "llama2", "sdrrl", "avg"),
                              n=len(langs)))
        sec.rows[f"{get_language(src).name} source"] = cells
    t.sections.append(sec)
    t.notes.append("Rows are source languages. Ours: SDRRL minus the SFT run of the same source language, "
                   "over the target languages of our SDRRL runs from that source; the paper uses "
                   "Indonesian, Japanese and Korean.")
    return t


def offtarget_tables(res: Results) -> list[Table]:
    """Appendix E: the off-target rate (%) of every run on every task it ran, per model family.

    Rows are runs; a column is the language of the task (for FLORES the non-English side of the
    direction), whether or not it is the run's own target language."""
    out = []
    kinds = (("flores", "x-eng", "FLORES X→English"), ("flores", "eng-x", "FLORES English→X"),
             ("xlsum", "", "XL-Sum"), ("mkqa", "", "MKQA"))

    def lang_of(bench: str, direction: str, task: str) -> str | None:
        rest = task.removeprefix(f"sdrrl_{bench}_")
        if rest == task:
            return None
        if bench != "flores":
            return rest
        a, _, b = rest.partition("-")
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
                        found.setdefault((bench, direction), {}).setdefault(run.label, {})[lang] = v * 100
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
    tables = [language_table(res, t) for t in (2, 3, 4, 5)]
    tables.append(ablation_table(res))
    if "seallm" in res.models():
        tables.append(seallm_table(res))
        tables.extend(language_table(res, t) for t in (8, 9, 10, 11))
    if any(r.src not in (None, "eng") for r in res.runs if r.method in ("sdrrl", "sft")):
        tables.append(source_table(res))
    return tables
