"""Off-target rate: the share of outputs that are not in the expected language (CLD3, as the paper).

An empty output counts as off-target: it is not text in the expected language.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from sdrrl.languages import get as get_language


@lru_cache(maxsize=1)
def _identifier():
    import gcld3

    return gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)


def detect(text: str | None) -> str:
    """CLD3's language code for ``text`` ("und" for empty text)."""
    if not text or not text.strip():
        return "und"
    return _identifier().FindLanguage(text=text).language


def is_off_target(text: str | None, lang: str) -> bool:
    """True when CLD3 says ``text`` is not in ``lang`` (ISO 639-3)."""
    return detect(text) not in get_language(lang).cld3_codes


def rate(texts: Iterable[str | None], lang: str) -> float:
    """Share of ``texts`` not in ``lang``, in [0, 1] (0.0 for no texts)."""
    flags = [is_off_target(t, lang) for t in texts]
    return sum(flags) / len(flags) if flags else 0.0
