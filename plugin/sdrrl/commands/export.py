"""``sdrrl export --config FILE --out DIR``: compose the datasets a config asks for and register them."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE",
                   help="YAML/JSON compose config (work_dir, source, targets, methods, code_switch, parallel, ...)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="registry folder: data files, dataset_info.json (merged) and manifest.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace dataset_info.json entries of the same name that differ")
    p.add_argument("--workers", type=int, default=None, help="processes (default: config value, 0 = all CPUs)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.compose import config as compose_config
    from sdrrl.compose.export import export

    cfg = compose_config.load(args.config)
    if args.workers is not None:
        cfg.workers = args.workers
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    manifest = export(cfg, args.out, overwrite=args.overwrite, log=log)
    print(f"exported {len(manifest['last_export'])} dataset(s) to {args.out} in {manifest['seconds']} s "
          f"(dataset_info.json and manifest.json updated)")
    return 0
