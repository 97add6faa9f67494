"""D_mt and D_comp (paper section 3.2.4, Table 1) from a small parallel corpus.

The corpus is OPUS-100 by default (Helsinki-NLP/opus-100, appendix A: 1,000 pairs per language),
or a local file: TSV (``source<TAB>target`` per line) or JSON Lines (``{"eng": ..., "ind": ...}`` or
OPUS-style ``{"translation": {"en": ..., "id": ...}}``). Pairs are drawn in a seeded random order;
unusable pairs are skipped and counted.

A TSV's first line is a header when both its fields are language names or codes (any code system of
the language table: ``eng``, ``en``, ``eng_Latn``, ``English``) or column words (``source``,
``target``, ...): skipped when it names this pair's languages in this order, refused when it names
others (an eng-ind file given for eng-ces says so in its header). Each side of the drawn pairs is then
language-checked (:mod:`sdrrl.compose.langcheck`).
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sdrrl import languages, wordseg
from sdrrl.errors import SdrrlError
from sdrrl.io import file_sha256, read_lines

OPUS100 = "Helsinki-NLP/opus-100"
_NONSPACE = re.compile(r"\S+")


@dataclass
class ParallelSample:
    pairs: list[tuple[str, str]]
    source: dict  # where the pairs came from, with a content hash
    asked: int
    available: int  # rows in the corpus
    dropped: Counter = field(default_factory=Counter)
    language_check: dict | None = None  # per side: CLD3's counts (sdrrl.compose.langcheck)

    def stats(self) -> dict:
        out = {**self.source, "asked": self.asked, "available": self.available, "used": len(self.pairs),
               "dropped": dict(self.dropped)}
        if self.language_check is not None:
            out["language_check"] = self.language_check
        return out


def _read_local(path: Path, src: str, tgt: str, dropped: Counter) -> tuple[list[tuple[str, str]], str | None]:
    """The pairs of a local file, and its TSV header line (None: it has none)."""
    s1, t1 = languages.get(src).iso1, languages.get(tgt).iso1
    rows: list[tuple[str, str]] = []
    header = None
    if path.suffix in (".jsonl", ".json"):
        for lineno, line in read_lines(path):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise SdrrlError(f"{path}:{lineno}: not valid JSON ({err.msg}).",
                                 "fix or remove that line.") from None
            rec = rec.get("translation", rec) if isinstance(rec, dict) else {}
            s, t = rec.get(src, rec.get(s1)), rec.get(tgt, rec.get(t1))
            if not isinstance(s, str) or not isinstance(t, str):
                dropped[f"no {src}/{s1} and {tgt}/{t1} strings"] += 1
                continue
            rows.append((s, t))
    else:
        first = True
        for lineno, line in read_lines(path):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if first and _is_header(parts, path, src, tgt):
                first, header = False, line
                continue
            first = False
            if len(parts) != 2:
                dropped["malformed line"] += 1
                continue
            rows.append((parts[0], parts[1]))
    return rows, header


# Column words a TSV header may hold instead of language codes.
HEADER_WORDS = frozenset({"source", "target", "src", "tgt", "sentence", "translation", "text", "input", "output"})


def _is_header(parts: list[str], path: Path, src: str, tgt: str) -> bool:
    """Whether a TSV's first line is a header (module docstring); raise when it names another pair."""
    fields = [p.strip() for p in parts]
    named = [languages.named(f) for f in fields]
    if len(fields) != 2 or not all(n or f.casefold() in HEADER_WORDS for f, n in zip(fields, named)):
        return False
    said = [n.iso if n else None for n in named]
    if any(a and a != b for a, b in zip(said, (src, tgt))):
        raise SdrrlError(f"{path}: its header line names the languages {' and '.join(fields)} "
                         f"({'-'.join(x or '?' for x in said)}), but it is read as the {src}-{tgt} corpus "
                         f"(source column {src}, target column {tgt}).",
                         "point parallel.corpus at the file of this pair (a path with {src} and {tgt} gives each "
                         "pair its own file), or fix the header if the columns are right.")
    return True


def _read_opus100(src: str, tgt: str, split: str):
    lang = languages.get(tgt)
    if src != "eng" or not lang.opus100:
        raise SdrrlError(f"OPUS-100 pairs every language with English only; no corpus for {src}-{tgt}.",
                         "set parallel.corpus to a local TSV/JSONL file for this pair.")
    try:
        from datasets import load_dataset

        ds = load_dataset(OPUS100, lang.opus100, split=split)
    except Exception as err:  # offline, missing config, network: all mean "cannot get it"
        raise SdrrlError(f"Cannot load {OPUS100} config {lang.opus100!r} split {split!r}: {err}.",
                         "download it once with network access (it is then cached), or set "
                         "parallel.corpus to a local TSV/JSONL path.") from None
    a, b = languages.get(src).iso1, lang.iso1

    class _Rows:  # index lazily: OPUS-100 train has up to 1M rows, we need ~1,000
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            tr = ds[i]["translation"]
            return tr.get(a), tr.get(b)

    fp = getattr(ds, "_fingerprint", "")
    return _Rows(), {"corpus": OPUS100, "config": lang.opus100, "split": split, "fingerprint": fp}


def sample_pairs(corpus: str, src: str, tgt: str, asked: int, seed: int, *, split: str = "train",
                 allow_fewer: bool = True, resolve=lambda p: Path(p), language_check=None) -> ParallelSample:
    """Draw ``asked`` usable pairs in a seeded random order; fewer is an error or a recorded note.
    ``language_check`` (a ``LanguageCheckConfig``): each side of the sample is language-checked."""
    dropped: Counter = Counter()
    if corpus == "opus100":
        rows, source = _read_opus100(src, tgt, split)
    else:
        path = resolve(corpus.format(src=src, tgt=tgt))
        if not path.is_file():
            raise SdrrlError(f"Parallel corpus not found: {str(path)!r} (for {src}-{tgt}).",
                             "set parallel.corpus to 'opus100' or to an existing .tsv/.jsonl file "
                             "(it may contain {src} and {tgt}).")
        rows, header = _read_local(path, src, tgt, dropped)
        source = {"corpus": str(path), "sha256": file_sha256(path), **({"header": header} if header else {})}
    order = list(range(len(rows)))
    random.Random(f"{seed}-{src}-{tgt}-parallel").shuffle(order)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i in order:
        if len(pairs) >= asked:
            break
        s, t = rows[i]
        s, t = (s or "").strip(), (t or "").strip()
        if not s or not t:
            dropped["empty side"] += 1
        elif s == t:
            dropped["identical sides (untranslated)"] += 1
        elif t in seen:
            dropped["duplicate target sentence"] += 1
        else:
            seen.add(t)
            pairs.append((s, t))
    sample = ParallelSample(pairs, source, asked, len(rows), dropped)
    if not pairs:
        raise SdrrlError(f"The parallel corpus for {src}-{tgt} ({source['corpus']}) has no usable pairs "
                         f"({len(rows)} rows; dropped: {dict(dropped) or 'none'}).",
                         "use a corpus with tab-separated source/target sentences.")
    if len(pairs) < asked and not allow_fewer:
        raise SdrrlError(f"The parallel corpus for {src}-{tgt} has {len(pairs)} usable pairs, fewer than "
                         f"the {asked} asked (parallel.pairs); dropped: {dict(dropped) or 'none'}.",
                         "use a bigger corpus, lower parallel.pairs, or set parallel.allow_fewer: true.")
    if language_check is not None and language_check.enabled:
        from sdrrl.compose import langcheck

        fix = ("give each pair its own corpus (parallel.corpus with {src} and {tgt}), with the source language in "
               "the first column and the target language in the second; language_check.enabled: false skips "
               "this check.")
        sample.language_check = {
            side: langcheck.check((p[i] for p in pairs), lang, language_check,
                                  f"The {side} side of the parallel corpus {source['corpus']} (for {src}-{tgt})", fix)
            for i, (side, lang) in enumerate((("source", src), ("target", tgt)))}
    return sample


def mt_rows(pairs: list[tuple[str, str]], src: str, tgt: str, template: str) -> Iterator[dict]:
    """Both translation directions for every pair (Table 1, first block)."""
    s_name, t_name = languages.get(src).name, languages.get(tgt).name
    forward = template.format(from_lang=s_name, to_lang=t_name)
    backward = template.format(from_lang=t_name, to_lang=s_name)
    for s, t in pairs:
        yield {"instruction": forward, "input": s, "output": t}
        yield {"instruction": backward, "input": t, "output": s}


def split_prefix(sentence: str, rng: random.Random, lang: str | None = None) -> str | None:
    """A proper, non-empty prefix cut at a random word boundary; None when the sentence is too
    short to split. Words are space-separated runs, or, for a language written without spaces
    (``lang`` with a word segmenter in the language table: Japanese, Thai, Khmer), the segmenter's
    words (the cut falls right after one of them); a single word is cut between two letters."""
    if lang is not None and wordseg.segmenter_of(lang) != "space":
        ends = wordseg.word_ends(sentence, lang)[:-1]
        if ends:
            return sentence[:ends[rng.randint(0, len(ends) - 1)]]
    words = list(_NONSPACE.finditer(sentence))
    if len(words) >= 2:
        k = rng.randint(1, len(words) - 1)
        return sentence[:words[k - 1].end()]
    # between letters, not inside one: never before a combining mark (Thai, Khmer vowel and tone
    # signs) nor after a Khmer coeng (U+17D2, which joins the next consonant below it)
    cuts = [i for i in range(1, len(sentence))
            if not unicodedata.category(sentence[i]).startswith("M") and sentence[i - 1] != "\u17d2"]
    if cuts:
        return sentence[:cuts[rng.randint(0, len(cuts) - 1)]]
    return None


def comp_rows(pairs: list[tuple[str, str]], src: str, tgt: str, template: str, seed: int,
              dropped: Counter) -> Iterator[dict]:
    """Target sentences split at random positions; the answer is the whole sentence (Table 1)."""
    instruction = template.format(lang=languages.get(tgt).name)
    rng = random.Random(f"{seed}-{src}-{tgt}-comp")
    for _, t in pairs:
        prefix = split_prefix(t, rng, tgt)
        if prefix is None:
            dropped["target sentence too short to split"] += 1
            continue
        yield {"instruction": instruction, "input": prefix, "output": t}
