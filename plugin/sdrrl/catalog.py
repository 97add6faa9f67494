"""The catalog: every training method, model family and benchmark sdrrl knows, each defined once.

Beside the language table (``sdrrl/languages.py``) and in its style: small frozen dataclasses in
registries keyed by name, looked up with :func:`method`, :func:`family` and :func:`benchmark`; an
unknown name is an error that lists the known ones, never a default. Everything else reads these
entries: compose and export (the subsets a method trains on), the recipes, the dataset card, the
report (run names, row labels, colours, table rows, model families, task names, metric scales), the
demo, the lm-eval task generator, the metrics and the benchmark loaders.

One module for the three, because they refer to one another (a benchmark's paper table per model
family, a method's rows in those tables), and because ``compose/methods.py`` (the plan of an
export) and ``metrics/benchmarks.py`` (scoring) already hold what compose and the metrics do with
them.

- **A method** is one :class:`Method` entry in ``_METHODS``: its subsets as a function of the
  compose config. ``sdrrl export`` (``methods: all`` too), the recipes (``<method>_llama2``), the
  dataset card and ``sdrrl report`` (run paths ``saves/<model>/<method>/<pair>``, ``--run``, row
  labels, colours) follow.
- **A model family** is one :class:`ModelFamily` entry: ``sdrrl report`` recognises its runs by the
  recipes' ``saves/<save_dir>/`` folder and its base model by the hub id; the recipes get
  ``sdrrl_<family>``.
- **A benchmark** is one :class:`Benchmark` entry plus its lm-eval prompt
  (``eval_tasks/_<name>_template``, which names its data hook in ``eval_tasks/utils.py``); task
  names, tags, averaging groups, scoring, ``sdrrl score``, ``sdrrl languages`` and the report follow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from sdrrl import languages
from sdrrl.compose.subsets import TRANSFER_SUBSETS, SubsetSpec
from sdrrl.errors import SdrrlError, UnknownNameError

_T = TypeVar("_T")


def _get(table: dict[str, _T], kind: str, cls: str, name: object) -> _T:
    try:
        return table[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"Unknown {kind} {name!r}.",
            f"use one of: {', '.join(table)}; to add a {kind}, add one {cls}(...) entry in sdrrl/catalog.py.",
        ) from None


def _parts(path: str) -> list[str]:
    """A path's components, lower-cased (``/`` or ``\\`` separated; empty ones dropped)."""
    return [p.lower() for p in re.split(r"[/\\]+", path) if p]


# ---- methods ----------------------------------------------------------------------------------

# Which of the paper's tables have a row of a method.
BENCHMARK_ROWS = "benchmarks"   # the per-benchmark tables (2-5 on LLaMA-2, 8-11 and 7 on SeaLLM)
ABLATION_ROWS = "ablations"     # Table 6 (NLU / NLG averages of SDRRL and its ablations)

SDRRL = "sdrrl"   # the paper's method (Table 12 compares it with REFERENCE per source language)
REFERENCE = "sft"  # what the report's "change against SFT" columns and Table 12 subtract
BASE = "base"      # a model before any fine-tuning (`sdrrl report` runs); not a training method
BASE_LABEL = "base model"
BASE_COLOR = "#7f7f7f"


@dataclass(frozen=True)
class Method:
    name: str           # registry names {name}_{src}-{tgt}_{subset}, saves/<model>/{name}/<pair>, --run
    label: str          # the paper's row label
    description: str    # the dataset card's first sentence
    # The subsets it trains on for one source/target pair, from a ComposeConfig; None: the
    # source-language data as it is (SFT: one dataset per source language, no target).
    subsets: Callable[[Any], list[SubsetSpec]] | None
    paper_rows: tuple[str, ...]   # BENCHMARK_ROWS, ABLATION_ROWS: the paper tables with its row
    color: str          # its colour in the report's plots

    @property
    def source_only(self) -> bool:
        return self.subsets is None

    def pair(self, src: str, tgt: str | None = None) -> str:
        """``eng-ind``, or ``eng`` for a source-only method: its folder in the recipes' output_dir."""
        return src if self.source_only else f"{src}-{tgt}"

    def entry_name(self, src: str, tgt: str | None = None, subset: str | None = None) -> str:
        """The registry name of one of its datasets (docs/CONTRACTS.md)."""
        return f"{self.name}_{src}" if self.source_only else f"{self.name}_{src}-{tgt}_{subset}"


def _transfer(kinds, responses: str, code_switch: bool, template: str = "plain") -> list[SubsetSpec]:
    return [SubsetSpec(k, responses, code_switch, template) for k in kinds]


_MT_COMP = [SubsetSpec("mt"), SubsetSpec("comp")]

# | method             | subsets (answers; code-switched questions?)                               |
# |--------------------|---------------------------------------------------------------------------|
# | sft                | D as is (source language only)                                            |
# | tsft               | ll (gold) if baselines.tsft_include_source, tt (gold); no switching       |
# | cit                | baselines.cit_subsets (gold), question + "Answer in <language>."          |
# | xcot               | baselines.xcot_subsets (gold), code-switched questions                    |
# | sdrrl              | ll tl lt tt (D_synth, switched) + mt comp                                 |
# | sdrrl-no-tl-lt     | ll tt + mt comp                                          (Table 6 row 2)  |
# | sdrrl-no-synth     | ll tl lt tt with gold answers (D instead of D_synth) + mt comp    (row 3) |
# | sdrrl-no-mt-comp   | ll tl lt tt                                                       (row 4) |
# | sdrrl-no-cs        | ll tl lt tt without switching + mt comp                           (row 5) |
# | sdrrl-only-mt-comp | mt comp                                                           (row 6) |
_METHODS: tuple[Method, ...] = (
    Method("sft", "SFT", "SFT baseline: the resource-rich-language instruction data as it is.",
           None, (BENCHMARK_ROWS,), "#8c564b"),
    Method("tsft", "T-SFT",
           "Translate-then-SFT baseline (Chen et al. 2023): gold answers, translated pairs plus the originals.",
           lambda cfg: _transfer(("ll", "tt") if cfg.baselines.tsft_include_source else ("tt",), "gold", False),
           (BENCHMARK_ROWS,), "#1f77b4"),
    Method("cit", "CIT",
           "Cross-lingual instruction tuning baseline (Li et al. 2023a): question in one language, answer "
           "asked for in the other.",
           lambda cfg: _transfer(cfg.baselines.cit_subsets, "gold", False, "cit"), (BENCHMARK_ROWS,), "#ff7f0e"),
    Method("xcot", "XCOT",
           "xCoT baseline (Chai et al. 2024): gold answers, code-switched questions, source-language answers "
           "supervising target-language questions.",
           lambda cfg: _transfer(cfg.baselines.xcot_subsets, "gold", True), (BENCHMARK_ROWS,), "#2ca02c"),
    Method("sdrrl", "SDRRL",
           "SDRRL (paper section 3): the transfer set with D_synth answers and code-switched questions, "
           "plus translation (mt) and completion (comp) data from a parallel corpus.",
           lambda cfg: _transfer(TRANSFER_SUBSETS, "synth", True) + _MT_COMP,
           (BENCHMARK_ROWS, ABLATION_ROWS), "#d62728"),
    Method("sdrrl-no-tl-lt", "- D_TL and D_LT",
           "SDRRL ablation (Table 6): without the cross-lingual subsets D_TL and D_LT.",
           lambda cfg: _transfer(("ll", "tt"), "synth", True) + _MT_COMP, (ABLATION_ROWS,), "#9467bd"),
    Method("sdrrl-no-synth", "- D_synth + D", "SDRRL ablation (Table 6): D_synth replaced by D (gold answers only).",
           lambda cfg: _transfer(TRANSFER_SUBSETS, "gold", True) + _MT_COMP, (ABLATION_ROWS,), "#e377c2"),
    Method("sdrrl-no-mt-comp", "- D_mt and D_comp",
           "SDRRL ablation (Table 6): without the translation and completion data.",
           lambda cfg: _transfer(TRANSFER_SUBSETS, "synth", True), (ABLATION_ROWS,), "#bcbd22"),
    Method("sdrrl-no-cs", "- code switching", "SDRRL ablation (Table 6): without code-switching.",
           lambda cfg: _transfer(TRANSFER_SUBSETS, "synth", False) + _MT_COMP, (ABLATION_ROWS,), "#17becf"),
    Method("sdrrl-only-mt-comp", "only D_mt and D_comp",
           "SDRRL ablation (Table 6): the translation and completion data only.",
           lambda cfg: list(_MT_COMP), (ABLATION_ROWS,), "#aec7e8"),
)

METHODS: dict[str, Method] = {m.name: m for m in _METHODS}


def method(name: str) -> Method:
    """A training method by name; an unknown name lists the known ones."""
    return _get(METHODS, "method", "Method", name)


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def paper_methods(rows: str) -> tuple[str, ...]:
    """The methods with a row in the paper tables of kind ``rows`` (BENCHMARK_ROWS, ABLATION_ROWS)."""
    return tuple(m.name for m in METHODS.values() if rows in m.paper_rows)


def label(name: str) -> str:
    """The row label of a method, or of BASE."""
    return BASE_LABEL if name == BASE else method(name).label


def color(name: str) -> str:
    """The plot colour of a method, or of BASE."""
    return BASE_COLOR if name == BASE else method(name).color


# ---- model families -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelFamily:
    name: str                       # --run ...@name; the model column of paper_results.csv
    label: str
    base_model: str                 # hub id of the base model its recipes train (and generate with)
    base_model_note: str            # where that choice comes from (the recipes' comment)
    save_dir: str                   # the recipes' output_dir: saves/<save_dir>/<method>/<pair>
    paper_targets: tuple[str, ...]  # the target languages the paper evaluates it on
    summary_tables: tuple[int, ...]  # the paper's averages tables over it (6 and 12; 7); each
    #                                  benchmark names its own per-language table (Benchmark.paper_tables)
    recipe_target: str              # the target language of its shipped SDRRL recipe
    main: bool = False              # the paper's main model: its tables are always shown

    @property
    def paper_tables(self) -> tuple[int, ...]:
        per_benchmark = {b.table(self.name) for b in BENCHMARKS.values()} - {None}
        return tuple(sorted(per_benchmark | set(self.summary_tables)))

    def is_base_model(self, path: str) -> bool:
        """``path`` is the base model: its hub id, a folder named as the hub repository
        (``/models/Llama-2-7b-hf``, ``.../meta-llama/Llama-2-7b-hf``) or lm-eval's folder name for it
        (``meta-llama__Llama-2-7b-hf``); compared whole, ignoring case."""
        parts = _parts(path)
        org, _, repo = self.base_model.lower().rpartition("/")
        return bool(parts) and parts[-1] in (repo, f"{org}__{repo}")

    def is_save_dir(self, folder: str) -> bool:
        """``folder`` is the recipes' model folder under ``saves/`` (``llama2-7b``), ignoring case."""
        return folder.lower() == self.save_dir.lower()


_FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("llama2", "LLaMA-2-7B", "meta-llama/Llama-2-7b-hf",
                "paper 4.1: LLaMA-2-7B, the base (not chat) model", "llama2-7b",
                # the paper's 14 LLaMA-2 targets (section 4.1)
                ("ces", "dan", "ukr", "bul", "fin", "hun", "nob", "ind", "jpn", "kor", "por", "slv", "vie", "pol"),
                (6, 12), "ind", main=True),
    # appendix B: SeaLLM-7B as the backbone
    ModelFamily("seallm", "SeaLLM-7B", "SeaLLMs/SeaLLM-7B-v2", "appendix B: SeaLLM-7B (our pick of release)",
                "seallm-7b", ("ind", "tha", "khm"), (7,), "tha"),
)

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in _FAMILIES}


def family(name: str) -> ModelFamily:
    """A model family by name; an unknown name lists the known ones."""
    return _get(FAMILIES, "model family", "ModelFamily", name)


def main_family() -> ModelFamily:
    (main,) = [f for f in FAMILIES.values() if f.main]
    return main


def family_of_save_dir(folder: str) -> ModelFamily | None:
    return next((f for f in FAMILIES.values() if f.is_save_dir(folder)), None)


def family_of_base_model(path: str) -> ModelFamily | None:
    return next((f for f in FAMILIES.values() if f.is_base_model(path)), None)


def families_text() -> str:
    """How each family's runs are recognised, for error messages."""
    return "; ".join(f"{f.name}: saves/{f.save_dir}/... or {f.base_model}" for f in FAMILIES.values())


# ---- benchmarks ---------------------------------------------------------------------------------

TASK_PREFIX = "sdrrl_"
# Selections: lm-eval *tags* (they do not own their tasks, so any of them combine in one run with
# each other and with single tasks); names must not match the glob sdrrl_*.
GROUP_PREFIX = "sdrrlgroup_"
# Averages: lm-eval *groups*, one per benchmark (a paired one per direction), reporting the
# unweighted mean over their languages. A group owns its tasks, so lm-eval refuses it beside a
# selection holding one of them ("Duplicate task").
AVG_PREFIX = "sdrrlavg_"

# The FLORES+ revision we evaluate on: the one place it is set. FLORES+ is revised over time
# (e.g. nob_Latn in 2.0-rc.3), so results are comparable only at one revision. None loads the
# hub's current main branch and records the commit it resolved to; set a commit sha here (or
# $SDRRL_FLORES_REVISION) to pin it.
FLORES_PLUS_REVISION: str | None = None
PARQUET_BRANCH = "refs/convert/parquet"  # datasets>=4 runs no loading scripts: the hub's parquet export


@dataclass(frozen=True)
class Metric:
    name: str               # lm-eval's metric name
    label: str
    scale: float = 100.0    # x scale = as the paper prints it (x100: accuracy, ROUGE, F1, COMET, rates)
    # How per-sample values become the task's value: "mean", "spbleu", "spbleu_signature", "comet",
    # "comet_model" (sdrrl.metrics.benchmarks.AGGREGATIONS; the task templates name the same functions).
    aggregation: str = "mean"
    averaged: bool = True   # the sdrrlavg_* groups and `sdrrl score` average it (a signature is not)
    unit: str = "×100"      # its unit as the report's plot axes print it
    # `sdrrl report`: ours within this many points (as the paper prints the metric) of the paper's
    # value counts as reproduced; None: not compared with the paper. ``basis``: why this tolerance.
    tolerance: float | None = None
    basis: str = ""


@dataclass(frozen=True)
class DataSource:
    hub: str                              # hub dataset id
    revision: str | None = None           # hub revision (None: main; the commit is recorded)
    revision_env: str | None = None       # an environment variable that overrides ``revision``
    by: str = "name"                      # a config goes to load_dataset as "name" or "data_dir"
    # Layouts under the local data directory ($SDRRL_EVAL_DATA), the first with matches wins
    # ({config}, {split} filled in); docs/evaluation.md describes them.
    local: tuple[str, ...] = ()
    release_url: str | None = None        # where the hub has no copy: the official release file

    @property
    def where(self) -> str:
        """The hub dataset and the revision asked for, as messages name it."""
        return self.hub + (f"@{self.requested_revision()}" if self.requested_revision() else "")

    def requested_revision(self) -> str | None:
        return (os.environ.get(self.revision_env) if self.revision_env else None) or self.revision


@dataclass(frozen=True)
class Benchmark:
    name: str                 # task names sdrrl_<name>_<lang> (paired: sdrrl_<name>_<src>-<tgt>)
    label: str
    language_field: str       # the Language field holding its code for a language (None: not covered)
    metrics: tuple[Metric, ...]
    source: DataSource
    generation: bool = True   # generate_until, scored per sample by sdrrl; False: multiple choice (lm-eval)
    paired: bool = False      # one task per direction with English (translation), not one per language
    paper_tables: tuple[tuple[str, int], ...] = ()  # (model family, number of its table in the paper)
    paper_english: bool = True  # the paper's tables also report it on English (paired: X→English)
    paper_figure: int | None = None  # the paper's figure drawn from it (3: off-target rates, appendix E)
    # Where its English rows come from when another dataset than ``source`` (Figure 3: Dolly, whose
    # translations ``source`` holds); None: ``source`` for every language.
    english_source: DataSource | None = None
    composite: str | None = None  # the paper's average it enters (Tables 6, 7, 12): "nlu" or "nlg"
    headline: str | None = None   # the metric those averages (and Table 7) take
    # Per-sample values of its metrics, off-target rate apart (generation benchmarks), from the
    # row and the cleaned prediction; and a check that fails before generation when a metric could
    # not be computed for a language (beyond what its metrics' aggregations check).
    score: Callable[[dict, str], dict] | None = None
    check: Callable[[str], None] | None = None

    # -- languages --
    def covers(self, lang: str) -> bool:
        return getattr(languages.get(lang), self.language_field) is not None

    def code(self, lang: str) -> str:
        """Its code for ``lang`` (a config name, an answer key); an error where it has none."""
        value = getattr(languages.get(lang), self.language_field)
        if value is None:
            raise SdrrlError(f"{self.label} has no {languages.get(lang).name} data.",
                             f"evaluate {self.label} only for languages whose `{self.language_field}` field is "
                             "set in sdrrl/languages.py.")
        return value

    def languages(self) -> list[str]:
        """The ISO 639-3 codes its tasks cover: the targets it has, then English (a paired
        benchmark pairs each with English instead)."""
        covered = [iso for iso in languages.TARGETS if self.covers(iso)]
        return covered if self.paired else covered + ["eng"]

    def paper_languages(self, family_name: str) -> tuple[str, ...]:
        """The target languages the paper's table of it has for a model family (none without a table)."""
        if self.table(family_name) is None:
            return ()
        return tuple(t for t in family(family_name).paper_targets if self.covers(t))

    # -- tasks --
    def task(self, lang: str, tgt: str | None = None) -> str:
        return f"{TASK_PREFIX}{self.name}_{lang}-{tgt}" if self.paired else f"{TASK_PREFIX}{self.name}_{lang}"

    def tasks(self) -> list[str]:
        if self.paired:
            return [self.task(a, b) for iso in self.languages() for a, b in ((iso, "eng"), ("eng", iso))]
        return [self.task(iso) for iso in self.languages()]

    def tasks_for(self, lang: str) -> list[str]:
        """Its tasks in target language ``lang`` (paired: both directions with English)."""
        if not self.covers(lang):
            return []
        return [self.task("eng", lang), self.task(lang, "eng")] if self.paired else [self.task(lang)]

    def direction(self, side: str) -> str:
        """The paper's direction key for the target side ("") or the English side ("eng")."""
        if self.paired:
            return "eng-x" if side == "" else "x-eng"
        return side

    def task_for(self, direction: str, lang: str) -> str:
        """The task behind a paper cell: its direction ("", "eng", "x-eng", "eng-x") and column language."""
        if self.paired:
            return self.task(lang, "eng") if direction == "x-eng" else self.task("eng", lang)
        return self.task("eng" if direction == "eng" else lang)

    # -- metrics and tables --
    def metric(self, name: str) -> Metric:
        return _get({m.name: m for m in self.metrics}, f"{self.name} metric", "Metric", name)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def averaged_metrics(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.averaged)

    def table(self, family_name: str) -> int | None:
        return dict(self.paper_tables).get(family_name)


def _score_flores(doc: dict, prediction: str) -> dict:
    return {"spbleu": (prediction, doc["reference"]), "spbleu_signature": (prediction, doc["reference"]),
            "comet": (doc["source"], prediction, doc["reference"]),
            "comet_model": None}  # a record of the task, not of a sample: its aggregation writes it


def _score_xlsum(doc: dict, prediction: str) -> dict:
    from sdrrl.metrics import rouge

    r = rouge.score(prediction, doc["summary"], doc["lang"])
    return {"rouge1": r.rouge1, "rougeL": r.rougeL}


def _check_xlsum(lang: str) -> None:
    from sdrrl.metrics import rouge

    rouge._scorer(rouge.scorer_language(lang))


def _score_mkqa(doc: dict, prediction: str) -> dict:
    from sdrrl.metrics import mkqa

    return {"f1": mkqa.f1(prediction, doc["answers"], doc["lang"])}


# Every generation benchmark with an off-target rate reports the share of undetermined outputs
# beside it (no letter: no language to identify; counted as off-target; sdrrl.metrics.offtarget).
OFFTARGET_METRICS = (Metric("offtarget", "off-target %", unit="%"), Metric("undetermined", "undetermined %", unit="%"))
# Tolerances of `sdrrl report`: about one standard error of a per-language score on the paper's test
# set, never under 1 point (library versions and decoding move generation metrics by fractions of one).
_GENERATION = "never under 1 point: library versions and decoding move generation metrics by fractions of one"

_BENCHMARKS: tuple[Benchmark, ...] = (
    # BELEBELE (Bandarkar et al., 2023): multiple-choice reading comprehension, accuracy.
    Benchmark("belebele", "BELEBELE", "belebele",
              (Metric("acc", "accuracy", unit="%", tolerance=2.0,
                      basis="900 questions per language: one standard error of an accuracy near 50% is "
                            "1.7 points, rounded up"),),
              DataSource("facebook/belebele",
                         local=("belebele/data/{config}.jsonl", "belebele/data/{config}.parquet",
                                "belebele/{config}.jsonl", "belebele/{config}.parquet")),
              generation=False, paper_tables=(("llama2", 2), ("seallm", 8)), composite="nlu", headline="acc"),
    # FLORES-200 (FLORES+ release): translation with English both ways; spBLEU, COMET, off-target.
    Benchmark("flores", "FLORES", "nllb",
              (Metric("spbleu", "spBLEU", scale=1.0, aggregation="spbleu", unit="BLEU", tolerance=1.0,
                      basis="a corpus score over 1,012 sentences per direction; " + _GENERATION),
               Metric("spbleu_signature", "spBLEU signature", scale=1.0, aggregation="spbleu_signature",
                      averaged=False),
               Metric("comet", "COMET", aggregation="comet", tolerance=1.0,
                      basis="a corpus score over 1,012 sentences per direction; " + _GENERATION),
               # "<COMET model id or local path>|sha256:<checkpoint sha256>", or "off"
               Metric("comet_model", "COMET model", scale=1.0, aggregation="comet_model", averaged=False, unit=""),
               *OFFTARGET_METRICS),
              DataSource("openlanguagedata/flores_plus", revision=FLORES_PLUS_REVISION,
                         revision_env="SDRRL_FLORES_REVISION",
                         local=("flores/{split}/{config}.parquet", "flores/{split}/{config}.jsonl",
                                # FLORES-200's original release (the paper's test set): one sentence a line
                                "flores200_dataset/{split}/{config}.{split}")),
              paired=True, paper_tables=(("llama2", 3), ("seallm", 10)), composite="nlg", headline="spbleu",
              score=_score_flores),
    # XL-Sum (Hasan et al., 2021): one-sentence summaries; ROUGE-1 / ROUGE-L F1, off-target.
    Benchmark("xlsum", "XL-Sum", "xlsum",
              (Metric("rouge1", "ROUGE-1", tolerance=1.0,
                      basis="a mean over hundreds to thousands of summaries per language; " + _GENERATION),
               Metric("rougeL", "ROUGE-L", tolerance=1.0,
                      basis="a mean over hundreds to thousands of summaries per language; " + _GENERATION),
               *OFFTARGET_METRICS),
              DataSource("csebuetnlp/xlsum", revision=PARQUET_BRANCH, by="data_dir",
                         local=("xlsum/{config}/{split}/*.parquet", "xlsum/{config}/{split}/*.jsonl",
                                "xlsum/{config}_{split}.jsonl")),
              paper_tables=(("llama2", 4), ("seallm", 9)), composite="nlg", headline="rougeL",
              score=_score_xlsum, check=_check_xlsum),
    # MKQA (Longpre et al., 2020): open-domain questions with short answers; F1, off-target.
    Benchmark("mkqa", "MKQA", "mkqa",
              (Metric("f1", "F1", tolerance=1.0,
                      basis="a mean over 10,000 questions per language; " + _GENERATION), *OFFTARGET_METRICS),
              DataSource("apple/mkqa", revision=PARQUET_BRANCH, by="data_dir",
                         local=("mkqa/mkqa/{split}/*.parquet", "mkqa/mkqa/{split}/*.jsonl",
                                "mkqa/mkqa.jsonl.gz", "mkqa/mkqa.jsonl"),
                         # what MKQA's own loading script (apple/mkqa on the hub) downloads
                         release_url="https://github.com/apple/ml-mkqa/raw/master/dataset/mkqa.jsonl.gz"),
              paper_tables=(("llama2", 5), ("seallm", 11)), composite="nlg", headline="f1",
              score=_score_mkqa),
    # Appendix E / Figure 3: the off-target rate of the responses to Dolly's instructions (English;
    # Conover et al., 2023) and to their Bactrian-X translations (Li et al., 2023b; the rows whose
    # id starts with "dolly-"). Bactrian-X has no Danish, Bulgarian, Hungarian or Norwegian: those
    # targets have no task (Language.bactrian_x is None). No table in the paper, so no Avg. group.
    Benchmark("offtarget", "Dolly / Bactrian-X", "bactrian_x", OFFTARGET_METRICS,
              DataSource("MBZUAI/Bactrian-X", revision=PARQUET_BRANCH, by="data_dir",
                         local=("bactrian-x/{config}/{split}/*.parquet", "bactrian-x/{config}/{split}/*.jsonl")),
              paper_english=False, paper_figure=3,
              english_source=DataSource("databricks/databricks-dolly-15k",
                                        local=("dolly/*.jsonl", "dolly/*.parquet"))),
)

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _BENCHMARKS}


def benchmark(name: str) -> Benchmark:
    """A benchmark by name; an unknown name lists the known ones."""
    return _get(BENCHMARKS, "benchmark", "Benchmark", name)


def parse_task(name: str) -> tuple[str, str, str | None]:
    """``sdrrl_flores_ces-eng`` -> ("flores", "ces", "eng"); ``sdrrl_mkqa_dan`` -> ("mkqa", "dan", None)."""
    for b in BENCHMARKS.values():
        prefix = f"{TASK_PREFIX}{b.name}_"
        if not isinstance(name, str) or not name.startswith(prefix):
            continue
        m = re.fullmatch(r"([a-z]{3})-([a-z]{3})" if b.paired else r"([a-z]{3})", name[len(prefix):])
        if m:
            for code in m.groups():
                languages.get(code)
            return b.name, m.group(1), m.group(2) if b.paired else None
    forms = [f"{TASK_PREFIX}{b.name}_<iso>" + ("-<iso>" if b.paired else "") for b in BENCHMARKS.values()]
    raise SdrrlError(f"{name!r} is not an sdrrl task name.", f"expected one of {', '.join(forms)}.")


def benchmark_key(task: str) -> str:
    """The part a task is averaged under: the benchmark, a paired one per direction (``flores_x-eng``)."""
    name, _, tgt = parse_task(task)
    if benchmark(name).paired:
        return f"{name}_{'x-eng' if tgt == 'eng' else 'eng-x'}"
    return name


def average_groups() -> dict[str, tuple[str, ...]]:
    """The paper's Avg. columns as lm-eval groups, ``sdrrlavg_<family>_<key>`` -> their tasks: per
    model family and benchmark with a table of the paper (a paired one per direction), the target-
    language tasks of that table's columns (LLaMA-2: its 14 targets, or those the benchmark has;
    English apart). A benchmark without a table of the paper has no group."""
    out: dict[str, tuple[str, ...]] = {}
    for fam in FAMILIES.values():
        for bench in BENCHMARKS.values():
            langs = bench.paper_languages(fam.name)
            for direction in (("x-eng", "eng-x") if bench.paired else ("",)) if langs else ():
                key = f"{bench.name}_{direction}" if bench.paired else bench.name
                out[f"{AVG_PREFIX}{fam.name}_{key}"] = tuple(bench.task_for(direction, lang) for lang in langs)
    return out


def task_tags(task: str) -> list[str]:
    """The selections (lm-eval tags) a task is in: its benchmark (a paired one also per direction)
    and every language it involves (paired: both sides, so ``sdrrlgroup_eng`` holds every pair)."""
    name, lang, tgt = parse_task(task)
    tags = [GROUP_PREFIX + name]
    if benchmark(name).paired:
        tags.append(GROUP_PREFIX + benchmark_key(task))
    return tags + [GROUP_PREFIX + iso for iso in (lang, tgt) if iso]


def coverage(iso: str) -> list[str]:
    """The benchmarks with an sdrrl_* task for language ``iso`` (paired ones: with English)."""
    return [b.name for b in BENCHMARKS.values() if iso in b.languages() or (b.paired and iso == "eng")]


def composite_parts(kind: str, side: str) -> list[tuple[str, str, str]]:
    """(benchmark, metric, direction) of the paper's average ``kind`` ("nlu", "nlg") on the target
    side ("") or the English side ("eng")."""
    return [(b.name, b.headline, b.direction(side)) for b in BENCHMARKS.values() if b.composite == kind]
