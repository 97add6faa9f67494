"""Model-free parts of the data pipeline: config, cache, segmentation, sampling, heuristics, shards,
bad input, progress, and the code around the vLLM engine (with a fake engine)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdrrl import layout
from sdrrl.errors import SdrrlError
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.pipeline import config, segment, workdir
from sdrrl.pipeline.cache import Cache, make_key
from sdrrl.pipeline.filters import HeuristicFilter, summarize
from sdrrl.pipeline.progress import Progress
from sdrrl.pipeline.sample import choose_sources, run_sample

FIXTURES = Path(__file__).parent / "fixtures" / "pipeline"


# -- config ---------------------------------------------------------------------------------------

def test_config_defaults_are_the_papers_values():
    cfg = config.from_dict({})
    assert cfg.translate.model == "facebook/nllb-200-3.3B"
    assert cfg.translate.beam_size == 4
    assert cfg.translate.max_length == 200
    assert cfg.filter.qe_model == "Unbabel/wmt22-cometkiwi-da"
    assert cfg.filter.qe_threshold == 0.8
    assert cfg.filter.lid_backend == "gcld3"
    assert cfg.sample.p_generated == 0.5
    assert cfg.generate.template == "default"
    assert cfg.source_lang == "eng"


def test_config_yaml_loads_and_rejects_typos(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("work_dir: w\ntarget_langs: [ces, jpn]\ntranslate: {beam_size: 2}\n")
    cfg = config.load(good)
    assert cfg.translate.beam_size == 2 and cfg.target_langs == ["ces", "jpn"]
    assert cfg.work == (tmp_path / "w").resolve()  # relative to the YAML, not the cwd
    bad = tmp_path / "bad.yaml"
    bad.write_text("translate: {beem_size: 2}\n")
    with pytest.raises(SdrrlError, match="translate.beem_size"):
        config.load(bad)


@pytest.mark.parametrize("data, match", [
    ({"target_langs": ["xx"]}, "Unknown language"),
    ({"target_langs": ["ces_Latn"]}, "use 'ces'"),
    ({"source_lang": "ces"}, "not a resource-rich source"),
    ({"translate": {"backend": "marian"}}, "translate.backend"),
    ({"sample": {"p_generated": 1.5}}, "not a probability"),
    ({"translate": {"beam_size": 0}}, "positive integer"),
])
def test_config_bad_values_are_clear_errors(data, match):
    with pytest.raises(SdrrlError, match=match):
        config.from_dict(data)


# -- cache ---------------------------------------------------------------------------------------

def test_cache_keys_depend_on_every_input_but_not_on_order():
    base = make_key("translation", "m", {"beam_size": 4, "max_length": 200}, src="eng_Latn", tgt="ces_Latn", text="Hi.")
    assert base == make_key("translation", "m", {"max_length": 200, "beam_size": 4}, tgt="ces_Latn", src="eng_Latn",
                            text="Hi.")
    variants = [
        make_key("translation", "m2", {"beam_size": 4, "max_length": 200}, src="eng_Latn", tgt="ces_Latn", text="Hi."),
        make_key("translation", "m", {"beam_size": 5, "max_length": 200}, src="eng_Latn", tgt="ces_Latn", text="Hi."),
        make_key("translation", "m", {"beam_size": 4, "max_length": 200}, src="fra_Latn", tgt="ces_Latn", text="Hi."),
        make_key("translation", "m", {"beam_size": 4, "max_length": 200}, src="eng_Latn", tgt="jpn_Jpan", text="Hi."),
        make_key("translation", "m", {"beam_size": 4, "max_length": 200}, src="eng_Latn", tgt="ces_Latn", text="Hi. "),
        make_key("qe", "m", {"beam_size": 4, "max_length": 200}, src="eng_Latn", tgt="ces_Latn", text="Hi."),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_cache_round_trip_and_sharing_between_processes(tmp_path):
    path = tmp_path / "c.sqlite"
    with Cache(path) as cache:
        cache.put_many("translation", {"k1": "Ahoj.", "k2": "Svět"})
        cache.put_many("translation", {"k1": "ignored: first value wins"})
        assert cache.get_many(["k1", "k2", "k3"]) == {"k1": "Ahoj.", "k2": "Svět"}
    # another process writes while we hold a connection; both see each other's rows
    with Cache(path) as cache:
        code = ("import sys; sys.path.insert(0, %r); from sdrrl.pipeline.cache import Cache; "
                "c = Cache(%r); c.put_many('qe', {'k3': 0.9}); c.close()") % (
            str(Path(__file__).resolve().parents[1] / "plugin"), str(path))
        subprocess.run([sys.executable, "-c", code], check=True)
        assert cache.get("k3") == 0.9 and cache.count() == 3 and cache.count("qe") == 1


def test_cache_on_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SdrrlError, match="cache"):
        Cache(blocker / "sub" / "c.sqlite")


# -- segmentation --------------------------------------------------------------------------------

def _fixture_texts() -> dict[str, str]:
    return {r["id"]: r["text"] for r in read_jsonl(FIXTURES / "formatted_answers.jsonl")}


@pytest.mark.parametrize("max_tokens", [200, 12])
def test_split_then_reassemble_is_identity(max_tokens):
    for name, text in _fixture_texts().items():
        layout = segment.split(text, max_tokens)
        assert segment.reassemble(layout, layout.segments) == text, name


def test_reassembly_keeps_layout_and_code_is_never_sent():
    texts = _fixture_texts()
    sent: list[str] = []

    def fake_translate(segments):  # marks every translated segment; a real test of layout only
        sent.extend(segments)
        return [f"<{s.upper()}>" for s in segments]

    code = texts["code"]
    layout = segment.split(code)
    out = segment.reassemble(layout, fake_translate(layout.segments))
    assert "```python\ndef reverse(text):\n    # walk backwards through the string\n    return text[::-1]\n```" in out
    assert not any("def reverse" in s or "walk backwards" in s for s in sent)
    assert out.startswith("<YOU CAN REVERSE A STRING IN PYTHON LIKE THIS:>\n\n```")

    lists = segment.reassemble(segment.split(texts["lists"]), fake_translate(segment.split(texts["lists"]).segments))
    assert lists.split("\n") == ["<HERE ARE THREE TIPS FOR A HEALTHY LIFE:>", "",
                                 "1. <EAT A BALANCED DIET WITH FRUIT AND VEGETABLES.>",
                                 "2. <EXERCISE FOR THIRTY MINUTES A DAY.>", "3. <SLEEP SEVEN TO EIGHT HOURS.>", "",
                                 "<FOLLOW THEM EVERY DAY, AND YOU WILL FEEL BETTER.>"]
    nested = segment.split(texts["bullets-nested"])
    assert nested.segments[:3] == ["Packing list:", "Clothes for five days", "two shirts"]
    out = segment.reassemble(nested, fake_translate(nested.segments))
    assert "\n  * <TWO SHIRTS>\n" in out and "\n> <REMEMBER: CHECK THE WEATHER BEFORE YOU LEAVE.>\n" in out
    assert "\n## <LAST STEP>\n" in out
    tilde = segment.split(texts["tilde-code-and-numbers"])
    assert tilde.segments == ["Run these commands:", "That is all.", "Good luck!"]  # code, 42, --- kept
    out = segment.reassemble(tilde, fake_translate(tilde.segments))
    assert out == "<RUN THESE COMMANDS:>\n~~~\nmake build\nmake test\n~~~\n\n42\n---\n<THAT IS ALL.>  \n<GOOD LUCK!>"
    crlf = segment.split(texts["windows-newlines"])
    assert segment.reassemble(crlf, fake_translate(crlf.segments)) == \
        "<FIRST LINE OF THE ANSWER.>\r\n<SECOND LINE OF THE ANSWER.>\r\n"
    lettered = segment.split(texts["lettered"])
    assert lettered.segments[1:4] == ["the red door", "the blue door", "neither of them"]
    assert "\n\n\n\n" in segment.reassemble(lettered, fake_translate(lettered.segments))


def test_long_lines_are_split_into_sentences_under_the_limit():
    text = _fixture_texts()["long-paragraph"]
    whole = segment.split(text, max_tokens=1000)
    assert len(whole.segments) == 1
    layout = segment.split(text, max_tokens=40)
    assert len(layout.segments) == 7
    assert all(segment.approx_tokens(s) <= 40 for s in layout.segments)
    assert layout.segments[0].startswith("The library") and layout.segments[0].endswith("city.")
    tiny = segment.split(text, max_tokens=8)  # overlong sentences: cut at clauses, then at words
    assert all(segment.approx_tokens(s) <= 8 for s in tiny.segments)
    assert segment.reassemble(tiny, tiny.segments) == text


# -- sampling -------------------------------------------------------------------------------------

def test_sampling_is_seeded_and_about_half():
    ids = [str(i) for i in range(2000)]
    a = choose_sources(ids, seed=42)
    assert a == choose_sources(ids, seed=42)
    assert a != choose_sources(ids, seed=43)
    assert 900 < a.count("G") < 1100
    assert set(choose_sources(ids, seed=1, p_generated=0.0)) == {"D"}


def test_run_sample_writes_the_contract_rows(tmp_path):
    write_jsonl(layout.source_path(tmp_path), [
        {"id": "a", "instruction": "Add.", "input": "2 and 3", "output": "5"},
        {"id": "b", "instruction": "Greet.", "input": "", "output": "Hello."}])
    write_jsonl(layout.responses_path(tmp_path), [{"id": "a", "response": "Five."}, {"id": "b", "response": "Hi!"}])
    run_sample(tmp_path, seed=3)
    rows = list(read_jsonl(layout.synth_path(tmp_path)))
    assert [set(r) for r in rows] == [{"id", "from", "x", "y", "y_hat"}] * 2
    assert rows[0]["x"] == "Add.\n2 and 3" and rows[1]["x"] == "Greet."
    assert rows[0]["y"] == "5" and rows[0]["y_hat"] == "Five."
    assert [r["from"] for r in rows] == choose_sources(["a", "b"], 3)
    write_jsonl(layout.responses_path(tmp_path), [{"id": "a", "response": "Five."}])
    with pytest.raises(SdrrlError, match="no generated response"):
        run_sample(tmp_path)


# -- heuristic filters -----------------------------------------------------------------------------

@pytest.mark.parametrize("source, translation, reason", [
    ("The weather was cold this morning.", "   ", "empty"),
    ("The weather was cold this morning.", "The weather was  cold this morning.", "copy_of_source"),
    ("The weather was cold this morning, so we stayed at home and read books.", "Zima.", "length_ratio"),
    ("Cold.", "Dnes ráno bylo chladné počasí, a proto jsme zůstali doma a četli knihy u krbu.", None),  # short source
    ("The weather was cold this morning.", "Bylo chladno chladno chladno chladno chladno chladno chladno.", "repetition"),
    ("Paris", "Paris", None),  # a name may stay the same
    ("The weather was cold this morning.", "Dnes ráno bylo chladné počasí.", None),
    ("Say ha ha ha ha ha ha ha ha.", "Řekni ha ha ha ha ha ha ha ha.", None),  # the source repeats too
])
def test_heuristic_filter_reasons(source, translation, reason):
    assert HeuristicFilter().check(source, translation)[0] == reason


def test_summary_counts_per_field_and_reason():
    rows = [{"id": "1", "x_mt": "a", "y_mt": None, "y_hat_mt": None}, {"id": "2", "x_mt": None, "y_mt": "b", "y_hat_mt": None}]
    excluded = [{"id": "1", "field": "y", "stage": "lid", "reason": "off_target:en"},
                {"id": "2", "field": "x", "stage": "qe", "reason": "qe_below_threshold"}]
    s = summarize("eng", "ces", rows, excluded, {})
    assert s["fields"]["x"] == {"translated": 2, "kept": 1, "rejected": {"qe:qe_below_threshold": 1}}
    assert s["fields"]["y_hat"] == {"translated": 0, "kept": 0, "rejected": {}}
    assert s["kept"] == 2 and s["rejected"] == 2


# -- shards ---------------------------------------------------------------------------------------

def test_shards_merge_in_row_order_and_missing_shards_fail_clearly(tmp_path):
    rows = [{"id": str(i)} for i in range(7)]
    final = tmp_path / "translate" / "eng-ces.jsonl"
    for i in (0, 2):
        workdir.write_output(final, workdir.take_shard(rows, 3, i), 3, i)
    assert not final.exists()
    with pytest.raises(SdrrlError, match=r"shard\(s\) 1 of 3 are not finished"):
        workdir.read_output(final, "translate")
    workdir.write_output(final, workdir.take_shard(rows, 3, 1), 3, 1)  # the last shard merges
    assert final.exists()
    assert workdir.read_output(final, "translate") == rows
    assert workdir.done_marker(workdir.shard_path(final, 3, 1)).exists()
    with pytest.raises(SdrrlError, match="shard-index"):
        workdir.take_shard(rows, 3, 3)


# -- bad input -------------------------------------------------------------------------------------

def test_bad_rows_error_or_skip_and_log(tmp_path):
    with pytest.raises(SdrrlError, match=r"row 2: missing 'output'.*on_bad_row: skip"):
        workdir.prepare_source(tmp_path, FIXTURES / "bad_rows.jsonl", "error")
    assert not layout.source_path(tmp_path).exists()
    rows, skipped = workdir.prepare_source(tmp_path, FIXTURES / "bad_rows.jsonl", "skip")
    assert [r["id"] for r in rows] == ["0", "3"] and skipped == 3
    log = list(read_jsonl(tmp_path / "source.skipped.jsonl"))
    assert [e["reason"] for e in log] == ["missing 'output'", "'instruction' is int, not a string",
                                          "'input' is list, not a string"]
    with pytest.raises(SdrrlError, match="no usable rows"):
        workdir.prepare_source(tmp_path, FIXTURES / "empty.jsonl")
    with pytest.raises(SdrrlError, match="not found"):
        workdir.prepare_source(tmp_path, tmp_path / "nope.jsonl")


def test_out_of_disk_cache_write_is_a_clear_error_and_keeps_earlier_batches(tmp_path):
    import sqlite3

    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("translation", {"a": "kept"})

    class FullDisk:  # what sqlite raises on ENOSPC
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *a):
            return self.db.execute(sql, *a)

        def executemany(self, *a):
            raise sqlite3.OperationalError("database or disk is full")

    cache._db = FullDisk(cache._db)
    with pytest.raises(SdrrlError, match="Out of disk space.*run the same command again"):
        cache.put_many("translation", {"b": "lost"})
    cache._db = cache._db.db
    assert cache.get_many(["a", "b"]) == {"a": "kept"}
    cache.close()


# -- progress -----------------------------------------------------------------------------------------

def test_progress_line_shows_rate_and_eta():
    out = io.StringIO()
    p = Progress("translate eng-ces", 10, unit="segments", every_s=0, stream=out)
    p.update(5)
    line = out.getvalue().strip()
    assert line.startswith("translate eng-ces: 5/10 segments (50.0%), ")
    assert "segments/s, ETA 0:00:" in line


# -- vLLM: the code around the engine, with a fake engine ------------------------------------------------

class _FakeVllm:
    """Stands in for the vLLM worker (sdrrl.pipeline.vllm_engine.VllmProcess) in unit tests of the
    code around it; the real engine runs in tests/test_vllm.py. Answers with real token ids of the
    tiny Llama's tokenizer, or from ``script`` (one list of (text, stop_reason) per call)."""

    def __init__(self, tokenizer=None, script=None):
        self.requests = []
        self.closed = 0
        self.tok, self.script = tokenizer, list(script or [])

    def generate(self, prompts, params):
        self.requests.append((prompts, params))
        answers = self.script.pop(0) if self.script else [(f" answer to {len(p)} tokens ", None) for p in prompts]
        return [{"token_ids": self.tok(text, add_special_tokens=False)["input_ids"], "finish_reason": "stop",
                 "stop_reason": why} for text, why in answers]

    def close(self):
        self.closed += 1


@pytest.fixture(scope="module")
def llama_tokenizer(tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_models.llama)


def test_vllm_generator_sends_prompt_ids_and_decoding_settings(tiny_models, llama_tokenizer):
    from sdrrl.pipeline.generate import VllmGenerator

    llm = _FakeVllm(llama_tokenizer)
    gen = VllmGenerator(str(tiny_models.llama), engine=llm, max_new_tokens=7, seed=5)
    gen.stop_token_ids = [2]
    assert gen.generate([[1, 2, 3], [4]]) == ["answer to 3 tokens", "answer to 1 tokens"]
    prompts, params = llm.requests[0]
    assert prompts == [[1, 2, 3], [4]]
    assert params == [{"temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "stop_token_ids": [2], "seed": 5}] * 2
    assert gen.calls == 1
    gen.release()
    assert llm.closed == 1


def test_vllm_line_break_stop_goes_on_past_leading_blank_lines(tiny_models, llama_tokenizer):
    """Self-translation's stop on vLLM: the stop string "\n" also ends an answer that is blank so
    far, where the transformers backend decodes on; the generator then continues that row from
    where it stopped (prompt + answer so far, the rest of the token budget), and only that row."""
    from sdrrl.pipeline.generate import VllmGenerator

    ids = lambda text: llama_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    llm = _FakeVllm(llama_tokenizer, script=[[("\n", "\n"), ("Ahoj\n", "\n")], [(" Svete.\n", "\n")]])
    gen = VllmGenerator(str(tiny_models.llama), engine=llm, max_new_tokens=20)
    gen.stop_at_line_break = True
    assert gen.generate([[5, 6], [7]]) == ["Svete.", "Ahoj"]
    (first, p1), (second, p2) = llm.requests
    assert first == [[5, 6], [7]] and all(p["stop"] == ["\n"] for p in p1)
    assert second == [[5, 6] + ids("\n")] and p2[0]["max_tokens"] == 20 - len(ids("\n"))


def test_vllm_missing_is_a_clear_error(monkeypatch, tmp_path):
    from sdrrl.pipeline import vllm_engine

    monkeypatch.setenv("SDRRL_VLLM_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(SdrrlError, match=r"SDRRL_VLLM_PYTHON=.*nope/python does not exist.*bootstrap\.sh --vllm"):
        vllm_engine.VllmProcess("m").start()
    monkeypatch.delenv("SDRRL_VLLM_PYTHON")
    monkeypatch.setitem(sys.modules, "vllm", None)  # this interpreter cannot import vllm
    monkeypatch.setattr(vllm_engine, "CHECKOUT_ENV", tmp_path / ".venv-vllm")
    with pytest.raises(SdrrlError, match=r"vLLM is not installed here.*\.venv-vllm/bin/python does not exist"):
        vllm_engine.vllm_python()
    assert "SDRRL_VLLM_PYTHON" in str(vllm_engine.python_problem())


def test_vllm_stage_uses_prompts_rendered_elsewhere(tmp_path, monkeypatch, tiny_models, llama_tokenizer):
    """In a vLLM environment without LLaMA-Factory, the stage reads WORK/generate/prompts.jsonl."""
    from sdrrl.io import write_json
    from sdrrl.pipeline import generate

    cfg = config.from_dict({"work_dir": str(tmp_path), "generate": {"backend": "vllm", "model": "m", "batch_size": 2}})
    workdir.prepare_source(tmp_path, None, max_rows=3)
    write_jsonl(layout.prompts_path(tmp_path), [{"id": str(i), "prompt_ids": [9] * (i + 1)} for i in range(3)])
    write_json(layout.prompts_path(tmp_path).with_suffix(".meta.json"),
               {"model": "m", "template": "default", "stop_token_ids": [2]})

    def no_llamafactory(*a, **k):
        raise SdrrlError("LLaMA-Factory is not importable here.")

    monkeypatch.setattr(generate, "render_prompts", no_llamafactory)
    llm = _FakeVllm(llama_tokenizer)
    gen = generate.VllmGenerator(str(tiny_models.llama), engine=llm)
    with Cache(tmp_path / "c.sqlite") as cache:
        stats = generate.run_generate(tmp_path, cfg, cache, gen)
    assert stats["model_calls"] == 2  # batch_size 2 over 3 prompts
    rows = list(read_jsonl(layout.responses_path(tmp_path)))
    assert rows == [{"id": str(i), "response": f"answer to {i + 1} tokens"} for i in range(3)]


# -- translate: the code around the engine, with a fake engine -------------------------------------------

class _RecordingTranslator:
    """Stands in for NLLB in a unit test of batching and caching only (real engines: test_pipeline_engines)."""

    model = "fake-nllb"
    beam_size = 4

    def __init__(self):
        from sdrrl.pipeline.translate import Translator

        self._base = Translator("fake-nllb")
        self.batches: list[tuple[list[str], str, str]] = []
        self.calls = self.segments_translated = 0

    def settings(self):
        return self._base.settings()

    def outputs(self):
        return self._base.outputs()

    def token_lengths(self, texts):
        return [len(t.split()) for t in texts]

    def count_tokens(self, text):
        return len(text.split())

    def translate(self, texts, src, tgt):
        self.batches.append((list(texts), src, tgt))
        self.calls += 1
        self.segments_translated += len(texts)
        return [t.upper() for t in texts]


def test_translate_segments_batches_by_length_and_skips_cached(tmp_path):
    from sdrrl.pipeline.translate import translate_segments

    segs = ["a b c d", "a", "a b", "a b c", "a", "x y z w v"]
    tr = _RecordingTranslator()
    with Cache(tmp_path / "c.sqlite") as cache:
        out = translate_segments(segs, tr, cache, "fra", "jpn", batch_size=2)
        assert out == {s: s.upper() for s in segs}
        assert [b[0] for b in tr.batches] == [["a", "a b"], ["a b c", "a b c d"], ["x y z w v"]]
        assert {(b[1], b[2]) for b in tr.batches} == {("fra_Latn", "jpn_Jpan")}  # French source works
        assert cache.count("translation") == 5
        tr.batches.clear()
        translate_segments(segs + ["new one"], tr, cache, "fra", "jpn", batch_size=2)
        # the batches are planned over every segment, cached or not: the new one shares its batch with
        # "a b c" as it would in a fresh run; the two batches cached whole are not translated again
        assert [b[0] for b in tr.batches] == [["new one", "a b c"]]
        tr.batches.clear()
        translate_segments(["a b"], tr, cache, "eng", "jpn", batch_size=2)  # another source: another key
        assert [b[0] for b in tr.batches] == [["a b"]]
    arrival = _RecordingTranslator()
    translate_segments(segs, arrival, None, "eng", "ces", batch_size=2, by_length=False)
    assert [b[0] for b in arrival.batches] == [["a b c d", "a"], ["a b", "a b c"], ["x y z w v"]]


def test_shards_take_whole_batches_of_one_plan_and_a_cached_output_stays_the_output(tmp_path):
    """Which segments share a batch is decided over all of them, whatever the shard and the cache:
    shard I of N translates batches I, I+N, ... of the unsharded run's plan. A segment another build
    cached (its translation made in another batch) keeps that translation, though its batch is
    translated whole, so what a run returns is what its cache holds."""
    from sdrrl.pipeline.translate import translate_segments

    segs = ["a b c d", "a", "a b", "a b c", "x y z w v", "a b c d e f", "q"]
    whole = _RecordingTranslator()
    expected = translate_segments(segs, whole, None, "eng", "ces", batch_size=2)
    assert [b[0] for b in whole.batches] == [["a", "q"], ["a b", "a b c"], ["a b c d", "x y z w v"],
                                             ["a b c d e f"]]
    shards = [_RecordingTranslator() for _ in range(3)]
    parts = [translate_segments(segs, tr, None, "eng", "ces", batch_size=2, num_shards=3, shard_index=i)
             for i, tr in enumerate(shards)]
    assert [[b[0] for b in tr.batches] for tr in shards] == [
        [["a", "q"], ["a b c d e f"]], [["a b", "a b c"]], [["a b c d", "x y z w v"]]]
    assert {k: v for p in parts for k, v in p.items()} == expected and sum(map(len, parts)) == len(segs)

    tr = _RecordingTranslator()
    with Cache(tmp_path / "c.sqlite") as cache:
        key = tr.outputs().key(src="eng_Latn", tgt="ces_Latn", text="a b c")
        cache.put_many("translation", {key: "made elsewhere"})
        out = translate_segments(segs, tr, cache, "eng", "ces", batch_size=2)
        assert ["a b", "a b c"] in [b[0] for b in tr.batches]  # the batch as planned, translated whole
        assert out["a b c"] == "made elsewhere" and out["a b"] == "A B"
        assert cache.get(key) == "made elsewhere"


def test_translate_stage_keeps_layout_and_sends_no_code(tmp_path):
    from sdrrl.pipeline.translate import run_translate

    texts = _fixture_texts()
    write_jsonl(layout.synth_path(tmp_path), [
        {"id": "1", "from": "G", "x": "Show me code.", "y": texts["lists"], "y_hat": texts["code"]},
        {"id": "2", "from": "D", "x": "Pack.", "y": texts["bullets-nested"], "y_hat": "never translated"}])
    cfg = config.from_dict({"work_dir": str(tmp_path)})
    tr = _RecordingTranslator()
    with Cache(cfg.cache_path) as cache:
        run_translate(tmp_path, cfg, "eng", "ces", cache, tr)
    sent = [s for b in tr.batches for s in b[0]]
    assert not any("return text" in s or "never translated" in s for s in sent)
    rows = list(read_jsonl(layout.translations_path(tmp_path, "eng", "ces")))
    assert rows[0]["y_mt"] == ("HERE ARE THREE TIPS FOR A HEALTHY LIFE:\n\n1. EAT A BALANCED DIET WITH FRUIT AND "
                               "VEGETABLES.\n2. EXERCISE FOR THIRTY MINUTES A DAY.\n3. SLEEP SEVEN TO EIGHT HOURS.\n\n"
                               "FOLLOW THEM EVERY DAY, AND YOU WILL FEEL BETTER.")
    assert "```python\ndef reverse(text):" in rows[0]["y_hat_mt"]
    assert rows[1]["y_hat_mt"] is None and rows[1]["x_mt"] == "PACK."


def test_filter_shards_merge_to_the_unsharded_result(tmp_path):
    """QE off (no model here); heuristics and gcld3 are real. Shards + merge == one run."""
    from sdrrl.pipeline.filters import run_filter

    samples = json.loads((Path(workdir.__file__).parents[1] / "data" / "sample" / "language_samples.json")
                         .read_text(encoding="utf-8"))
    eng, ces = samples["eng"], samples["ces"]
    synth = [{"id": str(i), "from": "G" if i % 2 else "D", "x": eng[i % 2], "y": eng[(i + 1) % 2], "y_hat": eng[0]}
             for i in range(5)]
    mt = [{"id": str(i), "x_mt": [ces[0], eng[0], "", ces[1], "ok"][i], "y_mt": ces[(i + 1) % 2],
           "y_hat_mt": ces[0] if i % 2 else None} for i in range(5)]
    outputs = {}
    for name, shards in (("one", 1), ("three", 3)):
        work = tmp_path / name
        write_jsonl(layout.synth_path(work), synth)
        write_jsonl(layout.translations_path(work, "eng", "ces"), mt)
        cfg = config.from_dict({"work_dir": str(work), "target_langs": ["ces"], "filter": {"qe_enabled": False}})
        with Cache(cfg.cache_path) as cache:
            for i in range(shards):
                run_filter(work, cfg, "eng", "ces", cache, num_shards=shards, shard_index=i)
        outputs[name] = [p.read_bytes() for p in (layout.filtered_path(work, "eng", "ces"),
                                                   layout.excluded_path(work, "eng", "ces"),
                                                   layout.summary_path(work, "eng", "ces"))]
    assert outputs["one"] == outputs["three"]
    summary = json.loads(outputs["one"][2])
    assert summary["rejected_by_reason"] == {"lid:off_target:en": 1, "heuristic:empty": 1,
                                             "heuristic:length_ratio": 1}  # rows 1, 2, 4 of x_mt
    assert summary["kept"] == 9 and summary["fields"]["y_hat"]["translated"] == 2


def test_shipped_paper_config_loads_and_equals_the_code_defaults():
    path = Path(config.__file__).with_name("paper.yaml")
    cfg = config.load(path)
    default = config.from_dict({})
    for section in ("generate", "sample", "translate", "filter"):
        assert getattr(cfg, section) == getattr(default, section), section
    assert cfg.target_langs == ["ces", "dan", "ukr", "bul", "fin", "hun", "nob", "ind", "jpn", "kor", "por", "slv",
                                "vie", "pol"]


def test_pipeline_commands_import_no_heavy_library():
    heavy = ("torch", "transformers", "comet", "vllm", "llamafactory", "ctranslate2", "gcld3", "datasets")
    code = ("import sys, sdrrl.cli\n"
            "for c in ('generate', 'sample', 'translate', 'filter', 'build'):\n"
            "    try:\n        sdrrl.cli.main([c, '--help'])\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: sdrrl build" in out.stdout and "--num-shards" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cache_takes_concurrent_writers(tmp_path):
    """Several shard processes write one cache at once; every batch lands."""
    path = tmp_path / "c.sqlite"
    code = ("import sys; sys.path.insert(0, %r); from sdrrl.pipeline.cache import Cache; c = Cache(%r)\n"
            "for b in range(100):\n    c.put_many('translation', {f'{sys.argv[1]}-{b}-{i}': i for i in range(5)})\n"
            "c.close()") % (str(Path(__file__).resolve().parents[1] / "plugin"), str(path))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)]) for n in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    with Cache(path) as cache:
        assert cache.count("translation") == 3 * 100 * 5


def test_cache_opened_by_many_processes_at_once_never_fails(tmp_path):
    """Shards of one build open the same new cache file at the same moment. SQLite refuses the
    switch to WAL (and the schema) with "database is locked" without waiting when another connection
    does the same; a sharded build then lost a shard at start-up and its partner waited for it. Rate:
    0 failed opens of 8 processes x 40 fresh files, all released together by a barrier file."""
    plugin = str(Path(__file__).resolve().parents[1] / "plugin")
    code = ("import os, sys, time; sys.path.insert(0, %r)\n"
            "from sdrrl.pipeline.cache import Cache\n"
            "go = sys.argv[1]\n"
            "while not os.path.exists(go):\n    time.sleep(0.001)\n"
            "fails = 0\n"
            "for path in sys.argv[2:]:\n"
            "    while not os.path.exists(path + '.go'):\n        time.sleep(0.0005)\n"
            "    try:\n        c = Cache(path, timeout_s=30)\n"
            "        c.put_many('translation', {str(os.getpid()): 1})\n        c.close()\n"
            "    except Exception as err:\n        fails += 1\n        print(err, file=sys.stderr)\n"
            "print(fails)\n") % plugin
    files = [str(tmp_path / f"c{i}.sqlite") for i in range(40)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(go), *files], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    time.sleep(1.0)  # every process imported and waits at the barrier
    go.touch()
    for f in files:
        Path(f + ".go").touch()
        time.sleep(0.03)
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-2000:] for _, e in outs]
    fails = sum(int(o.strip()) for o, _ in outs)
    assert fails == 0, f"{fails} of {8 * len(files)} opens failed: " + next(e for _, e in outs if e)[-500:]
    for f in files:
        with Cache(f) as cache:
            assert cache.count("translation") == 8


def test_filter_refuses_translations_of_an_older_d_synth(tmp_path):
    from sdrrl.pipeline.filters import run_filter
    from sdrrl.pipeline.translate import source_digest

    synth = [{"id": "0", "from": "G", "x": "Name a colour.", "y": "Blue.", "y_hat": "Red."}]
    write_jsonl(layout.synth_path(tmp_path), synth)
    old = dict(synth[0], y_hat="Green.")  # re-sampled / regenerated after translate ran
    write_jsonl(layout.translations_path(tmp_path, "eng", "ces"),
                [{"id": "0", "x_mt": "Pojmenuj barvu.", "y_mt": "Modrá.", "y_hat_mt": "Zelená.",
                  "source_sha1": source_digest(old)}])
    cfg = config.from_dict({"work_dir": str(tmp_path), "target_langs": ["ces"], "filter": {"qe_enabled": False}})
    with Cache(cfg.cache_path) as cache, pytest.raises(SdrrlError, match="D_synth changed.*translate --tgt ces"):
        run_filter(tmp_path, cfg, "eng", "ces", cache)


def test_caches_from_several_machines_merge(tmp_path):
    with Cache(tmp_path / "a.sqlite") as a, Cache(tmp_path / "b.sqlite") as b:
        a.put_many("translation", {"k1": "x", "k2": "y"})
        b.put_many("qe", {"k2": 0.5, "k3": 0.9})
        assert a.import_from(tmp_path / "b.sqlite") == 1
        assert a.get_many(["k1", "k2", "k3"]) == {"k1": "x", "k2": "y", "k3": 0.9}


# -- translate: settings that reach the engine or the cache key --------------------------------------

def test_ctranslate2_runs_on_the_gpu_named_by_device(tmp_path, monkeypatch):
    """`--device cuda:1` (one shard per GPU) must reach CTranslate2 as device_index 1, not GPU 0.
    A fake ctranslate2 module records what the translator is built with (no GPU here)."""
    import types

    from sdrrl.pipeline.translate import CTranslate2Translator

    made: list[dict] = []
    fake = types.ModuleType("ctranslate2")
    fake.Translator = lambda path, **kw: made.append(dict(kw, path=path)) or object()
    monkeypatch.setitem(sys.modules, "ctranslate2", fake)
    for device, expected in (("cuda:1", ("cuda", 1)), ("cuda", ("cuda", 0)), ("cpu", ("cpu", 0))):
        CTranslate2Translator("nllb", ct2_model_dir=str(tmp_path), device=device)._load()
        assert (made[-1]["device"], made[-1].get("device_index", 0)) == expected, device


def test_a_lossy_ctranslate2_compute_type_gets_its_own_cache_key():
    """int8/float16 weights translate differently from the float32 model: their translations must
    not be served to a float32 run (or the other way round); float32 keeps sharing with transformers."""
    from sdrrl.pipeline.translate import CTranslate2Translator, TransformersTranslator

    hf = TransformersTranslator("nllb").settings()
    assert CTranslate2Translator("nllb").settings() == hf
    assert CTranslate2Translator("nllb", compute_type="float32").settings() == hf
    for lossy in ("int8", "int8_float16", "float16", "bfloat16", "auto"):
        assert CTranslate2Translator("nllb", compute_type=lossy).settings() != hf, lossy
    assert CTranslate2Translator("nllb", compute_type="int8").settings() != \
        CTranslate2Translator("nllb", compute_type="float16").settings()


def test_progress_rate_and_eta_count_only_work_done_in_this_run():
    """On a resumed run most items come from the cache at once: counting them in the rate would
    promise minutes for hours of work left."""
    import time

    out = io.StringIO()
    p = Progress("translate eng-ces", 100, unit="segments", every_s=0, stream=out)
    p.skip(90)  # found in the cache
    assert "90/100 segments (90.0%), 0.0 segments/s, ETA unknown" in out.getvalue()
    p.start = time.monotonic() - 10.0  # 10 s of model work for the next segment
    p.update(1)
    line = out.getvalue().strip().splitlines()[-1]
    assert "91/100 segments (91.0%)" in line
    assert "0.1 segments/s" in line and "ETA 0:01:3" in line  # 9 left at 0.1/s: 90 s


def test_copy_rule_judges_the_prose_sent_to_the_translator_not_verbatim_code():
    """A text that is all code (or numbers) is kept verbatim by segmentation and never sent to
    NLLB: its translation equals it by design, which is not an 'untranslated copy'."""
    code = "```python\ndef add(first, second):\n    return first + second\n```"
    assert HeuristicFilter().check(code, code) == (None, None)
    spaced = "```\nSELECT name, address FROM customers;\n```\n\n42"
    assert HeuristicFilter().check(spaced, spaced) == (None, None)
    # prose beside the code that came back untranslated is still a copy
    mixed = "Here is the function you asked for:\n" + code
    assert HeuristicFilter().check(mixed, mixed)[0] == "copy_of_source"


def test_sentences_of_a_split_line_rejoin_without_spaces_after_ideographic_full_stops(tmp_path):
    """An overlong English line is cut into sentences joined by spaces; Japanese writes no space
    after 。！？, so the translations must not be rejoined with the English spaces."""
    from sdrrl.pipeline.translate import run_translate

    class _Japanese(_RecordingTranslator):
        def translate(self, texts, src, tgt):
            super().translate(texts, src, tgt)
            return [f"文{len(t.split())}。" for t in texts]

    line = "One two three four five. Six seven eight nine ten! Eleven twelve thirteen fourteen?"
    write_jsonl(layout.synth_path(tmp_path), [
        {"id": "1", "from": "D", "x": line, "y": line + "\n\n- " + line, "y_hat": "unused"}])
    cfg = config.from_dict({"work_dir": str(tmp_path), "translate": {"max_segment_tokens": 6}})
    tr = _Japanese()
    with Cache(cfg.cache_path) as cache:
        run_translate(tmp_path, cfg, "eng", "jpn", cache, tr)
    assert len(tr.batches[0][0]) == 3  # the line was cut into its three sentences
    row = next(read_jsonl(layout.translations_path(tmp_path, "eng", "jpn")))
    assert row["x_mt"] == "文5。文5。文4。"
    assert row["y_mt"] == "文5。文5。文4。\n\n- 文5。文5。文4。"  # line breaks and markers still kept
    # Latin-script targets keep the spaces between sentences
    lay = segment.split(line, 6, lambda t: len(t.split()))
    assert segment.reassemble(lay, ["A.", "B!", "C?"]) == "A. B! C?"
    # and split + reassemble stays the identity
    assert segment.reassemble(lay, lay.segments) == line
    # clauses of an overlong sentence too; a Latin word after the full stop keeps its space
    clauses = segment.split("one two three, four five six, seven eight nine", 4, lambda t: len(t.split()))
    assert segment.reassemble(clauses, ["一、", "二、", "三。"], cjk_tight=True) == "一、二、三。"
    assert segment.reassemble(clauses, ["一。", "Python を使う、", "三。"], cjk_tight=True) == \
        "一。 Python を使う、三。"


def test_a_shard_left_from_a_run_on_other_inputs_is_never_merged(tmp_path):
    """Rerunning a sharded stage after its input or settings changed: until every shard has run
    again, the old `.done` markers must not count, or the merge mixes old and new rows."""
    final = tmp_path / "translate" / "eng-ces.jsonl"
    old = [{"id": str(i), "x_mt": f"old {i}"} for i in range(4)]
    new = [{"id": str(i), "x_mt": f"new {i}"} for i in range(4)]
    sha_old, sha_new = (layout.StageDeps("translate", {}, None, {"run": run}) for run in ("old", "new"))
    for i in range(2):
        workdir.write_output(final, workdir.take_shard(old, 2, i), 2, i, sha_old)
    assert workdir.read_output(final, "translate") == old
    workdir.write_output(final, workdir.take_shard(new, 2, 0), 2, 0, sha_new)
    assert not final.exists()  # shard 1 is from the old inputs: nothing to merge yet
    with pytest.raises(SdrrlError, match=r"shard\(s\) 1 of 2 .*other inputs.*differ in assembly.run\).*"
                                         r"--num-shards 2 --shard-index I"):
        workdir.read_output(final, "translate")
    workdir.write_output(final, workdir.take_shard(new, 2, 1), 2, 1, sha_new)
    assert workdir.read_output(final, "translate") == new


def test_translate_shards_rerun_on_a_changed_d_synth_wait_for_every_shard(tmp_path):
    from sdrrl.pipeline.translate import run_translate

    synth = [{"id": str(i), "from": "D", "x": f"Question number {i}.", "y": f"Answer {i}.", "y_hat": "-"}
             for i in range(4)]
    cfg = config.from_dict({"work_dir": str(tmp_path)})
    with Cache(cfg.cache_path) as cache:
        write_jsonl(layout.synth_path(tmp_path), synth)
        for i in range(2):
            run_translate(tmp_path, cfg, "eng", "ces", cache, _RecordingTranslator(), num_shards=2, shard_index=i)
        write_jsonl(layout.synth_path(tmp_path), [dict(r, x=r["x"] + " Again.") for r in synth])
        run_translate(tmp_path, cfg, "eng", "ces", cache, _RecordingTranslator(), num_shards=2, shard_index=0)
    with pytest.raises(SdrrlError, match=r"shard\(s\) 1 of 2"):
        workdir.read_output(layout.translations_path(tmp_path, "eng", "ces"), "translate")


def test_vllm_stage_refuses_prompts_rendered_from_other_questions(tmp_path, monkeypatch):
    """D edited after `--prompts-only`: the old prompt's answer would be cached under the new
    question's key and reused forever. The stage must stop and say to render again."""
    from sdrrl.pipeline import generate

    cfg = config.from_dict({"work_dir": str(tmp_path), "generate": {"backend": "vllm", "model": "m"}})
    workdir.prepare_source(tmp_path, None, max_rows=3)
    monkeypatch.setattr(generate, "render_prompts", lambda model, template, qs: ([[len(q)] for q in qs], [2]))
    generate.write_prompts(tmp_path, cfg.generate)  # in the main environment

    def no_llamafactory(*a, **k):
        raise SdrrlError("LLaMA-Factory is not importable here.")

    monkeypatch.setattr(generate, "render_prompts", no_llamafactory)  # the vLLM environment
    rows = list(read_jsonl(layout.source_path(tmp_path)))
    rows[1]["instruction"] = "A question edited after the prompts were rendered."
    write_jsonl(layout.source_path(tmp_path), rows)
    gen = generate.VllmGenerator("m", engine=_FakeVllm())
    with Cache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(SdrrlError, match=r"rendered from other questions.*1 row.*--prompts-only"):
            generate.run_generate(tmp_path, cfg, cache, gen)
        assert cache.count("response") == 0
    layout.prompts_path(tmp_path).with_suffix(".meta.json").unlink()  # copied without its meta file
    with Cache(tmp_path / "c.sqlite") as cache, pytest.raises(SdrrlError, match=r"meta\.json.*--prompts-only"):
        generate.run_generate(tmp_path, cfg, cache, gen)


def test_a_row_with_an_unpaired_surrogate_is_a_bad_row_not_a_crash(tmp_path):
    r"""JSON may escape a lone UTF-16 surrogate ("\ud83d" without its pair): Python reads it, but
    no UTF-8 file can hold it, so writing WORK/source.jsonl (or the skip log) would crash later."""
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "Say hi.", "output": "Hi!"}\n'
                    '{"instruction": "Broken emoji \\ud83d here.", "output": "ok"}\n'
                    '{"instruction": "Bye.", "output": "Half \\udc00 pair"}\n', encoding="utf-8")
    with pytest.raises(SdrrlError, match=r"row 2: 'instruction' holds an unpaired surrogate.*on_bad_row: skip"):
        workdir.prepare_source(tmp_path / "w1", path, "error")
    rows, skipped = workdir.prepare_source(tmp_path / "w2", path, "skip")
    assert [r["id"] for r in rows] == ["0"] and skipped == 2
    log = list(read_jsonl(tmp_path / "w2" / "source.skipped.jsonl"))
    assert [e["line"] for e in log] == [2, 3] and "surrogate" in log[1]["reason"]


def test_generator_auto_dtype_is_float16_on_gpus_without_bfloat16(monkeypatch):
    """dtype "auto" picks bfloat16 on a GPU; a V100 or T4 has none, so there it must be float16.
    transformers' loaders are replaced by recorders (no GPU here): this tests the choice only."""
    import types

    import torch
    from sdrrl.pipeline.generate import TransformersGenerator

    loaded = []

    class _Model:
        def to(self, device):
            loaded.append(device)
            return self

        def eval(self):
            return self

    fake = types.ModuleType("transformers")
    fake.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda *a, **k: object())
    fake.AutoModelForCausalLM = types.SimpleNamespace(
        from_pretrained=lambda *a, **k: loaded.append(k["torch_dtype"]) or _Model())
    monkeypatch.setitem(sys.modules, "transformers", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for bf16, expected in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, _bf16=bf16, **k: _bf16)
        loaded.clear()
        TransformersGenerator("m", device="auto")._load()
        assert loaded == [expected, "cuda"]
    loaded.clear()
    TransformersGenerator("m", device="cpu")._load()
    assert loaded == [torch.float32, "cpu"]


def test_language_id_keeps_indonesian_that_cld3_calls_malay_and_rejects_english():
    from sdrrl.pipeline.filters import LanguageIdFilter

    lid = LanguageIdFilter("ind")
    assert lid.check("Sungai mengalir dari pegunungan ke laut.") == (None, None)  # CLD3 says "ms"
    reason, _ = lid.check("The river flows from the mountains to the sea every day.")
    assert reason == "off_target:en"
    assert LanguageIdFilter("ces").check("Sungai mengalir dari pegunungan ke laut.")[0] == "off_target:ms"


def test_one_fingerprint_and_marker_for_every_skip_if_unchanged(tmp_path):
    from sdrrl.fingerprint import current, fingerprint, record

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    key = fingerprint(["cmd"], folder)
    (folder / "config.json").write_text('{"a": 1}')
    changed_content = fingerprint(["cmd"], folder)
    (folder / "config.json").rename(folder / "other.json")
    assert len({key, changed_content, fingerprint(["cmd"], folder), fingerprint(["cmd"], tmp_path / "gone")}) == 4
    assert fingerprint(["cmd"], folder) == fingerprint(["cmd"], folder)

    out, marker = tmp_path / "out.jsonl", tmp_path / "out.jsonl.done"
    out.write_text("a\n")
    assert current(marker, key, [out]) is None  # never recorded
    record(marker, key, [out], by="shard 0")
    assert current(marker, key, [out])["by"] == "shard 0"
    assert current(marker, changed_content, [out]) is None  # other inputs
    out.write_text("b\n")
    assert current(marker, key, [out]) is None  # the output changed since
    record(marker, key, [out], content=False)  # presence only (the demo's steps)
    out.write_text("c\n")
    assert current(marker, key, [out]) is not None
    out.unlink()
    assert current(marker, key, [out]) is None


def test_cache_keys_stay_as_written_and_a_stage_fingerprint_names_the_model_as_the_cache_does(tmp_path):
    """Existing caches stay valid (each key is the one earlier versions wrote), and a shard's fingerprint
    names the model in full like the cache: two different models in folders of one base name
    (two runs' checkpoint-500) never pass for one."""
    from sdrrl.pipeline import generate, translate
    from sdrrl.pipeline.filters import CometKiwiFilter

    write_jsonl(layout.source_path(tmp_path), [{"id": "1", "instruction": "Hi", "input": "", "output": "Hello"}])

    def gen(model):
        return generate.dependencies(tmp_path, config.from_dict({"generate": {"model": model}}).generate)
    a, b = gen("/runs/a/checkpoint-500"), gen("/runs/b/checkpoint-500")
    assert a.outputs.key(text="Hi") == make_key("response", "/runs/a/checkpoint-500", {
        "template": "default", "max_new_tokens": 512, "temperature": 0.0, "top_p": 1.0}, text="Hi")
    assert a.record["model"] == "/runs/a/checkpoint-500" and a.fingerprint() != b.fingerprint()
    assert layout.differences(a.record, b.record) == ["model"]
    tr = translate.Translator("/m/nllb")
    assert tr.outputs().key(src="eng_Latn", tgt="ind_Latn", text="Hi") == make_key(
        "translation", "/m/nllb", {"beam_size": 4, "max_length": 200, "length_penalty": 1.0},
        src="eng_Latn", tgt="ind_Latn", text="Hi")
    assert CometKiwiFilter("/m/kiwi").key("Hi", "Halo") == make_key("qe", "/m/kiwi", {}, src="Hi", mt="Halo")
    write_jsonl(layout.source_path(tmp_path), [{"id": "1", "instruction": "Hi!", "input": "", "output": "Hello"}])
    assert layout.differences(a.record, gen("/runs/a/checkpoint-500").record) == ["inputs.source"]
