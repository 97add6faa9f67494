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
from typing import Any, Mapping, Sequence

from sdrrl import hub, layout
from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.io import read_jsonl, write_jsonl
from sdrrl.layout import ResponseRow, StageDeps
from sdrrl.pipeline import batches, workdir
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


def auto_dtype(device: str) -> str:
    """``generate.dtype: auto`` on ``device``, for both engines: bf16 where the GPU has it (Ampere
    on), fp16 on older GPUs (V100, T4), fp32 on CPU."""
    if not device.startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def load_causal_lm(model: str, device: str = "auto", dtype: str = "auto", on_error=_model_error):
    """(tokenizer, model in eval mode on its device, device) for a causal LM. ``dtype`` auto: bf16
    where the GPU has it (Ampere on), fp16 on V100/T4, fp32 on CPU. A model that cannot be loaded
    raises ``on_error(model, err)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    if dtype == "auto":
        dtype = auto_dtype(device)
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
                         "run the command in the main environment: it drives vLLM in the vLLM environment "
                         "itself. (For generate alone, `sdrrl generate --prompts-only` there first lets this "
                         "environment read WORK/generate/prompts.jsonl.)") from None
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
        # self-translation sets it: a row ends at its first line break after some text (the cut
        # LlmTranslator makes), so decoding further is wasted
        self.stop_at_line_break = False
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
    """vLLM over prompt token ids, in a worker process (:mod:`sdrrl.pipeline.vllm_engine`), so it
    runs from the main environment too. vLLM returns token ids; they are decoded here by the model's
    tokenizer exactly as the transformers backend decodes its own. ``engine``: anything with
    ``generate(prompts, params)`` and ``close()`` like :class:`VllmProcess` (tests, reuse)."""

    def __init__(self, model: str, tensor_parallel_size: int = 1, seed: int = 0, dtype: str = "auto",
                 engine: Any = None, **kw):
        super().__init__(model, **kw)
        self.tensor_parallel_size, self.seed, self.dtype = tensor_parallel_size, seed, dtype
        if engine is None:  # nothing starts before the first generate()
            from sdrrl.pipeline.vllm_engine import VllmProcess

            engine = VllmProcess(model, dtype=dtype, tensor_parallel_size=tensor_parallel_size, seed=seed)
        self.engine = engine
        self._tokenizer = None

    def _load(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model)
            except (OSError, ValueError) as err:
                raise _model_error(self.model, err) from None
        return self.engine

    def _params(self, max_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": max_tokens,
                                  "stop_token_ids": list(self.stop_token_ids), "seed": self.seed}
        if self.stop_at_line_break:
            params["stop"] = ["\n"]
        return params

    def _generate(self, prompts: list[list[int]]) -> list[str]:
        engine = self._load()
        tok = self._tokenizer
        answers: list[list[int]] = [[] for _ in prompts]
        todo = list(range(len(prompts)))
        while todo:
            outs = engine.generate([prompts[i] + answers[i] for i in todo],
                                   [self._params(self.max_new_tokens - len(answers[i])) for i in todo])
            again = []
            for i, out in zip(todo, outs):
                answers[i] += out["token_ids"]
                # vLLM's stop string "\n" also ends an answer that so far is only blank lines, where
                # the transformers backend goes on: so does this one, from where it stopped
                if (out["stop_reason"] == "\n" and len(answers[i]) < self.max_new_tokens
                        and not tok.decode(answers[i], skip_special_tokens=True).strip()):
                    again.append(i)
            todo = again
        return tok.batch_decode(answers, skip_special_tokens=True)

    def release(self) -> None:
        self.engine.close()  # the next generate() starts it again


def make_generator(cfg, seed: int = 0) -> Generator:
    common = dict(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    if cfg.backend == "vllm":
        return VllmGenerator(cfg.model, tensor_parallel_size=cfg.vllm_tensor_parallel_size, seed=seed,
                             dtype=cfg.dtype, **common)
    return TransformersGenerator(cfg.model, device=cfg.device, dtype=cfg.dtype, **common)


def dependencies(work: Path, gcfg) -> StageDeps:
    """What G depends on: D, the responses of ``generate.model`` under these decoding settings
    (each response's cache key: the backend is not part of it), and which prompts share a batch."""
    settings = {"template": gcfg.template, "max_new_tokens": gcfg.max_new_tokens,
                "temperature": gcfg.temperature, "top_p": gcfg.top_p}
    return layout.stage_deps("generate", work, ModelOutput("response", gcfg.model, settings),
                             {"batch_size": gcfg.batch_size})


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


def _assembler(source: list[dict]):
    """G in D's order from the responses to D's questions."""
    def assemble(responses: Mapping[str, str]) -> list[ResponseRow]:
        return [{"id": r["id"], "response": responses[layout.question(r)]} for r in source]
    return assemble


def run_generate(work: Path, cfg, cache: Cache, generator: Generator | None = None,
                 num_shards: int = 1, shard_index: int = 0) -> dict:
    """Generate y_hat for D's questions (sharded: for this shard's batches of them, the batches being
    planned over all of D); ``cfg`` is a PipelineConfig."""
    gcfg = cfg.generate
    workdir.check_shard(num_shards, shard_index)
    source = list(read_jsonl(layout.source_path(work)))
    first_id = {}  # each unique question, by the first row that asks it (its prompt is that row's)
    for r in source:
        first_id.setdefault(layout.question(r), r["id"])
    questions = list(first_id)
    deps = dependencies(work, gcfg)
    keys = {q: deps.outputs.key(text=q) for q in questions}
    label = "generate" + (f" shard {shard_index}/{num_shards}" if num_shards > 1 else "")
    progress = Progress(label, len(questions), unit="prompts", every_s=cfg.progress_every_s)
    generator = generator or make_generator(gcfg, seed=cfg.sample.seed)
    calls_before = generator.calls
    rendered: dict[str, list[int]] = {}

    def prompts(qs: list[str]) -> list[list[int]]:
        if not rendered:  # rendered once, for every question: the batches are planned over all of them
            by_id, stop = _prompts_for(work, gcfg, [first_id[q] for q in questions], questions)
            rendered.update((q, by_id[first_id[q]]) for q in questions)
            generator.stop_token_ids = stop
        return [rendered[q] for q in qs]

    generated = 0

    def generate(batch: list[str]) -> list[str]:
        nonlocal generated
        generated += len(batch)
        return generator.generate(prompts(batch))

    responses = batches.run(questions, keys, deps.outputs.kind, cache, lambda qs: [len(p) for p in prompts(qs)],
                            generate, gcfg.batch_size, True, num_shards, shard_index, progress)
    path = workdir.write_batch_output(layout.responses_path(work), responses, _assembler(source),
                                      num_shards, shard_index, deps)
    calls = generator.calls - calls_before
    share = f" ({len(responses)} in this shard's batches)" if num_shards > 1 else ""
    say(f"{label}: {len(source)} rows, {len(questions)} unique questions{share}: {len(responses) - generated} "
        f"from the cache, {generated} generated by {gcfg.model} ({gcfg.backend}, template {gcfg.template!r}, "
        f"max_new_tokens {gcfg.max_new_tokens}, "
        f"{'greedy' if gcfg.temperature == 0 else f'temperature {gcfg.temperature}'}) in {calls} model call(s), "
        f"{progress.elapsed:.1f}s; written to {path}.")
    return {"rows": len(source), "questions": len(questions), "shard_questions": len(responses),
            "generated": generated, "model_calls": calls, "path": str(path), "inputs": deps.fingerprint()}


def assemble_shards(work: Path, num_shards: int) -> None:
    """Assemble G from the finished generate shards, unless done (a sharded build calls it before
    sampling, in case the shard that assembles G stopped first)."""
    workdir.ensure_assembled(layout.responses_path(work), num_shards, "generate",
                             lambda responses: _assembler(list(read_jsonl(layout.source_path(work))))(responses))
