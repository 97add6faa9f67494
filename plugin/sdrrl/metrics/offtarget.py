"""Off-target rate: the share of outputs that are not in the expected language (CLD3, as the paper).

Each output is judged one of three ways (:func:`judge`):

- ``undetermined``: no language can be identified in it, because it holds no letter (empty,
  whitespace, digits, punctuation, symbols, emoji). CLD3 returns a language for any string
  ("ja", reliable at p = 0.78, for "::::", "1234" or "..."), so such text is never sent to it.
  An undetermined output is off-target: it is not text in the expected language.
- ``on``: CLD3 says the expected language (or one of its accepted labels, ``Language.cld3_codes``).
- ``off``: CLD3 says another language.

The rule is "at least one letter" (a character of Unicode category L*, ``str.isalpha``), in every
script of the language table: a single Hangul syllable (네) or Japanese kana is a language, a string
of Thai or Khmer digits (๑๒๓, ១២៣) is not. Rejected alternatives: CLD3's ``is_reliable`` is True
on "::::" (so it cannot tell noise apart), and a minimum share of letters would call short real
answers such as "1945年" or "7 hari" undetermined.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from sdrrl.languages import get as get_language

ON, OFF, UNDETERMINED = "on", "off", "undetermined"
MIN_LETTERS = 1  # fewer letters than this: undetermined


@lru_cache(maxsize=1)
def _identifier():
    import gcld3

    return gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)


def letters(text: str | None) -> int:
    """How many letters (Unicode category L*) ``text`` holds."""
    return sum(ch.isalpha() for ch in text or "")


def detect(text: str | None) -> str:
    """CLD3's language code for ``text``; "und" for text without a letter (undetermined)."""
    if letters(text) < MIN_LETTERS:
        return "und"
    return _identifier().FindLanguage(text=text).language


def judge(text: str | None, lang: str) -> str:
    """ON, OFF or UNDETERMINED for an output expected in ``lang`` (ISO 639-3)."""
    accepted = get_language(lang).cld3_codes
    code = detect(text)
    if code == "und":
        return UNDETERMINED
    return ON if code in accepted else OFF


def is_off_target(text: str | None, lang: str) -> bool:
    """True when ``text`` is not identified as ``lang``: another language, or undetermined."""
    return judge(text, lang) != ON


def rate(texts: Iterable[str | None], lang: str) -> float:
    """Share of ``texts`` not in ``lang`` (undetermined ones included), in [0, 1] (0.0 for no texts)."""
    flags = [is_off_target(t, lang) for t in texts]
    return sum(flags) / len(flags) if flags else 0.0
