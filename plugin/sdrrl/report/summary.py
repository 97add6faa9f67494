"""The summary REPORT.md opens with: tolerances, cells within them per table, the largest
divergences from the paper, and the paper's claims checked on our runs."""

from __future__ import annotations

from typing import Any, Iterator

from sdrrl import catalog
from sdrrl.report.claims import FAILS, HOLDS, Verdict
from sdrrl.report.compare import Cell
from sdrrl.report.tables import Section, Table, langs_text, num, row_label

TOP = 10   # divergences listed


def compared_cells(tables: list[Table]) -> Iterator[tuple[Table, Section, str, str, Cell]]:
    """Every cell with ours and the paper's value over the same cells: (table, section, row, column label, cell)."""
    for t in tables:
        if not t.has_paper:
            continue
        for sec in t.sections:
            for key, cells in sec.rows.items():
                for label, c in zip(t.labels, cells):
                    if c.diff is not None:
                        yield t, sec, key, label, c


def tolerances() -> list[dict[str, Any]]:
    return [{"benchmark": b.label, "metric": m.label, "tolerance": m.tolerance, "unit": m.unit, "basis": m.basis}
            for b in catalog.BENCHMARKS.values() for m in b.metrics if m.tolerance is not None]


def table_counts(tables: list[Table]) -> list[dict[str, Any]]:
    out = []
    for t in tables:
        if not t.has_paper:
            continue
        cells = [c for _, _, _, _, c in compared_cells([t])]
        within = sum(bool(c.within) for c in cells)
        out.append({"table": t.key, "title": t.title, "compared": len(cells), "within": within,
                    "rate": within / len(cells) if cells else None,
                    "settings_differ": sum(c.settings_differ for c in cells)})
    return out


def divergences(tables: list[Table], top: int = TOP) -> list[dict[str, Any]]:
    """The largest |ours − paper| among cells that are not averages of cells shown elsewhere
    (per-language cells, and averages the paper printed without per-language values). Cells of one
    row and section with the same ours and paper values (an SFT or base model's English score, the
    same in every column) are one entry listing their columns."""
    found: dict[tuple, dict[str, Any]] = {}
    for t, sec, key, label, c in compared_cells(tables):
        if not c.leaf:
            continue
        entry = found.setdefault((t.key, sec.title, key, c.ours, c.paper), {
            "table": t.key, "section": sec.title, "row": row_label(key), "columns": [], "ours": c.ours,
            "paper": c.paper, "diff": c.diff, "tolerance": c.tolerance, "settings_differ": c.settings_differ})
        entry["columns"].append(label)
    return sorted(found.values(), key=lambda d: -abs(d["diff"]))[:top]


def _columns_text(columns: list[str]) -> str:
    return ", ".join(columns) if len(columns) <= 3 else f"{', '.join(columns[:2])}, … ({len(columns)} columns)"


def claims_data(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [{"claim": v.claim.id, "statement": v.claim.statement, "where": v.claim.where, "status": v.status,
             "paper_status": v.paper_status,
             "comparisons": [{"label": o.comparison.label, "ours": o.ours, "paper": o.paper,
                              "n": o.n if o.ours is not None else None} for o in v.outcomes]}
            for v in verdicts]


def _claim_detail(v: Verdict) -> str:
    checked = v.checked
    if not checked:
        return f"none of its {len(v.outcomes)} comparisons has runs of both methods"
    rel = f"{v.claim.relation} {v.claim.margin:+g}"
    if v.status == HOLDS:
        worst = min(checked, key=lambda o: o.ours)
        return (f"{len(checked)} of {len(v.outcomes)} comparisons checked, each {rel}; smallest: "
                f"{worst.comparison.label}: {num(worst.ours, True)} over {langs_text(worst.n)}")
    failed = v.failed
    shown = "; ".join(f"{o.comparison.label}: {num(o.ours, True)} over {langs_text(o.n)}"
                      + (f" (paper {num(o.paper, True)})" if o.paper is not None else "") for o in failed[:3])
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"{len(failed)} of {len(checked)} comparisons checked fail (need {rel}): {shown}{more}"


def md(tables: list[Table], verdicts: list[Verdict]) -> list[str]:
    lines = ["## Summary", "",
             "**Tolerance**: ours counts as reproducing a paper cell when |ours − paper| is at most the "
             "metric's tolerance (a display threshold, not a significance test). Averages take the largest "
             "tolerance of the metrics they average; Table 12's gains twice that (a difference of two "
             "scores).", "", "| benchmark | metric | tolerance | why |", "|---|---|---|---|"]
    for tol in tolerances():
        lines.append(f"| {tol['benchmark']} | {tol['metric']} | ±{tol['tolerance']:g} ({tol['unit']}) | "
                     f"{tol['basis']} |")
    lines += ["", "**Cells within tolerance**, per table (every cell with ours and the paper's value over the same "
              "languages, averages included):", "",
              "| table | cells compared | within tolerance | rate | of them † |", "|---|---|---|---|---|"]
    for c in table_counts(tables):
        rate = "—" if c["rate"] is None else f"{100 * c['rate']:.0f}%"
        lines.append(f"| {c['title']} | {c['compared']} | {c['within']} | {rate} | {c['settings_differ']} |")
    top = divergences(tables)
    lines += ["", f"**The {TOP} largest divergences** (|ours − paper|, among per-language cells and the averages "
              "the paper printed without per-language values):", ""]
    if top:
        lines += ["| table | section | row | columns | ours | paper | ours − paper | tolerance |",
                  "|---|---|---|---|---|---|---|---|"]
        for d in top:
            mark = "†" if d["settings_differ"] else ""
            tol = "—" if d["tolerance"] is None else f"±{d['tolerance']:g}"
            lines.append(f"| {d['table']} | {d['section']} | {d['row']} | {_columns_text(d['columns'])} | "
                         f"{num(d['ours'])}{mark} | "
                         f"{num(d['paper'])} | {num(d['diff'], True)} | {tol} |")
    else:
        lines.append("No cell of ours has a paper value to compare with.")
    lines += ["", "**The paper's claims on our runs** (`sdrrl/data/paper_claims.csv`; each comparison over the "
              "languages and benchmarks both methods' runs have; *the paper* is the claim on the paper's own "
              "numbers over the same cells, or over all of them where ours has none):", "",
              "| claim | where | ours | the paper | comparisons |", "|---|---|---|---|---|"]
    for v in verdicts:
        status = f"**{v.status}**" if v.status in (HOLDS, FAILS) else v.status
        lines.append(f"| {v.claim.statement} | {v.claim.where} | {status} | {v.paper_status} | {_claim_detail(v)} |")
    lines.append("")
    return lines


def data(tables: list[Table], verdicts: list[Verdict]) -> dict[str, Any]:
    return {"tolerances": tolerances(), "tables": table_counts(tables), "divergences": divergences(tables),
            "claims": claims_data(verdicts)}
