"""The report's plots: first their data (``plots/<name>.json``, the numbers of the tables' cells), then
the PNG drawn from exactly that data.

- ``gains_table<N>``: the change against SFT per column and method, ours (solid) beside the
  paper's (hatched), Avg. included (every table with an SFT row).
- ``gap_table<N>``: ours minus the paper per language and method, with the metric's tolerance as a
  band (Tables 2-5 and 8-11: one per benchmark and model family).
- ``offtarget-<model>``: the off-target rate of every run, one colour per run.

A plot's data: ``{"title", "xlabel", "panels": [{"title", "ylabel", "x", "band", "ylim",
"series": [{"label", "color", "hatch", "values"}]}]}``, ``values`` one per ``x`` (null: no value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdrrl import catalog
from sdrrl.report.tables import Section, Table, row_label


def _unit(sec: Section) -> str:
    """The section's metric and its unit, as an axis says it."""
    if sec.benchmark in catalog.BENCHMARKS:
        metric = catalog.benchmark(sec.benchmark).metric(sec.metric)
        return f"{metric.label}, {metric.unit}"
    return "points of each column's metric"


def _x_label(table: Table) -> str:
    if table.per_language:
        return "target language the model was trained for (Avg.: over the languages ours has)"
    return "average (over the languages and benchmarks ours has)"


def gains_data(table: Table) -> dict[str, Any] | None:
    """The change against SFT, ours beside the paper's; None for tables without an SFT row."""
    if not table.has_paper or not any(catalog.REFERENCE in s.rows for s in table.sections):
        return None
    panels = []
    for sec in table.sections:
        methods = [m for m, cells in sec.rows.items() if m != catalog.REFERENCE
                   and any(c.ours_vs_sft is not None for c in cells)]
        note = "" if methods else " (no change of ours: the paper's only)"
        series = []
        for method in methods or [catalog.SDRRL]:
            cells = sec.rows[method]
            if methods:
                series.append({"label": f"{row_label(method)} (ours)", "color": catalog.color(method),
                               "hatch": False, "values": [c.ours_vs_sft for c in cells]})
            series.append({"label": f"{row_label(method)} (paper)", "color": catalog.color(method),
                           "hatch": True, "values": [c.paper_vs_sft for c in cells]})
        panels.append({"title": f"{sec.title}: change vs SFT{note}",
                       "ylabel": f"Δ vs SFT ({_unit(sec)})", "x": table.labels, "band": None, "ylim": None,
                       "series": series})
    return {"title": f"{table.title}: change against SFT, ours (solid) beside the paper (hatched)",
            "xlabel": _x_label(table), "panels": panels}


def gap_data(table: Table) -> dict[str, Any] | None:
    """Ours minus the paper per language and method (language tables only); None without any."""
    if not table.per_language:
        return None
    panels = []
    for sec in table.sections:
        series = [{"label": row_label(m), "color": catalog.color(m), "hatch": False,
                   "values": [c.diff for c in cells]}
                  for m, cells in sec.rows.items() if any(c.diff is not None for c in cells)]
        if series:
            tol = catalog.benchmark(sec.benchmark).metric(sec.metric).tolerance
            panels.append({"title": f"{sec.title}: ours − paper (band: ± the tolerance, {tol})",
                           "ylabel": f"ours − paper ({_unit(sec)})", "x": table.labels, "band": tol,
                           "ylim": None, "series": series})
    if not panels:
        return None
    return {"title": f"{table.title}: gap to the paper", "xlabel": _x_label(table), "panels": panels}


def offtarget_data(table: Table) -> dict[str, Any]:
    panels = []
    for sec in table.sections:
        panels.append({"title": sec.title, "ylabel": "off-target rate (%)", "x": table.labels, "band": None,
                       "ylim": [0, 100],
                       "series": [{"label": key, "color": table.colors.get(key, catalog.BASE_COLOR), "hatch": False,
                                   "values": [c.ours for c in cells]} for key, cells in sec.rows.items()]})
    return {"title": table.title, "xlabel": "language of the task (Avg.: over the run's own languages)",
            "panels": panels}


def draw(data: dict[str, Any], path: Path) -> None:
    """Grouped bars, one group per x label, one bar per series (a dot marks a value of 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = data["panels"]
    width_in = max(7.0, 0.8 * max(len(p["x"]) for p in panels) + 3) + 2.5   # + the legend
    fig, axes = plt.subplots(len(panels), 1, figsize=(width_in, 3.0 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        n = max(1, len(panel["series"]))
        width = 0.8 / n
        for j, s in enumerate(panel["series"]):
            pts = [(i - 0.4 + width * (j + 0.5), v) for i, v in enumerate(s["values"]) if v is not None]
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            if s["hatch"]:
                ax.bar(xs, ys, width, color=s["color"], alpha=0.35, hatch="//", edgecolor=s["color"], label=s["label"])
            else:
                ax.bar(xs, ys, width, color=s["color"], label=s["label"])
            ax.plot(xs, ys, "o", color=s["color"], markersize=3)
        if panel["band"]:
            ax.axhspan(-panel["band"], panel["band"], color="#2ca02c", alpha=0.12,
                       label=f"± {panel['band']} (tolerance)")
        ax.axhline(0, color="black", linewidth=0.6)
        if panel["ylim"]:
            ax.set_ylim(*panel["ylim"])
        ax.set_xticks(range(len(panel["x"])), panel["x"])
        ax.set_xlabel(data["xlabel"], fontsize=8)
        ax.set_ylabel(panel["ylabel"], fontsize=8)
        ax.set_title(panel["title"], fontsize=9)
        if panel["series"]:   # beside the axes, never over the bars
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(data["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(data: dict[str, Any], folder: Path, name: str) -> str:
    """``folder/name.json`` and ``folder/name.png``; returns the PNG's name."""
    (folder / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    draw(data, folder / f"{name}.png")
    return f"{name}.png"
