"""REPORT.md, the same tables as CSV/JSON, and the PNG plots (with their data), written as one transaction."""

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
from sdrrl.report import figure3, paper, plots, summary
from sdrrl.report.runs import Run
from sdrrl.report.tables import DASH, Cell, Results, Section, Table, langs_text, num, row_label

REPRESENTATION_KEYS = ("name", "mean_cos_parallel", "mean_cos_random", "retrieval_top1", "n")
MARKS = {
    "*": "the paper's value is recomputed from its per-language values over exactly the languages (and "
         "benchmarks) ours has, or the paper printed none here; it is not a number the paper prints.",
    "‡": "the paper's printed Avg. is not the mean of its row (the paper's slip, listed below the table); it "
         "is shown as printed, and the difference is against the mean over the same languages.",
    "§": "the paper printed only this average, over languages ours lacks, and no per-language values for "
         "the row: not compared.",
    "†": "a metric setting of ours differs from the paper's (sacrebleu signature or COMET model, see "
         "\"Metric signatures\" below): computed differently, not like for like.",
}


def _paper_mark(c: Cell) -> str:
    if c.recomputed:
        return "*"
    if c.not_compared:
        return "§"
    return "‡" if c.printed_not_mean else ""


def cell_text(c: Cell, has_paper: bool = True) -> str:
    """``ours / paper (ours − paper)``, with the marks of MARKS; an average over fewer languages than
    the paper's says how many."""
    ours = num(c.ours) + ("†" if c.settings_differ and c.ours is not None else "")
    if not has_paper:
        return ours + (f" ({c.n})" if c.multi and c.ours is not None else "")
    text = f"{ours} / {num(c.shown_paper)}{_paper_mark(c)}"
    extra = [num(c.diff, True)] if c.diff is not None else []
    if c.multi and c.ours is not None and c.recomputed:
        extra.append(langs_text(c.n))
    return text + (f" ({'; '.join(extra)})" if extra else "")


def delta_text(c: Cell) -> str:
    """``ours − our SFT / paper − its SFT``, over the cells both runs have (how many languages, for an average)."""
    star = "*" if c.vs_sft_recomputed and c.paper_vs_sft is not None else ""
    text = f"{num(c.ours_vs_sft, True)} / {num(c.paper_vs_sft, True)}{star}"
    return text + (f" ({langs_text(c.n_vs_sft)})" if c.multi and c.ours_vs_sft is not None else "")


def _md_table(table: Table, section: Section, fmt) -> list[str]:
    lines = ["| | " + " | ".join(table.labels) + " |", "|---|" + "---|" * len(table.labels)]
    for key, cells in section.rows.items():
        lines.append(f"| {row_label(key)} | " + " | ".join(fmt(c) for c in cells) + " |")
    return lines


def _table_notes(table: Table) -> list[str]:
    """The marks used in a table, and the paper's slips (‡) and uncompared averages (§) one by one."""
    notes, used = [], set()
    for sec in table.sections:
        for key, cells in sec.rows.items():
            for label, c in zip(table.labels, cells):
                mark = _paper_mark(c)
                used |= {m for m in (mark, "†" if c.ours is not None and c.settings_differ else "",
                                     "*" if c.vs_sft_recomputed and c.paper_vs_sft is not None else "") if m}
                if mark == "‡":
                    notes.append(f"‡ {row_label(key)}, {sec.title}, {label}: the paper prints {num(c.printed)}; "
                                 f"the mean of the per-language values it averages is {num(c.paper)}.")
                elif mark == "§":
                    notes.append(f"§ {row_label(key)}, {sec.title}, {label}: the paper prints {num(c.printed)} "
                                 f"over all its languages and no per-language values; ours covers {langs_text(c.n)}.")
    return [f"{m} {MARKS[m]}" for m in MARKS if m in used] + notes


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


# ---- signatures, versions -----------------------------------------------------------------------

def provenance_md(runs: list[Run]) -> list[str]:
    sigs: dict[str, set[str]] = {}
    comets: dict[str, set[str]] = {}
    unrecorded: set[str] = set()
    for run in runs:
        for task, metrics in run.metrics.items():
            sig = run.setting(task, "spbleu")
            if sig:
                sigs.setdefault(sig, set()).add(run.label)
            model = run.setting(task, "comet")
            if model:
                comets.setdefault(model, set()).add(run.label)
            elif run.value(task, "comet") is not None:
                unrecorded.add(run.label)
    lines = ["## Metric signatures and benchmark data versions", "",
             f"- Paper: sacrebleu `{paper.SIGNATURE}` (flores200 tokenisation arrived in sacrebleu 2.3.0, "
             f"so its `version:2.0.0` cannot be reproduced exactly); COMET `{paper.COMET_MODEL}`."]
    if sigs:
        for sig, who in sorted(sigs.items()):
            same = ("**differs from the paper's settings**: its spBLEU cells are marked †"
                    if paper.setting_differs("spbleu", sig) else "same settings as the paper")
            lines.append(f"- Ours: sacrebleu `{sig}` ({same}; runs: {', '.join(sorted(who))}).")
    else:
        lines.append("- Ours: no spBLEU signature recorded (no FLORES task in the results).")
    for model, who in sorted(comets.items()):
        name, _, digest = model.partition("|sha256:")
        if name == paper.COMET_OFF:
            what = "COMET turned off (its cells are empty)"
        else:
            what = f"COMET model `{name}`" + (f" (checkpoint sha256:{digest})" if digest else "")
            what += (": **not the paper's model**, its COMET cells are marked †"
                     if paper.setting_differs("comet", model) else ": the paper's model")
        lines.append(f"- Ours: {what} (runs: {', '.join(sorted(who))}).")
    if unrecorded:
        lines.append(f"- Ours: COMET model not recorded in the results of {', '.join(sorted(unrecorded))} (older "
                     f"results); the tasks use `$SDRRL_COMET_MODEL` (default `{paper.COMET_MODEL}`), so check how "
                     "those runs were started.")
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
                                "paper_printed": c.printed, "n": c.n, "recomputed": c.recomputed,
                                "printed_not_mean": c.printed_not_mean, "not_compared": c.not_compared,
                                "settings_differ": c.settings_differ, "tolerance": c.tolerance,
                                "within_tolerance": c.within, "ours_vs_sft": c.ours_vs_sft,
                                "paper_vs_sft": c.paper_vs_sft, "n_vs_sft": c.n_vs_sft,
                                "vs_sft_recomputed": c.vs_sft_recomputed})
    return out


def report_md(runs: list[Run], tables: list[Table], off: list[Table], reps: list[Representation],
              rep_plots: list[str | None], verdicts, figure3_md: list[str] = ()) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Our results beside the paper's", "",
             f"Written by `sdrrl report` on {now}. The paper's numbers (SDRRL: Self-Distillation from "
             "Resource-Rich Languages, Tables 2-12) come from `sdrrl/data/paper_results.csv`.", "",
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
    lines += summary.md(tables, verdicts)
    lines += ["## Reading the tables", "",
              "Each cell: **ours / paper (ours − paper)**, scaled as the paper prints it (accuracy, ROUGE, F1, "
              "COMET ×100; spBLEU as is). A missing run or metric shows as —, never 0. Like for like: an "
              "average of ours is over the languages (and benchmarks) ours has, and the paper's value beside it "
              "over exactly the same ones, from the paper's per-language values; the cell then says how many "
              "languages. The second view of each table is the change against the SFT run, **ours − our SFT / "
              "paper − paper's SFT**, over the cells both runs have (how many languages, for an average). Marks:", "",
              *(f"- `{m}` {text}" for m, text in MARKS.items()), ""]
    for t in tables:
        lines += [f"## {t.title}", ""]
        if not t.has_ours:
            lines += ["No run of ours gives these tasks: the table shows the paper's values only.", ""]
        for sec in t.sections:
            lines += [f"**{sec.title}**", "", *_md_table(t, sec, lambda c: cell_text(c, t.has_paper)), ""]
        if any(catalog.REFERENCE in s.rows for s in t.sections):
            lines += ["Change against SFT (ours / paper):", ""]
            for sec in t.sections:
                rows = {k: v for k, v in sec.rows.items() if k != catalog.REFERENCE}
                if rows:
                    view = Section(sec.title, sec.benchmark, sec.metric, sec.direction, rows)
                    lines += [f"*{sec.title}*", "", *_md_table(t, view, delta_text), ""]
        notes = t.notes + _table_notes(t)
        lines += [f"- {n}" for n in notes]
        if notes:
            lines.append("")
        lines += [f"![{caption}]({path})" for path, caption in t.plots]
        if t.plots:
            lines.append("")
    for t in off:
        lines += [f"## {t.title}", ""]
        for sec in t.sections:
            lines += [f"**{sec.title}**", "", *_md_table(t, sec, lambda c: cell_text(c, False)), ""]
        lines += [f"- {n}" for n in t.notes] + [""] + [f"![{caption}]({path})" for path, caption in t.plots] + [""]
    if not off:
        lines += ["## Off-target rates (appendix E)", "",
                  "No generation task with an off-target rate in the results.", ""]
    lines += figure3_md
    if reps:
        lines += representation_md(reps, rep_plots)
    lines += provenance_md(runs)
    return "\n".join(lines)


def _plots(tables: list[Table], off: list[Table], folder: Path) -> None:
    """Each table's plots (their data as JSON beside them), recorded in ``Table.plots``."""
    for t in tables:
        for name, data, caption in (
                (f"gains_table{t.key}", plots.gains_data(t), "change against SFT, ours beside the paper's"),
                (f"gap_table{t.key}", plots.gap_data(t), "gap to the paper, ours − paper")):
            if data is not None:
                t.plots.append((f"plots/{plots.write(data, folder, name)}", f"{t.title}: {caption}"))
    for t in off:
        t.plots.append((f"plots/{plots.write(plots.offtarget_data(t), folder, t.key)}", t.title))


def write(out: Path, runs: list[Run], tables: list[Table], off: list[Table], reps: list[Representation],
          verdicts=(), fig3: list[Table] = ()) -> Path:
    """Write everything into a fresh folder beside ``out`` and swap it in: old report or new, never a mix."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "REPORT.md").exists())):
        raise SdrrlError(f"--out {str(out)!r} exists and is not an sdrrl report folder.",
                         "choose a new folder (or an earlier report's folder, which is replaced).")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / "plots").mkdir()
        _plots(tables, off, tmp / "plots")
        rep_plots: list[str | None] = []
        for i, rep in enumerate(reps):
            if rep.plot is not None:
                name = f"plots/representation-{i + 1}{rep.plot.suffix}"
                shutil.copyfile(rep.plot, tmp / name)
                rep_plots.append(name)
            else:
                rep_plots.append(None)
        verdicts = list(verdicts)
        figure3_md = figure3.render(list(fig3), tmp)
        (tmp / "REPORT.md").write_text(report_md(runs, tables, off, reps, rep_plots, verdicts, figure3_md),
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
                   "summary": summary.data(tables, verdicts),
                   "cells": records,
                   "plots": [path for t in tables + off for path, _ in t.plots],
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
    from sdrrl.report import claims
    from sdrrl.report import runs as runs_mod
    from sdrrl.report import tables as tables_mod

    if not paths and not named:
        raise SdrrlError("No results given.", "pass lm_eval --output_path folders, or --run METHOD/SRC-TGT=PATH.")
    reps = [load_representation(r) for r in representations or []]
    runs = runs_mod.load_runs(list(paths), list(named or []))
    res = Results(runs)
    tables = tables_mod.build(res)
    shown = {r.model for r in runs} | {f.name for f in catalog.FAMILIES.values() if f.main}
    verdicts = [v for v in claims.evaluate(res) if v.claim.model in shown]
    return write(Path(out), runs, tables, tables_mod.offtarget_tables(res), reps, verdicts, figure3.tables(res))
