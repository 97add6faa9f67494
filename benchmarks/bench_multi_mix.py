"""What LLaMA-Factory does with the multi recipe's 84 interleaved datasets: examples per subset.

    PYTHONPATH=plugin .venv/bin/python benchmarks/bench_multi_mix.py [--scale 100] [--model DIR]

Writes the 84 registry entries of recipes/sdrrl_llama2_multi.yaml (14 targets x 6 subsets) with
the paper's relative sizes divided by ``--scale``: D_LL 52,002 rows, D_TL/D_LT/D_TT ~5% fewer
after the filters (varied per language), D_MT 2,000, D_comp 1,000. Loads them with the recipe's
mix_strategy through LLaMA-Factory's own loading (tests/lf_mix.py, no training) and counts the
examples each subset contributes, per subset kind and per language. Needs a tokenizer directory
(``--model``, default: the tiny Llama of `sdrrl tiny-models`).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    from lf_utils import offline_env, tiny_train_args
    from sdrrl import recipes, registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    if args.model is None:
        from sdrrl.tiny import tiny_llama
        args.model = str(tiny_llama())
    recipe = recipes.as_dict(recipes.RECIPES["sdrrl_llama2_multi"])
    names = recipe["dataset"].split(",")
    rng = random.Random(0)
    paper = {"ll": 52002, "tl": 49400, "lt": 49400, "tt": 47000, "mt": 2000, "comp": 1000}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        entries, sizes = [], {}
        for name in names:
            kind = name.rsplit("_", 1)[1]
            n = max(1, int(paper[kind] * (1 - rng.uniform(0, 0.04) * (kind in ("tl", "lt", "tt"))) / args.scale))
            sizes[name] = n
            rows = [{"instruction": f"{name} #{i}", "input": "", "output": "ok"} for i in range(n)]
            entries.append(registry.write_dataset(tmp, name, rows)[0])
        registry.update_dataset_info(tmp, entries)
        lf_args = tiny_train_args(args.model, tmp, names, tmp / "out", mix_strategy=recipe["mix_strategy"])
        (tmp / "args.json").write_text(json.dumps(lf_args))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "lf_mix.py"), str(tmp / "args.json"),
                               str(tmp / "mix.json")], env=offline_env(), capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        seconds = time.perf_counter() - start
        examples = json.loads((tmp / "mix.json").read_text())
    counts = Counter(p.split(" #")[0] for p, _ in examples)
    by_kind, by_lang = defaultdict(list), Counter()
    for name in names:
        by_kind[name.rsplit("_", 1)[1]].append(counts[name])
        by_lang[name.split("_")[1]] += counts[name]
    print(f"mix_strategy={recipe['mix_strategy']}: {len(names)} datasets, {sum(sizes.values())} rows in, "
          f"{len(examples)} examples out ({seconds:.1f} s to load)")
    print("| subset | rows per dataset (min-max) | examples per dataset (min-max) |")
    print("|---|---|---|")
    for kind in paper:
        rows = [sizes[n] for n in names if n.endswith("_" + kind)]
        print(f"| {kind} | {min(rows)}-{max(rows)} | {min(by_kind[kind])}-{max(by_kind[kind])} |")
    print(f"examples per language: min {min(by_lang.values())}, max {max(by_lang.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
