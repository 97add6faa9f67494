"""Load the four benchmarks as flat rows, from the hub by name or from a local directory.

Where each benchmark's data lives is the catalog's (``sdrrl.catalog``: ``Benchmark.source``, a
``DataSource``). Hub (default; datasets>=4 runs no loading scripts, so script datasets are read
from the parquet export the hub keeps on the ``refs/convert/parquet`` branch):

- BELEBELE: ``facebook/belebele``, config = the FLORES-200 code, split ``test``.
- FLORES: ``openlanguagedata/flores_plus`` (gated: accept its terms and log in) at the revision
  ``catalog.FLORES_PLUS_REVISION`` (the one place it is set; ``$SDRRL_FLORES_REVISION`` overrides),
  config = the FLORES-200 code, splits ``dev`` / ``devtest``; source and target rows are paired by ``id``.
- XL-Sum: ``csebuetnlp/xlsum`` @ ``refs/convert/parquet``, folder = XL-Sum's language name.
- MKQA: ``apple/mkqa`` @ ``refs/convert/parquet`` (folder ``mkqa``, split ``train``) if that
  branch exists, else the official release file (``DataSource.release_url``: what MKQA's loading
  script downloads), fetched and cached by ``datasets.DownloadManager``.

Local override: ``SDRRL_EVAL_DATA=DIR`` (or lm-eval ``--metadata '{"sdrrl_data": "DIR"}'``) reads
the same files from DIR, laid out as the hub repositories lay them out (``.jsonl``, ``.jsonl.gz`` or
``.parquet``), or FLORES-200's original release folder ``flores200_dataset/``; see
``DataSource.local`` and docs/evaluation.md. When set, it is used instead of the hub.

What was loaded (dataset, revision, or each file's sha256) is recorded into the dict passed as
``options["sdrrl_source"]``: the tasks' YAML metadata holds that dict, so lm-eval writes it into
its results (``configs.<task>.metadata.sdrrl_source``).
"""

from __future__ import annotations

import functools
import glob
import gzip
import json
import os
from pathlib import Path
from typing import Any, Callable

from sdrrl import catalog
from sdrrl.errors import SdrrlError
from sdrrl.io import file_sha256

ENV_DATA_DIR = "SDRRL_EVAL_DATA"
METADATA_DATA_DIR = "sdrrl_data"
METADATA_SOURCE = "sdrrl_source"  # the dict (in the tasks' YAML metadata) that records what was loaded
# MKQA's answer types, in the order of the hub export's class labels.
MKQA_ANSWER_TYPES = ("entity", "long_answer", "unanswerable", "date", "number", "number_with_unit",
                     "short_phrase", "binary")


def data_dir(options: dict[str, Any] | None = None) -> Path | None:
    """The local data directory chosen by lm-eval metadata or the environment (None: use the hub)."""
    value = (options or {}).get(METADATA_DATA_DIR) or os.environ.get(ENV_DATA_DIR)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise SdrrlError(f"Evaluation data directory {str(path)!r} (from ${ENV_DATA_DIR} or "
                         f"--metadata {METADATA_DATA_DIR}) does not exist.",
                         "point it at a directory laid out as docs/evaluation.md describes, or unset "
                         "it to load the public datasets from the hub.")
    return path


def _record(options: dict[str, Any] | None, entry: dict[str, Any]) -> None:
    """Append what was loaded to ``options["sdrrl_source"]["loaded"]`` (when the caller passed one)."""
    sink = (options or {}).get(METADATA_SOURCE)
    if isinstance(sink, dict):
        sink.setdefault("loaded", []).append(entry)


def _read_rows(path: str) -> list[dict]:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.endswith((".dev", ".devtest")):  # FLORES-200 release: line i of every language aligns
        with open(path, encoding="utf-8") as fh:
            return [{"id": i, "text": line.rstrip("\n")} for i, line in enumerate(fh, 1)]
    opener: Callable = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _local_rows(root: Path, benchmark: str, config: str, split: str,
                options: dict[str, Any] | None = None) -> list[dict]:
    tried = []
    for pattern in catalog.benchmark(benchmark).source.local:
        rel = pattern.format(config=config, split=split)
        tried.append(rel)
        files = sorted(glob.glob(str(root / rel)))
        if files:
            _record(options, {"source": "local", "dir": str(root), "config": config, "split": split,
                              "files": {os.path.relpath(f, root): file_sha256(f) for f in files}})
            return [row for f in files for row in _read_rows(f)]
    raise SdrrlError(f"No local {benchmark} data for {config!r} ({split}) under {root}: looked for "
                     + ", ".join(tried) + ".",
                     f"copy the files there from the hub dataset {catalog.benchmark(benchmark).source.hub} "
                     "(same layout), or unset the data directory to load from the hub.")


@functools.lru_cache(maxsize=None)
def hub_revision(path: str, revision: str | None) -> str | None:
    """The commit sha a hub dataset revision resolves to (None when the hub cannot say, offline)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(path, revision=revision).sha
    except Exception:  # noqa: BLE001 - offline or gated: the requested revision is recorded instead
        return None


def _hub_rows(benchmark: str, config: str | None, split: str, options: dict[str, Any] | None = None,
              ) -> list[dict]:
    import datasets

    source = catalog.benchmark(benchmark).source
    revision = source.requested_revision()
    kwargs: dict[str, Any] = {"split": split, "revision": revision}
    if source.by == "data_dir":
        kwargs["data_dir"] = config
    else:
        kwargs["name"] = config
    try:
        out = datasets.load_dataset(source.hub, **kwargs).to_list()
    except Exception as err:  # noqa: BLE001 - offline, gated, renamed: the fix is the same
        where = source.hub + (f"@{revision}" if revision else "")
        raise SdrrlError(
            f"Cannot load {benchmark} ({config}, {split}) from the hub dataset {where}: "
            f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}",
            f"on a machine without hub access, set ${ENV_DATA_DIR}=DIR with a copy of the files "
            "(layout in docs/evaluation.md); for gated datasets (FLORES+) accept the terms on the "
            "hub and log in (huggingface-cli login).",
        ) from None
    if isinstance((options or {}).get(METADATA_SOURCE), dict):
        _record(options, {"source": "hub", "dataset": source.hub, "revision": revision or "main",
                          "commit": hub_revision(source.hub, revision), "config": config, "split": split})
    return out


def _release_rows(benchmark: str, split: str, options: dict[str, Any] | None = None) -> list[dict]:
    """A benchmark's official release file (``DataSource.release_url``), downloaded and cached as
    any ``datasets`` download."""
    import datasets

    url = catalog.benchmark(benchmark).source.release_url
    path = str(datasets.DownloadManager(dataset_name=benchmark).download(url))
    out, digest = _read_release(path, os.stat(path).st_mtime_ns)
    _record(options, {"source": "release", "url": url, "sha256": digest, "split": split})
    return out


@functools.lru_cache(maxsize=2)
def _read_release(path: str, mtime_ns: int) -> tuple[list[dict], str]:
    """Rows and sha256 of a release file, read once per process (MKQA: one task per language)."""
    with open(path, "rb") as fh:  # the cache names the file by a hash, without its .gz suffix
        gz = fh.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")) as fh:
        out = [json.loads(line) for line in fh if line.strip()]
    return out, file_sha256(path)


def _hub_else_release_rows(benchmark: str, config: str, split: str,
                           options: dict[str, Any] | None = None) -> list[dict]:
    """A benchmark wherever it is published: the hub (MKQA: its parquet branch), else its release
    file (the local override, when set, is read before both by ``rows``)."""
    source = catalog.benchmark(benchmark).source
    failures = []
    try:
        return _hub_rows(benchmark, config, split, options)
    except SdrrlError as err:
        failures.append(f"hub {source.hub}@{source.requested_revision() or 'main'}: {err.problem}")
    try:
        return _release_rows(benchmark, split, options)
    except Exception as err:  # noqa: BLE001 - offline, moved, corrupt: all end in the same advice
        failures.append(f"release file {source.release_url}: {type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200] if str(err) else ''}")
    raise SdrrlError(f"Cannot load {catalog.benchmark(benchmark).label} from any source; tried "
                     + "; ".join(failures) + f"; local override: ${ENV_DATA_DIR} is not set.",
                     f"set ${ENV_DATA_DIR}=DIR with the release file above (or the hub's files) in DIR, laid "
                     f"out as one of {', '.join(source.local)} (docs/evaluation.md), and unset it later; "
                     "or restore hub access.")


def rows(benchmark: str, config: str, split: str, options: dict[str, Any] | None = None) -> list[dict]:
    """Raw rows of one benchmark config/split, from the local directory if set, else the hub
    (and where the hub fails, a benchmark's release file when it has one: MKQA)."""
    root = data_dir(options)
    if root is not None:
        return _local_rows(root, benchmark, config, split, options)
    if catalog.benchmark(benchmark).source.release_url:
        return _hub_else_release_rows(benchmark, config, split, options)
    return _hub_rows(benchmark, config, split, options)


# ---- per benchmark: raw rows -> the flat rows the tasks use -----------------------------------

def belebele(lang: str, options: dict | None = None) -> list[dict]:
    out = []
    for row in rows("belebele", catalog.benchmark("belebele").code(lang), "test", options):
        out.append({**row, "lang": lang, "correct_answer_num": str(row["correct_answer_num"])})
    return out


def flores(src: str, tgt: str, split: str, options: dict | None = None) -> list[dict]:
    """FLORES sentence pairs ``src`` -> ``tgt``, paired by sentence id."""
    code = catalog.benchmark("flores").code
    src_rows = rows("flores", code(src), split, options)
    tgt_rows = {r["id"]: r["text"] for r in rows("flores", code(tgt), split, options)}
    missing = [r["id"] for r in src_rows if r["id"] not in tgt_rows]
    if missing:
        raise SdrrlError(f"FLORES {split}: {len(missing)} {src} sentences have no {tgt} counterpart "
                         f"(first id {missing[0]!r}).",
                         "use files from the same FLORES release for both languages.")
    return [{"id": r["id"], "src_lang": src, "tgt_lang": tgt, "source": r["text"],
             "reference": tgt_rows[r["id"]]} for r in src_rows]


def xlsum(lang: str, split: str, options: dict | None = None) -> list[dict]:
    name = catalog.benchmark("xlsum").code(lang)
    return [{"id": r["id"], "lang": lang, "title": r.get("title", ""), "text": r["text"],
             "summary": r["summary"]} for r in rows("xlsum", name, split, options)]


def _answer_text_entries(entries: list[dict]) -> list[dict]:
    out = []
    for entry in entries or ():
        kind = entry.get("type")
        if isinstance(kind, int):
            kind = MKQA_ANSWER_TYPES[kind]
        out.append({**entry, "type": kind})
    return out


def mkqa(lang: str, options: dict | None = None, skip_unanswerable: bool = True) -> list[dict]:
    """MKQA questions in ``lang`` with their gold answers (texts + aliases); the paper skips
    questions without an answer, and so do we by default."""
    from sdrrl.metrics.mkqa import gold_answers, is_answerable

    code = catalog.benchmark("mkqa").code(lang)
    out = []
    for row in rows("mkqa", "mkqa", "train", options):
        entries = _answer_text_entries(row["answers"][code])
        answers = gold_answers(entries)
        if skip_unanswerable and not is_answerable(answers):
            continue
        out.append({"example_id": str(row["example_id"]), "lang": lang,
                    "query": row["queries"][code], "answers": answers,
                    "answer_types": sorted({e["type"] for e in entries if e.get("type")})})
    return out
