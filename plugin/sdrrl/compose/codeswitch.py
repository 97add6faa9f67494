"""Token-level code-switching of questions (paper section 3.2.3) with MUSE-format dictionaries.

Each word token of a question that the bilingual dictionary covers is replaced by its translation
with probability ``p``; everything else (spacing, punctuation, newlines) is kept byte for byte.
Responses and template text never pass through here: the composer calls this on bare questions
only, before any template wraps them.

Words are found by :mod:`sdrrl.wordseg` for the question's language: maximal runs of Unicode
word characters and combining marks (Thai, Khmer signs) for scripts written with spaces, and the
language table's word segmenter for those without (Japanese: MeCab/UniDic, Thai: newmm, Khmer:
khmer-nltk), so their questions are switched at p of their dictionary-covered words too. Words are
looked up lower-cased (MUSE dictionaries are lower-case); a replacement takes the capitalisation
of the word it replaces. Nothing is inserted around a replacement: Japanese words that touched
still touch (``日本のcapitalはどこ``).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from sdrrl import wordseg
from sdrrl.errors import SdrrlError


WORD = wordseg.WORD
_SPLIT = wordseg._SPLIT  # keeps the separators: switched text keeps its layout


@dataclass
class Dictionary:
    """word -> translation(s); a word with several translations picks one at random per use."""

    table: dict[str, str | tuple[str, ...]]
    path: str
    sha256: str = ""
    lines: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)  # first few line numbers
    identical: int = 0  # "word word" pairs: replacing a word by itself switches nothing
    inverted_from: str | None = None
    language_check: dict | None = None  # per side: CLD3's counts (sdrrl.compose.langcheck)

    def sides(self) -> tuple[list[str], list[str]]:
        """The words of each side: the file's first column (lower-cased) and its second."""
        second = [t for tr in self.table.values() for t in ((tr,) if isinstance(tr, str) else tr)]
        return list(self.table), second

    def stats(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "lines": self.lines, "words": len(self.table),
                "malformed_lines": self.malformed, "malformed_examples": self.malformed_lines,
                "identical_pairs_skipped": self.identical, "inverted_from": self.inverted_from}

    def inverted(self) -> "Dictionary":
        pairs: dict[str, list[str]] = {}
        for word, tr in self.table.items():
            for t in (tr,) if isinstance(tr, str) else tr:
                pairs.setdefault(t.lower(), []).append(word)  # keys are looked up lower-cased
        table = {k: v[0] if len(v) == 1 else tuple(v) for k, v in pairs.items()}
        return Dictionary(table, self.path, self.sha256, self.lines, self.malformed,
                          list(self.malformed_lines), self.identical, inverted_from=self.path,
                          language_check=self.language_check)


def load_muse(path: str | Path, max_malformed_fraction: float = 0.05) -> Dictionary:
    """Read a MUSE dictionary: one ``source target`` pair per line, separated by a space or tab.

    A line that is not exactly two fields is skipped and counted; more than
    ``max_malformed_fraction`` of them (or no usable pair at all) stops with a message.
    """
    p = Path(path)
    if not p.is_file():
        raise SdrrlError(f"Bilingual dictionary not found: {str(p)!r}.",
                         "point code_switch.dictionaries at a folder of MUSE files named like en-id.txt "
                         "(MUSE: https://github.com/facebookresearch/MUSE#ground-truth-bilingual-dictionaries).")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a BOM (Windows editors) is not part of the first word
    except UnicodeDecodeError as err:
        raise SdrrlError(f"{p} is not UTF-8 ({err.reason} at byte {err.start}).",
                         "re-encode the dictionary as UTF-8.") from None
    pairs: dict[str, list[str]] = {}
    lines = malformed = identical = 0
    bad: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        lines += 1
        parts = line.split()
        if len(parts) != 2:
            malformed += 1
            if len(bad) < 10:
                bad.append(lineno)
            continue
        src, tgt = parts[0].lower(), parts[1]
        if src == tgt.lower():
            identical += 1
            continue
        known = pairs.setdefault(src, [])
        if tgt not in known:
            known.append(tgt)
    if lines and malformed / lines > max_malformed_fraction:
        raise SdrrlError(
            f"{p}: {malformed} of {lines} lines are malformed (not 'source target'), e.g. line(s) "
            f"{', '.join(map(str, bad[:5]))}; more than the {max_malformed_fraction:.0%} tolerated.",
            "fix the file (one word pair per line, separated by a space or tab), or raise "
            "code_switch.max_malformed_fraction to skip such lines.")
    if not pairs:
        raise SdrrlError(f"{p} holds no usable word pairs ({lines} lines, {malformed} malformed).",
                         "use a MUSE-format dictionary: one 'source target' pair per line.")
    table = {k: v[0] if len(v) == 1 else tuple(v) for k, v in pairs.items()}
    return Dictionary(table, str(p), hashlib.sha256(data).hexdigest(), lines, malformed, bad, identical)


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class CodeSwitcher:
    """Applies Eq. 5 to a stream of questions with one seeded random stream (reproducible)."""

    def __init__(self, dictionary: Dictionary, p: float, seed: int | str, lang: str | None = None):
        """``lang`` (ISO 639-3) is the language of the questions: it chooses the word segmenter."""
        self.table = dictionary.table
        self.lang = lang
        self._split = (wordseg._SPLIT.split if wordseg.segmenter_of(lang) == "space"
                       else lambda text: wordseg.split_words(text, lang))
        self.p = p
        self.rng = random.Random(seed)
        self.covered_tokens = 0
        self.replaced = 0
        self._log_keep = math.log(1.0 - p) if 0.0 < p < 1.0 else 0.0
        self._skip = self._gap() if p > 0.0 else 0

    def covered(self, text: str) -> tuple[list[str], list[int]]:
        """``text`` split into separators and words (words at odd positions) and the positions
        of the dictionary-covered words. Kept by the caller so several subsets switch the same
        question without tokenising it again."""
        parts = self._split(text)
        table = self.table
        return parts, [i for i in range(1, len(parts), 2) if parts[i].lower() in table]

    def _gap(self) -> int:
        """Covered tokens to leave alone before the next replacement: a geometric draw, which is
        the same i.i.d. Bernoulli(p) decision per token, with one random number per replacement
        instead of one per token."""
        if self.p >= 1.0:
            return 0
        return int(math.log(1.0 - self.rng.random()) / self._log_keep)

    def __call__(self, text: str, covered: tuple[list[str], list[int]] | None = None) -> str:
        if self.p <= 0.0:
            return text
        parts, positions = covered if covered is not None else self.covered(text)
        n = len(positions)
        self.covered_tokens += n
        i = self._skip
        if i >= n:
            self._skip = i - n
            return text
        rng, table = self.rng, self.table
        out = list(parts)
        while i < n:
            j = positions[i]
            word = parts[j]
            tr = table[word.lower()]
            new = tr if isinstance(tr, str) else tr[rng.randrange(len(tr))]
            out[j] = _match_case(word, new)
            self.replaced += 1
            if j > 1 and not parts[j - 1]:  # touching words (a segmented script): see _spaced
                _space_between(out, j - 2, j)
            if j + 2 < len(out) and not parts[j + 1]:
                _space_between(out, j, j + 2)
            i += 1 + self._gap()
        self._skip = i - n
        return "".join(out)


def _spaced(ch: str) -> bool:
    """A letter or digit of a script written with spaces (Latin, Greek, Cyrillic, Armenian)."""
    return ch.isalnum() and ord(ch) < 0x0590


def _space_between(out: list[str], a: int, b: int) -> None:
    """Words a and b touched in the original (Japanese, Thai, Khmer); if a replacement made them
    two words of a spaced script that would read as one (``write`` + ``book``), one space goes
    between them. Japanese next to English (``japanの``) stays as it was."""
    if out[a] and out[b] and not out[a + 1] and _spaced(out[a][-1]) and _spaced(out[b][0]):
        out[a + 1] = " "
