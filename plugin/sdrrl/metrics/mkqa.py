"""MKQA token-overlap F1, computed the way MKQA's official evaluation computes it.

Rules (apple/ml-mkqa, mkqa_eval_util.py): lowercase; drop ASCII punctuation only; replace the
language's articles by a space; split ja/th/km/zh into single characters and other languages on
whitespace; token-multiset F1; an empty side scores 1 if both are empty, else 0; the best score over
all gold answers and their aliases. A question without an answer has the gold answer "".
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from typing import Iterable

from sdrrl.languages import get as get_language

# MKQA answer-language key -> article pattern (the official table, for the languages it lists).
ARTICLES: dict[str, str] = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "nl": r"\b(de|het|een|des|der|den)\b",
    "sv": r"\b(en|ett)\b",
    "da": r"\b(en|et)\b",
    "no": r"\b(en|et|ei)\b",
    "fr": r"\b(le|la|l'|les|du|de|d'|des|un|une|des)",
    "pt": r"\b(o|a|os|as|um|uma|uns|umas)\b",
    "fi": r"\b(se|yks|yksi)\b",
    "hu": r"\b(a|az|egy)\b",
}
# Languages written without spaces between words: every character is a token.
CHARACTER_SEGMENTED = frozenset({"zh_cn", "zh_hk", "zh_tw", "ja", "th", "km"})
_ASCII_PUNCTUATION = frozenset(string.punctuation)


@lru_cache(maxsize=64)
def _mkqa_code(lang: str) -> str:
    code = get_language(lang).mkqa
    if code is None:  # still scoreable: MKQA's rules for an unlisted language are the default ones
        code = get_language(lang).iso1
    return code


def normalize(text: str, lang: str) -> str:
    """MKQA's per-language normalisation of an answer string (``lang``: ISO 639-3)."""
    code = _mkqa_code(lang)
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    pattern = ARTICLES.get(code)
    if pattern:
        text = re.sub(pattern, " ", text)
    tokens = list(text) if code in CHARACTER_SEGMENTED else text.split()
    return " ".join(t for t in tokens if t.strip())


def tokens(text: str | None, lang: str) -> list[str]:
    return normalize(text, lang).split() if text else []


def _f1_one(prediction: str, gold: str, lang: str) -> float:
    gold_tokens, pred_tokens = tokens(gold, lang), tokens(prediction, lang)
    if not gold_tokens or not pred_tokens:  # "no answer" on either side: 1 only if both agree
        return float(gold_tokens == pred_tokens)
    common = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _golds(answers: Iterable[str | None] | str) -> list[str]:
    if isinstance(answers, str):
        answers = [answers]
    return [a or "" for a in answers] or [""]


def f1(prediction: str | None, answers: Iterable[str | None], lang: str) -> float:
    """Best token F1 of ``prediction`` over all gold ``answers`` (texts and aliases) in [0, 1].

    An empty ``answers`` list means "no answer" (gold ""), as MKQA encodes unanswerable questions.
    A single string is one answer (not a list of its characters).
    """
    golds = _golds(answers)
    return max(_f1_one(prediction or "", gold, lang) for gold in golds)


def exact_match(prediction: str | None, answers: Iterable[str | None], lang: str) -> float:
    """MKQA exact match after normalisation (best over answers)."""
    golds = _golds(answers)
    pred = normalize(prediction or "", lang)
    return float(any(pred == normalize(g, lang) for g in golds))


def gold_answers(answer_entries: Iterable[dict]) -> list[str]:
    """Flatten one language's MKQA answer entries into answer strings: text ("" for None) + aliases."""
    out: list[str] = []
    for entry in answer_entries or ():
        text = entry.get("text") or ""
        if text not in out:
            out.append(text)
        for alias in entry.get("aliases") or ():
            if alias and alias not in out:
                out.append(alias)
    return out


def is_answerable(answers: Iterable[str]) -> bool:
    """False for MKQA's unanswerable questions (gold answers are only "")."""
    return any(a for a in answers)
