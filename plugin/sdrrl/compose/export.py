"""Compose every planned registry entry from a pipeline work directory and export it.

Three steps, kept apart: *compose* (:class:`PairComposer`, :func:`compose_sft`) turns the work
directory's rows into a :class:`Composed` dataset, which says how to make its rows and what the
manifest records of it, and writes nothing; *write* (:class:`_Writer`) writes ``DIR/{name}.jsonl``
once per distinct content; the :class:`~sdrrl.compose.manifest.ManifestEntry` of each is made in one
place (:func:`_manifest_entry`). :func:`export` then merges ``DIR/dataset_info.json``
(:func:`sdrrl.registry.update_dataset_info`) and ``DIR/manifest.json``, all in a stage that replaces
``DIR`` in one step (:mod:`sdrrl.staging`).

Speed at paper scale (52,002 rows x 14 languages x every method, see benchmarks/bench_export.py):
one process per language pair; each question is code-switched once per side and reused by every
subset and method; each text is JSON-encoded once per pair and the transfer subsets' lines are
assembled from those encodings (byte for byte what ``write_dataset`` writes, checked by a test;
``write_dataset`` itself costs ~8 us a row in validation and re-encoding, ~80 s of CPU at this
scale); a dataset that several methods share byte for byte (e.g. ``sdrrl_*_ll`` and
``sdrrl-no-mt-comp_*_ll``) is written once and hard-linked under the other names
(``duplicates: copy`` writes copies instead).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sdrrl import languages, layout
from sdrrl.compose import codeswitch, parallel
from sdrrl.compose.config import ComposeConfig
from sdrrl.compose.manifest import MANIFEST, Manifest, ManifestEntry
from sdrrl.compose.methods import PlannedEntry, plan
from sdrrl.compose.subsets import PARALLEL_SUBSETS, SubsetSpec, json_string, transfer_lines
from sdrrl.errors import DiskFullError, SdrrlError
from sdrrl.io import atomic_open, file_sha256
from sdrrl.layout import ExcludedRow, FilteredRow, SourceRow, SynthRow
from sdrrl.registry import Entry, data_file, update_dataset_info, write_dataset


@dataclass(frozen=True)
class Rows:
    """The rows of a work-directory file, and the files they came from (path + sha256, for the manifest)."""

    rows: list[dict]
    sources: list[dict]


def _read_rows(path: Path, row_type: type) -> Rows:
    """A work-directory file's rows, each with every key of ``row_type``, and the sha256 of its bytes
    (read once for both)."""
    required = layout.keys(row_type)
    if not path.is_file():
        raise SdrrlError(f"Pipeline output not found: {str(path)!r}.",
                         "run the pipeline that writes it (`sdrrl build --config FILE`), or fix work_dir in the config.")
    data = path.read_bytes()
    try:  # orjson (installed with LLaMA-Factory's gradio) parses the 100 MB filter files ~3x faster
        from orjson import loads
    except ImportError:
        loads = json.loads
    rows = []
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as err:
            raise SdrrlError(f"{path}:{lineno}: not valid JSON ({err.msg}).",
                             "re-run the stage that wrote it; a finished stage writes whole files.") from None
        if not isinstance(row, dict) or any(k not in row for k in required):
            missing = [k for k in required if not isinstance(row, dict) or k not in row]
            raise SdrrlError(f"{path}:{lineno}: row lacks {missing} (a {row_type.__name__}, sdrrl/layout.py).",
                             "re-run the stage that wrote it with this sdrrl version.")
        rows.append(row)
    return Rows(rows, [{"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}])


@dataclass
class Composed:
    """One dataset composed and not yet written: how to make its rows, and what its manifest entry says."""

    entry: PlannedEntry
    content: tuple                 # same content key, same bytes: written once, linked under the other names
    make_rows: Callable[[], list]  # row dicts, or ready JSON lines (subsets.transfer_lines: the same bytes)
    total: int                     # the rows it is drawn from, and what they are (for "would be empty")
    what: str
    config: dict
    inputs: list[dict]
    dropped: Counter = field(default_factory=Counter)  # filled while make_rows runs
    parallel: dict | None = None
    monolingual: dict | None = None
    rows_missing_from_filter_file: int | None = None


@dataclass(frozen=True)
class Written:
    """A data file as written: under which entry's name, its rows, sha256 and drops."""

    name: str
    rows: int
    sha256: str
    dropped: dict


def _manifest_entry(c: Composed, written: Written) -> ManifestEntry:
    """The manifest's record of a written dataset (the one place an entry is made)."""
    e = c.entry
    return ManifestEntry(file=data_file(e.name), sha256=written.sha256, rows=written.rows, method=e.method,
                         subset=e.spec.kind if e.spec else None, source=e.source, target=e.target,
                         config=c.config, inputs=c.inputs, dropped=written.dropped, parallel=c.parallel,
                         monolingual=c.monolingual, rows_missing_from_filter_file=c.rows_missing_from_filter_file,
                         same_content_as=written.name if written.name != e.name else None)


def _link_or_copy(src: Path, dest: Path, mode: str) -> None:
    """Give ``dest`` the content of ``src`` atomically: a hard link, or a copy where links fail."""
    if mode == "link":
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(src, tmp)
            os.replace(tmp, dest)
            return
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    with src.open("rb") as fin, atomic_open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


class _Writer:
    """Writes each distinct dataset once; later names with the same content get a link."""

    def __init__(self, out: Path, mode: str, written: dict[tuple, Written] | None = None):
        self.out, self.mode = out, mode
        self.written: dict[tuple, Written] = dict(written or {})  # content key -> the first file written

    def write(self, c: Composed) -> ManifestEntry:
        """Write ``c`` (or link the file of the same content); an empty dataset is an error."""
        name = c.entry.name
        first = self.written.get(c.content)
        if first is not None:
            _link_or_copy(self.out / data_file(first.name), self.out / data_file(name), self.mode)
            return _manifest_entry(c, first)
        rows = c.make_rows()
        if not rows:
            raise _empty_error(name, c.total, c.dropped, c.what)
        if isinstance(rows[0], str):
            h = hashlib.sha256()  # hashed as written, in the worker that writes it
            with atomic_open(self.out / data_file(name), "wb") as fh:
                for i in range(0, len(rows), 8192):
                    chunk = "".join(rows[i:i + 8192]).encode("utf-8")
                    h.update(chunk)
                    fh.write(chunk)
            n, sha = len(rows), h.hexdigest()
        else:
            _, n = write_dataset(self.out, name, rows)
            sha = file_sha256(self.out / data_file(name))
        self.written[c.content] = written = Written(name, n, sha, dict(c.dropped))
        return _manifest_entry(c, written)


def _empty_error(name: str, total: int, dropped: Counter, what: str) -> SdrrlError:
    top = ", ".join(f"{r}: {c}" for r, c in dropped.most_common(4)) or "no rows in the input"
    return SdrrlError(f"{name} would be empty: all {total} rows of {what} were dropped ({top}).",
                      "check the filter summary for this pair (WORK/filter/*.summary.json): lower the "
                      "thresholds, fix the translations, or leave this target out of the config.")


class PairComposer:
    """Composes every planned entry of one source/target pair from inputs it loads once (writes nothing)."""

    def __init__(self, cfg: ComposeConfig, src: str, tgt: str, entries: list[PlannedEntry], synth: Rows | None):
        self.cfg, self.src, self.tgt, self.entries = cfg, src, tgt, entries
        self.synth = synth
        self.work = cfg.path(cfg.work_dir)
        self.notes: list[str] = []
        self._filter: Rows | None = None
        self._excluded: dict | None = None
        self._dicts: dict[str, codeswitch.Dictionary] = {}
        # computed once per pair and shared by every subset and method that needs them:
        self._columns: dict[tuple[str, str], list[str | None]] = {}  # (synth|filter, field) -> JSON strings
        self._questions: dict[tuple[bool, bool, bool], list[str | None]] = {}  # (from synth, translated, switched)
        self._encoded: dict[tuple[bool, bool, bool], list[str | None]] = {}    # the same, JSON-encoded
        self._switched: dict[bool, dict[Any, str]] = {}  # translated side? -> row id -> switched question
        self._parallel: parallel.ParallelSample | None = None
        self._monolingual = None
        self.has_filter_subsets = any(e.spec.kind in ("tl", "lt", "tt") for e in entries)

    # --- inputs, each loaded at most once -------------------------------------------------
    def filter_rows(self) -> Rows:
        """The filter file's rows; its sources name the exclusions file too (rejection reasons)."""
        if self._filter is None:
            path = layout.filtered_path(self.work, self.src, self.tgt)
            filtered = _read_rows(path, FilteredRow)
            self._check_same_synth(path, filtered.rows)
            exc = layout.excluded_path(self.work, self.src, self.tgt)
            self._excluded = {}
            if exc.is_file():
                excluded = _read_rows(exc, ExcludedRow)
                filtered.sources.extend(excluded.sources)
                for r in excluded.rows:  # "field" names the source text (x) or its translation (x_mt)
                    why = f"rejected at {r.get('stage') or 'filter'}"
                    if r.get("reason"):
                        why += f": {r['reason']}"
                    self._excluded[(r.get("id"), r.get("field"))] = why
            self._filter = filtered
        return self._filter

    def _check_same_synth(self, path: Path, rows: list[dict]) -> None:
        """A filter file made from another D_synth (re-sampled, or D changed, and this target not
        rebuilt) would pair new questions with old translated answers and follow other D/G draws
        than D_LL: refuse it, naming the fix."""
        if self.synth is None:
            return
        synth = {r["id"]: r for r in self.synth.rows}
        stale = [r["id"] for r in rows if (s := synth.get(r["id"])) is not None
                 and any(r.get(k) != s.get(k) for k in ("x", "y", "y_hat", "from"))]
        if stale:
            raise SdrrlError(
                f"{path}: {len(stale)} row(s) (first ids: {stale[:5]}) were translated and filtered from "
                f"another D_synth than {self.synth.sources[0]['path']} (the sample or D changed since).",
                f"run `sdrrl translate --tgt {self.tgt}` and `sdrrl filter --tgt {self.tgt}` on the same work "
                "directory again (or `sdrrl build`): translations and QE scores come from the cache.")

    def filter_rows_if_any(self) -> list[dict]:
        if not self.has_filter_subsets:
            return []
        try:
            return self.filter_rows().rows
        except SdrrlError:  # reported by the subsets that need the file; D_LL does not
            return []

    def rejection(self, row_id: Any, field: str) -> str:
        if field.endswith("_mt"):
            exc = self._excluded or {}
            why = exc.get((row_id, field)) or exc.get((row_id, field[:-3]))
            return f"{field} {why}" if why else f"{field} not translated"
        return f"{field} missing"

    def dictionary(self, direction: str) -> codeswitch.Dictionary:
        """``forward`` switches source-language words into the target language, ``reverse`` back."""
        if direction not in self._dicts:
            cs = self.cfg.code_switch
            if not cs.dictionaries:
                raise SdrrlError("Code-switching needs bilingual dictionaries, but code_switch.dictionaries is not set.",
                                 "set it to a folder of MUSE files (en-id.txt, ...), or choose methods without "
                                 "code-switching (e.g. sdrrl-no-cs).")
            folder = self.cfg.path(cs.dictionaries)
            a, b = languages.get(self.src).dictionary, languages.get(self.tgt).dictionary
            first, second = (a, b) if direction == "forward" else (b, a)
            path = folder / f"{first}-{second}.txt"
            langs = (self.src, self.tgt) if direction == "forward" else (self.tgt, self.src)
            if path.is_file():
                d = self._checked(codeswitch.load_muse(path, cs.max_malformed_fraction), langs)
            else:
                other = folder / f"{second}-{first}.txt"
                if not other.is_file():
                    raise SdrrlError(f"No bilingual dictionary {path.name} (or {other.name} to invert) in {str(folder)!r}.",
                                     f"add the MUSE file {a}-{b}.txt for {self.src}-{self.tgt}.")
                d = self._checked(codeswitch.load_muse(other, cs.max_malformed_fraction), langs[::-1]).inverted()
            if d.malformed:
                self.notes.append(f"{d.path}: skipped {d.malformed} malformed line(s) of {d.lines} "
                                  f"(e.g. line {', '.join(map(str, d.malformed_lines[:5]))}).")
            self._dicts[direction] = d
        return self._dicts[direction]

    def _checked(self, d: codeswitch.Dictionary, langs: tuple[str, str]) -> codeswitch.Dictionary:
        """``d`` with each side language-checked (``langs``: its columns' languages)."""
        lc = self.cfg.language_check
        if lc.enabled:
            from sdrrl.compose import langcheck

            fix = (f"put the {'-'.join(languages.get(x).dictionary for x in langs)} dictionary under that name "
                   "(first column the first language); language_check.enabled: false skips this check.")
            d.language_check = {
                side: langcheck.check(langcheck.dictionary_chunks(words, d.path), lang, lc,
                                      f"The {side} column of the dictionary {d.path}", fix)
                for side, lang, words in zip(("first", "second"), langs, d.sides())}
        return d

    def parallel_sample(self) -> parallel.ParallelSample:
        if self._parallel is None:
            pc = self.cfg.parallel
            s = parallel.sample_pairs(pc.corpus, self.src, self.tgt, pc.pairs, self.cfg.seed, split=pc.split,
                                      allow_fewer=pc.allow_fewer, resolve=self.cfg.path,
                                      language_check=self.cfg.language_check)
            if len(s.pairs) < pc.pairs:
                self.notes.append(f"{self.src}-{self.tgt}: the parallel corpus gave {len(s.pairs)} usable pairs, "
                                  f"fewer than the {pc.pairs} asked (corpus rows: {s.available}; "
                                  f"dropped: {dict(s.dropped) or 'none'}).")
            self._parallel = s
        return self._parallel

    def monolingual_sample(self):
        """D_comp's sentences from ``completion.corpus`` (beyond the paper), drawn once per pair."""
        if self._monolingual is None:
            from sdrrl.compose import monolingual

            c, pc = self.cfg.completion, self.cfg.parallel
            asked = c.sentences or pc.pairs
            s = monolingual.sample_sentences(c.corpus, self.tgt, asked, self.cfg.seed, text_column=c.text_column,
                                             config=c.config, split=c.split, max_documents=c.max_documents,
                                             max_chars=c.max_chars, allow_fewer=pc.allow_fewer,
                                             resolve=self.cfg.path, language_check=self.cfg.language_check)
            if len(s.sentences) < asked:
                self.notes.append(f"{self.tgt}: the monolingual corpus gave {len(s.sentences)} usable sentences, "
                                  f"fewer than the {asked} asked ({s.documents} documents; "
                                  f"dropped: {dict(s.dropped) or 'none'}).")
            self._monolingual = s
        return self._monolingual

    def column(self, rows_key: str, field: str) -> list[str | None]:
        """A JSON-encoded column of the synth or filter rows, encoded once per pair."""
        key = (rows_key, field)
        if key not in self._columns:
            rows = self.synth.rows if rows_key == "synth" else self.filter_rows().rows
            self._columns[key] = [json_string(r.get(field)) for r in rows]
        return self._columns[key]

    def encoded_questions(self, spec: SubsetSpec, wrap: Callable[[str], str] | None) -> list:
        if wrap is not None:  # a template names the answer language: not shared between kinds
            return [json_string(wrap(q)) if q is not None else None for q in self.questions(spec)]
        key = (spec.kind == "ll", spec.question_translated, spec.code_switch)
        if key not in self._encoded:
            self._encoded[key] = [json_string(q) for q in self.questions(spec)]
        return self._encoded[key]

    def questions(self, spec: SubsetSpec) -> list:
        """Row-aligned questions of a subset (its rows: D_synth for ll, the filter file otherwise).

        Each question has ONE code-switched version, drawn once per side with its own seeded
        stream and used by every subset and method that holds it: D_LL and D_LT share the
        switched x, D_TL and D_TT the switched T(x), so cross-lingual pairs stay aligned.
        """
        from_synth = spec.kind == "ll"
        key = (from_synth, spec.question_translated, spec.code_switch)
        if key not in self._questions:
            rows = self.synth.rows if from_synth else self.filter_rows().rows
            field = layout.mt("x") if spec.question_translated else "x"
            plain = [q if isinstance(q := r.get(field), str) and q.strip() else None for r in rows]
            if spec.code_switch:
                by_id = self.switched_by_id(spec.question_translated)
                plain = [by_id[r["id"]] if q is not None else None for r, q in zip(rows, plain)]
            self._questions[key] = plain
        return self._questions[key]

    def switched_by_id(self, translated: bool) -> dict:
        """Row id -> code-switched question for one side (source x or translated x_mt)."""
        if translated not in self._switched:
            # the source side follows D_synth's order, the target side the filter file's
            rows = self.filter_rows().rows if translated else self.synth.rows
            field = layout.mt("x") if translated else "x"
            direction = "reverse" if translated else "forward"
            side = "tgt" if translated else "src"
            switch = codeswitch.CodeSwitcher(self.dictionary(direction), self.cfg.code_switch.p,
                                             f"{self.cfg.seed}-{self.src}-{self.tgt}-{side}-questions",
                                             lang=self.tgt if translated else self.src)
            out = {}
            for r in rows:
                q = r.get(field)
                if isinstance(q, str) and q.strip():
                    out[r["id"]] = switch(q)
            if not translated:  # filter rows missing from D_synth (not expected): same stream, after
                for r in self.filter_rows_if_any():
                    q = r.get(field)
                    if r["id"] not in out and isinstance(q, str) and q.strip():
                        out[r["id"]] = switch(q)
            self._switched[translated] = out
        return self._switched[translated]

    # --- entries ---------------------------------------------------------------------------
    def entry_config(self, spec: SubsetSpec) -> dict:
        cfg = {"seed": self.cfg.seed, **spec.describe()}
        t = self.cfg.templates
        if spec.kind == "mt":
            cfg.update(template=t.mt, parallel_pairs=self.cfg.parallel.pairs, parallel_corpus=self.cfg.parallel.corpus)
        elif spec.kind == "comp" and self.cfg.completion.corpus:
            c = self.cfg.completion
            cfg.update(template=t.comp, completion_corpus=c.corpus, completion_config=c.config,
                       completion_split=c.split, completion_text_column=c.text_column,
                       completion_sentences=c.sentences or self.cfg.parallel.pairs)
        elif spec.kind == "comp":
            cfg.update(template=t.comp, parallel_pairs=self.cfg.parallel.pairs, parallel_corpus=self.cfg.parallel.corpus)
        else:
            cfg["code_switch_p"] = self.cfg.code_switch.p if spec.code_switch else None
            if spec.template == "cit":
                cfg["template_text"] = t.cit
        return cfg

    def compose(self, entry: PlannedEntry) -> Composed:
        """``entry``'s dataset, composed from the loaded inputs (nothing is written)."""
        spec = entry.spec
        dropped: Counter = Counter()
        sources: list[dict] = []
        extra: dict = {}
        if spec.kind == "comp" and self.cfg.completion.corpus:
            mono = self.monolingual_sample()
            sources.append(dict(mono.source))
            extra["monolingual"] = mono.stats()
            template = self.cfg.templates.comp

            def rows_fn():
                pairs = [("", sentence) for sentence in mono.sentences]
                return list(parallel.comp_rows(pairs, self.src, self.tgt, template, self.cfg.seed, dropped))
            total, what = len(mono.sentences), "the monolingual sample"
        elif spec.kind in PARALLEL_SUBSETS:
            sample = self.parallel_sample()
            sources.append(dict(sample.source))
            extra["parallel"] = sample.stats()
            t = self.cfg.templates

            def rows_fn():
                if spec.kind == "mt":
                    return list(parallel.mt_rows(sample.pairs, self.src, self.tgt, t.mt))
                return list(parallel.comp_rows(sample.pairs, self.src, self.tgt, t.comp, self.cfg.seed, dropped))
            total, what = len(sample.pairs), "the parallel sample"
        else:
            read = self.synth if spec.kind == "ll" else self.filter_rows()
            rows = read.rows
            sources.extend(read.sources)
            if spec.code_switch:
                d = self.dictionary("reverse" if spec.question_translated else "forward")
                stats = d.stats()
                sources.append({"path": d.inverted_from or d.path, "sha256": d.sha256,
                                "inverted": bool(d.inverted_from), "words": stats["words"],
                                "lines": d.lines, "malformed_lines": d.malformed,
                                "malformed_examples": d.malformed_lines,
                                **({"language_check": d.language_check} if d.language_check else {})})
            wrap = None
            if spec.template == "cit":
                answer_lang = languages.get(self.tgt if spec.answer_translated else self.src).name
                template = self.cfg.templates.cit
                wrap = lambda q: template.format(question=q, answer_lang=answer_lang)  # noqa: E731
            questions = self.encoded_questions(spec, wrap)
            rows_key = "synth" if spec.kind == "ll" else "filter"

            def rows_fn():
                return transfer_lines(spec, rows, questions, lambda f: self.column(rows_key, f),
                                      dropped, self.rejection)
            total, what = len(rows), str(sources[0]["path"])
            if spec.kind != "ll" and self.synth is not None:
                missing = len(self.synth.rows) - len(rows)
                if missing > 0:
                    extra["rows_missing_from_filter_file"] = missing
        content = ("*", spec.key()) if spec.pair_independent else (self.tgt, spec.key())
        return Composed(entry, content, rows_fn, total, what, self.entry_config(spec), sources, dropped, **extra)


def compose_sft(cfg: ComposeConfig, entry: PlannedEntry) -> Composed:
    """SFT's dataset: D as it is (source language only), rows without an instruction or answer dropped."""
    source = _read_rows(layout.source_path(cfg.path(cfg.work_dir)), SourceRow)
    dropped: Counter = Counter()

    def rows_fn() -> list[dict]:
        kept = []
        for r in source.rows:
            if not (isinstance(r.get("instruction"), str) and r["instruction"].strip()):
                dropped["instruction empty"] += 1
            elif not (isinstance(r.get("output"), str) and r["output"].strip()):
                dropped["output empty"] += 1
            else:
                kept.append({"instruction": r["instruction"], "input": r.get("input") or "", "output": r["output"]})
        return kept
    return Composed(entry, ("sft", entry.name), rows_fn, len(source.rows), source.sources[0]["path"],
                    {"seed": cfg.seed}, source.sources, dropped)


@dataclass
class Outcome:
    """What composing and writing a group of entries gave: manifest entries, errors, notes; ``fatal``
    (problem, fix, path) when the disk filled up (sent back from a worker: a pickled exception loses fields)."""

    results: dict[str, ManifestEntry] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # dataset -> why it could not be made
    notes: list[str] = field(default_factory=list)
    fatal: tuple | None = None

    def add(self, other: "Outcome") -> None:
        if other.fatal:
            raise DiskFullError(*other.fatal)
        self.results.update(other.results)
        self.errors.extend(other.errors)
        self.failed.update(other.failed)
        self.notes.extend(other.notes)


def _compose_and_write(compose: Callable[[PlannedEntry], Composed], writer: _Writer,
                       entries: list[PlannedEntry]) -> Outcome:
    """Each entry composed and written; a failure is that entry's error (one message for the entries a
    missing input fails together), except a full disk, which stops the whole export."""
    outcome = Outcome()
    failed: dict[str, list[str]] = {}  # message -> datasets
    for entry in entries:
        try:
            outcome.results[entry.name] = writer.write(compose(entry))
        except DiskFullError:  # not a problem of this dataset: the whole export stops
            raise
        except SdrrlError as err:
            failed.setdefault(str(err), []).append(entry.name)
    outcome.errors = [msg if len(names) == 1 and names[0] in msg else f"{', '.join(names)}: {msg}"
                      for msg, names in failed.items()]
    outcome.failed = {name: msg for msg, names in failed.items() for name in names}
    return outcome


def _exported_at() -> tuple[str, bool]:
    """UTC time of the export, or ``SOURCE_DATE_EPOCH``'s (reproducible-builds convention: then the
    manifest holds no wall-clock values, so two exports of the same inputs are byte-identical)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), False
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch))), True
    except (ValueError, OverflowError, OSError):
        raise SdrrlError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds since 1970.",
                         "set it to an integer such as 1700000000, or unset it.") from None


def export(cfg: ComposeConfig, out_dir: str | os.PathLike, *, overwrite: bool = False,
           log: Callable[[str], None] = lambda s: None) -> Manifest:
    """Compose and export everything ``cfg`` asks for into ``out_dir``; returns the manifest written.

    The export is a transaction (:func:`sdrrl.staging.replace_dir`): everything is written into a
    stage beside ``out_dir``, which then replaces ``out_dir`` in one atomic step, so a killed, failed
    or disk-full export leaves the registry exactly as it was or exactly as the new export.
    Entries that could be built are written and registered even when others fail (the failures are
    then raised together, naming each dataset and why); when none could be built, or on any other
    error, ``out_dir`` is left as it was.
    """
    from sdrrl import staging

    cfg.validate()
    exported_at, reproducible = _exported_at()
    start = time.perf_counter()
    target = staging.resolve(out_dir)
    entries = plan(cfg)
    kept = f"{str(target)!r} was left exactly as it was (nothing in it changed)"
    stage = ""
    try:
        with staging.replace_dir(target, log=log) as out:
            stage = str(out)
            log(f"staging the new registry in {out}; it replaces {target} in one step when complete")
            outcome = _export_into(cfg, entries, out, log)
            errors, failed = outcome.errors, outcome.failed
            if not outcome.results:
                raise SdrrlError(f"None of the {len(entries)} dataset(s) could be composed, so {kept}: "
                                 + " | ".join(errors[:3]) + (" | ..." if len(errors) > 3 else ""),
                                 "each message above names its fix; run the export again once the inputs are fixed.")
            manifest = _manifest(cfg, entries, out, outcome, overwrite, exported_at)
            if not reproducible:
                manifest.seconds = round(time.perf_counter() - start, 2)
            manifest.write(out)
    except DiskFullError as err:
        raise SdrrlError(f"Out of disk space (or quota) while staging the new registry "
                         f"({Path(err.path or '?').name}); {kept}.",
                         "free space (df -h) or export to another disk, then run the same command again.") from None
    except SdrrlError as err:  # name the registry, not the stage that was just removed
        if stage and stage in str(err):
            raise type(err)(err.problem.replace(stage, str(target)),
                            err.fix.replace(stage, str(target)) if err.fix else err.fix) from None
        raise
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SdrrlError(f"Out of disk space (or quota) while staging the new registry; {kept}.",
                             "free space (df -h) or export to another disk, then run the same command again.") from None
        raise SdrrlError(f"Could not write the new registry ({err.strerror or err}: {err.filename or ''}); {kept}.",
                         "fix the cause (permissions, disk) and run the same command again.") from None
    for note in manifest.notes:
        log(f"note: {note}")
    if errors:
        done = len(manifest.last_export)
        stale = [name for name in failed if name in manifest.entries]  # kept its old file (_manifest)
        kept = (f"; {len(stale)} of them keep an earlier export's file in {target} ({', '.join(stale[:6])}"
                f"{' ...' if len(stale) > 6 else ''}), marked 'stale' in {MANIFEST}: the registry is mixed, and "
                "`sdrrl train` refuses them until an export of them succeeds") if stale else ""
        head = (f"{len(entries) - done} dataset(s) could not be composed (the other {done} "
                f"were exported to {target}){kept}: ")
        raise SdrrlError(head + " | ".join(errors[:3]) + (" | ..." if len(errors) > 3 else ""),
                         f"each message above names its fix; all are listed in {target / MANIFEST} ('errors'). "
                         "Run the export again once the inputs are fixed.")
    return manifest


def _export_into(cfg: ComposeConfig, entries: list[PlannedEntry], out: Path, log: Callable[[str], None]) -> Outcome:
    """Compose and write every entry into the stage ``out``: SFT and the datasets every target shares
    here, then one worker process per language pair (forked: the rows read here are shared, not copied)."""
    done = Outcome()
    writer = _Writer(out, cfg.duplicates)
    done.add(_compose_and_write(lambda e: compose_sft(cfg, e), writer, [e for e in entries if e.source_only]))

    pair_entries = [e for e in entries if not e.source_only]
    synth = None
    if any(e.spec.kind not in PARALLEL_SUBSETS for e in pair_entries):  # ll rows; switching order
        synth = _read_rows(layout.synth_path(cfg.path(cfg.work_dir)), SynthRow)

    # Datasets that are the same for every target (D_LL without switching) are composed once here.
    shared: dict[tuple, PlannedEntry] = {}
    for e in pair_entries:
        if e.spec.pair_independent and e.spec.key() not in shared:
            shared[e.spec.key()] = e
            composer = PairComposer(cfg, cfg.source, e.target, [e], synth)
            done.add(_compose_and_write(composer.compose, writer, [e]))
            done.notes.extend(composer.notes)

    todo = [e for e in pair_entries if e not in shared.values()]
    targets = sorted({e.target for e in todo}, key=list(cfg.targets).index)

    def run_pair(tgt: str) -> Outcome:
        mine = [e for e in todo if e.target == tgt]
        composer = PairComposer(cfg, cfg.source, tgt, mine, synth)
        try:
            outcome = _compose_and_write(composer.compose, _Writer(out, cfg.duplicates, writer.written), mine)
        except DiskFullError as err:
            return Outcome(notes=composer.notes, fatal=(err.problem, err.fix, err.path))
        outcome.notes.extend(composer.notes)
        return outcome

    workers = min(cfg.workers or os.cpu_count() or 1, len(targets)) if targets else 0
    if workers > 1 and hasattr(os, "fork"):
        from sdrrl.staging import fork_map

        outcomes = fork_map(run_pair, targets, workers)
    else:
        outcomes = map(run_pair, targets)
    for tgt, outcome in zip(targets, outcomes):
        done.add(outcome)
        log(f"composed {cfg.source}-{tgt}: {len(outcome.results)} dataset(s)")
    return done


def _manifest(cfg: ComposeConfig, entries: list[PlannedEntry], out: Path, outcome: Outcome, overwrite: bool,
              exported_at: str) -> Manifest:
    """Register the written datasets in ``out/dataset_info.json`` and merge the manifest: this export's
    entries replace those of the same name, the others (earlier exports) stay."""
    from sdrrl import __version__

    ordered = {e.name: outcome.results[e.name] for e in entries if e.name in outcome.results}
    update_dataset_info(out, [Entry(n, r.file) for n, r in ordered.items()], replace=overwrite)
    old = Manifest.read(out) or Manifest()
    for name, why in outcome.failed.items():  # an earlier export's file stays: say so in its entry
        if name in old.entries:
            old.entries[name] = dataclasses.replace(old.entries[name], stale={"failed_at": exported_at, "error": why})
    return Manifest(sdrrl_version=__version__, exported_at=exported_at, config=cfg.to_json(),
                    notes=outcome.notes, errors=outcome.errors, entries={**old.entries, **ordered},
                    last_export=list(ordered))
