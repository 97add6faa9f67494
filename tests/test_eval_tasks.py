"""eval_tasks/: the sdrrl_* lm-eval tasks, their generated YAMLs, their data loading, and the real
``lm_eval`` CLI running every benchmark family on the tiny Llama with fixture data (offline)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdrrl.errors import SdrrlError
from eval_utils import full_eval_data, train_stand_in_spm

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
BIN = Path(sys.executable).parent
EXPECTED_COUNTS = {"belebele": 17, "flores": 32, "xlsum": 8, "mkqa": 12, "offtarget": 13}
PAPER_CSV = REPO / "plugin" / "sdrrl" / "data" / "paper_results.csv"


def test_generated_yamls_are_up_to_date():
    run = subprocess.run([sys.executable, str(REPO / "eval_tasks" / "generate_tasks.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_task_names_come_from_the_language_table():
    from sdrrl.languages import TARGETS
    from sdrrl import catalog

    assert {b: len(catalog.benchmark(b).tasks()) for b in catalog.BENCHMARKS} == EXPECTED_COUNTS
    assert catalog.benchmark("belebele").languages() == [*TARGETS, "eng"]
    assert catalog.benchmark("xlsum").languages() == ["ukr", "ind", "jpn", "kor", "por", "vie", "tha", "eng"]
    assert set(catalog.benchmark("mkqa").languages()) == {"dan", "fin", "hun", "nob", "jpn", "kor", "por", "vie",
                                                  "pol", "tha", "khm", "eng"}
    assert catalog.parse_task("sdrrl_flores_eng-khm") == ("flores", "eng", "khm")
    assert catalog.parse_task("sdrrl_mkqa_dan") == ("mkqa", "dan", None)
    with pytest.raises(SdrrlError):
        catalog.parse_task("sdrrl_mkqa_xx")


def test_lm_eval_lists_exactly_the_tasks_tags_and_groups_outside_the_glob():
    from lm_eval.tasks import TaskManager

    from sdrrl.languages import TARGETS
    from sdrrl import catalog

    tm = TaskManager(include_path=str(REPO / "eval_tasks"), include_defaults=False)
    tasks = [t for t in tm.all_subtasks if t.startswith("sdrrl_")]
    counts = {b: sum(t.startswith(f"sdrrl_{b}_") for t in tasks) for b in catalog.BENCHMARKS}
    assert counts == EXPECTED_COUNTS
    assert sorted(tasks) == sorted(t for b in catalog.BENCHMARKS for t in catalog.benchmark(b).tasks())
    # averaging groups: the paper's Avg. columns, per model family and benchmark (FLORES per direction)
    assert tm.all_groups == sorted(catalog.average_groups()) and len(tm.all_groups) == 2 * 5
    # selections: tags per benchmark (FLORES also per direction) and per language (16 targets + eng)
    tags = tm.all_tags
    assert len(tags) == 7 + 17 and {f"sdrrlgroup_{iso}" for iso in [*TARGETS, "eng"]} <= set(tags)
    index = tm.task_index
    assert sorted(index["sdrrlgroup_ces"].tags) == ["sdrrl_belebele_ces", "sdrrl_flores_ces-eng",
                                                    "sdrrl_flores_eng-ces", "sdrrl_offtarget_ces"]
    assert sorted(index["sdrrlgroup_xlsum"].tags) == sorted(catalog.benchmark("xlsum").tasks())
    assert not fnmatch.filter(tm.all_groups + tags, "sdrrl_*")
    assert sorted(tm.match_tasks(["sdrrl_*"])) == sorted(tasks)


def test_sdrrl_languages_shows_which_benchmark_covers_which_language(capsys):
    from sdrrl.cli import main
    from sdrrl import catalog

    assert main(["languages"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    col = header.index("eval")
    table = {line.split()[0]: line.split()[col] for line in lines[1:]}
    assert table["ces"] == "belebele,flores,offtarget" and table["jpn"] == "belebele,flores,xlsum,mkqa,offtarget"
    assert table["eng"] == "belebele,flores,xlsum,mkqa,offtarget" and table["fra"] == "-"
    # Figure 3's off-target task: not where Bactrian-X has no data, and the table says so
    assert table["dan"] == "belebele,flores,mkqa" and table["bul"] == "belebele,flores"
    assert {line.split()[0] for line in lines[1:] if line.split()[header.index("bactrian_x")] == "-"} == {
        "dan", "bul", "hun", "nob"}
    for iso, value in table.items():
        covered = value.split(",") if value != "-" else []
        assert covered == catalog.coverage(iso)


# ---- data loading -------------------------------------------------------------------------------

def test_local_loaders_read_the_benchmarks_real_schemas():
    from sdrrl.metrics import benchmark_data as bd

    opts = {"sdrrl_data": str(FIXTURES)}
    rows = bd.belebele("ces", opts)
    assert len(rows) == 3 and rows[0]["correct_answer_num"] == "2" and rows[0]["lang"] == "ces"
    pairs = bd.flores("ces", "eng", "devtest", opts)
    assert [p["id"] for p in pairs] == [2, 3]
    assert pairs[0]["source"].startswith("Festival") and pairs[0]["reference"].startswith("The festival")
    summ = bd.xlsum("jpn", "test", opts)
    assert len(summ) == 3 and summ[0]["summary"] and summ[0]["text"]
    qa = bd.mkqa("jpn", opts)
    assert len(qa) == 4  # the unanswerable question is skipped, as in the paper
    assert qa[0]["answers"] == ["ジェーン・オースティン", "オースティン"]
    assert qa[-1]["answers"] == ["yes"] and qa[-1]["answer_types"] == ["binary"]
    assert len(bd.mkqa("jpn", opts, skip_unanswerable=False)) == 5


def test_mkqa_parquet_export_with_class_label_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sdrrl.metrics import benchmark_data as bd

    rows = [json.loads(line) for line in (FIXTURES / "mkqa" / "mkqa.jsonl").read_text("utf-8").splitlines()]
    for row in rows:  # the hub's parquet export stores the answer type as a class-label index
        for entries in row["answers"].values():
            for e in entries:
                e["type"] = bd.MKQA_ANSWER_TYPES.index(e["type"])
    out = tmp_path / "mkqa" / "mkqa" / "train" / "0000.parquet"
    out.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out)
    qa = bd.mkqa("dan", {"sdrrl_data": str(tmp_path)})
    assert len(qa) == 4 and qa[0]["answer_types"] == ["entity"] and qa[0]["answers"] == ["Jane Austen"]


def test_missing_data_says_where_to_put_it(tmp_path, monkeypatch):
    from sdrrl.metrics import benchmark_data as bd

    with pytest.raises(SdrrlError, match=r"belebele/data/slv_Latn.jsonl"):
        bd.belebele("slv", {"sdrrl_data": str(tmp_path)})
    with pytest.raises(SdrrlError, match="does not exist"):
        bd.belebele("slv", {"sdrrl_data": str(tmp_path / "nope")})
    with pytest.raises(SdrrlError, match="XL-Sum has no Czech"):
        bd.xlsum("ces", "test", {"sdrrl_data": str(tmp_path)})
    monkeypatch.delenv("SDRRL_EVAL_DATA", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SdrrlError, match="SDRRL_EVAL_DATA"):
        bd.belebele("slv")


def _mkqa_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "mkqa" / "mkqa.jsonl").read_text("utf-8").splitlines()]


def _mkqa_source(monkeypatch, **changes) -> None:
    """Point the catalog's MKQA data source elsewhere (hub id, release file) for this test."""
    from dataclasses import replace

    from sdrrl import catalog

    mkqa = catalog.benchmark("mkqa")
    monkeypatch.setitem(catalog.BENCHMARKS, "mkqa", replace(mkqa, source=replace(mkqa.source, **changes)))


def test_mkqa_rows_of_either_shape_give_the_same_questions(tmp_path):
    """String or class-label answer types, integer or string ids, entries with or without aliases."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sdrrl.metrics import benchmark_data as bd

    plain = bd.mkqa("jpn", {"sdrrl_data": str(FIXTURES)})
    rows = _mkqa_rows()
    for row in rows:
        row["example_id"] = str(row["example_id"])
        for entries in row["answers"].values():
            for e in entries:
                e["type"] = bd.MKQA_ANSWER_TYPES.index(e["type"])
                if not e.get("aliases"):
                    e.pop("aliases", None)  # some exports leave the key out
    out = tmp_path / "mkqa" / "mkqa" / "train" / "0000.parquet"
    out.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out)
    other = bd.mkqa("jpn", {"sdrrl_data": str(tmp_path)})
    assert other == plain and len(plain) == 4
    assert all(isinstance(q["example_id"], str) for q in other)
    assert other[0]["answers"] == ["ジェーン・オースティン", "オースティン"]  # aliases kept where present


def _offline(monkeypatch, tmp_path) -> Path:
    """Offline, no local override, empty caches (sdrrl's own one returned)."""
    monkeypatch.delenv("SDRRL_EVAL_DATA", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets-cache"))
    monkeypatch.setenv("SDRRL_CACHE", str(tmp_path / "sdrrl-cache"))
    return tmp_path / "sdrrl-cache"


def _mkqa_release(path: Path) -> Path:
    """MKQA's release file as published (gzipped JSON Lines), with the fixture's rows."""
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _mkqa_rows()))
    return path


def test_mkqa_release_file_placed_in_sdrrls_cache_is_used_offline(tmp_path, monkeypatch):
    """datasets' DownloadManager asks the network before its cache (OfflineModeIsEnabled), so an
    offline MKQA run never found a cached release file. sdrrl keeps the file in its own cache."""
    from sdrrl import catalog
    from sdrrl.metrics import benchmark_data as bd

    cache = _offline(monkeypatch, tmp_path)
    url = catalog.benchmark("mkqa").source.release_url  # the real one: nothing is downloaded offline
    with pytest.raises(SdrrlError) as err:  # not there yet: one error naming where it belongs
        bd.mkqa("dan")
    message = str(err.value)
    placed = cache / "eval-data" / "mkqa" / "mkqa.jsonl.gz"
    assert f"not in sdrrl's cache ({placed})" in message and "HF_DATASETS_OFFLINE=1" in message
    assert f"copy it to {placed}" in message and "SDRRL_EVAL_DATA" in message and "\n" not in message

    _mkqa_release(placed)  # copied there by hand
    source: dict = {}
    qa = bd.mkqa("dan", {"sdrrl_source": source})
    assert len(qa) == 4 and qa[0]["answers"] == ["Jane Austen"]
    assert source["loaded"] == [{"source": "release", "url": url, "split": "train",
                                 "sha256": hashlib.sha256(placed.read_bytes()).hexdigest()}]


def test_mkqa_release_file_is_downloaded_once_with_its_sha256_and_checked(tmp_path, monkeypatch):
    """Online, the release file is downloaded into sdrrl's cache (a file:// URL stands in for the
    web) with its URL and sha256 beside it; offline it is read from there; a cached file that no
    longer matches its sha256 is an error, never read."""
    from sdrrl.metrics import benchmark_data as bd

    cache = _offline(monkeypatch, tmp_path)
    release = _mkqa_release(tmp_path / "web" / "mkqa.jsonl.gz")
    _mkqa_source(monkeypatch, release_url=release.as_uri())
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    path = bd.release_file("mkqa", release.as_uri())
    assert path == cache / "eval-data" / "mkqa" / "mkqa.jsonl.gz" and path.read_bytes() == release.read_bytes()
    sha = hashlib.sha256(release.read_bytes()).hexdigest()
    assert json.loads(path.with_name("mkqa.jsonl.gz.json").read_text()) == {
        "url": release.as_uri(), "sha256": sha, "bytes": release.stat().st_size}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    release.unlink()  # gone from the "web": the cached copy serves
    source: dict = {}
    assert len(bd.mkqa("dan", {"sdrrl_source": source})) == 4
    assert source["loaded"][0]["sha256"] == sha and source["loaded"][0]["source"] == "release"

    with open(path, "ab") as fh:  # changed (or damaged) since the download
        fh.write(b"\0")
    with pytest.raises(SdrrlError, match=r"changed since it was downloaded.*delete .*mkqa.jsonl.gz"):
        bd.mkqa("dan")


def test_mkqa_loads_from_the_parquet_branch_before_the_release_file(tmp_path, monkeypatch):
    """The loading order, offline: hub parquet branch (a local folder in its layout stands in for
    the hub), else MKQA's release file, else an error naming all three sources."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sdrrl.metrics import benchmark_data as bd

    cache = _offline(monkeypatch, tmp_path)
    _mkqa_release(cache / "eval-data" / "mkqa" / "mkqa.jsonl.gz")
    hub = tmp_path / "hub"
    rows = _mkqa_rows()
    for row in rows[:3]:
        for entries in row["answers"].values():
            for e in entries:
                e["type"] = bd.MKQA_ANSWER_TYPES.index(e["type"])
    (hub / "mkqa" / "train").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:3]), hub / "mkqa" / "train" / "0000.parquet")
    _mkqa_source(monkeypatch, hub=str(hub))
    source: dict = {}
    assert len(bd.mkqa("dan", {"sdrrl_source": source})) == 2  # 3 rows, one unanswerable
    assert source["loaded"][0]["source"] == "hub" and source["loaded"][0]["dataset"] == str(hub)
    # neither: one error naming the branch, the release file and the local override
    _mkqa_source(monkeypatch, hub="apple/mkqa", release_url="https://example.org/gone/mkqa-v2.jsonl.gz")
    with pytest.raises(SdrrlError) as err:
        bd.mkqa("dan")
    message = str(err.value)
    assert "apple/mkqa@refs/convert/parquet" in message and "gone/mkqa-v2.jsonl.gz" in message
    assert "SDRRL_EVAL_DATA" in message and "\n" not in message


def test_flores_200_release_folder_is_read_through_the_local_override(tmp_path):
    """The paper's test set: flores200_dataset/{dev,devtest}/<code>.<split>, aligned by line;
    what was read is recorded with each file's sha256."""
    from sdrrl.metrics import benchmark_data as bd

    release = tmp_path / "flores200_dataset" / "devtest"
    release.mkdir(parents=True)
    (release / "ces_Latn.devtest").write_text("Dobrý den.\nKočka spí.\n", encoding="utf-8")
    (release / "eng_Latn.devtest").write_text("Good morning.\nThe cat sleeps.\n", encoding="utf-8")
    source: dict = {}
    pairs = bd.flores("ces", "eng", "devtest", {"sdrrl_data": str(tmp_path), "sdrrl_source": source})
    assert [(p["id"], p["source"], p["reference"]) for p in pairs] == [
        (1, "Dobrý den.", "Good morning."), (2, "Kočka spí.", "The cat sleeps.")]
    files = {k: v for entry in source["loaded"] for k, v in entry["files"].items()}
    assert files == {f"flores200_dataset/devtest/{c}.devtest": hashlib.sha256(
        (release / f"{c}.devtest").read_bytes()).hexdigest() for c in ("ces_Latn", "eng_Latn")}
    with pytest.raises(SdrrlError, match=r"flores200_dataset/devtest/jpn_Jpan.devtest"):
        bd.flores("jpn", "eng", "devtest", {"sdrrl_data": str(tmp_path)})


def test_flores_pairs_cut_short_or_from_two_releases_are_refused_naming_both_files(tmp_path):
    """A side cut short used to pair fewer sentences in X->English without a word (English->X
    stopped), and a FLORES+ file was paired by id with a FLORES-200 release file of other sentences."""
    import shutil

    from sdrrl.metrics import benchmark_data as bd

    short = tmp_path / "short"
    shutil.copytree(FIXTURES / "flores", short / "flores")
    ces = short / "flores" / "devtest" / "ces_Latn.jsonl"
    ces.write_text(ces.read_text(encoding="utf-8").splitlines(keepends=True)[0], encoding="utf-8")
    eng = short / "flores" / "devtest" / "eng_Latn.jsonl"
    for src, tgt in (("ces", "eng"), ("eng", "ces")):
        with pytest.raises(SdrrlError) as err:
            bd.flores(src, tgt, "devtest", {"sdrrl_data": str(short)})
        message = str(err.value)
        assert str(ces) in message and str(eng) in message and "\n" not in message
        assert "do not hold the same sentences" in message
        assert ("(1 sentence)" in message) == (src == "ces") and ("(2 sentences)" in message) == (src == "eng")
        assert "complete files of the same FLORES release" in message
    assert len(bd.flores("jpn", "eng", "devtest", {"sdrrl_data": str(short)})) == 2  # a complete pair still loads

    mixed = tmp_path / "mixed"
    (mixed / "flores" / "devtest").mkdir(parents=True)
    shutil.copy(FIXTURES / "flores" / "devtest" / "eng_Latn.jsonl", mixed / "flores" / "devtest")
    release = mixed / "flores200_dataset" / "devtest"
    release.mkdir(parents=True)
    (release / "ces_Latn.devtest").write_text("Dobrý den.\nKočka spí.\nPrší.\n", encoding="utf-8")
    for src, tgt in (("eng", "ces"), ("ces", "eng")):
        with pytest.raises(SdrrlError) as err:
            bd.flores(src, tgt, "devtest", {"sdrrl_data": str(mixed)})
        message = str(err.value)
        assert str(release / "ces_Latn.devtest") in message
        assert str(mixed / "flores" / "devtest" / "eng_Latn.jsonl") in message
        assert "FLORES-200" in message and "FLORES+" in message and "one release" in message


def test_flores_plus_revision_is_set_in_one_place(monkeypatch):
    from sdrrl import catalog
    from sdrrl.metrics import benchmark_data as bd

    flores_revision = catalog.benchmark("flores").source.requested_revision
    monkeypatch.delenv("SDRRL_FLORES_REVISION", raising=False)
    assert flores_revision() == catalog.FLORES_PLUS_REVISION
    monkeypatch.setenv("SDRRL_FLORES_REVISION", "abc123")
    assert flores_revision() == "abc123"
    calls = []
    import datasets

    def fake_load(path, **kwargs):  # a unit test of the call only: which revision is asked for
        calls.append((path, kwargs))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    with pytest.raises(SdrrlError, match="openlanguagedata/flores_plus@abc123"):
        bd.flores("ces", "eng", "devtest")
    assert calls == [("openlanguagedata/flores_plus", {"split": "devtest", "revision": "abc123",
                                                       "name": "ces_Latn"})]


# ---- the real lm_eval CLI ----------------------------------------------------------------------

def _lm_eval(tiny_models, tasks: str, out: Path, sacrebleu_dir: Path, limit: int = 2, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="2",
               SDRRL_EVAL_DATA=str(FIXTURES), SACREBLEU=str(sacrebleu_dir),
               SDRRL_COMET_MODEL=str(tiny_models.comet_ref))
    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args",
           f"pretrained={tiny_models.llama},dtype=float32", "--device", "cpu", "--limit", str(limit),
           "--include_path", str(REPO / "eval_tasks"), "--tasks", tasks, "--output_path", str(out),
           "--log_samples"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=out.parent)


MKQA_AVG = "sdrrlavg_llama2_mkqa"
E2E_TASKS = ["sdrrl_belebele_ces", "sdrrl_belebele_eng", "sdrrl_flores_ces-eng", "sdrrl_flores_eng-jpn",
             "sdrrl_xlsum_jpn", "sdrrl_xlsum_ukr"]


@pytest.fixture(scope="module")
def lm_eval_run(tiny_models, tmp_path_factory):
    """One lm_eval process over every benchmark family (MKQA through the paper's Avg. group over
    Table 5's 9 languages)."""
    root = tmp_path_factory.mktemp("lm_eval")
    train_stand_in_spm(root / "sacrebleu" / "models" / "flores200sacrebleuspm")
    run = _lm_eval(tiny_models, ",".join(E2E_TASKS + [MKQA_AVG]), root / "out", root / "sacrebleu")
    assert run.returncode == 0, run.stderr[-3000:]
    [results_file] = list((root / "out").rglob("results_*.json"))
    return root, json.loads(results_file.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_lm_eval_cli_reports_every_metric(lm_eval_run, tiny_models):
    from sdrrl import catalog

    _, results = lm_eval_run
    res = results["results"]
    mkqa_tasks = list(catalog.average_groups()[MKQA_AVG])
    assert set(E2E_TASKS + mkqa_tasks) <= set(res)
    for task in E2E_TASKS + mkqa_tasks:
        bench = catalog.parse_task(task)[0]
        assert res[task]["sample_len"] == 2
        for metric in catalog.benchmark(bench).metric_names:
            value = res[task][f"{metric},none"]
            if metric == "spbleu_signature":
                assert value.startswith("nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:")
            elif metric == "comet_model":  # the COMET checkpoint used, as the sacrebleu signature is
                ckpt = Path(tiny_models.comet_ref).resolve()
                assert value == f"{ckpt}|sha256:{hashlib.sha256(ckpt.read_bytes()).hexdigest()}"
            elif metric in ("spbleu",):
                assert 0.0 <= value <= 100.0
            elif metric == "comet":
                assert isinstance(value, float) and value == value  # a number, not NaN
            else:
                assert 0.0 <= value <= 1.0, (task, metric, value)
    assert results["n-shot"]["sdrrl_belebele_ces"] == 0
    # what each task loaded is in its config: here the fixture files, with their sha256
    for task in E2E_TASKS + mkqa_tasks:
        loaded = results["configs"][task]["metadata"]["sdrrl_source"]["loaded"]
        assert loaded and all(entry["source"] == "local" for entry in loaded), task
        for entry in loaded:
            for rel, digest in entry["files"].items():
                assert hashlib.sha256((FIXTURES / rel).read_bytes()).hexdigest() == digest
    flores_files = {f for e in results["configs"]["sdrrl_flores_ces-eng"]["metadata"]["sdrrl_source"]["loaded"]
                    for f in e["files"]}
    assert {"flores/devtest/ces_Latn.jsonl", "flores/devtest/eng_Latn.jsonl"} <= flores_files
    # the MKQA averaging group averages Table 5's 9 languages unweighted, English apart
    assert "sdrrl_mkqa_eng" not in mkqa_tasks and len(mkqa_tasks) == 9
    group = results["groups"][MKQA_AVG]
    for metric in ("f1", "offtarget", "undetermined"):
        assert group[f"{metric},none"] == pytest.approx(
            sum(res[t][f"{metric},none"] for t in mkqa_tasks) / len(mkqa_tasks))


@pytest.mark.slow
def test_sdrrl_score_rescores_logged_samples_like_lm_eval(lm_eval_run, tiny_models, monkeypatch):
    from sacrebleu.tokenizers import tokenizer_spm

    from sdrrl.cli import main

    root, results = lm_eval_run
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(root / "sacrebleu"))
    out = root / "score.json"
    assert main(["score", str(root / "out"), "--comet-model", str(tiny_models.comet_ref),
                 "-o", str(out)]) == 0
    scored = json.loads(out.read_text(encoding="utf-8"))
    res = results["results"]
    assert len(scored["tasks"]) == len(E2E_TASKS) + 9
    for task, values in scored["tasks"].items():
        for metric, value in values.items():
            if metric in ("benchmark", "file", "n"):
                continue
            expected = res[task][f"{metric},none"]
            if isinstance(expected, str):
                assert value == expected
            else:
                assert value == pytest.approx(expected, abs=1e-5), (task, metric)
    assert scored["groups"][MKQA_AVG]["f1"] == pytest.approx(results["groups"][MKQA_AVG]["f1,none"])
    # the other groups: a few of their tasks ran, so no average (the paper's Avg. is over all of them)
    assert set(scored["groups"]) == {MKQA_AVG}
    assert scored["incomplete_groups"]["sdrrlavg_llama2_belebele"] == "1 of 14 tasks"
    # without COMET: reported as null, everything else still there
    assert main(["score", str(root / "out"), "--no-comet", "-o", str(out)]) == 0
    flores = json.loads(out.read_text(encoding="utf-8"))["tasks"]["sdrrl_flores_ces-eng"]
    assert flores["comet"] is None and flores["spbleu"] == pytest.approx(res["sdrrl_flores_ces-eng"]["spbleu,none"])
    assert flores["comet_model"] == "off"


def test_sdrrl_score_without_samples_is_a_clear_error(tmp_path, capsys):
    from sdrrl.cli import main

    assert main(["score", str(tmp_path)]) == 2
    assert "No samples_sdrrl_*.jsonl files" in capsys.readouterr().err
    bad = tmp_path / "results.jsonl"
    bad.write_text("{}\n", encoding="utf-8")
    assert main(["score", str(bad)]) == 2
    assert "not an lm-eval samples file" in capsys.readouterr().err


@pytest.mark.slow
def test_lm_eval_stops_before_generating_when_spbleu_cannot_be_computed(tiny_models, tmp_path):
    """Offline without the flores200 tokenizer model: a clear message at task load, no URLError."""
    run = _lm_eval(tiny_models, "sdrrl_flores_ces-eng", tmp_path / "out", tmp_path / "empty-sacrebleu")
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert str(tmp_path / "empty-sacrebleu" / "models" / "flores200sacrebleuspm") in output
    assert "URLError" not in output and "Running generate_until" not in output


# ---- every way of asking for tasks, through the real lm_eval CLI (lm-eval's dummy model) ------

def _lm_eval_dummy(tasks: str, root: Path, data: Path, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", SDRRL_EVAL_DATA=str(data), SDRRL_COMET_MODEL="none",
               SACREBLEU=str(root / "sacrebleu"), NLTK_DATA=str(FIXTURES / "nltk_data"))
    out = root / f"out-{abs(hash(tasks))}"
    cmd = [str(BIN / "lm_eval"), "--model", "dummy", "--limit", "1", "--include_path",
           str(REPO / "eval_tasks"), "--tasks", tasks, "--output_path", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=root)
    files = list(out.rglob("results_*.json"))
    return run, (json.loads(files[0].read_text(encoding="utf-8")) if files else None)


@pytest.fixture(scope="module")
def dummy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_eval_forms")
    train_stand_in_spm(root / "sacrebleu" / "models" / "flores200sacrebleuspm")
    return root, full_eval_data(root / "data")


@pytest.mark.slow
def test_every_way_of_asking_for_tasks_combines_in_one_run(dummy_root):
    """The sdrrl_* glob, the sdrrlgroup_* glob, benchmark and language selections together and
    single tasks beside them (today's 'Duplicate task' case: sdrrlgroup_belebele,sdrrlgroup_ces):
    one lm_eval call, every task run once."""
    from sdrrl import catalog

    root, data = dummy_root
    run, results = _lm_eval_dummy("sdrrl_*,sdrrlgroup_*,sdrrlgroup_belebele,sdrrlgroup_ces,"
                                  "sdrrl_belebele_ces,sdrrl_flores_eng-jpn", root, data)
    assert run.returncode == 0, run.stderr[-3000:]
    every = {t for b in catalog.BENCHMARKS for t in catalog.benchmark(b).tasks()}
    assert set(results["results"]) == every
    assert all(results["results"][t]["sample_len"] == 1 for t in every)


@pytest.mark.slow
def test_selections_combine_with_single_tasks_and_averaging_groups(dummy_root):
    """Benchmark + language selections + a single task + an averaging group over other tasks; the
    averaging group reports the unweighted mean of its languages."""
    from sdrrl import catalog

    root, data = dummy_root
    run, results = _lm_eval_dummy(f"sdrrlgroup_belebele,sdrrlgroup_ces,sdrrl_flores_jpn-eng,{MKQA_AVG}",
                                  root, data)
    assert run.returncode == 0, run.stderr[-3000:]
    mkqa = catalog.average_groups()[MKQA_AVG]
    expected = (set(catalog.benchmark("belebele").tasks()) | set(mkqa) | {"sdrrl_offtarget_ces"}
                | {"sdrrl_flores_ces-eng", "sdrrl_flores_eng-ces", "sdrrl_flores_jpn-eng"})
    res = results["results"]
    assert set(res) == expected | {MKQA_AVG}
    assert results["groups"][MKQA_AVG]["f1,none"] == pytest.approx(
        sum(res[t]["f1,none"] for t in mkqa) / len(mkqa))
    # COMET off (SDRRL_COMET_MODEL=none): the FLORES results record it as "off"
    assert res["sdrrl_flores_jpn-eng"]["comet_model,none"] == "off"
    # a task a benchmark does not have (XL-Sum has no Czech, Bactrian-X no Danish) is lm-eval's
    # "Tasks not found"
    run, _ = _lm_eval_dummy("sdrrl_xlsum_ces,sdrrl_offtarget_dan", root, data)
    assert run.returncode != 0
    assert "Tasks not found: sdrrl_xlsum_ces, sdrrl_offtarget_dan" in run.stdout + run.stderr


@pytest.mark.slow
def test_one_familys_paper_averages_run_together(dummy_root):
    """`sdrrlavg_llama2_*`: the five groups of the paper's LLaMA-2 Avg. columns in one run, each the
    unweighted mean of its tasks (the two families' groups share tasks, so one family at a time)."""
    from sdrrl import catalog

    root, data = dummy_root
    run, results = _lm_eval_dummy("sdrrlavg_llama2_*", root, data)
    assert run.returncode == 0, run.stderr[-3000:]
    groups = {g: t for g, t in catalog.average_groups().items() if g.startswith("sdrrlavg_llama2_")}
    assert set(results["groups"]) == set(groups) and len(groups) == 5
    res = results["results"]
    assert set(res) == set(groups) | {t for tasks in groups.values() for t in tasks}
    for group, tasks in groups.items():
        metric = catalog.benchmark(catalog.parse_task(tasks[0])[0]).headline
        assert results["groups"][group][f"{metric},none"] == pytest.approx(
            sum(res[t][f"{metric},none"] for t in tasks) / len(tasks)), group


def test_the_paper_averages_are_the_columns_of_the_papers_tables():
    """Each sdrrlavg_* group holds exactly the target-language tasks of one section of the paper's
    table (paper_results.csv), English apart; every target-side section of every table has one."""
    import csv

    from sdrrl import catalog

    groups = catalog.average_groups()
    with PAPER_CSV.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["lang"] != "avg" and r["benchmark"] in catalog.BENCHMARKS]
    sections = {(r["model"], r["benchmark"], r["direction"]) for r in rows if r["direction"] != "eng"}
    assert len(groups) == len(sections) == 10
    for model, bench, direction in sections:
        key = f"{bench}_{direction}" if direction else bench
        columns = {r["lang"] for r in rows if (r["model"], r["benchmark"], r["direction"]) == (model, bench, direction)}
        # FLORES "x-eng" with column ces is the task sdrrl_flores_ces-eng
        names = [f"{bench}_{'-'.join(lang if side == 'x' else side for side in direction.split('-'))}"
                 if direction else f"{bench}_{lang}" for lang in columns]
        assert set(groups[f"sdrrlavg_{model}_{key}"]) == {f"sdrrl_{n}" for n in names}, (model, key)
        assert not any(t.endswith("_eng") for t in groups[f"sdrrlavg_{model}_{key}"])
    assert len(groups["sdrrlavg_llama2_belebele"]) == 14 and len(groups["sdrrlavg_llama2_mkqa"]) == 9
    assert groups["sdrrlavg_llama2_flores_x-eng"][0] == "sdrrl_flores_ces-eng"
    assert set(groups["sdrrlavg_seallm_belebele"]) == {"sdrrl_belebele_ind", "sdrrl_belebele_tha", "sdrrl_belebele_khm"}
