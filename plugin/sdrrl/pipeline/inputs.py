"""Read the instruction set D from any of the forms it is published in.

``input:`` (or ``--input``) may be

* a JSON Lines file (one object per line; ``.jsonl``, or any name),
* a JSON array of objects, e.g. Stanford Alpaca's ``alpaca_data.json`` as published (the file is
  recognised by its first character, ``[``, whatever its name),
* a Parquet file (``.parquet``), read batch by batch with pyarrow,
* a ``datasets`` folder (a local folder of data files ``datasets.load_dataset`` reads as one
  ``train`` split, e.g. ``data/train-*.parquet``),
* a Hugging Face hub dataset id such as ``tatsu-lab/alpaca`` (or ``hf:ID`` to be explicit), loaded
  with ``datasets.load_dataset(ID, split="train")``: from the local cache when ``datasets`` is offline
  (:func:`sdrrl.hub.datasets_offline`), else downloaded. A local path that exists always wins over an
  id; a name that can only be a path is never sent to the hub (:func:`sdrrl.hub.is_local`).

Every form yields the same rows in the same order, so the work directory's ``source.jsonl`` is the
same whatever form D came in. Extra columns (the hub's alpaca has ``text``) are ignored later. A line
of a JSON Lines file that is no row (not UTF-8, not JSON, not an object) comes as a
:class:`sdrrl.io.BadLine`, a bad row like any other (``on_bad_row``); a JSON array that is not UTF-8
cannot be read at all, and is an error naming the line and byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from sdrrl import hub
from sdrrl.errors import SdrrlError
from sdrrl.io import BadLine, jsonl_rows

FIX = ("give a JSON Lines file, a JSON array (alpaca_data.json), a Parquet file, a datasets folder, or a hub "
       "dataset id such as tatsu-lab/alpaca.")


def rows(source: str | os.PathLike) -> Iterator[dict | BadLine]:
    """Yield D's rows (dicts, or a :class:`~sdrrl.io.BadLine` for a JSON Lines line that is none) from a
    file, folder or hub id; raise SdrrlError naming what is wrong with the whole input."""
    text = str(source)
    path = Path(text)
    if not hub.is_local(text):
        return _from_datasets(hub.hub_id(text), local=False)
    if not path.exists():
        raise SdrrlError(f"Input file not found: {text!r}.", "set `input:` (or --input) to an existing file; " + FIX)
    if path.is_dir():
        return _from_datasets(text, local=True)
    if path.suffix.lower() == ".parquet":
        return _from_parquet(path)
    if _first_char(path) == "[":
        return _from_json_array(path)
    return jsonl_rows(path)


def _first_char(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4096)
    return head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")[:1]


def _objects(items: Any, where: str) -> Iterator[dict]:
    for i, row in enumerate(items, 1):
        if not isinstance(row, dict):
            raise SdrrlError(f"{where}: element {i} is {type(row).__name__}, not an object.",
                             "each element must be an object such as {\"instruction\": ..., \"output\": ...}.")
        yield row


def _from_json_array(path: Path) -> Iterator[dict]:
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except json.JSONDecodeError as err:
        raise SdrrlError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).",
                         "fix the file; a JSON array input must be one complete array of objects.") from None
    except UnicodeDecodeError as err:  # utf-8-sig counts from after a BOM
        byte = err.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw[:byte].count(b"\n") + 1
        raise SdrrlError(f"{path}:{line}: not UTF-8 ({err.reason}), at byte {byte} of the "
                         "file; a JSON array is read whole, so no row of it can be skipped.",
                         "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
    return _objects(data, f"{path} (JSON array)")


def _from_parquet(path: Path) -> Iterator[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise SdrrlError(f"{path}: not a readable Parquet file ({err}).", FIX) from None

    def gen():
        for batch in pf.iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    return gen()


def _from_datasets(name: str, local: bool) -> Iterator[dict]:
    import datasets

    offline = hub.datasets_offline()
    try:
        ds = datasets.load_dataset(name, split="train")
    except Exception as err:  # datasets raises many types (connection, not found, offline, format)
        msg = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        if local:
            raise SdrrlError(f"Input folder {name!r} is not a dataset `datasets` can read ({msg}).", FIX) from None
        if offline:
            raise SdrrlError(
                f"Input {name!r} is not a local file, and as a hub dataset it is not in the local cache "
                f"while {hub.datasets_offline_setting()} keeps datasets offline ({type(err).__name__}).",
                f"load it once on a connected machine (python -c \"import datasets; datasets.load_dataset('{name}')\") "
                "and copy the cache, or download the file and give its path.") from None
        raise SdrrlError(f"Input {name!r} is not a local file and could not be loaded from the hub ({msg}).",
                         "check the dataset id and your connection, or download the file and give its path.") from None
    return iter(ds)
