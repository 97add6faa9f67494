"""``sdrrl sample``: D_synth = Sample(D) u Sample(G) into WORK/sample/synth.jsonl."""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, add_preflight, load_config, preflight, wait_arg

FIELDS = {"seed": "sample.seed", "p_generated": "sample.p_generated"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p, shards=False)
    add_preflight(p)
    p.add_argument("--seed", type=int, help="sampling seed (default 42)")
    p.add_argument("--p-generated", type=float, help="probability that a row takes y_hat (paper: 0.5)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.pipeline import lock
    from sdrrl.pipeline.sample import run_sample

    cfg = load_config(args, FIELDS)
    preflight(args, cfg, "sample")
    with lock.hold_work(cfg.work, wait=wait_arg(args)):
        run_sample(cfg.work, cfg.sample.seed, cfg.sample.p_generated)
    return 0
