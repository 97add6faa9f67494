"""Word segmentation for scripts without spaces (Japanese, Thai, Khmer), through the real segmenters
(fugashi + unidic-lite, pythainlp newmm, khmer-nltk), in code-switching and D_comp's cut points."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from sdrrl import languages, wordseg
from sdrrl.compose import codeswitch, parallel

# Questions written for this test, and MUSE-style dictionaries (target word -> English) holding
# content words as the language's segmenter cuts them. EXPECTED: the dictionary words of each
# question, counted by hand.
CASES = {
    "jpn": {
        "dictionary": {"日本": "japan", "首都": "capital", "どこ": "where", "東京": "tokyo", "一番": "most",
                       "高い": "high", "山": "mountain", "何": "what", "猫": "cat", "犬": "dog", "好き": "like",
                       "水": "water", "飲む": "drink", "体": "body", "良い": "good", "本": "book",
                       "作者": "author", "誰": "who", "人口": "population"},
        "questions": {"日本の首都はどこですか？": 3, "東京で一番高い山は何ですか？": 5,
                      "猫と犬はどちらが好きですか？": 3, "水を飲むのは体に良いですか？": 4,
                      "この本の作者は誰ですか？": 3, "日本の人口はどのくらいですか？": 2},
    },
    "tha": {
        "dictionary": {"เมืองหลวง": "capital", "ประเทศ": "country", "ไทย": "thailand", "อะไร": "what",
                       "ญี่ปุ่น": "japan", "ที่ไหน": "where", "แมว": "cat", "สุนัข": "dog", "ชอบ": "like",
                       "กิน": "eat", "ร่างกาย": "body", "ใคร": "who", "ภูเขา": "mountain", "โลก": "world"},
        "questions": {"เมืองหลวงของประเทศไทยคืออะไร": 4, "ประเทศญี่ปุ่นอยู่ที่ไหน": 3,
                      "แมวและสุนัขชอบกินอะไร": 5, "น้ำดื่มมีประโยชน์ต่อร่างกายอย่างไร": 1,
                      "ใครเขียนหนังสือเล่มนี้": 1, "ภูเขาที่สูงที่สุดในโลกคืออะไร": 3},
    },
    "khm": {
        "dictionary": {"រាជធានី": "capital", "ប្រទេស": "country", "កម្ពុជា": "cambodia", "ឯណា": "where",
                       "ឆ្មា": "cat", "ឆ្កែ": "dog", "ចូលចិត្ត": "like", "អ្វី": "what", "ទឹក": "water",
                       "ល្អ": "good", "សុខភាព": "health", "នរណា": "who", "សរសេរ": "write",
                       "សៀវភៅ": "book", "ភ្នំ": "mountain", "ខ្ពស់": "high", "ពិភពលោក": "world",
                       "ប្រជាជន": "people"},
        "questions": {"តើរាជធានីនៃប្រទេសកម្ពុជានៅឯណា?": 4, "តើឆ្មានិងឆ្កែចូលចិត្តញ៉ាំអ្វី?": 4,
                      "តើទឹកល្អសម្រាប់សុខភាពទេ?": 3, "តើនរណាសរសេរសៀវភៅនេះ?": 3,
                      "តើភ្នំខ្ពស់បំផុតនៅលើពិភពលោកគឺអ្វី?": 4, "តើប្រជាជនកម្ពុជាមានប៉ុន្មាននាក់?": 2},
    },
}
ENGLISH = re.compile(r"[a-z]+")


def _dictionary(tmp_path, lang: str) -> codeswitch.Dictionary:
    code = languages.get(lang).dictionary
    path = tmp_path / f"{code}-en.txt"
    path.write_text("".join(f"{w} {e}\n" for w, e in CASES[lang]["dictionary"].items()), encoding="utf-8")
    return codeswitch.load_muse(path)


def test_table_names_a_segmenter_for_scripts_without_spaces():
    assert {iso: lang.segmenter for iso, lang in languages.LANGUAGES.items() if lang.segmenter != "space"} == {
        "jpn": "mecab", "tha": "newmm", "khm": "khmernltk"}
    for lang in languages.LANGUAGES.values():
        assert lang.segmenter in wordseg.SEGMENTERS


def test_issue_example_japanese_question_gets_switched(tmp_path):
    d = codeswitch.Dictionary({"日本": "japan", "首都": "capital", "どこ": "where"}, "ja-en")
    q = "日本の首都はどこですか？"
    # before: one run of word characters, no dictionary word found
    assert codeswitch.CodeSwitcher(d, 1.0, 1).covered(q)[1] == []
    switch = codeswitch.CodeSwitcher(d, 1.0, 1, lang="jpn")
    # every dictionary word replaced, nothing inserted between words that touched
    assert switch(q) == "japanのcapitalはwhereですか？"
    assert switch.covered_tokens == 3 and switch.replaced == 3


def test_touching_replacements_get_a_space_only_between_spaced_words(tmp_path):
    switch = codeswitch.CodeSwitcher(_dictionary(tmp_path, "khm"), 1.0, 1, lang="khm")
    # the Khmer words touched; the English ones would read as "whowritebook"
    assert switch("តើនរណាសរសេរសៀវភៅនេះ?") == "តើwho write bookនេះ?"
    th = codeswitch.CodeSwitcher(_dictionary(tmp_path, "tha"), 1.0, 1, lang="tha")
    assert th("แมวและสุนัขชอบกินอะไร") == "catและdog like eat what"


@pytest.mark.parametrize("lang", ["jpn", "tha", "khm"])
def test_segmentation_keeps_text_and_finds_the_dictionary_words(tmp_path, lang):
    d = _dictionary(tmp_path, lang)
    switch = codeswitch.CodeSwitcher(d, 0.15, 0, lang=lang)
    for q, expected in CASES[lang]["questions"].items():
        parts = wordseg.split_words(q, lang)
        assert "".join(parts) == q  # byte for byte: no space inserted
        assert len(parts) > 3  # more than one word
        assert len(switch.covered(q)[1]) == expected, (q, parts)


@pytest.mark.parametrize("lang", ["jpn", "tha", "khm"])
def test_switching_rate_of_covered_words_is_p(tmp_path, lang):
    """Eq. 5 at p = 0.15: the share of dictionary-covered words replaced, counted in the output,
    lies within a 4-sigma binomial band (over ~9,000 covered words the band is +-0.015)."""
    p, rounds = 0.15, 500
    d = _dictionary(tmp_path, lang)
    switch = codeswitch.CodeSwitcher(d, p, f"rate-{lang}", lang=lang)
    english = set(CASES[lang]["dictionary"].values())
    covered = replaced = 0
    per_word: Counter = Counter()
    for _ in range(rounds):
        for q, expected in CASES[lang]["questions"].items():
            out = switch(q)
            found = ENGLISH.findall(out)
            assert set(found) <= english
            covered += expected
            replaced += len(found)
            per_word.update(found)
    rate = replaced / covered
    sigma = math.sqrt(p * (1 - p) / covered)
    assert covered >= 8000
    assert abs(rate - p) < 4 * sigma, (rate, covered)
    assert set(per_word) == english  # every dictionary word gets switched sometimes


def test_comp_cut_points_fall_between_words():
    """D_comp's prefix of a Japanese/Thai/Khmer sentence ends right after a segmenter word."""
    for lang in ("jpn", "tha", "khm"):
        rng = random.Random(3)
        for q in CASES[lang]["questions"]:
            ends = set(wordseg.word_ends(q, lang))
            cuts = Counter(len(parallel.split_prefix(q, rng, lang)) for _ in range(60))
            assert set(cuts) <= ends - {max(ends)}, (q, cuts, ends)
            assert len(cuts) >= 2
    # a whole row of D_comp: prefix of the sentence, the sentence as the answer
    rows = list(parallel.comp_rows([("What is the capital of Japan?", "日本の首都はどこですか？")], "eng", "jpn",
                                   "Complete in {lang}.", 1, Counter()))
    assert rows[0]["output"] == "日本の首都はどこですか？"
    assert len(rows[0]["input"]) in {2, 3, 5, 6, 8, 10}


def test_export_switches_japanese_questions_by_words(tmp_path):
    """Through the composer: the translated (Japanese) questions of D_TL/D_TT are switched word by
    word with the ja-en dictionary, and nothing is inserted between the untouched words."""
    import json
    import shutil

    from fixtures.compose import helpers
    from sdrrl.compose.export import export

    work = helpers.copy_work(tmp_path / "work")
    questions = list(CASES["jpn"]["questions"])
    rows = helpers.rows(helpers.WORK / "filter" / "eng-ind.jsonl")
    for i, r in enumerate(rows):  # Japanese questions in place of the Indonesian ones
        r["x_mt"] = questions[i % len(questions)] if r.get("x_mt") else r.get("x_mt")
    (work / "filter" / "eng-jpn.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                   encoding="utf-8")
    shutil.copy(work / "filter" / "eng-ind.excluded.jsonl", work / "filter" / "eng-jpn.excluded.jsonl")
    dicts = tmp_path / "dicts"
    dicts.mkdir()
    _dictionary(dicts, "jpn")
    (dicts / "en-ja.txt").write_text("what 何\n", encoding="utf-8")
    cfg = helpers.config(tmp_path, work=work, targets=["jpn"], methods=["xcot"],
                         code_switch={"p": 1.0, "dictionaries": str(dicts)})
    export(cfg, tmp_path / "out")
    tt = helpers.rows(tmp_path / "out" / "xcot_eng-jpn_tt.jsonl")
    switch = codeswitch.CodeSwitcher(codeswitch.load_muse(dicts / "ja-en.txt"), 1.0, 0, lang="jpn")
    expected = {switch(q) for q in questions}
    assert "japanのcapitalはwhereですか？" in expected
    assert len(tt) >= 6 and {r["instruction"] for r in tt} <= expected
    assert sum("japan" in r["instruction"] for r in tt) >= 2
