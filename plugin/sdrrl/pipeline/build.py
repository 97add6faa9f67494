"""``sdrrl build``: the whole data pipeline for one or more target languages, in one process.

prepare D -> generate G -> sample D_synth -> for each target: translate -> filter. Every model
output goes through the cache, so a second run of the same build does no model work, and a killed
build rerun continues where it stopped. Engines are created once and shared by all targets; each
loads its model only on its first cache miss.

One writer per work directory (:mod:`sdrrl.pipeline.lock`): a second build on the same work
directory is refused, naming the first, or waits (``wait``).

Sharded (``num_shards`` N > 1, ``shard_index`` I): each of N processes runs the whole build for its
share: the generate, translate and QE batches I, I+N, ... (planned over all of D and D_synth, so
every batch is the unsharded build's: :mod:`sdrrl.pipeline.batches`).
Work that needs every shard is done by exactly one process, under the shared
work lock, and recorded by a marker with the fingerprint of its inputs, so the others skip it:
preparing D (``source.jsonl.done``), merging the generate shards and sampling D_synth
(``synth.jsonl.done``). Before sampling and before filtering a language, a shard waits for the
other shards' ``.done`` markers of the stage before (printing which are missing; failing after
``shard_timeout_s``). The last shard to finish a stage merges its shard files. Every shard translates
all its languages before filtering any, so a shard waits once per language at most. The merged
outputs are byte-identical to the unsharded build's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sdrrl import layout
from sdrrl.fingerprint import current
from sdrrl.io import read_json_object
from sdrrl.pipeline import lock, workdir
from sdrrl.pipeline.cache import Cache
from sdrrl.pipeline.progress import say

DEFAULT_SHARD_TIMEOUT_S = 24 * 3600.0  # shards of a SLURM array may start hours apart


def run_build(cfg, generator=None, translator=None, qe=None, num_shards: int = 1, shard_index: int = 0,
              wait: float | None = 0.0, shard_timeout_s: float = DEFAULT_SHARD_TIMEOUT_S) -> dict:
    """Run every stage (this shard's part when ``num_shards`` > 1); returns per-stage stats
    including model call counts. ``wait``: 0 refuses at once if another process holds the work
    directory, None waits as long as it takes, a number waits up to that many seconds."""
    from sdrrl.io import ensure_writable_dir

    workdir.check_shard(num_shards, shard_index)
    work = ensure_writable_dir(cfg.work)
    with lock.hold_work(work, num_shards, shard_index, wait):
        return _build(cfg, work, generator, translator, qe, num_shards, shard_index, shard_timeout_s)


def _build(cfg, work: Path, generator, translator, qe, num_shards: int, shard_index: int,
           shard_timeout_s: float) -> dict:
    from sdrrl.io import write_json
    from sdrrl.pipeline import translate
    from sdrrl.pipeline.filters import CometKiwiFilter, run_filter
    from sdrrl.pipeline.generate import make_generator, run_generate
    from sdrrl.pipeline.sample import run_sample
    from sdrrl.pipeline.translate import make_translator, run_translate

    start = time.monotonic()
    sharded = num_shards > 1
    label = "build" + (f" shard {shard_index}/{num_shards}" if sharded else "")
    src = cfg.source_lang
    stats: dict = {}
    with Cache(cfg.cache_path) as cache:
        if sharded:
            rows, skipped = _prepare_once(cfg, work, label, shard_index, num_shards)
        else:
            write_json(layout.build_config_path(work), cfg.to_dict())
            rows, skipped = workdir.prepare_source(work, cfg.input, cfg.on_bad_row, cfg.max_rows)
            _say_prepared(cfg, work, len(rows), skipped)
        stats["prepare"] = {"rows": len(rows), "skipped": skipped}
        generator = generator or make_generator(cfg.generate, seed=cfg.sample.seed)
        stats["generate"] = run_generate(work, cfg, cache, generator, num_shards, shard_index)
        translator = translator or make_translator(cfg.translate, cache_root=cfg.cache_path.parent,
                                                   generate=cfg.generate, seed=cfg.sample.seed, generator=generator)
        if getattr(translator, "vllm_engine", None) is None:  # self-translation on vLLM shares the engine
            generator.release()  # a 7B generator need not share the GPU with NLLB and CometKiwi
        if sharded:
            workdir.wait_for_shards(layout.batch_outputs_path(layout.responses_path(work)), num_shards,
                                    stats["generate"]["inputs"], label, "generate", shard_timeout_s,
                                    every_s=cfg.progress_every_s, work=work)
            stats["sample"] = _sample_once(cfg, work, label, num_shards, run_sample)
        else:
            stats["sample"] = run_sample(work, cfg.sample.seed, cfg.sample.p_generated)
        f = cfg.filter
        if qe is None and f.qe_enabled:
            qe = CometKiwiFilter(f.qe_model, f.qe_threshold, f.qe_batch_size, f.qe_gpus, cache)
        if sharded:  # every language translated first: one wait per language, not per stage and language
            for tgt in cfg.target_langs:
                stats[f"translate {src}-{tgt}"] = run_translate(work, cfg, src, tgt, cache, translator,
                                                                num_shards=num_shards, shard_index=shard_index)
            for tgt in cfg.target_langs:
                workdir.wait_for_shards(layout.batch_outputs_path(layout.translations_path(work, src, tgt)),
                                        num_shards, stats[f"translate {src}-{tgt}"]["inputs"], label,
                                        f"translate {src}-{tgt}", shard_timeout_s, every_s=cfg.progress_every_s,
                                        work=work)
                translate.assemble_shards(work, cfg, src, tgt, translator, num_shards)
                stats[f"filter {src}-{tgt}"] = run_filter(work, cfg, src, tgt, cache, qe,
                                                          num_shards=num_shards, shard_index=shard_index)
        else:
            for tgt in cfg.target_langs:
                stats[f"translate {src}-{tgt}"] = run_translate(work, cfg, src, tgt, cache, translator)
                stats[f"filter {src}-{tgt}"] = run_filter(work, cfg, src, tgt, cache, qe)
    translator.release()
    stats["model_calls"] = {"generate": generator.calls, "translate": translator.calls,
                            "qe": qe.calls if qe is not None else 0}
    elapsed = time.monotonic() - start
    if sharded:
        merged = all(layout.filtered_path(work, src, t).exists() for t in cfg.target_langs)
        say(f"{label}: batches {shard_index}, {shard_index + num_shards}, ... of generate, translate and QE (D: "
            f"{len(rows)} rows, {skipped} skipped) for {src} -> {', '.join(cfg.target_langs)} in {elapsed:.1f}s; "
            f"model calls: {json.dumps(stats['model_calls'])}; "
            + (f"every shard is done: outputs in {layout.filter_dir(work)}." if merged else
               "the last shard to finish merges the outputs into " + str(layout.filter_dir(work)) + "."))
    else:
        kept = {t: stats[f"filter {src}-{t}"]["kept"] for t in cfg.target_langs}
        say(f"build: {len(rows)} rows of D ({skipped} skipped) through generate, sample, translate and filter "
            f"for {src} -> {', '.join(cfg.target_langs)} in {elapsed:.1f}s; model calls: "
            f"{json.dumps(stats['model_calls'])}; translations kept per language: {json.dumps(kept)}; "
            f"outputs in {layout.filter_dir(work)}, cache {cfg.cache_path}.")
    if not sharded:
        report_kept(cfg, {t: stats[f"filter {src}-{t}"] for t in cfg.target_langs})
    elif merged:  # the last shard: the merged summaries count every shard's rows
        report_kept(cfg, {t: json.loads(layout.summary_path(work, src, t).read_text(encoding="utf-8"))
                          for t in cfg.target_langs})
    # every output is written before report_kept: a language that kept nothing fails the build there
    return stats


def _say_prepared(cfg, work: Path, n: int, skipped: int) -> None:
    say(f"prepare: D = {cfg.input or str(workdir.shipped_sample()) + ' (the shipped sample; set input: for yours)'}, "
        f"{n} rows, {skipped} skipped; written to {layout.source_path(work)}.")


def _prepare_once(cfg, work: Path, label: str, shard_index: int, num_shards: int) -> tuple[list[dict], int]:
    """D for a sharded build: prepared by the first shard here, reused by the others."""
    from sdrrl.io import read_jsonl, write_json

    deps = workdir.source_dependencies(cfg.input, cfg.on_bad_row, cfg.max_rows)
    source = layout.source_path(work)
    marker = layout.record_path(source)
    with lock.shared_work(work, "preparing D"):
        if any(not path.exists() for path in deps.inputs.values()):  # prepare_source says so, with the fix
            workdir.prepare_source(work, cfg.input, cfg.on_bad_row, cfg.max_rows)
        done = current(marker, deps.fingerprint(), [source])
        if done is not None:
            rows = list(read_jsonl(source))
            say(f"{label}: D already prepared by {done.get('by', 'another shard')}: {len(rows)} rows in {source}.")
            return rows, int(done.get("skipped", 0))
        _refuse_if_a_live_shard_prepared_other_inputs(work, marker, num_shards, label)
        write_json(layout.build_config_path(work), cfg.to_dict())
        rows, skipped = workdir.prepare_source(work, cfg.input, cfg.on_bad_row, cfg.max_rows,
                                               by=f"shard {shard_index} of {num_shards}", shard_index=shard_index,
                                               num_shards=num_shards, **lock.holder_record())
        _say_prepared(cfg, work, len(rows), skipped)
        return rows, skipped


def _refuse_if_a_live_shard_prepared_other_inputs(work: Path, marker: Path, num_shards: int, label: str) -> None:
    """D was prepared from other input or settings by a shard of this run that still runs: the
    shards were started with different configs. (A marker of a finished or dead run is just old.)"""
    data = read_json_object(marker)
    if data.get("num_shards") != num_shards:
        return
    index = data.get("shard_index")
    if not isinstance(index, int) or not 0 <= index < num_shards:
        return
    shard_lock = lock.shard_lock_path(work, num_shards, index)
    holder = lock.read_holder(shard_lock)
    if (lock.is_locked(shard_lock) and holder.get("pid") == data.get("pid")
            and holder.get("host") == data.get("host")):
        from sdrrl.errors import SdrrlError

        raise SdrrlError(f"{label}: shard {index} of {num_shards}, still running ({lock.describe(holder)}), prepared D "
                         "from another input, --max-rows or on_bad_row than this shard's config.",
                         "start every shard of a build with the same config and options (only --shard-index "
                         "differs); stop the shards and start them again alike (finished work is kept).")


def _sample_once(cfg, work: Path, label: str, num_shards: int, run_sample) -> dict:
    """D_synth for a sharded build: merged G and sampled by one shard, reused by the others."""
    from sdrrl.io import read_jsonl
    from sdrrl.pipeline import generate
    from sdrrl.pipeline.sample import dependencies as sample_dependencies

    generate.assemble_shards(work, num_shards)
    synth = layout.synth_path(work)
    marker = layout.record_path(synth)
    with lock.shared_work(synth.parent, "sampling D_synth"):
        done = current(marker, sample_dependencies(work, cfg.sample.seed, cfg.sample.p_generated).fingerprint(),
                       [synth])
        if done is not None:
            rows = list(read_jsonl(synth))
            n_g = sum(r.get("from") == "G" for r in rows)
            say(f"{label}: D_synth already sampled by another shard: {len(rows)} rows in {synth}.")
            return {"rows": len(rows), "from_G": n_g, "from_D": len(rows) - n_g}
        return run_sample(work, cfg.sample.seed, cfg.sample.p_generated)


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
        f"{layout.filter_dir(cfg.work)}/{src}-LANG.summary.json and .excluded.jsonl):\n" + "\n".join(lines))
    problems = []
    for tgt, s in summaries.items():
        translated = s["kept"] + s["rejected"]
        labels = _by_label(s, fcfg)
        excluded = layout.excluded_path(cfg.work, src, tgt)
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
