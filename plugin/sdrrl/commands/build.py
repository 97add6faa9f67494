"""``sdrrl build --config FILE``: generate, sample, translate and filter for every target language."""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, load_config

FIELDS = {"input": "input", "max_rows": "max_rows"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p, shards=False)
    p.add_argument("--tgt", nargs="+", help="target language(s), ISO 639-3 (default: the config's target_langs)")
    p.add_argument("--src", help="source language (eng or fra)")
    p.add_argument("--input", help="D: alpaca-style JSON Lines, JSON array (alpaca_data.json), Parquet, datasets folder or hub id")
    p.add_argument("--max-rows", type=int, help="use only the first N rows of D")


def run(args: argparse.Namespace) -> int:
    from sdrrl.pipeline.build import run_build

    run_build(load_config(args, FIELDS))
    return 0
