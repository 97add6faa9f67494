"""Like for like: every average and every difference of the report over the same cells on both sides.

An **atom** is one cell of the paper's per-language tables (2-5, 8-11): ``(benchmark, metric,
direction, lang)``, where ``lang`` is the table's column, the target language a model was trained
for (on the English side: that model's English score). Every number the report shows is a
:class:`Spec` over atoms: the mean over its groups of the mean over each group's atoms (a
per-language cell: one atom; an Avg.: one group, a benchmark's languages; NLU / NLG and Table 7's
Avg.: one group per benchmark, as the paper computes them).

- **Ours vs the paper** (:func:`measure`): ours is the spec over the atoms our runs have; the
  paper's value beside it is the same spec over exactly those atoms, from the paper's per-language
  values. Where the paper printed only an average (the ablations of Table 6, French-source gains of
  Table 12), ours is compared with it only when ours has every atom it averages.
- **Ours vs another run** (:func:`change`, e.g. against our SFT): over the atoms both have; the
  paper's change over the same atoms.
- A printed Avg. that is not the mean of its row (the paper's slips, Tables 8-10 and so Table 7) is
  kept for display, but differences always use the mean over the same atoms, so a perfect
  reproduction differs by 0 everywhere.

Where a benchmark enters NLU / NLG and with which metric, the tables' languages per model family
and the metrics' scales and tolerances are the catalog's (``sdrrl.catalog``); the paper's numbers
come from ``sdrrl.report.paper``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean
from typing import Mapping

from sdrrl import catalog
from sdrrl.report import paper
from sdrrl.report.runs import Run

Atom = tuple[str, str, str, str]      # (benchmark, metric, direction, lang)
PrintedKey = tuple[int, str, str, str, str, str]   # paper_results.csv key without the method

# The paper prints two decimals: a printed mean of printed values is within 0.01 of the mean we
# recompute (two roundings); more than that, and the printed number is not the mean of its row.
ROUNDING = 0.01
SOURCE = "eng"   # the paper's per-language tables are all from English-source runs


@dataclass(frozen=True)
class Spec:
    """One number of a table: the mean over ``groups`` of the mean over each group's atoms.

    ``printed``: where the paper printed this number (its paper_results.csv key without the
    method), None where it did not; ``printed_over``: the atoms that printed number averages (all of
    them unless a table averages fewer, e.g. Table 12's three languages)."""
    groups: tuple[tuple[Atom, ...], ...]
    printed: PrintedKey | None = None
    printed_over: frozenset[Atom] | None = None

    @property
    def atoms(self) -> tuple[Atom, ...]:
        return tuple(a for g in self.groups for a in g)

    @property
    def full(self) -> frozenset[Atom]:
        return self.printed_over if self.printed_over is not None else frozenset(self.atoms)

    @property
    def tolerance(self) -> float | None:
        """The largest tolerance of the metrics it averages (a mean of values each within t of the
        paper's is within t of the paper's mean)."""
        tols = [catalog.benchmark(b).metric(m).tolerance for b, m, _, _ in self.atoms]
        return None if not tols or any(t is None for t in tols) else max(tols)

    def mean(self, values: Mapping[Atom, float], over: frozenset[Atom] | set[Atom] | None = None) -> float | None:
        """The spec over the atoms in ``values`` (and in ``over``, when given); groups without any
        are left out; None when no atom is left."""
        parts = []
        for group in self.groups:
            have = [values[a] for a in group if a in values and (over is None or a in over)]
            if have:
                parts.append(fmean(have))
        return fmean(parts) if parts else None

    def printed_value(self, method: str) -> float | None:
        if self.printed is None:
            return None
        table, benchmark, metric, direction, model, lang = self.printed
        return paper.value(table, benchmark, metric, direction, model, method, lang)


def langs_of(atoms) -> int:
    return len({a[3] for a in atoms})


# ---- specs of the paper's cells ------------------------------------------------------------------

def atom_spec(table: int, benchmark: str, metric: str, direction: str, lang: str) -> Spec:
    """A per-language cell of Tables 2-5 / 8-11."""
    return Spec((((benchmark, metric, direction, lang),),),
                (table, benchmark, metric, direction, paper.model_of(table), lang))


def row_spec(table: int, benchmark: str, metric: str, direction: str, printed: PrintedKey | None = None) -> Spec:
    """The Avg. of a row of Tables 2-5 / 8-11 (printed where ``printed`` says, else in that table)."""
    atoms = tuple((benchmark, metric, direction, lang) for lang in paper.columns(table))
    return Spec((atoms,), printed or (table, benchmark, metric, direction, paper.model_of(table), "avg"))


def composite_spec(kind: str, side: str, family: catalog.ModelFamily, printed: PrintedKey | None = None,
                   printed_langs: tuple[str, ...] | None = None) -> Spec:
    """The paper's NLU or NLG average (``kind``) on the target side ("") or English ("eng"): one
    group per benchmark it takes (catalog ``Benchmark.composite``, ``headline``), over the languages
    the paper's table of that benchmark has for the family. So a benchmark enters a language's NLG
    only where the paper has it for that language (MKQA on English only for MKQA's languages)."""
    groups = []
    for name, metric, direction in catalog.composite_parts(kind, side):
        langs = catalog.benchmark(name).paper_languages(family.name)
        if langs:
            groups.append(tuple((name, metric, direction, lang) for lang in langs))
    over = None if printed_langs is None else frozenset(a for g in groups for a in g if a[3] in printed_langs)
    return Spec(tuple(groups), printed, over)


# The paper's tables of averages: NLU / NLG per method (LLaMA-2) and per-benchmark averages (SeaLLM).
AVERAGES_TABLE, BENCHMARK_AVERAGES_TABLE = 6, 7


def _printed_in(table: int, family: catalog.ModelFamily, key: tuple) -> PrintedKey | None:
    return (table, *key) if table in family.summary_tables else None  # type: ignore[return-value]


def average_spec(kind: str, side: str, family: catalog.ModelFamily) -> Spec:
    """A cell of Table 6 (NLU or NLG, target or English)."""
    printed = _printed_in(AVERAGES_TABLE, family, (kind, "score", side, family.name, "avg"))
    return composite_spec(kind, side, family, printed)


def benchmark_spec(bench: catalog.Benchmark, side: str, family: catalog.ModelFamily) -> Spec:
    """A benchmark's headline metric averaged over its table's languages (a column of Table 7)."""
    direction = bench.direction(side)
    printed = _printed_in(BENCHMARK_AVERAGES_TABLE, family, (bench.name, bench.headline, direction, family.name, "avg"))
    return row_spec(bench.table(family.name), bench.name, bench.headline, direction, printed)


def all_spec(side: str, family: catalog.ModelFamily) -> Spec:
    """Table 7's Avg.: the mean over the benchmarks with a table for the family of their headline averages."""
    groups = tuple(benchmark_spec(b, side, family).groups[0] for b in family_benchmarks(family))
    return Spec(groups, _printed_in(BENCHMARK_AVERAGES_TABLE, family, ("all", "score", side, family.name, "avg")))


def family_benchmarks(family: catalog.ModelFamily) -> list[catalog.Benchmark]:
    """The benchmarks with a per-language table for the family, in the paper's table order."""
    found = [b for b in catalog.BENCHMARKS.values() if b.table(family.name) is not None]
    return sorted(found, key=lambda b: b.table(family.name))


def paper_values(method: str, model: str, atoms, src: str = SOURCE) -> dict[Atom, float]:
    """The paper's per-language values of a method for these atoms (none for other source languages)."""
    out: dict[Atom, float] = {}
    if src != SOURCE or method == catalog.BASE:
        return out
    for a in atoms:
        b, m, d, lang = a
        table = catalog.benchmark(b).table(model)
        v = None if table is None else paper.value(table, b, m, d, model, method, lang)
        if v is not None:
            out[a] = v
    return out


# ---- our runs -------------------------------------------------------------------------------------

def _shade(color: str, k: int) -> str:
    """``color`` itself (k = 0), then alternately darker and lighter shades of it."""
    if k == 0:
        return color
    toward = "#000000" if k % 2 else "#ffffff"
    share = 1 - 0.6 ** ((k + 1) // 2)
    a, b = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (color, toward))
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b))


class Results:
    """Our runs, looked up by (method, model family, target language, task), and one plot colour
    per run: a method's first run in the method's colour (catalog), its other runs in shades of it."""

    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.colors: dict[str, str] = {}
        for run in runs:
            k = 0
            while _shade(catalog.color(run.method), k) in self.colors.values() and k < 50:
                k += 1
            self.colors[run.label] = _shade(catalog.color(run.method), k)

    def run_for(self, method: str, model: str, lang: str | None, src: str = SOURCE) -> Run | None:
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
              src: str = SOURCE) -> float | None:
        run = self.run_for(method, model, lang, src)
        if run is None:
            return None
        bench = catalog.benchmark(benchmark)
        v = run.value(bench.task_for(direction, lang), metric)
        return None if v is None else v * bench.metric(metric).scale

    def values(self, method: str, model: str, atoms, src: str = SOURCE) -> dict[Atom, float]:
        out = {}
        for a in atoms:
            b, m, d, lang = a
            v = self.value(method, model, lang, b, m, d, src)
            if v is not None:
                out[a] = v
        return out

    def settings_differ(self, method: str, model: str, atom: Atom, src: str = SOURCE) -> bool:
        """The run's metric settings for this atom differ from the paper's (sacrebleu signature,
        COMET model): the † of the tables."""
        run = self.run_for(method, model, atom[3], src)
        if run is None:
            return False
        b, m, d, lang = atom
        return paper.setting_differs(m, run.setting(catalog.benchmark(b).task_for(d, lang), m))

    def methods(self, model: str) -> list[str]:
        return sorted({r.method for r in self.runs if r.model == model})

    def targets(self, method: str, model: str, src: str = SOURCE) -> list[str]:
        return sorted({r.tgt for r in self.runs if r.method == method and r.model == model
                       and r.src == src and r.tgt})

    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})


# ---- cells ----------------------------------------------------------------------------------------

@dataclass
class Cell:
    """One cell: ours beside the paper, and the change against our SFT beside the paper's.

    ``paper`` is the paper's value over the same atoms as ours (what ``diff`` uses); ``printed`` the
    number the paper prints in this cell. Marks: ``recomputed`` (*) the paper's value is our mean of
    its per-language values, over ours' languages, not a printed number; ``printed_not_mean`` (‡)
    the printed Avg. is not the mean of its row; ``not_compared`` (§) the paper printed only an
    average over atoms ours lacks, so there is no difference; ``settings_differ`` (†) a metric
    setting of ours differs from the paper's."""
    ours: float | None = None
    paper: float | None = None
    printed: float | None = None
    recomputed: bool = False
    printed_not_mean: bool = False
    not_compared: bool = False
    settings_differ: bool = False
    n: int | None = None              # languages behind ours (or behind the paper's value without ours)
    multi: bool = False               # an average (an Avg. or NLU / NLG), not one language's cell
    leaf: bool = False                # not an average of cells shown elsewhere (per-language, or printed-only)
    tolerance: float | None = None
    ours_vs_sft: float | None = None
    paper_vs_sft: float | None = None
    n_vs_sft: int | None = None
    vs_sft_recomputed: bool = False   # the paper's change is over fewer atoms than the printed cell's

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper

    @property
    def shown_paper(self) -> float | None:
        """The paper's number shown in the cell: printed unless recomputed over ours' atoms."""
        return self.paper if self.recomputed or self.printed is None else self.printed

    @property
    def within(self) -> bool | None:
        if self.diff is None or self.tolerance is None:
            return None
        return abs(self.diff) <= self.tolerance + 1e-9


def paper_value(method: str, model: str, spec: Spec, atoms, src: str = SOURCE) -> tuple[float | None, bool]:
    """The paper's value of a method over ``atoms``: the mean of its per-language values when it has
    them all, else its printed number when ``atoms`` are all the printed one averages; and whether it
    is recomputed (not a printed number)."""
    atoms = set(atoms)
    have = paper_values(method, model, atoms, src)
    if atoms and set(have) == atoms:
        mean = spec.mean(have)
        printed = spec.printed_value(method) if src == SOURCE else None
        return mean, not (atoms == spec.full and printed is not None)
    if atoms == spec.full:
        printed = spec.printed_value(method) if src == SOURCE else None
        return printed, False
    return None, False


def measure(res: Results, method: str, model: str, spec: Spec, src: str = SOURCE) -> Cell:
    """Ours beside the paper over the same atoms (module docstring)."""
    ours = res.values(method, model, spec.atoms, src)
    printed = spec.printed_value(method) if src == SOURCE else None
    full_have = paper_values(method, model, spec.full, src)
    full_mean = spec.mean(full_have, spec.full) if set(full_have) == spec.full else None
    cell = Cell(ours=spec.mean(ours), printed=printed, tolerance=spec.tolerance,
                multi=len(spec.atoms) > 1, n=langs_of(ours or spec.full))
    cell.printed_not_mean = (printed is not None and full_mean is not None and len(spec.atoms) > 1
                             and abs(printed - full_mean) > ROUNDING)
    if ours:
        cell.paper, cell.recomputed = paper_value(method, model, spec, ours, src)
        cell.not_compared = cell.paper is None and printed is not None
        cell.settings_differ = any(res.settings_differ(method, model, a, src) for a in ours)
    else:   # nothing of ours: the paper's own number for the cell
        cell.paper = full_mean if full_mean is not None else printed
        cell.recomputed = printed is None and full_mean is not None
    cell.leaf = len(spec.atoms) == 1 or (bool(ours) and not paper_values(method, model, ours, src))
    return cell


@dataclass
class Change:
    ours: float | None
    paper: float | None
    n: int | None
    recomputed: bool
    atoms: frozenset[Atom] = field(default_factory=frozenset)


def change(res: Results, method: str, versus: str, model: str, spec: Spec, src: str = SOURCE) -> Change:
    """``method`` minus ``versus`` over the atoms both of our runs have; the paper's change over the
    same atoms (over the printed cell's atoms when ours has none in common)."""
    a = res.values(method, model, spec.atoms, src)
    b = res.values(versus, model, spec.atoms, src)
    common = frozenset(a) & frozenset(b)
    ours = None if not common else spec.mean(a, common) - spec.mean(b, common)
    atoms = common or spec.full
    pa, _ = paper_value(method, model, spec, atoms, src)
    pb, _ = paper_value(versus, model, spec, atoms, src)
    theirs = None if pa is None or pb is None else pa - pb
    return Change(ours, theirs, langs_of(atoms), atoms != spec.full, common)
