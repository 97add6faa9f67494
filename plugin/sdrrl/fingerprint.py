"""One fingerprint for every "skip it if nothing changed": the work a sharded build shares
(:mod:`sdrrl.pipeline.build`), each stage's shard markers (:mod:`sdrrl.pipeline.workdir`), the demo's
steps (:mod:`sdrrl.commands.demo`) and the tiny models' cache keys (:mod:`sdrrl.tiny`).

:func:`fingerprint` hashes what a result depends on; :func:`record` writes it into a marker file
beside the result once the result is complete, and :func:`current` says whether that marker still
holds for the inputs of now (and the result is still there, or still the same bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from sdrrl.io import read_json_object, write_json


def fingerprint(*parts: Any) -> str:
    """SHA-256 of ``parts`` in order: a :class:`~pathlib.Path` by content (a file: its bytes; a folder:
    every file under it by relative name and bytes, links followed; a missing path: its name, marked
    missing), anything else as canonical JSON (sorted keys; ``str`` for what JSON lacks)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            _hash_path(h, part)
        else:
            h.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _hash_path(h, root: Path) -> None:
    if root.is_file():
        _hash_file(h, root)
    elif root.is_dir():
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(root).as_posix()}\0".encode("utf-8"))
            _hash_file(h, f)
    else:
        h.update(f"missing:{root}".encode("utf-8"))


def _hash_file(h, path: Path) -> None:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def record(marker: Path, inputs: str, outputs: Sequence[Path] = (), *, content: bool = True, **extra: Any) -> None:
    """Say in ``marker`` that ``outputs`` (complete now) were made from ``inputs`` (a :func:`fingerprint`);
    ``content``: also record their bytes, so a changed output is not taken for the one recorded."""
    write_json(marker, {"inputs": inputs, "output": fingerprint(*outputs) if content else None, **extra})


def current(marker: Path, inputs: str, outputs: Sequence[Path] = ()) -> dict | None:
    """The marker's record if it says ``outputs`` were made from ``inputs`` and they are still there
    (and still the same bytes, where :func:`record` took their content); None: do the work again."""
    data = read_json_object(marker)
    if data.get("inputs") != inputs or not all(os.path.exists(p) for p in outputs):
        return None
    if data.get("output") is not None and data["output"] != fingerprint(*outputs):
        return None
    return data
