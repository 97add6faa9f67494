"""``sdrrl score``: re-score lm-eval's logged samples (``--log_samples`` output) offline.

Generation and scoring can then run on different machines or environments: generate with lm_eval
(e.g. with SDRRL_COMET_MODEL=none on a GPU box without the COMET model), then score here with the
same metric code the tasks use. Reads ``samples_sdrrl_<task>_<timestamp>.jsonl`` files.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_SAMPLES_RE = re.compile(r"^samples_(sdrrl_.+)_(\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="samples_sdrrl_*.jsonl files, or directories searched recursively for them")
    p.add_argument("--comet-model", default=None,
                   help="COMET checkpoint path or hub id (default: $SDRRL_COMET_MODEL, else "
                        "Unbabel/wmt22-comet-da)")
    p.add_argument("--no-comet", action="store_true", help="skip COMET (reported as null)")
    p.add_argument("--comet-batch-size", type=int, default=16)
    p.add_argument("--output", "-o", default=None, help="also write the scores as JSON to this file")


def find_sample_files(paths: list[str]) -> dict[str, Path]:
    """task -> newest samples file for it (by the timestamp in the file name)."""
    from sdrrl.errors import SdrrlError

    found: dict[str, tuple[str, Path]] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SdrrlError(f"No such file or directory: {raw!r}.",
                             "pass lm_eval's --output_path directory or its samples_*.jsonl files.")
        candidates = [path] if path.is_file() else sorted(path.rglob("samples_sdrrl_*.jsonl"))
        for f in candidates:
            m = _SAMPLES_RE.match(f.name)
            if not m:
                if path.is_file():
                    raise SdrrlError(f"{f.name!r} is not an lm-eval samples file of an sdrrl task.",
                                     "expected samples_sdrrl_<task>_<timestamp>.jsonl (lm_eval --log_samples).")
                continue
            task, stamp = m.group(1), m.group(2)
            if task not in found or stamp > found[task][0]:
                found[task] = (stamp, f)
    if not found:
        raise SdrrlError(f"No samples_sdrrl_*.jsonl files under {', '.join(paths)}.",
                         "run lm_eval with --log_samples --output_path DIR and pass DIR.")
    return {task: f for task, (_, f) in sorted(found.items())}


def score_file(task: str, path: Path, comet_model: str | None, with_comet: bool,
               comet_batch_size: int | None = None) -> dict:
    from sdrrl import catalog
    from sdrrl.errors import SdrrlError
    from sdrrl.io import read_jsonl
    from sdrrl.metrics import benchmarks

    benchmark, _, _ = catalog.parse_task(task)
    bench = catalog.benchmark(benchmark)
    rows = list(read_jsonl(path))
    if not rows:
        raise SdrrlError(f"{path} holds no samples.", "re-run lm_eval with --log_samples.")
    if bench.generation:
        samples = [benchmarks.sample_metrics(benchmark, r["doc"], r["filtered_resps"][0]) for r in rows]
    else:  # multiple choice: lm-eval logged each sample's metric values
        samples = [{m: float(r[m]) for m in bench.metric_names} for r in rows]
    scores = benchmarks.aggregate(benchmark, samples, comet_model_name=comet_model, with_comet=with_comet,
                                  comet_batch_size=comet_batch_size)
    return {"benchmark": benchmark, "n": len(rows), "file": str(path),
            **{k: (None if benchmarks.is_nan(v) else v) for k, v in scores.items()}}


def run(args: argparse.Namespace) -> int:
    import json

    from sdrrl import catalog
    from sdrrl.io import write_json
    from sdrrl.metrics import benchmarks

    files = find_sample_files(args.paths)
    with_comet = not args.no_comet
    comet_model = args.comet_model or benchmarks.comet_model()
    if comet_model is None:
        with_comet = False
    tasks = {task: score_file(task, f, comet_model, with_comet, args.comet_batch_size)
             for task, f in files.items()}
    # the paper's Avg. columns, as the sdrrlavg_* groups report them: unweighted means over every
    # language of the paper's table, so only where every one of its tasks was scored
    groups: dict[str, dict[str, float]] = {}
    incomplete: dict[str, str] = {}
    for group, members in catalog.average_groups().items():
        have = [tasks[t] for t in members if t in tasks]
        if len(have) == len(members):
            metrics = catalog.benchmark(have[0]["benchmark"]).averaged_metrics
            groups[group] = {m: benchmarks.mean(s[m] for s in have)
                             for m in metrics if all(s.get(m) is not None for s in have)}
        elif have:
            incomplete[group] = f"{len(have)} of {len(members)} tasks"
    report = {"tasks": tasks, "groups": groups, "incomplete_groups": incomplete,
              "comet_model": comet_model if with_comet else None}
    for task, s in tasks.items():
        values = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in s.items() if k not in ("benchmark", "file"))
        print(f"{task:24s} {values}")
    for group, s in groups.items():
        print(f"{group:24s} " + "  ".join(f"{k}={v:.4f}" for k, v in s.items()))
    for group, have in incomplete.items():
        print(f"{group:24s} no average: {have} scored (the paper's Avg. is over all of them)")
    if args.output:
        write_json(args.output, report)
    else:
        print(json.dumps({"groups": groups}, indent=None))
    return 0
