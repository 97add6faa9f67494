"""Translate-stage throughput on the tiny NLLB (and the tiny Llama self-translating), in one run:

- sentences/s of the whole translate stage (read D_synth, segment, cache lookups, model calls,
  one cache transaction per batch, reassemble, atomic write) through each backend;
- the bare engine on exactly the same segments in the same length-sorted batches (tokenize,
  ``model.generate`` / ``translate_batch``, decode), so the stage's own overhead shows;
- length-bucketed vs arrival-order batching through the stage.

Usage: .venv/bin/python benchmarks/bench_translate.py [--rows 120] [--hf-rows 40] [--max-length 64]
Writes a Markdown table to stdout (and to --out if given). Each timing is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugin"))

from sdrrl import layout  # noqa: E402
from sdrrl.io import read_jsonl, write_jsonl  # noqa: E402
from sdrrl.pipeline import config, segment  # noqa: E402
from sdrrl.pipeline.batches import plan as plan_batches  # noqa: E402
from sdrrl.pipeline.cache import Cache  # noqa: E402
from sdrrl.pipeline.translate import (  # noqa: E402
    CTranslate2Translator,
    LlmTranslator,
    TransformersTranslator,
    run_translate,
)

SAMPLES = REPO / "plugin" / "sdrrl" / "data" / "sample"


def synth_rows(n: int) -> list[dict]:
    """n D_synth rows from the shipped sample, texts varied in length (1-4 answers joined)."""
    base = list(read_jsonl(SAMPLES / "instructions_eng.jsonl"))
    rows = []
    for i in range(n):
        r = base[i % len(base)]
        k = 1 + (i * 7) % 4
        y = " ".join(base[(i + j) % len(base)]["output"].replace("\n", " ") for j in range(k))
        rows.append({"id": str(i), "from": "D", "x": f"{layout.question(r)} (variant {i})", "y": y, "y_hat": ""})
    return rows


def stage_seconds(translator, rows, tmp: Path, by_length: bool, max_length: int, batch_size: int) -> tuple[float, int]:
    work = Path(tempfile.mkdtemp(dir=tmp))
    write_jsonl(layout.synth_path(work), rows)
    cfg = config.from_dict({"work_dir": str(work), "target_langs": ["ces"], "progress_every_s": 1e9,
                            "translate": {"model": translator.model, "max_length": max_length,
                                          "batch_size": batch_size, "length_bucketing": by_length}})
    start = time.perf_counter()
    with Cache(cfg.cache_path) as cache:
        stats = run_translate(work, cfg, "eng", "ces", cache, translator)
    return time.perf_counter() - start, stats["unique_segments"]


def segments_of(rows, translator) -> list[str]:
    segs = []
    for r in rows:
        for f in ("x", "y"):
            segs.extend(segment.split(r[f], 200, translator.count_tokens).segments)
    return list(dict.fromkeys(segs))


def bare_seconds(translator, segs: list[str], batch_size: int) -> float:
    """The engine alone on the same length-sorted batches the stage forms (no cache, no files)."""
    batches = plan_batches(segs, translator.token_lengths(segs), batch_size, True)
    start = time.perf_counter()
    for b in batches:
        translator._translate(b, "eng_Latn", "ces_Latn")
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=120, help="D_synth rows for the CTranslate2 runs")
    ap.add_argument("--hf-rows", type=int, default=30, help="rows for the (much slower) transformers runs")
    ap.add_argument("--llm-rows", type=int, default=30, help="rows for self-translation (tiny Llama, greedy)")
    ap.add_argument("--only", help="comma list of backends to run: ctranslate2,transformers,llm (default all)")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch / CTranslate2 intra-op threads")
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args()

    import torch
    from sdrrl.tiny import build_all

    torch.set_num_threads(args.threads)
    models = build_all(Path(os.environ.get("SDRRL_TEST_CACHE", REPO / ".cache")) / "tiny-models")
    tmp = Path(tempfile.mkdtemp(prefix="bench-translate-"))
    settings = dict(beam_size=4, max_length=args.max_length)
    engines = {
        "ctranslate2": (CTranslate2Translator(str(models.nllb), device="cpu", convert_cache=tmp,
                                              intra_threads=args.threads, **settings), args.rows),
        "transformers": (TransformersTranslator(str(models.nllb), device="cpu", **settings), args.hf_rows),
        # self-translation: max_length new tokens per segment (the random Llama never stops early)
        "llm (tiny Llama)": (LlmTranslator(str(models.llama), device="cpu", max_new_tokens=args.max_length),
                             args.llm_rows),
    }
    if args.only:
        keep = {k.strip() for k in args.only.split(",")}
        engines = {k: v for k, v in engines.items() if k.split()[0] in keep}
    lines = []
    results = {}
    for name, (tr, n) in engines.items():
        rows = synth_rows(n)
        tr.translate(["Warm up the engine."], "eng_Latn", "ces_Latn")  # load + convert outside timing
        segs = segments_of(rows, tr)
        # interleaved repeats, best of each: the machine is shared, so load spikes hit all three alike
        times: dict[str, list[float]] = {"bare": [], "bucketed": [], "arrival": []}
        for _ in range(args.repeat):
            times["bare"].append(bare_seconds(tr, segs, args.batch_size))
            times["bucketed"].append(stage_seconds(tr, rows, tmp, True, args.max_length, args.batch_size)[0])
            times["arrival"].append(stage_seconds(tr, rows, tmp, False, args.max_length, args.batch_size)[0])
        bare, bucketed, arrival = (min(times[k]) for k in ("bare", "bucketed", "arrival"))
        results[name] = dict(segments=len(segs), bare=bare, bucketed=bucketed, arrival=arrival)
        lines.append(f"| {name} | {len(segs)} | {len(segs) / bare:.1f} | {len(segs) / bucketed:.1f} | "
                     f"{100 * (bucketed - bare) / bare:+.1f}% | {len(segs) / arrival:.1f} | "
                     f"{arrival / bucketed:.2f}x |")
    header = [
        f"Tiny NLLB (M2M100, d_model 64), CPU ({platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s)), beam 4, max_length {args.max_length}, batch {args.batch_size} segments, "
        f"best of {args.repeat} interleaved runs; fresh cache for every stage run.",
        "",
        "| backend | segments | bare engine seg/s | stage (bucketed) seg/s | stage overhead vs bare | "
        "stage (arrival order) seg/s | bucketing speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    table = "\n".join(header + lines)
    print(table)
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
