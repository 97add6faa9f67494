"""Content-addressed cache of model outputs (translations, QE scores, generated responses).

Why SQLite: one file, stdlib, atomic transactions, several processes (shards) can write at once,
and in WAL mode a process killed at any moment (kill -9) leaves every committed transaction
intact and the one in flight rolled back. Each model batch is one transaction, so a crash loses
at most the batch in flight.

A key is the SHA-256 of the canonical JSON of everything that determines the output: the kind
(``translation``/``qe``/``response``), the model, the backend-independent decoding settings and the
exact input text (plus languages). The backend is deliberately not part of the key: the
transformers and CTranslate2 backends give identical translations for the same beam settings.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdrrl.errors import SdrrlError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


def make_key(kind: str, model: str, settings: Mapping[str, Any], **inputs: Any) -> str:
    """The content address of one model output."""
    blob = json.dumps({"kind": kind, "model": model, "settings": dict(settings), "inputs": inputs},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ModelOutput:
    """How the cache names the outputs of one model: their kind, the model as configured (a path or a
    hub id, never its base name) and the settings that change an output. A stage's fingerprint
    (:class:`sdrrl.layout.StageDeps`) holds the same object, so the two never disagree."""

    kind: str                   # response | translation | qe
    model: str
    settings: Mapping[str, Any]

    def key(self, **inputs: Any) -> str:
        """The cache key of the output for these inputs (texts, languages)."""
        return make_key(self.kind, self.model, self.settings, **inputs)


class Cache:
    """A key -> JSON value store shared by every stage, run and shard."""

    def __init__(self, path: str | Path, timeout_s: float = 120.0):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(timeout_s)
        except (sqlite3.DatabaseError, OSError) as err:
            raise SdrrlError(f"Cannot open the cache {str(self.path)!r}: {err}.",
                             "point `cache:` at a writable local disk (SQLite needs file locks; "
                             "avoid NFS), or delete a corrupt cache file to start over.") from None

    def _open(self, timeout_s: float) -> sqlite3.Connection:
        """Connect, switch to WAL and create the table. Shards open one new cache at the same moment;
        SQLite answers a connection that wants the switch or the schema while another holds the file
        "database is locked" at once, without its busy wait (which could deadlock there), so the
        whole opening is retried until ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
            try:
                db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
                db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
                # only an OS crash / power loss may lose the last commits, never corrupt the file.
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                return db
            except sqlite3.OperationalError as err:
                db.close()
                busy = "locked" in str(err) or "busy" in str(err)
                if not busy or time.monotonic() + delay > deadline:
                    raise
            except BaseException:
                db.close()
                raise
            time.sleep(delay * (0.5 + random.random()))  # jittered: the openers do not meet again
            delay = min(delay * 2, 0.5)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those keys that are present."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        return self.get_many([key]).get(key, default)

    def put_many(self, kind: str, items: Mapping[str, Any]) -> None:
        """Store one batch in a single transaction (all or nothing). Existing keys are kept."""
        if not items:
            return
        now = time.time()
        rows = [(k, kind, json.dumps(v, ensure_ascii=False), now) for k, v in items.items()]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO entries(key, kind, value, created) VALUES (?,?,?,?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as err:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass
            if "full" in str(err).lower():
                raise SdrrlError(f"Out of disk space writing the cache {str(self.path)!r}; every earlier "
                                 "batch is kept.", "free space (df -h) and run the same command again: "
                                 "it resumes from the cache.") from None
            raise SdrrlError(f"Cannot write the cache {str(self.path)!r}: {err}.",
                             "check the disk and permissions, then run the same command again.") from None

    def import_from(self, other: str | Path) -> int:
        """Copy every entry of another cache file (e.g. one per machine) into this one; returns how
        many were new. Entries are content-addressed, so merging never conflicts."""
        before = self.count()
        self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR IGNORE INTO entries SELECT key, kind, value, created FROM other.entries")
            self._db.execute("COMMIT")
        finally:
            self._db.execute("DETACH DATABASE other")
        return self.count() - before

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM entries WHERE kind=?", (kind,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
