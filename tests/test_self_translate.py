"""Self-translation (issue 12, part 1): the translate stage with an instruction-following LLM instead
of NLLB, on the tiny Llama through the real transformers engine and LLaMA-Factory's template code.

The tiny Llama is random and, greedy, writes ':' forever; it never writes a line break. Where a test
needs one it uses a copy whose output layer is edited (the rows of ':' and the line break swapped,
input embeddings untouched): the same real model and engine, answering ':\\n:\\n...'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdrrl import layout
from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.pipeline import config
from sdrrl.pipeline.cache import Cache

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "plugin" / "sdrrl" / "data" / "sample"
MAX_NEW = 8  # a random model never stops: a short limit keeps the tests fast


def _synth_rows(n: int) -> list[dict]:
    rows = list(read_jsonl(SAMPLES / "instructions_eng.jsonl"))[:n]
    return [{"id": str(i), "from": "G" if i % 2 else "D", "x": layout.question(r), "y": r["output"],
             "y_hat": " ".join(reversed(r["output"].split(". ")))} for i, r in enumerate(rows)]


def _cfg(llama: Path, work: Path, **translate) -> config.PipelineConfig:
    # translate.llm_model is left unset: self-translation uses M_theta, the generate stage's model
    return config.from_dict({
        "work_dir": str(work), "target_langs": ["ces"], "progress_every_s": 1e9,
        "generate": {"model": str(llama), "device": "cpu"},
        "translate": {"backend": "llm", "llm_max_new_tokens": MAX_NEW, "batch_size": 8, "device": "cpu",
                      **translate},
    })


@pytest.fixture(scope="module")
def line_break_llama(tiny_models, tmp_path_factory) -> Path:
    """The tiny Llama with the output-layer rows of ':' and '\\n' swapped (untied from the input
    embeddings), saved as a model directory: greedy, it answers ':\\n:\\n:...'."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models.llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_models.llama)
    colon, newline = tok.convert_tokens_to_ids(":"), tok("\n", add_special_tokens=False)["input_ids"][-1]
    assert tok.decode([newline]) == "\n"
    head = model.lm_head.weight.detach().clone()
    head[[colon, newline]] = head[[newline, colon]]
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    out = tmp_path_factory.mktemp("llama-line-breaks")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_self_translation_through_the_stage_keeps_layout_and_a_second_run_is_all_cache(tiny_models, tmp_path):
    from sdrrl.pipeline.translate import LlmTranslator, make_translator, run_translate

    rows = _synth_rows(6)
    write_jsonl(layout.synth_path(tmp_path), rows)
    cfg = _cfg(tiny_models.llama, tmp_path)
    translator = make_translator(cfg.translate, generate=cfg.generate)
    assert isinstance(translator, LlmTranslator) and translator.model == str(tiny_models.llama)
    with Cache(cfg.cache_path) as cache:
        stats = run_translate(tmp_path, cfg, "eng", "ces", cache, translator)
        first = layout.translations_path(tmp_path, "eng", "ces").read_bytes()
        assert stats["model_calls"] >= 2 and translator.segments_translated == stats["unique_segments"]
        assert cache.count("translation") == stats["unique_segments"]
        out = [json.loads(line) for line in first.decode().splitlines()]
        # row 0's answer is a numbered list: markers and line breaks are kept, each line translated
        y0 = out[0]["y_mt"].split("\n")
        assert len(y0) == rows[0]["y"].count("\n") + 1 and [s[:3] for s in y0] == ["1. ", "2. ", "3. "]
        assert all(line[3:] and line[3:] != src[3:] for line, src in zip(y0, rows[0]["y"].split("\n")))
        assert [r["y_hat_mt"] is None for r in out] == [r["from"] == "D" for r in rows]

        # a second run (a new translator, as a new process would make) does no model work
        again = make_translator(cfg.translate, generate=cfg.generate)
        assert run_translate(tmp_path, cfg, "eng", "ces", cache, again)["model_calls"] == 0
        assert again.segments_translated == 0 and again._generator is None  # the LLM was never loaded
        assert layout.translations_path(tmp_path, "eng", "ces").read_bytes() == first

        # the prompt is in the cache key: another instruction translates again
        other = _cfg(tiny_models.llama, tmp_path, llm_prompt="Render this {from_lang} text in {to_lang}.")
        assert run_translate(tmp_path, other, "eng", "ces", cache)["model_calls"] == stats["model_calls"]


def test_self_translation_answers_are_cut_at_the_first_line_break(line_break_llama):
    from sdrrl.pipeline.generate import TransformersGenerator
    from sdrrl.pipeline.translate import LlmTranslator

    texts = ["The cat sat on the mat.", "Water boils at 100 degrees.", "Name a colour.", "Paris is in France."]
    tr = LlmTranslator(str(line_break_llama), device="cpu", max_new_tokens=12)
    out = tr.translate(texts, "eng_Latn", "ces_Latn")
    # the same prompts decoded to the end, without the early stop: the answer runs on past a line break
    prompts, stop = tr.prompts(texts, "eng_Latn", "ces_Latn")
    full = TransformersGenerator(str(line_break_llama), device="cpu", max_new_tokens=12)
    full.stop_token_ids = stop
    raw = full.generate(prompts)
    assert all("\n" in r and r.split("\n", 1)[1].strip() for r in raw), raw
    assert out == [r.split("\n", 1)[0].rstrip() for r in raw]
    assert all(o and "\n" not in o for o in out)
    # the line-break stop is only a saving: it is off for a batch whose source has line breaks
    two_lines = tr.translate(["First line.\nSecond line."], "eng_Latn", "ces_Latn")
    assert "\n" in two_lines[0]


def test_cut_rule_strips_then_keeps_the_first_line_where_the_source_had_one():
    from sdrrl.pipeline.translate import first_line

    assert first_line("\n  Kočka sedí.\nNote: ...", "The cat sits.") == "Kočka sedí."
    assert first_line("Kočka sedí.  \n", "The cat sits.") == "Kočka sedí."
    assert first_line("A\nB", "a\nb") == "A\nB"


def test_line_break_stop_criterion_on_the_real_tokenizer(tiny_models):
    """The stopping criterion's per-token tables on the tiny Llama's byte-level BPE: a row stops at
    a line break after text, not at a leading one."""
    import torch
    from sdrrl.pipeline.generate import line_break_stop, line_break_tables
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models.llama)
    ids = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    stop = line_break_stop(line_break_tables(tok), 2)
    rows = [ids("\nab\ncd"), ids("\n\nab cd")]
    width = max(map(len, rows))
    rows = [r + [r[-1]] * (width - len(r)) for r in rows]
    states = [stop(torch.tensor([r[:k + 1] for r in rows]), None).tolist() for k in range(width)]
    assert [s[1] for s in states] == [False] * width  # leading line breaks, then text without one
    first_stop = [s[0] for s in states].index(True)
    assert "\n" in tok.decode(rows[0][:first_stop + 1]).lstrip() and "\n" not in tok.decode(rows[0][:first_stop]).lstrip()


def test_self_translation_resumes_after_a_crash_and_shards_give_the_same_output(tiny_models, tmp_path):
    from sdrrl.pipeline.translate import make_translator, run_translate

    rows = _synth_rows(10)
    fresh, crashed, sharded = tmp_path / "fresh", tmp_path / "crashed", tmp_path / "sharded"
    for w in (fresh, crashed, sharded):
        write_jsonl(layout.synth_path(w), rows)

    cfg = _cfg(tiny_models.llama, fresh, batch_size=4)
    with Cache(cfg.cache_path) as cache:
        total = run_translate(fresh, cfg, "eng", "ces", cache)
    expected = layout.translations_path(fresh, "eng", "ces").read_bytes()
    assert total["model_calls"] >= 4

    # a run that dies after two model calls (the real engine; the crash is injected between calls)
    cfg = _cfg(tiny_models.llama, crashed, batch_size=4)
    dying = make_translator(cfg.translate, generate=cfg.generate)
    real = dying.translate

    def translate_then_die(*args):
        if dying.calls == 2:
            raise KeyboardInterrupt
        return real(*args)

    dying.translate = translate_then_die
    with Cache(cfg.cache_path) as cache:
        with pytest.raises(KeyboardInterrupt):
            run_translate(crashed, cfg, "eng", "ces", cache, dying)
        assert not layout.translations_path(crashed, "eng", "ces").exists()
        kept = cache.count("translation")
        assert 0 < kept < total["unique_segments"]
        resumed = make_translator(cfg.translate, generate=cfg.generate)
        run_translate(crashed, cfg, "eng", "ces", cache, resumed)
    assert resumed.segments_translated == total["unique_segments"] - kept
    assert layout.translations_path(crashed, "eng", "ces").read_bytes() == expected

    cfg = _cfg(tiny_models.llama, sharded, batch_size=4)
    with Cache(cfg.cache_path) as cache:
        for i in (1, 0):
            run_translate(sharded, cfg, "eng", "ces", cache, num_shards=2, shard_index=i)
    assert layout.translations_path(sharded, "eng", "ces").read_bytes() == expected


def test_self_translation_config(tiny_models, tmp_path):
    from sdrrl.pipeline.translate import LlmTranslator, make_translator

    cfg = config.from_dict({"generate": {"model": "gen-model", "template": "alpaca", "backend": "vllm"},
                            "translate": {"backend": "llm"}})
    tr = make_translator(cfg.translate, generate=cfg.generate)
    assert isinstance(tr, LlmTranslator)
    assert (tr.model, tr.template, tr.engine, tr.max_new_tokens) == ("gen-model", "alpaca", "vllm", 400)
    assert tr.settings()["prompt"] == "Translate the following sentence from {from_lang} to {to_lang}."
    cfg = config.from_dict({"translate": {"backend": "llm", "llm_model": "other", "llm_engine": "transformers",
                                          "llm_template": "default"}})
    tr = make_translator(cfg.translate, generate=cfg.generate)
    assert (tr.model, tr.template, tr.engine) == ("other", "default", "transformers")
    assert cfg.translation_model == "other"  # what the filter summary records
    assert config.from_dict({}).translation_model == "facebook/nllb-200-3.3B"
    with pytest.raises(SdrrlError, match="llm_prompt"):
        config.from_dict({"translate": {"backend": "llm", "llm_prompt": "Translate to {language}."}})
    with pytest.raises(ModelNotFoundError, match="self-translation model.*translate.llm_model"):
        make_translator(config.from_dict({"translate": {"backend": "llm", "llm_model": str(tmp_path / "none")}}
                                         ).translate).count_tokens("x")
    with pytest.raises(SdrrlError, match="llm_engine"):
        config.from_dict({"translate": {"llm_engine": "tgi"}})
