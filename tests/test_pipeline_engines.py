"""The pipeline stages on the real engines (transformers, CTranslate2, LLaMA-Factory's template code,
COMET, gcld3) and the tiny local models: end to end, backend equality, filters, cache reuse.

The tiny models are random: their translations are noise, so honest language-ID and QE filters
reject most of them. Where a test needs rows to pass, it says which threshold it sets and why."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdrrl import layout
from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.pipeline import config, segment, workdir
from sdrrl.pipeline.cache import Cache

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "plugin" / "sdrrl" / "data" / "sample"
MAX_LENGTH = 24  # random models never stop early: a short limit keeps beam search cheap


def _synth_rows(n: int) -> list[dict]:
    """D_synth rows from the shipped instructions (y_hat: the gold answer reversed by sentence)."""
    rows = list(read_jsonl(SAMPLES / "instructions_eng.jsonl"))[:n]
    out = []
    for i, r in enumerate(rows):
        y_hat = " ".join(reversed(r["output"].split(". ")))
        out.append({"id": str(i), "from": "G" if i % 2 else "D", "x": layout.question(r), "y": r["output"],
                    "y_hat": y_hat})
    return out


def _cfg(tiny_models, work: Path, **sections) -> config.PipelineConfig:
    data = {
        "work_dir": str(work), "target_langs": ["ces"], "progress_every_s": 0.5,
        "generate": {"model": str(tiny_models.llama), "max_new_tokens": 8, "batch_size": 4, "device": "cpu"},
        "translate": {"model": str(tiny_models.nllb), "max_length": MAX_LENGTH, "batch_size": 8, "device": "cpu"},
        "filter": {"qe_model": str(tiny_models.comet_qe)},
    }
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    return config.from_dict(data)


# -- translate ----------------------------------------------------------------------------------------

def test_transformers_and_ctranslate2_give_identical_translations(tiny_models, tmp_path):
    from sdrrl.pipeline.translate import CTranslate2Translator, TransformersTranslator

    texts = [r["instruction"] for r in read_jsonl(SAMPLES / "instructions_eng.jsonl")][:24]
    settings = dict(beam_size=4, max_length=MAX_LENGTH, length_penalty=1.0)
    hf = TransformersTranslator(str(tiny_models.nllb), device="cpu", **settings)
    ct2 = CTranslate2Translator(str(tiny_models.nllb), device="cpu", convert_cache=tmp_path, **settings)
    for tgt in ("ces_Latn", "jpn_Jpan"):
        a = hf.translate(texts, "eng_Latn", tgt)
        b = ct2.translate(texts, "eng_Latn", tgt)
        assert a == b
        assert len(set(a)) > 5  # real, varied output
    assert hf.calls == ct2.calls == 2


def test_translate_stage_same_output_through_both_backends_and_shards(tiny_models, tmp_path):
    from sdrrl.pipeline.translate import run_translate

    outputs = {}
    for backend in ("transformers", "ctranslate2"):
        work = tmp_path / backend
        write_jsonl(layout.synth_path(work), _synth_rows(12))
        cfg = _cfg(tiny_models, work, translate={"backend": backend})
        with Cache(cfg.cache_path) as cache:
            stats = run_translate(work, cfg, "eng", "ces", cache)
        assert stats["model_calls"] > 0
        outputs[backend] = layout.translations_path(work, "eng", "ces").read_bytes()
    assert outputs["transformers"] == outputs["ctranslate2"]
    rows = [json.loads(line) for line in outputs["ctranslate2"].decode().splitlines()]
    assert [set(r) for r in rows] == [{"id", "x_mt", "y_mt", "y_hat_mt", "source_sha1"}] * 12
    assert all(isinstance(r["x_mt"], str) and isinstance(r["y_mt"], str) for r in rows)
    assert sum(bool(r["x_mt"]) for r in rows) > 6
    assert [r["y_hat_mt"] is None for r in rows] == [i % 2 == 0 for i in range(12)]  # y_hat only where from G
    # numbered list answer (row 0): markers and line breaks survive translation
    assert [line[:3] for line in rows[0]["y_mt"].split("\n")] == ["1. ", "2. ", "3. "]

    # two shards into a fresh work dir sharing the cache: no model call, same merged output
    work = tmp_path / "sharded"
    write_jsonl(layout.synth_path(work), _synth_rows(12))
    cfg = _cfg(tiny_models, work, translate={"backend": "ctranslate2"}, cache=str(tmp_path / "ctranslate2" / "cache.sqlite"))
    with Cache(cfg.cache_path) as cache:
        for i in range(2):
            assert run_translate(work, cfg, "eng", "ces", cache, num_shards=2, shard_index=i)["model_calls"] == 0
    assert layout.translations_path(work, "eng", "ces").read_bytes() == outputs["ctranslate2"]


def test_killed_translate_resumes_to_identical_output(tiny_models, tmp_path):
    """kill -9 a real `sdrrl translate` mid-stage, rerun it, compare with an uninterrupted run."""
    rows = _synth_rows(40)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"))

    def command(work: Path) -> list[str]:
        return [sys.executable, "-m", "sdrrl.cli", "translate", "--work-dir", str(work), "--tgt", "ces",
                "--model", str(tiny_models.nllb), "--backend", "transformers", "--max-length", str(MAX_LENGTH),
                "--batch-size", "2", "--device", "cpu", "--preflight", "stage"]  # no QE model here: not checked

    killed = tmp_path / "killed"
    write_jsonl(layout.synth_path(killed), rows)
    out = layout.translations_path(killed, "eng", "ces")
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cache_file = killed / "cache.sqlite"
    deadline = time.monotonic() + 120
    cached = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if cache_file.exists():
            with Cache(cache_file) as c:
                cached = c.count("translation")
            if cached >= 6:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.kill()  # SIGKILL: no cleanup, no atexit
    proc.wait()
    proc.stderr.close()
    assert not out.exists()
    with Cache(cache_file) as c:
        at_kill = c.count("translation")
    assert at_kill >= 6

    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{at_kill} from the cache" in resumed.stderr

    fresh = tmp_path / "fresh"
    write_jsonl(layout.synth_path(fresh), rows)
    clean = subprocess.run(command(fresh), env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert "0 from the cache" in clean.stderr
    assert out.read_bytes() == layout.translations_path(fresh, "eng", "ces").read_bytes()


def _synth_480() -> list[dict]:
    """480 D_synth rows, each a different combination of the shipped instructions (x) with one or two
    sentences of their answers (y) and another sentence (y_hat, translated where the row is from G):
    1,328 segments, 182 unique (rows share sentences, as in real data), 1,280 texts to score."""
    base = list(read_jsonl(SAMPLES / "instructions_eng.jsonl"))
    questions = [layout.question(r) for r in base]
    sentences = list(dict.fromkeys(s for r in base for s in segment.split_sentences(r["output"].replace("\n", " "))))
    rows = []
    for i in range(480):
        y = " ".join(sentences[(i * 7 + k) % len(sentences)] for k in range(1 + i % 2))
        rows.append({"id": str(i), "from": "G" if i % 3 else "D", "x": questions[i % len(questions)], "y": y,
                     "y_hat": sentences[(i * 11 + 3) % len(sentences)]})
    return rows


class _Stop(Exception):
    """The crash injected into a run (the model calls before it are committed, as after a kill -9)."""


@contextlib.contextmanager
def _dies_after(engine, method: str, calls: int):
    """``engine.method`` works ``calls`` times, then raises :class:`_Stop`; the run must stop on it."""
    real, done = getattr(engine, method), [0]

    def dying(*args):
        done[0] += 1
        if done[0] > calls:
            raise _Stop
        return real(*args)

    setattr(engine, method, dying)
    try:
        with pytest.raises(_Stop):
            yield
    finally:
        delattr(engine, method)


def test_sharded_resumed_and_unsharded_translate_and_filter_are_byte_identical_at_480_rows(tiny_models, tmp_path):
    """Which segments (and QE pairs) share a batch must not depend on the shards or on where a run
    stopped: a batched engine's output depends on its batch (QE scores differ in their last digits,
    translations can differ by a token). Real engines (transformers NLLB, COMET QE); each run its own
    cache, each shard too (shards on two machines), so nothing is reused between them."""
    from sdrrl.pipeline.filters import CometKiwiFilter, run_filter
    from sdrrl.pipeline.translate import TransformersTranslator, run_translate

    rows = _synth_480()
    tr = TransformersTranslator(str(tiny_models.nllb), device="cpu", max_length=MAX_LENGTH)
    qe = CometKiwiFilter(str(tiny_models.comet_qe), threshold=0.45, batch_size=4)  # 64 pairs a call
    files = [layout.translations_path(Path(), "eng", "ces"), layout.filtered_path(Path(), "eng", "ces"),
             layout.excluded_path(Path(), "eng", "ces"), layout.summary_path(Path(), "eng", "ces")]

    def cfg(work: Path, cache: str = "cache.sqlite") -> config.PipelineConfig:
        # every translation goes to QE: the random model's noise would fail the heuristics and LID
        return _cfg(tiny_models, work, cache=str(work / cache),
                    filter={"qe_threshold": 0.45, "qe_batch_size": 4, "lid_enabled": False,
                            "heuristics_enabled": False})

    def stage(work: Path, shards: int = 1) -> dict:
        stats = {}
        for name in ("translate", "filter"):
            for i in reversed(range(shards)):  # the last shard first: the order does not matter
                c = cfg(work, f"cache-{i}.sqlite" if shards > 1 else "cache.sqlite")
                with Cache(c.cache_path) as cache:
                    if name == "translate":
                        stats[f"translate {i}"] = run_translate(work, c, "eng", "ces", cache, tr, shards, i)
                    else:
                        qe.cache = cache
                        stats[f"filter {i}"] = run_filter(work, c, "eng", "ces", cache, qe, shards, i)
        return stats

    outputs, runs = {}, {}
    for name, shards in (("whole", 1), ("sharded", 2)):
        work = tmp_path / name
        write_jsonl(layout.synth_path(work), rows)
        runs[name] = stage(work, shards)
        outputs[name] = [(work / f).read_bytes() for f in files]
    assert outputs["sharded"] == outputs["whole"]
    whole, sharded = runs["whole"], runs["sharded"]
    unique = whole["translate 0"]["unique_segments"]
    assert unique > 150 and whole["translate 0"]["model_calls"] > 2 and whole["filter 0"]["qe_calls"] > 2
    # each segment translated by exactly one shard, each QE pair scored by one
    assert sharded["translate 0"]["shard_segments"] + sharded["translate 1"]["shard_segments"] == unique
    assert sharded["filter 0"]["qe_scored"] + sharded["filter 1"]["qe_scored"] == whole["filter 0"]["qe_scored"]
    assert sharded["filter 1"]["kept"] is None and sharded["filter 0"]["kept"] == whole["filter 0"]["kept"]
    summary = json.loads(outputs["whole"][3])
    assert summary["rows"] == 480 and summary["kept"] > 0 and summary["rejected_by_reason"]["qe:qe_below_threshold"]

    # a run that dies after two translation batches; resumed, it dies after two QE calls; resumed again
    work = tmp_path / "resumed"
    write_jsonl(layout.synth_path(work), rows)
    for engine, method, kind in ((tr, "translate", "translation"), (qe, "_load", "qe")):
        with _dies_after(engine, method, 2):
            stage(work)
        with Cache(cfg(work).cache_path) as cache:
            assert 0 < cache.count(kind) < (unique if kind == "translation" else whole["filter 0"]["qe_scored"])
    assert not (work / files[1]).exists()
    resumed = stage(work)
    assert resumed["translate 0"]["model_calls"] == 0
    assert 0 < resumed["filter 0"]["qe_calls"] == whole["filter 0"]["qe_calls"] - 2
    assert [(work / f).read_bytes() for f in files] == outputs["whole"]


# -- generate --------------------------------------------------------------------------------------

def test_prompts_are_rendered_by_llamafactory_template(tiny_models):
    from sdrrl.pipeline.generate import render_prompts
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models.llama)
    prompts, stop = render_prompts(str(tiny_models.llama), "default", ["Name a colour.", "Add.\n2 and 3"])
    assert tok.decode(prompts[0]) == f"Human: Name a colour.{tok.eos_token}\nAssistant:"
    assert tok.decode(prompts[1]) == f"Human: Add.\n2 and 3{tok.eos_token}\nAssistant:"
    assert tok.eos_token_id in stop
    alpaca, _ = render_prompts(str(tiny_models.llama), "alpaca", ["Name a colour."])
    assert "### Instruction:\nName a colour.\n\n### Response:\n" in tok.decode(alpaca[0])
    with pytest.raises(SdrrlError, match="Unknown LLaMA-Factory template"):
        render_prompts(str(tiny_models.llama), "no-such-template", ["x"])


def test_generate_stage_batched_left_padded_and_cached(tiny_models, tmp_path):
    from sdrrl.pipeline.generate import (
        TransformersGenerator,
        render_prompts,
        run_generate,
    )

    cfg = _cfg(tiny_models, tmp_path)
    workdir.prepare_source(tmp_path, None, max_rows=6)
    gen = TransformersGenerator(str(tiny_models.llama), device="cpu", max_new_tokens=8)
    with Cache(cfg.cache_path) as cache:
        stats = run_generate(tmp_path, cfg, cache, gen)
        assert stats["model_calls"] == 2 and stats["generated"] == 6  # batch_size 4
        rows = list(read_jsonl(layout.responses_path(tmp_path)))
        assert [r["id"] for r in rows] == [str(i) for i in range(6)]
        assert all(isinstance(r["response"], str) for r in rows)
        # left padding does not change a greedy answer: the batched answer equals the answer alone
        source = list(read_jsonl(layout.source_path(tmp_path)))
        prompts, stop = render_prompts(str(tiny_models.llama), "default", [layout.question(source[5])])
        alone = TransformersGenerator(str(tiny_models.llama), device="cpu", max_new_tokens=8)
        alone.stop_token_ids = stop
        assert alone.generate(prompts) == [rows[5]["response"]]
        assert run_generate(tmp_path, cfg, cache, gen)["model_calls"] == 0


def test_generate_shards_and_a_resumed_run_write_what_one_run_writes(tiny_models, tmp_path):
    """Shards take whole batches of the unsharded run's plan (13 prompts, batch_size 4: batches of
    4, 4, 4, 1; shard 0 takes the first and third), each with its own cache, and the merge puts G
    in D's order; a run stopped after two batches resumes to the same bytes."""
    from sdrrl.pipeline.generate import TransformersGenerator, run_generate

    gen = TransformersGenerator(str(tiny_models.llama), device="cpu", max_new_tokens=8)

    def run(work: Path, shards: int = 1) -> list[dict]:
        if not layout.source_path(work).exists():
            workdir.prepare_source(work, None, max_rows=13)
        stats = []
        for i in reversed(range(shards)):
            cfg = _cfg(tiny_models, work, cache=str(work / f"cache-{i}.sqlite"))
            with Cache(cfg.cache_path) as cache:
                stats.append(run_generate(work, cfg, cache, gen, shards, i))
        return stats

    [whole] = run(tmp_path / "whole")
    expected = layout.responses_path(tmp_path / "whole").read_bytes()
    assert whole["model_calls"] == 4 and whole["generated"] == 13
    one, zero = run(tmp_path / "sharded", 2)
    assert (zero["shard_questions"], zero["model_calls"], one["shard_questions"], one["model_calls"]) == (8, 2, 5, 2)
    assert layout.responses_path(tmp_path / "sharded").read_bytes() == expected

    work = tmp_path / "resumed"
    with _dies_after(gen, "generate", 2):
        run(work)
    assert not layout.responses_path(work).exists()
    [resumed] = run(work)
    assert resumed["model_calls"] == 2 and resumed["generated"] == 5
    assert layout.responses_path(work).read_bytes() == expected


# -- filters ------------------------------------------------------------------------------------------

def _samples() -> dict[str, list[str]]:
    return json.loads((SAMPLES / "language_samples.json").read_text(encoding="utf-8"))


def test_language_id_filter_with_real_sentences():
    from sdrrl.pipeline.filters import LanguageIdFilter

    s = _samples()
    ces = LanguageIdFilter("ces")
    assert ces.check(s["ces"][0]) == (None, None)
    reason, prob = ces.check(s["eng"][0])
    assert reason == "off_target:en" and prob > 0.5
    assert ces.check(s["dan"][0])[0] == "off_target:da"
    assert ces.check("Ano.") == (None, None)  # too short to judge
    code_answer = f"{s['ces'][1]}\n```\nprint('hello world, this is English code text')\n```"
    assert ces.check(code_answer) == (None, None)  # code is not judged
    for iso in ("jpn", "kor", "tha", "ukr", "nob", "vie"):
        assert LanguageIdFilter(iso).check(s[iso][0]) == (None, None), iso


def test_filter_stage_rejects_what_it_should_and_logs_every_rejection(tiny_models, tmp_path):
    from sdrrl.pipeline.filters import CometKiwiFilter, run_filter

    s = _samples()
    eng, ces, dan = s["eng"], s["ces"], s["dan"]
    synth = [{"id": str(i), "from": "G", "x": eng[0], "y": eng[1], "y_hat": eng[0]} for i in range(4)]
    mt = [
        {"id": "0", "x_mt": ces[0], "y_mt": ces[1], "y_hat_mt": ces[0]},    # all good
        {"id": "1", "x_mt": eng[0], "y_mt": dan[1], "y_hat_mt": ""},        # copy, off-target, empty
        {"id": "2", "x_mt": "Dnes.", "y_mt": "ano " * 30, "y_hat_mt": ces[0]},  # length ratio, repetition
        {"id": "3", "x_mt": ces[0], "y_mt": ces[1], "y_hat_mt": None},      # y_hat never translated
    ]
    write_jsonl(layout.synth_path(tmp_path), synth)
    write_jsonl(layout.translations_path(tmp_path, "eng", "ces"), mt)

    # QE: score the surviving pairs with the tiny COMET QE model, then set tau between the scores
    # (random weights: its scores are arbitrary, the threshold logic is what is tested)
    probe = CometKiwiFilter(str(tiny_models.comet_qe), cache=None)
    pairs = [(eng[0], ces[0]), (eng[1], ces[1])]
    low, high = sorted(probe.scores(pairs))
    assert 0.0 <= low < high <= 1.0
    tau = (low + high) / 2
    cfg = _cfg(tiny_models, tmp_path, filter={"qe_threshold": tau})
    with Cache(cfg.cache_path) as cache:
        summary = run_filter(tmp_path, cfg, "eng", "ces", cache)
        assert summary["qe_calls"] == 1
        assert run_filter(tmp_path, cfg, "eng", "ces", cache)["qe_calls"] == 0  # scores are cached

    excluded = list(read_jsonl(layout.excluded_path(tmp_path, "eng", "ces")))
    got = {(e["id"], e["field"]): (e["stage"], e["reason"]) for e in excluded}
    low_pair = "x" if probe.scores([(eng[0], ces[0])])[0] < tau else "y"
    expected = {("1", "x"): ("heuristic", "copy_of_source"), ("1", "y"): ("lid", "off_target:da"),
                ("1", "y_hat"): ("heuristic", "empty"), ("2", "x"): ("heuristic", "length_ratio"),
                ("2", "y"): ("heuristic", "repetition")}
    for rid in ("0", "2", "3"):  # rows with a translation that passed heuristics and LID
        fields = {"0": ("x", "y", "y_hat"), "2": ("y_hat",), "3": ("x", "y")}[rid]
        for f in fields:
            if (f == "y") == (low_pair == "y"):
                expected[(rid, f)] = ("qe", "qe_below_threshold")
    assert got == expected
    assert all(set(e) == {"id", "field", "stage", "reason", "text", "translation", "score"} for e in excluded)
    assert all(e["score"] < tau for e in excluded if e["stage"] == "qe")
    rows = list(read_jsonl(layout.filtered_path(tmp_path, "eng", "ces")))
    assert [set(r) for r in rows] == [{"id", "from", "x", "y", "y_hat", "x_mt", "y_mt", "y_hat_mt"}] * 4
    for r in rows:
        for f in ("x", "y", "y_hat"):
            assert (r[f + "_mt"] is None) == ((r["id"], f) in got or (r["id"], f) == ("3", "y_hat"))
    written = json.loads(layout.summary_path(tmp_path, "eng", "ces").read_text())
    assert written["rejected"] == len(excluded) and written["kept"] == 11 - len(excluded)
    assert written["fields"]["y"]["rejected"]["lid:off_target:da"] == 1


def test_qe_model_missing_offline_is_a_clear_error(tmp_path):
    from sdrrl.pipeline.filters import CometKiwiFilter

    with pytest.raises(ModelNotFoundError, match="filter.qe_model.*model.ckpt"):
        CometKiwiFilter("Unbabel/wmt22-cometkiwi-da").scores([("Hello.", "Ahoj.")])
    with pytest.raises(ModelNotFoundError, match="not found"):
        CometKiwiFilter(str(tmp_path / "missing" / "model.ckpt")).scores([("Hello.", "Ahoj.")])


# -- build -------------------------------------------------------------------------------------------

def test_build_end_to_end_then_a_second_run_does_no_model_work(tiny_models, tmp_path):
    """Thresholds for this run: qe_threshold 0.0 and lid off, so the random models' noise reaches
    the output files (the filters are tested on fixtures above)."""
    from sdrrl.pipeline.build import run_build

    cfg = _cfg(tiny_models, tmp_path / "work", max_rows=6, target_langs=["ces", "jpn"],
               translate={"backend": "ctranslate2"}, filter={"qe_threshold": 0.0, "lid_enabled": False})
    first = run_build(cfg)
    calls = first["model_calls"]
    assert calls["generate"] == 2 and calls["translate"] >= 2 and calls["qe"] >= 1
    work = cfg.work
    for tgt in ("ces", "jpn"):
        rows = list(read_jsonl(layout.filtered_path(work, "eng", tgt)))
        summary = json.loads(layout.summary_path(work, "eng", tgt).read_text())
        kept = sum(r[f] is not None for r in rows for f in ("x_mt", "y_mt", "y_hat_mt"))
        assert len(rows) == 6 and summary["rows"] == 6 and kept == summary["kept"] > 0
        excluded = list(read_jsonl(layout.excluded_path(work, "eng", tgt)))
        assert len(excluded) == summary["rejected"] and kept + len(excluded) == 12 + sum(r["from"] == "G" for r in rows)
    synth = list(read_jsonl(layout.synth_path(work)))
    assert {r["from"] for r in synth} <= {"D", "G"} and len(synth) == 6
    snapshot = {p: p.read_bytes() for p in sorted((work / "filter").iterdir())}

    from sdrrl.pipeline.filters import CometKiwiFilter
    from sdrrl.pipeline.generate import TransformersGenerator
    from sdrrl.pipeline.translate import CTranslate2Translator

    gen = TransformersGenerator(str(tiny_models.llama))
    tr = CTranslate2Translator(str(tiny_models.nllb), max_length=MAX_LENGTH)
    qe = CometKiwiFilter(str(tiny_models.comet_qe), threshold=0.0)
    second = run_build(cfg, generator=gen, translator=tr, qe=qe)
    assert second["model_calls"] == {"generate": 0, "translate": 0, "qe": 0}
    assert gen._model is None and tr._engine is None and qe._comet is None  # no model was even loaded
    assert {p: p.read_bytes() for p in sorted((work / "filter").iterdir())} == snapshot


def test_build_cli_bad_language_and_bad_rows(tiny_models, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "plugin"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target_langs: [xyz]\n")
    r = subprocess.run([sys.executable, "-m", "sdrrl.cli", "build", "--config", str(cfg)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Unknown language code 'xyz'" in r.stderr
    models = (f"generate: {{model: {tiny_models.llama}}}\ntranslate: {{model: {tiny_models.nllb}}}\n"
              f"filter: {{qe_model: {tiny_models.comet_qe}}}\n")  # the preflight checks them before reading D
    cfg.write_text(f"work_dir: w\ninput: {REPO / 'tests/fixtures/pipeline/bad_rows.jsonl'}\n" + models)
    r = subprocess.run([sys.executable, "-m", "sdrrl.cli", "build", "--config", str(cfg)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "row 2: missing 'output'" in r.stderr


def test_single_stage_commands_with_shards_in_separate_processes(tiny_models, tmp_path):
    """`sdrrl sample | translate (2 shard processes) | filter` as a user runs them."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"))
    work = str(tmp_path / "work")

    def sdrrl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sdrrl.cli", *args], env=env, capture_output=True, text=True)

    # generate runs in-process above; here D and G are given, as from another machine's generate run
    workdir.prepare_source(Path(work), None, max_rows=5)
    write_jsonl(layout.responses_path(Path(work)), [{"id": str(i), "response": f"Answer number {i}."} for i in range(5)])
    # --preflight stage: each command checks its own stage's models only (the later stages' are not set here)
    r = sdrrl("sample", "--work-dir", work, "--seed", "7", "--preflight", "stage")
    assert r.returncode == 0 and "D_synth has 5 rows" in r.stderr, r.stderr[-2000:]

    common = ["--work-dir", work, "--tgt", "ces", "--model", str(tiny_models.nllb), "--backend", "ctranslate2",
              "--max-length", str(MAX_LENGTH), "--num-shards", "2", "--preflight", "stage"]
    r = sdrrl("filter", "--work-dir", work, "--tgt", "ces", "--no-qe")
    assert r.returncode == 2 and "not exist and no shards" in r.stderr
    r = sdrrl("translate", *common, "--shard-index", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    r = sdrrl("filter", "--work-dir", work, "--tgt", "ces", "--no-qe")
    assert r.returncode == 2 and "shard(s) 0 of 2 are not finished" in r.stderr and "--shard-index I" in r.stderr
    r = sdrrl("translate", *common, "--shard-index", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    merged = list(read_jsonl(layout.translations_path(Path(work), "eng", "ces")))
    assert [m["id"] for m in merged] == [str(i) for i in range(5)]

    r = sdrrl("filter", "--work-dir", work, "--tgt", "ces", "--no-qe")  # QE: tested in-process above
    assert r.returncode == 0, r.stderr[-2000:]
    assert "filter eng-ces: 5 rows; kept" in r.stderr and "QE off" in r.stderr
    rows = list(read_jsonl(layout.filtered_path(Path(work), "eng", "ces")))
    assert [r["id"] for r in rows] == [str(i) for i in range(5)] and rows[1]["y_hat"] == "Answer number 1."


def test_generator_release_frees_the_model_and_a_later_call_reloads_it(tiny_models):
    from sdrrl.pipeline.generate import TransformersGenerator, render_prompts

    prompts, stop = render_prompts(str(tiny_models.llama), "default", ["Name a color.", "What is rain?"])
    gen = TransformersGenerator(str(tiny_models.llama), max_new_tokens=6)
    gen.stop_token_ids = stop
    first = gen.generate(prompts)
    assert gen._model is not None
    gen.release()
    assert gen._model is None
    assert gen.generate(prompts) == first and gen.calls == 2
