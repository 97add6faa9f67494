"""No silent wrong data at the edges (issue 22, the data half): one test per numbered case of the issue,
each through the real CLI on the tiny models and the shipped sample data, plus the units below them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdrrl import layout, registry
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.pipeline import lock

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "plugin" / "sdrrl" / "data" / "sample"
FIXTURE_WORK = REPO / "tests" / "fixtures" / "compose" / "work"
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
           TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"))


def sdrrl(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdrrl.cli", *map(str, args)], env=env or ENV, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def clean_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 with `error:` lines that name a fix, no traceback, and every needle in the message."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert lines and all("Fix:" in line for line in lines), err[-3000:]
    for needle in needles:
        assert needle in err, (needle, err[-3000:])
    return err


def build_config(tiny_models, path: Path, **sections) -> Path:
    """The tiny models, one target; QE and language ID off (random weights translate into noise)."""
    cfg = {"work_dir": "w", "target_langs": ["ind"], "progress_every_s": 0.5,
           "generate": {"model": str(tiny_models.llama), "max_new_tokens": 6, "batch_size": 4, "device": "cpu"},
           "translate": {"model": str(tiny_models.nllb), "max_length": 12, "batch_size": 8, "device": "cpu"},
           "filter": {"qe_enabled": False, "lid_enabled": False, "heuristics_enabled": False}}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(json.dumps(cfg))
    return path


def export_config(path: Path, work: Path, **overrides) -> Path:
    cfg = {"work_dir": str(work), "targets": ["ind"], "methods": ["sft", "sdrrl"], "workers": 1,
           "code_switch": {"dictionaries": str(SAMPLE / "dictionaries")},
           "parallel": {"corpus": str(SAMPLE / "parallel" / "{src}-{tgt}.tsv"), "pairs": 30}}
    for key, value in overrides.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(json.dumps(cfg))
    return path


def rows(path: Path) -> list[dict]:
    return list(read_jsonl(path))


# -- case 2: a work directory knows its generation -----------------------------------------------------

@pytest.fixture(scope="module")
def built(tiny_models, tmp_path_factory) -> Path:
    """A finished 6-row build (its folder holds build.yaml and the work directory w)."""
    root = tmp_path_factory.mktemp("built")
    cfg = build_config(tiny_models, root / "build.yaml")
    proc = sdrrl("build", "--config", cfg, "--max-rows", 6, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def copy_built(built: Path, dst: Path) -> Path:
    shutil.copytree(built, dst)
    return dst


def test_case2_a_build_rerun_with_other_max_rows_killed_after_prepare_is_refused_by_export(built, tmp_path):
    root = copy_built(built, tmp_path / "b")
    cfg, work = root / "build.yaml", root / "w"
    exp = export_config(root / "export.yaml", work)
    assert sdrrl("export", "--config", exp, "--out", root / "reg").returncode == 0
    record = layout.record_path(layout.source_path(work))
    before = record.read_bytes()
    # 8 rows: two not generated yet, so the run is still loading the generator when it is killed
    proc = subprocess.Popen([sys.executable, "-m", "sdrrl.cli", "build", "--config", str(cfg), "--max-rows", "8"],
                            env=ENV, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while record.read_bytes() == before:  # prepared: D has 8 rows now, G still the 6-row build's
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # killed after "prepare", as in the issue
    finally:
        proc.wait()
    assert len(rows(layout.source_path(work))) == 8 and len(rows(layout.responses_path(work))) == 6
    err = clean_error(sdrrl("export", "--config", exp, "--out", root / "reg"),
                      "mixes two builds", str(layout.responses_path(work)), "(generate output)",
                      "sdrrl build --config CONFIG", "sdrrl generate --config CONFIG")
    assert "synth.jsonl (sample output)" not in err  # only the first broken stage of the chain is named
    assert json.loads((root / "reg" / "manifest.json").read_text())["entries"]["sft_eng"]["rows"] == 6  # untouched
    # every later stage refuses too
    clean_error(sdrrl("sample", "--config", cfg, cwd=root), "mixes two builds", "(generate output)")
    # the same build, finished, makes the work directory one generation again
    assert sdrrl("build", "--config", cfg, "--max-rows", 8, cwd=root).returncode == 0
    assert sdrrl("export", "--config", exp, "--out", root / "reg").returncode == 0
    manifest = json.loads((root / "reg" / "manifest.json").read_text())["entries"]
    assert manifest["sft_eng"]["rows"] == 8 and manifest["sdrrl_eng-ind_ll"]["rows"] == 8


def test_generation_records_strict_and_lenient(tmp_path):
    """The chain check itself: a stale link is named once, an output after it is not; an output
    without a record is refused by export (strict) and taken as given by a stage (lenient)."""
    work = tmp_path / "w"
    write_jsonl(layout.source_path(work), [{"id": "1", "instruction": "q", "input": "", "output": "a"}])
    layout.record(layout.source_path(work), layout.StageDeps("prepare", {}, None, {}).record)
    for stage, path, row in (("generate", layout.responses_path(work), {"id": "1", "response": "r"}),
                             ("sample", layout.synth_path(work), {"id": "1", "from": "D", "x": "q", "y": "a",
                                                                  "y_hat": "r"})):
        write_jsonl(path, [row])
        layout.record(path, layout.stage_deps(stage, work).record)
    synth = layout.stage_output(work, "sample")
    assert layout.generation_problems([synth]) == []
    write_jsonl(layout.source_path(work), [{"id": "1", "instruction": "q2", "input": "", "output": "a"}])
    # source.jsonl changed without its record: strict names it (no record describes those bytes) ...
    (problem,) = layout.generation_problems([synth])
    assert "source.jsonl (prepare output) has no record" in str(problem)
    # ... its record rewritten: G is the first stale output, D_synth (made from it) is not named again
    layout.record(layout.source_path(work), layout.StageDeps("prepare", {}, None, {}).record)
    (problem,) = layout.generation_problems([synth])
    assert "responses.jsonl (generate output) was made from another" in str(problem)
    assert "sdrrl generate --config CONFIG" in problem.fix
    assert [str(p) for p in layout.generation_problems([synth], strict=False)] == [str(problem)]
    # a stage's input written by hand (no record describing it) is taken as given by a stage, not by export
    write_jsonl(layout.synth_path(work), [{"id": "1", "from": "G", "x": "q2", "y": "a", "y_hat": "r"}])
    layout.record_path(layout.responses_path(work)).unlink()
    assert layout.generation_problems([synth], strict=False) == []
    assert any("responses.jsonl (generate output) has no record" in str(p)
               for p in layout.generation_problems([synth]))


# -- case 3: export is a reader of the work directory ----------------------------------------------------

def test_case3_export_refuses_or_waits_beside_a_build_and_readers_share(tmp_path):
    work = shutil.copytree(FIXTURE_WORK, tmp_path / "w")
    exp = export_config(tmp_path / "export.yaml", work)
    with lock.hold_work(work):  # an unsharded build writing the work directory
        err = clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"),
                          f"The work directory {work} is in use by pid {os.getpid()}", "--wait")
        assert not (tmp_path / "reg").exists(), err
        clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg", "--wait", "1"), "Waited")
    with lock.hold_work(work, num_shards=2, shard_index=1):  # a shard of a sharded build (the work lock shared)
        clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"),
                    "is being written by", f"pid {os.getpid()}", "--wait")
    with lock.hold_work_reading(work):  # another export reading: side by side
        proc = sdrrl("export", "--config", exp, "--out", tmp_path / "reg")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "in use by a reader" in hold_in_another_process(work, 2, 0)  # a shard does not start beside it
        assert "in use by a reader" in hold_in_another_process(work, 1, 0)  # nor an unsharded run
    assert hold_in_another_process(work, 2, 0) == "held"  # readers gone: a shard starts


def hold_in_another_process(work: Path, num_shards: int, shard_index: int) -> str:
    """Take the work directory as a writer (shard I of N) in another process: "held", or its error."""
    code = ("import sys; from sdrrl.pipeline import lock; from sdrrl.errors import SdrrlError\n"
            "try:\n    with lock.hold_work(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])): print('held')\n"
            "except SdrrlError as err: print(err)")
    proc = subprocess.run([sys.executable, "-c", code, str(work), str(num_shards), str(shard_index)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_case3_a_reader_waiting_for_a_shard_starts_when_it_ends(tmp_path):
    """--wait: the reader takes the work directory once the shard lets go, and a shard starting while
    a reader waits backs off instead of holding its shard lock against it (no deadlock)."""
    work = tmp_path / "w"
    work.mkdir()
    held = lock.hold_work(work, num_shards=2, shard_index=0)
    held.__enter__()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from sdrrl.pipeline import lock\n"
                             "with lock.hold_work_reading(sys.argv[1], wait=120, poll_s=0.05):\n    print('read')",
                             str(work)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not lock.is_locked(work / lock.READERS_LOCK, shared_too=True):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        assert "in use by a reader" in hold_in_another_process(work, 2, 1)
    finally:
        held.__exit__(None, None, None)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "read" and "waiting for the work directory" in err, err


# -- case 1: corpora and dictionaries are checked for language ------------------------------------------

def test_case1_one_corpus_for_two_targets_is_refused_before_anything_is_written(tmp_path):
    work = shutil.copytree(FIXTURE_WORK, tmp_path / "w")
    # D_mt and D_comp only: no filter output needed, so only the corpus can stop it (it did not: exit 0)
    exp = export_config(tmp_path / "e.yaml", work, targets=["ind", "ces"], methods=["sdrrl-only-mt-comp"],
                        parallel={"corpus": str(SAMPLE / "parallel" / "eng-ind.tsv")})
    clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"),
                "parallel.corpus", "names the same corpus for the 2 targets ind, ces", "{src}-{tgt}")
    assert not (tmp_path / "reg").exists()
    exp = export_config(tmp_path / "m.yaml", work, targets=["ind", "ces"], methods=["sdrrl-only-mt-comp"],
                        completion={"corpus": str(SAMPLE / "monolingual" / "ind.txt")})
    clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"), "completion.corpus", "{tgt}")


def test_case1_a_corpus_of_another_language_is_never_exported_under_this_one(tmp_path):
    work = shutil.copytree(FIXTURE_WORK, tmp_path / "w")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    ces = (SAMPLE / "parallel" / "eng-ces.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    # the Czech pairs under the Indonesian file's name: its header says so ...
    (corpora / "eng-ind.tsv").write_text("".join(ces), encoding="utf-8")
    exp = export_config(tmp_path / "e.yaml", work, parallel={"corpus": str(corpora / "{src}-{tgt}.tsv")})
    clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"),
                "sdrrl_eng-ind_mt", "its header line names the languages eng and ces", "eng-ind corpus")
    # ... and without a header, CLD3 does
    (corpora / "eng-ind.tsv").write_text("".join(ces[1:]), encoding="utf-8")
    err = clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg"),
                      "sdrrl_eng-ind_mt", "sdrrl_eng-ind_comp", "target side of the parallel corpus",
                      "is not Indonesian", "Czech (cs)")
    assert "sdrrl_eng-ind_tt" not in err.split("could not be composed")[1].split(":")[0]
    assert not (tmp_path / "reg" / "sdrrl_eng-ind_mt.jsonl").exists()
    # a dictionary with the other language's words under this pair's name
    dicts = shutil.copytree(SAMPLE / "dictionaries", tmp_path / "dicts")
    shutil.copy(dicts / "en-cs.txt", dicts / "en-id.txt")
    exp = export_config(tmp_path / "d.yaml", work, methods=["sdrrl"], code_switch={"dictionaries": str(dicts)})
    clean_error(sdrrl("export", "--config", exp, "--out", tmp_path / "reg2"),
                "sdrrl_eng-ind_ll", "second column of the dictionary", "is not Indonesian")


def test_case1_headers_in_any_code_system_are_skipped_and_checks_are_in_the_manifest(tmp_path):
    work = shutil.copytree(FIXTURE_WORK, tmp_path / "w")
    ind = (SAMPLE / "parallel" / "eng-ind.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[1:]
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    exp = export_config(tmp_path / "e.yaml", work, methods=["sdrrl-only-mt-comp"],
                        parallel={"corpus": str(corpora / "{src}-{tgt}.tsv"), "pairs": 100})
    for header in ("English\tIndonesian\n", "en\tid\n", "eng_Latn\tind_Latn\n", "source\ttarget\n"):
        (corpora / "eng-ind.tsv").write_text(header + "".join(ind), encoding="utf-8")
        proc = sdrrl("export", "--config", exp, "--out", tmp_path / "reg")
        assert proc.returncode == 0, proc.stderr[-2000:]
        mt = rows(tmp_path / "reg" / "sdrrl-only-mt-comp_eng-ind_mt.jsonl")
        assert len(mt) == 2 * len(ind) and header.split("\t")[0] not in {r["input"] for r in mt}, header
    entry = json.loads((tmp_path / "reg" / "manifest.json").read_text())["entries"]["sdrrl-only-mt-comp_eng-ind_mt"]
    check = entry["parallel"]["language_check"]
    assert entry["parallel"]["header"] == "source\ttarget"
    assert check["target"]["judged"] > 10 and check["target"]["share"] >= 0.9
    assert check["source"]["found"].get("en", 0) == check["source"]["in_language"] > 10


# -- case 4: non-UTF-8 input -------------------------------------------------------------------------

def test_case4_a_non_utf8_row_is_a_bad_row_named_by_line_and_byte(tiny_models, tmp_path):
    good = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(3)]
    lines = [json.dumps(r).encode() + b"\n" for r in good]
    lines.insert(1, b'{"instruction": "Caf\xe9?", "input": "", "output": "Oui."}\n')  # Latin-1
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(lines))
    cfg = build_config(tiny_models, tmp_path / "c.yaml", input=str(data))
    byte = len(lines[0]) + lines[1].index(b"\xe9")
    clean_error(sdrrl("generate", "--config", cfg, "--prompts-only", "--preflight", "stage", cwd=tmp_path),
                "d.jsonl:2: not UTF-8", f"at byte {byte} of the file", "--on-bad-row skip")
    proc = sdrrl("generate", "--config", cfg, "--prompts-only", "--preflight", "stage", "--on-bad-row", "skip",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    work = tmp_path / "w"
    assert [r["instruction"] for r in rows(layout.source_path(work))] == [r["instruction"] for r in good]
    (skipped,) = rows(layout.skipped_path(work))
    assert skipped["line"] == 2 and skipped["byte"] == byte and "not UTF-8" in skipped["reason"]


# -- cases 5 and 6: preflight reads the model folders ------------------------------------------------

def test_case5_a_model_of_the_wrong_kind_is_named_before_anything_loads(tiny_models, tmp_path):
    cfg = build_config(tiny_models, tmp_path / "c.yaml", generate={"model": str(tiny_models.nllb)})
    err = clean_error(sdrrl("build", "--config", cfg, cwd=tmp_path), "generate.model",
                      "'m2m_100' model (M2M100ForConditionalGeneration), not a causal language model",
                      "belongs in translate.model")
    assert "download" not in err and not (tmp_path / "w").exists()
    cfg = build_config(tiny_models, tmp_path / "c.yaml", translate={"model": str(tiny_models.llama)})
    err = clean_error(sdrrl("translate", "--config", cfg, "--tgt", "ind", "--preflight", "stage", cwd=tmp_path),
                      "translate.model", "'llama' model (LlamaForCausalLM), not an NLLB", "translate.backend: llm")
    assert "download" not in err
    # self-translation wants the causal LM
    cfg = build_config(tiny_models, tmp_path / "c.yaml", translate={"backend": "llm", "llm_model": str(tiny_models.nllb)})
    clean_error(sdrrl("translate", "--config", cfg, "--tgt", "ind", "--preflight", "stage", cwd=tmp_path),
                "translate.llm_model", "not a causal language model")


def test_case6_a_model_folder_without_weights_is_named_and_never_told_to_download(tiny_models, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_models.llama, bare, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    cfg = build_config(tiny_models, tmp_path / "c.yaml", generate={"model": str(bare)})
    err = clean_error(sdrrl("generate", "--config", cfg, "--preflight", "stage", cwd=tmp_path),
                      "has no weight files", "copy the complete model folder")
    assert "huggingface-cli download" not in err
    # a sharded index naming a shard that is not there
    (bare / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                                                   "b": "model-00002-of-00002.safetensors"}}))
    (bare / "model-00001-of-00002.safetensors").write_bytes(b"")
    clean_error(sdrrl("generate", "--config", cfg, "--preflight", "stage", cwd=tmp_path),
                "lacks 1 of the 2 weight shards", "model-00002-of-00002.safetensors")
    # the loader's own error (a folder preflight cannot see into: corrupt weights) gives the local fix too
    from sdrrl.pipeline.generate import _model_error

    fix = _model_error(str(bare), OSError("broken")).fix
    assert "local path" in fix and "download" not in fix
    assert "huggingface-cli download org/model" in _model_error("org/model", OSError("x")).fix


def test_self_translation_offline_stopping_at_a_later_stage_names_preflight_stage(tiny_models, tmp_path):
    env = dict(ENV, HF_HOME=str(tmp_path / "hf"))  # the default CometKiwi is not in this (empty) cache
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"work_dir": "w", "generate": {"model": str(tiny_models.llama)}}))
    err = clean_error(sdrrl("translate", "--config", cfg, "--tgt", "ind", "--backend", "llm",
                            "--llm-model", tiny_models.llama, cwd=tmp_path, env=env),
                      "filter.qe_model", "the later filter stage needs it", "--preflight stage")
    assert "translate.llm_model" not in err
    proc = sdrrl("translate", "--config", cfg, "--tgt", "ind", "--backend", "llm", "--llm-model", tiny_models.llama,
                 "--preflight", "stage", cwd=tmp_path, env=env)
    assert "filter.qe_model" not in proc.stderr  # the stage's own checks pass; it stops later (no D_synth)


# -- case 7: train --check-only parses the overrides as LLaMA-Factory will ---------------------------------

def test_case7_a_misspelled_override_is_refused_by_check_only(tiny_models, tmp_path):
    names = ["sdrrl_eng-ind_ll"]
    registry.update_dataset_info(tmp_path, [registry.write_dataset(tmp_path, n, [{"instruction": "q", "input": "",
                                                                                   "output": "a"}])[0] for n in names])
    recipe = REPO / "recipes" / "sdrrl_tiny_cpu.yaml"
    base = ["train", "--check-only", recipe, f"dataset_dir={tmp_path}", f"dataset={names[0]}",
            f"model_name_or_path={tiny_models.llama}"]
    proc = sdrrl(*base)
    assert proc.returncode == 0, proc.stderr[-2000:]
    clean_error(sdrrl(*base, "datset=x"), "takes no argument 'datset' (did you mean 'dataset'?)")
    clean_error(sdrrl(*base, "learning_rat=1e-4", "num_train_epoch=2"), "'learning_rat'", "'num_train_epoch'")
    proc = sdrrl(*base, "datset=x", env=dict(ENV, ALLOW_EXTRA_ARGS="1"))  # as LLaMA-Factory allows it
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- case 8: a partial export marks the datasets that kept their old files -------------------------------

def test_case8_a_partial_export_names_and_marks_the_datasets_that_kept_old_files(tiny_models, tmp_path):
    work = shutil.copytree(FIXTURE_WORK, tmp_path / "w")
    reg = tmp_path / "reg"
    exp = export_config(tmp_path / "e.yaml", work, methods=["sdrrl"])
    assert sdrrl("export", "--config", exp, "--out", reg).returncode == 0
    dicts = shutil.copytree(SAMPLE / "dictionaries", tmp_path / "dicts")
    with open(dicts / "en-id.txt", "a", encoding="utf-8") as fh:
        fh.write("three words here\n" * 50)  # far more malformed lines than the 5% tolerated
    exp = export_config(tmp_path / "e2.yaml", work, methods=["sdrrl"], code_switch={"dictionaries": str(dicts)})
    err = clean_error(sdrrl("export", "--config", exp, "--out", reg), "could not be composed",
                      "keep an earlier export's file", "sdrrl_eng-ind_ll", "marked 'stale'")
    manifest = json.loads((reg / "manifest.json").read_text())
    stale = {n for n, e in manifest["entries"].items() if e.get("stale")}
    assert stale == {"sdrrl_eng-ind_ll", "sdrrl_eng-ind_tl", "sdrrl_eng-ind_lt", "sdrrl_eng-ind_tt"}, err
    assert "malformed" in manifest["entries"]["sdrrl_eng-ind_ll"]["stale"]["error"]
    recipe = REPO / "recipes" / "sdrrl_tiny_cpu.yaml"
    clean_error(sdrrl("train", "--check-only", recipe, f"dataset_dir={reg}", f"model_name_or_path={tiny_models.llama}"),
                "registry", "is mixed", "sdrrl_eng-ind_ll", "malformed")
    # the next export that makes them clears the mark
    assert sdrrl("export", "--config", tmp_path / "e.yaml", "--out", reg).returncode == 0
    manifest = json.loads((reg / "manifest.json").read_text())
    assert not any(e.get("stale") for e in manifest["entries"].values())


# -- small items --------------------------------------------------------------------------------------

def test_python_dash_m_sdrrl_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "sdrrl", "languages"], env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0 and "ind" in proc.stdout and "Indonesian" in proc.stdout, proc.stderr


def test_the_bad_input_battery_runs_clean_on_its_fast_subset(tmp_path):
    """benchmarks/bad_inputs.py on the cases that need no model run: every one a clean error."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bad_inputs.py"), "--fast", "--out",
                           str(tmp_path / "r.md"), "--json", str(tmp_path / "r.json")], env=ENV,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["counts"]["clean"] == result["cases"] >= 30, result["counts"]
    assert all(c["outcome"] == "clean" for c in result["results"])
