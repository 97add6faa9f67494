"""Write and validate LLaMA-Factory dataset registries (``dataset_info.json`` + data files).

Format choice: JSON Lines. LLaMA-Factory reads ``.jsonl`` through the ``json`` builder; a
researcher can open, grep, ``head`` and ``jq`` it; rows stream out without holding a whole table in
memory; and the alpaca columns are plain strings, so Parquet's typing buys nothing here.

LLaMA-Factory silently ignores unknown keys in ``dataset_info.json`` and silently drops data
columns it was not told about, so a typo costs a training run. ``validate`` checks everything
LLaMA-Factory 0.9.5 would read before training starts.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdrrl.errors import RegistryError, SdrrlError
from sdrrl.io import atomic_open, ensure_writable_dir, write_json

INFO_FILE = "dataset_info.json"

# Keys LLaMA-Factory 0.9.5 (data/parser.py) reads from a dataset_info.json entry.
ENTRY_KEYS = frozenset({
    "file_name", "hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name", "formatting",
    "ranking", "subset", "split", "folder", "num_samples", "columns", "tags",
})
SOURCE_KEYS = ("hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name", "file_name")
COLUMN_ROLES = frozenset({
    "prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos",
    "audios", "chosen", "rejected", "kto_tag",
})
TAG_KEYS = frozenset({
    "role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
    "system_tag",
})
FORMATTINGS = frozenset({"alpaca", "sharegpt", "openai"})

# Our data files always use LLaMA-Factory's own alpaca column names; the mapping is explicit in
# the registry anyway, so nobody relies on defaults.
ALPACA_ROLES = {"prompt": "instruction", "query": "input", "response": "output"}
DATA_EXTENSIONS = (".jsonl", ".json")
# File extensions LLaMA-Factory 0.9.5 loads (extras/constants.py FILEEXT2TYPE) and their builders.
LF_FILE_TYPES = {"arrow": "arrow", "csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "txt": "text"}


@dataclass
class Entry:
    """One registry entry in alpaca format with explicit columns."""

    name: str
    file_name: str
    system: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. num_samples, split

    def to_json(self) -> dict[str, Any]:
        columns = dict(ALPACA_ROLES)
        if self.system:
            columns["system"] = "system"
        return {"file_name": self.file_name, "formatting": "alpaca", "columns": columns, **self.extra}


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ \t\n,"):
        raise RegistryError(
            f"Invalid dataset name {name!r}.",
            "use a non-empty name without spaces, commas or slashes (LLaMA-Factory splits "
            "`dataset:` on commas).",
        )


def _clean_row(row: Any, index: int, name: str, system: bool) -> dict[str, str]:
    """Return the row as alpaca columns, or raise naming the row and the bad field."""
    where = f"dataset {name!r}, row {index}"
    if not isinstance(row, Mapping):
        raise RegistryError(f"{where}: expected a mapping with instruction/output, got {type(row).__name__}.",
                            "pass dicts like {'instruction': ..., 'input': '', 'output': ...}.")
    out: dict[str, str] = {}
    for col in ("instruction", "output"):
        val = row.get(col)
        if not isinstance(val, str) or not val.strip():
            got = "missing" if col not in row else f"{type(val).__name__} {val!r}"[:80]
            raise RegistryError(f"{where}: column {col!r} must be a non-empty string ({got}).",
                                "drop or repair that row before writing the registry.")
        out[col] = val
    val = row.get("input", "")
    if val is None:
        val = ""
    if not isinstance(val, str):
        raise RegistryError(f"{where}: column 'input' must be a string, got {type(val).__name__}.",
                            "use '' for no input.")
    out["input"] = val
    if system:
        val = row.get("system")
        if not isinstance(val, str):
            raise RegistryError(f"{where}: column 'system' must be a string (entry declares a system column).",
                                "give every row a 'system' string, or write without system=True.")
        out["system"] = val
    extra = set(row) - {"instruction", "input", "output", "system"}
    if extra:
        raise RegistryError(f"{where}: unexpected columns {sorted(extra)} would never reach the trainer.",
                            "keep lineage in the manifest, not in training rows.")
    return {k: out[k] for k in ("instruction", "input", "output", "system") if k in out}


def data_file(name: str) -> str:
    """The data file of registry entry ``name``, as ``sdrrl export`` names it: ``{name}.jsonl``."""
    return f"{name}.jsonl"


def write_dataset(dataset_dir: str | os.PathLike, name: str, rows: Iterable[Mapping[str, Any]], *,
                  system: bool = False, file_name: str | None = None, **extra: Any) -> tuple[Entry, int]:
    """Validate ``rows`` and write them to ``dataset_dir/<file_name>`` as JSON Lines, atomically.

    Nothing is written when a row is malformed (the old file, if any, stays as it was).
    Returns the registry entry and the row count; the caller merges entries with
    :func:`update_dataset_info`. An empty dataset is an error: it would train on nothing silently.
    """
    _check_name(name)
    unknown = set(extra) - ENTRY_KEYS
    if unknown:
        raise RegistryError(f"Unknown registry keys {sorted(unknown)} for {name!r}.",
                            f"use only LLaMA-Factory's keys: {', '.join(sorted(ENTRY_KEYS))}.")
    out_dir = ensure_writable_dir(dataset_dir)
    file_name = file_name or data_file(name)
    n = 0
    with atomic_open(out_dir / file_name) as fh:
        for i, row in enumerate(rows):
            fh.write(json.dumps(_clean_row(row, i, name, system), ensure_ascii=False))
            fh.write("\n")
            n += 1
        if n == 0:
            raise RegistryError(f"Dataset {name!r} has no rows; refusing to write an empty dataset.",
                                "check the filters and inputs that feed it (see the manifest's drop counts).")
    return Entry(name=name, file_name=file_name, system=system, extra=dict(extra)), n


def _load_info(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}

    def no_duplicates(pairs):
        seen: dict[str, Any] = {}
        for k, v in pairs:
            if k in seen:
                raise RegistryError(f"{path}: key {k!r} appears twice; JSON keeps only the last one.",
                                    "remove one of the two entries.")
            seen[k] = v
        return seen

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        raise RegistryError(f"{path} is not valid JSON (line {err.lineno}: {err.msg}).",
                            "fix the file by hand or move it away; sdrrl will not overwrite it.") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path} must hold a JSON object of entries.", "move it away and export again.")
    return data


def update_dataset_info(dataset_dir: str | os.PathLike, entries: Iterable[Entry | tuple[str, dict]],
                        *, replace: bool = False) -> dict[str, Any]:
    """Merge entries into ``dataset_dir/dataset_info.json`` atomically and return the result.

    Entries of other datasets are kept untouched. An existing entry with the same name and the same
    content is left alone; one with different content is an error unless ``replace`` is true.
    """
    out_dir = ensure_writable_dir(dataset_dir)
    path = out_dir / INFO_FILE
    info = _load_info(path)
    for item in entries:
        name, spec = (item.name, item.to_json()) if isinstance(item, Entry) else item
        _check_name(name)
        problems = _entry_problems(name, spec)
        if problems:
            raise RegistryError(f"Refusing to write entry {name!r}: {problems[0]}", "fix the entry spec.")
        if name in info and info[name] != spec and not replace:
            raise RegistryError(
                f"{path} already has a different entry {name!r}; not overwriting it silently.",
                "rename the new dataset, remove the old entry, or pass replace=True (--overwrite).",
            )
        info[name] = spec
    write_json(path, info)
    return info


def _entry_problems(name: str, spec: Any) -> list[str]:
    if not isinstance(spec, dict):
        return [f"entry {name!r} must be an object"]
    problems = []
    unknown = set(spec) - ENTRY_KEYS
    if unknown:
        problems.append(f"entry {name!r} has unknown keys {sorted(unknown)} (LLaMA-Factory ignores them silently)")
    sources = [k for k in SOURCE_KEYS if k in spec]
    if len(sources) != 1:
        problems.append(f"entry {name!r} needs exactly one of {', '.join(SOURCE_KEYS)} (has {sources or 'none'})")
    fmt = spec.get("formatting", "alpaca")
    if fmt not in FORMATTINGS:
        problems.append(f"entry {name!r} has formatting {fmt!r}; expected one of {sorted(FORMATTINGS)}")
    cols = spec.get("columns", {})
    if not isinstance(cols, dict) or set(cols) - COLUMN_ROLES:
        bad = sorted(set(cols) - COLUMN_ROLES) if isinstance(cols, dict) else cols
        problems.append(f"entry {name!r} has unknown column roles {bad}")
    tags = spec.get("tags", {})
    if not isinstance(tags, dict) or set(tags) - TAG_KEYS:
        problems.append(f"entry {name!r} has unknown tag keys {sorted(set(tags) - TAG_KEYS) if isinstance(tags, dict) else tags}")
    # A "columns" mapping replaces all of LLaMA-Factory's defaults: an undeclared role is None there.
    if isinstance(cols, dict) and "columns" in spec and not set(cols) - COLUMN_ROLES:
        needed = ("prompt", "response") if fmt == "alpaca" else ("messages",)
        absent = [r for r in needed if not cols.get(r)]
        if absent:
            problems.append(f"entry {name!r} declares columns without {absent} (LLaMA-Factory would then "
                            "read no such column: instruction or answer silently dropped)")
    split = spec.get("split", "train")
    if "file_name" in spec and not (isinstance(split, str) and re.fullmatch(r"train(\[[^\]]*\])?", split)):
        problems.append(f"entry {name!r} has split {split!r}; a local file has only the 'train' split")
    num = spec.get("num_samples")
    if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 1):
        problems.append(f"entry {name!r} has num_samples {num!r}; expected a positive integer")
    return problems


def validate(dataset_dir: str | os.PathLike, names: Iterable[str] | None = None, *,
             full: bool = True) -> dict[str, Any]:
    """Check a registry the way LLaMA-Factory will read it; raise one RegistryError listing problems.

    ``names`` limits the check to those entries (and requires them to exist). With ``full`` every
    line of every local JSON Lines file is parsed; otherwise only the first row.
    """
    root = Path(dataset_dir)
    path = root / INFO_FILE
    if not path.exists():
        raise RegistryError(f"No {INFO_FILE} in {str(root)!r}.",
                            "run `sdrrl export --config FILE --out DIR` first, and point dataset_dir at DIR.")
    info = _load_info(path)
    wanted = list(info) if names is None else list(names)
    problems: list[str] = []
    for name in wanted:
        if name not in info:
            problems.append(f"dataset {name!r} is not registered in {path}")
            continue
        spec = info[name]
        entry_problems = _entry_problems(name, spec)
        problems.extend(entry_problems)
        if entry_problems or "file_name" not in spec:
            continue
        problems.extend(_file_problems(root, name, spec, full))
    if problems:
        head = f"{len(problems)} problem(s) in registry {str(root)!r}: " + "; ".join(problems[:5])
        if len(problems) > 5:
            head += f"; ... and {len(problems) - 5} more"
        raise RegistryError(head + ".", "re-run `sdrrl export` for these datasets, or fix dataset_info.json.")
    return info


def _file_problems(root: Path, name: str, spec: dict, full: bool) -> list[str]:
    target = root / spec["file_name"]
    if not target.exists():
        return [f"dataset {name!r}: file {str(target)!r} does not exist"]
    # LLaMA-Factory loads every entry of a folder (os.listdir: not recursive, hidden files included)
    # and needs one file type it knows.
    files = sorted(target.iterdir()) if target.is_dir() else [target]
    if any(f.is_dir() for f in files):
        return [f"dataset {name!r}: folder {str(target)!r} holds sub-folders, which LLaMA-Factory does not read"]
    types = {LF_FILE_TYPES.get(f.suffix[1:]) for f in files}
    if not files or None in types or len(types) != 1:
        return [f"dataset {name!r}: {str(target)!r} must hold files of one type "
                f"({', '.join(sorted(LF_FILE_TYPES))}); found {sorted({f.name for f in files})[:5]}"]
    cols = spec.get("columns") or {}
    fmt = spec.get("formatting", "alpaca")
    defaults = "columns" not in spec  # LLaMA-Factory's defaults apply only without a columns mapping
    if fmt == "alpaca":
        required = [c for c in (cols.get("prompt", "instruction" if defaults else None),
                                cols.get("response", "output" if defaults else None)) if c]
        optional = [c for r, c in cols.items() if r not in ("prompt", "response")]
    else:
        required, optional = [cols.get("messages", "conversations" if defaults else None)], []
    query = cols.get("query", "input" if defaults else None) if fmt == "alpaca" else None
    query_seen, read_all = False, True
    problems: list[str] = []
    rows = 0
    if not any(f.suffix in DATA_EXTENSIONS for f in files):
        return []  # parquet/csv/arrow/text are validated by LLaMA-Factory's own loader
    for f in files:
        for where, rec in _records(f, full):
            if isinstance(rec, str):  # the first unreadable line of this file
                problems.append(f"dataset {name!r}: {f.name} {where}: {rec}")
                break
            missing = [c for c in required if not isinstance(rec.get(c), (str, list)) or not rec.get(c)]
            missing += [c for c in optional if c not in rec and query != c]
            if missing:
                problems.append(f"dataset {name!r}: {f.name} {where} lacks declared column(s) {missing}")
                break
            query_seen = query_seen or query in rec
            rows += 1
            if not full:
                read_all = False
                break
    if not problems and rows == 0:
        problems.append(f"dataset {name!r}: {str(target)!r} holds no rows")
    if not problems and query and read_all and not query_seen:
        # a query column may be absent from some rows, but one that no row has is a KeyError in LF
        problems.append(f"dataset {name!r}: no row has the declared query column {query!r}")
    return problems


def _records(path: Path, full: bool):
    """Yield (where, row) for each row of a JSON / JSON Lines data file, streaming line by line;
    at the first bad line yield (where, problem) and stop. With ``full``, a last line without its
    newline is a problem: every file ``sdrrl export`` writes ends with one, so the file was cut."""
    with path.open("rb") as fh:
        if path.suffix == ".json" and fh.read(1) == b"[":  # a JSON array: LF's json builder reads it whole
            fh.seek(0)
            try:
                records = json.loads(fh.read().decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                yield "", f"is not valid JSON ({err})"
                return
            for i, rec in enumerate(records):
                yield f"row {i}", rec if isinstance(rec, dict) else f"row is {type(rec).__name__}, not an object"
            return
        fh.seek(0)
        for lineno, raw in enumerate(fh, 1):
            where = f"line {lineno}"
            if full and not raw.endswith(b"\n"):
                yield where, ("ends without a newline: the file was cut mid-line (an interrupted write or "
                              "copy?)")
                return
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                yield where, f"is not UTF-8 ({err.reason} at byte {err.start})"
                return
            except json.JSONDecodeError as err:
                yield where, f"is not valid JSON ({err.msg} at column {err.colno})"
                return
            yield where, rec if isinstance(rec, dict) else f"is {type(rec).__name__}, not a JSON object"


def count_rows(dataset_dir: str | os.PathLike, name: str) -> int:
    """Number of rows in a registered local JSON Lines dataset."""
    info = _load_info(Path(dataset_dir) / INFO_FILE)
    if name not in info:
        raise SdrrlError(f"dataset {name!r} is not registered in {dataset_dir}.", "export it first.")
    with (Path(dataset_dir) / info[name]["file_name"]).open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())
