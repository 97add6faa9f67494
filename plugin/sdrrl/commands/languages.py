"""``sdrrl languages``: print the language table."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sdrrl.languages import LANGUAGES
    from sdrrl.catalog import coverage

    if args.json:
        print(json.dumps({k: {**asdict(v), "eval": coverage(k)} for k, v in LANGUAGES.items()}, indent=2))
        return 0
    cols = ("iso", "name", "role", "nllb", "cld3", "belebele", "xlsum", "mkqa", "bactrian_x", "opus100",
            "dictionary")
    # eval: the benchmarks with sdrrl_* tasks in this language (sdrrl_<benchmark>_<iso>; FLORES
    # sdrrl_flores_<iso>-eng and sdrrl_flores_eng-<iso>; offtarget: Figure 3, where bactrian_x is set)
    rows = [[str(getattr(lang, c) or "-") for c in cols] + [",".join(coverage(iso)) or "-"]
            for iso, lang in LANGUAGES.items()]
    cols = (*cols, "eval")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    return 0
