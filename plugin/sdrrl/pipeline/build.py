"""``sdrrl build``: the whole data pipeline for one or more target languages, in one process.

prepare D -> generate G -> sample D_synth -> for each target: translate -> filter. Every model
output goes through the cache, so a second run of the same build does no model work, and a killed
build rerun continues where it stopped. Engines are created once and shared by all targets; each
loads its model only on its first cache miss. (Shards are for the single-stage commands.)
"""

from __future__ import annotations

import json
import time

from sdrrl.pipeline import workdir
from sdrrl.pipeline.cache import Cache
from sdrrl.pipeline.progress import say


def run_build(cfg, generator=None, translator=None, qe=None) -> dict:
    """Run every stage; returns per-stage stats including model call counts."""
    from sdrrl.io import ensure_writable_dir, write_json
    from sdrrl.pipeline.filters import CometKiwiFilter, run_filter
    from sdrrl.pipeline.generate import make_generator, run_generate
    from sdrrl.pipeline.sample import run_sample
    from sdrrl.pipeline.translate import make_translator, run_translate

    start = time.monotonic()
    work = ensure_writable_dir(cfg.work)
    write_json(work / "build.config.json", cfg.to_dict())
    stats: dict = {}
    with Cache(cfg.cache_path) as cache:
        rows, skipped = workdir.prepare_source(work, cfg.input, cfg.on_bad_row, cfg.max_rows)
        stats["prepare"] = {"rows": len(rows), "skipped": skipped}
        say(f"prepare: D = {cfg.input or str(workdir.shipped_sample()) + ' (the shipped sample; set input: for yours)'}, "
            f"{len(rows)} rows, {skipped} skipped; written to {workdir.source_path(work)}.")
        generator = generator or make_generator(cfg.generate, seed=cfg.sample.seed)
        stats["generate"] = run_generate(work, cfg, cache, generator)
        generator.release()  # a 7B generator need not share the GPU with NLLB and CometKiwi
        stats["sample"] = run_sample(work, cfg.sample.seed, cfg.sample.p_generated)
        translator = translator or make_translator(cfg.translate, cache_root=cfg.cache_path.parent)
        f = cfg.filter
        if qe is None and f.qe_enabled:
            qe = CometKiwiFilter(f.qe_model, f.qe_threshold, f.qe_batch_size, f.qe_gpus, cache)
        for tgt in cfg.target_langs:
            stats[f"translate {cfg.source_lang}-{tgt}"] = run_translate(work, cfg, cfg.source_lang, tgt, cache,
                                                                        translator)
            stats[f"filter {cfg.source_lang}-{tgt}"] = run_filter(work, cfg, cfg.source_lang, tgt, cache, qe)
    stats["model_calls"] = {"generate": generator.calls, "translate": translator.calls,
                            "qe": qe.calls if qe is not None else 0}
    elapsed = time.monotonic() - start
    kept = {t: stats[f"filter {cfg.source_lang}-{t}"]["kept"] for t in cfg.target_langs}
    say(f"build: {len(rows)} rows of D ({skipped} skipped) through generate, sample, translate and filter "
        f"for {cfg.source_lang} -> {', '.join(cfg.target_langs)} in {elapsed:.1f}s; model calls: "
        f"{json.dumps(stats['model_calls'])}; translations kept per language: {json.dumps(kept)}; "
        f"outputs in {work / 'filter'}, cache {cfg.cache_path}.")
    summaries = {t: stats[f"filter {cfg.source_lang}-{t}"] for t in cfg.target_langs}
    report_kept(cfg, summaries)  # every output is written: a language that kept nothing fails the build here
    return stats


def reason_label(reason: str, fcfg) -> str:
    """A rejection reason (``stage:reason``) as the filter setting that made it."""
    stage, _, why = reason.partition(":")
    if stage == "qe":
        return f"qe_threshold {fcfg.qe_threshold}"
    if stage == "lid":
        return f"language ID ({fcfg.lid_backend}, lid_min_letters {fcfg.lid_min_letters})"
    return {"length_ratio": f"length ratio outside [{fcfg.min_length_ratio}, {fcfg.max_length_ratio}]",
            "repetition": f"max_repeats {fcfg.max_repeats}",
            "copy_of_source": f"copy_min_letters {fcfg.copy_min_letters}",
            "empty": "empty translation"}.get(why, f"{stage} {why}")


def _by_label(summary: dict, fcfg) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason, n in summary["rejected_by_reason"].items():
        label = reason_label(reason, fcfg)
        counts[label] = counts.get(label, 0) + n
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def report_kept(cfg, summaries: dict[str, dict], command: str = "build", fail_on_empty: bool = True) -> None:
    """Print the per-language table of kept and rejected translations (by filter and setting); warn
    where a language keeps under ``KEEP_WARN`` of its translations; raise (every language at once)
    where one keeps none (only a warning when not ``fail_on_empty``): an empty language would
    otherwise surface only at export time."""
    from sdrrl import configfile
    from sdrrl.errors import SdrrlError

    src, fcfg = cfg.source_lang, cfg.filter
    head = ("lang", "rows", "translated", "kept", "kept %", "rejected by filter (setting)")
    table = []
    for tgt, s in summaries.items():
        translated = s["kept"] + s["rejected"]
        share = f"{100 * s['kept'] / translated:.0f}%" if translated else "-"
        reasons = ", ".join(f"{label}: {n}" for label, n in _by_label(s, fcfg).items()) or "none"
        table.append((tgt, str(s["rows"]), str(translated), str(s["kept"]), share, reasons))
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head) - 1)]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [head, *table]]
    say(f"{command}: translations kept and rejected per language (counts per field and every rejection: "
        f"{cfg.work / 'filter'}/{src}-LANG.summary.json and .excluded.jsonl):\n" + "\n".join(lines))
    problems = []
    for tgt, s in summaries.items():
        translated = s["kept"] + s["rejected"]
        labels = _by_label(s, fcfg)
        excluded = cfg.work / "filter" / f"{src}-{tgt}.excluded.jsonl"
        if s["kept"] == 0:
            if len(labels) == 1:
                (label, n), = labels.items()
                what = f"{label} rejected all {n} translations of {tgt} ({s['rows']} rows)"
            elif labels:
                what = (f"{tgt} kept none of its {translated} translations ({s['rows']} rows): "
                        + ", ".join(f"{label} rejected {n}" for label, n in labels.items()))
            else:
                what = f"{tgt} has no translations at all ({s['rows']} rows)"
            problems.append(SdrrlError(
                f"{what}; nothing of {tgt} can be exported.",
                f"read the rejected texts in {excluded}: noise means the translation model (translate.model) is "
                "wrong or untrained; good translations mean the filter setting is too strict for them: change it "
                "in the config's filter: section (the paper: qe_threshold 0.8, language ID on)."))
        elif s["kept"] < KEEP_WARN * translated:
            say(f"{command}: warning: {tgt} kept only {s['kept']} of {translated} translations "
                f"({100 * s['kept'] / translated:.0f}%, under {KEEP_WARN:.0%}): "
                + ", ".join(f"{label} rejected {n}" for label, n in labels.items())
                + f"; the rejected texts are in {excluded}.")
    if fail_on_empty:
        configfile.raise_problems(problems)
    for p in problems:
        say(f"{command}: warning: {p}")


# A language keeping under this share of its translations gets a warning (our choice: the paper
# reports no kept rates; at half, something other than ordinary noisy translations is usually wrong).
KEEP_WARN = 0.5
