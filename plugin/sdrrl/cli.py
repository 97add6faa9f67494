"""``sdrrl`` command line. Subcommands register lazily: no heavy import before a command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from sdrrl.errors import SdrrlError

# Each entry: name -> (help, module path). The module exposes add_arguments(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "export": ("compose SDRRL/baseline/ablation datasets and export a LLaMA-Factory registry", "sdrrl.commands.export"),
    "languages": ("list the language table", "sdrrl.commands.languages"),
    "score": ("re-score lm-eval --log_samples output of the sdrrl_* tasks offline", "sdrrl.commands.score"),
    "generate": ("self-distillation responses G = {(x, M(x))} (pipeline stage 1)", "sdrrl.commands.generate"),
    "sample": ("D_synth: each row from D or G with equal probability (stage 2)", "sdrrl.commands.sample"),
    "translate": ("translate x, y, y_hat with NLLB, cached and resumable (stage 3)", "sdrrl.commands.translate"),
    "filter": ("QE, language-ID and heuristic filters with an exclusion file (stage 4)", "sdrrl.commands.filter"),
    "build": ("run generate, sample, translate, filter for the config's languages", "sdrrl.commands.build"),
    "tiny-models": ("build the tiny local models used by tests and the demo", "sdrrl.commands.tiny"),
    "train": ("check a recipe's registry, then run the unmodified llamafactory-cli train",
              "sdrrl.commands.train"),
    "report": ("lm-eval results beside the paper's Tables 2-12, with plots (REPORT.md)",
               "sdrrl.commands.report"),
    "demo": ("run the embedded default end to end on tiny models and shipped data",
             "sdrrl.commands.demo"),
    "represent": ("representation analysis (Figure 2): t-SNE plot, parallel cosine, retrieval",
                  "sdrrl.commands.represent"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand is listed; only ``command``'s module is imported (to add its options)."""
    import importlib

    from sdrrl import __version__

    parser = argparse.ArgumentParser(
        prog="sdrrl",
        description="Self-Distillation from Resource-Rich Languages: build SDRRL data, export "
        "LLaMA-Factory registries, evaluate with lm-eval tasks.",
    )
    parser.add_argument("--version", action="version", version=f"sdrrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, module) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    run: Callable | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 0
    try:
        return int(run(args) or 0)
    except SdrrlError as err:
        lines = err.lines() if hasattr(err, "lines") else [str(err)]  # a ConfigError: one line per problem
        for line in lines:
            print(f"sdrrl {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sdrrl {args.command}: interrupted; finished work is kept, run again to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
