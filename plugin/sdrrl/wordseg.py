"""Word segmentation for the composer: where a text's words are, in any script of the language table.

Languages written with spaces between words are cut at runs of Unicode word characters (and
combining marks), a regular expression. Japanese, Thai and Khmer are written without spaces, so a
whole question would be one "word"; the language table names a real segmenter for them
(``Language.segmenter``):

| segmenter    | languages | library (all ship their model in the wheel; no download at run time) |
|--------------|-----------|------------------------------------------------------------------------|
| ``space``    | the rest  | none (regex)                                                           |
| ``mecab``    | Japanese  | fugashi + unidic-lite (MeCab with UniDic: the units MUSE's ja entries use) |
| ``newmm``    | Thai      | pythainlp, dictionary-based maximal matching (newmm)                    |
| ``khmernltk``| Khmer     | khmer-nltk (a CRF word segmenter)                                      |

:func:`split_words` returns the text as alternating separators and words (words at odd positions,
like ``re.split`` with a capturing group), and ``"".join`` of the parts is the text byte for byte:
a segmenter's tokens are located in the original text, never re-joined, so nothing is inserted
between words that had no space between them. Inside each segmenter token, words are still runs of
word characters (punctuation a segmenter glued to a word stays outside the word).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Callable

from sdrrl.errors import SdrrlError


def _combining_marks() -> str:
    """A regex class body of the combining marks (Unicode category M) of the BMP. ``\\w`` does not
    match them, yet Thai and Khmer vowel and tone signs (and decomposed accents) are marks inside
    words: without them ``ไม่`` would be cut into ``ไม`` + ``่``. ~8 ms, once."""
    import unicodedata

    ranges: list[list[int]] = []
    for c in range(0x300, 0x10000):
        if unicodedata.category(chr(c)).startswith("M"):
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


WORD_CHARS = r"[\w" + _combining_marks() + "]+"
WORD = re.compile(WORD_CHARS)
_SPLIT = re.compile("(" + WORD_CHARS + ")")  # keeps the separators

SEGMENTERS = ("space", "mecab", "newmm", "khmernltk")


def _mecab() -> Callable[[str], list[str]]:
    try:
        import fugashi
        import unidic_lite
    except ImportError as err:
        raise SdrrlError(f"Japanese word segmentation needs fugashi and unidic-lite ({err}).",
                         "pip install fugashi unidic-lite (see constraints.txt for the tested versions).") from None
    dicdir = unidic_lite.DICDIR
    # GenericTagger: the plain Tagger goes looking for the full `unidic` package first, which may be
    # installed without its (separately downloaded) dictionary.
    tagger = fugashi.GenericTagger(f'-r "{os.path.join(dicdir, "mecabrc")}" -d "{dicdir}" -b 50000')
    return lambda text: [node.surface for node in tagger(text)]


def _newmm() -> Callable[[str], list[str]]:
    try:
        from pythainlp.tokenize import word_tokenize
    except ImportError as err:
        raise SdrrlError(f"Thai word segmentation needs pythainlp ({err}).",
                         "pip install pythainlp (see constraints.txt for the tested version).") from None
    return lambda text: word_tokenize(text, engine="newmm", keep_whitespace=False)


def _khmernltk() -> Callable[[str], list[str]]:
    import logging

    try:
        # khmer-nltk logs an INFO line on import to its own handler; keep the user's terminal quiet
        logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
        from khmernltk import word_tokenize
    except ImportError as err:
        raise SdrrlError(f"Khmer word segmentation needs khmer-nltk ({err}).",
                         "pip install khmer-nltk (see constraints.txt for the tested version).") from None
    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    return lambda text: word_tokenize(text, return_tokens=True)


_LOADERS = {"mecab": _mecab, "newmm": _newmm, "khmernltk": _khmernltk}


@lru_cache(maxsize=None)
def tokenizer(name: str) -> Callable[[str], list[str]] | None:
    """The segmenter's tokenize function (loaded once per process), None for ``space``."""
    if name == "space":
        return None
    if name not in _LOADERS:
        raise SdrrlError(f"Unknown word segmenter {name!r}.", f"use one of: {', '.join(SEGMENTERS)}.")
    return _LOADERS[name]()


def segmenter_of(lang: str | None) -> str:
    if lang is None:
        return "space"
    from sdrrl import languages

    return languages.get(lang).segmenter


def _regex_parts(text: str) -> list[str]:
    return _SPLIT.split(text)


def split_words(text: str, lang: str | None = None) -> list[str]:
    """``text`` as [separator, word, separator, word, ..., separator]; ``"".join`` gives ``text``.

    Separators may be empty (two words of a Japanese sentence touch)."""
    tok = tokenizer(segmenter_of(lang))
    if tok is None or not text:
        return _regex_parts(text)
    parts = [""]
    pos = 0

    def add_region(region: str) -> None:
        sub = _SPLIT.split(region)  # [sep, word, sep, ..., sep]
        parts[-1] += sub[0]
        parts.extend(sub[1:])

    for token in tok(text):
        if not token or not token.strip():
            continue
        at = text.find(token, pos)
        if at < 0:  # a segmenter that normalised the token: leave that stretch to the regex
            continue
        if at > pos:
            add_region(text[pos:at])  # whatever lies between two tokens (spaces, skipped chars)
        # the token itself: its word-character runs are words, the rest separators; a new token
        # starts a new word even when nothing separates it from the previous one
        # (the parts always end with a separator, empty between two touching words)
        add_region(token)
        pos = at + len(token)
    if pos < len(text):
        add_region(text[pos:])
    return parts


def words(text: str, lang: str | None = None) -> list[str]:
    return split_words(text, lang)[1::2]


def word_ends(text: str, lang: str | None = None) -> list[int]:
    """Character offsets just after each word."""
    ends, at = [], 0
    for i, part in enumerate(split_words(text, lang)):
        at += len(part)
        if i % 2:
            ends.append(at)
    return ends
