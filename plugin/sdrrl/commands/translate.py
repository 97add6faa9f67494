"""``sdrrl translate``: T(x), T(y), T(y_hat) with NLLB into WORK/translate/{src}-{tgt}.jsonl."""

from __future__ import annotations

import argparse

from sdrrl.pipeline.cliargs import add_common, add_preflight, add_langs, load_config, preflight, wait_arg

FIELDS = {"model": "translate.model", "backend": "translate.backend", "beam_size": "translate.beam_size",
          "max_length": "translate.max_length", "batch_size": "translate.batch_size",
          "device": "translate.device", "ct2_model_dir": "translate.ct2_model_dir",
          "llm_model": "translate.llm_model"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_preflight(p)
    add_langs(p)
    p.add_argument("--model", help="NLLB model (path or hub id; paper: facebook/nllb-200-3.3B)")
    p.add_argument("--backend", choices=("transformers", "ctranslate2", "llm"),
                   help="llm = self-translation with an instruction-following LLM (see --llm-model)")
    p.add_argument("--beam-size", type=int, help="paper: 4")
    p.add_argument("--max-length", type=int, help="max target tokens (NLLB default 200)")
    p.add_argument("--batch-size", type=int, help="segments per model call")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--ct2-model-dir", help="an already converted CTranslate2 model")
    p.add_argument("--llm-model", help="with --backend llm: the translating LLM (default: generate.model, M_theta)")


def run(args: argparse.Namespace) -> int:
    from sdrrl.pipeline import lock, workdir
    from sdrrl.pipeline.cache import Cache
    from sdrrl.pipeline.translate import make_translator, run_translate

    cfg = load_config(args, FIELDS)
    workdir.check_shard(args.num_shards, args.shard_index)
    preflight(args, cfg, "translate")
    with lock.hold_work(cfg.work, args.num_shards, args.shard_index, wait_arg(args)):
        translator = make_translator(cfg.translate, cache_root=cfg.cache_path.parent, generate=cfg.generate,
                                     seed=cfg.sample.seed)
        with Cache(cfg.cache_path) as cache:
            for tgt in cfg.target_langs:
                run_translate(cfg.work, cfg, cfg.source_lang, tgt, cache, translator,
                              num_shards=args.num_shards, shard_index=args.shard_index)
    return 0
