"""``sdrrl tiny-models``: build (or find) the tiny local models and print where they are."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", default=None,
                   help="where to build them (default: $SDRRL_CACHE/tiny-models, else "
                        "~/.cache/sdrrl/tiny-models)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--prune", action="store_true",
                   help="also delete older builds in the cache that the current recipes no longer use")
    p.add_argument("--link", metavar="DIR", default=None,
                   help="also make stable symlinks DIR/<name> to the built models (e.g. demo_out/models/llama, "
                        "the path recipes/sdrrl_tiny_cpu.yaml names)")


def link_models(paths: dict, link_dir) -> None:
    """Point DIR/<name> at each model directory, replacing older links atomically.

    A COMET checkpoint file is linked by its model folder (the one holding hparams.yaml and
    checkpoints/): comet finds hparams.yaml relative to the path it is given, not the link target.
    """
    import os
    from pathlib import Path

    d = Path(link_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, target in paths.items():
        target = Path(target)
        if target.is_file():
            target = target.parents[1]
        tmp = d / f".{name}.tmp-link"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.abspath(target), tmp)
        os.replace(tmp, d / name)


def run(args: argparse.Namespace) -> int:
    import time

    from sdrrl import tiny

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # library chatter must not mix with the paths
        models = tiny.build_all(args.cache_dir)
        pruned = tiny.prune(args.cache_dir) if args.prune else []
    paths = models.as_dict()
    if args.link:
        link_models(paths, args.link)
    if args.json:
        print(json.dumps(paths, indent=2))
    else:
        for name, path in paths.items():
            print(f"{name}\t{path}")
    built = ", ".join(tiny.BUILD_LOG) or "none (all found in the cache)"
    for path in pruned:
        print(f"pruned {path}", file=sys.stderr)
    print(f"built: {built}; {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
