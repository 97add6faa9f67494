"""Pipeline configuration: every choice of the paper is a named field with the paper's value.

Loaded from YAML (``sdrrl build --config FILE``). Unknown keys are errors, not silently ignored,
because a typo in a threshold would otherwise cost a full translation run.

Paper values (section 3.2, 4.1, appendix A): NLLB-200-3.3B with beam size 4 and otherwise the
Hugging Face defaults (NLLB's generation config: max_length 200); CometKiwi
(Unbabel/wmt22-cometkiwi-da) rejecting scores below tau = 0.8; CLD3 removing off-target
translations; D_synth sampled from D or G with equal probability. Where the paper is silent the
field's comment says what we chose and why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdrrl import configfile
from sdrrl.errors import SdrrlError


@dataclass
class GenerateConfig:
    """Self-distillation responses y_hat = M(x) (section 3.2.1)."""

    # M_theta is the model SDRRL trains: the paper's base model is LLaMA-2-7B (section 4.1), so
    # the responses are that model's own answers ("self"-distillation).
    model: str = "meta-llama/Llama-2-7b-hf"
    backend: str = "transformers"  # "transformers" (CPU/GPU) or "vllm" (GPU, own environment)
    # The LLaMA-Factory template the recipes train with, so generation and training agree.
    template: str = "default"
    # Decoding is not given in the paper: greedy (deterministic, so cacheable and reproducible).
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 8  # prompts per model call and cache commit; with vLLM use hundreds
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    dtype: str = "auto"  # "auto" (bf16 on GPU, fp16 where it has none, fp32 on CPU) | "float32" | "bfloat16" | "float16"
    vllm_tensor_parallel_size: int = 1


@dataclass
class SampleConfig:
    """D_synth = Sample(D) u Sample(G): each row from D or G with equal probability (eq. 4)."""

    seed: int = 42
    p_generated: float = 0.5  # probability that a row takes the generated response


@dataclass
class TranslateConfig:
    """T(x), T(y), T(y_hat) with NLLB (section 3.2.2, appendix A)."""

    model: str = "facebook/nllb-200-3.3B"
    # "transformers" is what the paper used; "ctranslate2" gives the same translations faster;
    # "llm" is self-translation (beyond the paper): an instruction-following LLM, the llm_* fields.
    backend: str = "transformers"
    beam_size: int = 4  # appendix A
    max_length: int = 200  # NLLB's generation_config default (the paper kept HF defaults)
    length_penalty: float = 1.0  # HF default
    batch_size: int = 32  # segments per model call
    # NLLB was trained on sentences up to ~200 tokens: longer lines are split into sentences.
    max_segment_tokens: int = 200
    # Form batches of similar length (less padding); False = arrival order (benchmark baseline).
    length_bucketing: bool = True
    device: str = "auto"
    ct2_model_dir: str | None = None  # a converted CTranslate2 model; None = convert once, cached
    ct2_compute_type: str = "default"
    ct2_inter_threads: int = 1
    # y_hat is only used by D_synth rows taken from G; translating it for rows from D costs a
    # third more translation and nothing reads it. True translates it for every row.
    translate_all_responses: bool = False
    # Self-translation (backend "llm"; the paper is silent, these are our choices). None = the
    # generate stage's value: M_theta itself, its LLaMA-Factory template, its engine (transformers
    # or vllm) and dtype. The prompt is Table 1's translation instruction; the segment follows it
    # on the next line. Greedy; the answer is cut at its first line break. llm_max_new_tokens:
    # segments are at most max_segment_tokens (200) of the LLM's tokens, and a translation into a
    # script the LLM's vocabulary covers poorly may take twice as many.
    llm_model: str | None = None
    llm_template: str | None = None
    llm_engine: str | None = None
    llm_prompt: str = "Translate the following sentence from {from_lang} to {to_lang}."
    llm_max_new_tokens: int = 400


@dataclass
class FilterConfig:
    """Quality filters for translations (section 3.2.2 and 4.1)."""

    qe_enabled: bool = True
    qe_model: str = "Unbabel/wmt22-cometkiwi-da"
    qe_threshold: float = 0.8  # tau
    qe_batch_size: int = 16
    qe_gpus: int | None = None  # None = 1 if CUDA is available else 0
    lid_enabled: bool = True
    lid_backend: str = "gcld3"  # the paper's CLD3
    # A translation is off-target when CLD3's top language is not the target's. Short texts
    # (fewer letters than this) are not judged: CLD3 is unreliable on them.
    lid_min_letters: int = 20
    heuristics_enabled: bool = True
    # Character-length ratio translation/source outside these bounds is rejected (sources of at
    # least ratio_min_source_chars). Wide bounds: Japanese is ~0.3x English, some languages ~1.5x.
    min_length_ratio: float = 0.2
    max_length_ratio: float = 5.0
    ratio_min_source_chars: int = 20
    # A unit of 1-30 characters repeated this many times in a row (and not in the source) is an
    # NMT decoding loop.
    max_repeats: int = 6
    # An untranslated copy: translation == source with at least this many letters.
    copy_min_letters: int = 12


@dataclass
class PipelineConfig:
    work_dir: str = "sdrrl_work"
    # D: alpaca-style JSON Lines (instruction, input, output). None = the shipped sample.
    input: str | None = None
    source_lang: str = "eng"  # eng or fra (appendix C)
    target_langs: list[str] = field(default_factory=lambda: ["ind"])
    cache: str | None = None  # SQLite file; None = WORK/cache.sqlite
    on_bad_row: str = "error"  # "error" | "skip" (skipped rows are counted and logged)
    max_rows: int | None = None  # take the first N rows of D (smoke runs)
    progress_every_s: float = 10.0
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)

    # -- derived -------------------------------------------------------------------------------
    @property
    def work(self) -> Path:
        return Path(self.work_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else self.work / "cache.sqlite"

    @property
    def translation_model(self) -> str:
        """The model that translates: NLLB, or with backend "llm" the self-translating LLM."""
        t = self.translate
        return (t.llm_model or self.generate.model) if t.backend == "llm" else t.model

    def validate(self) -> "PipelineConfig":
        from sdrrl import languages

        src = languages.get(self.source_lang)
        if src.role != "source":
            raise SdrrlError(f"source_lang {self.source_lang!r} is not a resource-rich source language.",
                             f"use one of {', '.join(languages.SOURCES)}.")
        if isinstance(self.target_langs, str):
            self.target_langs = [self.target_langs]
        if not self.target_langs:
            raise SdrrlError("target_langs is empty.", "name at least one target language, e.g. [ind].")
        for t in self.target_langs:
            languages.get(t)
            if t == self.source_lang:
                raise SdrrlError(f"target language {t!r} equals the source language.",
                                 "remove it from target_langs.")
        _choice("on_bad_row", self.on_bad_row, ("error", "skip"))
        _choice("generate.backend", self.generate.backend, ("transformers", "vllm"))
        _choice("translate.backend", self.translate.backend, ("transformers", "ctranslate2", "llm"))
        if self.translate.llm_engine is not None:
            _choice("translate.llm_engine", self.translate.llm_engine, ("transformers", "vllm"))
        try:
            self.translate.llm_prompt.format(from_lang="English", to_lang="Czech")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            raise SdrrlError(f"translate.llm_prompt={self.translate.llm_prompt!r} is not a template with "
                             f"{{from_lang}} and {{to_lang}} ({type(err).__name__}: {err}).",
                             "write it like Table 1's: 'Translate the following sentence from {from_lang} "
                             "to {to_lang}.'") from None
        _choice("filter.lid_backend", self.filter.lid_backend, ("gcld3",))
        if not 0.0 <= self.sample.p_generated <= 1.0:
            raise SdrrlError(f"sample.p_generated={self.sample.p_generated} is not a probability.",
                             "use a value in [0, 1]; the paper's is 0.5.")
        for name, val in (("translate.beam_size", self.translate.beam_size),
                          ("translate.batch_size", self.translate.batch_size),
                          ("translate.max_length", self.translate.max_length),
                          ("translate.llm_max_new_tokens", self.translate.llm_max_new_tokens),
                          ("generate.batch_size", self.generate.batch_size),
                          ("generate.max_new_tokens", self.generate.max_new_tokens),
                          ("filter.qe_batch_size", self.filter.qe_batch_size)):
            if not isinstance(val, int) or val < 1:
                raise SdrrlError(f"{name}={val!r} must be a positive integer.", f"fix {name} in the config.")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SdrrlError(f"{name}={value!r} is not supported.", f"use one of: {', '.join(allowed)}.")


_SECTIONS = {"generate": GenerateConfig, "sample": SampleConfig, "translate": TranslateConfig,
             "filter": FilterConfig}


def from_dict(data: Mapping[str, Any] | None) -> PipelineConfig:
    return configfile.build(PipelineConfig, data or {}, "", _SECTIONS).validate()


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config; relative paths in it resolve against the YAML's folder."""
    p = Path(path)
    data = configfile.read_mapping(p)
    data = dict(data)
    for key in ("work_dir", "input", "cache"):
        if data.get(key) and not Path(data[key]).is_absolute():
            data[key] = str((p.parent / data[key]).resolve())
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    return from_dict(data)
