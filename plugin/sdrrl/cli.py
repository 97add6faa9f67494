"""``sdrrl`` command line. Subcommands register lazily: no heavy import before a command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from sdrrl.errors import SdrrlError

# The guides in docs/, each for one task a user has (README.md links them all). The one map from a
# guide to what it covers; `sdrrl --help` lists them and each command's help ends with its guide.
GUIDES: dict[str, str] = {
    "docs/installing.md": "what `make setup` installs, the vLLM environment, the environment variables",
    "docs/walkthrough.md": "every step of a real run on the tiny models, as `make demo` runs them",
    "docs/building-data.md": "`sdrrl build`: generate, sample, translate, filter",
    "docs/exporting.md": "`sdrrl export`: compose every method, the LLaMA-Factory registry",
    "docs/training.md": "the recipes, `llamafactory-cli train` / `sdrrl train`, the loss",
    "docs/evaluation.md": "the lm-eval tasks, their data and metrics, `sdrrl score`",
    "docs/report.md": "`sdrrl report` beside the paper's tables and Figure 3, `sdrrl represent` (Figure 2)",
    "docs/reliability.md": "cache and resume, locks, the export transaction, checks before work",
    "docs/scaling.md": "shards, several GPUs and machines, Slurm, vLLM, the GPU cost",
    "docs/beyond-the-paper.md": "self-translation, monolingual D_comp, many languages in one model",
    "docs/extending.md": "adding a language, a method, a model family or a benchmark",
    "docs/config-reference.md": "every field of the build and export configs (generated)",
    "docs/CONTRACTS.md": "for developers: the contracts between modules, the docs test's marks",
}

# Each entry: name -> (help, module path, guide). The module exposes add_arguments(parser) and
# run(args); the guide is a key of GUIDES.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "export": ("compose SDRRL/baseline/ablation datasets and export a LLaMA-Factory registry", "sdrrl.commands.export",
               "docs/exporting.md"),
    "languages": ("list the language table", "sdrrl.commands.languages", "docs/extending.md"),
    "score": ("re-score lm-eval --log_samples output of the sdrrl_* tasks offline", "sdrrl.commands.score",
              "docs/evaluation.md"),
    "generate": ("self-distillation responses G = {(x, M(x))} (pipeline stage 1)", "sdrrl.commands.generate",
                 "docs/building-data.md"),
    "sample": ("D_synth: each row from D or G with equal probability (stage 2)", "sdrrl.commands.sample",
               "docs/building-data.md"),
    "translate": ("translate x, y, y_hat with NLLB, cached and resumable (stage 3)", "sdrrl.commands.translate",
                  "docs/building-data.md"),
    "filter": ("QE, language-ID and heuristic filters with an exclusion file (stage 4)", "sdrrl.commands.filter",
               "docs/building-data.md"),
    "build": ("run generate, sample, translate, filter for the config's languages", "sdrrl.commands.build",
              "docs/building-data.md"),
    "tiny-models": ("build the tiny local models used by tests and the demo", "sdrrl.commands.tiny",
                    "docs/walkthrough.md"),
    "train": ("check a recipe's registry, then run the unmodified llamafactory-cli train",
              "sdrrl.commands.train", "docs/training.md"),
    "report": ("lm-eval results beside the paper's Tables 2-12, with plots (REPORT.md)",
               "sdrrl.commands.report", "docs/report.md"),
    "demo": ("run the embedded default end to end on tiny models and shipped data",
             "sdrrl.commands.demo", "docs/walkthrough.md"),
    "represent": ("representation analysis (Figure 2): t-SNE plot, parallel cosine, retrieval",
                  "sdrrl.commands.represent", "docs/report.md"),
}


def guides_epilog() -> str:
    """The guides, one a line, for ``sdrrl --help``."""
    width = max(map(len, GUIDES))
    return "guides (in the repository):\n" + "\n".join(f"  {path:<{width}}  {what}" for path, what in GUIDES.items())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand is listed; only ``command``'s module is imported (to add its options)."""
    import importlib

    from sdrrl import __version__

    parser = argparse.ArgumentParser(
        prog="sdrrl",
        description="Self-Distillation from Resource-Rich Languages: build SDRRL data, export "
        "LLaMA-Factory registries, evaluate with lm-eval tasks.",
        epilog=guides_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sdrrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, module, guide) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=f"guide: {guide}")
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
