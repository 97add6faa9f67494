"""D_comp from monolingual target-language text (beyond the paper): the shipped Indonesian sample,
JSON Lines, a `datasets` folder, sentence splitting, the manifest, D_mt switched off."""

from __future__ import annotations

import json
import re

import pytest

from fixtures.compose import helpers
from sdrrl.compose import monolingual
from sdrrl.compose.export import export
from sdrrl.errors import SdrrlError
from sdrrl.registry import validate

MONO = helpers.SAMPLE / "monolingual" / "ind.txt"
COMP = "Complete the following sentence in Indonesian according to its context."


def _sentences_of_sample() -> set[str]:
    out = set()
    for doc in MONO.read_text(encoding="utf-8").splitlines():
        out.update(s.strip() for s in re.split(r"(?<=[.!?])\s+", doc) if s.strip())
    return out


def test_sentence_split():
    assert monolingual.sentences("Satu dua. Tiga empat!  Lima?\nEnam tujuh 3.5 delapan") == [
        "Satu dua.", "Tiga empat!", "Lima?", "Enam tujuh 3.5 delapan"]
    assert monolingual.sentences('Dia berkata "ya." Lalu pergi.') == ['Dia berkata "ya."', "Lalu pergi."]
    assert monolingual.sentences("日本の首都は東京です。猫が好きです！本当？") == [
        "日本の首都は東京です。", "猫が好きです！", "本当？"]
    assert monolingual.sentences("ខ្ញុំស្រលាញ់ប្រទេសកម្ពុជា។តើអ្នកសុខសប្បាយទេ?") == [
        "ខ្ញុំស្រលាញ់ប្រទេសកម្ពុជា។", "តើអ្នកសុខសប្បាយទេ?"]
    thai = "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนกัน\nแมวนอนอยู่บนโต๊ะ"
    assert monolingual.sentences(thai, "tha") == ["วันนี้อากาศดีมาก", "เราไปเดินเล่นที่สวนกัน", "แมวนอนอยู่บนโต๊ะ"]
    assert monolingual.sentences(thai) == ["วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนกัน", "แมวนอนอยู่บนโต๊ะ"]


def test_comp_from_shipped_monolingual_file_without_parallel_corpus(tmp_path):
    cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"],
                         parallel={"corpus": str(tmp_path / "no-such-corpus.tsv"), "mt": False},
                         completion={"corpus": str(MONO), "sentences": 30})
    manifest = export(cfg, tmp_path / "out")
    out = tmp_path / "out"
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"sdrrl-only-mt-comp_eng-ind_comp"}  # D_mt switched off: no parallel corpus read
    validate(out)
    rows = helpers.rows(out / "sdrrl-only-mt-comp_eng-ind_comp.jsonl")
    sentences = _sentences_of_sample()
    assert len(rows) == 30 and len({r["output"] for r in rows}) == 30
    parallel_targets = {line.split("\t")[1].strip() for line in
                        (helpers.SAMPLE / "parallel" / "eng-ind.tsv").read_text(encoding="utf-8").splitlines()[1:]}
    for r in rows:
        assert r["instruction"] == COMP
        assert r["output"] in sentences and r["output"] not in parallel_targets  # sentences, not documents
        assert r["output"].startswith(r["input"]) and r["input"] != r["output"]
        nxt = r["output"][len(r["input"])]
        assert nxt == " " or len(r["output"].split()) == 1  # cut at a word boundary
    entry = manifest.entries["sdrrl-only-mt-comp_eng-ind_comp"]
    assert entry.config["completion_corpus"] == str(MONO)
    assert entry.inputs[0]["corpus"] == str(MONO) and len(entry.inputs[0]["sha256"]) == 64
    assert entry.monolingual["documents"] == 21 and entry.monolingual["used"] == 30
    assert entry.monolingual["sentences_available"] == len(sentences)


def test_monolingual_comp_beside_parallel_mt(tmp_path):
    cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"], completion={"corpus": str(MONO)})
    export(cfg, tmp_path / "out")
    mt = helpers.rows(tmp_path / "out" / "sdrrl-only-mt-comp_eng-ind_mt.jsonl")
    comp = helpers.rows(tmp_path / "out" / "sdrrl-only-mt-comp_eng-ind_comp.jsonl")
    assert len(mt) == 80  # 40 pairs, both directions, from the parallel corpus
    # completion.sentences defaults to parallel.pairs (40)
    assert len(comp) == 40 and {r["output"] for r in comp} < _sentences_of_sample()
    # asking for more than the sample holds (61 sentences): all of them, and a note
    cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"], completion={"corpus": str(MONO), "sentences": 100})
    manifest = export(cfg, tmp_path / "out2")
    comp = helpers.rows(tmp_path / "out2" / "sdrrl-only-mt-comp_eng-ind_comp.jsonl")
    assert {r["output"] for r in comp} == _sentences_of_sample() and len(comp) == 61
    assert any("monolingual corpus gave 61 usable sentences" in n for n in manifest.notes)


def test_datasets_folder_and_text_column(tmp_path):
    folder = tmp_path / "corpus_ind"
    folder.mkdir()
    docs = MONO.read_text(encoding="utf-8").splitlines()
    with open(folder / "train.jsonl", "w", encoding="utf-8") as fh:
        for i, d in enumerate(docs):
            fh.write(json.dumps({"id": i, "body": d}) + "\n")
    s = monolingual.sample_sentences(str(folder), "ind", 10, 1, text_column="body", max_documents=5)
    assert len(s.sentences) == 10 and s.documents == 5
    first5 = set()
    for d in docs[:5]:
        first5.update(monolingual.sentences(d))
    assert set(s.sentences) <= first5
    assert s.source["corpus"] == str(folder) and s.source["documents_read"] == 5
    with pytest.raises(SdrrlError, match="no column 'text'.*body"):
        monolingual.sample_sentences(str(folder), "ind", 10, 1)
    # the same draw for the same seed; the JSONL file read directly gives the same sentences
    again = monolingual.sample_sentences(str(folder / "train.jsonl"), "ind", 10, 1, text_column="body",
                                         max_documents=5)
    assert again.sentences == s.sentences


def test_clear_errors(tmp_path):
    with pytest.raises(SdrrlError, match="not found"):
        monolingual.sample_sentences(str(tmp_path / "missing_{tgt}.txt"), "ind", 10, 1)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(SdrrlError, match="no usable sentences"):
        monolingual.sample_sentences(str(empty), "ind", 10, 1)
    with pytest.raises(SdrrlError, match="completion.sentences"):
        helpers.config(tmp_path, completion={"corpus": str(MONO), "sentences": 0})
    with pytest.raises(SdrrlError, match="Unknown config key"):
        helpers.config(tmp_path, completion={"corpus": str(MONO), "sentence": 10})
