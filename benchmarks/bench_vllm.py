"""vLLM's CPU build against transformers on CPU, through the code the pipeline runs:

- **agreement**: greedy answers of the generate stage's two generators (VllmGenerator, which drives
  vLLM in the vLLM environment, and TransformersGenerator) on the same prompts, float32: how many
  are token-identical, and where they differ, from which token on. The model is the tiny Llama
  with initializer range 0.2 (at the default 0.02 the random model writes ':' whatever it is
  asked, and the two engines agree trivially); the prompts are every text of the shipped sample,
  rendered by LLaMA-Factory's `default` template.
- **throughput**: generated tokens/s, greedy, every answer forced to its length (random weights
  never stop: vLLM ignore_eos + min_tokens, transformers min_new_tokens), at the tiny Llama's shape
  and at a larger shape that fits 2 cores (hidden 1024, 8 layers, 16 heads of 64, vocabulary
  32,000: ~130 M parameters), float32 and bfloat16. vLLM's engine start is reported apart.

Usage: python benchmarks/bench_vllm.py [--out benchmarks/results/vllm_cpu.md]
Needs the vLLM environment (`bash scripts/bootstrap.sh --vllm`; or $SDRRL_VLLM_PYTHON).
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
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugin"))

LARGER = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
              num_attention_heads=16, num_key_value_heads=16)


def agreement(model: str, n: int, new_tokens: int, batch: int) -> dict:
    from sdrrl.pipeline.generate import TransformersGenerator, VllmGenerator, render_prompts
    from sdrrl.tiny import sample_texts

    questions = list(dict.fromkeys(sample_texts()))[:n]
    prompts, stop = render_prompts(model, "default", questions)
    out = {}
    for name, gen in (("vllm", VllmGenerator(model, dtype="float32", max_new_tokens=new_tokens)),
                      ("transformers", TransformersGenerator(model, device="cpu", dtype="float32",
                                                             max_new_tokens=new_tokens))):
        gen.stop_token_ids = stop
        gen.generate(prompts[:1])  # engine start / model load, not timed
        start = time.perf_counter()
        out[name] = [a for k in range(0, len(prompts), batch) for a in gen.generate(prompts[k:k + batch])]
        out[name + "_s"] = round(time.perf_counter() - start, 2)
        gen.release()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    same = sum(a == b for a, b in zip(out["vllm"], out["transformers"]))
    first_diff = []
    for a, b in zip(out["vllm"], out["transformers"]):
        if a != b:
            ta, tb = tok(a, add_special_tokens=False)["input_ids"], tok(b, add_special_tokens=False)["input_ids"]
            first_diff.append(next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb))))
    return {"prompts": len(prompts), "new_tokens": new_tokens, "identical": same,
            "distinct_answers": len(set(out["transformers"])), "first_differing_token": first_diff,
            "seconds": {"vllm": out["vllm_s"], "transformers": out["transformers_s"]}}


def larger_model(tmp: Path, tokenizer_from: Path) -> Path:
    """Random weights at the LARGER shape, saved with the tiny tokenizer (prompts are token ids)."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(**LARGER, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    LlamaForCausalLM(cfg).save_pretrained(tmp, safe_serialization=True)
    for f in tokenizer_from.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, tmp / f.name)
    return tmp


def throughput(model: str, vocab: int, rows: int, prompt_tokens: int, new_tokens: int, batch: int,
               dtype: str) -> dict:
    """tokens/s of both engines on the same random prompts, forced lengths, same batches."""
    import random

    import torch
    from transformers import AutoModelForCausalLM

    from sdrrl.pipeline.vllm_engine import VllmProcess

    rng = random.Random(0)
    prompts = [[rng.randrange(4, vocab) for _ in range(prompt_tokens)] for _ in range(rows)]
    batches = [prompts[k:k + batch] for k in range(0, rows, batch)]
    res = {"rows": rows, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "batch": batch, "dtype": dtype}

    engine = VllmProcess(model, dtype=dtype)
    start = time.perf_counter()
    engine.start()
    res["vllm_engine_start_s"] = round(time.perf_counter() - start, 1)
    params = {"temperature": 0.0, "max_tokens": new_tokens, "min_tokens": new_tokens, "ignore_eos": True,
              "detokenize": False}
    start = time.perf_counter()
    tokens = sum(len(o["token_ids"]) for b in batches for o in engine.generate(b, [params] * len(b)))
    secs = time.perf_counter() - start
    engine.close()
    res["vllm_tokens_per_s"] = round(tokens / secs, 1)

    lm = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).eval()
    with torch.inference_mode():
        lm.generate(input_ids=torch.tensor(batches[0][:1]), max_new_tokens=2, min_new_tokens=2, do_sample=False,
                    pad_token_id=3)  # warm-up
        start = time.perf_counter()
        tokens = 0
        for b in batches:
            out = lm.generate(input_ids=torch.tensor(b), attention_mask=torch.ones(len(b), prompt_tokens, dtype=torch.long),
                              max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=3)
            tokens += (out.shape[1] - prompt_tokens) * len(b)
        secs = time.perf_counter() - start
    res["transformers_tokens_per_s"] = round(tokens / secs, 1)
    res["speedup"] = round(res["vllm_tokens_per_s"] / res["transformers_tokens_per_s"], 2)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the Markdown report here (e.g. benchmarks/results/vllm_cpu.md)")
    args = ap.parse_args()
    import torch
    import transformers

    from sdrrl.pipeline.vllm_engine import vllm_python
    from sdrrl.tiny import tiny_llama

    t0 = time.perf_counter()
    cache = Path(os.environ.get("SDRRL_TEST_CACHE", REPO / ".cache")) / "tiny-models"
    spread = tiny_llama(cache, settings={"initializer_range": 0.2})
    agree = agreement(str(spread), n=200, new_tokens=64, batch=16)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        big = larger_model(Path(tmp), spread)
        for name, model, vocab, rows, prompt, new, batch in (("tiny", spread, 1536, 64, 32, 64, 16),
                                                             ("larger (~130 M)", big, LARGER["vocab_size"], 32, 64, 64, 16)):
            for dtype in ("float32", "bfloat16"):
                runs.append({"shape": name, **throughput(str(model), vocab, rows, prompt, new, batch, dtype)})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    python = Path(vllm_python())
    shown = str(python.relative_to(REPO)) if python.is_relative_to(REPO) else str(python)
    doc = {"agreement": agree, "throughput": runs, "vllm_python": shown, "torch": torch.__version__,
           "transformers": transformers.__version__, "cpu": platform.processor() or platform.machine(),
           "cores": os.cpu_count(), "wall_s": round(time.perf_counter() - t0, 1),
           "load": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    md = markdown(doc)
    print(md)
    if args.out:
        Path(args.out).write_text(md, encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


def markdown(doc: dict) -> str:
    a = doc["agreement"]
    lines = [
        "# vLLM (CPU build) against transformers on CPU",
        "",
        f"Command: `python benchmarks/bench_vllm.py --out benchmarks/results/vllm_cpu.md` ({time.strftime('%Y-%m-%d')}, "
        f"{doc['cores']} cores, {doc['cpu']}; main environment torch {doc['torch']}, transformers "
        f"{doc['transformers']}; vLLM from {doc['vllm_python']}; whole run {doc['wall_s']} s).",
        "",
        "## Greedy answers: token-identical?",
        "",
        f"The generate stage's two generators on {a['prompts']} prompts (every text of the shipped sample as a "
        f"question, LLaMA-Factory's `default` template), {a['new_tokens']} new tokens, float32, batches of 16, "
        f"tiny Llama with initializer range 0.2 ({a['distinct_answers']} distinct answers):",
        "",
        f"- **{a['identical']} of {a['prompts']} answers identical** "
        f"({100 * a['identical'] / a['prompts']:.1f}%)"
        + (f"; the others first differ at tokens {sorted(a['first_differing_token'])}." if a["first_differing_token"]
           else "."),
        f"- time for all prompts after start-up: vLLM {a['seconds']['vllm']} s, transformers "
        f"{a['seconds']['transformers']} s.",
        "",
        "## Throughput (generated tokens/s, forced lengths)",
        "",
        "| shape | dtype | rows x (prompt + new) tokens, batch | vLLM tokens/s | transformers tokens/s | vLLM / transformers | vLLM engine start |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["throughput"]:
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['rows']} x ({r['prompt_tokens']} + {r['new_tokens']}), "
                     f"{r['batch']} | {r['vllm_tokens_per_s']} | {r['transformers_tokens_per_s']} | {r['speedup']}x | "
                     f"{r['vllm_engine_start_s']} s |")
    lines += ["", "Random weights never emit end-of-sequence: every answer is forced to its length on both "
              "engines. vLLM runs eager (no torch.compile on CPU) in its worker process, driven over a pipe as "
              "the pipeline drives it; its KV cache is `VLLM_CPU_KVCACHE_SPACE` = "
              f"{os.environ.get('VLLM_CPU_KVCACHE_SPACE')} GiB. transformers: `generate` on the same batches "
              "(no padding: equal prompt lengths). "
              f"Load average while it ran: {doc.get('load', 'n/a')} (the machine is shared: absolute rates move "
              "with it, the ratios less).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
