"""``sdrrl build --config FILE [--num-shards N --shard-index I] [--wait]``: generate, sample, translate and
filter for every target language (this shard's rows), one writer per work directory."""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, load_config, wait_arg

FIELDS = {"input": "input", "max_rows": "max_rows"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--tgt", nargs="+", help="target language(s), ISO 639-3 (default: the config's target_langs)")
    p.add_argument("--src", help="source language (eng or fra)")
    p.add_argument("--input", help="D: alpaca-style JSON Lines, JSON array (alpaca_data.json), Parquet, datasets folder or hub id")
    p.add_argument("--max-rows", type=int, help="use only the first N rows of D")
    p.add_argument("--shard-timeout", type=float, metavar="SECONDS",
                   help="with --num-shards: how long a shard waits for the others before a stage that needs "
                        "every shard (sampling, filtering) fails (default 86400, a day)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.errors import SdrrlError
    from sdrrl.pipeline import preflight
    from sdrrl.pipeline.build import DEFAULT_SHARD_TIMEOUT_S, run_build

    timeout = DEFAULT_SHARD_TIMEOUT_S if args.shard_timeout is None else args.shard_timeout
    if timeout <= 0:
        raise SdrrlError(f"--shard-timeout {timeout:g} must be positive.",
                         "give the seconds a shard may wait, e.g. 3600.")
    cfg = load_config(args, FIELDS)
    preflight.check(cfg, "generate", needs_input=True, build=True)  # every model and file of every stage, before any work
    run_build(cfg, num_shards=args.num_shards, shard_index=args.shard_index,
              wait=wait_arg(args), shard_timeout_s=timeout)
    return 0
