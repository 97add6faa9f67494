"""Figure 3 (appendix E): the sdrrl_offtarget_<lang> tasks (Dolly's instructions and their Bactrian-X
translations), their data loading and field checks, the real ``lm_eval`` on the tiny Llama with the
shipped mini sets, ``sdrrl score`` on its samples, and ``sdrrl report``'s Figure 3 from its results."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdrrl.errors import SdrrlError

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "plugin" / "sdrrl" / "data" / "eval_mini"
BIN = Path(sys.executable).parent
TASKS = ["sdrrl_offtarget_ind", "sdrrl_offtarget_jpn", "sdrrl_offtarget_eng"]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# ---- data -------------------------------------------------------------------------------------------

def test_the_dolly_part_of_bactrian_x_and_dolly_itself_are_read_with_their_version():
    from sdrrl.metrics import benchmark_data as bd

    source: dict = {}
    ind = bd.offtarget("ind", {"sdrrl_data": str(MINI), "sdrrl_source": source})
    raw = [json.loads(line) for line in (MINI / "bactrian-x" / "id" / "train" / "0000.jsonl").read_text("utf-8").splitlines()]
    dolly = [r for r in raw if r["id"].startswith("dolly-")]
    assert 0 < len(dolly) < len(raw)  # the Alpaca rows of the file are left out
    assert [d["id"] for d in ind] == [r["id"] for r in dolly] and all(d["lang"] == "ind" for d in ind)
    with_input = next(r for r in dolly if r["input"])
    assert next(d for d in ind if d["id"] == with_input["id"])["question"] == \
        with_input["instruction"] + "\n" + with_input["input"]  # the training data's user turn
    assert next(d for d in ind if not d["question"].count("\n"))["reference"]
    [loaded] = source["loaded"]
    assert loaded["config"] == "id" and loaded["files"] == {
        "bactrian-x/id/train/0000.jsonl": hashlib.sha256((MINI / "bactrian-x/id/train/0000.jsonl").read_bytes()).hexdigest()}
    source = {}
    eng = bd.offtarget("eng", {"sdrrl_data": str(MINI), "sdrrl_source": source})
    rows = [json.loads(line) for line in (MINI / "dolly" / "databricks-dolly-15k.jsonl").read_text("utf-8").splitlines()]
    assert [d["question"] for d in eng] == [r["instruction"] + ("\n" + r["context"] if r["context"] else "")
                                            for r in rows]
    assert [d["category"] for d in eng] == [r["category"] for r in rows]
    assert list(source["loaded"][0]["files"]) == ["dolly/databricks-dolly-15k.jsonl"]


def test_a_target_without_bactrian_x_data_is_an_error_not_a_stand_in():
    from sdrrl import catalog
    from sdrrl.metrics import benchmark_data as bd

    bench = catalog.benchmark("offtarget")
    assert [iso for iso in ("dan", "bul", "hun", "nob") if bench.covers(iso) or bench.tasks_for(iso)] == []
    for iso, name in (("dan", "Danish"), ("nob", "Norwegian")):
        with pytest.raises(SdrrlError, match=f"has no {name} data.*bactrian_x"):
            bd.offtarget(iso, {"sdrrl_data": str(MINI)})


def test_missing_fields_and_ids_that_do_not_tell_dolly_from_alpaca_are_clear_errors(tmp_path):
    from sdrrl.metrics import benchmark_data as bd

    opts = {"sdrrl_data": str(tmp_path)}
    good = {"instruction": "Mengapa?", "input": "", "id": "dolly-1", "output": "Karena."}
    _jsonl(tmp_path / "bactrian-x" / "id" / "train" / "0000.jsonl", [good, {k: v for k, v in good.items() if k != "id"}])
    with pytest.raises(SdrrlError) as err:
        bd.offtarget("ind", opts)
    text = str(err.value)
    assert "Bactrian-X id" in text and "row 1 has no field id" in text and "instruction, input, id, output" in text
    _jsonl(tmp_path / "bactrian-x" / "id" / "train" / "0000.jsonl", [{**good, "id": "7"}, {**good, "id": "8"}])
    with pytest.raises(SdrrlError, match=r"none of its 2 rows has an id starting with 'dolly-' \(ids like '7', '8'\)"):
        bd.offtarget("ind", opts)
    _jsonl(tmp_path / "dolly" / "dolly.jsonl", [{"instruction": "Why?", "response": "Because.", "category": "open_qa"}])
    with pytest.raises(SdrrlError, match="row 0 has no field context"):
        bd.offtarget("eng", opts)
    with pytest.raises(SdrrlError, match=r"bactrian-x/ja/train/\*.parquet"):  # where it looked
        bd.offtarget("jpn", opts)


def test_the_hub_is_asked_for_bactrian_x_s_parquet_export_and_dolly(monkeypatch):
    """Which hub datasets, revisions, folders and splits are asked for (a unit test of the calls:
    no hub here), and offline without a copy: one error naming the dataset and the local override."""
    import datasets

    from sdrrl.metrics import benchmark_data as bd

    monkeypatch.delenv("SDRRL_EVAL_DATA", raising=False)
    calls = []

    class Rows:
        def __init__(self, rows):
            self.rows = rows

        def to_list(self):
            return self.rows

    def fake_load(path, **kwargs):
        calls.append((path, kwargs))
        if path == "MBZUAI/Bactrian-X":
            return Rows([{"instruction": "Q", "input": "", "id": "alpaca-1", "output": "A"},
                         {"instruction": "Q2", "input": "C", "id": "dolly-1", "output": "A2"}])
        return Rows([{"instruction": "Q", "context": "", "response": "A", "category": "open_qa"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(bd, "hub_revision", lambda path, revision: "abc")
    source: dict = {}
    assert [d["question"] for d in bd.offtarget("kor", {"sdrrl_source": source})] == ["Q2\nC"]
    assert len(bd.offtarget("eng", {"sdrrl_source": source})) == 1
    assert calls == [("MBZUAI/Bactrian-X", {"split": "train", "revision": "refs/convert/parquet", "data_dir": "ko"}),
                     ("databricks/databricks-dolly-15k", {"split": "train", "revision": None, "name": None})]
    assert [(e["dataset"], e["revision"], e["commit"]) for e in source["loaded"]] == [
        ("MBZUAI/Bactrian-X", "refs/convert/parquet", "abc"), ("databricks/databricks-dolly-15k", "main", "abc")]

    def offline(path, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SdrrlError) as err:
        bd.offtarget("tha")
    assert "MBZUAI/Bactrian-X@refs/convert/parquet" in str(err.value) and "SDRRL_EVAL_DATA" in str(err.value)


# ---- the real lm_eval on the tiny Llama ------------------------------------------------------------

@pytest.fixture(scope="module")
def offtarget_run(tiny_models, tmp_path_factory):
    """lm_eval on the three off-target tasks of the demo's languages (shipped mini sets), with the
    tiny Llama under a recipe path, so the report reads it as SDRRL eng-jpn."""
    root = tmp_path_factory.mktemp("offtarget")
    model = root / "saves" / "llama2-7b" / "sdrrl" / "eng-jpn"
    model.parent.mkdir(parents=True)
    model.symlink_to(tiny_models.llama, target_is_directory=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               SDRRL_EVAL_DATA=str(MINI))
    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", "pretrained=saves/llama2-7b/sdrrl/eng-jpn,dtype=float32",
           "--device", "cpu", "--limit", "3", "--include_path", str(REPO / "eval_tasks"), "--tasks", ",".join(TASKS),
           "--output_path", str(root / "out"), "--log_samples"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    [results] = list((root / "out").rglob("results_*.json"))
    return root, json.loads(results.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_lm_eval_scores_each_response_by_the_off_target_rule(offtarget_run):
    from sdrrl.metrics import offtarget

    root, results = offtarget_run
    res = results["results"]
    assert set(res) == set(TASKS)
    for task in TASKS:
        lang = task.rsplit("_", 1)[1]
        [samples_file] = list((root / "out").rglob(f"samples_{task}_*.jsonl"))
        samples = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines()]
        assert res[task]["sample_len"] == len(samples) == 3
        for s in samples:
            response = s["filtered_resps"][0].strip()
            verdict = offtarget.judge(response, lang)
            assert s["offtarget"] == float(verdict != offtarget.ON) and s["undetermined"] == float(
                verdict == offtarget.UNDETERMINED), (task, response)
            assert s["arguments"]["gen_args_0"]["arg_0"] == f"Human: {s['doc']['question']}</s>\nAssistant:"
            assert lang == "eng" or s["doc"]["id"].startswith("dolly-")  # Bactrian-X's Alpaca rows left out
        for metric in ("offtarget", "undetermined"):
            assert res[task][f"{metric},none"] == pytest.approx(sum(s[metric] for s in samples) / 3)
        loaded = results["configs"][task]["metadata"]["sdrrl_source"]["loaded"]
        for entry in loaded:
            for rel, digest in entry["files"].items():
                assert hashlib.sha256((MINI / rel).read_bytes()).hexdigest() == digest
    # the random tiny model answers with punctuation only ("::::..."): undetermined, so off-target,
    # in Japanese too, where CLD3 alone would have called it Japanese
    assert res["sdrrl_offtarget_jpn"]["undetermined,none"] == res["sdrrl_offtarget_jpn"]["offtarget,none"] == 1.0


@pytest.mark.slow
def test_sdrrl_score_rescores_the_off_target_samples(offtarget_run, tmp_path):
    from sdrrl.cli import main

    root, results = offtarget_run
    out = tmp_path / "scores.json"
    assert main(["score", str(root / "out"), "--no-comet", "-o", str(out)]) == 0
    scored = json.loads(out.read_text(encoding="utf-8"))
    for task in TASKS:
        for metric in ("offtarget", "undetermined"):
            assert scored["tasks"][task][metric] == pytest.approx(results["results"][task][f"{metric},none"])
    assert scored["groups"] == {}  # Figure 3 has no Avg. in the paper


def _results(folder: Path, model: str, values: dict[str, tuple[float, float, int]]) -> None:
    """A results file as lm-eval writes it: task -> (offtarget, undetermined, sample_len)."""
    folder.mkdir(parents=True)
    (folder / "results_2024-05-01T10-00-00.json").write_text(json.dumps({
        "results": {t: {"offtarget,none": o, "undetermined,none": u, "sample_len": n} for t, (o, u, n) in values.items()},
        "config": {"model_args": f"pretrained={model},dtype=bfloat16"}}), encoding="utf-8")


@pytest.mark.slow
def test_report_draws_figure_3_from_the_off_target_results(offtarget_run, tmp_path):
    """The real SDRRL eng-jpn run beside a base model, SFT and SDRRL eng-ind with known values: each
    method's row, a pair-trained run only in its own language's column, the undetermined counts."""
    import matplotlib.image as mpimg

    from sdrrl.cli import main

    root, results = offtarget_run
    res = results["results"]
    given = tmp_path / "given"
    _results(given / "base", "meta-llama/Llama-2-7b-hf", {"sdrrl_offtarget_ind": (0.5, 0.25, 4),
                                                          "sdrrl_offtarget_jpn": (0.75, 0.0, 4),
                                                          "sdrrl_offtarget_eng": (0.0, 0.0, 4)})
    _results(given / "sft", "saves/llama2-7b/sft/eng", {"sdrrl_offtarget_jpn": (0.25, 0.25, 4)})
    _results(given / "sdrrl-ind", "saves/llama2-7b/sdrrl/eng-ind", {"sdrrl_offtarget_ind": (0.2, 0.0, 5),
                                                                    "sdrrl_offtarget_jpn": (0.8, 0.0, 5),
                                                                    "sdrrl_offtarget_eng": (0.4, 0.2, 5)})
    out = tmp_path / "report"
    assert main(["report", str(root / "out"), str(given), "--out", str(out)]) == 0
    cells = {(c["table"], c["metric"], c["direction"], c["method"], c["column"]): c["ours"]
             for c in json.loads((out / "tables.json").read_text(encoding="utf-8"))["cells"]}
    t = "figure3-llama2"
    assert {k[4] for k in cells if k[0] == t} == {"ind", "jpn"}  # the languages answered, nothing else
    assert cells[(t, "offtarget", "", "base", "ind")] == 50.0 and cells[(t, "offtarget", "", "base", "jpn")] == 75.0
    assert cells[(t, "undetermined_count", "", "base", "ind")] == 1 and cells[(t, "responses", "", "base", "ind")] == 4
    assert cells[(t, "offtarget", "", "sft", "ind")] is None and cells[(t, "offtarget", "", "sft", "jpn")] == 25.0
    # SDRRL: eng-ind's value in the IND column (not its 80 % on Japanese), the real eng-jpn run in JPN
    assert cells[(t, "offtarget", "", "sdrrl", "ind")] == pytest.approx(20.0)
    jpn = res["sdrrl_offtarget_jpn"]
    assert cells[(t, "offtarget", "", "sdrrl", "jpn")] == pytest.approx(100 * jpn["offtarget,none"])
    assert cells[(t, "undetermined_count", "", "sdrrl", "jpn")] == round(3 * jpn["undetermined,none"])
    assert cells[(t, "responses", "", "sdrrl", "jpn")] == 3
    # the English side: each column's run answering Dolly in English
    assert cells[(t, "offtarget", "eng", "sdrrl", "ind")] == pytest.approx(40.0)
    assert cells[(t, "offtarget", "eng", "sdrrl", "jpn")] == pytest.approx(100 * res["sdrrl_offtarget_eng"]["offtarget,none"])
    assert cells[(t, "offtarget", "eng", "base", "jpn")] == cells[(t, "offtarget", "eng", "base", "ind")] == 0.0

    md = (out / "REPORT.md").read_text(encoding="utf-8")
    section = md[md.index("## Figure 3 (appendix E)"):]
    section = section[:section.find("\n## ")] if "\n## " in section else section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| |")]
    assert [r.split(" | ")[0] for r in rows[:3]] == ["| base model", "| SFT", "| SDRRL"]  # base → SFT → SDRRL
    assert rows[0] == "| base model | 50.0 (undet. 1/4) | 75.0 (undet. 0/4) |"
    assert rows[1] == "| SFT | — | 25.0 (undet. 1/4) |"
    plot = out / "plots" / "figure3-llama2.png"
    assert "](plots/figure3-llama2.png)" in section
    img = mpimg.imread(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and img.shape[0] > 300 and img.std() > 0.01
