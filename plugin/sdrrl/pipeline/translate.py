"""The translate stage: T(x), T(y), T(y_hat) with NLLB, through a cache, in length-sorted batches.

(A third backend, :class:`LlmTranslator`, goes beyond the paper: self-translation with an
instruction-following LLM, by default M_theta itself. Everything around the model is shared.)

Two backends behind one interface, :class:`Translator`: :class:`TransformersTranslator` (what the
paper used: HF ``generate`` with beam 4, otherwise NLLB's defaults) and
:class:`CTranslate2Translator` (same model converted; same beam settings give the same output,
faster). Decoding settings that both backends honour (beam size, max length, length penalty) are
part of the cache key, and so is a CTranslate2 compute type that changes the output (int8, float16,
...); the backend is not.

Work order: every text is cut into segments (:mod:`sdrrl.pipeline.segment`: lines, sentences of
overlong lines, code kept out); the unique segments of the whole D_synth (per language pair) are
sorted by token length and cut into batches (less padding than arrival order; see
benchmarks/bench_translate.py), the same batches whatever is cached and however the stage is
sharded (:mod:`sdrrl.pipeline.batches`: a batched engine's output depends on its batch); each
batch is one model call and one cache transaction, and a shard translates whole batches. The
output file is written only when every segment is translated, so a killed run leaves a cache that
the rerun completes, and the same output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from sdrrl import hub, languages, layout
from sdrrl.errors import ModelNotFoundError
from sdrrl.layout import StageDeps, TranslationRow
from sdrrl.pipeline import batches, segment, workdir
from sdrrl.pipeline.cache import Cache, ModelOutput
from sdrrl.pipeline.generate import resolve_device as _device
from sdrrl.pipeline.progress import Progress, say


def _ct2_device(device: str) -> tuple[str, int]:
    """CTranslate2's (device, device_index) for "auto", "cpu", "cuda" or "cuda:N"."""
    dev = _device(device)
    if not dev.startswith("cuda"):
        return "cpu", 0
    _, _, index = dev.partition(":")
    return "cuda", int(index) if index else 0


def _model_error(model: str, what: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Cannot load the {what} {model!r} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).",
        hub.unavailable_fix(model, "translate.ct2_model_dir" if what == "CTranslate2 model" else
                            "translate.model (or --model)", "model folder"))


class Translator:
    """One NLLB model behind one interface; ``calls`` counts model calls (batches)."""

    def __init__(self, model: str, beam_size: int = 4, max_length: int = 200, length_penalty: float = 1.0):
        self.model = model
        self.beam_size = beam_size
        self.max_length = max_length
        self.length_penalty = length_penalty
        self.calls = 0
        self.segments_translated = 0
        self._tokenizer = None

    # -- what the cache key holds ------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"beam_size": self.beam_size, "max_length": self.max_length,
                "length_penalty": self.length_penalty}

    def outputs(self) -> ModelOutput:
        """How the cache (and the stage's fingerprint) names this translator's translations."""
        return ModelOutput("translation", self.model, self.settings())

    # -- tokenizer (cheap; needed for segmentation even when everything is cached) ------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path())
            except (OSError, ValueError) as err:
                raise _model_error(self.model, "NLLB tokenizer", err) from None
        return self._tokenizer

    def tokenizer_path(self) -> str:
        return self.model

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Source lengths in tokens, special tokens included (the Rust tokenizer when there is one:
        the Python wrapper costs ~15x more per call, which showed in the stage's overhead)."""
        if not texts:
            return []
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return [len(e.ids) for e in backend.encode_batch(list(texts))]
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def count_tokens(self, text: str) -> int:
        return self.token_lengths([text])[0]

    # -- the model ------------------------------------------------------------------------------
    def translate(self, texts: Sequence[str], src_nllb: str, tgt_nllb: str) -> list[str]:
        if not texts:
            return []
        out = self._translate(list(texts), src_nllb, tgt_nllb)
        self.calls += 1
        self.segments_translated += len(texts)
        return out

    def _translate(self, texts: list[str], src_nllb: str, tgt_nllb: str) -> list[str]:
        raise NotImplementedError

    def release(self) -> None:
        """Free the model's memory (an engine process stops)."""


class TransformersTranslator(Translator):
    """HF ``generate`` with ``num_beams``, ``forced_bos_token_id`` = target code (paper's setup)."""

    def __init__(self, model: str, device: str = "auto", **kw):
        super().__init__(model, **kw)
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM

            self.device = _device(self.device)
            try:
                m = AutoModelForSeq2SeqLM.from_pretrained(self.model)
            except (OSError, ValueError) as err:
                raise _model_error(self.model, "NLLB model", err) from None
            self._model = m.to(self.device).eval()
            self._torch = torch
        return self._model

    def _translate(self, texts: list[str], src_nllb: str, tgt_nllb: str) -> list[str]:
        model = self._load()
        tok = self.tokenizer
        tok.src_lang = src_nllb
        enc = tok(texts, return_tensors="pt", padding=True).to(self.device)
        with self._torch.inference_mode():
            out = model.generate(**enc, forced_bos_token_id=tok.convert_tokens_to_ids(tgt_nllb),
                                 num_beams=self.beam_size, max_length=self.max_length,
                                 length_penalty=self.length_penalty, do_sample=False)
        return tok.batch_decode(out, skip_special_tokens=True)


def convert_ct2(model: str, cache_root: Path, quantization: str | None = None) -> Path:
    """Convert an HF NLLB model to CTranslate2 once; the result is reused (keyed by model + files)."""
    src = Path(model)
    stamp = model
    if src.is_dir():
        stamp += "|" + "|".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
                                for p in sorted(src.iterdir()) if p.is_file())
    out = layout.ct2_dir(cache_root) / hashlib.sha256(f"{stamp}|{quantization}".encode()).hexdigest()[:16]
    if (out / "model.bin").is_file():
        return out
    import ctranslate2

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.converting-"))
    say(f"translate: converting {model} to CTranslate2 (once) into {out}")
    try:
        ctranslate2.converters.TransformersConverter(model).convert(str(tmp), quantization=quantization, force=True)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same conversion first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, (OSError, ValueError)):
            raise _model_error(model, "NLLB model (for CTranslate2 conversion)", err) from None
        raise
    return out


class CTranslate2Translator(Translator):
    """CTranslate2 ``translate_batch`` with ``target_prefix`` = target code (same beam settings)."""

    def __init__(self, model: str, ct2_model_dir: str | None = None, device: str = "auto",
                 compute_type: str = "default", inter_threads: int = 1, intra_threads: int = 0,
                 convert_cache: Path | None = None, **kw):
        super().__init__(model, **kw)
        self.ct2_model_dir = ct2_model_dir
        self.device = device
        self.compute_type = compute_type
        self.inter_threads = inter_threads
        self.intra_threads = intra_threads
        self.convert_cache = convert_cache or Path(os.environ.get("SDRRL_CACHE", Path.home() / ".cache" / "sdrrl"))
        self._engine = None

    def tokenizer_path(self) -> str:
        # A converted directory may carry no HF tokenizer: the tokenizer is the HF model's.
        return self.model

    # Compute types that run the converted float32 weights as they are, i.e. translate like the
    # transformers backend; any other (int8, float16, "auto", ...) changes the output, so it is part
    # of the cache key. (A ct2_model_dir quantized at conversion is the user's to name here.)
    EXACT_COMPUTE_TYPES = ("default", "float32")

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        if self.compute_type not in self.EXACT_COMPUTE_TYPES:
            settings["compute_type"] = self.compute_type
        return settings

    def _load(self):
        if self._engine is None:
            import ctranslate2

            path = self.ct2_model_dir or str(convert_ct2(self.model, self.convert_cache))
            dev, index = _ct2_device(self.device)
            try:
                self._engine = ctranslate2.Translator(path, device=dev, device_index=index,
                                                      compute_type=self.compute_type,
                                                      inter_threads=self.inter_threads,
                                                      intra_threads=self.intra_threads)
            except (RuntimeError, ValueError) as err:
                raise _model_error(path, "CTranslate2 model", err) from None
        return self._engine

    def _translate(self, texts: list[str], src_nllb: str, tgt_nllb: str) -> list[str]:
        engine = self._load()
        tok = self.tokenizer
        tok.src_lang = src_nllb
        sources = [tok.convert_ids_to_tokens(ids) for ids in tok(texts)["input_ids"]]
        # HF's max_length counts the decoder start token; CTranslate2's limit does not.
        results = engine.translate_batch(sources, target_prefix=[[tgt_nllb]] * len(texts),
                                         beam_size=self.beam_size, length_penalty=self.length_penalty,
                                         max_decoding_length=self.max_length - 1,
                                         max_batch_size=len(texts))
        out = []
        for r in results:
            tokens = r.hypotheses[0]
            if tokens and tokens[0] == tgt_nllb:
                tokens = tokens[1:]
            out.append(tok.decode(tok.convert_tokens_to_ids(tokens), skip_special_tokens=True))
        return out


def _language_name(nllb_code: str) -> str:
    for lang in languages.LANGUAGES.values():
        if lang.nllb == nllb_code:
            return lang.name
    raise ValueError(f"no language with NLLB code {nllb_code!r}")


def first_line(output: str, source: str) -> str:
    """Self-translation's cut: the answer without surrounding whitespace, and where the source
    had no line break, only up to the answer's first line break (what follows is the model
    going on: a note, the next turn of a dialogue, ...)."""
    text = output.strip()
    if "\n" not in source:
        text = text.split("\n", 1)[0].rstrip()
    return text


class LlmTranslator(Translator):
    """Self-translation (beyond the paper): an instruction-following causal LM, by default M_theta
    itself, translates each segment when prompted with Table 1's translation instruction
    (``{instruction}\n{segment}`` as one user turn, rendered by LLaMA-Factory's template code
    exactly as the generate stage renders its prompts). Greedy decoding through the generate
    stage's engines (transformers or vLLM; both stop decoding there); the answer is cut at its first
    line break where the segment had none (every segment of the stage is one line). ``beam_size`` is
    1 (greedy).

    The cache key holds the model, the template, the instruction and the decoding settings, so
    NLLB translations and self-translations never mix, and changing the prompt retranslates."""

    def __init__(self, model: str, template: str = "default", engine: str = "transformers",
                 prompt: str = "Translate the following sentence from {from_lang} to {to_lang}.",
                 max_new_tokens: int = 400, device: str = "auto", dtype: str = "auto",
                 tensor_parallel_size: int = 1, seed: int = 0, generator=None, vllm_engine=None):
        super().__init__(model, beam_size=1, max_length=max_new_tokens)
        self.template, self.engine, self.prompt = template, engine, prompt
        self.max_new_tokens = max_new_tokens
        self._generator = generator
        self._engine_args = dict(device=device, dtype=dtype, tensor_parallel_size=tensor_parallel_size, seed=seed)
        self.vllm_engine = vllm_engine  # a VllmProcess to share (the generate stage's), else its own
        self._tpl = None

    def settings(self) -> dict[str, Any]:
        # the engine (transformers/vLLM) is not in the key, as for the generate stage's responses
        return {"self_translation": True, "template": self.template, "prompt": self.prompt,
                "max_new_tokens": self.max_new_tokens, "decoding": "greedy", "cut": "first line break"}

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from sdrrl.pipeline.generate import load_template

            try:
                self._tokenizer, self._tpl = load_template(self.model, self.template)
            except ModelNotFoundError as err:
                raise ModelNotFoundError(
                    err.problem.replace("generator model", "self-translation model"),
                    f"download it where the hub is reachable (huggingface-cli download {self.model} --local-dir "
                    "DIR), then set translate.llm_model (or --llm-model) to DIR; unset, it is generate.model.") from None
        return self._tokenizer

    @property
    def generator(self):
        if self._generator is None:
            from sdrrl.pipeline.generate import TransformersGenerator, VllmGenerator

            a = self._engine_args
            if self.engine == "vllm":
                self._generator = VllmGenerator(self.model, tensor_parallel_size=a["tensor_parallel_size"],
                                                seed=a["seed"], dtype=a["dtype"], max_new_tokens=self.max_new_tokens,
                                                engine=self.vllm_engine)
            else:
                self._generator = TransformersGenerator(self.model, device=a["device"], dtype=a["dtype"],
                                                        max_new_tokens=self.max_new_tokens)
        return self._generator

    def prompts(self, texts: Sequence[str], src_nllb: str, tgt_nllb: str) -> tuple[list[list[int]], list[int]]:
        """Prompt token ids (and stop ids) for these segments, as the model will see them."""
        from sdrrl.pipeline.generate import encode_prompts

        tok = self.tokenizer
        instruction = self.prompt.format(from_lang=_language_name(src_nllb), to_lang=_language_name(tgt_nllb))
        return encode_prompts(tok, self._tpl, [instruction + "\n" + t for t in texts])

    def _translate(self, texts: list[str], src_nllb: str, tgt_nllb: str) -> list[str]:
        prompts, stop = self.prompts(texts, src_nllb, tgt_nllb)
        gen = self.generator
        gen.stop_token_ids = stop
        gen.stop_at_line_break = all("\n" not in t for t in texts)  # stop decoding where the cut will be
        return [first_line(o, t) for o, t in zip(gen.generate(prompts), texts)]

    def release(self) -> None:
        if self._generator is not None:
            self._generator.release()


def make_translator(cfg, cache_root: Path | None = None, generate=None, seed: int = 0,
                    generator=None) -> Translator:
    """The configured backend (``cfg`` is a TranslateConfig; ``generate`` the GenerateConfig whose
    model, template, engine and dtype self-translation defaults to). ``generator``: the generate
    stage's; self-translation by the same model on vLLM shares its engine (one model load)."""
    if cfg.backend == "llm":
        if generate is None:
            from sdrrl.pipeline.config import GenerateConfig

            generate = GenerateConfig()
        model, engine = cfg.llm_model or generate.model, cfg.llm_engine or generate.backend
        shared = None
        if engine == "vllm" and generate.backend == "vllm" and model == generate.model and generator is not None:
            shared = getattr(generator, "engine", None)  # the same model, dtype, parallelism and seed
        return LlmTranslator(model, template=cfg.llm_template or generate.template, engine=engine,
                             prompt=cfg.llm_prompt, max_new_tokens=cfg.llm_max_new_tokens, device=cfg.device,
                             dtype=generate.dtype, tensor_parallel_size=generate.vllm_tensor_parallel_size, seed=seed,
                             vllm_engine=shared)
    common = dict(beam_size=cfg.beam_size, max_length=cfg.max_length, length_penalty=cfg.length_penalty)
    if cfg.backend == "ctranslate2":
        return CTranslate2Translator(cfg.model, ct2_model_dir=cfg.ct2_model_dir, device=cfg.device,
                                     compute_type=cfg.ct2_compute_type, inter_threads=cfg.ct2_inter_threads,
                                     convert_cache=cache_root, **common)
    return TransformersTranslator(cfg.model, device=cfg.device, **common)


def translate_segments(segments: Sequence[str], translator: Translator, cache: Cache | None, src: str, tgt: str,
                       batch_size: int = 32, by_length: bool = True, progress: Progress | None = None,
                       num_shards: int = 1, shard_index: int = 0) -> dict[str, str]:
    """Translations (ISO codes ``src``/``tgt``) of the unique ``segments``: all of them, or, sharded,
    those of this shard's batches, the batches being planned over all of ``segments``."""
    src_nllb, tgt_nllb = languages.get(src).nllb, languages.get(tgt).nllb
    unique = list(dict.fromkeys(segments))
    outputs = translator.outputs()
    keys = {s: outputs.key(src=src_nllb, tgt=tgt_nllb, text=s) for s in unique}
    return batches.run(unique, keys, outputs.kind, cache, translator.token_lengths,
                       lambda batch: translator.translate(batch, src_nllb, tgt_nllb), batch_size, by_length,
                       num_shards, shard_index, progress)


def source_digest(row: dict) -> str:
    """Fingerprint of the D_synth texts a translation row was made from (the filter checks it)."""
    blob = json.dumps([row.get("x"), row.get("y"), row.get("y_hat"), row.get("from")], ensure_ascii=False)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def dependencies(work: Path, tcfg, translator: Translator, src: str, tgt: str) -> StageDeps:
    """What the translations into ``tgt`` depend on: D_synth, the translator's outputs (each
    segment's cache key), how texts are cut into segments and which are translated, and which
    segments share a batch."""
    return layout.stage_deps("translate", work, translator.outputs(),
                             {"src": src, "tgt": tgt, "max_segment_tokens": tcfg.max_segment_tokens,
                              "translate_all_responses": tcfg.translate_all_responses,
                              "batch_size": tcfg.batch_size, "length_bucketing": tcfg.length_bucketing}, src, tgt)


def _split(rows: Sequence[dict], tcfg, translator: Translator) -> list[dict[str, segment.Layout | None]]:
    """Each row's texts to translate cut into segments (None: a text not translated)."""
    limit = tcfg.max_segment_tokens

    def count(text: str) -> int:
        # A piece is at most 3 tokens per character (NFKC ligatures); short lines need no tokenizer.
        return 0 if 3 * len(text) + 2 <= limit else translator.count_tokens(text)

    layouts: list[dict[str, segment.Layout | None]] = []
    for row in rows:
        per_field: dict[str, segment.Layout | None] = {}
        for f in layout.TEXT_FIELDS:
            text = row.get(f)
            wanted = f != "y_hat" or row.get("from") == "G" or tcfg.translate_all_responses
            per_field[f] = segment.split(text, limit, count) if wanted and isinstance(text, str) else None
        layouts.append(per_field)
    return layouts


def _assembler(rows: Sequence[dict], layouts: Sequence[dict[str, segment.Layout | None]]):
    """The translation rows of D_synth from the translations of its segments (shards that planned
    the same batches hold every segment: their fingerprints are equal)."""
    def assemble(done: Mapping[str, str]) -> list[TranslationRow]:
        out_rows: list[TranslationRow] = []
        for row, per_field in zip(rows, layouts):
            out = {"id": row["id"]}
            for f in layout.TEXT_FIELDS:
                lay = per_field[f]
                out[layout.mt(f)] = None if lay is None else segment.reassemble(
                    lay, [done[s] for s in lay.segments], cjk_tight=True)
            out["source_sha1"] = source_digest(row)
            out_rows.append(out)
        return out_rows
    return assemble


def run_translate(work: Path, cfg, src: str, tgt: str, cache: Cache, translator: Translator | None = None,
                  num_shards: int = 1, shard_index: int = 0) -> dict:
    """Translate D_synth's x, y (and y_hat where used) into ``tgt``; ``cfg`` is a PipelineConfig.
    Sharded, every shard segments all of D_synth and translates its share of the batches."""
    tcfg = cfg.translate
    languages.get(src), languages.get(tgt)
    workdir.check_shard(num_shards, shard_index)
    rows = workdir.read_output(layout.synth_path(work), "sample")
    workdir.check_generation(work, "translate", src, tgt)
    translator = translator or make_translator(tcfg, cache_root=cfg.cache_path.parent, generate=cfg.generate,
                                               seed=cfg.sample.seed)
    layouts = _split(rows, tcfg, translator)
    all_segments = [s for per_field in layouts for lay in per_field.values() if lay for s in lay.segments]

    label = f"translate {src}-{tgt}" + (f" shard {shard_index}/{num_shards}" if num_shards > 1 else "")
    progress = Progress(label, 0, unit="segments", every_s=cfg.progress_every_s)
    calls_before, segs_before = translator.calls, translator.segments_translated
    done = translate_segments(all_segments, translator, cache, src, tgt, tcfg.batch_size,
                              tcfg.length_bucketing, progress, num_shards, shard_index)
    deps = dependencies(work, tcfg, translator, src, tgt)
    path = workdir.write_batch_output(layout.translations_path(work, src, tgt), done,
                                      _assembler(rows, layouts), num_shards, shard_index, deps)
    calls = translator.calls - calls_before
    translated = translator.segments_translated - segs_before
    unique = len(set(all_segments))
    share = "" if num_shards == 1 else f"; this shard's batches hold {len(done)} of them"
    say(f"{label}: {len(rows)} rows, {len(all_segments)} segments ({unique} unique{share}): "
        f"{len(done) - translated} from the cache, {translated} translated in {calls} model call(s) by "
        f"{type(translator).__name__} (beam {translator.beam_size}) in {progress.elapsed:.1f}s; written to {path}.")
    return {"rows": len(rows), "segments": len(all_segments), "unique_segments": unique, "shard_segments": len(done),
            "model_calls": calls, "path": str(path), "inputs": deps.fingerprint()}


def assemble_shards(work: Path, cfg, src: str, tgt: str, translator: Translator, num_shards: int) -> None:
    """Assemble the translations into ``tgt`` from the finished shards, unless done (a sharded build
    calls it before filtering, in case the shard that assembles them stopped first)."""
    def assemble(done: Mapping[str, str]) -> list[TranslationRow]:
        rows = workdir.read_output(layout.synth_path(work), "sample")
        return _assembler(rows, _split(rows, cfg.translate, translator))(done)

    workdir.ensure_assembled(layout.translations_path(work, src, tgt), num_shards, "translate", assemble)

