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


def run(args: argparse.Namespace) -> int:
    import time

    from sdrrl import tiny

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # library chatter must not mix with the paths
        models = tiny.build_all(args.cache_dir)
        pruned = tiny.prune(args.cache_dir) if args.prune else []
    paths = models.as_dict()
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
