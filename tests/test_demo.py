"""`make demo` (sdrrl demo) runs the whole job end to end on the tiny models and shipped data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_every_step_and_reports(tmp_path, tiny_models, tiny_cache_dir):
    from lf_utils import offline_env

    work = tmp_path / "demo"
    proc = subprocess.run([Path(sys.executable).parent / "sdrrl", "demo", "--work-dir", work, "--eval-limit", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=900,
                          env=offline_env(SDRRL_CACHE=str(tiny_cache_dir)))  # the fixture's models: no rebuild
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = (work / "REPORT.md").read_text(encoding="utf-8")
    for step in ("tiny models", "build", "export", "train (llamafactory-cli train)", "evaluate (lm_eval)"):
        assert f"| {step}" in report, step
    assert "built: none (all found in the cache)" in proc.stdout
    assert "FAILED" not in report and "qe_threshold=0.0" in proc.stdout  # the explicit demo thresholds are said
    manifest = json.loads((work / "dataset_info" / "manifest.json").read_text())
    for subset in ("ll", "tl", "lt", "tt", "mt", "comp"):
        assert manifest["entries"][f"sdrrl_eng-ind_{subset}"]["rows"] > 0
    assert (work / "saves" / "tiny" / "sdrrl" / "eng-ind" / "model.safetensors").exists()
    results = json.loads(next((work / "eval").rglob("results_*.json")).read_text())["results"]
    assert {"sdrrl_belebele_ind", "sdrrl_flores_eng-ind", "sdrrl_flores_ind-eng", "sdrrl_xlsum_ind"} <= set(results)
    assert "spbleu,none" in results["sdrrl_flores_eng-ind"] and "rougeL,none" in results["sdrrl_xlsum_ind"]
    assert "| sdrrl_belebele_ind | acc,none |" in report


def test_demo_finds_the_recipe_and_eval_tasks_from_any_directory(tmp_path, monkeypatch):
    """`sdrrl demo` run outside the checkout must not look for recipes/ and eval_tasks/ in the CWD."""
    from sdrrl.commands import demo

    monkeypatch.chdir(tmp_path)
    assert demo._shipped("eval_tasks") == REPO / "eval_tasks"
    assert demo._shipped("recipes/sdrrl_tiny_cpu.yaml") == REPO / "recipes" / "sdrrl_tiny_cpu.yaml"
    assert demo._shipped("no/such/thing") is None
