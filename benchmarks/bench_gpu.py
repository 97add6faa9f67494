"""GPU throughput at the paper's real shapes, and the GPU-hours of the paper-scale data build.

    python benchmarks/bench_gpu.py            # on one CUDA GPU; writes benchmarks/results/gpu.{md,json}
    python benchmarks/bench_gpu.py --smoke    # the same code at tiny shapes on CPU (< 1 min), to a temp dir

Needs torch and transformers only, and no downloads: every model is built from a config written
below, with random weights, directly on the GPU in bf16 (fp16 where the GPU has no bf16); inputs are
random token ids. Optional engines are measured when importable and listed as missing otherwise:
vLLM (generation; in the vLLM environment, .venv-vllm or $SDRRL_VLLM_PYTHON, as the pipeline runs
it), CTranslate2 (translation, float16 and int8_float16), unbabel-comet (CometKiwi's layer mix and
estimator on top of the encoder; without it the bare encoder).

Lengths: prompt, answer and segment lengths are drawn from benchmarks/data/alpaca_lengths.json
(made by benchmarks/make_alpaca_lengths.py; provenance and token estimate inside). Random weights
never emit end-of-sequence, so every output length is forced to the table's: generation decodes
exactly the answer's length (min = max new tokens), translation exactly the segment's length.

Measured, each in one run: generation tokens/s (transformers batched; vLLM), translation
segments/s at beam 4 (transformers; CTranslate2 float16 / int8_float16, conversion time reported
apart from the rate), QE segments/s, the peak GPU memory of each, and model-building times.
Projected: GPU-hours of the paper-scale build (52,002 rows, 14 targets) per backend.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "benchmarks" / "data" / "alpaca_lengths.json"
RESULTS = REPO / "benchmarks" / "results"

PAPER_ROWS = 52002  # Stanford Alpaca (appendix A)
PAPER_TARGETS = 14  # section 4.1
P_GENERATED = 0.5  # D_synth takes y_hat for half the rows; only those y_hat are translated
TEMPLATE_TOKENS = 8  # the "default" template around the question ("Human: ... </s>\nAssistant:")

# The real shapes. LLaMA-2-7B: the generator M_theta and the trained model. NLLB-200-3.3B: M2M100
# with d_model 2048, 24+24 layers, 16 heads, FFN 8192, vocabulary 256,206. CometKiwi's encoder:
# InfoXLM-large / XLM-R large (24 layers, 1024 hidden, 16 heads, FFN 4096, vocabulary 250,002).
FULL = {
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
    "nllb": dict(vocab_size=256206, d_model=2048, encoder_layers=24, decoder_layers=24,
                 encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=8192,
                 decoder_ffn_dim=8192, max_position_embeddings=1024, scale_embedding=True),
    "xlmr": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                 intermediate_size=4096, max_position_embeddings=514),
    # workload: rows/segments measured, batch sizes, length caps (the pipeline's defaults)
    "gen_rows": 192, "gen_batch": 64, "max_new_tokens": 512, "max_prompt": 1024,
    "mt_segments": 384, "mt_batch": 32, "beam": 4, "max_length": 200,
    "qe_fields": 1024, "qe_batch": 64, "qe_max_tokens": 512,
}
SMOKE = {
    # head size 32: the smallest vLLM's CPU attention runs, so the smoke run measures vLLM too
    "llama": dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256),
    "nllb": dict(vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                 max_position_embeddings=256, scale_embedding=True),
    "xlmr": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=258),
    "gen_rows": 12, "gen_batch": 6, "max_new_tokens": 12, "max_prompt": 64,
    "mt_segments": 16, "mt_batch": 8, "beam": 4, "max_length": 12,
    "qe_fields": 16, "qe_batch": 8, "qe_max_tokens": 64,
}
OPTIONAL = {"vllm": "vllm", "ctranslate2": "ctranslate2", "unbabel-comet": "comet"}


# -- inputs from the length table ----------------------------------------------------------------

def load_table() -> dict:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def field_stats(table: dict, max_new_tokens: int) -> dict:
    """Per-row means the projection needs (y stands in for y_hat: see the table's provenance)."""
    rows = table["rows"]
    return {
        "x_segments": statistics.mean(len(r[2]) for r in rows),
        "y_segments": statistics.mean(len(r[3]) for r in rows),
        "answer_tokens": statistics.mean(min(r[1], max_new_tokens) for r in rows),
        "unique_fraction": table["segments_unique"] / table["segments_total"],
        "segment_tokens": statistics.mean(t for r in rows for t in r[2] + r[3]),
    }


def generation_inputs(table: dict, shape: dict, rng: random.Random) -> list[tuple[int, int]]:
    """(prompt tokens, answer tokens) for gen_rows rows drawn from the table."""
    rows = [rng.choice(table["rows"]) for _ in range(shape["gen_rows"])]
    return [(min(r[0] + TEMPLATE_TOKENS, shape["max_prompt"]), max(1, min(r[1], shape["max_new_tokens"])))
            for r in rows]


def translation_inputs(table: dict, shape: dict, rng: random.Random) -> list[tuple[int, int]]:
    """(source tokens, forced target tokens) of mt_segments segments, as the stage sends them:
    x's and y's segments of each drawn row, and y_hat's (y's lengths) for half of the rows. Source:
    segment + language code + </s>; target: the segment's length (a 1:1 length ratio) + code."""
    segs: list[int] = []
    while len(segs) < shape["mt_segments"]:
        r = rng.choice(table["rows"])
        segs += r[2] + r[3] + (r[3] if rng.random() < P_GENERATED else [])
    cap = shape["max_length"] - 1
    return [(min(s, cap) + 2, min(s, cap - 1) + 1) for s in segs[:shape["mt_segments"]]]


def qe_inputs(table: dict, shape: dict, rng: random.Random) -> list[int]:
    """Tokens of CometKiwi inputs: <s> translation </s></s> source </s> per field (a field's
    translation taken as long as its source), cut at the encoder's 512."""
    out = []
    for _ in range(shape["qe_fields"]):
        r = rng.choice(table["rows"])
        n = r[0] if rng.random() < 0.4 else r[1]  # x for 2 of every 5 fields (x, y, y_hat of half)
        out.append(min(2 * n + 4, shape["qe_max_tokens"]))
    return out


def batches(items: list, size: int, key) -> list[list]:
    """Length-sorted batches, as the stages form them."""
    items = sorted(items, key=key)
    return [items[k:k + size] for k in range(0, len(items), size)]


# -- models ---------------------------------------------------------------------------------------

class Gpu:
    """Device, dtype, synchronisation and peak memory (None on CPU)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = device
        self.cuda = device.startswith("cuda")
        # bf16 on CPU too: the smoke run goes through the same dtype paths as the GPU run
        self.dtype = torch.float16 if self.cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            self.sync()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        self.sync()
        return round(self.torch.cuda.max_memory_allocated() / 2**30, 2)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()


def build_model(kind: str, shape: dict, gpu: Gpu):
    """A random-weight model of ``kind`` built in place on the device in the benchmark dtype
    (default dtype and device set while the modules are made: no float32 copy, no CPU init)."""
    import torch
    import transformers

    if kind == "llama":
        cfg = transformers.LlamaConfig(**shape["llama"], pad_token_id=0, bos_token_id=1, eos_token_id=2)
        cls = transformers.LlamaForCausalLM
    elif kind == "nllb":
        cfg = transformers.M2M100Config(**shape["nllb"], pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                        decoder_start_token_id=2)
        cls = transformers.M2M100ForConditionalGeneration
    else:
        cfg = transformers.XLMRobertaConfig(**shape["xlmr"], pad_token_id=1, bos_token_id=0, eos_token_id=2)
        cls = transformers.XLMRobertaModel
    old = torch.get_default_dtype()
    torch.set_default_dtype(gpu.dtype)
    try:
        with torch.device(gpu.device):
            model = cls(cfg, add_pooling_layer=False) if kind == "xlmr" else cls(cfg)
    finally:
        torch.set_default_dtype(old)
    return model.eval()


def _ids(torch, lengths: list[int], vocab: int, gpu: Gpu, left_pad: bool, pad: int):
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for i, n in enumerate(lengths):
        row = torch.randint(3, vocab, (n,))
        if left_pad:
            ids[i, width - n:], mask[i, width - n:] = row, 1
        else:
            ids[i, :n], mask[i, :n] = row, 1
    return ids.to(gpu.device), mask.to(gpu.device)


# -- measurements -------------------------------------------------------------------------------

def measure_generation_hf(model, work: list[tuple[int, int]], shape: dict, gpu: Gpu) -> dict:
    """Batched greedy generation, left-padded, batches sorted by prompt length (as the generate
    stage forms them); each batch decodes exactly its longest answer, the shorter answers' rows
    going on as padding (what a batch does when those rows have hit end-of-sequence)."""
    torch = gpu.torch
    vocab = model.config.vocab_size
    plan = batches(work, shape["gen_batch"], key=lambda w: w[0])
    with torch.inference_mode():  # warm-up: kernels, allocator
        ids, mask = _ids(torch, [8, 8], vocab, gpu, True, 0)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=2, min_new_tokens=2, do_sample=False,
                       pad_token_id=0)
    gpu.reset_peak()
    useful = decoded = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for b in plan:
            n = max(a for _, a in b)
            ids, mask = _ids(torch, [p for p, _ in b], vocab, gpu, True, 0)
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, num_beams=1, pad_token_id=0)
            assert out.shape[1] - ids.shape[1] == n, "forced output length not reached"
            useful += sum(a for _, a in b)
            decoded += n * len(b)
    gpu.sync()
    secs = time.perf_counter() - start
    return {"rows": len(work), "batch": shape["gen_batch"], "seconds": round(secs, 2),
            "tokens": useful, "tokens_per_s": round(useful / secs, 1),
            "decoded_incl_padding": decoded, "peak_gib": gpu.peak_gib()}


def measure_translation_hf(model, work: list[tuple[int, int]], shape: dict, gpu: Gpu) -> dict:
    """Beam search (beam 4) over length-sorted batches of segments; each batch decodes exactly its
    longest forced target length (as a batch runs until its longest translation ends)."""
    torch = gpu.torch
    vocab = model.config.vocab_size
    lang = vocab - 1  # a target-language code token (forced BOS)
    plan = batches(work, shape["mt_batch"], key=lambda w: w[0])
    kw = dict(num_beams=shape["beam"], do_sample=False, forced_bos_token_id=lang, length_penalty=1.0,
              pad_token_id=1)
    with torch.inference_mode():
        ids, mask = _ids(torch, [6, 6], vocab, gpu, False, 1)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, min_new_tokens=3, **kw)
    gpu.reset_peak()
    start = time.perf_counter()
    with torch.inference_mode():
        for b in plan:
            n = max(t for _, t in b)
            ids, mask = _ids(torch, [s for s, _ in b], vocab, gpu, False, 1)
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, **kw)
    gpu.sync()
    secs = time.perf_counter() - start
    return {"segments": len(work), "batch": shape["mt_batch"], "beam": shape["beam"], "seconds": round(secs, 2),
            "segments_per_s": round(len(work) / secs, 2), "peak_gib": gpu.peak_gib()}


class _Vocabulary:
    """What CTranslate2's M2M100 loader reads from a tokenizer: the random model has none."""

    def __init__(self, size: int):
        self.bos_token, self.pad_token, self.eos_token, self.unk_token = "<s>", "<pad>", "</s>", "<unk>"
        self.unk_token_id = 3
        self.special_tokens_map: dict = {}
        self._vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"]
                                                  + [f"t{i}" for i in range(4, size)])}

    def get_vocab(self) -> dict:
        return self._vocab

    def convert_ids_to_tokens(self, i: int) -> str:
        return ["<s>", "<pad>", "</s>", "<unk>"][i] if i < 4 else f"t{i}"


def convert_ct2(model, out_dir: Path, gpu: Gpu) -> float:
    """Convert the in-memory random NLLB-shaped model to CTranslate2 (float16 weights); seconds."""
    import ctranslate2
    import torch

    vocab = _Vocabulary(model.config.vocab_size)
    cfg_dir = out_dir.parent / "hf-config"
    model.config.save_pretrained(cfg_dir)

    class _InMemory(ctranslate2.converters.TransformersConverter):
        def load_model(self, model_class, name, **kwargs):
            return model.to("cpu", torch.float16)

        def load_tokenizer(self, tokenizer_class, name, **kwargs):
            return vocab

    start = time.perf_counter()
    _InMemory(str(cfg_dir)).convert(str(out_dir), quantization="float16", force=True)
    return time.perf_counter() - start


def measure_translation_ct2(path: Path, vocab_size: int, compute_type: str, work: list[tuple[int, int]],
                            shape: dict, gpu: Gpu) -> dict:
    import ctranslate2

    engine = ctranslate2.Translator(str(path), device="cuda" if gpu.cuda else "cpu", compute_type=compute_type)
    rng = random.Random(1)
    tokens = [f"t{i}" for i in range(4, vocab_size)]
    lang = tokens[-1]
    plan = batches(work, shape["mt_batch"], key=lambda w: w[0])
    engine.translate_batch([["t5", "t6", "</s>"]], target_prefix=[[lang]], beam_size=shape["beam"],
                           max_decoding_length=3, min_decoding_length=3)
    gpu.reset_peak()  # CTranslate2 allocates outside torch: its memory is read from NVML below
    before = _nvml_used_gib(gpu)
    start = time.perf_counter()
    for b in plan:
        n = max(t for _, t in b)
        src = [[rng.choice(tokens) for _ in range(s - 1)] + ["</s>"] for s, _ in b]
        engine.translate_batch(src, target_prefix=[[lang]] * len(b), beam_size=shape["beam"],
                               length_penalty=1.0, max_decoding_length=n, min_decoding_length=n,
                               max_batch_size=len(b))
    secs = time.perf_counter() - start
    used = _nvml_used_gib(gpu)
    del engine
    return {"segments": len(work), "compute_type": compute_type, "seconds": round(secs, 2),
            "segments_per_s": round(len(work) / secs, 2),
            "peak_gib": used, "gpu_used_before_gib": before}


def _nvml_used_gib(gpu: Gpu) -> float | None:
    """Device memory in use (all allocators), for engines that do not allocate through torch."""
    if not gpu.cuda:
        return None
    free, total = gpu.torch.cuda.mem_get_info()
    return round((total - free) / 2**30, 2)


def measure_qe(encoder, work: list[int], shape: dict, gpu: Gpu, use_comet: bool) -> dict:
    """CometKiwi's forward: the encoder's every layer, COMET's layerwise attention (sparsemax mix),
    the first token's embedding, COMET's estimator (3072, 1024, Tanh) when unbabel-comet is
    importable; else the bare encoder."""
    torch = gpu.torch
    hidden = encoder.config.hidden_size
    head = None
    if use_comet:
        from comet.modules import FeedForward, LayerwiseAttention

        old = torch.get_default_dtype()
        torch.set_default_dtype(gpu.dtype)
        try:
            with torch.device(gpu.device):
                mix = LayerwiseAttention(num_layers=encoder.config.num_hidden_layers + 1,
                                         layer_transformation="sparsemax", dropout=0.1).eval()
                est = FeedForward(in_dim=hidden, hidden_sizes=[3072, 1024], activations="Tanh").eval()
        finally:
            torch.set_default_dtype(old)
        head = (mix, est)
    vocab = encoder.config.vocab_size
    plan = batches(work, shape["qe_batch"], key=lambda n: n)

    def forward(lengths):
        ids, mask = _ids(torch, lengths, vocab, gpu, False, 1)
        out = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=head is not None)
        if head is None:
            return out.last_hidden_state[:, 0]
        mix, est = head
        emb = mix(list(out.hidden_states), mask)
        return est(emb[:, 0, :].to(gpu.dtype)).view(-1)  # the mix weights stay float32

    with torch.inference_mode():
        forward([8, 8])
        gpu.reset_peak()
        start = time.perf_counter()
        for b in plan:
            forward(b)
        gpu.sync()
    secs = time.perf_counter() - start
    return {"fields": len(work), "batch": shape["qe_batch"], "seconds": round(secs, 2),
            "segments_per_s": round(len(work) / secs, 2), "peak_gib": gpu.peak_gib(),
            "head": "unbabel-comet LayerwiseAttention + FeedForward" if head else "bare encoder"}


def measure_generation_vllm(shape: dict, work: list[tuple[int, int]], tmp: Path) -> dict:
    """vLLM with random ("dummy") weights of the LLaMA-2-7B shape, prompts as token ids, every
    output forced to its length (ignore_eos, min_tokens = max_tokens). Runs in the vLLM
    environment (see :func:`vllm_in_its_environment`)."""
    import transformers
    import vllm

    cfg_dir = tmp / "llama-config"
    transformers.LlamaConfig(**shape["llama"], pad_token_id=0, bos_token_id=1, eos_token_id=2,
                             torch_dtype="bfloat16").save_pretrained(cfg_dir)
    start = time.perf_counter()
    llm = vllm.LLM(model=str(cfg_dir), load_format="dummy", skip_tokenizer_init=True, enforce_eager=True,
                   dtype="bfloat16", seed=0, gpu_memory_utilization=0.85)
    import torch

    cuda = torch.cuda.is_available()
    built = time.perf_counter() - start
    rng = random.Random(2)
    vocab = shape["llama"]["vocab_size"]
    prompts = [{"prompt_token_ids": [rng.randrange(3, vocab) for _ in range(p)]} for p, _ in work]
    params = [vllm.SamplingParams(temperature=0.0, max_tokens=a, min_tokens=a, ignore_eos=True, detokenize=False)
              for _, a in work]
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    secs = time.perf_counter() - start
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    peak = round(torch.cuda.mem_get_info()[1] / 2**30 - torch.cuda.mem_get_info()[0] / 2**30, 2) if cuda else None
    del llm
    return {"rows": len(work), "seconds": round(secs, 2), "tokens": tokens, "tokens_per_s": round(tokens / secs, 1),
            "engine_start_s": round(built, 1), "peak_gib": peak, "vllm": vllm.__version__,
            "note": "vLLM reserves gpu_memory_utilization (0.85) of the GPU for its KV cache up front" if cuda else
                    "vLLM's CPU build; KV cache VLLM_CPU_KVCACHE_SPACE GiB"}


def vllm_in_its_environment(shape: dict, work: list[tuple[int, int]]) -> dict:
    """:func:`measure_generation_vllm` in a process of the Python that hosts vLLM (this one when it
    imports vllm, else the vLLM environment: sdrrl.pipeline.vllm_engine.vllm_python)."""
    import subprocess

    from sdrrl.pipeline.vllm_engine import vllm_python

    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "vllm-part.json"
        req.write_text(json.dumps({"shape": shape, "work": work}), encoding="utf-8")
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
                   VLLM_LOGGING_LEVEL=os.environ.get("VLLM_LOGGING_LEVEL", "ERROR"))
        run = subprocess.run([vllm_python(), str(Path(__file__).resolve()), "--vllm-part", str(req)], env=env,
                             capture_output=True, text=True, timeout=900)
        result = req.with_suffix(".out.json")
        if run.returncode != 0 or not result.is_file():
            lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
            raise RuntimeError(f"exit {run.returncode}: {lines[-1] if lines else 'no output'}")
        return json.loads(result.read_text(encoding="utf-8"))


# -- projection -----------------------------------------------------------------------------------

def project(stats: dict, res: dict) -> dict:
    """GPU-hours of the paper-scale build per backend, from the measured rates."""
    rows, tgts = PAPER_ROWS, PAPER_TARGETS
    segs_per_target = rows * (stats["x_segments"] + stats["y_segments"] + P_GENERATED * stats["y_segments"])
    unique_per_target = segs_per_target * stats["unique_fraction"]
    qe_per_target = rows * (2 + P_GENERATED)  # x, y and (for half the rows) y_hat, scored whole
    gen_tokens = rows * stats["answer_tokens"]
    out = {"rows": rows, "targets": tgts, "generated_tokens": round(gen_tokens),
           "segments_per_target": round(segs_per_target),
           "segments_per_target_after_cache": round(unique_per_target),
           "qe_inputs_per_target": round(qe_per_target), "hours": {}}
    h = out["hours"]
    for name in ("generate_transformers", "generate_vllm"):
        if res.get(name, {}).get("tokens_per_s"):
            h[name] = round(gen_tokens / res[name]["tokens_per_s"] / 3600, 2)
    for name in ("translate_transformers", "translate_ct2_float16", "translate_ct2_int8_float16"):
        if res.get(name, {}).get("segments_per_s"):
            h[name] = round(tgts * unique_per_target / res[name]["segments_per_s"] / 3600, 2)
            h[name + "_without_cache"] = round(tgts * segs_per_target / res[name]["segments_per_s"] / 3600, 2)
    # self-translation (translate.backend: llm) with the 7B generator: a segment's length in new
    # tokens (1:1; more for scripts LLaMA's vocabulary covers poorly) at the measured generation rate
    # (prompt prefill not counted)
    for g in ("transformers", "vllm"):
        rate = res.get(f"generate_{g}", {}).get("tokens_per_s")
        if rate:
            h[f"translate_self_{g}"] = round(tgts * unique_per_target * stats["segment_tokens"] / rate / 3600, 2)
    if res.get("qe", {}).get("segments_per_s"):
        h["qe"] = round(tgts * qe_per_target / res["qe"]["segments_per_s"] / 3600, 2)
    totals = {}
    for g in ("generate_transformers", "generate_vllm"):
        for t in ("translate_transformers", "translate_ct2_float16", "translate_ct2_int8_float16",
                  "translate_self_transformers", "translate_self_vllm"):
            if g in h and t in h and "qe" in h:
                totals[f"{g.split('_', 1)[1]} + {t.split('_', 1)[1]}"] = round(h[g] + h[t] + h["qe"], 1)
    out["total_gpu_hours"] = totals
    return out


# -- report -----------------------------------------------------------------------------------------

def markdown(doc: dict) -> str:
    r, p = doc["results"], doc["projection"]
    lines = [
        "# GPU throughput at the paper's shapes" + (" (SMOKE: tiny shapes, CPU; not a measurement)" if doc["smoke"] else ""),
        "",
        f"Command: `{doc['command']}` ({doc['date']}, {doc['device']}, torch {doc['torch']}, "
        f"transformers {doc['transformers']}, dtype {doc['dtype']}; whole run {doc['wall_s']} s).",
        "",
        "Random weights, real shapes, built on the device (build seconds: "
        + ", ".join(f"{k} {v}" for k, v in doc["build_s"].items()) + "). Inputs are random token ids with "
        "Alpaca's lengths (benchmarks/data/alpaca_lengths.json). **Random weights never emit end-of-sequence, "
        "so every output length is forced** to the table's (answers for generation, a 1:1 source length for "
        "translation); a batch decodes its longest output.",
        "",
        "| what | engine | rate | seconds | peak GPU GiB |",
        "|---|---|---|---|---|",
    ]
    for key, label, unit in (("generate_transformers", "generation (LLaMA-2-7B shape, greedy)", "tokens_per_s"),
                             ("generate_vllm", "generation (LLaMA-2-7B shape, greedy)", "tokens_per_s"),
                             ("translate_transformers", "translation (NLLB-3.3B shape, beam 4)", "segments_per_s"),
                             ("translate_ct2_float16", "translation (NLLB-3.3B shape, beam 4)", "segments_per_s"),
                             ("translate_ct2_int8_float16", "translation (NLLB-3.3B shape, beam 4)", "segments_per_s"),
                             ("qe", "QE (CometKiwi encoder shape)", "segments_per_s")):
        v = r.get(key)
        if not v:
            continue
        if "skipped" in v:
            lines.append(f"| {label} | {key} | skipped: {v['skipped']} | | |")
            continue
        unit_name = "tokens/s" if unit == "tokens_per_s" else "segments/s"
        engine = key + (f" ({v['compute_type']})" if "compute_type" in v else "")
        peak = v.get("peak_gib")
        lines.append(f"| {label} | {engine} | {v[unit]} {unit_name} | {v['seconds']} | "
                     f"{'n/a (CPU)' if peak is None else peak} |")
    if "ct2_conversion_s" in r:
        lines += ["", f"CTranslate2 conversion of the random 3.3B checkpoint: {r['ct2_conversion_s']} s "
                      "(once per model; not in the rate)."]
    if r.get("translate_ct2_float16", {}).get("segments_per_s") and r.get("translate_transformers", {}).get("segments_per_s"):
        lines.append(f"CTranslate2 float16 vs transformers: "
                     f"{r['translate_ct2_float16']['segments_per_s'] / r['translate_transformers']['segments_per_s']:.1f}x "
                     "(goal: at least 5x).")
    lines += ["", f"Missing optional packages (not measured): {', '.join(doc['missing']) or 'none'}.", "",
              f"## Projection: the paper-scale build ({p['rows']:,} rows, {p['targets']} targets)", "",
              f"- generation: {p['generated_tokens']:,} answer tokens (once, all targets share it);",
              f"- translation per target: {p['segments_per_target']:,} segments, "
              f"{p['segments_per_target_after_cache']:,} after the cache (a segment met again is not "
              "translated again; the repeat rate is the table's 999 rows', a lower bound for 52,002);",
              f"- QE per target: {p['qe_inputs_per_target']:,} whole-field inputs (an upper bound: "
              "heuristics and LID reject some first);",
              "- `translate_self_*` (self-translation with the 7B, `translate.backend: llm`): each segment's "
              "length in new tokens at the measured generation rate; prompt prefill not counted, and scripts "
              "LLaMA's vocabulary covers poorly (Cyrillic, Japanese, Korean) take 2-3x the tokens.", "", "| part | GPU-hours |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in p["hours"].items()]
    lines += ["", "| backends (generate + translate, QE included) | GPU-hours, one GPU |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in p["total_gpu_hours"].items()]
    lines += ["", "The translate stage's own overhead (segmentation, cache, files) is not in these figures: "
                  "it was measured on CPU at under 10% of the engine's time (benchmarks/results/translate.md) "
                  "and shrinks on a GPU-sized model.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, same code (< 1 minute)")
    ap.add_argument("--out", help="folder for gpu.md and gpu.json (default: benchmarks/results; "
                                  "with --smoke a new temporary folder)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    ap.add_argument("--budget-s", type=float, default=450.0,
                    help="skip the parts not started when this many seconds have passed (default 450)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: gen,vllm,mt,ct2,qe")
    ap.add_argument("--vllm-part", help=argparse.SUPPRESS)  # internal: the vLLM part, in the vLLM environment
    args = ap.parse_args(argv)
    if args.vllm_part:
        req = json.loads(Path(args.vllm_part).read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory() as tmp:
            res = measure_generation_vllm(req["shape"], [tuple(w) for w in req["work"]], Path(tmp))
        Path(args.vllm_part).with_suffix(".out.json").write_text(json.dumps(res), encoding="utf-8")
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t_start = time.perf_counter()
    import torch
    import transformers

    device = args.device or ("cpu" if args.smoke else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; run it on a GPU machine, or use --smoke for the tiny CPU run.",
              file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="bench_gpu_smoke_")) if args.smoke
                                                 else RESULTS)
    shape = SMOKE if args.smoke else FULL
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    missing = [name for name, mod in OPTIONAL.items() if mod != "vllm" and importlib.util.find_spec(mod) is None]
    from sdrrl.pipeline.vllm_engine import python_problem

    if python_problem() is not None:  # vLLM runs in its own environment: measured there when it exists
        missing.append("vllm")
    gpu = Gpu(device)
    torch.manual_seed(0)
    table = load_table()
    rng = random.Random(0)
    gen_work = generation_inputs(table, shape, rng)
    mt_work = translation_inputs(table, shape, rng)
    qe_work = qe_inputs(table, shape, rng)
    res: dict = {}
    build_s: dict = {}

    stats = field_stats(table, FULL["max_new_tokens"])

    def write() -> dict:
        """gpu.json and gpu.md with what is measured so far (rewritten after every part, so a
        part that crashes the process leaves the others' figures)."""
        doc = {
            "smoke": args.smoke, "command": "python benchmarks/bench_gpu.py" + (" --smoke" if args.smoke else ""),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "device": torch.cuda.get_device_name(0) if gpu.cuda else f"CPU ({platform.processor() or platform.machine()})",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "dtype": str(gpu.dtype).split(".")[-1],
            "shapes": {k: shape[k] for k in ("llama", "nllb", "xlmr")},
            "workload": {k: v for k, v in shape.items() if k not in ("llama", "nllb", "xlmr")},
            "length_table": {"path": str(TABLE.relative_to(REPO)), "source": table["source"], **stats},
            "forced_lengths": "random weights never emit end-of-sequence: output lengths are forced to the table's",
            "missing": missing, "build_s": build_s, "results": res,
            "projection": project(stats, res),
            "wall_s": round(time.perf_counter() - t_start, 1),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gpu.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (out_dir / "gpu.md").write_text(markdown(doc), encoding="utf-8")
        return doc

    def over_budget() -> bool:
        return time.perf_counter() - t_start > args.budget_s

    def part(name: str, tag: str, needs: str | None = None) -> bool:
        if tag in skip:
            res[name] = {"skipped": "--skip"}
            return False
        if needs and needs in missing:
            res[name] = {"skipped": f"{needs} not importable"}
            return False
        if over_budget():
            res[name] = {"skipped": f"time budget ({args.budget_s:.0f} s) spent"}
            return False
        say(f"bench_gpu: {name} ...")
        return True

    def failed(name: str, err: Exception) -> None:
        """A part that fails (out of memory, an engine error) is recorded; the others still run."""
        res[name] = {"skipped": f"failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]}
        say(f"bench_gpu: {name} {res[name]['skipped']}")

    if part("generate_transformers", "gen"):
        try:
            t = time.perf_counter()
            model = build_model("llama", shape, gpu)
            gpu.sync()
            build_s["llama"] = round(time.perf_counter() - t, 1)
            res["generate_transformers"] = measure_generation_hf(model, gen_work, shape, gpu)
        except Exception as err:
            failed("generate_transformers", err)
        model = None
        gpu.free()
        write()
    if part("translate_transformers", "mt"):
        try:
            t = time.perf_counter()
            model = build_model("nllb", shape, gpu)
            gpu.sync()
            build_s["nllb"] = round(time.perf_counter() - t, 1)
            res["translate_transformers"] = measure_translation_hf(model, mt_work, shape, gpu)
        except Exception as err:
            failed("translate_transformers", err)
            model = None
            gpu.free()
        if model is not None and "ct2" not in skip and "ctranslate2" not in missing and not over_budget():
            with tempfile.TemporaryDirectory() as tmp:
                ct2_dir = Path(tmp) / "ct2"
                try:
                    res["ct2_conversion_s"] = round(convert_ct2(model, ct2_dir, gpu), 1)
                    vocab = model.config.vocab_size
                    del model
                    gpu.free()
                    types = ("float16", "int8_float16") if gpu.cuda else ("float32", "int8")
                    for ct, key in zip(types, ("translate_ct2_float16", "translate_ct2_int8_float16")):
                        if part(key, "ct2", needs="ctranslate2"):
                            res[key] = measure_translation_ct2(ct2_dir, vocab, ct, mt_work, shape, gpu)
                            gpu.free()
                except Exception as err:  # reported, not fatal
                    for key in ("translate_ct2_float16", "translate_ct2_int8_float16"):
                        res.setdefault(key, {"skipped": f"CTranslate2 failed: {type(err).__name__}: {err}"[:300]})
        else:
            reason = ("ctranslate2 not importable" if "ctranslate2" in missing else
                      "no transformers model to convert" if model is None else "--skip or time budget")
            res["translate_ct2_float16"] = res["translate_ct2_int8_float16"] = {"skipped": reason}
        model = None
        gpu.free()
        write()
    if part("qe", "qe"):
        try:
            t = time.perf_counter()
            encoder = build_model("xlmr", shape, gpu)
            gpu.sync()
            build_s["xlmr"] = round(time.perf_counter() - t, 1)
            res["qe"] = measure_qe(encoder, qe_work, shape, gpu, use_comet="unbabel-comet" not in missing)
        except Exception as err:
            failed("qe", err)
        encoder = None
        gpu.free()
        write()

    if "vllm" in missing or "vllm" in skip:
        part("generate_vllm", "vllm", needs="vllm")  # records why it is skipped
    elif time.perf_counter() - t_start > args.budget_s - 180:  # its engine alone takes a minute or two
        res["generate_vllm"] = {"skipped": f"time budget ({args.budget_s:.0f} s) nearly spent"}
    elif part("generate_vllm", "vllm", needs="vllm"):
        gpu.free()  # the vLLM process needs the GPU's memory
        try:
            res["generate_vllm"] = vllm_in_its_environment(shape, gen_work)
        except Exception as err:  # a vLLM that cannot start here is reported, not fatal
            res["generate_vllm"] = {"skipped": f"vLLM failed: {type(err).__name__}: {str(err)[:200]}"}
    doc = write()
    say(f"bench_gpu: done in {doc['wall_s']} s; wrote {out_dir / 'gpu.md'} and gpu.json.")
    return 0


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
