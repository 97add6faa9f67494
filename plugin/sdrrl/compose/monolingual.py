"""D_comp from monolingual target-language text (beyond the paper: its Limitations section).

The paper builds D_comp from the target side of the parallel corpus (section 3.2.4). With
``completion.corpus`` set, the sentences come from a monolingual corpus instead:

- a local ``.txt`` file: one document per line;
- a local ``.jsonl`` file: one JSON object per line, the document in ``completion.text_column``;
- anything else: a ``datasets`` dataset (hub id such as ``wikimedia/wikipedia`` with
  ``completion.config: 20231101.{iso1}``, or a local folder of data files), read as a stream, the
  first ``completion.max_documents`` documents of ``completion.split``; a missing name that can only
  be a path (:func:`sdrrl.hub.looks_local`) is "not found", never sent to the hub.

(A stream's first documents, not a random draw of them: 10,000 Wikipedia articles hold far more
than the 1,000 sentences asked, and streaming them costs a fraction of downloading the whole dump.)
``corpus`` and ``config`` may hold ``{tgt}`` (ISO 639-3) and ``{iso1}`` (two-letter) placeholders.
Documents are split into lines, then into sentences (the pipeline's sentence rule of
``pipeline/segment.py`` for ``. ! ?`` followed by a space, plus ``。！？`` and Khmer ``។ ៕``, which
need no space after them; in Thai, a space ends a sentence); sentences that are too short to cut (one word) or longer than
``completion.max_chars`` are dropped and counted. A seeded random draw of ``completion.sentences``
distinct sentences (default: ``parallel.pairs``, the paper's 1,000) then goes through the same cut
rule and template as the paper's D_comp (:func:`sdrrl.compose.parallel.comp_rows`).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from sdrrl import hub, languages
from sdrrl.errors import SdrrlError
from sdrrl.io import file_sha256, read_lines
from sdrrl.pipeline.segment import split_sentences

# Sentence ends that take no space after them (Japanese/Chinese full stops, Khmer khan and bariyoosan).
_NOSPACE_END = re.compile(r"(?<=[\u3002\uff01\uff1f\u17d4\u17d5])[\"'\u201d\u2019)\]\u300d\u300f]*\s*")


@dataclass
class MonolingualSample:
    sentences: list[str]
    source: dict  # where they came from: path + sha256, or dataset id/config/split/fingerprint
    asked: int
    documents: int
    available: int  # usable distinct sentences found
    dropped: Counter = field(default_factory=Counter)
    language_check: dict | None = None  # CLD3's counts (sdrrl.compose.langcheck)

    def stats(self) -> dict:
        out = {**self.source, "asked": self.asked, "documents": self.documents, "sentences_available": self.available,
               "used": len(self.sentences), "dropped": dict(self.dropped)}
        if self.language_check is not None:
            out["language_check"] = self.language_check
        return out


# Thai marks the end of a sentence (or clause) with a space, not a full stop.
_SPACE_ENDS_SENTENCE = frozenset({"tha"})


def sentences(document: str, lang: str | None = None) -> list[str]:
    """A document cut into lines, then sentences; whitespace around each is stripped. For Thai
    (``lang="tha"``) a space ends a sentence too."""
    if lang in _SPACE_ENDS_SENTENCE:
        return [s for line in document.splitlines() for s in line.split()]
    out: list[str] = []
    for line in document.splitlines():
        for piece in split_sentences(line):
            out.extend(s.strip() for s in _NOSPACE_END.split(piece))
    return [s for s in out if s]


def _local_documents(path: Path, text_column: str) -> Iterator[str]:
    if path.suffix in (".jsonl", ".json"):
        from sdrrl.io import read_jsonl

        for n, rec in enumerate(read_jsonl(path), 1):
            if text_column not in rec:
                raise SdrrlError(f"{path}: row {n} has no {text_column!r} field (found: {sorted(rec)}).",
                                 "set completion.text_column to the field holding the text.")
            if isinstance(rec[text_column], str):
                yield rec[text_column]
    else:
        for _lineno, line in read_lines(path):
            yield line.rstrip("\r\n")


def _dataset_documents(name: str, config: str | None, split: str, text_column: str,
                       max_documents: int) -> tuple[Iterator[str], dict]:
    try:
        from datasets import load_dataset

        ds = load_dataset(name, config, split=split, streaming=True)
        first = next(iter(ds.take(1)), None)
    except Exception as err:  # offline, unknown id, missing config/split: all mean "cannot get it"
        raise SdrrlError(f"Cannot load the monolingual corpus {name!r} (config {config!r}, split {split!r}): {err}.",
                         "check completion.corpus/config/split (a hub dataset id, a local folder of data files, "
                         "or a .txt/.jsonl file); a hub dataset needs network access once.") from None
    if first is not None and text_column not in first:
        raise SdrrlError(f"The monolingual corpus {name!r} has no column {text_column!r} "
                         f"(columns: {sorted(first)}).", "set completion.text_column to the text column.")
    docs = (r[text_column] for r in ds.take(max_documents) if isinstance(r.get(text_column), str))
    return docs, {"corpus": name, "config": config, "split": split, "text_column": text_column,
                  "max_documents": max_documents}


NOT_FOUND_FIX = ("set completion.corpus to an existing file (it may contain {tgt} or {iso1}), or to a dataset "
                 "id.")


def corpus_name(template: str, tgt: str) -> str:
    """``completion.corpus`` (or ``.config``) for one target: ``{tgt}`` and ``{iso1}`` filled in."""
    return template.format(tgt=tgt, iso1=languages.get(tgt).iso1)


def sample_sentences(corpus: str, tgt: str, asked: int, seed: int, *, text_column: str = "text",
                     config: str | None = None, split: str = "train", max_documents: int = 10_000,
                     max_chars: int = 500, allow_fewer: bool = True,
                     resolve: Callable[[str], Path] = Path, language_check=None) -> MonolingualSample:
    """Draw ``asked`` distinct usable sentences of the corpus in a seeded random order; with
    ``language_check`` (a ``LanguageCheckConfig``), checked to be in ``tgt``."""
    name = corpus_name(corpus, tgt)
    config = corpus_name(config, tgt) if config else None
    path = resolve(name)
    if path.is_file():
        if path.suffix not in (".txt", ".jsonl", ".json"):
            raise SdrrlError(f"Monolingual corpus {str(path)!r}: unknown file type {path.suffix!r}.",
                             "use a .txt file (one document per line) or .jsonl (one JSON object per line).")
        docs: Iterator[str] = _local_documents(path, text_column)
        source = {"corpus": str(path), "sha256": file_sha256(path),
                  "text_column": text_column if path.suffix != ".txt" else None}
    elif hub.looks_local(name) and not path.is_dir():
        raise SdrrlError(f"Monolingual corpus not found: {str(path)!r} (for {tgt}).", NOT_FOUND_FIX)
    else:
        local_dir = path.is_dir()
        docs, source = _dataset_documents(str(path) if local_dir else name, config, split, text_column, max_documents)
    from sdrrl.compose.parallel import split_prefix

    dropped: Counter = Counter()
    candidates: list[str] = []
    seen: set[str] = set()
    n_docs = 0
    for doc in docs:
        if n_docs >= max_documents:
            break
        n_docs += 1
        for s in sentences(doc, tgt):
            if len(s) > max_chars:
                dropped["sentence longer than completion.max_chars"] += 1
            elif s in seen:
                dropped["duplicate sentence"] += 1
            else:
                seen.add(s)
                candidates.append(s)
    if "sha256" not in source:
        source["documents_read"] = n_docs
    random.Random(f"{seed}-{tgt}-monolingual").shuffle(candidates)
    found: list[str] = []  # checked in the drawn order (segmenting every candidate is slow for Khmer)
    probe = random.Random(0)
    for s in candidates:
        if len(found) >= asked:
            break
        if split_prefix(s, probe, tgt) is None:
            dropped["sentence too short to split"] += 1
        else:
            found.append(s)
    sample = MonolingualSample(found, source, asked, n_docs, len(candidates), dropped)
    if not found:
        raise SdrrlError(f"The monolingual corpus for {tgt} ({source['corpus']}) has no usable sentences "
                         f"({n_docs} documents; dropped: {dict(dropped) or 'none'}).",
                         "use a corpus of running text in the target language (one document per line or row).")
    if len(found) < asked and not allow_fewer:
        raise SdrrlError(f"The monolingual corpus for {tgt} has {len(found)} usable sentences, fewer than the "
                         f"{asked} asked (completion.sentences).",
                         "use a bigger corpus, lower completion.sentences, or set parallel.allow_fewer: true.")
    if language_check is not None and language_check.enabled:
        from sdrrl.compose import langcheck

        sample.language_check = langcheck.check(
            found, tgt, language_check, f"The monolingual corpus {source['corpus']} (for {tgt})",
            "give each target its own corpus (completion.corpus with {tgt} or {iso1}); language_check.enabled: "
            "false skips this check.")
    return sample
