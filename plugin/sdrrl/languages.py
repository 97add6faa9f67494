"""The language table: the only place in sdrrl that spells a language code.

Keyed by ISO 639-3. Each entry maps to the code systems of every engine and benchmark we use.
Adding a language is one ``Language(...)`` line in ``_TABLE``; tests check every field against
the code system's own rules (an NLLB tokenizer, gcld3, the benchmarks' published config lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdrrl.errors import UnknownLanguageError


@dataclass(frozen=True)
class Language:
    iso: str                 # ISO 639-3, our key everywhere ("ces")
    name: str                # English name, used in Table 1's templates ("Czech")
    nllb: str                # NLLB-200 / FLORES-200 code ("ces_Latn")
    cld3: str                # what gcld3 returns for this language ("cs")
    belebele: str            # BELEBELE config name (FLORES-200 style)
    xlsum: str | None        # csebuetnlp/xlsum config, None where XL-Sum has no such language
    mkqa: str | None         # MKQA answer-language key, None where MKQA has no such language
    opus100: str | None      # Helsinki-NLP/opus-100 config pairing it with English
    dictionary: str          # code in bilingual dictionary file names (MUSE style: en-cs.txt)
    muse: bool = True        # whether the MUSE release ships a dictionary with English
    role: str = "target"     # "target" (the paper's 16) or "source" (eng, fra)
    # Other CLD3 answers that still mean "this language": CLD3 labels a quarter to a third of
    # correct Indonesian as Malay ("ms"), which would otherwise be rejected as off-target.
    cld3_also: tuple[str, ...] = ()
    # How the composer finds words (code-switching, D_comp's cut points): "space" (runs of word
    # characters) for scripts written with spaces; a real segmenter for those without one
    # (sdrrl/wordseg.py: "mecab" for Japanese, "newmm" for Thai, "khmernltk" for Khmer).
    segmenter: str = "space"
    # MBZUAI/Bactrian-X config (ISO 639-1) holding its translation of Dolly's instructions (the
    # off-target analysis of the paper's appendix E / Figure 3); None where Bactrian-X has no such
    # language (Danish, Bulgarian, Hungarian, Norwegian: those targets have no off-target task).
    bactrian_x: str | None = None

    @property
    def cld3_codes(self) -> frozenset[str]:
        """Every CLD3 label accepted as this language (language-ID filter, off-target rate)."""
        return frozenset((self.cld3, *self.cld3_also))

    @property
    def iso1(self) -> str:
        """The two-letter code that the CLD3 / MUSE / MKQA world uses."""
        return self.dictionary


_TABLE: tuple[Language, ...] = (
    # the paper's 14 LLaMA-2 targets (section 4.1) ...
    Language("ces", "Czech", "ces_Latn", "cs", "ces_Latn", None, None, "cs-en", "cs", bactrian_x="cs"),
    Language("dan", "Danish", "dan_Latn", "da", "dan_Latn", None, "da", "da-en", "da"),
    Language("ukr", "Ukrainian", "ukr_Cyrl", "uk", "ukr_Cyrl", "ukrainian", None, "en-uk", "uk", bactrian_x="uk"),
    Language("bul", "Bulgarian", "bul_Cyrl", "bg", "bul_Cyrl", None, None, "bg-en", "bg"),
    Language("fin", "Finnish", "fin_Latn", "fi", "fin_Latn", None, "fi", "en-fi", "fi", bactrian_x="fi"),
    Language("hun", "Hungarian", "hun_Latn", "hu", "hun_Latn", None, "hu", "en-hu", "hu"),
    Language("nob", "Norwegian", "nob_Latn", "no", "nob_Latn", None, "no", "en-no", "no"),
    Language("ind", "Indonesian", "ind_Latn", "id", "ind_Latn", "indonesian", None, "en-id", "id",
             cld3_also=("ms",), bactrian_x="id"),
    Language("jpn", "Japanese", "jpn_Jpan", "ja", "jpn_Jpan", "japanese", "ja", "en-ja", "ja",
             segmenter="mecab", bactrian_x="ja"),
    Language("kor", "Korean", "kor_Hang", "ko", "kor_Hang", "korean", "ko", "en-ko", "ko", bactrian_x="ko"),
    Language("por", "Portuguese", "por_Latn", "pt", "por_Latn", "portuguese", "pt", "en-pt", "pt", bactrian_x="pt"),
    Language("slv", "Slovenian", "slv_Latn", "sl", "slv_Latn", None, None, "en-sl", "sl", bactrian_x="sl"),
    Language("vie", "Vietnamese", "vie_Latn", "vi", "vie_Latn", "vietnamese", "vi", "en-vi", "vi", bactrian_x="vi"),
    Language("pol", "Polish", "pol_Latn", "pl", "pol_Latn", None, "pl", "en-pl", "pl", bactrian_x="pl"),
    # ... and the two SeaLLM targets (appendix B)
    Language("tha", "Thai", "tha_Thai", "th", "tha_Thai", "thai", "th", "en-th", "th",
             segmenter="newmm", bactrian_x="th"),
    Language("khm", "Khmer", "khm_Khmr", "km", "khm_Khmr", None, "km", "en-km", "km", muse=False,
             segmenter="khmernltk", bactrian_x="km"),
    # resource-rich source languages (section 4.1 and appendix C)
    Language("eng", "English", "eng_Latn", "en", "eng_Latn", "english", "en", None, "en",
             role="source", bactrian_x="en"),
    Language("fra", "French", "fra_Latn", "fr", "fra_Latn", "french", "fr", "en-fr", "fr",
             role="source", bactrian_x="fr"),
)

LANGUAGES: dict[str, Language] = {lang.iso: lang for lang in _TABLE}
TARGETS: tuple[str, ...] = tuple(lang.iso for lang in _TABLE if lang.role == "target")
SOURCES: tuple[str, ...] = tuple(lang.iso for lang in _TABLE if lang.role == "source")


def get(code: str) -> Language:
    """Look a language up by its ISO 639-3 code; an unknown code lists the supported ones."""
    try:
        return LANGUAGES[code]
    except (KeyError, TypeError):
        hint = ""
        for lang in _TABLE:  # a helpful nudge for the most common mistake: another code system
            if code in (lang.nllb, lang.cld3, lang.dictionary):
                hint = f" ('{code}' looks like {lang.name}: use '{lang.iso}')"
                break
        raise UnknownLanguageError(
            f"Unknown language code {code!r}{hint}.",
            f"use an ISO 639-3 code from the table: {', '.join(LANGUAGES)}; "
            "to add a language, add one Language(...) entry in sdrrl/languages.py.",
        ) from None


def by_cld3(code: str) -> Language | None:
    """The table entry whose CLD3 code is ``code`` (None for languages outside the table)."""
    for lang in _TABLE:
        if lang.cld3 == code:
            return lang
    return None


def named(label: str) -> Language | None:
    """The table entry a column header or label names in any of its code systems or by its English
    name, case-insensitively (``eng``, ``en``, ``eng_Latn``, ``English``); None when none does."""
    key = str(label).strip().casefold()
    for lang in _TABLE:
        if key in (lang.iso, lang.dictionary, lang.nllb.casefold(), lang.cld3, lang.name.casefold()):
            return lang
    return None
