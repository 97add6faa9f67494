"""The generate stage: G = {(x, M(x))}, self-distillation responses (section 3.2.1).

The prompt is rendered by LLaMA-Factory's own template code (``template.encode_oneturn``) with the
template the recipes train with, so generation sees exactly the token ids that training will
put before the answer. The rendered prompts are also written to ``WORK/generate/prompts.jsonl``:
the vLLM backend runs in its own environment (vLLM cannot share one with unbabel-comet) where
LLaMA-Factory may be missing, and then reads the prompt ids from that file.

Two backends behind one interface, :class:`Generator`: :class:`TransformersGenerator` (batched,
left-padded, CPU or GPU) and :class:`VllmGenerator` (imports vllm only when used). Responses are
cached by (model, template, decoding settings, x), so a rerun never calls the model again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from sdrrl import hub, layout
from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.layout import ResponseRow, StageDeps
from sdrrl.pipeline import workdir
from sdrrl.pipeline.cache import Cache, ModelOutput
from sdrrl.pipeline.progress import Progress, say


def _model_error(model: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Cannot load the generator model {model!r} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).",
        hub.unavailable_fix(model, "generate.model (or --model)"))


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when a GPU is visible, else ``cpu``; any other value as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_causal_lm(model: str, device: str = "auto", dtype: str = "auto", on_error=_model_error):
    """(tokenizer, model in eval mode on its device, device) for a causal LM. ``dtype`` auto: bf16
    where the GPU has it (Ampere on), fp16 on V100/T4, fp32 on CPU. A model that cannot be loaded
    raises ``on_error(model, err)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:
        raise on_error(model, err) from None
    return tokenizer, lm.to(device).eval(), device


def load_template(model: str, template: str):
    """The model's tokenizer and LLaMA-Factory's template object (which may fix the tokenizer)."""
    try:
        from llamafactory.data.template import TEMPLATES, get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments
    except ImportError as err:
        raise SdrrlError(f"LLaMA-Factory is not importable here ({err}), so prompts cannot be rendered.",
                         "run `sdrrl generate --prompts-only` in the main environment first; the "
                         "vLLM environment then reads WORK/generate/prompts.jsonl.") from None
    from transformers import AutoTokenizer

    if template not in TEMPLATES:
        raise SdrrlError(f"Unknown LLaMA-Factory template {template!r}.",
                         "use the template name your recipe trains with (e.g. default, llama2, alpaca).")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise _model_error(model, err) from None
    return tokenizer, get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template))


def encode_prompts(tokenizer, tpl, questions: Sequence[str]) -> tuple[list[list[int]], list[int]]:
    """Token ids of each question as one user turn before an empty answer, and the stop token ids."""
    prompts = [tpl.encode_oneturn(tokenizer, [{"role": "user", "content": q},
                                              {"role": "assistant", "content": ""}])[0] for q in questions]
    stop = sorted(set(tpl.get_stop_token_ids(tokenizer)) | ({tokenizer.eos_token_id} - {None}))
    return prompts, stop


def render_prompts(model: str, template: str, questions: Sequence[str]) -> tuple[list[list[int]], list[int]]:
    """Token ids of each question's prompt as LLaMA-Factory renders it, and the stop token ids."""
    tokenizer, tpl = load_template(model, template)
    return encode_prompts(tokenizer, tpl, questions)


def line_break_tables(tokenizer):
    """Per vocabulary entry: decodes to whitespace only; holds a line break after some text; holds
    a line break. (A line break is one byte/character of its own in every tokenizer we use, so a
    token's own decoding shows it whatever the neighbours.)"""
    import torch

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return (torch.tensor([not t.strip() for t in texts]), torch.tensor(["\n" in t.lstrip() for t in texts]),
            torch.tensor(["\n" in t for t in texts]))


def line_break_stop(tables, batch_size: int):
    """A transformers stopping criterion that ends a row once its answer, leading whitespace
    stripped, holds a line break: the self-translation backend keeps only the first line, so
    decoding further is wasted. It looks at the last token only (tables from
    :func:`line_break_tables`), so it costs nothing per step; the cut itself is made on the
    decoded text, so the result equals decoding to the end and cutting."""
    import torch
    from transformers import StoppingCriteria

    blank, break_after_text, has_break = tables

    class _LineBreakStop(StoppingCriteria):
        def __init__(self):
            self.started = torch.zeros(batch_size, dtype=torch.bool)
            self.done = torch.zeros(batch_size, dtype=torch.bool)

        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1].cpu().clamp(0, len(blank) - 1)
            stop = torch.where(self.started, has_break[last], break_after_text[last])
            self.started |= ~blank[last]
            self.done |= stop
            return self.done.to(input_ids.device)

    return _LineBreakStop()


class Generator:
    """One causal LM behind one interface; ``calls`` counts model calls (batches)."""

    def __init__(self, model: str, max_new_tokens: int = 512, temperature: float = 0.0, top_p: float = 1.0):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.stop_token_ids: list[int] = []
        self.calls = 0

    def generate(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        if not prompts:
            return []
        out = self._generate([list(p) for p in prompts])
        self.calls += 1
        return [o.strip() for o in out]

    def _generate(self, prompts: list[list[int]]) -> list[str]:
        raise NotImplementedError

    def release(self) -> None:
        """Free the model's memory (the build calls it before loading the translator)."""


class TransformersGenerator(Generator):
    """HF ``generate`` on left-padded batches (greedy unless temperature > 0)."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", **kw):
        super().__init__(model, **kw)
        self.device, self.dtype = device, dtype
        self._model = None
        self._tokenizer = None
        # self-translation sets it: stop a row at its first line break (see line_break_stop)
        self.stop_at_line_break = False
        self._line_tables = None

    def _load(self):
        if self._model is None:
            import torch

            self._tokenizer, self._model, self.device = load_causal_lm(self.model, self.device, self.dtype)
            self._torch = torch
        return self._model

    def _generate(self, prompts: list[list[int]]) -> list[str]:
        model = self._load()
        torch, tok = self._torch, self._tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else (self.stop_token_ids or [0])[0]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        sampling = self.temperature > 0
        extra: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p} if sampling else {}
        if self.stop_at_line_break:
            from transformers import StoppingCriteriaList

            if self._line_tables is None:
                self._line_tables = line_break_tables(tok)
            extra["stopping_criteria"] = StoppingCriteriaList([line_break_stop(self._line_tables, len(prompts))])
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                 do_sample=sampling, num_beams=1, pad_token_id=pad,
                                 eos_token_id=self.stop_token_ids or None, **extra)
        return tok.batch_decode(out[:, width:], skip_special_tokens=True)

    def release(self) -> None:
        if self._model is None:
            return
        self._model = None  # the next generate() loads it again
        if str(self.device).startswith("cuda"):
            self._torch.cuda.empty_cache()


class VllmGenerator(Generator):
    """vLLM offline engine over prompt token ids. ``engine`` may be injected (tests, reuse)."""

    def __init__(self, model: str, tensor_parallel_size: int = 1, seed: int = 0, engine: Any = None,
                 sampling_params_cls: Any = None, **kw):
        super().__init__(model, **kw)
        self.tensor_parallel_size = tensor_parallel_size
        self.seed = seed
        self._engine = engine
        self._params_cls = sampling_params_cls

    def _load(self):
        if self._engine is None or self._params_cls is None:
            try:
                import vllm
            except ImportError:
                raise SdrrlError(
                    "generate.backend is 'vllm' but vllm is not installed in this environment.",
                    "install it in its own environment (pip install vllm, then pip install -e . --no-deps "
                    "plus pyyaml), run `sdrrl generate --prompts-only` here first, or use "
                    "generate.backend: transformers.") from None
            if self._engine is None:
                self._engine = vllm.LLM(model=self.model, tensor_parallel_size=self.tensor_parallel_size,
                                        seed=self.seed)
            if self._params_cls is None:
                self._params_cls = vllm.SamplingParams
        return self._engine

    def _generate(self, prompts: list[list[int]]) -> list[str]:
        engine = self._load()
        params = self._params_cls(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                                  stop_token_ids=list(self.stop_token_ids), seed=self.seed)
        outputs = engine.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


def make_generator(cfg, seed: int = 0) -> Generator:
    common = dict(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    if cfg.backend == "vllm":
        return VllmGenerator(cfg.model, tensor_parallel_size=cfg.vllm_tensor_parallel_size, seed=seed, **common)
    return TransformersGenerator(cfg.model, device=cfg.device, dtype=cfg.dtype, **common)


def dependencies(work: Path, gcfg) -> StageDeps:
    """What G depends on: D, and the responses of ``generate.model`` under these decoding settings
    (each response's cache key: the backend is not part of it)."""
    settings = {"template": gcfg.template, "max_new_tokens": gcfg.max_new_tokens,
                "temperature": gcfg.temperature, "top_p": gcfg.top_p}
    return layout.stage_deps("generate", work, ModelOutput("response", gcfg.model, settings))


def _prompts_for(work: Path, gcfg, ids: list[str], questions: list[str]) -> tuple[dict[str, list[int]], list[int]]:
    """Prompt ids for these rows: rendered with LLaMA-Factory, or read from prompts.jsonl."""
    path = layout.prompts_path(work)
    try:
        prompts, stop = render_prompts(gcfg.model, gcfg.template, questions)
        return dict(zip(ids, prompts)), stop
    except SdrrlError:
        if not path.exists():
            raise
    have = {r["id"]: r for r in read_jsonl(path)}
    meta_path = layout.prompts_meta_path(work)
    if not meta_path.is_file():
        raise SdrrlError(f"{meta_path} is missing (it names the model, template and stop tokens of {path.name}).",
                         "copy it along with prompts.jsonl, or run `sdrrl generate --prompts-only` again in "
                         "the main environment.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("model") != gcfg.model or meta.get("template") != gcfg.template:
        raise SdrrlError(f"{path} was rendered for {meta.get('model')!r}/{meta.get('template')!r}, not "
                         f"{gcfg.model!r}/{gcfg.template!r}.", "run `sdrrl generate --prompts-only` again "
                         "with this model and template in the main environment.")
    missing = [i for i in ids if i not in have]
    if missing:
        raise SdrrlError(f"{path} lacks prompts for {len(missing)} row(s) (first: {missing[:3]}).",
                         "run `sdrrl generate --prompts-only` again in the main environment.")
    # a prompt of an edited question would put the old question's answer in the cache under the new one
    changed = [i for i, q in zip(ids, questions)
               if "question_sha1" in have[i] and have[i]["question_sha1"] != _sha1(q)]
    if changed:
        raise SdrrlError(f"{path} was rendered from other questions than WORK/source.jsonl holds now "
                         f"({len(changed)} row(s), first: {changed[:3]}).",
                         "run `sdrrl generate --prompts-only` again in the main environment.")
    return {i: have[i]["prompt_ids"] for i in ids}, meta["stop_token_ids"]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def write_prompts(work: Path, gcfg) -> int:
    """Render every prompt of D into WORK/generate/prompts.jsonl (for a vLLM-only environment)."""
    from sdrrl.io import write_json

    source = list(read_jsonl(layout.source_path(work)))
    prompts, stop = render_prompts(gcfg.model, gcfg.template, [layout.question(r) for r in source])
    path = layout.prompts_path(work)
    write_jsonl(path, ({"id": r["id"], "prompt_ids": p, "question_sha1": _sha1(layout.question(r))}
                       for r, p in zip(source, prompts)))
    write_json(layout.prompts_meta_path(work), {"model": gcfg.model, "template": gcfg.template,
                                                "stop_token_ids": stop})
    say(f"generate: rendered {len(prompts)} prompts with LLaMA-Factory template {gcfg.template!r} into {path}.")
    return len(prompts)


def run_generate(work: Path, cfg, cache: Cache, generator: Generator | None = None,
                 num_shards: int = 1, shard_index: int = 0) -> dict:
    """Generate y_hat for this shard of D; ``cfg`` is a PipelineConfig."""
    gcfg = cfg.generate
    source = workdir.take_shard(list(read_jsonl(layout.source_path(work))), num_shards, shard_index)
    questions = {r["id"]: layout.question(r) for r in source}
    deps = dependencies(work, gcfg)
    keys = {i: deps.outputs.key(text=q) for i, q in questions.items()}
    cached = cache.get_many(keys.values())
    responses = {i: cached[k] for i, k in keys.items() if k in cached}
    todo = [i for i in questions if i not in responses]
    label = "generate" + (f" shard {shard_index}/{num_shards}" if num_shards > 1 else "")
    progress = Progress(label, len(questions), every_s=cfg.progress_every_s)
    progress.skip(len(responses))
    generator = generator or make_generator(gcfg, seed=cfg.sample.seed)
    calls_before = generator.calls
    if todo:
        prompts, stop = _prompts_for(work, gcfg, todo, [questions[i] for i in todo])
        generator.stop_token_ids = stop
        order = sorted(todo, key=lambda i: (len(prompts[i]), i))  # similar lengths: less padding
        for k in range(0, len(order), gcfg.batch_size):
            batch = order[k:k + gcfg.batch_size]
            outs = generator.generate([prompts[i] for i in batch])
            cache.put_many(deps.outputs.kind, {keys[i]: o for i, o in zip(batch, outs)})
            responses.update(zip(batch, outs))
            progress.update(len(batch))
    rows: list[ResponseRow] = [{"id": r["id"], "response": responses[r["id"]]} for r in source]
    path = workdir.write_output(layout.responses_path(work), rows, num_shards, shard_index, deps)
    calls = generator.calls - calls_before
    say(f"{label}: {len(rows)} responses, {len(rows) - len(todo)} from the cache, {len(todo)} generated by "
        f"{gcfg.model} ({gcfg.backend}, template {gcfg.template!r}, max_new_tokens {gcfg.max_new_tokens}, "
        f"{'greedy' if gcfg.temperature == 0 else f'temperature {gcfg.temperature}'}) in {calls} model call(s), "
        f"{progress.elapsed:.1f}s; written to {path}.")
    return {"rows": len(rows), "generated": len(todo), "model_calls": calls, "path": str(path),
            "inputs": deps.fingerprint()}
