"""Options shared by the pipeline commands, and how they override a config file (light imports)."""

from __future__ import annotations

import argparse
from typing import Any


def add_common(p: argparse.ArgumentParser, shards: bool = True) -> None:
    p.add_argument("--config", help="pipeline YAML (every field has the paper's default); options below override it")
    p.add_argument("--work-dir", help="the pipeline work directory (default: the config's work_dir)")
    p.add_argument("--cache", help="SQLite cache file shared by stages, runs and shards (default WORK/cache.sqlite)")
    p.add_argument("--on-bad-row", choices=("error", "skip"), help="bad input rows: stop, or skip+count+log")
    p.add_argument("--progress-every", type=float, metavar="SECONDS", help="seconds between progress lines")
    p.add_argument("--wait", nargs="?", type=float, const=float("inf"), default=0.0, metavar="SECONDS",
                   help="if another sdrrl process is writing to the work directory (or this shard), wait for it "
                        "(as long as it takes, or up to SECONDS) instead of stopping at once")
    if shards:
        p.add_argument("--num-shards", type=int, default=1,
                       help="split the model work into N shards, by whole batches (default 1)")
        p.add_argument("--shard-index", type=int, default=0, help="which shard this process runs (0..N-1)")


def wait_arg(args: argparse.Namespace) -> float | None:
    """--wait as :func:`sdrrl.pipeline.lock.hold_work` takes it: 0 refuse at once, None no limit."""
    wait = getattr(args, "wait", 0.0)
    if wait is None or wait == float("inf"):
        return None
    if wait < 0:
        from sdrrl.errors import SdrrlError

        raise SdrrlError(f"--wait {wait:g} is negative.", "give a number of seconds, or --wait alone to wait as "
                         "long as it takes.")
    return wait


def add_preflight(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preflight", choices=("all", "stage"), default="all",
                   help="before any model work, check the models and files of this stage and every later one "
                        "(all, the default), or of this stage only (stage: for stages run in different "
                        "environments or on different machines)")


def preflight(args: argparse.Namespace, cfg, stage: str, needs_input: bool = False) -> None:
    """Raise every missing model, file or folder of ``stage`` (and later stages) at once."""
    from sdrrl.pipeline import preflight as pre

    pre.check(cfg, stage, only=getattr(args, "preflight", "all") == "stage", needs_input=needs_input)


def add_langs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", help="source language, ISO 639-3 (eng or fra; default: the config's source_lang)")
    p.add_argument("--tgt", nargs="+", help="target language(s), ISO 639-3 (default: the config's target_langs)")


def load_config(args: argparse.Namespace, fields: dict[str, str]):
    """The config file (or defaults) with every given option written over its field."""
    from sdrrl.pipeline import config as config_mod

    cfg = config_mod.load(args.config) if args.config else config_mod.from_dict({})
    data = cfg.to_dict()
    overrides: dict[str, Any] = {"work_dir": getattr(args, "work_dir", None), "cache": getattr(args, "cache", None),
                                 "on_bad_row": getattr(args, "on_bad_row", None),
                                 "progress_every_s": getattr(args, "progress_every", None),
                                 "source_lang": getattr(args, "src", None),
                                 "target_langs": getattr(args, "tgt", None)}
    overrides.update({path: getattr(args, name, None) for name, path in fields.items()})
    for path, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config_mod.from_dict(data)
