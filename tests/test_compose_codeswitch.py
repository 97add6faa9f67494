"""Code-switching (paper section 3.2.3): MUSE dictionaries, Eq. 5 with p, questions only."""

from __future__ import annotations

import re

import pytest

from fixtures.compose import helpers
from sdrrl.compose import codeswitch
from sdrrl.compose.export import export
from sdrrl.errors import SdrrlError

WORD = re.compile(r"\w+")


def test_muse_dictionary_reads_pairs_counts_malformed_and_inverts(tmp_path):
    path = tmp_path / "en-id.txt"
    path.write_text("dog anjing\ncat\tkucing\nbroken line with words\nhotel hotel\ndog asu\n\n", encoding="utf-8")
    d = codeswitch.load_muse(path, max_malformed_fraction=0.5)
    assert d.table["dog"] == ("anjing", "asu") and d.table["cat"] == "kucing"
    assert "hotel" not in d.table and d.identical == 1  # a word replaced by itself switches nothing
    assert (d.malformed, d.malformed_lines, d.lines) == (1, [3], 5)
    inv = d.inverted()
    assert inv.table["kucing"] == "cat" and inv.table["asu"] == "dog" and inv.inverted_from == str(path)


def test_muse_dictionary_with_too_many_malformed_lines_is_a_clear_error(tmp_path):
    path = tmp_path / "en-id.txt"
    path.write_text("dog anjing\nthis is not a pair\nneither is this one\n", encoding="utf-8")
    with pytest.raises(SdrrlError, match=r"2 of 3 lines are malformed.*line\(s\) 2, 3"):
        codeswitch.load_muse(path, max_malformed_fraction=0.05)
    path.write_text("only-one-field\n", encoding="utf-8")
    with pytest.raises(SdrrlError, match="malformed|no usable word pairs"):
        codeswitch.load_muse(path, max_malformed_fraction=1.0)
    with pytest.raises(SdrrlError, match="not found"):
        codeswitch.load_muse(tmp_path / "missing.txt")


def test_switching_keeps_layout_and_case_and_is_reproducible():
    d = codeswitch.Dictionary({"dog": "anjing", "house": "rumah"}, "mem")
    text = "The Dog ran home.\n  DOG, dog; house!"
    assert codeswitch.CodeSwitcher(d, 1.0, 1)(text) == "The Anjing ran home.\n  ANJING, anjing; rumah!"
    assert codeswitch.CodeSwitcher(d, 0.0, 1)(text) == text
    long = " ".join(["dog house"] * 200)
    a, b = codeswitch.CodeSwitcher(d, 0.15, 5)(long), codeswitch.CodeSwitcher(d, 0.15, 5)(long)
    assert a == b and a != long
    assert codeswitch.CodeSwitcher(d, 0.15, 6)(long) != a


def _rate(original: list[str], switched: list[str], covered: set[str]) -> tuple[int, int]:
    total = changed = 0
    for q0, q1 in zip(original, switched):
        w0, w1 = WORD.findall(q0), WORD.findall(q1)
        assert len(w0) == len(w1)  # single-word translations: tokens align one to one
        for a, b in zip(w0, w1):
            if a.lower() in covered:
                total += 1
                changed += a != b
            else:
                assert a == b, "a word outside the dictionary was switched"
    return changed, total


@pytest.mark.parametrize("p", [0.15, 0.5])
def test_export_switches_about_p_of_covered_question_tokens_and_never_responses(tmp_path, p):
    work, en_covered, id_covered = helpers.big_work(tmp_path / "work", 1500)
    out = tmp_path / "out"
    cfg = helpers.config(tmp_path, work, methods=["sdrrl-no-mt-comp", "sdrrl-no-cs"], code_switch={"p": p})
    export(cfg, out)
    for kind, covered in (("ll", en_covered), ("lt", en_covered), ("tl", id_covered), ("tt", id_covered)):
        plain = helpers.rows(out / f"sdrrl-no-cs_eng-ind_{kind}.jsonl")
        switched = helpers.rows(out / f"sdrrl-no-mt-comp_eng-ind_{kind}.jsonl")
        assert len(plain) == len(switched) == 1500
        assert [r["output"] for r in plain] == [r["output"] for r in switched]  # responses untouched
        assert all(r["input"] == "" for r in switched)
        changed, total = _rate([r["instruction"] for r in plain], [r["instruction"] for r in switched], covered)
        assert total > 10000
        # 15,000 covered tokens: one standard deviation of the rate is ~0.003 at p = 0.15
        assert abs(changed / total - p) < 0.012, (kind, changed / total)


@pytest.mark.parametrize("p", [0.15, 0.9])
def test_each_covered_token_switches_independently_with_probability_p(p):
    d = codeswitch.Dictionary({"dog": "anjing"}, "mem")
    switch = codeswitch.CodeSwitcher(d, p, 3)
    out = [switch("dog cat dog dog") for _ in range(20000)]
    first = sum(q.startswith("anjing") for q in out) / len(out)
    last = sum(q.endswith("anjing") for q in out) / len(out)
    both = sum(q.startswith("anjing") and q.endswith("anjing") for q in out) / len(out)
    assert abs(first - p) < 0.015 and abs(last - p) < 0.015  # ~5 standard deviations
    assert abs(both - p * p) < 0.015  # independent decisions
    assert switch.covered_tokens == 60000 and abs(switch.replaced / 60000 - p) < 0.01
    assert all(" cat " in q for q in out)  # uncovered words never change


def test_words_with_combining_marks_are_whole_tokens_thai_khmer():
    """Thai and Khmer vowel and tone signs are combining marks, which \\w does not match: a word
    must not be cut at them (no lookup of fragments, no sign left dangling on a replacement)."""
    th = codeswitch.Dictionary({"ไม่": "not", "ดี": "good", "น้ำ": "water"}, "mem")
    assert codeswitch.CodeSwitcher(th, 1.0, 1)("ไม่ ดี, น้ำ!") == "not good, water!"
    parts, positions = codeswitch.CodeSwitcher(th, 1.0, 1).covered("ไม่ ดี")
    assert [parts[i] for i in positions] == ["ไม่", "ดี"]
    km = codeswitch.Dictionary({"ភាសា": "language", "ខ្មែរ": "khmer"}, "mem")
    assert codeswitch.CodeSwitcher(km, 1.0, 1)("ភាសា ខ្មែរ") == "language khmer"
    # a fragment that happens to be a dictionary word is not switched inside a longer word
    frag = codeswitch.Dictionary({"ไม": "wood"}, "mem")
    assert codeswitch.CodeSwitcher(frag, 1.0, 1)("ไม่ ดี") == "ไม่ ดี"


def test_inverted_dictionary_matches_capitalised_target_words(tmp_path):
    """Lookups are lower-cased, so the inverted table's keys must be too."""
    path = tmp_path / "en-id.txt"
    path.write_text("monday Senin\njakarta Jakarta\ndog anjing\n", encoding="utf-8")
    inv = codeswitch.load_muse(path).inverted()
    assert codeswitch.CodeSwitcher(inv, 1.0, 1)("Senin dan anjing.") == "Monday dan dog."


def test_dictionary_with_a_utf8_bom_reads_its_first_pair(tmp_path):
    path = tmp_path / "en-id.txt"
    path.write_bytes("\ufeffdog anjing\r\ncat kucing\r\n".encode("utf-8"))
    d = codeswitch.load_muse(path)
    assert d.table == {"dog": "anjing", "cat": "kucing"}
