"""The tiny local models load and run through their real libraries, and build once per cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sdrrl import tiny
from sdrrl.errors import SdrrlError
from sdrrl.languages import LANGUAGES

SAMPLES = json.loads((tiny.SAMPLE_DIR / "language_samples.json").read_text(encoding="utf-8"))


def _model_dir(path: Path) -> Path:
    """The content-keyed directory of a model (COMET paths point at checkpoints/model.ckpt in it)."""
    return path.parents[1] if path.name == "model.ckpt" else path


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and p.name != "sdrrl-tiny.json"}


# --- the cache -------------------------------------------------------------------------------

def test_second_build_all_is_a_cache_hit(tiny_models, tiny_cache_dir):
    before = {name: _model_dir(Path(p)).stat().st_mtime_ns for name, p in tiny_models.as_dict().items()}
    builds_before = list(tiny.BUILD_LOG)
    start = time.perf_counter()
    again = tiny.build_all(tiny_cache_dir / "tiny-models")
    elapsed = time.perf_counter() - start
    print(f"cache hit: build_all took {elapsed:.2f} s")
    assert again == tiny_models
    assert tiny.BUILD_LOG == builds_before  # nothing was built
    assert {name: _model_dir(Path(p)).stat().st_mtime_ns for name, p in again.as_dict().items()} == before
    assert elapsed < 5


def test_content_key_follows_settings_version_and_text(tmp_path, monkeypatch):
    key = tiny.content_key("llama", tiny.LLAMA_SETTINGS)
    assert key == tiny.content_key("llama", dict(tiny.LLAMA_SETTINGS))
    assert key != tiny.content_key("llama", dict(tiny.LLAMA_SETTINGS, hidden_size=32))
    assert key != tiny.content_key("nllb", tiny.LLAMA_SETTINGS)
    monkeypatch.setattr(tiny, "TINY_MODELS_VERSION", tiny.TINY_MODELS_VERSION + "-changed")
    assert key != tiny.content_key("llama", tiny.LLAMA_SETTINGS)
    monkeypatch.undo()
    (tmp_path / "more.jsonl").write_text('{"text": "Ein neuer Satz."}\n', encoding="utf-8")
    monkeypatch.setattr(tiny, "SAMPLE_DIR", tmp_path)
    assert tiny.sample_texts() == ["Ein neuer Satz."]
    assert key != tiny.content_key("llama", tiny.LLAMA_SETTINGS)


def test_changed_recipe_builds_a_new_model(tiny_models, tmp_path):
    from transformers import AutoConfig

    smaller = tiny.tiny_llama(tmp_path, settings={"hidden_size": 32, "intermediate_size": 64})
    assert smaller.name.startswith("llama-") and smaller.name != tiny_models.llama.name
    assert AutoConfig.from_pretrained(smaller).hidden_size == 32
    assert AutoConfig.from_pretrained(tiny_models.llama).hidden_size == tiny.LLAMA_SETTINGS["hidden_size"]
    with pytest.raises(SdrrlError, match="hidden_sise"):
        tiny.tiny_llama(tmp_path, settings={"hidden_sise": 32})


def test_failed_or_killed_build_leaves_no_half_model(tmp_path):
    def failing_build(tmp: Path, final: Path) -> None:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError, match="killed"):
        tiny.build_once(tmp_path, "demo", {"n": 1}, failing_build)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []

    key = tiny.content_key("demo", {"n": 1})
    stale = tmp_path / f".demo-{key}.building-left-by-kill"  # what a SIGKILL would leave
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"x")

    def good_build(tmp: Path, final: Path) -> None:
        (tmp / "config.json").write_text(json.dumps({"final": str(final)}))

    path = tiny.build_once(tmp_path, "demo", {"n": 1}, good_build)
    assert path == tmp_path.resolve() / f"demo-{key}"
    assert json.loads((path / "config.json").read_text()) == {"final": str(path)}
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [path.name]


def test_concurrent_builds_build_once(tmp_path):
    """Two builders racing on one cache: one builds, the other waits and reuses its result."""
    import threading

    calls = []

    def slow_build(tmp: Path, final: Path) -> None:
        calls.append(final)
        time.sleep(0.5)
        (tmp / "weights.bin").write_bytes(b"w")

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        tiny.build_once(tmp_path, "race", {"n": 2}, slow_build))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 2 and results[0] == results[1] and (results[0] / "weights.bin").is_file()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SDRRL_CACHE", str(tmp_path))
    assert tiny.default_cache_dir() == tmp_path / "tiny-models"
    monkeypatch.delenv("SDRRL_CACHE")
    assert tiny.default_cache_dir() == Path.home() / ".cache" / "sdrrl" / "tiny-models"


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SdrrlError, match="Cannot write"):
        tiny.build_all(blocker / "cache")


def test_fresh_build_is_fast_and_identical(tiny_models, tmp_path):
    """Seeded builds: an empty cache gives byte-identical weights and tokenizers."""
    import torch

    start = time.perf_counter()
    fresh = tiny.build_all(tmp_path)
    elapsed = time.perf_counter() - start
    print(f"build_all from an empty cache: {elapsed:.1f} s")
    assert elapsed < 60
    for name in ("llama", "nllb", "xlmr"):
        built, cached = getattr(fresh, name), getattr(tiny_models, name)
        assert built.name == cached.name
        assert _files(built) == _files(cached), name
    for name in ("comet_qe", "comet_ref"):
        built = torch.load(getattr(fresh, name), map_location="cpu", weights_only=True)["state_dict"]
        cached = torch.load(getattr(tiny_models, name), map_location="cpu", weights_only=True)["state_dict"]
        assert built.keys() == cached.keys()
        assert all(torch.equal(built[k], cached[k]) for k in built), name

    # prune: an older recipe's build goes, the current ones and foreign folders stay
    outdated, foreign = tmp_path / "llama-0123456789abcdef", tmp_path / "llama-mine"
    outdated.mkdir()
    foreign.mkdir()
    assert tiny.prune(tmp_path) == [outdated]
    assert foreign.is_dir() and all(_model_dir(Path(p)).is_dir() for p in fresh.as_dict().values())


# --- each model through its real library -----------------------------------------------------

def test_llama_loads_and_generates(tiny_models):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models.llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_models.llama)
    assert model.config.model_type == "llama"
    assert model.config.max_position_embeddings >= 2048
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == \
        ("<s>", "</s>", "<pad>", "<unk>")
    assert model.config.vocab_size == len(tokenizer)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    # byte-level BPE: every script of the table round-trips, and <s> starts a sequence like LLaMA
    for lang, sentences in SAMPLES.items():
        for sentence in sentences:
            ids = tokenizer(sentence).input_ids
            assert ids[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in ids, lang
            assert tokenizer.decode(ids, skip_special_tokens=True) == sentence, lang
    prompts = ["Give three tips for staying healthy.", "こんにちは"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert out.shape == (2, batch.input_ids.shape[1] + 6)
    long_input = torch.randint(5, len(tokenizer), (1, 1100))  # LLaMA-Factory's cutoff_len 1024 fits
    with torch.no_grad():
        assert model(long_input).logits.shape == (1, 1100, len(tokenizer))


def test_nllb_tokenizer_knows_every_table_language(tiny_models):
    from transformers import AutoTokenizer, NllbTokenizer, NllbTokenizerFast

    fast = AutoTokenizer.from_pretrained(tiny_models.nllb)
    slow = NllbTokenizer.from_pretrained(tiny_models.nllb)
    assert isinstance(fast, NllbTokenizerFast)
    assert len(fast) == len(slow)
    ids = {}
    for lang in LANGUAGES.values():
        ids[lang.nllb] = fast.convert_tokens_to_ids(lang.nllb)
        assert ids[lang.nllb] != fast.unk_token_id, lang.nllb
        assert slow.convert_tokens_to_ids(lang.nllb) == ids[lang.nllb]
        assert fast.tokenize(lang.nllb) == [lang.nllb]  # one special token, never split
    assert len(set(ids.values())) == len(LANGUAGES)
    for iso, sentences in SAMPLES.items():
        fast.src_lang = slow.src_lang = LANGUAGES[iso].nllb
        encoded = fast(sentences).input_ids
        assert encoded == slow(sentences).input_ids, iso
        for row in encoded:  # NLLB layout: [lang_code] tokens </s>; every script is covered
            assert row[0] == ids[LANGUAGES[iso].nllb] and row[-1] == fast.eos_token_id
            assert fast.unk_token_id not in row, iso


def test_nllb_ctranslate2_matches_transformers_beam_search(tiny_models, tmp_path):
    import ctranslate2
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models.nllb, src_lang="eng_Latn")
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_models.nllb)
    assert model.config.model_type == "m2m_100"
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.decoder_start_token_id == tokenizer.eos_token_id
    translator = ctranslate2.Translator(str(tiny.convert_to_ctranslate2(tiny_models.nllb, tmp_path / "ct2")),
                                        device="cpu", inter_threads=1, intra_threads=1)
    sentences = SAMPLES["eng"] + [SAMPLES["fra"][0], "What is the capital city of France?", "Hi"]
    max_tokens = 24
    outputs = set()
    for target in ("fra_Latn", "jpn_Jpan", "khm_Khmr"):
        batch = tokenizer(sentences, return_tensors="pt", padding=True)
        with torch.no_grad():
            hf = model.generate(**batch, num_beams=4, max_new_tokens=max_tokens,
                                forced_bos_token_id=tokenizer.convert_tokens_to_ids(target))
        ct2 = translator.translate_batch(
            [tokenizer.convert_ids_to_tokens(tokenizer(s).input_ids) for s in sentences],
            target_prefix=[[target]] * len(sentences), beam_size=4, max_decoding_length=max_tokens)
        for i, sentence in enumerate(sentences):
            hf_ids = [t for t in hf[i].tolist()[1:] if t != tokenizer.pad_token_id]  # drop the </s> start
            if hf_ids[-1] == tokenizer.eos_token_id:
                hf_ids = hf_ids[:-1]
            hf_tokens = tokenizer.convert_ids_to_tokens(hf_ids)
            assert hf_tokens[0] == target
            assert ct2[i].hypotheses[0] == hf_tokens, (target, sentence)
            outputs.add(tuple(hf_tokens[1:]))
    assert len(outputs) > len(sentences)  # the outputs depend on input and target: a real comparison


def test_xlmr_encoder_loads(tiny_models):
    import torch
    from transformers import AutoModel, AutoTokenizer, XLMRobertaTokenizerFast

    tokenizer = AutoTokenizer.from_pretrained(tiny_models.xlmr)
    model = AutoModel.from_pretrained(tiny_models.xlmr)
    assert isinstance(tokenizer, XLMRobertaTokenizerFast) and model.config.model_type == "xlm-roberta"
    assert model.config.vocab_size == len(tokenizer)
    batch = tokenizer(SAMPLES["tha"] + SAMPLES["khm"], return_tensors="pt", padding=True)
    assert tokenizer.unk_token_id not in batch.input_ids
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[-1] == model.config.hidden_size


def _comet_rows(with_ref: bool) -> list[dict]:
    rows = []
    for sentences in SAMPLES.values():
        for i, (src, mt) in enumerate(zip(SAMPLES["eng"], sentences)):
            row = {"src": src, "mt": mt}
            if with_ref:
                row["ref"] = SAMPLES["fra"][i]
            rows.append(row)
    return rows


def test_comet_qe_loads_and_predicts_on_cpu(tiny_models):
    import comet
    import yaml

    hparams = yaml.safe_load((tiny_models.comet_qe.parents[1] / "hparams.yaml").read_text())
    assert hparams["class_identifier"] == "unified_metric"
    assert hparams["input_segments"] == ["mt", "src"]
    assert hparams["pretrained_model"] == str(tiny_models.xlmr)
    model = comet.load_from_checkpoint(str(tiny_models.comet_qe))
    assert type(model).__name__ == "UnifiedMetric"
    rows = _comet_rows(with_ref=False)
    scores = model.predict(rows, batch_size=8, gpus=0, progress_bar=False).scores
    assert len(scores) == len(rows)
    assert all(0.0 <= s <= 1.0 for s in scores)  # the tiny model ends in a sigmoid
    assert max(scores) - min(scores) > 0.1  # calibrated: scores spread, not all ~0.5
    again = comet.load_from_checkpoint(str(tiny_models.comet_qe), reload_hparams=True)
    assert again.predict(rows[:4], batch_size=8, gpus=0, progress_bar=False).scores == \
        pytest.approx(scores[:4], abs=1e-5)


def test_comet_ref_loads_and_predicts_on_cpu(tiny_models):
    import comet

    model = comet.load_from_checkpoint(str(tiny_models.comet_ref))
    assert type(model).__name__ == "RegressionMetric"
    rows = _comet_rows(with_ref=True)
    output = model.predict(rows, batch_size=8, gpus=0, progress_bar=False)
    assert len(output.scores) == len(rows)
    assert output.system_score == pytest.approx(sum(output.scores) / len(rows))
    assert len({round(s, 6) for s in output.scores}) > 1
    assert all(-1.0 < s < 2.0 for s in output.scores)


def test_cli_prints_the_paths(tiny_models, tiny_cache_dir, capsys):
    from sdrrl.cli import main

    assert main(["tiny-models", "--cache-dir", str(tiny_cache_dir / "tiny-models"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == tiny_models.as_dict()
    assert main(["tiny-models", "--cache-dir", str(tiny_cache_dir / "tiny-models")]) == 0
    lines = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert lines == tiny_models.as_dict()


def test_cli_links_stable_names_to_the_models(tiny_models, tiny_cache_dir, tmp_path, capsys):
    from sdrrl.cli import main

    links = tmp_path / "models"
    (links).mkdir()
    os.symlink(tmp_path, links / "llama")  # a stale link from an older build is replaced
    for _ in range(2):  # idempotent
        assert main(["tiny-models", "--cache-dir", str(tiny_cache_dir / "tiny-models"), "--link", str(links)]) == 0
    capsys.readouterr()
    for name, path in tiny_models.as_dict().items():
        want = Path(path) if Path(path).is_dir() else Path(path).parents[1]  # COMET: the model folder
        assert (links / name).resolve() == want.resolve(), name
    assert (links / "comet_qe" / "hparams.yaml").is_file()
