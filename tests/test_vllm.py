"""vLLM for real (issue 21): vLLM's CPU build in its own environment (.venv-vllm, which `make test`
makes; $SDRRL_VLLM_PYTHON or the checkout's .venv-vllm), driven by the real commands.

The stages run in the main environment and drive vLLM through its worker process
(sdrrl.pipeline.vllm_engine); `lm_eval --model vllm` runs in the vLLM environment. The engine
comparisons use the tiny Llama with a larger initializer range (0.2), whose greedy answers depend on
the question: at the default range the random model writes ':' whatever it is asked, and two
engines would agree trivially. Each vLLM engine start costs ~30 s on 2 cores, so the tests share
runs: one build per engine, one interrupted and resumed generate, one lm_eval per engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from eval_utils import FIXTURES, train_stand_in_spm
from sdrrl.io import read_jsonl
from sdrrl import layout
from sdrrl.pipeline.cache import Cache

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROWS, NEW_TOKENS = 40, 24  # generate: 40 rows of the shipped sample, 24 new tokens each
STARTED = "vllm: starting an engine"

pytestmark = pytest.mark.slow


def _env(**extra) -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO / "plugin"),
                VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), **extra)


def _sdrrl(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdrrl.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout, **kw)


@pytest.fixture(scope="module")
def vllm_bin() -> Path:
    """The vLLM environment's bin folder; its absence fails here, naming the fix."""
    from sdrrl.pipeline.vllm_engine import vllm_python

    return Path(vllm_python()).parent


@pytest.fixture(scope="module")
def spread_llama(tiny_cache_dir) -> Path:
    from sdrrl.tiny import tiny_llama

    return tiny_llama(tiny_cache_dir / "tiny-models", settings={"initializer_range": 0.2})


def _build_config(path: Path, work: Path, model: Path, backend: str) -> Path:
    """generate (backend), self-translation into Indonesian on the same engine, filter without QE
    and language ID (random models' output is noise that they would reject wholesale)."""
    cfg = {"work_dir": str(work), "target_langs": ["ind"], "max_rows": ROWS, "progress_every_s": 1e9,
           "generate": {"model": str(model), "backend": backend, "max_new_tokens": NEW_TOKENS, "batch_size": 2,
                        "device": "cpu"},
           "translate": {"backend": "llm", "llm_max_new_tokens": 16, "batch_size": 16, "device": "cpu"},
           "filter": {"qe_enabled": False, "lid_enabled": False}}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


OUTPUTS = ("source.jsonl", "generate/responses.jsonl", "sample/synth.jsonl", "translate/eng-ind.jsonl",
           "filter/eng-ind.jsonl", "filter/eng-ind.excluded.jsonl", "filter/eng-ind.summary.json")


@pytest.fixture(scope="module")
def builds(vllm_bin, spread_llama, tmp_path_factory):
    """`sdrrl build` on each engine (generate + self-translation + filter), from the main environment."""
    root = tmp_path_factory.mktemp("vllm-build")
    runs = {}
    for backend in ("vllm", "transformers"):
        work = root / backend
        run = _sdrrl("build", "--config", _build_config(root / f"{backend}.yaml", work, spread_llama, backend))
        assert run.returncode == 0, run.stderr[-3000:]
        runs[backend] = (work, run)
    return root, runs


def test_build_on_vllm_writes_the_same_files_as_on_transformers(builds):
    _, runs = builds
    (vwork, vrun), (hwork, _) = runs["vllm"], runs["transformers"]
    for rel in OUTPUTS:
        assert (vwork / rel).read_bytes() == (hwork / rel).read_bytes(), rel
    responses = [r["response"] for r in read_jsonl(vwork / "generate/responses.jsonl")]
    assert len(responses) == ROWS and len(set(responses)) > ROWS // 2  # answers depend on the question
    translations = list(read_jsonl(vwork / "translate/eng-ind.jsonl"))
    assert all(r["x_mt"] for r in translations)
    # generate and self-translation by the same model share one engine
    assert vrun.stderr.count(STARTED) == 1, vrun.stderr[-3000:]


def test_vllm_build_again_does_no_model_work_and_the_cache_serves_both_engines(builds):
    """The cache key holds the model, template and decoding settings, not the engine (the two
    engines answer alike, float32 greedy): a rerun, on either engine, does no model work."""
    root, runs = builds
    vwork = runs["vllm"][0]
    before = {rel: (vwork / rel).read_bytes() for rel in OUTPUTS}
    for backend in ("vllm", "transformers"):
        run = _sdrrl("build", "--config", _build_config(root / f"again-{backend}.yaml", vwork,
                                                         Path(yaml.safe_load((root / "vllm.yaml").read_text())
                                                              ["generate"]["model"]), backend))
        assert run.returncode == 0, run.stderr[-3000:]
        assert '"generate": 0, "translate": 0' in run.stderr and STARTED not in run.stderr
        assert {rel: (vwork / rel).read_bytes() for rel in OUTPUTS} == before


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_killed_vllm_generate_leaves_no_process_and_resumes_to_identical_output(builds, vllm_bin, spread_llama,
                                                                                tmp_path):
    """kill -9 of `sdrrl generate --backend vllm` mid-run: the worker and vLLM's engine processes
    go with it; the rerun (in the vLLM environment, from prompts rendered by --prompts-only in the
    main one: the other documented route) continues from the cache and writes the same file as the
    uninterrupted build."""
    args = ["generate", "--work-dir", tmp_path, "--model", spread_llama, "--backend", "vllm", "--max-rows", ROWS,
            "--max-new-tokens", NEW_TOKENS, "--batch-size", 2, "--device", "cpu", "--preflight", "stage"]
    proc = subprocess.Popen([sys.executable, "-m", "sdrrl.cli", *map(str, args)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cache_file = tmp_path / "cache.sqlite"
    deadline, cached, tree = time.monotonic() + 300, 0, set()
    while time.monotonic() < deadline and proc.poll() is None:
        tree |= _descendants(proc.pid)
        if cache_file.exists():
            with Cache(cache_file) as c:
                cached = c.count("response")
            if cached >= 4:
                break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    tree |= _descendants(proc.pid)
    proc.kill()  # SIGKILL: no cleanup, no atexit
    proc.wait()
    proc.stderr.close()
    # the worker, vLLM's engine core and its worker: 3 processes (plus multiprocessing's tracker)
    assert len(tree) >= 3, tree
    deadline = time.monotonic() + 60
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(tree), [Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in _alive(tree)]
    out = layout.responses_path(tmp_path)
    assert not out.exists()
    with Cache(cache_file) as c:
        at_kill = c.count("response")
    assert 4 <= at_kill < ROWS

    rendered = _sdrrl("generate", "--work-dir", tmp_path, "--model", spread_llama, "--prompts-only", "--preflight", "stage")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    resumed = subprocess.run([str(vllm_bin / "sdrrl"), *map(str, args)], capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{at_kill} from the cache, {ROWS - at_kill} generated" in resumed.stderr
    vwork = builds[1]["vllm"][0]
    assert out.read_bytes() == layout.responses_path(vwork).read_bytes()


def test_unsupported_shape_and_bad_model_folder_fail_before_any_work_with_one_line(vllm_bin, tiny_cache_dir,
                                                                                   tmp_path):
    from sdrrl.tiny import tiny_llama

    # head size 16: vLLM's CPU attention refuses it at the engine's first step
    small_heads = tiny_llama(tiny_cache_dir / "tiny-models", settings={"num_attention_heads": 4,
                                                                       "num_key_value_heads": 2})
    run = _sdrrl("generate", "--work-dir", tmp_path / "w", "--model", small_heads, "--backend", "vllm",
                 "--max-rows", 4, "--device", "cpu", "--preflight", "stage")
    assert run.returncode == 2, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("sdrrl generate: error:")]
    assert len(errors) == 1 and "vLLM cannot run" in errors[0] and "head size is 16" in errors[0], run.stderr[-3000:]
    assert "Fix: use generate.backend: transformers" in errors[0] and "Traceback" not in run.stderr
    assert not layout.responses_path(tmp_path / "w").exists()
    with Cache(tmp_path / "w" / "cache.sqlite") as c:
        assert c.count("response") == 0

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    run = _sdrrl("generate", "--work-dir", tmp_path / "w2", "--model", empty, "--backend", "vllm", "--max-rows", 4,
                 "--preflight", "stage")
    assert run.returncode == 2 and "no config.json" in run.stderr and STARTED not in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


# -- evaluation: lm_eval --model vllm on the sdrrl_* tasks -----------------------------------------

TASKS = ["sdrrl_belebele_ces", "sdrrl_flores_ces-eng", "sdrrl_xlsum_jpn"]  # + MKQA through its group


def _lm_eval(lm_eval: Path, model: str, model_args: str, out: Path, sacrebleu: Path) -> subprocess.CompletedProcess:
    cmd = [str(lm_eval), "--model", model, "--model_args", model_args, "--limit", "2", "--include_path",
           str(REPO / "eval_tasks"), "--tasks", ",".join(TASKS + ["sdrrlavg_llama2_mkqa"]), "--output_path", str(out),
           "--log_samples"] + (["--device", "cpu"] if model == "hf" else [])
    env = _env(SDRRL_EVAL_DATA=str(FIXTURES), SACREBLEU=str(sacrebleu), SDRRL_COMET_MODEL="none",
               CUDA_VISIBLE_DEVICES="", VLLM_LOGGING_LEVEL="ERROR")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=out.parent)


@pytest.fixture(scope="module")
def lm_eval_runs(vllm_bin, spread_llama, tmp_path_factory):
    """The same tasks through lm_eval's vLLM backend (vLLM environment) and its HF backend (main
    environment), on the spread tiny Llama laid out as a trained SDRRL model (saves/.../sdrrl/eng-ces)."""
    root = tmp_path_factory.mktemp("lm_eval_vllm")
    model = root / "saves" / "llama2-7b" / "sdrrl" / "eng-ces"  # the recipes' layout: family, method, pair
    model.parent.mkdir(parents=True)
    model.symlink_to(spread_llama, target_is_directory=True)
    train_stand_in_spm(root / "sacrebleu" / "models" / "flores200sacrebleuspm")
    runs = {}
    for name, lm_eval, args in (("vllm", vllm_bin / "lm_eval", f"pretrained={model},dtype=float32,enforce_eager=True"),
                                ("hf", BIN / "lm_eval", f"pretrained={model},dtype=float32")):
        run = _lm_eval(lm_eval, name, args, root / name, root / "sacrebleu")
        assert run.returncode == 0, run.stderr[-3000:]
        [results] = list((root / name).rglob("results_*.json"))
        runs[name] = results
    return root, runs


def _samples(results: Path) -> dict[str, list[dict]]:
    return {f.name.split("_20")[0][len("samples_"):]: list(read_jsonl(f))
            for f in results.parent.glob("samples_*.jsonl")}


def test_lm_eval_vllm_runs_every_benchmark_and_answers_like_the_hf_backend(lm_eval_runs, spread_llama):
    from sdrrl import catalog
    from transformers import AutoTokenizer

    _, runs = lm_eval_runs
    vllm, hf = (json.loads(runs[k].read_text(encoding="utf-8")) for k in ("vllm", "hf"))
    mkqa = list(catalog.average_groups()["sdrrlavg_llama2_mkqa"])
    assert set(TASKS + mkqa) <= set(vllm["results"]) and "sdrrlavg_llama2_mkqa" in vllm["groups"]
    vs, hs = _samples(runs["vllm"]), _samples(runs["hf"])
    specials = AutoTokenizer.from_pretrained(spread_llama).all_special_tokens
    plain = lambda text: re.sub("|".join(map(re.escape, specials)), "", text)  # noqa: E731
    assert set(vs) == set(TASKS + mkqa)
    for task in TASKS + mkqa:
        assert len(vs[task]) == 2, task
        for v, h in zip(vs[task], hs[task]):
            assert v["doc_id"] == h["doc_id"]
            if task.startswith("sdrrl_belebele"):  # log-likelihoods of A-D: the same choice, close values
                assert [float(r[0][0]) for r in v["resps"]] == pytest.approx([float(r[0][0]) for r in h["resps"]],
                                                                           rel=1e-4, abs=1e-3)
            else:  # greedy answers, cut at the tasks' stop sequence (a line break): the same text, except
                # that lm-eval's vLLM backend keeps special tokens in it (skip_special_tokens False) where
                # its HF backend drops them (the random model writes <unk> and <s> mid-answer), and that
                # an answer cut by max_gen_toks amid bytes that are not valid UTF-8 (the random model's
                # byte tokens) may end in other characters: HF decodes the whole answer at once, vLLM
                # token by token, holding incomplete bytes back
                for a, b in zip(v["filtered_resps"], h["filtered_resps"]):
                    a = plain(a)
                    assert len(os.path.commonprefix([a, b])) >= max(len(a), len(b)) - 4, (task, a[-20:], b[-20:])
    assert vllm["results"]["sdrrl_belebele_ces"]["acc,none"] == hf["results"]["sdrrl_belebele_ces"]["acc,none"]
    for task in TASKS + mkqa:  # every metric computed (COMET is off: `sdrrl score` adds it in the main environment)
        for metric in (m.name for m in catalog.benchmark(catalog.parse_task(task)[0]).metrics):
            value = vllm["results"][task][f"{metric},none"]
            if metric in ("spbleu_signature", "comet_model"):  # the same settings on both backends
                assert value == hf["results"][task][f"{metric},none"]
            elif metric == "spbleu":
                assert 0.0 <= value <= 100.0
            elif metric != "comet":
                assert 0.0 <= value <= 1.0, (task, metric, value)


def test_sdrrl_report_reads_a_vllm_run(lm_eval_runs, tmp_path):
    """lm_eval's vLLM backend records model_args as a dict; method and pair come from pretrained=."""
    root, runs = lm_eval_runs
    run = _sdrrl("report", runs["vllm"].parent, "--out", tmp_path / "report")
    assert run.returncode == 0, run.stderr[-3000:]
    report = (tmp_path / "report" / "REPORT.md").read_text(encoding="utf-8")
    runs_table = report.split("## Runs", 1)[1].split("\n\n", 2)[1]
    assert "| sdrrl | eng-ces |" in runs_table and "saves/llama2-7b/sdrrl/eng-ces" in runs_table, runs_table
