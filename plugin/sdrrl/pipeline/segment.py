"""Split a text into translatable segments and reassemble the translations, keeping the layout.

Why: NLLB translates one sentence-like unit at a time (trained up to ~200 tokens) and drops line
breaks, so a multi-paragraph answer sent whole comes back as one run-on paragraph with its list
markers and code mangled. We therefore send the translator only prose:

- every line is its own unit, so line breaks and blank lines survive exactly;
- fenced code blocks (``` or ~~~) are kept verbatim, never sent to the translator;
- a line's leading indentation, list marker (``-``, ``*``, ``1.``, ``a)``, ``(i)``), heading hashes
  and quote marks, and its trailing whitespace are kept verbatim;
- a line without letters (numbers, rules, formulas) is kept verbatim;
- a line longer than ``max_tokens`` is split into sentences (and, for a single overlong sentence,
  at clause or word boundaries), and the pieces are rejoined with the original whitespace.

A :class:`Layout` is the text with the translatable segments cut out; :func:`reassemble` puts the
translations back. ``reassemble(split(t), split(t).segments) == t`` for every text ``t``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

_FENCE = re.compile(r"^\s*(```|~~~)")
_PREFIX = re.compile(
    r"^(\s*(?:(?:[-*+\u2022]|\d{1,3}[.)]|[a-z][)]|\([a-zA-Z0-9]{1,4}\)|#{1,6}|>)[ \t]+)*)"
)
# A sentence ends with . ! ? (or their CJK forms), optionally closing quotes/brackets, then space.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*(\s+)")
_CLAUSE_END = re.compile(r"(?<=[;:,])(\s+)")


def approx_tokens(text: str) -> int:
    """A tokenizer-free length estimate (subword tokens ~ 1.3 x words)."""
    return int(len(text.split()) * 1.3) + 1


@dataclass
class Layout:
    """A text cut into literal parts (kept) and segment indices (translated)."""

    parts: list[str | int] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)

    def add_literal(self, text: str) -> None:
        if not text:
            return
        if self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += text
        else:
            self.parts.append(text)

    def add_segment(self, text: str) -> None:
        self.parts.append(len(self.segments))
        self.segments.append(text)


def split(text: str, max_tokens: int = 200, count_tokens: Callable[[str], int] = approx_tokens) -> Layout:
    layout = Layout()
    in_code = False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        newline = "\n" if i < len(lines) - 1 else ""
        if _FENCE.match(line):
            in_code = not in_code
            layout.add_literal(line + newline)
            continue
        if in_code:
            layout.add_literal(line + newline)
            continue
        prefix = _PREFIX.match(line).group(1)
        rest = line[len(prefix):]
        body = rest.rstrip()
        trailing = rest[len(body):]
        layout.add_literal(prefix)
        if any(ch.isalpha() for ch in body):
            _add_prose(layout, body, max_tokens, count_tokens)
        else:
            layout.add_literal(body)
        layout.add_literal(trailing + newline)
    return layout


def _add_prose(layout: Layout, body: str, max_tokens: int, count_tokens: Callable[[str], int]) -> None:
    if count_tokens(body) <= max_tokens:
        layout.add_segment(body)
        return
    for piece, sep in _cut(body, _SENTENCE_END):
        if count_tokens(piece) > max_tokens:
            for sub, subsep in _cut(piece, _CLAUSE_END):
                if count_tokens(sub) > max_tokens:
                    _add_word_chunks(layout, sub, max_tokens, count_tokens)
                else:
                    layout.add_segment(sub)
                layout.add_literal(subsep)
        else:
            layout.add_segment(piece)
        layout.add_literal(sep)


def split_sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end (. ! ? and their CJK forms) that whitespace follows,
    the whitespace between two sentences dropped."""
    return [piece for piece, _ in _cut(text, _SENTENCE_END)]


def _cut(text: str, pattern: re.Pattern) -> list[tuple[str, str]]:
    """Pieces of ``text`` with the whitespace that followed each (pieces rejoin to ``text``)."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append((text[pos:m.start(1)], m.group(1)))
        pos = m.end(1)
    if pos < len(text):
        out.append((text[pos:], ""))
    return out


def _add_word_chunks(layout: Layout, text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> None:
    """Last resort for one overlong clause: cut at spaces into chunks that fit."""
    words = re.split(r"( +)", text)  # keeps the spaces
    chunk = ""
    for w in words:
        if chunk and not w.isspace() and count_tokens(chunk + w) > max_tokens:
            body = chunk.rstrip(" ")
            layout.add_segment(body)
            layout.add_literal(chunk[len(body):])
            chunk = ""
        chunk += w
    if chunk:
        body = chunk.rstrip(" ")
        if body:
            layout.add_segment(body)
        layout.add_literal(chunk[len(body):])


# Japanese (and Chinese) put no space between sentences or clauses: CJK punctuation, kana, Han
# ideographs and fullwidth forms. (Korean Hangul is written with spaces and is not here.)
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _tight(before: str, after: str) -> bool:
    return bool(before and after and _CJK.match(before[-1]) and _CJK.match(after[0]))


def reassemble(layout: Layout, translations: Sequence[str], cjk_tight: bool = False) -> str:
    """Put the translations back into the layout. With ``cjk_tight`` (the translate stage), the
    spaces that separated the pieces (sentences, clauses) of a split line are dropped
    between two translations that meet in Japanese/Chinese script (e.g. 。 then 文): they were
    the source language's spacing, not the target's."""
    if len(translations) != len(layout.segments):
        raise ValueError(f"{len(translations)} translations for {len(layout.segments)} segments")
    parts = layout.parts
    out: list[str] = []
    for k, p in enumerate(parts):
        if not isinstance(p, str):
            out.append(translations[p].strip())
        elif (cjk_tight and 0 < k < len(parts) - 1 and isinstance(parts[k - 1], int)
              and isinstance(parts[k + 1], int) and "\n" not in p and not p.strip()
              and _tight(translations[parts[k - 1]].strip(), translations[parts[k + 1]].strip())):
            continue  # a separator inside one line (between two pieces of a split line)
        else:
            out.append(p)
    return "".join(out)
