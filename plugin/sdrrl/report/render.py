"""REPORT.md, the same tables as CSV/JSON, and the PNG plots, written as one transaction."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdrrl import catalog
from sdrrl.errors import SdrrlError
from sdrrl.report import figure3
from sdrrl.report.runs import Run
from sdrrl.report.tables import Cell, Results, Table

DASH = "—"
PAPER_SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:2.0.0"
PAPER_COMET = "Unbabel/wmt22-comet-da"
REPRESENTATION_KEYS = ("name", "mean_cos_parallel", "mean_cos_random", "retrieval_top1", "n")


def _num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return DASH
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def cell_text(c: Cell, has_paper: bool = True) -> str:
    star = "*" if c.partial else ""
    if not has_paper:
        return _num(c.ours)
    text = f"{_num(c.ours)} / {_num(c.paper)}{star}"
    if c.diff is not None:
        text += f" ({c.diff:+.2f})"
    return text


def delta_text(c: Cell) -> str:
    star = "*" if c.partial else ""
    return f"{_num(c.ours_vs_sft, True)} / {_num(c.paper_vs_sft, True)}{star}"


def _row_label(key: str) -> str:
    """A row's label: a method's (or the base model's) from the catalog; other rows (runs in the
    off-target tables, source languages in Table 12) are keyed by their label already."""
    return catalog.label(key) if key == catalog.BASE or key in catalog.METHODS else key


def _md_table(table: Table, section, fmt) -> list[str]:
    lines = ["| | " + " | ".join(table.labels) + " |", "|---|" + "---|" * len(table.labels)]
    for method, cells in section.rows.items():
        lines.append(f"| {_row_label(method)} | " + " | ".join(fmt(c) for c in cells) + " |")
    return lines


# ---- representation --------------------------------------------------------------------------

@dataclass
class Representation:
    file: Path
    data: dict
    plot: Path | None


def load_representation(raw: str) -> Representation:
    path = Path(raw)
    fix = ("pass the representation.json written by the representation command: {\"models\": [{\"name\", "
           "\"mean_cos_parallel\", \"mean_cos_random\", \"retrieval_top1\", \"n\"}, ...], \"src\", \"tgt\", \"plot\"}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SdrrlError(f"--representation {raw!r}: no such file.", fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SdrrlError(f"--representation {raw!r} is not readable JSON ({err}).", fix) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list) or not models:
        raise SdrrlError(f"--representation {raw!r} has no \"models\" list.", fix)
    for i, m in enumerate(models):
        missing = [k for k in REPRESENTATION_KEYS if not isinstance(m, dict) or k not in m]
        if missing:
            raise SdrrlError(f"--representation {raw!r}: models[{i}] lacks {', '.join(missing)}.", fix)
    plot = None
    if isinstance(data.get("plot"), str) and data["plot"]:
        candidate = (path.parent / data["plot"]) if not Path(data["plot"]).is_absolute() else Path(data["plot"])
        plot = candidate if candidate.is_file() else None
    return Representation(path, data, plot)


def _f(v: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else DASH


def representation_md(reps: list[Representation], names: list[str | None]) -> list[str]:
    lines = ["## Representation analysis (section 4.4, Figure 2)", "",
             "Last-layer hidden state of the last token of N parallel instructions (source and target "
             "language). Higher cosine similarity of parallel pairs than of random pairs, and a higher "
             "top-1 retrieval accuracy of the parallel partner, mean the two languages' representations "
             "are closer (the paper's claim for SDRRL; it reports only the t-SNE plot, no numbers).", ""]
    for rep, plot_name in zip(reps, names):
        d = rep.data
        extra = "; ".join(f"{k}: {d[k]}" for k in ("data", "template") if isinstance(d.get(k), str))
        lines += [f"**{d.get('src', '?')} / {d.get('tgt', '?')}** (`{rep.file}`{'; ' + extra if extra else ''})", "",
                  "| model | path | n | mean cos (parallel) | mean cos (random) | gap | retrieval top-1 |",
                  "|---|---|---|---|---|---|---|"]
        for m in d["models"]:
            gap = (m["mean_cos_parallel"] - m["mean_cos_random"]
                   if all(isinstance(m[k], (int, float)) for k in ("mean_cos_parallel", "mean_cos_random")) else None)
            lines.append(f"| {m['name']} | `{m.get('path', '')}` | {m['n']} | {_f(m['mean_cos_parallel'])} | "
                         f"{_f(m['mean_cos_random'])} | {_f(gap, '{:+.3f}')} | {_f(m['retrieval_top1'])} |")
        lines.append("")
        if plot_name:
            lines += [f"![t-SNE of the representations]({plot_name})", ""]
    return lines


# ---- plots -------------------------------------------------------------------------------------

def _plot_gains(table: Table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs, labels = table.columns[:-1], table.labels[:-1]
    n = len(table.sections)
    fig, axes = plt.subplots(n, 1, figsize=(max(7.0, 0.75 * len(langs) + 2), 2.8 * n), squeeze=False)
    for ax, sec in zip(axes[:, 0], table.sections):
        methods = [m for m, cells in sec.rows.items() if m != catalog.REFERENCE
                   and any(c.ours_vs_sft is not None for c in cells[:-1])]
        note = ""
        if not methods:
            methods, note = [catalog.SDRRL], " (paper only: no change of ours)"
        width = 0.8 / (2 * len(methods))
        for j, method in enumerate(methods):
            cells = sec.rows[method][:-1]
            x0 = [i - 0.4 + width * (2 * j + 0.5) for i in range(len(langs))]
            color = catalog.color(method)
            ours = [c.ours_vs_sft if c.ours_vs_sft is not None else 0.0 for c in cells]
            have = [c.ours_vs_sft is not None for c in cells]
            xs, ys = [x for x, h in zip(x0, have) if h], [o for o, h in zip(ours, have) if h]
            if xs:
                ax.bar(xs, ys, width, color=color, label=f"{_row_label(method)} (ours)")
                ax.plot(xs, ys, "o", color=color, markersize=3)  # a change of 0 stays visible
            pap = [(x + width, c.paper_vs_sft) for x, c in zip(x0, cells) if c.paper_vs_sft is not None]
            if pap:
                ax.bar([p[0] for p in pap], [p[1] for p in pap], width, color=color, alpha=0.35,
                       hatch="//", edgecolor=color, label=f"{_row_label(method)} (paper)")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(langs)), labels)
        ax.set_title(f"{sec.title}: change vs SFT{note}", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{table.title}: ours (solid) beside the paper (hatched)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_offtarget(table: Table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = table.labels
    n = len(table.sections)
    fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.75 * len(labels) + 2), 2.6 * n), squeeze=False)
    for ax, sec in zip(axes[:, 0], table.sections):
        keys = list(sec.rows)
        width = 0.8 / max(1, len(keys))
        for j, key in enumerate(keys):
            pts = [(i - 0.4 + width * (j + 0.5), c.ours) for i, c in enumerate(sec.rows[key]) if c.ours is not None]
            bars = ax.bar([p[0] for p in pts], [p[1] for p in pts], width,
                          color=catalog.color(key.split(" ")[0]), label=_row_label(key))  # Run.label
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", markersize=3,
                    color=bars.patches[0].get_facecolor() if bars.patches else None)  # 0 % stays visible
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylim(0, 100)
        ax.set_ylabel("off-target %", fontsize=8)
        ax.set_title(sec.title, fontsize=9)
        ax.legend(fontsize=7, ncol=3)
    fig.suptitle(table.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- signatures, versions -----------------------------------------------------------------------

def provenance_md(runs: list[Run]) -> list[str]:
    sigs: dict[str, set[str]] = {}
    for run in runs:
        for task, metrics in run.metrics.items():
            sig = metrics.get("spbleu_signature")
            if isinstance(sig, str) and sig:
                sigs.setdefault(sig, set()).add(run.label)
    lines = ["## Metric signatures and benchmark data versions", "",
             f"- Paper: sacrebleu `{PAPER_SIGNATURE}` (flores200 tokenisation arrived in sacrebleu 2.3.0, "
             f"so its `version:2.0.0` cannot be reproduced exactly); COMET `{PAPER_COMET}`."]
    if sigs:
        for sig, who in sorted(sigs.items()):
            same = "same settings as the paper" if sig.split("|version:")[0] == PAPER_SIGNATURE.split("|version:")[0] \
                else "**differs from the paper's settings**"
            lines.append(f"- Ours: sacrebleu `{sig}` ({same}; runs: {', '.join(sorted(who))}).")
    else:
        lines.append("- Ours: no spBLEU signature recorded (no FLORES task in the results).")
    comet = sorted({m for r in runs for m in r.comet_models})
    if comet:
        lines.append(f"- Ours: COMET model {', '.join(f'`{m}`' for m in comet)}.")
    elif any("comet" in m for r in runs for m in r.metrics.values()):
        lines.append("- Ours: COMET model not recorded in the results; the tasks use `$SDRRL_COMET_MODEL` "
                     f"(default `{PAPER_COMET}`), so check how the runs were started.")
    limits = sorted({str(r.limit) for r in runs if r.limit not in (None, 0)})
    if limits:
        lines.append(f"- **lm_eval ran with `--limit {', '.join(limits)}`**: these numbers come from a "
                     "subset of each test set and are not comparable with the paper.")
    versions: dict[str, set[str]] = {}
    for run in runs:
        for task in run.metrics:
            versions.setdefault(run.data_versions.get(task, "not recorded"), set()).add(task)
    lines += ["", "| benchmark data version | tasks |", "|---|---|"]
    for version in sorted(versions):
        lines.append(f"| {version} | {', '.join(sorted(versions[version]))} |")
    lines.append("")
    return lines


# ---- the whole report -------------------------------------------------------------------------

def _records(tables: list[Table]) -> list[dict]:
    out = []
    for t in tables:
        for sec in t.sections:
            for method, cells in sec.rows.items():
                for col, c in zip(t.columns, cells):
                    out.append({"table": t.key, "benchmark": sec.benchmark, "metric": sec.metric,
                                "direction": sec.direction, "section": sec.title, "method": method,
                                "column": col, "ours": c.ours, "paper": c.paper, "diff": c.diff,
                                "ours_vs_sft": c.ours_vs_sft, "paper_vs_sft": c.paper_vs_sft,
                                "avg_partial": c.partial, "avg_n": c.n})
    return out


def report_md(runs: list[Run], tables: list[Table], off: list[Table], reps: list[Representation],
              rep_plots: list[str | None], off_plots: list[str], figure3_md: list[str] = ()) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Our results beside the paper's", "",
             f"Written by `sdrrl report` on {now}. The paper's numbers (SDRRL: Self-Distillation from "
             "Resource-Rich Languages, Tables 2-12) come from `sdrrl/data/paper_results.csv`.", "",
             "Each cell: **ours / paper (ours − paper)**. A missing run or metric shows as —, never 0. "
             "`*` on an Avg.: ours covers fewer languages than the paper's table, and the paper's "
             "value beside it is its mean over the same languages. Scores as the paper prints them "
             "(accuracy, ROUGE, F1, COMET ×100; spBLEU as is). The second view of each table is the "
             "change against the SFT run: **ours − our SFT / paper − paper's SFT**.", "",
             "## Runs", "", "| method | pair | model | model path (lm-eval `model_args`) | results |",
             "|---|---|---|---|---|"]
    for r in runs:
        pair = f"{r.src}-{r.tgt}" if r.tgt else (r.src or DASH)
        lines.append(f"| {r.method} | {pair} | {r.model} | `{r.model_path}` | "
                     + ", ".join(f"`{f}`" for f in r.files) + " |")
    lines.append("")
    for family in catalog.FAMILIES.values():
        others = sorted({r.model_path for r in runs if r.model == family.name and not r.recognised})
        if others:
            lines += [f"Models named `@{family.name}` with `--run` whose path is not a {family.label} run "
                      f"({', '.join(f'`{o}`' for o in others)}) are set beside the paper's {family.label} "
                      "numbers: the difference says how far they are, not that anything was reproduced.", ""]
    for t in tables:
        lines += [f"## {t.title}", ""]
        if not t.has_ours:
            lines += ["No run of ours gives these tasks: the table shows the paper's values only.", ""]
        for sec in t.sections:
            lines += [f"**{sec.title}**", "", *_md_table(t, sec, lambda c: cell_text(c, t.has_paper)), ""]
        if any(catalog.REFERENCE in s.rows for s in t.sections) and t.key != "12":
            lines += ["Change against SFT (ours / paper):", ""]
            for sec in t.sections:
                rows = {k: v for k, v in sec.rows.items() if k != catalog.REFERENCE}
                if rows:
                    view = type(sec)(sec.title, sec.benchmark, sec.metric, sec.direction, rows)
                    lines += [f"*{sec.title}*", "", *_md_table(t, view, delta_text), ""]
        lines += [f"- {n}" for n in t.notes]
        if t.notes:
            lines.append("")
        if t.plot:
            lines += [f"![{t.title}: gain over SFT, ours beside the paper's]({t.plot})", ""]
    for t, plot in zip(off, off_plots):
        lines += [f"## {t.title}", ""]
        for sec in t.sections:
            lines += [f"**{sec.title}**", "", *_md_table(t, sec, lambda c: _num(c.ours)), ""]
        lines += [f"- {n}" for n in t.notes] + ["", f"![{t.title}]({plot})", ""]
    if not off:
        lines += ["## Off-target rates (appendix E)", "", "No generation task with an off-target rate in the results.", ""]
    lines += figure3_md
    if reps:
        lines += representation_md(reps, rep_plots)
    lines += provenance_md(runs)
    return "\n".join(lines)


def write(out: Path, runs: list[Run], tables: list[Table], off: list[Table], reps: list[Representation],
          fig3: list[Table] = ()) -> Path:
    """Write everything into a fresh folder beside ``out`` and swap it in: old report or new, never a mix."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "REPORT.md").exists())):
        raise SdrrlError(f"--out {str(out)!r} exists and is not an sdrrl report folder.",
                         "choose a new folder (or an earlier report's folder, which is replaced).")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / "plots").mkdir()
        for t in tables:
            if t.key in ("6", "12"):
                continue
            t.plot = f"plots/gains_table{t.key}.png"
            _plot_gains(t, tmp / t.plot)
        off_plots = []
        for t in off:
            name = f"plots/{t.key}.png"
            _plot_offtarget(t, tmp / name)
            off_plots.append(name)
        rep_plots: list[str | None] = []
        for i, rep in enumerate(reps):
            if rep.plot is not None:
                name = f"plots/representation-{i + 1}{rep.plot.suffix}"
                shutil.copyfile(rep.plot, tmp / name)
                rep_plots.append(name)
            else:
                rep_plots.append(None)
        figure3_md = figure3.render(list(fig3), tmp)
        (tmp / "REPORT.md").write_text(report_md(runs, tables, off, reps, rep_plots, off_plots, figure3_md),
                                       encoding="utf-8")
        records = _records(tables + off + list(fig3))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["table"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        (tmp / "tables.csv").write_text(buf.getvalue(), encoding="utf-8")
        payload = {"runs": [{"name": r.name, "method": r.method, "src": r.src, "tgt": r.tgt, "model": r.model,
                             "model_path": r.model_path, "files": [str(f) for f in r.files],
                             "lm_eval_version": r.lm_eval_version, "limit": r.limit,
                             "data_versions": r.data_versions} for r in runs],
                   "cells": records,
                   "representation": [rep.data for rep in reps]}
        (tmp / "tables.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "REPORT.md"


def build_report(paths: list[str], out: str, named: list[str] | None = None,
                 representations: list[str] | None = None) -> Path:
    from sdrrl.report import runs as runs_mod
    from sdrrl.report import tables as tables_mod

    if not paths and not named:
        raise SdrrlError("No results given.", "pass lm_eval --output_path folders, or --run METHOD/SRC-TGT=PATH.")
    reps = [load_representation(r) for r in representations or []]
    runs = runs_mod.load_runs(list(paths), list(named or []))
    res = Results(runs)
    return write(Path(out), runs, tables_mod.build(res), tables_mod.offtarget_tables(res), reps,
                 figure3.tables(res))
