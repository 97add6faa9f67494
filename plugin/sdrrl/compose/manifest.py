"""``DIR/manifest.json``, what ``sdrrl export`` records beside a registry: per dataset its file, sha256,
rows, method, languages, compose settings, input files with their hashes and the rows dropped and why.

:class:`ManifestEntry` and :class:`Manifest` are the only reading and writing of that file: the
export builds entries (:mod:`sdrrl.compose.export`), ``sdrrl train`` checks the files' hashes, the
Hugging Face copy and the demo's report read rows and settings, all by attribute. A manifest that
lacks a field, holds one this version does not know, or is not JSON is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdrrl.errors import SdrrlError

MANIFEST = "manifest.json"
FIX = "export again into that folder (`sdrrl export --config CONFIG --out DIR`), or into a new one."


@dataclass
class ManifestEntry:
    """One exported dataset (a registry entry)."""

    file: str                      # DIR/{file}: the JSON Lines data file
    sha256: str | None             # of that file as written (None: an export before hashes were recorded)
    rows: int
    method: str
    subset: str | None             # ll | tl | lt | tt | mt | comp; None for SFT
    source: str
    target: str | None             # None for SFT
    config: dict[str, Any]         # the compose settings that made it
    inputs: list[dict[str, Any]]   # input files (path + sha256) or corpora it was made from
    dropped: dict[str, int]        # rows left out, by reason
    parallel: dict[str, Any] | None = None     # the parallel sample's statistics (D_mt, D_comp)
    monolingual: dict[str, Any] | None = None  # the monolingual sample's (D_comp from completion.corpus)
    rows_missing_from_filter_file: int | None = None  # D_synth rows the filter file lacks
    same_content_as: str | None = None  # written once under that name, linked (or copied) here
    # The export of ``failed_at`` could not make this dataset (``error``) and kept the file of an earlier
    # export: the registry is mixed until an export of it succeeds (``sdrrl train`` refuses it).
    stale: dict[str, Any] | None = None

    # written even when empty; the others only when set
    _ALWAYS = ("file", "sha256", "rows", "method", "subset", "source", "target", "config", "inputs", "dropped")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if k in self._ALWAYS or v is not None}

    @classmethod
    def from_json(cls, name: str, data: Any, where: str) -> "ManifestEntry":
        known = {f.name for f in dataclasses.fields(cls)}
        required = ("file", "rows", "method", "source")
        if not isinstance(data, Mapping):
            raise SdrrlError(f"{where}: entry {name!r} is {type(data).__name__}, not an object.", FIX)
        missing = [k for k in required if data.get(k) is None]
        unknown = sorted(set(data) - known)
        problems = ([f"lacks {missing}"] if missing else []) + \
            ([f"has fields this sdrrl version does not know: {unknown}"] if unknown else [])
        if problems:
            raise SdrrlError(f"{where}: entry {name!r} {'; '.join(problems)}.", FIX)
        defaults = {"sha256": None, "subset": None, "target": None, "config": {}, "inputs": [], "dropped": {}}
        return cls(**{**defaults, **data})


@dataclass
class Manifest:
    """The whole file: the last export's version, config, notes and errors, and every entry the
    registry holds (entries of earlier exports are kept; ``last_export`` names the last one's)."""

    sdrrl_version: str | None = None
    exported_at: str | None = None
    config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    last_export: list[str] = field(default_factory=list)
    seconds: float | None = None  # None when SOURCE_DATE_EPOCH makes the manifest reproducible

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["entries"] = {n: e.to_json() for n, e in self.entries.items()}
        if self.seconds is None:
            del out["seconds"]
        return out

    @classmethod
    def read(cls, registry: str | Path) -> "Manifest | None":
        """``registry/manifest.json``, or None where there is none (a registry not made by ``sdrrl export``)."""
        path = Path(registry) / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SdrrlError(f"{path} is not a valid manifest ({err}).", FIX) from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Manifest":
        if not isinstance(data, dict):
            raise SdrrlError(f"{where} is not a valid manifest (not a JSON object).", FIX)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise SdrrlError(f"{where} has fields this sdrrl version does not know: {unknown}.", FIX)
        entries = data.get("entries") or {}
        if not isinstance(entries, dict):
            raise SdrrlError(f"{where}: 'entries' is not an object.", FIX)
        return cls(**{**data, "entries": {n: ManifestEntry.from_json(n, e, where) for n, e in entries.items()}})

    def write(self, registry: Path) -> None:
        from sdrrl.io import write_json

        write_json(registry / MANIFEST, self.to_json())
