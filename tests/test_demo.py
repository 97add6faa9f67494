"""`make demo` (sdrrl demo) runs the whole job end to end on the tiny models and shipped data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _results(folder: Path) -> dict:
    (path,) = folder.rglob("results_*.json")  # one results file per run folder
    return json.loads(path.read_text())


@pytest.mark.slow
def test_demo_runs_every_step_and_reports(tmp_path, tiny_models, tiny_cache_dir):
    from lf_utils import offline_env

    work = tmp_path / "demo"
    cmd = [Path(sys.executable).parent / "sdrrl", "demo", "--work-dir", work, "--eval-limit", "2"]
    env = offline_env(SDRRL_CACHE=str(tiny_cache_dir))  # the fixture's models: no rebuild
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = (work / "REPORT.md").read_text(encoding="utf-8")
    model_steps = ["train sft eng", "train sdrrl eng-ind", "train sdrrl eng-jpn", "evaluate base",
                   "evaluate sft eng", "evaluate sdrrl eng-ind", "evaluate sdrrl eng-jpn",
                   "represent eng-ind", "represent eng-jpn", "report"]
    for step in ("tiny models", "build", "export", *model_steps):
        assert f"| {step}" in report, step
    assert "(reused)" not in report
    assert "built: none (all found in the cache)" in proc.stdout
    assert "FAILED" not in report and "qe_threshold=0.0" in proc.stdout  # the explicit demo thresholds are said
    assert "measure nothing" in report
    manifest = json.loads((work / "dataset_info" / "manifest.json").read_text())
    for tgt in ("ind", "jpn"):
        for subset in ("ll", "tl", "lt", "tt", "mt", "comp"):
            assert manifest["entries"][f"sdrrl_eng-{tgt}_{subset}"]["rows"] > 0
    assert manifest["entries"]["sft_eng"]["rows"] > 0
    saves = work / "saves" / "tiny"
    for ckpt in ("sft/eng", "sdrrl/eng-ind", "sdrrl/eng-jpn"):
        assert (saves / ckpt / "model.safetensors").exists(), ckpt

    # every run: its own lm_eval folder, the checkpoint's saves/<model>/<method>/<pair> in model_args
    english = {"sdrrl_belebele_eng", "sdrrl_mkqa_eng", "sdrrl_offtarget_eng"}
    ind = {"sdrrl_belebele_ind", "sdrrl_flores_eng-ind", "sdrrl_flores_ind-eng", "sdrrl_xlsum_ind", "sdrrl_offtarget_ind"}
    jpn = {"sdrrl_belebele_jpn", "sdrrl_flores_eng-jpn", "sdrrl_flores_jpn-eng", "sdrrl_xlsum_jpn", "sdrrl_mkqa_jpn",
           "sdrrl_offtarget_jpn"}
    expected = {"base": (ind | jpn | english, "models/llama"), "sft/eng": (ind | jpn | english, "saves/tiny/sft/eng"),
                "sdrrl/eng-ind": (ind | english, "saves/tiny/sdrrl/eng-ind"),
                "sdrrl/eng-jpn": (jpn | english, "saves/tiny/sdrrl/eng-jpn")}
    for run, (tasks, model) in expected.items():
        data = _results(work / "eval" / "tiny" / run)
        assert set(data["results"]) == tasks, run
        args = data["config"]["model_args"]  # lm-eval 0.4.13 records a dict; older ones the string
        args = args if isinstance(args, dict) else dict(kv.split("=", 1) for kv in args.split(","))
        assert args["pretrained"] == str(work / model), run
    jp = _results(work / "eval" / "tiny" / "sdrrl" / "eng-jpn")["results"]
    assert "f1,none" in jp["sdrrl_mkqa_jpn"] and "rougeL,none" in jp["sdrrl_xlsum_jpn"]
    assert "spbleu,none" in jp["sdrrl_flores_eng-jpn"] and "acc,none" in jp["sdrrl_belebele_jpn"]
    assert "| sdrrl eng-jpn | sdrrl_mkqa_jpn | f1,none |" in report

    for tgt in ("ind", "jpn"):
        out = work / "representation" / f"eng-{tgt}"
        rep = json.loads((out / "representation.json").read_text())
        assert [m["name"] for m in rep["models"]] == ["base", "sft", "sdrrl"] and rep["tgt"] == tgt
        assert all(m["n"] == 40 and -1 <= m["mean_cos_parallel"] <= 1 for m in rep["models"])
        png = (out / rep["plot"]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # the demo ends in `sdrrl report`: the four benchmarks' tables with the demo's runs beside the
    # paper's values, the representation numbers, and the plots
    paper = (work / "report" / "REPORT.md").read_text(encoding="utf-8")
    for table in ("## Table 2:", "## Table 3:", "## Table 4:", "## Table 5:", "## Table 6:"):
        assert table in paper, table
    cells = json.loads((work / "report" / "tables.json").read_text())["cells"]
    ours = {(c["table"], c["method"], c["column"]) for c in cells if c["ours"] is not None}
    for table in ("2", "3", "4", "5"):   # BELEBELE, FLORES, XL-Sum, MKQA: the Japanese SDRRL run in each
        assert (table, "sdrrl", "jpn") in ours, table
    assert ("2", "sft", "ind") in ours and ("5", "sdrrl", "ind") not in ours  # MKQA has no Indonesian
    # Figure 3 from the off-target tasks: base model, SFT and SDRRL (each target's own run) per language
    assert "## Figure 3 (appendix E)" in paper and (work / "report" / "plots" / "figure3-llama2.png").exists()
    assert {(m, lang) for t, m, lang in ours if t == "figure3-llama2"} == {
        (m, lang) for m in ("base", "sft", "sdrrl") for lang in ("ind", "jpn")}
    rep_section = paper.split("## Representation analysis")[1].split("\n## ")[0]
    assert all(f"| {name} |" in rep_section for name in ("base", "sft", "sdrrl")), rep_section
    plots = list((work / "report" / "plots").glob("*.png"))
    assert plots and all(p.stat().st_size > 10_000 for p in plots)
    assert "## Against the paper" in report and "Table 2" in report

    # a second run does no model work: training, evaluation and the analysis are reused
    stamps = {p: p.stat().st_mtime_ns for p in [*saves.rglob("model.safetensors"), *(work / "eval").rglob("*.json"),
                                              *(work / "representation").rglob("*.png")]}
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    report = (work / "REPORT.md").read_text(encoding="utf-8")
    for step in model_steps:
        assert any(line.startswith(f"| {step}") and "(reused)" in line for line in report.splitlines()), step
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_demo_finds_the_recipe_and_eval_tasks_from_any_directory(tmp_path, monkeypatch):
    """`sdrrl demo` run outside the checkout must not look for recipes/ and eval_tasks/ in the CWD."""
    from sdrrl.commands import demo

    monkeypatch.chdir(tmp_path)
    assert demo._shipped("eval_tasks") == REPO / "eval_tasks"
    assert demo._shipped("recipes/sdrrl_tiny_cpu.yaml") == REPO / "recipes" / "sdrrl_tiny_cpu.yaml"
    assert demo._shipped("no/such/thing") is None


def test_a_step_is_reused_until_its_command_or_an_input_changes(tmp_path):
    """The demo's step fingerprint: same command and input content -> reused; a changed byte -> run."""
    from sdrrl.commands.demo import Demo

    data = tmp_path / "inputs"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.txt").write_text("one", encoding="utf-8")
    out = tmp_path / "out.txt"
    demo = Demo(tmp_path / "work", "ind")

    def step(text="x"):
        cmd = [sys.executable, "-c", f"open({str(out)!r}, 'a').write({text!r})"]
        return demo.run("copy step", cmd, inputs=[data], outputs=[out])

    assert step() is True and out.read_text() == "x"
    assert step() is False and out.read_text() == "x"  # reused: not run again
    assert demo.steps[-1]["reused"] is True
    (data / "sub" / "a.txt").write_text("two", encoding="utf-8")
    assert step() is True and out.read_text() == "xx"
    assert step("y") is True and out.read_text() == "xxy"  # another command
    out.unlink()
    assert step("y") is True  # a missing output runs the step again
    assert "(reused)" in demo.write_report().read_text()
