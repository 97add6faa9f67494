"""``sdrrl generate``: self-distillation responses G = {(x, M(x))} into WORK/generate/responses.jsonl."""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, add_preflight, load_config, preflight, wait_arg

FIELDS = {"input": "input", "model": "generate.model", "backend": "generate.backend",
          "template": "generate.template", "max_new_tokens": "generate.max_new_tokens",
          "batch_size": "generate.batch_size", "device": "generate.device", "max_rows": "max_rows"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_preflight(p)
    p.add_argument("--input", help="D: alpaca-style JSON Lines, JSON array, Parquet, datasets folder or hub id "
                                   "(default: the config's input, else the shipped sample)")
    p.add_argument("--max-rows", type=int, help="use only the first N rows of D")
    p.add_argument("--model", help="generator model M (path or hub id)")
    p.add_argument("--backend", choices=("transformers", "vllm"))
    p.add_argument("--template", help="LLaMA-Factory template name (the one the recipe trains with)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--prompts-only", action="store_true",
                   help="only render prompts into WORK/generate/prompts.jsonl (for a vLLM environment "
                        "without LLaMA-Factory)")


def run(args: argparse.Namespace) -> int:
    from sdrrl import layout
    from sdrrl.pipeline import lock, workdir
    from sdrrl.pipeline.cache import Cache
    from sdrrl.pipeline.generate import run_generate, write_prompts

    cfg = load_config(args, FIELDS)
    work = cfg.work
    workdir.check_shard(args.num_shards, args.shard_index)
    needs_input = bool(args.input or args.max_rows is not None or not layout.source_path(work).exists())
    preflight(args, cfg, "generate", needs_input)
    with lock.hold_work(work, args.num_shards, args.shard_index, wait_arg(args)):
        with lock.shared_work(work, "preparing D"):  # shards share D and the prompts
            if needs_input:
                workdir.prepare_source(work, cfg.input, cfg.on_bad_row, cfg.max_rows)
            if args.prompts_only:
                write_prompts(work, cfg.generate)
                return 0
        with Cache(cfg.cache_path) as cache:
            run_generate(work, cfg, cache, num_shards=args.num_shards, shard_index=args.shard_index)
    return 0
