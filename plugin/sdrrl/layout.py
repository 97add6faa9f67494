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
thresholds). Its :meth:`~StageDeps.fingerprint` marks a stage's shards; its :meth:`~StageDeps.record`
says in words what the fingerprint covers.

**A work directory knows its generation.** Every stage output has a record beside it,
``NAME.jsonl.done`` (:func:`record`): the fingerprint of its own bytes and the :class:`StageDeps`
record of the build that wrote it, which holds each input file's fingerprint by name. The stages
form one chain (:func:`stage_output`: prepare -> generate -> sample -> translate -> filter), so
:func:`generation_problems` can tell, from the files alone, whether every output still comes from the
files before it: a build re-run with another ``--max-rows`` and killed after "prepare" leaves a
``responses.jsonl`` made from another ``source.jsonl``, and every later reader (the stages, ``sdrrl
export``) refuses it, naming the stage and the command that rebuilds it.

A model is named as configured, full path or hub id, never by its folder's base name: a base name
can name two different models (two runs' ``checkpoint-500``, ``a/Llama-2-7b-hf`` and
``b/Llama-2-7b-hf``), and the cache key has always used the full name, so caches stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, TypedDict

from sdrrl import fingerprint as _fingerprint
from sdrrl.errors import SdrrlError
from sdrrl.fingerprint import fingerprint
from sdrrl.io import read_json_object
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


# -- the chain of stages, and the record beside each output -------------------------------------------

@dataclass(frozen=True)
class StageOutput:
    """A stage's output file and the outputs of earlier stages it is made from, by the names its
    :class:`StageDeps` gives them."""

    stage: str                                # prepare | generate | sample | translate | filter
    path: Path
    reads: Mapping[str, "StageOutput"]
    src: str | None = None
    tgt: str | None = None


def stage_output(work: Path, stage: str, src: str | None = None, tgt: str | None = None) -> StageOutput:
    """``stage``'s output in ``work`` (translate and filter: of the pair ``src``-``tgt``) with the chain
    before it: D <- input; G <- D; D_synth <- D, G; T <- D_synth; filtered <- D_synth, T."""
    source = StageOutput("prepare", source_path(work), {})
    if stage == "prepare":
        return source
    responses = StageOutput("generate", responses_path(work), {"source": source})
    if stage == "generate":
        return responses
    synth = StageOutput("sample", synth_path(work), {"source": source, "responses": responses})
    if stage == "sample":
        return synth
    if src is None or tgt is None:
        raise ValueError(f"stage {stage!r} is per language pair: give src and tgt")
    translations = StageOutput("translate", translations_path(work, src, tgt), {"synth": synth}, src, tgt)
    if stage == "translate":
        return translations
    if stage == "filter":
        return StageOutput("filter", filtered_path(work, src, tgt), {"synth": synth, "translations": translations},
                           src, tgt)
    raise ValueError(f"unknown stage {stage!r}")


def stage_deps(stage: str, work: Path, outputs: ModelOutput | None = None, assembly: Mapping[str, Any] | None = None,
               src: str | None = None, tgt: str | None = None) -> StageDeps:
    """The :class:`StageDeps` of ``stage``: its inputs are the outputs :func:`stage_output` says it reads."""
    inputs = {name: o.path for name, o in stage_output(work, stage, src, tgt).reads.items()}
    return StageDeps(stage, inputs, outputs, dict(assembly or {}))


def record_path(output: Path) -> Path:
    """The record beside a stage output (or a shard of one): ``NAME.jsonl.done``."""
    return output.with_name(output.name + ".done")


def record(output: Path, depends: Mapping[str, Any], **extra: Any) -> None:
    """Say beside ``output`` (complete now) which build made it: ``depends`` (a :attr:`StageDeps.record`),
    its fingerprint, and the fingerprint of the output's bytes (:func:`sdrrl.fingerprint.record`)."""
    _fingerprint.record(record_path(output), fingerprint(dict(depends)), [output], stage=depends.get("stage"),
                        depends=dict(depends), **extra)


_COMMAND = {"prepare": "build", "generate": "generate", "sample": "sample", "translate": "translate", "filter": "filter"}


def rebuild_fix(out: StageOutput) -> str:
    """How to make ``out`` again from the files before it, and everything after it."""
    pair = f" --src {out.src} --tgt {out.tgt}" if out.tgt else ""
    later = {"prepare": "", "generate": ", then `sdrrl sample` and the later stages",
             "sample": ", then `sdrrl translate` and `sdrrl filter`", "translate": f", then `sdrrl filter{pair}`",
             "filter": ""}[out.stage]
    stage = ("" if out.stage == "prepare" else
             f", or from this stage on: `sdrrl {_COMMAND[out.stage]} --config CONFIG{pair}`{later}")
    return ("finish the build this work directory belongs to: run `sdrrl build --config CONFIG` again with the config "
            f"and options of the build you want (model work already done comes from the cache){stage}.")


def generation_problems(outputs: Iterable[StageOutput], *, strict: bool = True) -> list[SdrrlError]:
    """Every output of ``outputs`` and of the chain before them that does not come from the files before it
    as they are now, one problem per broken link (an output after a broken one is not named again).

    ``strict`` (``sdrrl export``): an output without a record that describes it (an older sdrrl, a file
    written by hand, a stage killed between its output and its record) or a missing earlier output is a
    problem too. Not strict (a stage reading its inputs): only a record that describes the file and
    names other inputs than there are now is one; a file without such a record is taken as given."""
    memo: dict[Path, str] = {}

    def fp(path: Path) -> str:
        if path not in memo:
            memo[path] = fingerprint(path)
        return memo[path]

    order: dict[Path, StageOutput] = {}

    def visit(o: StageOutput) -> None:
        for before in o.reads.values():
            visit(before)
        order.setdefault(o.path, o)

    for o in outputs:
        visit(o)
    broken: set[Path] = set()
    problems: list[SdrrlError] = []
    for o in order.values():
        if any(before.path in broken for before in o.reads.values()):
            broken.add(o.path)
            continue
        if not o.path.is_file():
            if strict:
                broken.add(o.path)
                problems.append(SdrrlError(f"{o.path} ({o.stage} output) does not exist, so the outputs made from it "
                                           "cannot be checked against it.", rebuild_fix(o)))
            continue
        rec = read_json_object(record_path(o.path))
        depends = rec.get("depends")
        if not isinstance(depends, Mapping) or rec.get("output") != fp(o.path):
            if strict:
                broken.add(o.path)
                problems.append(SdrrlError(
                    f"{o.path} ({o.stage} output) has no record of the build that wrote it "
                    f"({record_path(o.path).name} is missing or describes other bytes: written by an older sdrrl or "
                    "by hand, changed since, or its stage was killed before it finished).", rebuild_fix(o)))
            continue
        recorded = depends.get("inputs") or {}
        stale = [before for name, before in o.reads.items()
                 if name not in recorded or (before.path.is_file() and recorded[name] != fp(before.path))]
        if stale:
            broken.add(o.path)
            names = " and ".join(str(b.path) for b in stale)
            problems.append(SdrrlError(
                f"The work directory mixes two builds: {o.path} ({o.stage} output) was made from another {names} "
                "than the one there now (a later run rewrote it and stopped before this stage, e.g. a build with "
                "another --max-rows, input or seed that was killed).", rebuild_fix(o)))
    return problems
