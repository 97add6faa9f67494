"""Atomic file writes and JSON Lines helpers shared by every stage.

A file is written to a temporary name in the same directory, flushed, fsynced and renamed over the
destination, so a reader (or a resumed run) sees either the old file or the complete new one, never
a torn one. Rename is atomic on POSIX file systems within one directory.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from sdrrl.errors import DiskFullError, SdrrlError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir(name: str) -> Path:
    """A folder of sdrrl's own cache (tiny models, benchmark release files): ``$SDRRL_CACHE/NAME``,
    else ``~/.cache/sdrrl/NAME``."""
    root = os.environ.get("SDRRL_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "sdrrl") / name


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove we can write there, or fail with a clear message."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=p, prefix=".sdrrl-write-probe-", delete=True)
        probe.close()
    except OSError as err:
        raise SdrrlError(
            f"Cannot write to directory {str(p)!r}: {err.strerror or err}.",
            "choose a writable output directory, or fix its permissions.",
        ) from None
    return p


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on clean exit, fsync and rename it over ``path``."""
    dest = Path(path)
    ensure_writable_dir(dest.parent)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, dest)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"Out of disk space (or quota) while writing {str(dest)!r}; that file was not replaced.",
                "free space (df -h) or point the output at another disk, then run the same command again.",
                path=str(dest),
            ) from None
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows as JSON Lines atomically; returns the number of rows written."""
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def read_json_object(path: str | os.PathLike) -> dict:
    """A small JSON record (a marker, a lock holder): the object in the file, or {} when the file is
    missing, unreadable, not JSON or not an object (a record is written whole, or not yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 4 MiB blocks (data files can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the rows of a JSON Lines file; a malformed line is an error naming file and line."""
    p = Path(path)
    if not p.exists():
        raise SdrrlError(f"File not found: {str(p)!r}.", "check the path, or run the stage that produces it.")
    with p.open(encoding="utf-8-sig") as fh:  # a BOM (Windows editors) is not part of the first row
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise SdrrlError(
                    f"{p}:{lineno}: not valid JSON ({err.msg}).",
                    "fix or remove that line; each line must be one JSON object.",
                ) from None
            if not isinstance(row, dict):
                raise SdrrlError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}.",
                                 "each line must be one JSON object such as {\"instruction\": ..., \"output\": ...}.")
            yield row
