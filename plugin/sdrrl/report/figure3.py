"""Figure 3 of the paper (appendix E): the off-target rate per target language, base model → SFT →
SDRRL (and any other method given), from the ``sdrrl_offtarget_<lang>`` tasks (the catalog's
benchmark with ``paper_figure == 3``: Dolly's instructions and their Bactrian-X translations).

As in the paper's tables, a column is a target language and a pair-trained method's value there
comes from its run trained for that language (``sdrrl/eng-jpn`` in the JPN column); the base model
and SFT (one run each) answer in every column. The English side (Dolly's English instructions,
answered by the run trained for the column's language) is a second section where runs gave it.
Each cell: the off-target rate (%), and how many of the responses were undetermined (no letter,
counted as off-target; ``sdrrl.metrics.offtarget``) out of how many. The paper prints no numbers
for Figure 3, so there is no paper column.
"""

from __future__ import annotations

from pathlib import Path

from sdrrl import catalog
from sdrrl.report.tables import Cell, Results, Section, Table

SIDES = {"": "on the target language (Bactrian-X)", "eng": "on English (Dolly)"}
# One section per (side, quantity); "count" and "responses" are numbers of responses, not rates.
QUANTITIES = (("offtarget", "off-target %"), ("undetermined_count", "undetermined responses"),
              ("responses", "responses"))


def _benchmarks() -> list[catalog.Benchmark]:
    return [b for b in catalog.BENCHMARKS.values() if b.paper_figure == 3]


def _methods(res: Results, model: str) -> list[str]:
    """Base model → SFT → SDRRL, then the other methods with a run, in the catalog's order."""
    first = [catalog.BASE, catalog.REFERENCE, catalog.SDRRL]
    ours = set(res.methods(model))
    return [m for m in first + [m for m in catalog.METHODS if m not in first] if m in ours]


def tables(res: Results) -> list[Table]:
    """One Figure 3 table per model family with off-target task results (none without)."""
    from sdrrl.languages import TARGETS

    out = []
    for bench in _benchmarks():
        scale = bench.metric("offtarget").scale
        for model in res.models():
            methods = _methods(res, model)
            # (side, method, lang) -> (off-target %, undetermined responses, responses)
            values: dict[tuple[str, str, str], tuple[float, float | None, float | None]] = {}
            for side in SIDES:
                for method in methods:
                    for lang in TARGETS:
                        run = res.run_for(method, model, lang)
                        task = bench.task_for(side, lang)
                        rate = run.value(task, "offtarget") if run else None
                        if rate is None:
                            continue
                        n, undetermined = run.samples.get(task), run.value(task, "undetermined")
                        count = None if n is None or undetermined is None else float(round(undetermined * n))
                        values[(side, method, lang)] = (rate * scale, count, None if n is None else float(n))
            # columns: the languages answered on the target side, and those a pair-trained run was
            # trained for (its English side); the base model's and SFT's English values fill them
            trained = {lang for (side, m, lang) in values
                       if side == "" or not (m == catalog.BASE or catalog.method(m).source_only)}
            langs = [lang for lang in TARGETS if lang in trained]
            if not langs:
                continue
            sections = []
            for side, side_title in SIDES.items():
                rows = [m for m in methods if any((side, m, lang) in values for lang in langs)]
                for i, (metric, title) in enumerate(QUANTITIES if rows else ()):
                    sections.append(Section(f"{title} {side_title}", bench.name, metric, side, {
                        m: [Cell(values[(side, m, lang)][i]) if (side, m, lang) in values else Cell()
                            for lang in langs] for m in rows}))
            out.append(Table(f"figure3-{model}",
                             f"Figure 3 (appendix E): off-target responses, {catalog.family(model).label}",
                             langs, [lang.upper() for lang in langs], sections, has_paper=False))
    return out


def _cell_text(rate: Cell, count: Cell, n: Cell) -> str:
    if rate.ours is None:
        return "—"
    if count.ours is None or n.ours is None:
        return f"{rate.ours:.1f}"
    return f"{rate.ours:.1f} (undet. {count.ours:.0f}/{n.ours:.0f})"


def markdown(table: Table, plot: str) -> list[str]:
    """The table, sections merged per side: ``rate (undet. k/n)`` per method and language."""
    lines = [f"## {table.title}", ""]
    by_side: dict[str, dict[str, Section]] = {}
    for sec in table.sections:
        by_side.setdefault(sec.direction, {})[sec.metric] = sec
    for side, secs in by_side.items():
        rate, count, n = (secs[m] for m, _ in QUANTITIES)
        lines += [f"**Off-target % {SIDES[side]}** (undetermined responses / responses)", "",
                  "| | " + " | ".join(table.labels) + " |", "|---|" + "---|" * len(table.labels)]
        for method, cells in rate.rows.items():
            lines.append(f"| {catalog.label(method)} | " + " | ".join(
                _cell_text(r, c, k) for r, c, k in zip(cells, count.rows[method], n.rows[method])) + " |")
        lines.append("")
    lines += ["- A response is off-target when CLD3 does not identify it as the column's language (the "
              "target language; English for the English side), or when it has no letter at all "
              "(undetermined: empty, digits, punctuation), which no language identifier can judge. Lower "
              "is better. A pair-trained method's value in a column comes from its run trained for that "
              "language; the base model and SFT answer in every column. The paper prints no numbers for "
              "Figure 3.", "", f"![{table.title}]({plot})", ""]
    return lines


def plot(table: Table, path: Path) -> None:
    """Bars per method (one colour each) per target language, the undetermined share hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [(sec.direction, sec) for sec in table.sections if sec.metric == "offtarget"]
    counts = {(s.direction, m): cells for s in table.sections if s.metric == "undetermined_count"
              for m, cells in s.rows.items()}
    totals = {(s.direction, m): cells for s in table.sections if s.metric == "responses"
              for m, cells in s.rows.items()}
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.9 * len(table.labels) + 3), 3.2 * len(panels)),
                             squeeze=False)
    for ax, (side, sec) in zip(axes[:, 0], panels):
        methods = list(sec.rows)
        width = 0.8 / max(1, len(methods))
        handles = []
        for j, method in enumerate(methods):
            color = catalog.color(method)
            xs, ys, und = [], [], []
            for i, (cell, count, n) in enumerate(zip(sec.rows[method], counts[(side, method)],
                                                     totals[(side, method)])):
                if cell.ours is None:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(cell.ours)
                und.append(100.0 * count.ours / n.ours if count.ours is not None and n.ours else 0.0)
            ax.bar(xs, ys, width, color=color)
            ax.bar(xs, und, width, color="none", edgecolor="black", hatch="///", linewidth=0)
            ax.plot(xs, ys, "o", color=color, markersize=3)  # a rate of 0 stays visible
            handles.append(Patch(color=color, label=catalog.label(method)))
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="of which undetermined"))
        ax.set_xticks(range(len(table.labels)), table.labels)
        ax.set_ylim(0, 128)  # room above 100 % for the legend
        ax.set_yticks(range(0, 101, 20))
        ax.set_xlabel("target language (pair-trained methods: the run trained for it)", fontsize=8)
        ax.set_ylabel("off-target responses (%)", fontsize=8)
        ax.set_title(f"Off-target rate {SIDES[side]}", fontsize=9)
        ax.legend(handles=handles, fontsize=7, ncol=min(4, len(handles)), loc="upper right")
    fig.suptitle(table.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render(tables_: list[Table], folder: Path) -> list[str]:
    """Write each table's plot into ``folder/plots/`` and return the report's Figure 3 section."""
    lines: list[str] = []
    for table in tables_:
        name = f"plots/{table.key}.png"
        plot(table, folder / name)
        lines += markdown(table, name)
    return lines
