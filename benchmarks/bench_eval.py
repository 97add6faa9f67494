#!/usr/bin/env python
"""Evaluation timings on CPU with the tiny models and the fixture data (offline).

1. Wall time of the same sdrrl_* tasks through the ``lm_eval`` CLI (which indexes lm-eval's ~14k
   built-in task YAMLs before it starts) and through the Python API with
   ``TaskManager(include_path=..., include_defaults=False)`` (which indexes only eval_tasks/).
   Both run as fresh processes, so imports and model loading count in both.
2. The time COMET scoring adds per 1,000 segments with the tiny reference-based COMET model.

    .venv/bin/python benchmarks/bench_eval.py            # writes benchmarks/results/eval.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
sys.path.insert(0, str(REPO / "tests"))
from eval_utils import train_stand_in_spm  # noqa: E402
BIN = Path(sys.executable).parent
TASKS = ("sdrrl_belebele_ces,sdrrl_flores_ces-eng,sdrrl_flores_eng-jpn,sdrrl_xlsum_jpn,"
         "sdrrl_mkqa_dan,sdrrl_mkqa_jpn")

API_SCRIPT = """
import sys, json
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
tm = TaskManager(include_path=sys.argv[1], include_defaults=False)
out = simple_evaluate(model="hf", model_args=sys.argv[2], tasks=sys.argv[3].split(","), device="cpu",
                      limit=int(sys.argv[4]), task_manager=tm)
print("N_TASKS", len(out["results"]))
"""

INDEX_SCRIPT = """
import sys, time
t = time.perf_counter()
from lm_eval.tasks import TaskManager
t_import = time.perf_counter() - t
t = time.perf_counter()
tm = TaskManager(include_path=sys.argv[1], include_defaults=sys.argv[2] == "1")
print(len(tm.all_tasks), t_import, time.perf_counter() - t)
"""


def _timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - t
    if run.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{run.stderr[-3000:]}")
    return elapsed, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=TASKS)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eval"))
    args = parser.parse_args()

    from sdrrl.tiny import build_all

    models = build_all(REPO / ".cache" / "tiny-models")
    tmp = Path(tempfile.mkdtemp(prefix="sdrrl-bench-eval-"))
    train_stand_in_spm(tmp / "sacrebleu" / "models" / "flores200sacrebleuspm")  # a stand-in flores200 SPM
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="", SDRRL_EVAL_DATA=str(FIXTURES),
               SACREBLEU=str(tmp / "sacrebleu"), SDRRL_COMET_MODEL=str(models.comet_ref))
    model_args = f"pretrained={models.llama},dtype=float32"
    include = str(REPO / "eval_tasks")

    index = {}
    for label, flag in (("with_builtins", "1"), ("without_builtins", "0")):
        runs = []
        for _ in range(args.repeats):
            _, run = _timed([sys.executable, "-c", INDEX_SCRIPT, include, flag], env)
            n, t_import, t_index = run.stdout.split()
            runs.append(float(t_index))
        index[label] = {"tasks_indexed": int(n), "index_s": statistics.median(runs)}

    wall = {"cli_with_builtins": [], "api_without_builtins": []}
    for _ in range(args.repeats):
        t, _ = _timed([str(BIN / "lm_eval"), "--model", "hf", "--model_args", model_args, "--device", "cpu",
                       "--limit", str(args.limit), "--include_path", include, "--tasks", args.tasks], env)
        wall["cli_with_builtins"].append(t)
        t, run = _timed([sys.executable, "-c", API_SCRIPT, include, model_args, args.tasks, str(args.limit)], env)
        assert "N_TASKS" in run.stdout
        wall["api_without_builtins"].append(t)

    # COMET on CPU: load once, then score N segments (and a 10-segment run to separate fixed cost)
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    from sdrrl.metrics import comet

    rows = [json.loads(line) for line in (FIXTURES / "flores" / "devtest" / "ces_Latn.jsonl").read_text("utf-8").splitlines()]
    refs = [json.loads(line)["text"] for line in (FIXTURES / "flores" / "devtest" / "eng_Latn.jsonl").read_text("utf-8").splitlines()]
    srcs = [rows[i % len(rows)]["text"] + f" ({i})" for i in range(args.segments)]
    hyps = [refs[i % len(refs)][: 20 + i % 30] for i in range(args.segments)]
    refs_n = [refs[i % len(refs)] for i in range(args.segments)]
    t = time.perf_counter()
    comet.load(str(models.comet_ref))
    load_s = time.perf_counter() - t
    comet.corpus_score(srcs[:10], hyps[:10], refs_n[:10], model=str(models.comet_ref), gpus=0)  # warm-up
    t = time.perf_counter()
    comet.corpus_score(srcs, hyps, refs_n, model=str(models.comet_ref), gpus=0, batch_size=16)
    score_s = time.perf_counter() - t

    import torch

    result = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "tasks": args.tasks.split(","), "limit": args.limit, "repeats": args.repeats,
        "index": index,
        "wall_s": {k: {"median": statistics.median(v), "runs": v} for k, v in wall.items()},
        "comet_tiny": {"segments": args.segments, "load_s": load_s, "score_s": score_s,
                       "s_per_1000_segments": score_s * 1000 / args.segments},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    w = result["wall_s"]
    md = [
        "# Evaluation timings (CPU, tiny models, fixture data, offline)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_eval.py` ({result['machine']['cpus']} CPUs, "
        f"torch threads {result['machine']['torch_threads']}, Python {result['machine']['python']}).",
        f"Tasks: {', '.join(result['tasks'])}; `--limit {args.limit}`; median of {args.repeats} runs.",
        "",
        "| what | seconds |",
        "| --- | ---: |",
        f"| `lm_eval` CLI (indexes built-in tasks too), whole run | {w['cli_with_builtins']['median']:.1f} |",
        f"| Python API, `TaskManager(include_defaults=False)`, whole run | {w['api_without_builtins']['median']:.1f} |",
        f"| task indexing alone, with built-ins ({index['with_builtins']['tasks_indexed']} tasks) | {index['with_builtins']['index_s']:.2f} |",
        f"| task indexing alone, eval_tasks only ({index['without_builtins']['tasks_indexed']} tasks) | {index['without_builtins']['index_s']:.2f} |",
        f"| COMET (tiny model) load, once | {result['comet_tiny']['load_s']:.2f} |",
        f"| COMET (tiny model) scoring per 1,000 segments | {result['comet_tiny']['s_per_1000_segments']:.2f} |",
        "",
        "The tiny COMET model has a 64-wide, 2-layer encoder: the per-segment figure is the pipeline's",
        "overhead (tokenisation, batching, Lightning), not the cost of wmt22-comet-da's XLM-R large.",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
