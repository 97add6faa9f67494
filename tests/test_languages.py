"""Every field of every language entry, checked against the code system's own rules."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from sdrrl import languages as L
from sdrrl.errors import SdrrlError

PAPER_TARGETS = "ces dan ukr bul fin hun nob ind jpn kor por slv vie pol tha khm".split()

# Published configuration lists of the benchmarks / resources (their documentation).
XLSUM_CONFIGS = set("""amharic arabic azerbaijani bengali burmese chinese_simplified chinese_traditional
english french gujarati hausa hindi igbo indonesian japanese kirundi korean kyrgyz marathi nepali oromo
pashto persian pidgin portuguese punjabi russian scottish_gaelic serbian_cyrillic serbian_latin sinhala
somali spanish swahili tamil telugu thai tigrinya turkish ukrainian urdu uzbek vietnamese welsh
yoruba""".split())
MKQA_LANGS = set("ar da de en es fi fr he hu it ja km ko ms nl no pl pt ru sv th tr vi zh_cn zh_hk zh_tw".split())
OPUS100_LANGS = set("""af am an ar as az be bg bn br bs ca cs cy da de dz el eo es et eu fa fi fr fy ga gd gl gu
ha he hi hr hu hy id ig is it ja ka kk km kn ko ku ky li lt lv mg mk ml mn mr ms mt my nb ne nl nn no oc or
pa pl ps pt ro ru rw se sh si sk sl sq sr sv ta te tg th tk tr tt ug uk ur uz vi wa xh yi yo zh zu""".split())
# MBZUAI/Bactrian-X: one config per ISO 639-1 code (its card and loading script's LANGS).
BACTRIAN_X_LANGS = set("""af ar az bn cs de es et fa fi fr gl gu he hi hr id it ja ka kk km ko lt lv mk ml mn mr my
ne nl pl ps pt ro ru si sl sv sw ta te th tl tr uk ur vi xh zh en""".split())
MUSE_LANGS = set("""af ar bg bn bs ca cs da de el en es et fa fi fr he hi hr hu id it ja ko lt lv mk ms nl no
pl pt ro ru sk sl sq sv ta th tl tr uk vi zh""".split())


def test_table_holds_the_papers_languages():
    assert list(L.TARGETS) == PAPER_TARGETS
    assert list(L.SOURCES) == ["eng", "fra"]
    assert all(re.fullmatch(r"[a-z]{3}", iso) for iso in L.LANGUAGES)
    assert all(lang.iso == iso for iso, lang in L.LANGUAGES.items())


def test_nllb_codes_are_known_to_the_nllb_tokenizer():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    for lang in L.LANGUAGES.values():
        assert lang.nllb in FAIRSEQ_LANGUAGE_CODES, lang
        assert lang.nllb.split("_")[0] == lang.iso  # FLORES-200 codes start with ISO 639-3
        assert lang.belebele == lang.nllb  # BELEBELE configs are FLORES-200 codes


def test_cld3_codes_are_what_gcld3_returns_on_real_text():
    import gcld3

    samples = json.loads(resources.files("sdrrl").joinpath("data/sample/language_samples.json").read_text("utf-8"))
    assert set(samples) == set(L.LANGUAGES)
    ident = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    for iso, sentences in samples.items():
        for sentence in sentences:
            result = ident.FindLanguage(text=sentence)
            assert result.language == L.get(iso).cld3, (iso, sentence, result.language)
            assert L.by_cld3(result.language).iso == iso


def test_benchmark_coverage_is_true_to_the_benchmarks():
    xlsum = {iso for iso in L.TARGETS if L.get(iso).xlsum}
    mkqa = {iso for iso in L.TARGETS if L.get(iso).mkqa}
    assert xlsum == set("ind jpn kor por vie ukr tha".split())
    assert mkqa == set("dan fin hun jpn khm kor nob pol por tha vie".split())
    for lang in L.LANGUAGES.values():
        assert lang.xlsum is None or lang.xlsum in XLSUM_CONFIGS, lang
        assert lang.mkqa is None or lang.mkqa in MKQA_LANGS, lang
    assert L.get("eng").xlsum == "english" and L.get("eng").mkqa == "en"
    # Bactrian-X (Figure 3): every language it has, under its ISO 639-1 code; not the four it lacks
    for lang in L.LANGUAGES.values():
        assert lang.bactrian_x == (lang.iso1 if lang.iso1 in BACTRIAN_X_LANGS else None), lang
    assert {iso for iso in L.TARGETS if not L.get(iso).bactrian_x} == {"dan", "bul", "hun", "nob"}


def test_opus100_pairs_and_dictionary_codes_follow_their_naming():
    for lang in L.LANGUAGES.values():
        if lang.iso == "eng":
            assert lang.opus100 is None  # OPUS-100 is English-centric: no eng-eng pair
            continue
        a, b = lang.opus100.split("-")
        assert "en" in (a, b) and a < b, lang.opus100  # configs are sorted code pairs
        other = b if a == "en" else a
        assert other in OPUS100_LANGS and other == lang.dictionary
        assert lang.cld3 == lang.dictionary or lang.iso == "nob"
        assert (lang.dictionary in MUSE_LANGS) == lang.muse, lang


def test_unknown_code_lists_supported_codes_and_hints():
    with pytest.raises(SdrrlError) as err:
        L.get("xyz")
    msg = str(err.value)
    assert "xyz" in msg and all(iso in msg for iso in L.LANGUAGES)
    with pytest.raises(SdrrlError, match="use 'ces'"):
        L.get("cs")
    with pytest.raises(SdrrlError, match="use 'ind'"):
        L.get("ind_Latn")


def test_extra_cld3_labels_are_real_cld3_answers_and_belong_to_no_other_table_language():
    import gcld3

    ident = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    # Correct Indonesian that CLD3 labels Malay: the reason ind accepts "ms".
    malay_label = ident.FindLanguage(text="Sungai mengalir dari pegunungan ke laut.").language
    assert malay_label == "ms" and L.get("ind").cld3_codes == {"id", "ms"}
    others = {lang.cld3 for lang in L.LANGUAGES.values()}
    for lang in L.LANGUAGES.values():
        assert lang.cld3 in lang.cld3_codes
        assert not (set(lang.cld3_also) & others), lang  # never accept another table language
