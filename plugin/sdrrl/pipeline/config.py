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

from sdrrl import configfile, layout
from sdrrl.errors import SdrrlError


@dataclass
class GenerateConfig:
    """Self-distillation responses y_hat = M(x) (section 3.2.1)."""

    # M_theta is the model SDRRL trains: the paper's base model is LLaMA-2-7B (section 4.1), so
    # the responses are that model's own answers ("self"-distillation).
    model: str = "meta-llama/Llama-2-7b-hf"
    backend: str = "transformers"  # "transformers" or "vllm" (CPU or GPU; runs in the vLLM environment)
    # The LLaMA-Factory template the recipes train with, so generation and training agree.
    template: str = "default"
    # Decoding is not given in the paper: greedy (deterministic, so cacheable and reproducible).
    max_new_tokens: int = 512  # the longest response generated
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0  # nucleus sampling; 1.0 = off (greedy decoding ignores it)
    batch_size: int = 8  # prompts per model call and cache commit; with vLLM use hundreds
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    dtype: str = "auto"  # "auto" (bf16 on GPU, fp16 where it has none, fp32 on CPU) | "float32" | "bfloat16" | "float16"
    vllm_tensor_parallel_size: int = 1  # GPUs vLLM splits the model over (backend vllm)


@dataclass
class SampleConfig:
    """D_synth = Sample(D) u Sample(G): each row from D or G with equal probability (eq. 4)."""

    seed: int = 42  # one seeded draw per row, so the same rows take G in every run
    p_generated: float = 0.5  # probability that a row takes the generated response


@dataclass
class TranslateConfig:
    """T(x), T(y), T(y_hat) with NLLB (section 3.2.2, appendix A)."""

    model: str = "facebook/nllb-200-3.3B"  # NLLB-200-3.3B (appendix A); a hub id or a local folder
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
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    ct2_model_dir: str | None = None  # a converted CTranslate2 model; None = convert once, cached
    # CTranslate2's compute type; anything but "default"/"float32" (int8, float16, ...) changes the
    # translations, so it is part of the cache key.
    ct2_compute_type: str = "default"
    ct2_inter_threads: int = 1  # batches CTranslate2 translates at the same time
    # y_hat is only used by D_synth rows taken from G; translating it for rows from D costs a
    # third more translation and nothing reads it. True translates it for every row.
    translate_all_responses: bool = False
    # Self-translation (backend "llm"; the paper is silent, these are our choices). None = the
    # generate stage's value: M_theta itself, its LLaMA-Factory template, its engine (transformers
    # or vllm) and dtype. The prompt is Table 1's translation instruction; the segment follows it
    # on the next line. Greedy; the answer is cut at its first line break. llm_max_new_tokens:
    # segments are at most max_segment_tokens (200) of the LLM's tokens, and a translation into a
    # script the LLM's vocabulary covers poorly may take twice as many.
    llm_model: str | None = None  # the translating LLM; None = generate.model (M_theta)
    llm_template: str | None = None  # its LLaMA-Factory template; None = generate.template
    llm_engine: str | None = None  # "transformers" | "vllm"; None = generate.backend
    llm_prompt: str = "Translate the following sentence from {from_lang} to {to_lang}."  # Table 1
    llm_max_new_tokens: int = 400  # twice max_segment_tokens: poorly covered scripts take ~2x


@dataclass
class FilterConfig:
    """Quality filters for translations (section 3.2.2 and 4.1)."""

    qe_enabled: bool = True  # the reference-free quality-estimation filter
    qe_model: str = "Unbabel/wmt22-cometkiwi-da"  # CometKiwi (gated on the hub), or a local checkpoint
    qe_threshold: float = 0.8  # tau: translations scoring below it are rejected
    qe_batch_size: int = 16  # translations per QE call
    qe_gpus: int | None = None  # None = 1 if CUDA is available else 0
    lid_enabled: bool = True  # the language-ID filter
    lid_backend: str = "gcld3"  # the paper's CLD3
    # A translation is off-target when CLD3's top language is not the target's. Short texts
    # (fewer letters than this) are not judged: CLD3 is unreliable on them.
    lid_min_letters: int = 20
    heuristics_enabled: bool = True  # the rules below: empty, untranslated copy, length ratio, repetition
    # Character-length ratio translation/source outside [min_length_ratio, max_length_ratio] is
    # rejected. Wide bounds: Japanese is ~0.3x English, some languages ~1.5x.
    min_length_ratio: float = 0.2
    max_length_ratio: float = 5.0  # see min_length_ratio
    ratio_min_source_chars: int = 20  # the length ratio is judged only for sources this long
    # A unit of 1-30 characters repeated this many times in a row (and not in the source) is an
    # NMT decoding loop.
    max_repeats: int = 6
    # An untranslated copy: translation == source with at least this many letters.
    copy_min_letters: int = 12


@dataclass
class PipelineConfig:
    work_dir: str = "sdrrl_work"  # the work directory every stage reads and writes (docs/CONTRACTS.md)
    # D: alpaca-style rows (instruction, input, output) as JSON Lines, a JSON array, Parquet, a datasets
    # folder or a hub dataset id (pipeline/inputs.py). None = the shipped sample.
    input: str | None = None
    source_lang: str = "eng"  # eng or fra (appendix C)
    target_langs: list[str] = field(default_factory=lambda: ["ind"])  # ISO 639-3 (`sdrrl languages`)
    cache: str | None = None  # SQLite file; None = WORK/cache.sqlite
    on_bad_row: str = "error"  # "error" | "skip" (skipped rows are counted and logged)
    max_rows: int | None = None  # take the first N rows of D (smoke runs)
    progress_every_s: float = 10.0  # seconds between progress lines
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
        return Path(self.cache) if self.cache else layout.cache_path(self.work)

    @property
    def translation_model(self) -> str:
        """The model that translates: NLLB, or with backend "llm" the self-translating LLM."""
        t = self.translate
        return (t.llm_model or self.generate.model) if t.backend == "llm" else t.model

    def validate(self) -> "PipelineConfig":
        """Every problem of the values at once, ranges included (types are checked when a mapping is read)."""
        return configfile.validate(self, RANGES)

    def check(self, problems: list[SdrrlError]) -> None:
        """Append a problem for each value this pipeline cannot run with (languages, choices, bounds)."""
        from sdrrl import languages

        try:
            src = languages.get(self.source_lang)
            if src.role != "source":
                problems.append(SdrrlError(f"source_lang = {self.source_lang!r} is not a resource-rich source language.",
                                           f"use one of {', '.join(languages.SOURCES)}."))
        except SdrrlError as err:
            problems.append(SdrrlError(f"source_lang: {err.problem}", err.fix))
        if isinstance(self.target_langs, str):
            self.target_langs = [self.target_langs]
        if not self.target_langs:
            problems.append(SdrrlError("target_langs is empty.", "name at least one target language, e.g. [ind]."))
        for t in self.target_langs:
            try:
                languages.get(t)
            except SdrrlError as err:
                problems.append(SdrrlError(f"target_langs: {err.problem}", err.fix))
                continue
            if t == self.source_lang:
                problems.append(SdrrlError(f"target language {t!r} equals the source language.",
                                           "remove it from target_langs."))
        for name, value, allowed in (("on_bad_row", self.on_bad_row, ("error", "skip")),
                                     ("generate.backend", self.generate.backend, ("transformers", "vllm")),
                                     ("translate.backend", self.translate.backend,
                                      ("transformers", "ctranslate2", "llm")),
                                     ("translate.llm_engine", self.translate.llm_engine,
                                      (None, "transformers", "vllm")),
                                     ("filter.lid_backend", self.filter.lid_backend, ("gcld3",))):
            if value not in allowed:
                problems.append(SdrrlError(f"{name}={value!r} is not supported.",
                                           f"use one of: {', '.join(str(a) for a in allowed if a)}."))
        try:
            self.translate.llm_prompt.format(from_lang="English", to_lang="Czech")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            problems.append(SdrrlError(f"translate.llm_prompt={self.translate.llm_prompt!r} is not a template with "
                                       f"{{from_lang}} and {{to_lang}} ({type(err).__name__}: {err}).",
                                       "write it like Table 1's: 'Translate the following sentence from "
                                       "{from_lang} to {to_lang}.'"))
        f = self.filter
        if f.min_length_ratio > f.max_length_ratio:
            problems.append(SdrrlError(f"filter.min_length_ratio = {f.min_length_ratio} is above filter.max_length_ratio "
                                       f"= {f.max_length_ratio}: every translation would be rejected.",
                                       "make min_length_ratio <= max_length_ratio (defaults 0.2 and 5.0)."))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"generate": GenerateConfig, "sample": SampleConfig, "translate": TranslateConfig,
             "filter": FilterConfig}

# Allowed values of the numbers (types come from the annotations above). Probabilities and the QE
# threshold (CometKiwi scores live on [0, 1]) in [0, 1]; sizes and counts positive.
RANGES: dict[str, configfile.Range] = {
    "max_rows": configfile.AT_LEAST_ONE,
    "progress_every_s": configfile.POSITIVE,
    "generate.max_new_tokens": configfile.AT_LEAST_ONE,
    "generate.temperature": configfile.NON_NEGATIVE,
    "generate.top_p": configfile.Range(0.0, 1.0, low_open=True),
    "generate.batch_size": configfile.AT_LEAST_ONE,
    "generate.vllm_tensor_parallel_size": configfile.AT_LEAST_ONE,
    "sample.p_generated": configfile.PROBABILITY,
    "translate.beam_size": configfile.AT_LEAST_ONE,
    "translate.max_length": configfile.AT_LEAST_ONE,
    "translate.length_penalty": configfile.NON_NEGATIVE,
    "translate.batch_size": configfile.AT_LEAST_ONE,
    "translate.max_segment_tokens": configfile.AT_LEAST_ONE,
    "translate.ct2_inter_threads": configfile.AT_LEAST_ONE,
    "translate.llm_max_new_tokens": configfile.AT_LEAST_ONE,
    "filter.qe_threshold": configfile.PROBABILITY,
    "filter.qe_batch_size": configfile.AT_LEAST_ONE,
    "filter.qe_gpus": configfile.NON_NEGATIVE,
    "filter.lid_min_letters": configfile.NON_NEGATIVE,
    "filter.min_length_ratio": configfile.NON_NEGATIVE,
    "filter.max_length_ratio": configfile.POSITIVE,
    "filter.ratio_min_source_chars": configfile.NON_NEGATIVE,
    "filter.max_repeats": configfile.Range(2, None),  # 1 would call every text a loop
    "filter.copy_min_letters": configfile.NON_NEGATIVE,
}


def from_dict(data: Mapping[str, Any] | None, source: str | None = None) -> PipelineConfig:
    """A checked config: every type, range and value problem is raised at once (a ConfigError)."""
    data = dict(data or {})
    if isinstance(data.get("target_langs"), str):
        data["target_langs"] = [data["target_langs"]]
    problems: list[SdrrlError] = []
    cfg = configfile.build(PipelineConfig, data, "", _SECTIONS, problems=problems, ranges=RANGES)
    cfg.check(problems)
    configfile.raise_problems(problems, source)
    return cfg


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config; relative paths in it resolve against the YAML's folder."""
    p = Path(path)
    data = configfile.read_mapping(p)
    data = dict(data)
    for key in ("work_dir", "input", "cache"):
        if key == "input" and isinstance(data.get(key), str) and data[key] \
                and not (p.parent / data[key]).exists():
            from sdrrl import hub

            if not hub.looks_local(data[key]):
                continue  # a hub dataset id such as tatsu-lab/alpaca, not a path
        if isinstance(data.get(key), str) and data[key] and not Path(data[key]).is_absolute():
            data[key] = str((p.parent / data[key]).resolve())
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    return from_dict(data, str(p))
