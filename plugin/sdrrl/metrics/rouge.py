"""XL-Sum ROUGE-1 / ROUGE-L F1 with the XL-Sum authors' multilingual tokenisation.

Google's ``rouge_score`` keeps only [a-z0-9] and scores Japanese, Korean, Thai and Ukrainian as ~0.
The XL-Sum authors' scorer (PyPI ``multilingual-rouge``) lowercases, strips Unicode punctuation,
segments Thai (pythainlp newmm) and Japanese (MeCab through fugashi), splits other languages with
pyonmttok's aggressive mode, and stems with Snowball where a stemmer exists. We call that scorer,
with two offline fixes that keep its rules:

- Japanese: MeCab reads the UniDic dictionary shipped inside the ``unidic-lite`` wheel. (The scorer
  asks fugashi for the default dictionary, which is the full ``unidic`` package when installed: that
  one needs a separate download and does not exist on offline machines.)
- Snowball stemming (English, Portuguese, ...) leaves NLTK's stopwords unstemmed, as the scorer
  does; those lists come from NLTK's ``stopwords`` corpus. Missing, scoring stops with a message
  that says how to install it, instead of scoring differently.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import NamedTuple

from sdrrl.errors import SdrrlError
from sdrrl.languages import get as get_language

ROUGE_TYPES = ("rouge1", "rougeL")


class RougeScore(NamedTuple):
    rouge1: float  # ROUGE-1 F1 in [0, 1]
    rougeL: float  # ROUGE-L F1 in [0, 1]


def scorer_language(lang: str) -> str:
    """The scorer's language name: XL-Sum's config name, else the lowercase English name."""
    entry = get_language(lang)
    return entry.xlsum or entry.name.lower()


class _JapaneseUnidicLite:
    """MeCab word segmentation with the dictionary inside the unidic-lite wheel (works offline)."""

    def __init__(self) -> None:
        try:
            import fugashi
            import unidic_lite
        except ImportError as err:
            raise SdrrlError(
                f"Japanese ROUGE needs fugashi and unidic-lite ({err}).",
                "pip install fugashi unidic-lite (both ship everything they need in their wheels).",
            ) from None
        dicdir = unidic_lite.DICDIR
        rc = os.path.join(dicdir, "mecabrc")
        # GenericTagger does not go looking for the full `unidic` package (which may be installed
        # but empty); same output options as the XL-Sum scorer's JapaneseTokenizer.
        self._tagger = fugashi.GenericTagger(f'-r "{rc}" -d "{dicdir}" -O wakati -b 50000')

    def __call__(self, text: str) -> list[str]:
        return self._tagger.parse(text).split()


def stopwords_available(lang: str) -> bool:
    """Whether scoring ``lang`` can run here (its Snowball stemmer's NLTK stopwords are installed)."""
    try:
        _scorer(scorer_language(lang))
    except SdrrlError:
        return False
    return True


@lru_cache(maxsize=None)
def _scorer(language: str):
    try:
        from multilingual_rouge import rouge_scorer
    except ImportError as err:
        raise SdrrlError(
            f"The XL-Sum ROUGE scorer is not installed ({err}).",
            "pip install multilingual-rouge unidic-lite (see constraints.txt for the tested versions).",
        ) from None
    tokenizer = _JapaneseUnidicLite() if language == "japanese" else None
    try:
        with warnings.catch_warnings():  # "unknown stemmer language" is expected for most languages
            warnings.simplefilter("ignore")
            return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, lang=language,
                                            callable_tokenizer=tokenizer)
    except LookupError:
        import nltk

        raise SdrrlError(
            f"ROUGE for {language} stems with Snowball, which keeps NLTK's '{language}' stopwords "
            f"unstemmed, and NLTK's stopwords corpus is not installed (searched: {', '.join(nltk.data.path)}).",
            "run `python -m nltk.downloader stopwords` on a machine with internet and copy the "
            "nltk_data/corpora/stopwords folder into one of those directories (or point $NLTK_DATA "
            "at a directory holding corpora/stopwords/).",
        ) from None


def score(prediction: str | None, reference: str, lang: str) -> RougeScore:
    """ROUGE-1 and ROUGE-L F1 of ``prediction`` against ``reference`` (``lang``: ISO 639-3)."""
    result = _scorer(scorer_language(lang)).score(reference or "", prediction or "")
    return RougeScore(float(result["rouge1"].fmeasure), float(result["rougeL"].fmeasure))
