"""benchmarks/bench_gpu.py --smoke: the GPU benchmark's own code at tiny shapes on CPU, so the script
cannot rot between GPU loans (the real-shape run needs a CUDA GPU). Its vLLM part runs on vLLM's
CPU build in the vLLM environment."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_gpu_smoke_runs_every_available_part_and_projects(tmp_path):
    committed = REPO / "benchmarks" / "results" / "gpu.json"
    before = committed.read_bytes() if committed.exists() else None
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((tmp_path / "gpu.json").read_text())
    md = (tmp_path / "gpu.md").read_text()
    res = doc["results"]
    assert doc["smoke"] and "SMOKE" in md and "forced" in md
    assert res["generate_transformers"]["tokens_per_s"] > 0
    # forced lengths: every row's answer counted, each batch decoding its longest answer
    g = res["generate_transformers"]
    assert g["tokens"] <= g["decoded_incl_padding"] and g["rows"] == doc["workload"]["gen_rows"]
    assert res["translate_transformers"]["segments_per_s"] > 0 and res["translate_transformers"]["beam"] == 4
    assert res["qe"]["segments_per_s"] > 0
    # optional engines: measured when importable, listed as missing otherwise
    for pkg, module in (("ctranslate2", "ctranslate2"), ("unbabel-comet", "comet")):
        assert (pkg in doc["missing"]) == (importlib.util.find_spec(module) is None)
    # vLLM in its own environment, as the pipeline runs it (make test makes it)
    if "ctranslate2" in doc["missing"]:
        assert "not importable" in res["translate_ct2_float16"]["skipped"]
    else:
        assert res["translate_ct2_float16"]["segments_per_s"] > 0 and res["translate_ct2_int8_float16"]["segments_per_s"] > 0
        assert doc["results"]["ct2_conversion_s"] >= 0
    assert res["qe"]["head"] == ("bare encoder" if "unbabel-comet" in doc["missing"] else
                                 "unbabel-comet LayerwiseAttention + FeedForward")
    from sdrrl.pipeline.vllm_engine import vllm_python

    vllm_python()  # fails, naming the fix, where there is no vLLM environment
    assert "vllm" not in doc["missing"]
    v = res["generate_vllm"]
    assert v["tokens_per_s"] > 0 and v["tokens"] == g["tokens"] and v["engine_start_s"] > 0, v
    # the projection: paper scale from the measured rates, cache savings counted
    p = doc["projection"]
    assert p["rows"] == 52002 and p["targets"] == 14
    assert 0 < p["segments_per_target_after_cache"] <= p["segments_per_target"]
    h = p["hours"]
    assert h["generate_transformers"] > 0 and h["qe"] > 0
    assert h["translate_transformers"] <= h["translate_transformers_without_cache"]
    assert "transformers + transformers" in p["total_gpu_hours"]
    # the committed results are a real GPU run's: a smoke run never writes them
    assert (committed.read_bytes() if committed.exists() else None) == before


def test_bench_gpu_without_a_gpu_says_so(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # hides any GPU from torch
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "--smoke" in r.stderr
    assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())
