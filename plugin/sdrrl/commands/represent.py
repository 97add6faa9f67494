"""``sdrrl represent``: the representation analysis of the paper's Figure 2 (section 4.4).

Feeds N parallel instructions (FLORES dev by default, or --parallel FILE) in the source and the
target language through each checkpoint's chat template, takes the last layer's hidden state of
the last token, and writes ``OUT/representation.png`` (t-SNE, one panel per model) and
``OUT/representation.json`` (mean parallel / random cosine, top-1 retrieval per model).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", required=True, metavar="PATH",
                   help="a checkpoint directory (repeat for several: base model, SDRRL model, ...)")
    p.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="panel name for the --model of the same position (default: the checkpoint's "
                        "<model>/<method>/<pair> under saves/, else its folder name)")
    p.add_argument("--src", default="eng", help="source language, ISO 639-3 (default: eng)")
    p.add_argument("--tgt", required=True, help="target language, ISO 639-3 (e.g. ind)")
    p.add_argument("--parallel", default=None, metavar="FILE",
                   help="parallel sentences: .tsv (source<TAB>target, optional header 'SRC<TAB>TGT') or "
                        ".jsonl ({\"SRC\": ..., \"TGT\": ...}); default: FLORES dev (the hub, or "
                        "$SDRRL_EVAL_DATA)")
    p.add_argument("-n", type=int, default=100, help="sentence pairs to use, the first N (default: 100)")
    p.add_argument("--template", default="default",
                   help="LLaMA-Factory chat template, as the recipes train with (default: default)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, ...")
    p.add_argument("--seed", type=int, default=0, help="t-SNE seed (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/representation.png and .json")


def run(args: argparse.Namespace) -> int:
    from sdrrl.errors import SdrrlError
    from sdrrl.representation import JSON_NAME, PLOT_NAME, analyse

    if args.batch_size < 1:
        raise SdrrlError(f"--batch-size {args.batch_size} must be at least 1.", "use --batch-size 16 (the default).")
    analyse(args.model, args.src, args.tgt, args.out, n=args.n, parallel=args.parallel, names=args.name,
            template=args.template, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
            seed=args.seed)
    print(f"sdrrl represent: wrote {args.out}/{PLOT_NAME} and {args.out}/{JSON_NAME}")
    return 0
