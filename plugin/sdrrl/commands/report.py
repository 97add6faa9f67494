"""``sdrrl report``: lm-eval results beside the paper's Tables 2-12, with plots (REPORT.md)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="RESULT_DIR",
                   help="lm_eval --output_path folders or results_*.json files; each model's method and "
                        "language pair come from its path (saves/<model>/<method>/<src>-<tgt>)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for REPORT.md, tables.csv/json and plots/ (an earlier report there is replaced)")
    p.add_argument("--run", action="append", default=[], metavar="METHOD[/SRC-TGT][@MODEL]=PATH",
                   help="a run named explicitly, e.g. sdrrl/eng-ind=out/x, sft/eng=out/sft, base=out/base, "
                        "sdrrl/eng-tha@seallm=out/y (repeatable)")
    p.add_argument("--representation", action="append", default=[], metavar="FILE",
                   help="representation.json of the representation analysis to include (repeatable)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.report.render import build_report

    path = build_report(args.paths, args.out, args.run, args.representation)
    print(f"wrote {path}")
    return 0
