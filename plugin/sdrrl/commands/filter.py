"""``sdrrl filter``: QE, language ID and heuristic filters into WORK/filter/{src}-{tgt}.*"""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, add_preflight, add_langs, load_config, preflight, wait_arg

FIELDS = {"qe_model": "filter.qe_model", "qe_threshold": "filter.qe_threshold",
          "qe_batch_size": "filter.qe_batch_size"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_preflight(p)
    add_langs(p)
    p.add_argument("--qe-model", help="COMET QE checkpoint (paper: Unbabel/wmt22-cometkiwi-da) or its local path")
    p.add_argument("--qe-threshold", type=float, help="reject QE scores below this (paper: 0.8)")
    p.add_argument("--qe-batch-size", type=int)
    p.add_argument("--no-qe", action="store_true", help="skip the QE filter (not the paper's setup)")
    p.add_argument("--no-lid", action="store_true", help="skip the language-ID filter (not the paper's setup)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.pipeline import lock, workdir
    from sdrrl.pipeline.cache import Cache
    from sdrrl.pipeline.filters import run_filter

    cfg = load_config(args, FIELDS)
    if args.no_qe:
        cfg.filter.qe_enabled = False
    if args.no_lid:
        cfg.filter.lid_enabled = False
    workdir.check_shard(args.num_shards, args.shard_index)
    preflight(args, cfg, "filter")
    summaries = {}
    with lock.hold_work(cfg.work, args.num_shards, args.shard_index, wait_arg(args)), Cache(cfg.cache_path) as cache:
        for tgt in cfg.target_langs:
            summaries[tgt] = run_filter(cfg.work, cfg, cfg.source_lang, tgt, cache,
                                        num_shards=args.num_shards, shard_index=args.shard_index)
    if args.num_shards == 1:  # a shard's counts are partial
        from sdrrl.pipeline.build import report_kept

        # the table and warnings; an empty language fails `sdrrl build` and, later, `sdrrl export`
        report_kept(cfg, summaries, "filter", fail_on_empty=False)
    return 0
