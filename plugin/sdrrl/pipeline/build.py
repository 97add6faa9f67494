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
        translator = translator or make_translator(cfg.translate, cache_root=cfg.cache_path.parent,
                                                   generate=cfg.generate, seed=cfg.sample.seed)
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
    return stats
