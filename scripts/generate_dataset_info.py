#!/usr/bin/env python
"""Generate dataset_info/dataset_info.json: the registry entries the shipped recipes name.

Every method of the catalog for every target language of the language table, with the default
compose configuration (``sdrrl.compose.methods.shipped_registry``); `sdrrl export --out
dataset_info` fills in the data files they name. Run after changing the catalog or the language
table:

    python scripts/generate_dataset_info.py          # (re)write the file
    python scripts/generate_dataset_info.py --check  # exit 1 if it is missing or stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))

from sdrrl.compose.methods import shipped_registry  # noqa: E402
from sdrrl.io import atomic_open  # noqa: E402

PATH = ROOT / "dataset_info" / "dataset_info.json"


def expected_text() -> str:
    return json.dumps(shipped_registry(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    args = ap.parse_args(argv)
    text = expected_text()
    current = PATH.read_text(encoding="utf-8") if PATH.is_file() else None
    if args.check:
        if current != text:
            print(f"out of date: {PATH.relative_to(ROOT)}. Run: python scripts/generate_dataset_info.py",
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        with atomic_open(PATH) as fh:
            fh.write(text)
    print(f"{PATH.relative_to(ROOT)}: {len(shipped_registry())} entries ({'written' if current != text else 'unchanged'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
