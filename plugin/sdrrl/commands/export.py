"""``sdrrl export --config FILE --out DIR``: compose the datasets a config asks for and register them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sdrrl.errors import SdrrlError

if TYPE_CHECKING:
    from sdrrl.compose.manifest import Manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE",
                   help="YAML/JSON compose config (work_dir, source, targets, methods, code_switch, parallel, ...)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="registry folder: data files, dataset_info.json (merged) and manifest.json; written "
                        "beside it and switched in one step, so a killed or failed export leaves it as it was")
    p.add_argument("--overwrite", action="store_true",
                   help="replace dataset_info.json entries of the same name that differ")
    p.add_argument("--workers", type=int, default=None, help="processes (default: config value, 0 = all CPUs)")
    p.add_argument("--wait", nargs="?", type=float, const=float("inf"), default=0.0, metavar="SECONDS",
                   help="if a build (or any pipeline command) is writing the work directory, wait for it (as long "
                        "as it takes, or up to SECONDS) instead of stopping at once")
    p.add_argument("--hf-copy", metavar="DIR", default=None,
                   help="also write a Hugging Face datasets copy: DIR/{method}_{src}-{tgt}/ (sft: DIR/sft_{src}/) "
                        "with one Parquet file per subset (a config) and a README.md dataset card")


def run(args: argparse.Namespace) -> int:
    from sdrrl.compose import config as compose_config
    from sdrrl.compose import preflight
    from sdrrl.compose.export import export
    from sdrrl.compose.manifest import MANIFEST
    from sdrrl.pipeline import lock
    from sdrrl.pipeline.cliargs import wait_arg

    cfg = compose_config.load(args.config)
    if args.workers is not None:
        cfg.workers = args.workers
    preflight.check(cfg)  # every input the config names, all at once, before anything is written
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    try:
        # a reader of the work directory: never beside a build writing it, and only from one build
        with lock.hold_work_reading(cfg.path(cfg.work_dir), wait_arg(args)):
            preflight.check_generation(cfg)
            manifest = export(cfg, args.out, overwrite=args.overwrite, log=log)
    except SdrrlError:
        if args.hf_copy and (Path(args.out) / MANIFEST).is_file():
            try:  # copy what the registry holds; the export's own error is what gets reported
                _hf_copy(args, None, log)
            except SdrrlError as err:
                log(f"no Hugging Face copy: {err}")
        raise
    print(f"exported {len(manifest.last_export)} dataset(s) to {args.out} in {time.perf_counter() - start:.2f} s "
          f"(the registry folder was switched to the new export in one step; dataset_info.json and manifest.json updated)")
    if args.hf_copy:
        _hf_copy(args, manifest, log)
    return 0


def _hf_copy(args: argparse.Namespace, manifest: Manifest | None, log) -> None:
    from sdrrl.compose.hfcopy import write_hf_copy

    folders = write_hf_copy(args.out, manifest, args.hf_copy, log=log)
    print(f"wrote the Hugging Face datasets copy of {len(folders)} method folder(s) to {args.hf_copy}")
