"""Is each side of a parallel corpus, a monolingual corpus or a bilingual dictionary in the language it
is used for? (Beyond the paper: a file of one language must never be exported as another's.)

A sample of each side is judged by the pipeline's language ID (:class:`sdrrl.pipeline.filters.LanguageIdFilter`:
CLD3, texts with fewer than ``min_letters`` letters not judged, the language table's accepted labels,
so Indonesian labelled Malay still counts as Indonesian). A side where fewer than ``min_share`` of the
judged texts are in its language stops that side's datasets, naming what CLD3 found instead; the
counts go into the manifest either way. Dictionary words are judged in chunks of
:data:`DICTIONARY_CHUNK` words (CLD3 cannot tell one word's language).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Iterable

from sdrrl import languages
from sdrrl.errors import SdrrlError

DICTIONARY_CHUNK = 20


def _name(label: str) -> str:
    lang = languages.by_cld3(label)
    return f"{lang.name} ({label})" if lang else repr(label)


def check(texts: Iterable[str], lang: str, cfg, what: str, fix: str) -> dict:
    """Judge up to ``cfg.texts`` of ``texts`` (a ``LanguageCheckConfig``); raise when too few are in
    ``lang`` (ISO 639-3); return the counts for the manifest. ``what`` names the side in the message."""
    from sdrrl.pipeline.filters import LanguageIdFilter

    lid = LanguageIdFilter(lang, cfg.min_letters)
    found: Counter = Counter()
    for text in texts:
        if sum(found.values()) >= cfg.texts:
            break
        judged = lid.judge(text) if isinstance(text, str) else None
        if judged is not None:
            found[judged[0]] += 1
    judged = sum(found.values())
    matching = sum(n for label, n in found.items() if label in lid.accepted)
    result = {"lang": lang, "judged": judged, "in_language": matching,
              "share": round(matching / judged, 4) if judged else None, "found": dict(found.most_common(5))}
    if judged and matching < cfg.min_share * judged:
        name = languages.get(lang).name
        top = ", ".join(f"{_name(label)} {n}" for label, n in found.most_common(3))
        raise SdrrlError(f"{what} is not {name}: CLD3 judges {matching} of {judged} sampled texts "
                         f"({matching / judged:.0%}) {name}, under the {cfg.min_share:.0%} required "
                         f"(language_check.min_share); it found {top}.", fix)
    return result


def dictionary_chunks(words: Iterable[str], seed: str) -> list[str]:
    """Dictionary words in a seeded random order, joined in chunks CLD3 can judge."""
    words = list(words)
    random.Random(seed).shuffle(words)
    return [" ".join(words[i:i + DICTIONARY_CHUNK]) for i in range(0, len(words), DICTIONARY_CHUNK)]
