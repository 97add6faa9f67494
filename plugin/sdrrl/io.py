"""Atomic file writes and JSON Lines helpers shared by every stage.

A file is written to a temporary name in the same directory, flushed, fsynced and renamed over the
destination, so a reader (or a resumed run) sees either the old file or the complete new one, never
a torn one. Rename is atomic on POSIX file systems within one directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class BadLine:
    """A line of a text file that is not what it should be: where it is (line, and the byte offset of the
    problem in the file) and what is wrong."""

    path: str
    line: int
    byte: int
    problem: str
    fix: str

    def error(self) -> SdrrlError:
        return SdrrlError(f"{self.path}:{self.line}: {self.problem}, at byte {self.byte} of the file.", self.fix)


NOT_UTF8_FIX = "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or remove that line."


def lines(path: str | os.PathLike) -> Iterator[tuple[int, int, str | BadLine]]:
    """(line number, byte offset, text) of each line of a UTF-8 text file, read as bytes; a line that is
    not UTF-8 comes as a :class:`BadLine` naming the offending byte, and the lines after it still come.
    A BOM (Windows editors) before the first line is dropped."""
    p = Path(path)
    if not p.exists():
        raise SdrrlError(f"File not found: {str(p)!r}.", "check the path, or run the stage that produces it.")
    offset = 0
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            start = 3 if lineno == 1 and raw.startswith(b"\xef\xbb\xbf") else 0
            try:
                yield lineno, offset, raw[start:].decode("utf-8")
            except UnicodeDecodeError as err:
                byte = offset + start + err.start
                yield lineno, offset, BadLine(str(p), lineno, byte, f"not UTF-8 ({err.reason}: byte "
                                              f"{raw[start + err.start:start + err.start + 1]!r})", NOT_UTF8_FIX)
            offset += len(raw)


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 text file; a line that is not UTF-8 is an error
    naming the file, line and byte."""
    for lineno, _offset, text in lines(path):
        if isinstance(text, BadLine):
            raise text.error()
        yield lineno, text


def jsonl_rows(path: str | os.PathLike) -> Iterator[dict | BadLine]:
    """The rows of a JSON Lines file, and a :class:`BadLine` for each line that is not one (not UTF-8,
    not JSON, not an object), so a caller can count bad lines apart instead of stopping."""
    p = Path(path)
    for lineno, offset, line in lines(p):
        if isinstance(line, BadLine):
            yield line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            yield BadLine(str(p), lineno, offset + len(line[:err.pos].encode("utf-8")),
                          f"not valid JSON ({err.msg})", "fix or remove that line; each line must be one JSON object.")
            continue
        if not isinstance(row, dict):
            yield BadLine(str(p), lineno, offset, f"expected a JSON object, got {type(row).__name__}",
                          "each line must be one JSON object such as {\"instruction\": ..., \"output\": ...}.")
            continue
        yield row


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the rows of a JSON Lines file; a malformed line is an error naming file, line and byte."""
    for row in jsonl_rows(path):
        if isinstance(row, BadLine):
            raise row.error()
        yield row
