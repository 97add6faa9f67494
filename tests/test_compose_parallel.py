"""D_mt and D_comp from a parallel corpus (paper section 3.2.4, Table 1)."""

from __future__ import annotations

import json
import random

import pytest

from fixtures.compose import helpers
from sdrrl.compose import parallel
from sdrrl.compose.export import export
from sdrrl.errors import SdrrlError

MT_FWD = "Translate the following sentence from English to Indonesian."
MT_BWD = "Translate the following sentence from Indonesian to English."
COMP = "Complete the following sentence in Indonesian according to its context."


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    manifest = export(helpers.config(tmp, methods=["sdrrl-only-mt-comp"]), tmp / "out")
    return tmp / "out", manifest


def test_mt_holds_both_directions_of_every_pair_with_table1_wording(exported):
    out, manifest = exported
    mt = helpers.rows(out / "sdrrl-only-mt-comp_eng-ind_mt.jsonl")
    assert len(mt) == 80 and manifest.entries["sdrrl-only-mt-comp_eng-ind_mt"].rows == 80
    fwd = {(r["input"], r["output"]) for r in mt if r["instruction"] == MT_FWD}
    bwd = {(r["output"], r["input"]) for r in mt if r["instruction"] == MT_BWD}
    assert len(fwd) == 40 and fwd == bwd
    # the language of each side, by gcld3 (short sentences: judged over the whole set)
    src_en = sum(helpers.lang(s) == "en" for s, _ in fwd) / len(fwd)
    tgt_id = sum(helpers.lang(t) in helpers.ACCEPT["ind"] for _, t in fwd) / len(fwd)
    assert src_en >= 0.85 and tgt_id >= 0.85
    corpus = {tuple(line.split("\t")) for line in
              (helpers.SAMPLE / "parallel" / "eng-ind.tsv").read_text(encoding="utf-8").splitlines()[1:]}
    assert fwd <= corpus


def test_comp_questions_hold_a_proper_prefix_and_answers_the_whole_sentence(exported):
    out, _ = exported
    comp = helpers.rows(out / "sdrrl-only-mt-comp_eng-ind_comp.jsonl")
    mt = helpers.rows(out / "sdrrl-only-mt-comp_eng-ind_mt.jsonl")
    targets = {r["output"] for r in mt if r["instruction"] == MT_FWD}
    assert len(comp) == 40 and {r["output"] for r in comp} == targets
    cuts = set()
    for r in comp:
        assert r["instruction"] == COMP
        assert r["output"].startswith(r["input"]) and 0 < len(r["input"]) < len(r["output"])
        assert r["output"][len(r["input"])] == " "  # cut at a word boundary
        cuts.add(len(r["input"].split()) / len(r["output"].split()))
    assert len(cuts) > 10  # random positions, not a fixed fraction
    assert sum(helpers.lang(r["output"]) in helpers.ACCEPT["ind"] for r in comp) >= 34


def test_split_prefix_handles_unspaced_scripts_and_too_short_sentences():
    rng = random.Random(0)
    for _ in range(50):
        p = parallel.split_prefix("今日は天気が良いです", rng)
        assert p and "今日は天気が良いです".startswith(p) and len(p) < 10
    assert parallel.split_prefix("x", rng) is None


def test_fewer_pairs_than_asked_is_reported_in_the_manifest_or_stops(tmp_path):
    tsv = tmp_path / "eng-ind.tsv"
    tsv.write_text("eng\tind\nHello there.\tHalo semua.\nbroken line without tab\n\tKosong.\n"
                   "Good morning.\tSelamat pagi.\n", encoding="utf-8")
    cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"],
                         parallel={"corpus": str(tsv), "pairs": 1000})
    manifest = export(cfg, tmp_path / "out")
    stats = manifest.entries["sdrrl-only-mt-comp_eng-ind_mt"].parallel
    assert (stats["asked"], stats["available"], stats["used"]) == (1000, 3, 2)
    assert stats["dropped"] == {"malformed line": 1, "empty side": 1}
    assert any("2 usable pairs, fewer than the 1000 asked" in n for n in manifest.notes)
    saved = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert saved["entries"]["sdrrl-only-mt-comp_eng-ind_comp"]["parallel"]["used"] == 2

    strict = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"],
                            parallel={"corpus": str(tsv), "pairs": 1000, "allow_fewer": False})
    with pytest.raises(SdrrlError, match="2 usable pairs, fewer than the 1000 asked"):
        export(strict, tmp_path / "out2")


def test_a_corpus_without_usable_pairs_never_gives_an_empty_dataset(tmp_path):
    tsv = tmp_path / "eng-ind.tsv"
    tsv.write_text("no tabs here\nnor here\n", encoding="utf-8")
    cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"], parallel={"corpus": str(tsv)})
    with pytest.raises(SdrrlError, match="no usable pairs"):
        export(cfg, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.jsonl"))


def test_jsonl_corpus_in_opus_layout(tmp_path):
    path = tmp_path / "eng-ind.jsonl"
    path.write_text("\n".join(json.dumps({"translation": {"en": f"Sentence number {i} is here.",
                                                          "id": f"Kalimat nomor {i} ada di sini."}})
                              for i in range(5)) + "\n", encoding="utf-8")
    sample = parallel.sample_pairs(str(path), "eng", "ind", 3, seed=1)
    assert len(sample.pairs) == 3 and all(t.startswith("Kalimat") for _, t in sample.pairs)
    assert sample.pairs == parallel.sample_pairs(str(path), "eng", "ind", 3, seed=1).pairs


def test_opus100_offline_gives_a_clear_error_naming_the_override(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SdrrlError, match="Helsinki-NLP/opus-100.*en-id.*parallel.corpus"):
        parallel.sample_pairs("opus100", "eng", "ind", 10, seed=1)
    with pytest.raises(SdrrlError, match="OPUS-100 pairs every language with English only"):
        parallel.sample_pairs("opus100", "fra", "ind", 10, seed=1)


@pytest.mark.parametrize("header", ["eng\tind\r\n", ""])
def test_tsv_saved_by_a_windows_editor_bom_and_crlf(tmp_path, header):
    """A UTF-8 BOM is not part of the header or of the first sentence."""
    tsv = tmp_path / "eng-ind.tsv"
    tsv.write_bytes(("\ufeff" + header + "Hello there.\tHalo semua.\r\nGood morning.\tSelamat pagi.\r\n")
                    .encode("utf-8"))
    sample = parallel.sample_pairs(str(tsv), "eng", "ind", 10, seed=1)
    assert sorted(sample.pairs) == [("Good morning.", "Selamat pagi."), ("Hello there.", "Halo semua.")]
    assert sample.available == 2


@pytest.mark.parametrize("sentence", ["ฉันไม่ชอบดื่มกาแฟตอนเช้า", "ខ្ញុំចូលចិត្តភាសាខ្មែរ"])
def test_unspaced_thai_and_khmer_are_cut_between_letters_not_inside_one(sentence):
    """Thai and Khmer vowel/tone signs are combining marks (and a Khmer coeng joins the next
    consonant): a prefix ending before one would hand the model a broken letter."""
    import unicodedata

    rng = random.Random(0)
    cuts = set()
    for _ in range(300):
        p = parallel.split_prefix(sentence, rng)
        assert p and sentence.startswith(p) and len(p) < len(sentence)
        rest = sentence[len(p)]
        assert not unicodedata.category(rest).startswith("M"), (p, rest)
        assert not p.endswith("\u17d2")  # Khmer coeng: the subscript consonant belongs to it
        cuts.add(len(p))
    assert len(cuts) > 3  # still a random position
    # Japanese (no combining marks) keeps the very same cuts as before
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert [parallel.split_prefix("今日は天気が良いです", rng_a) for _ in range(20)] == \
        ["今日は天気が良いです"[:rng_b.randint(1, 9)] for _ in range(20)]
