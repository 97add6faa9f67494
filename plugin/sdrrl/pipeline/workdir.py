"""The work directory's shards and their ``.done`` markers, and D (``WORK/source.jsonl``). Paths and row
shapes are :mod:`sdrrl.layout`'s.

Sharding: shard I of N takes items I, I+N, I+2N, ... (:func:`take_shard`; the stages share out their
model batches so, :mod:`sdrrl.pipeline.batches`) and writes ``NAME.shard-I-of-N.jsonl`` plus a
``NAME.shard-I-of-N.jsonl.done`` marker (written last, with the fingerprint of what the stage's
output depends on, :class:`sdrrl.layout.StageDeps`, and its record). A stage's shards hold the model
outputs of their batches (``NAME.batches.shard-I-of-N.jsonl``, :func:`write_batch_output`), from
which the last shard to finish assembles ``NAME.jsonl``. The next stage reads the merged file, and
fails naming the shards that are missing or were made from other inputs (an earlier run's), and
what differs.

Every output, sharded or not (merged or assembled), gets its record beside it too
(:func:`sdrrl.layout.record`), so a work directory knows which build wrote each of its files.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sdrrl import layout
from sdrrl.errors import SdrrlError
from sdrrl.io import BadLine, read_json_object, read_jsonl, write_json, write_jsonl
from sdrrl.pipeline import lock

# -- shards ---------------------------------------------------------------------------------------

def check_shard(num_shards: int, shard_index: int) -> None:
    if not isinstance(num_shards, int) or num_shards < 1:
        raise SdrrlError(f"--num-shards {num_shards!r} must be a positive integer.", "use e.g. --num-shards 4.")
    if not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise SdrrlError(f"--shard-index {shard_index!r} is outside 0..{num_shards - 1}.",
                         f"use a shard index from 0 to {num_shards - 1}.")


def take_shard(rows: Sequence[Any], num_shards: int, shard_index: int) -> list[Any]:
    check_shard(num_shards, shard_index)
    return list(rows[shard_index::num_shards])


def shard_path(final: Path, num_shards: int, shard_index: int) -> Path:
    return final.with_name(f"{final.stem}.shard-{shard_index}-of-{num_shards}{final.suffix}")


done_marker = layout.record_path  # a shard's marker and an output's record have one name


def write_output(final: Path, rows: Iterable[dict], num_shards: int = 1, shard_index: int = 0,
                 deps: layout.StageDeps | None = None, merged_also: Sequence[Path] = (),
                 on_merge: Callable[[], Any] | None = None) -> Path:
    """Write a stage's rows: the final file when unsharded, else the shard file and its marker
    (which records ``deps``: its fingerprint as ``inputs``, its record as ``depends``).

    When every shard is done, one process merges them (under the directory's shared-work lock, so
    exactly one does, even when shards finish at the same moment) and then calls ``on_merge``,
    which writes ``merged_also`` (e.g. the filter's summary); a merge counts as done when ``final``
    and every file of ``merged_also`` are newer than every shard's marker."""
    rows = list(rows)
    if num_shards == 1:
        write_jsonl(final, rows)
        if deps is not None:
            layout.record(final, deps.record)
        return final
    path = shard_path(final, num_shards, shard_index)
    write_jsonl(path, rows)
    inputs = deps.fingerprint() if deps is not None else None
    write_json(done_marker(path), {"rows": len(rows), "num_shards": num_shards, "shard_index": shard_index,
                                   "inputs": inputs, "depends": deps.record if deps is not None else None,
                                   "written_ns": time.time_ns()})
    with lock.shared_work(final.parent, f"merge of {final.name}"):
        if all_shards_done(final, num_shards, inputs):  # the last shard to finish merges (atomic, idempotent)
            if not merged_is_current(final, num_shards, merged_also):
                merge_shards(final, "merge")
                if on_merge is not None:
                    on_merge()
        else:
            for stale in (final, *merged_also):  # merged files of an earlier run are stale now
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
    return path


def write_batch_output(final: Path, outputs: Mapping[str, Any], assemble: Callable[[Mapping[str, Any]], list[dict]],
                       num_shards: int = 1, shard_index: int = 0, deps: layout.StageDeps | None = None,
                       merged_also: Sequence[Path] = ()) -> Path:
    """Write a batch-sharded stage (generate, translate, filter; :mod:`sdrrl.pipeline.batches`):
    unsharded, the rows ``assemble(outputs)`` into ``final``; sharded, this shard's ``outputs``
    (input -> model output, of its batches) as rows :class:`sdrrl.layout.OutputRow` into its shard of
    ``layout.batch_outputs_path(final)``, and once every shard is done, the last one merges them and
    writes ``final`` assembled from every shard's outputs (shards need not share a cache).
    ``assemble`` may write ``merged_also`` (files it writes beside ``final``) too."""
    if num_shards == 1:
        return write_output(final, assemble(outputs), deps=deps)
    rows = [{"input": k, "output": v} for k, v in outputs.items()]
    return write_output(layout.batch_outputs_path(final), rows, num_shards, shard_index, deps,
                        merged_also=[*merged_also, final], on_merge=lambda: _assemble(final, assemble))


def _assemble(final: Path, assemble: Callable[[Mapping[str, Any]], list[dict]]) -> None:
    outputs: dict[str, Any] = {}
    merged = layout.batch_outputs_path(final)
    for row in read_jsonl(merged):
        if row["input"] in outputs:
            raise SdrrlError(f"{merged.name}: two shards computed the same input (their batches were planned "
                             f"differently): {row['input'][:80]!r}.",
                             "start every shard with the same config (batch_size included), then run them again.")
        outputs[row["input"]] = row["output"]
    write_jsonl(final, assemble(outputs))
    depends = read_json_object(layout.record_path(merged)).get("depends")
    if isinstance(depends, dict):  # the outputs' record is the assembled file's
        layout.record(final, depends)


def ensure_assembled(final: Path, num_shards: int, stage: str,
                     assemble: Callable[[Mapping[str, Any]], list[dict]]) -> None:
    """Merge the (finished) shards of a batch-sharded stage and assemble ``final`` from them, unless a
    current assembly exists (one process does it)."""
    with lock.shared_work(final.parent, f"merge of {final.name}"):
        outputs = layout.batch_outputs_path(final)
        if not merged_is_current(outputs, num_shards, [final]):
            merge_shards(outputs, stage)
            _assemble(final, assemble)


def merged_is_current(final: Path, num_shards: int, merged_also: Sequence[Path] = ()) -> bool:
    """``final`` (and ``merged_also``) exist and were written after the newest shard marker.
    File times on both sides: one clock (the file system's), also across machines on NFS."""
    newest = 0
    for i in range(num_shards):
        with contextlib.suppress(FileNotFoundError):
            newest = max(newest, done_marker(shard_path(final, num_shards, i)).stat().st_mtime_ns)
    for p in (final, *merged_also):
        try:
            if p.stat().st_mtime_ns < newest:
                return False
        except FileNotFoundError:
            return False
    return True


def wait_for_shards(final: Path, num_shards: int, inputs: str | None, label: str, stage: str,
                    timeout_s: float, every_s: float = 30.0, poll_s: float = 0.5,
                    work: Path | None = None) -> None:
    """Wait (printing which shards are missing) until every shard of ``final`` is done with these
    ``inputs``; fail after ``timeout_s`` naming the missing shards. Given the ``work`` directory, a
    missing shard that failed (its ``.failed`` record, :func:`sdrrl.pipeline.lock.shard_failure`) is
    named with its error as soon as it is seen: the wait goes on, for the shard restarted."""
    from sdrrl.pipeline import lock

    start = time.monotonic()
    last = None
    told: set = set()
    while True:
        markers = [done_marker(shard_path(final, num_shards, i)) for i in range(num_shards)]
        missing = [i for i, m in enumerate(markers) if not m.exists() or
                   (inputs is not None and _marker_inputs(m) != inputs)]
        if not missing:
            return
        waited = time.monotonic() - start
        names = ", ".join(map(str, missing))
        failures = {i: lock.shard_failure(work, num_shards, i) for i in missing} if work is not None else {}
        failed = {i: f for i, f in failures.items() if f}
        if waited >= timeout_s:
            why = "".join(f" Shard {i} failed: {f.get('error', '?')}" for i, f in failed.items())
            raise SdrrlError(f"{label}: {stage} shard(s) {names} of {num_shards} did not finish within "
                             f"{timeout_s:.0f} s (no current .done marker for {final.name}).{why}",
                             f"start the missing shard processes (`sdrrl build ... --num-shards {num_shards} "
                             "--shard-index I`, same config), or raise --shard-timeout; finished work is kept "
                             "and a rerun continues it.")
        for i, f in failed.items():
            key = (i, f.get("pid"), f.get("since_epoch"))
            if key not in told:
                told.add(key)
                print(f"{label}: shard {i} of {num_shards} failed ({lock.describe(f)}): {f.get('error', '?')} -- "
                      f"restart it (`sdrrl build ... --num-shards {num_shards} --shard-index {i}`, same config; its "
                      f"finished work is kept); this shard waits for it (at most {timeout_s - waited:.0f} s more).",
                      file=sys.stderr, flush=True)
        if last is None or time.monotonic() - last >= every_s:
            last = time.monotonic()
            print(f"{label}: waiting for {stage} shard(s) {names} of {num_shards} to finish "
                  f"({waited:.0f} s so far, at most {timeout_s:.0f} s).", file=sys.stderr, flush=True)
        time.sleep(poll_s)


def _marker_inputs(marker: Path) -> Any:
    return read_json_object(marker).get("inputs")


def all_shards_done(final: Path, num_shards: int, inputs: str | None = None) -> bool:
    """Every shard has its marker, and (given ``inputs``) was made from these same inputs."""
    markers = [done_marker(shard_path(final, num_shards, i)) for i in range(num_shards)]
    if not all(m.exists() for m in markers):
        return False
    return inputs is None or all(_marker_inputs(m) == inputs for m in markers)


def find_shards(final: Path) -> dict[int, list[Path]]:
    """Shard files of ``final`` grouped by their shard count."""
    groups: dict[int, list[Path]] = {}
    if not final.parent.is_dir():
        return groups
    pattern = re.compile(re.escape(final.stem) + r"\.shard-(\d+)-of-(\d+)" + re.escape(final.suffix) + "$")
    for p in final.parent.iterdir():
        m = pattern.match(p.name)
        if m:
            groups.setdefault(int(m.group(2)), []).append(p)
    return groups


def merge_shards(final: Path, stage: str) -> Path:
    """Merge the finished shards of ``final`` into it (round-robin = the original row order)."""
    n = finished_shards(final, stage)
    parts = [list(read_jsonl(shard_path(final, n, i))) for i in range(n)]
    merged: list[dict] = []
    for k in range(max(len(p) for p in parts)):
        for p in parts:
            if k < len(p):
                merged.append(p[k])
    write_jsonl(final, merged)
    markers = [read_json_object(done_marker(shard_path(final, n, i))) for i in range(n)]
    depends = max(markers, key=lambda m: m.get("written_ns") or 0).get("depends")
    if isinstance(depends, dict):  # the shards' own record (they agree: finished_shards) is the merged file's
        layout.record(final, depends)
    return final


def finished_shards(final: Path, stage: str) -> int:
    """The shard count of ``final``'s shards, once every one is finished from the same inputs; else
    an error naming the missing or stale shards and the command that makes them."""
    groups = find_shards(final)
    if not groups:
        raise SdrrlError(f"{final} does not exist and no shards of it were found.",
                         f"run `sdrrl {stage}` first (or all of its shards).")
    if len(groups) > 1:
        raise SdrrlError(f"Shards of {final} from different --num-shards runs: {sorted(groups)}.",
                         "delete the shard files of the run you abandoned, then merge again.")
    (n,) = groups
    missing = [i for i in range(n) if not done_marker(shard_path(final, n, i)).exists()]
    if missing:
        raise SdrrlError(f"{final.name}: shard(s) {', '.join(map(str, missing))} of {n} are not finished "
                         "(no .done marker).",
                         f"run `sdrrl {stage} --num-shards {n} --shard-index I` for each missing I "
                         "(finished shards are kept), then run the next stage again.")
    markers = [read_json_object(done_marker(shard_path(final, n, i))) for i in range(n)]
    inputs = [m.get("inputs") for m in markers]
    newest = max(range(n), key=lambda i: markers[i].get("written_ns") or 0)  # the newest run's
    stale = [i for i in range(n) if inputs[i] != inputs[newest]]
    if stale:
        differ = sorted({key for i in stale for key in layout.differences(markers[i].get("depends") or {},
                                                                          markers[newest].get("depends") or {})})
        raise SdrrlError(f"{final.name}: shard(s) {', '.join(map(str, stale))} of {n} were made from other inputs "
                         f"or settings than the newest shard {newest} (an earlier run's"
                         + (f"; they differ in {', '.join(differ)}" if differ else "") + ").",
                         f"run `sdrrl {stage} --num-shards {n} --shard-index I` again for each of them "
                         "(rows already done come from the cache), then run the next stage again.")
    return n


def read_output(final: Path, stage: str) -> list[dict]:
    """A stage's rows: the merged file, merging finished shards first if needed."""
    if not final.exists():
        with lock.shared_work(final.parent, f"merge of {final.name}"):
            if not final.exists():
                outputs = layout.batch_outputs_path(final)
                if find_shards(outputs):  # a batch-sharded stage: only its shards can assemble it
                    n = finished_shards(outputs, stage)
                    raise SdrrlError(f"{final} is missing though all {n} {stage} shards are done (the shard that "
                                     "assembles it stopped first).",
                                     f"run `sdrrl {stage} --num-shards {n} --shard-index I` again for any one I: "
                                     "its outputs come from the cache, and it assembles the file.")
                merge_shards(final, stage)
    return list(read_jsonl(final))


def check_generation(work: Path, stage: str, src: str | None = None, tgt: str | None = None) -> None:
    """Refuse to run ``stage`` on inputs whose records say they were made from other files than the work
    directory holds now (:func:`sdrrl.layout.generation_problems`; inputs without a record are taken
    as given)."""
    from sdrrl import configfile

    reads = layout.stage_output(work, stage, src, tgt).reads.values()
    configfile.raise_problems(layout.generation_problems(reads, strict=False))


# -- D ----------------------------------------------------------------------------------------------

def shipped_sample() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "sample" / "instructions_eng.jsonl"


def source_dependencies(input_path: str | Path | None, on_bad_row: str = "error",
                        max_rows: int | None = None) -> layout.StageDeps:
    """What D depends on: the input file or folder (by content) or hub dataset (by id), and the options."""
    from sdrrl import hub

    given = str(input_path or shipped_sample())
    files = {"input": Path(given)} if hub.is_local(given) else {}
    return layout.StageDeps("prepare", files, None, {"dataset": None if files else given, "max_rows": max_rows,
                                                     "on_bad_row": on_bad_row})


def prepare_source(work: Path, input_path: str | Path | None, on_bad_row: str = "error",
                   max_rows: int | None = None, **record_extra: Any) -> tuple[list[dict], int]:
    """Validate D and write ``WORK/source.jsonl``; returns (rows, skipped).

    D is JSON Lines, a JSON array, Parquet, a ``datasets`` folder or a hub id (:mod:`sdrrl.pipeline.inputs`).
    A row needs a non-empty string ``instruction`` and a string ``output``; ``input`` is optional.
    Bad rows raise (``on_bad_row: error``) or are skipped, counted and logged to
    ``WORK/source.skipped.jsonl`` (``on_bad_row: skip``). The record beside ``source.jsonl``
    (:func:`source_dependencies`) takes ``record_extra`` too.
    """
    from sdrrl.pipeline import inputs

    path = input_path or shipped_sample()  # a file, a datasets folder or a hub id (pipeline/inputs.py)
    rows: list[dict] = []
    skipped: list[dict] = []
    seen: set[str] = set()
    for index, row in enumerate(inputs.rows(path)):
        if max_rows is not None and len(rows) >= max_rows:
            break
        if isinstance(row, BadLine):  # not UTF-8, not JSON: a bad row like any other
            if on_bad_row == "error":
                err = row.error()
                raise SdrrlError(f"{err.problem[:-1]} (row {index + 1}).",
                                 f"{row.fix[:-1]}; or set `on_bad_row: skip` (--on-bad-row skip) to skip and log "
                                 "bad rows.")
            skipped.append({"line": row.line, "byte": row.byte, "reason": row.problem})
            continue
        problem = _row_problem(row)
        rid = row.get("id", index)
        rid = str(rid) if isinstance(rid, (str, int)) else None
        if problem is None and rid is None:
            problem = "id is not a string or integer"
        if problem is None and rid in seen:
            problem = f"duplicate id {rid!r}"
        if problem is not None:
            if on_bad_row == "error":
                raise SdrrlError(f"{path}: row {index + 1}: {problem}.",
                                 "fix the row, or set `on_bad_row: skip` (--on-bad-row skip) to skip "
                                 "and log bad rows.")
            skipped.append({"line": index + 1, "reason": problem, "row": _loggable(row)})
            continue
        seen.add(rid)
        rows.append({"id": rid, "instruction": row["instruction"], "input": row.get("input") or "",
                     "output": row["output"]})
    if not rows:
        raise SdrrlError(f"{path}: no usable rows (file empty{' or every row bad' if skipped else ''}).",
                         "point `input:` at a non-empty alpaca-style instruction set.")
    write_jsonl(layout.source_path(work), rows)
    layout.record(layout.source_path(work), source_dependencies(input_path, on_bad_row, max_rows).record,
                  skipped=len(skipped), **record_extra)
    skipped_file = layout.skipped_path(work)
    if not skipped:  # an earlier run's log would describe another D
        skipped_file.unlink(missing_ok=True)
    else:
        write_jsonl(skipped_file, skipped)
        print(f"prepare: skipped {len(skipped)} bad row(s) of {path}; see {skipped_file}", flush=True)
    return rows, len(skipped)


# JSON can escape a lone UTF-16 surrogate; Python reads it, but no UTF-8 file can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _row_problem(row: dict) -> str | None:
    for col in ("instruction", "output"):
        if col not in row:
            return f"missing {col!r}"
        if not isinstance(row[col], str):
            return f"{col!r} is {type(row[col]).__name__}, not a string"
    if not row["instruction"].strip():
        return "empty 'instruction'"
    if row.get("input") is not None and not isinstance(row.get("input"), str):
        return f"'input' is {type(row['input']).__name__}, not a string"
    for col in ("instruction", "input", "output"):
        bad = _SURROGATE.search(row.get(col) or "")
        if bad:
            return (f"{col!r} holds an unpaired surrogate {bad.group()!a} at character {bad.start()} "
                    "(not valid Unicode; a broken emoji?)")
    return None


def _loggable(row: dict) -> Any:
    """The row for the skip log; as its ASCII-escaped JSON text where it cannot be written as UTF-8."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
        return row
    except UnicodeEncodeError:
        return json.dumps(row)
