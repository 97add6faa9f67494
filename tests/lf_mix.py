"""Load a recipe's training mix through LLaMA-Factory's own dataset loading (no training) and write
every example as [prompt, response] JSON; used by tests/test_multi.py and benchmarks/bench_multi_mix.py.

Run: python tests/lf_mix.py ARGS.json OUT.json   (ARGS: the recipe's keys, as llamafactory-cli takes them)
"""

from __future__ import annotations

import json
import sys


def main(args_path: str, out_path: str) -> None:
    from llamafactory.data.loader import _get_merged_dataset
    from llamafactory.hparams import get_train_args

    with open(args_path, encoding="utf-8") as fh:
        args = json.load(fh)
    model_args, data_args, training_args, _, _ = get_train_args(args)
    merged = _get_merged_dataset(data_args.dataset, model_args, data_args, training_args, "sft")
    rows = [[ex["_prompt"][-1]["content"], ex["_response"][0]["content"]] for ex in merged]
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(rows, fh, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
