"""sdrrl.metrics: MKQA F1, XL-Sum ROUGE, spBLEU, COMET and off-target rate, pinned to values worked
out by hand and to the reference packages (sacrebleu, multilingual-rouge, comet)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.languages import LANGUAGES
from eval_utils import train_stand_in_spm

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


# ---- MKQA -------------------------------------------------------------------------------------

@pytest.mark.parametrize("prediction, answers, lang, expected", [
    ("the Eiffel Tower", ["Eiffel Tower"], "eng", 1.0),          # English articles removed
    ("Jane Austen wrote it", ["Jane Austen"], "eng", 2 * 0.5 * 1 / 1.5),  # P=2/4, R=2/2
    ("Tokyo!", ["tokyo"], "eng", 1.0),                           # lowercase, ASCII punctuation
    ("Austen", ["Jane Austen", "Austen"], "eng", 1.0),           # best over aliases
    ("en hund", ["hund"], "dan", 1.0),                           # Danish articles en|et
    ("ei bok", ["bok"], "nob", 1.0),                             # Norwegian adds ei
    ("o Brasil", ["Brasil"], "por", 1.0),                        # Portuguese o|a|os|as|um|...
    ("az alma", ["alma"], "hun", 1.0),                           # Hungarian a|az|egy
    ("se talo", ["talo"], "fin", 1.0),                           # Finnish se|yks|yksi
    ("chiếc xe", ["xe"], "vie", 1.0),                            # Vietnamese của|là|cái|chiếc|những
    ("the dom", ["dom"], "pol", 2 * (1 / 2) * 1 / 1.5),          # no Polish articles: "the" stays
    ("東京都", ["東京"], "jpn", 2 * (2 / 3) * 1 / (2 / 3 + 1)),   # one token per character
    ("東京。", ["東京"], "jpn", 0.8),                               # "。" is not ASCII: kept as a token
    ("กรุงเทพ", ["กรุงเทพฯ"], "tha", 2 * 1 * (7 / 8) / (1 + 7 / 8)),  # ฯ is not ASCII punctuation
    ("ភ្នំពេញ", ["ភ្នំពេញ"], "khm", 1.0),
    ("a b a", ["a a c"], "kor", 2 * (2 / 3) * (2 / 3) / (4 / 3)),   # multiset overlap: a twice
])
def test_mkqa_f1_hand_worked(prediction, answers, lang, expected):
    from sdrrl.metrics import mkqa

    assert mkqa.f1(prediction, answers, lang) == pytest.approx(expected)


def test_mkqa_empty_prediction_and_no_answer():
    from sdrrl.metrics import mkqa

    assert mkqa.f1("", ["Paris"], "eng") == 0.0
    assert mkqa.f1(None, ["Paris"], "eng") == 0.0
    assert mkqa.f1("", [], "eng") == 1.0          # no answer, no prediction: agree
    assert mkqa.f1("", [""], "eng") == 1.0
    assert mkqa.f1("Paris", [""], "eng") == 0.0   # no answer, but predicted one
    assert mkqa.f1("the", ["a"], "eng") == 1.0    # both normalise to nothing
    assert mkqa.f1("Paris", ["", "Paris"], "eng") == 1.0


def test_mkqa_a_single_answer_string_is_one_answer_not_its_characters():
    from sdrrl.metrics import mkqa

    assert mkqa.f1("Paris", "Paris", "eng") == 1.0 == mkqa.f1("Paris", ["Paris"], "eng")
    assert mkqa.f1("Jane Austen wrote it", "Jane Austen", "eng") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert mkqa.exact_match("the Paris", "Paris", "eng") == 1.0


def test_mkqa_gold_answers_flatten_text_and_aliases():
    from sdrrl.metrics import mkqa

    entries = [{"type": "entity", "text": "Jane Austen", "aliases": ["Austen", "J. Austen"]},
               {"type": "unanswerable", "text": None, "aliases": []}]
    assert mkqa.gold_answers(entries) == ["Jane Austen", "Austen", "J. Austen", ""]
    assert mkqa.is_answerable(["", "x"]) and not mkqa.is_answerable([""])


# ---- ROUGE (XL-Sum) -----------------------------------------------------------------------------

PAIRS = {
    "tha": ("สวัสดีครับ วันนี้อากาศดีมาก", "วันนี้อากาศดี แต่พรุ่งนี้ฝนจะตก"),
    "kor": ("서울에서 새로운 도서관이 문을 열었다.", "서울에 새 도서관이 문을 열었다"),
    "ukr": ("У Києві відкрили нову бібліотеку.", "Нову бібліотеку відкрили у Львові"),
    "vie": ("Hà Nội mở thư viện mới vào thứ Bảy.", "Thư viện mới ở Hà Nội mở cửa"),
    "ind": ("Perpustakaan baru dibuka di Jakarta.", "Jakarta membuka perpustakaan baru"),
}


@pytest.mark.parametrize("lang", sorted(PAIRS))
def test_rouge_matches_the_xlsum_scorer(lang):
    from multilingual_rouge import rouge_scorer

    from sdrrl.metrics import rouge

    reference, prediction = PAIRS[lang]
    ref = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True,
                                   lang=rouge.scorer_language(lang)).score(reference, prediction)
    ours = rouge.score(prediction, reference, lang)
    assert ours.rouge1 == pytest.approx(ref["rouge1"].fmeasure)
    assert ours.rougeL == pytest.approx(ref["rougeL"].fmeasure)
    assert 0.0 < ours.rougeL <= ours.rouge1 < 1.0


def test_rouge_japanese_segments_words_offline():
    from sdrrl.metrics import rouge

    # MeCab (unidic-lite): 今日|は|良い|天気|です vs 今日|は|天気|が|良い|です; "。" is dropped.
    # ROUGE-1: 5 common, P=5/5, R=5/6 -> 10/11. ROUGE-L: LCS 4, P=4/5, R=4/6 -> 8/11.
    r = rouge.score("今日は良い天気です。", "今日は天気が良いです", "jpn")
    assert r.rouge1 == pytest.approx(10 / 11) and r.rougeL == pytest.approx(8 / 11)


def test_rouge_hand_worked_ukrainian_and_empty():
    from sdrrl.metrics import rouge

    # lowercased, punctuation split off: привіт|світе|як|справи vs привіт|світе -> P=2/4, R=1
    r = rouge.score("Привіт, світе! Як справи?", "привіт світе", "ukr")
    assert r.rouge1 == pytest.approx(2 / 3) and r.rougeL == pytest.approx(2 / 3)
    assert rouge.score("", "привіт світе", "ukr") == (0.0, 0.0)
    assert rouge.score(None, "привіт світе", "ukr") == (0.0, 0.0)
    assert rouge.score("привіт", "", "ukr") == (0.0, 0.0)


def test_rouge_stemming_keeps_stopwords_like_the_scorer(monkeypatch):
    """English/Portuguese stem with Snowball but leave NLTK's stopwords alone. The stopword list
    here is a short test-made one (tests/fixtures/eval/nltk_data), loaded by both implementations."""
    import nltk
    from multilingual_rouge import rouge_scorer

    from sdrrl.metrics import rouge

    monkeypatch.setattr(nltk.data, "path", [str(FIXTURES / "nltk_data"), *nltk.data.path])
    rouge._scorer.cache_clear()
    # "having" and "have" are stopwords: not stemmed, so they do not match (Snowball alone would
    # make both "have"). "running"/"runs" stem to "run" and match. Tokens: having|fun|running vs
    # have|fun|runs -> 2 of 3 match: ROUGE-1 = ROUGE-L = 2/3.
    r = rouge.score("having fun running", "have fun runs", "eng")
    assert r.rouge1 == pytest.approx(2 / 3) and r.rougeL == pytest.approx(2 / 3)
    for lang, (pred, ref) in {"eng": ("The cats were running home", "A cat runs to the home"),
                              "por": ("Os gatos estavam correndo", "O gato estava a correr")}.items():
        expected = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True,
                                            lang=rouge.scorer_language(lang)).score(ref, pred)
        ours = rouge.score(pred, ref, lang)
        assert (ours.rouge1, ours.rougeL) == pytest.approx(
            (expected["rouge1"].fmeasure, expected["rougeL"].fmeasure))
    rouge._scorer.cache_clear()


def test_rouge_without_nltk_stopwords_says_how_to_install(tmp_path):
    code = ("import nltk; nltk.data.path[:] = [%r]\n"
            "from sdrrl.metrics import rouge\n"
            "try:\n    rouge.score('cats run', 'a cat runs', 'eng')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n") % str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("SdrrlError") and "nltk.downloader stopwords" in out and "corpora/stopwords" in out


# ---- spBLEU -------------------------------------------------------------------------------------

def test_bleu_hand_worked_and_equal_to_sacrebleu():
    import sacrebleu

    from sdrrl.metrics.bleu import corpus_bleu

    # 13a: 1-grams 5/6 (the is clipped), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3, no brevity penalty
    r = corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"], tokenize="13a")
    assert r.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert r.signature == f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}"
    hyps = ["A quick brown fox.", "", "Nothing matches here"]
    refs = ["The quick brown fox.", "Something", "Totally different words"]
    assert corpus_bleu(hyps, refs, tokenize="13a").score == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score)
    assert corpus_bleu(["these are the same words"], ["these are the same words"], tokenize="13a").score == pytest.approx(100.0)
    with pytest.raises(SdrrlError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"], tokenize="13a")


def test_spbleu_missing_model_is_a_clear_error_not_a_download(tmp_path, monkeypatch):
    from sacrebleu.tokenizers import tokenizer_spm

    from sdrrl.metrics.bleu import corpus_bleu

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("sacrebleu tried to download")

    monkeypatch.setattr(tokenizer_spm, "download_file", no_network)
    with pytest.raises(SdrrlError) as err:
        corpus_bleu(["a b"], ["a b"])
    message = str(err.value)
    assert str(tmp_path / "models" / "flores200sacrebleuspm") in message
    assert "flores200sacrebleuspm" in message and "SACREBLEU" in message


def test_spbleu_uses_the_flores200_tokenizer_when_present(tmp_path, monkeypatch):
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers import tokenizer_spm

    from sdrrl.metrics.bleu import corpus_bleu

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
    train_stand_in_spm(tmp_path / "models" / "flores200sacrebleuspm")
    hyps, refs = ["市議会は公園を承認した。", "Vědci našli led."], ["市議会は火曜日に新しい公園を承認した。", "Vědci našli vodní led."]
    ours = corpus_bleu(hyps, refs)
    direct = BLEU(tokenize="flores200").corpus_score(hyps, [refs])
    assert ours.score == pytest.approx(direct.score) and 0 < ours.score < 100
    assert "tok:flores200" in ours.signature


# ---- COMET --------------------------------------------------------------------------------------

def test_comet_corpus_score_matches_comet_predict(tiny_models):
    from sdrrl.metrics import comet

    srcs = ["Hello world.", "The cat sleeps.", "Good morning."]
    hyps = ["Ahoj světe.", "Kočka spí.", ""]
    refs = ["Ahoj světe.", "Kočka spí.", "Dobré ráno."]
    result = comet.corpus_score(srcs, hyps, refs, model=str(tiny_models.comet_ref), gpus=0)
    direct = comet.load(str(tiny_models.comet_ref)).predict(
        [{"src": s, "mt": h, "ref": r} for s, h, r in zip(srcs, hyps, refs)], gpus=0, progress_bar=False)
    assert result.scores == pytest.approx(list(direct.scores), abs=1e-6)
    assert result.score == pytest.approx(sum(result.scores) / 3)
    # the checkpoint's folder names the same model
    assert comet.resolve_checkpoint(str(tiny_models.comet_ref.parents[1])) == tiny_models.comet_ref
    with pytest.raises(SdrrlError, match="3 sources, 2 hypotheses"):
        comet.corpus_score(srcs, hyps[:2], refs, model=str(tiny_models.comet_ref))


def test_comet_missing_model_says_what_to_place_where(tmp_path, monkeypatch):
    from sdrrl.metrics import comet

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        comet.resolve_checkpoint("sdrrl-test/no-such-comet-model")
    assert "huggingface-cli download sdrrl-test/no-such-comet-model" in str(err.value)
    assert "checkpoints/model.ckpt" in str(err.value)
    with pytest.raises(ModelNotFoundError, match="no checkpoint file"):
        comet.resolve_checkpoint(str(tmp_path))


def test_comet_missing_encoder_stops_flores_before_generation(tiny_models, tmp_path, monkeypatch):
    """The checkpoint is there but its encoder (xlm-roberta-large for wmt22-comet-da) is not in the
    offline cache: COMET would fail only in the aggregation, after every sentence was generated.
    The FLORES load-time check must catch it, with the "what to place where" message."""
    import shutil

    import torch
    from sacrebleu.tokenizers import tokenizer_spm

    from sdrrl.metrics import benchmarks, comet

    model_dir = tmp_path / "comet-without-encoder"
    shutil.copytree(tiny_models.comet_ref.parents[1], model_dir)
    ckpt_path = model_dir / "checkpoints" / "model.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["pretrained_model"] = "sdrrl-test/no-such-encoder"
    torch.save(ckpt, ckpt_path)
    hparams = model_dir / "hparams.yaml"
    hparams.write_text("\n".join("pretrained_model: sdrrl-test/no-such-encoder" if line.startswith("pretrained_model:")
                                 else line for line in hparams.read_text().splitlines()) + "\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv(benchmarks.ENV_COMET_MODEL, str(model_dir))
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    train_stand_in_spm(tmp_path / "sacrebleu" / "models" / "flores200sacrebleuspm")

    with pytest.raises(ModelNotFoundError) as err:  # scoring alone: a clear error, not a stack trace
        comet.corpus_score(["a"], ["b"], ["c"], model=str(model_dir), gpus=0)
    assert "checkpoints/model.ckpt" in str(err.value) and "pretrained_model" in str(err.value)
    assert "encoder 'sdrrl-test/no-such-encoder'" in str(err.value)
    with pytest.raises(SdrrlError) as err:  # and the task stops at load time, before generating
        benchmarks.check_ready("flores", "ces", "eng")
    assert "pretrained_model" in str(err.value) and "SDRRL_COMET_MODEL=none" in str(err.value)


# ---- off-target rate ----------------------------------------------------------------------------

def test_offtarget_uses_cld3_codes_from_the_language_table():
    from sdrrl.metrics import offtarget

    czech = "Dobrý den, jak se máte? Dnes je opravdu hezké počasí."
    english = "Hello there, how are you today? The weather is lovely."
    norwegian = "Hei, hvordan har du det i dag? Været er veldig fint."
    assert offtarget.detect(czech) == "cs" and offtarget.detect(norwegian) == "no"
    assert not offtarget.is_off_target(czech, "ces")
    assert offtarget.is_off_target(english, "ces")
    assert not offtarget.is_off_target(norwegian, "nob")
    assert offtarget.is_off_target("", "eng") and offtarget.detect("  ") == "und"
    assert offtarget.rate([czech, english, czech, ""], "ces") == 0.5
    assert offtarget.rate([], "ces") == 0.0


def test_offtarget_accepts_the_table_s_extra_cld3_labels():
    from sdrrl.metrics import offtarget

    assert offtarget.detect("Sungai mengalir dari pegunungan ke laut.") == "ms"
    assert not offtarget.is_off_target("Sungai mengalir dari pegunungan ke laut.", "ind")
    assert offtarget.is_off_target("Sungai mengalir dari pegunungan ke laut.", "por")


# Text in which no language can be identified: no letter at all. Common to every language, then
# each script's own digits and punctuation (Latin and Cyrillic use the common ones; Cyrillic's
# numero sign; Japanese and Korean full-width forms and CJK punctuation; Thai and Khmer digits and
# signs). CLD3 labels all of them with a language (mostly "ja", reliably), so the rule decides first.
LETTERLESS = ["", "   \n\t", "::::", "1234", "12:30-14:45", "...!?", "3.14 + 2 = 5.14", "(—) [•] «»", "😀👍🎉",
              "№ 5", "１２３！？", "。、「」・…", "［１］", "๑๒๓ ๔๕", "๏ ๚ ๛", "១២៣ ៤៥", "។ ៕ ៖", "#$%&*@^_~|\\/"]


@pytest.mark.parametrize("iso", sorted(LANGUAGES))
def test_text_without_letters_is_undetermined_and_off_target_in_every_language(iso):
    from sdrrl.metrics import offtarget

    for text in LETTERLESS:
        assert offtarget.letters(text) == 0, text
        assert offtarget.detect(text) == "und", text
        assert offtarget.judge(text, iso) == offtarget.UNDETERMINED, (iso, text)
        assert offtarget.is_off_target(text, iso), (iso, text)
    assert offtarget.rate(LETTERLESS, iso) == 1.0


def test_real_sentences_stay_on_target_in_every_language():
    """The language table's sample sentences (short, real) are judged on-target for their language,
    and off-target (not undetermined) for every other language whose CLD3 labels differ."""
    import json
    from importlib import resources

    from sdrrl import languages
    from sdrrl.metrics import offtarget

    samples = json.loads(resources.files("sdrrl").joinpath("data/sample/language_samples.json").read_text("utf-8"))
    assert set(samples) == set(languages.LANGUAGES)
    for iso, sentences in samples.items():
        for sentence in sentences:
            assert offtarget.judge(sentence, iso) == offtarget.ON, (iso, sentence)
            others = [o for o in languages.LANGUAGES if not languages.get(o).cld3_codes & languages.get(iso).cld3_codes]
            assert all(offtarget.judge(sentence, o) == offtarget.OFF for o in others), (iso, sentence)
    # one letter in any script is enough to ask CLD3: a Hangul syllable, kana, Thai and Khmer words
    assert offtarget.judge("네", "kor") == offtarget.ON and offtarget.judge("は", "jpn") == offtarget.ON
    assert offtarget.judge("ไทย", "tha") == offtarget.ON and offtarget.judge("ខ្មែរ", "khm") == offtarget.ON
    assert offtarget.letters("1945年") == 1 and offtarget.judge("1945年", "jpn") != offtarget.UNDETERMINED


def test_generation_tasks_report_undetermined_beside_the_off_target_rate():
    """Every benchmark with an off-target rate reports the undetermined share; a bare number, the
    random tiny model's '::::', counts as off-target and as undetermined."""
    from sdrrl import catalog
    from sdrrl.metrics import benchmarks

    with_rate = [b for b in catalog.BENCHMARKS.values() if "offtarget" in b.metric_names]
    assert {b.name for b in with_rate} == {"flores", "xlsum", "mkqa", "offtarget"}
    assert all("undetermined" in b.averaged_metrics for b in with_rate)
    doc = {"lang": "jpn", "answers": ["7"]}
    assert benchmarks.sample_metrics("mkqa", doc, "7") == {"f1": 1.0, "offtarget": 1.0, "undetermined": 1.0}
    assert benchmarks.sample_metrics("mkqa", doc, ["::::"])["offtarget"] == 1.0
    judged = benchmarks.sample_metrics("mkqa", doc, "一週間は七日です。")
    assert judged["offtarget"] == 0.0 and judged["undetermined"] == 0.0
    english = benchmarks.sample_metrics("offtarget", {"lang": "jpn"}, "A week has seven days, as everyone knows.")
    assert english == {"offtarget": 1.0, "undetermined": 0.0}
    assert benchmarks.aggregate("offtarget", [english, {"offtarget": 1.0, "undetermined": 1.0},
                                              {"offtarget": 0.0, "undetermined": 0.0}]) == {
        "offtarget": pytest.approx(2 / 3), "undetermined": pytest.approx(1 / 3)}


# ---- the COMET model record ---------------------------------------------------------------------

def test_the_comet_record_names_the_model_and_the_checkpoint_sha256(tiny_models, monkeypatch, tmp_path):
    import hashlib

    from sacrebleu.tokenizers import tokenizer_spm

    from sdrrl.metrics import benchmarks

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))  # spBLEU beside it
    train_stand_in_spm(tmp_path / "sacrebleu" / "models" / "flores200sacrebleuspm")
    digest = hashlib.sha256(Path(tiny_models.comet_ref).read_bytes()).hexdigest()
    expected = f"{Path(tiny_models.comet_ref).resolve()}|sha256:{digest}"
    assert benchmarks.comet_record(str(tiny_models.comet_ref)) == expected
    folder = Path(tiny_models.comet_ref).parents[1]  # the folder above checkpoints/ names the same file
    assert benchmarks.comet_record(str(folder)) == f"{folder.resolve()}|sha256:{digest}"
    assert benchmarks.comet_record(None) == "off"
    monkeypatch.setenv("SDRRL_COMET_MODEL", str(tiny_models.comet_ref))
    assert benchmarks.AGGREGATIONS["comet_model"]([None, None]) == expected   # what the lm-eval task writes
    monkeypatch.setenv("SDRRL_COMET_MODEL", "none")
    assert benchmarks.AGGREGATIONS["comet_model"]([None]) == "off"
    flores = {"source": "a", "reference": "b", "src_lang": "ces", "tgt_lang": "eng"}
    samples = [benchmarks.sample_metrics("flores", flores, "b")]
    assert benchmarks.aggregate("flores", samples, with_comet=False)["comet_model"] == "off"
    scored = benchmarks.aggregate("flores", samples, comet_model_name=str(tiny_models.comet_ref))
    assert scored["comet_model"] == expected and scored["comet"] == scored["comet"]
