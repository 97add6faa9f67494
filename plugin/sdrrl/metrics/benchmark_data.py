"""Load the benchmarks as flat rows, from the hub by name or from a local directory.

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
  script downloads), downloaded once into sdrrl's cache (:func:`release_file`; not through
  ``datasets.DownloadManager``, which asks the network before its cache and so fails offline).
- Off-target (Figure 3): English from ``databricks/databricks-dolly-15k`` (main, split ``train``);
  the targets from ``MBZUAI/Bactrian-X`` @ ``refs/convert/parquet`` (folder = its ISO 639-1 code,
  split ``train``), the rows whose ``id`` starts with ``dolly-``.

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
from collections import Counter
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


def _local_rows(root: Path, benchmark: str, config: str | None, split: str,
                options: dict[str, Any] | None = None, source: catalog.DataSource | None = None) -> list[dict]:
    source = source or catalog.benchmark(benchmark).source
    tried = []
    for pattern in source.local:
        rel = pattern.format(config=config, split=split)
        tried.append(rel)
        files = sorted(glob.glob(str(root / rel)))
        if files:
            _record(options, {"source": "local", "dir": str(root), "config": config, "split": split,
                              "files": {os.path.relpath(f, root): file_sha256(f) for f in files}})
            return [row for f in files for row in _read_rows(f)]
    raise SdrrlError(f"No local {benchmark} data for {config!r} ({split}) under {root}: looked for "
                     + ", ".join(tried) + ".",
                     f"copy the files there from the hub dataset {source.hub} "
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
              source: catalog.DataSource | None = None) -> list[dict]:
    import datasets

    source = source or catalog.benchmark(benchmark).source
    revision = source.requested_revision()
    kwargs: dict[str, Any] = {"split": split, "revision": revision}
    if source.by == "data_dir":
        kwargs["data_dir"] = config
    else:
        kwargs["name"] = config
    try:
        out = datasets.load_dataset(source.hub, **kwargs).to_list()
    except Exception as err:  # noqa: BLE001 - offline, gated, renamed: the fix is the same
        raise SdrrlError(
            f"Cannot load {benchmark} ({config}, {split}) from the hub dataset {source.where}: "
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
    """A benchmark's official release file (``DataSource.release_url``), from sdrrl's cache."""
    url = catalog.benchmark(benchmark).source.release_url
    path = release_file(benchmark, url)
    out, digest = _read_release(str(path), os.stat(path).st_mtime_ns)
    _record(options, {"source": "release", "url": url, "sha256": digest, "split": split})
    return out


def release_file(benchmark: str, url: str) -> Path:
    """The release file at ``url`` in sdrrl's cache, ``$SDRRL_CACHE/eval-data/BENCHMARK/NAME``
    (default ``~/.cache/sdrrl``), downloaded there once (atomically) with its URL and sha256 in
    ``NAME.json`` beside it. A cached file is read without asking the network, so it serves offline
    runs; one that no longer matches its recorded sha256 is an error. A file copied there by hand
    (no ``NAME.json``) is used as it is (its sha256 is recorded with the results either way)."""
    from sdrrl import hub
    from sdrrl.io import atomic_open, cache_dir, write_json

    path = cache_dir("eval-data") / benchmark / url.rstrip("/").rsplit("/", 1)[-1]
    meta_path = path.with_name(path.name + ".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
    if path.is_file() and (meta is None or meta.get("url") == url):
        if meta is not None and file_sha256(path) != meta.get("sha256"):
            raise SdrrlError(f"{path} (the {benchmark} release file from {url}) changed since it was downloaded: its "
                             f"sha256 is not the {meta.get('sha256')} recorded in {meta_path.name}.",
                             f"delete {path} and {meta_path} and run again with network access (it is downloaded "
                             "again)")
        return path
    if hub.datasets_offline():
        raise SdrrlError(f"The {benchmark} release file is not in sdrrl's cache ({path}), and downloads are off "
                         f"({hub.datasets_offline_setting()}).",
                         f"run once with network access (it is downloaded to {path}), or download {url} "
                         f"elsewhere and copy it to {path}")
    import hashlib
    import urllib.request

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, atomic_open(path, "wb") as out:
        while block := response.read(1 << 20):
            digest.update(block)
            out.write(block)
    write_json(meta_path, {"url": url, "sha256": digest.hexdigest(), "bytes": path.stat().st_size})
    return path


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
    release_fix = ""
    try:
        return _release_rows(benchmark, split, options)
    except SdrrlError as err:  # offline and not cached, or changed since downloaded: it says what to do
        failures.append(f"release file {source.release_url}: {err.problem}")
        release_fix = f"{err.fix}; or "
    except Exception as err:  # noqa: BLE001 - unreachable, moved, corrupt: all end in the same advice
        failures.append(f"release file {source.release_url}: {type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200] if str(err) else ''}")
    raise SdrrlError(f"Cannot load {catalog.benchmark(benchmark).label} from any source; tried "
                     + "; ".join(failures) + f"; local override: ${ENV_DATA_DIR} is not set.",
                     release_fix + f"set ${ENV_DATA_DIR}=DIR with the release file above (or the hub's files) in "
                     f"DIR, laid out as one of {', '.join(source.local)} (docs/evaluation.md), and unset it "
                     "later; or restore hub access.")


def rows(benchmark: str, config: str | None, split: str, options: dict[str, Any] | None = None,
         source: catalog.DataSource | None = None) -> list[dict]:
    """Raw rows of one benchmark config/split, from the local directory if set, else the hub
    (and where the hub fails, a benchmark's release file when it has one: MKQA). ``source``: another
    of the benchmark's data sources than its main one (``Benchmark.english_source``)."""
    root = data_dir(options)
    if root is not None:
        return _local_rows(root, benchmark, config, split, options, source)
    if source is None and catalog.benchmark(benchmark).source.release_url:
        return _hub_else_release_rows(benchmark, config, split, options)
    return _hub_rows(benchmark, config, split, options, source)


# ---- per benchmark: raw rows -> the flat rows the tasks use -----------------------------------

def belebele(lang: str, options: dict | None = None) -> list[dict]:
    out = []
    for row in rows("belebele", catalog.benchmark("belebele").code(lang), "test", options):
        out.append({**row, "lang": lang, "correct_answer_num": str(row["correct_answer_num"])})
    return out


def flores(src: str, tgt: str, split: str, options: dict | None = None) -> list[dict]:
    """FLORES sentence pairs ``src`` -> ``tgt``, paired by sentence id: both sides from one release
    (FLORES+ on the hub or in its layout, or FLORES-200's original release) and with the same
    sentence ids (equal line counts), else an error naming both files."""
    code = catalog.benchmark("flores").code
    sides = []
    for lang in (src, tgt):
        seen: dict = {}  # what this side was read from, whether or not the caller records it
        side = rows("flores", code(lang), split, {**(options or {}), METADATA_SOURCE: seen})
        for entry in seen.get("loaded", []):
            _record(options, entry)
        sides.append((side, *_flores_origin(seen.get("loaded", []))))
    (src_rows, src_release, src_where), (tgt_rows, tgt_release, tgt_where) = sides
    if src_release != tgt_release:
        raise SdrrlError(f"FLORES {split} {src}-{tgt}: {src_where} is from {src_release} but {tgt_where} is from "
                         f"{tgt_release}; a pair must come from one release (ids and sentences differ between "
                         "releases).",
                         "put both languages' files of one release in the data directory (both under flores/ "
                         "for FLORES+, or both under flores200_dataset/ for FLORES-200).")
    src_ids, tgt_ids = Counter(r["id"] for r in src_rows), Counter(r["id"] for r in tgt_rows)
    if src_ids != tgt_ids:
        only_src, only_tgt = src_ids.keys() - tgt_ids.keys(), tgt_ids.keys() - src_ids.keys()
        twice = sorted(str(i) for i, n in (src_ids | tgt_ids).items() if n > 1)
        detail = f" (first: {min(only_src or only_tgt, key=str)!r})" if only_src or only_tgt else ""
        detail += f", ids repeated: {', '.join(twice[:3])}" if twice else ""
        raise SdrrlError(f"FLORES {split} {src}-{tgt}: the two sides do not hold the same sentences: {src_where} "
                         f"({_count(src_ids.total(), 'sentence')}) and {tgt_where} ({tgt_ids.total()}); "
                         f"{len(only_src)} ids only in the first, {len(only_tgt)} only in the second{detail}; "
                         "paired, one side's missing sentences would silently drop out of the score.",
                         "use complete files of the same FLORES release and split for both languages.")
    tgt_text = {r["id"]: r["text"] for r in tgt_rows}
    return [{"id": r["id"], "src_lang": src, "tgt_lang": tgt, "source": r["text"],
             "reference": tgt_text[r["id"]]} for r in src_rows]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _flores_origin(loaded: list[dict]) -> tuple[str, str]:
    """(the release, where it was read) of one FLORES side from its load record: a local file's
    release is its layout's top folder (``flores/``: FLORES+, ``flores200_dataset/``: FLORES-200)."""
    descriptions, releases = [], set()
    for entry in loaded:
        if entry.get("source") == "local":
            for rel in entry["files"]:
                descriptions.append(str(Path(entry["dir"]) / rel))
                top = Path(rel).parts[0]
                releases.add("FLORES-200 (flores200_dataset/)" if top == "flores200_dataset" else f"FLORES+ ({top}/)")
        else:
            where = f"{entry.get('dataset')}@{entry.get('revision')}"
            descriptions.append(f"{where} {entry.get('config')} {entry.get('split')}")
            releases.add(f"FLORES+ ({where})")
    return " + ".join(sorted(releases)) or "an unknown release", ", ".join(descriptions) or "?"


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


# ---- Figure 3: Dolly (English) and its Bactrian-X translations ---------------------------------

# The hub fields the off-target tasks rely on (checked on every row, with an error naming them).
BACTRIAN_X_FIELDS = ("instruction", "input", "id", "output")
DOLLY_FIELDS = ("instruction", "context", "response", "category")
# Bactrian-X holds Alpaca's 52K and Dolly's 15K instructions in one split, told apart by the id:
# "alpaca-<n>" or "dolly-<n>" (the dataset card's examples; checked on the rows).
BACTRIAN_X_DOLLY_ID = "dolly-"


def _require_fields(rows: list[dict], fields: tuple[str, ...], what: str) -> None:
    """Every row has ``fields``; else one error naming the dataset, the missing fields and the row."""
    for i, row in enumerate(rows):
        missing = [f for f in fields if not isinstance(row, dict) or f not in row]
        if missing:
            present = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
            raise SdrrlError(f"{what}: row {i} has no field {', '.join(missing)} (it has: {present}); the "
                             f"off-target task reads {', '.join(fields)}.",
                             "use the dataset as published (or a local copy with its fields), or update "
                             "sdrrl.metrics.benchmark_data if the dataset renamed them.")


def offtarget(lang: str, options: dict | None = None) -> list[dict]:
    """Figure 3's prompts in ``lang``: Dolly's instructions (English) or their Bactrian-X translations
    (the Dolly part), each as the question the model answers (instruction, then its context/input
    on the next line, as the training data joins them), with the reference response."""
    from sdrrl.layout import question  # the alpaca user turn the models were trained on

    bench = catalog.benchmark("offtarget")
    if lang == "eng":
        source = bench.english_source
        found = rows("offtarget", None, "train", options, source)
        _require_fields(found, DOLLY_FIELDS, f"Dolly ({source.hub})")
        return [{"id": str(i), "lang": lang, "category": r["category"], "reference": r["response"],
                 "question": question({"instruction": r["instruction"], "input": r["context"]})}
                for i, r in enumerate(found)]
    code = bench.code(lang)  # an error naming the language where Bactrian-X has none
    found = rows("offtarget", code, "train", options)
    what = f"Bactrian-X {code} ({bench.source.hub})"
    _require_fields(found, BACTRIAN_X_FIELDS, what)
    dolly = [r for r in found if str(r["id"]).startswith(BACTRIAN_X_DOLLY_ID)]
    if not dolly:
        ids = ", ".join(repr(r["id"]) for r in found[:3])
        raise SdrrlError(f"{what}: none of its {len(found)} rows has an id starting with {BACTRIAN_X_DOLLY_ID!r} "
                         f"(ids like {ids or 'none'}), so its Dolly part cannot be told from the Alpaca part.",
                         "use Bactrian-X as published (ids alpaca-<n> and dolly-<n>), or a local copy with "
                         "its id field.")
    return [{"id": str(r["id"]), "lang": lang, "reference": r["output"], "question": question(r)}
            for r in dolly]
