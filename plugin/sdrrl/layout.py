"""The pipeline work directory, defined once: where each stage writes, the rows it writes, and what
a stage's output depends on. The pipeline (:mod:`sdrrl.pipeline`) writes it, compose and export
(:mod:`sdrrl.compose`) read it; neither spells a path or a row's keys itself.

Layout (docs/CONTRACTS.md, "Pipeline work directory")::

    WORK/source.jsonl                         D        SourceRow
    WORK/source.skipped.jsonl                 bad rows of the input (on_bad_row: skip)
    WORK/build.config.json                    the config of the last build
    WORK/cache.sqlite                         the model-output cache (default; sdrrl.pipeline.cache)
    WORK/generate/prompts.jsonl (+ .meta.json) the rendered prompts (for the vLLM environment)
    WORK/generate/responses.jsonl             G        ResponseRow
    WORK/sample/synth.jsonl                   D_synth  SynthRow
    WORK/translate/{src}-{tgt}.jsonl          T(...)   TranslationRow (unfiltered)
    WORK/filter/{src}-{tgt}.jsonl             kept     FilteredRow (a rejected translation is null)
    WORK/filter/{src}-{tgt}.excluded.jsonl    rejected ExcludedRow
    WORK/filter/{src}-{tgt}.summary.json               Summary
    NAME.batches.jsonl (+ .shard-I-of-N)      a sharded generate or translate stage's model outputs,
                                              OutputRow, merged from its shards; NAME.jsonl is assembled from them
    CACHE_DIR/ct2/                            converted CTranslate2 models (CACHE_DIR: the cache's folder, WORK by default)

**What a stage's output depends on** is one :class:`StageDeps`: its input files (by content), the
model outputs it is made of (:class:`sdrrl.pipeline.cache.ModelOutput`: the kind, the model as
configured, and the settings that change one output; exactly what names each output in the cache),
and the settings that only change how outputs are put together (languages, segmentation, filter
thresholds). Its :meth:`~StageDeps.fingerprint` marks a stage's shards (and can mark any stage
output); its :meth:`~StageDeps.record` says in words what the fingerprint covers.

A model is named as configured, full path or hub id, never by its folder's base name: a base name
can name two different models (two runs' ``checkpoint-500``, ``a/Llama-2-7b-hf`` and
``b/Llama-2-7b-hf``), and the cache key has always used the full name, so caches stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, TypedDict

from sdrrl.fingerprint import fingerprint
from sdrrl.pipeline.cache import ModelOutput

# -- rows that cross stages --------------------------------------------------------------------------

TEXT_FIELDS = ("x", "y", "y_hat")  # the texts of D_synth that are translated and filtered


def mt(text_field: str) -> str:
    """The translation's field of a text field: ``x`` -> ``x_mt``."""
    return text_field + "_mt"


class SourceRow(TypedDict):
    id: str
    instruction: str
    input: str  # "" when the instruction has none
    output: str


class ResponseRow(TypedDict):
    id: str
    response: str  # ŷ = M(x)


# "from" is a Python keyword: the functional form
SynthRow = TypedDict("SynthRow", {
    "id": str,
    "from": Literal["D", "G"],  # which answer D_synth uses: y (D) or ŷ (G)
    "x": str,                   # question(source row)
    "y": str,                   # always the gold answer
    "y_hat": str,               # always the generated answer
})


class OutputRow(TypedDict):
    """One model output of a batch-sharded stage (:mod:`sdrrl.pipeline.batches`): the stage's rows are
    assembled from them. generate: a question and its response; translate: a segment and its translation."""
    input: str
    output: str


class TranslationRow(TypedDict):
    id: str
    x_mt: Optional[str]      # None: not translated (y_hat of a row drawn from D, by default)
    y_mt: Optional[str]
    y_hat_mt: Optional[str]
    source_sha1: str         # of the D_synth texts it was made from (sdrrl.pipeline.translate.source_digest)


FilteredRow = TypedDict("FilteredRow", {
    "id": str, "from": Literal["D", "G"], "x": str, "y": str, "y_hat": str,
    "x_mt": Optional[str], "y_mt": Optional[str], "y_hat_mt": Optional[str],  # None: rejected or never made
})


class ExcludedRow(TypedDict):
    id: str
    field: str                 # the text field whose translation was rejected: x | y | y_hat
    stage: str                 # heuristic | lid | qe
    reason: str
    text: str
    translation: str
    score: Optional[float]


class Summary(TypedDict):
    src: str
    tgt: str
    rows: int
    fields: dict[str, Any]     # per text field: translated, kept, rejected by reason
    kept: int
    rejected: int
    rejected_by_reason: dict[str, int]
    settings: dict[str, Any]


def keys(row_type: type) -> tuple[str, ...]:
    """Every key of a row type (all are required), in its order."""
    return tuple(row_type.__annotations__)


def question(row: SourceRow) -> str:
    """x: LLaMA-Factory's alpaca user turn, instruction + "\\n" + input (input when non-empty)."""
    return row["instruction"] + ("\n" + row["input"] if row.get("input") else "")


# -- paths -------------------------------------------------------------------------------------------

def source_path(work: Path) -> Path:
    return work / "source.jsonl"


def skipped_path(work: Path) -> Path:
    return work / "source.skipped.jsonl"


def build_config_path(work: Path) -> Path:
    return work / "build.config.json"


def prompts_path(work: Path) -> Path:
    return work / "generate" / "prompts.jsonl"


def prompts_meta_path(work: Path) -> Path:
    return prompts_path(work).with_suffix(".meta.json")


def responses_path(work: Path) -> Path:
    return work / "generate" / "responses.jsonl"


def synth_path(work: Path) -> Path:
    return work / "sample" / "synth.jsonl"


def batch_outputs_path(final: Path) -> Path:
    """Where a sharded generate or translate stage keeps the model outputs of its batches
    (``generate/responses.batches.jsonl`` beside ``generate/responses.jsonl``): shards share out whole
    batches, not rows, so the rows of ``final`` are assembled from every shard's outputs."""
    return final.with_name(f"{final.stem}.batches{final.suffix}")


def translations_path(work: Path, src: str, tgt: str) -> Path:
    return work / "translate" / f"{src}-{tgt}.jsonl"


def filter_dir(work: Path) -> Path:
    return work / "filter"


def filtered_path(work: Path, src: str, tgt: str) -> Path:
    return filter_dir(work) / f"{src}-{tgt}.jsonl"


def excluded_path(work: Path, src: str, tgt: str) -> Path:
    return filter_dir(work) / f"{src}-{tgt}.excluded.jsonl"


def summary_path(work: Path, src: str, tgt: str) -> Path:
    return filter_dir(work) / f"{src}-{tgt}.summary.json"


def cache_path(work: Path) -> Path:
    """The model-output cache's default place (``cache:`` names another)."""
    return work / "cache.sqlite"


def ct2_dir(cache_dir: Path) -> Path:
    """Converted CTranslate2 models, beside the cache (WORK/ct2 by default)."""
    return cache_dir / "ct2"


# -- what a stage's output depends on ----------------------------------------------------------------

@dataclass(frozen=True)
class StageDeps:
    """Everything a stage's output is a function of (see the module docstring)."""

    stage: str                               # generate | translate | filter
    inputs: Mapping[str, Path]               # the stage's input files by name (source, synth, translations)
    outputs: ModelOutput | None              # the model outputs it holds (None: no model, e.g. filter without QE)
    assembly: Mapping[str, Any] = field(default_factory=dict)  # settings that shape the file, not an output

    @cached_property
    def record(self) -> dict:
        """What the fingerprint covers, in words: each input file's own fingerprint, the model as
        configured, and every setting (read once; a shard marker keeps it)."""
        out = self.outputs
        return {"stage": self.stage, "inputs": {name: fingerprint(path) for name, path in self.inputs.items()},
                "model": out.model if out else None, "kind": out.kind if out else None,
                "settings": dict(out.settings) if out else {}, "assembly": dict(self.assembly)}

    def fingerprint(self) -> str:
        return fingerprint(self.record)


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The keys (dotted) whose values differ between two :attr:`StageDeps.record`s."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}")
    return out
