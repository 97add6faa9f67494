"""Per-sample scoring and aggregation of the sdrrl_* tasks, shared by the lm-eval hooks
(eval_tasks/utils.py) and ``sdrrl score`` (which re-scores logged samples offline).

What a benchmark is (its tasks, languages, metrics and their aggregation, how a sample is scored)
is the catalog's (``sdrrl.catalog.Benchmark``); this module runs it. Per-sample values are what
lm-eval's ``process_results`` returns; ``aggregate`` turns a list of them into the task's metrics.
Corpus metrics (spBLEU, COMET) carry the texts they need per sample.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Iterable

from sdrrl import catalog
from sdrrl.errors import SdrrlError

log = logging.getLogger("sdrrl.metrics")

ENV_COMET_MODEL = "SDRRL_COMET_MODEL"
ENV_COMET_BATCH = "SDRRL_COMET_BATCH_SIZE"  # the lm-eval tasks' COMET batch size (default 16)
COMET_OFF = ("none", "off", "skip", "0", "false")
COMET_RECORD_OFF = "off"  # the comet_model record of a result scored without COMET


def output_language(doc: dict) -> str:
    """The language a generation task's output should be in."""
    return doc.get("tgt_lang") or doc["lang"]


# ---- per sample ------------------------------------------------------------------------------

def clean_prediction(text: Any) -> str:
    if isinstance(text, (list, tuple)):
        text = text[0] if text else ""
    return (text or "").strip()


def sample_metrics(benchmark: str, doc: dict, prediction: str) -> dict[str, Any]:
    """Per-sample metric values for a generation benchmark (``prediction``: the model's output):
    the benchmark's own scorer, then the off-target rate where it reports one."""
    from sdrrl.metrics import offtarget

    bench = catalog.benchmark(benchmark)
    if not bench.generation:
        raise SdrrlError(f"{bench.label} is not a generation benchmark: lm-eval scores its samples.",
                         "score generation benchmarks only: "
                         + ", ".join(b.name for b in catalog.BENCHMARKS.values() if b.generation) + ".")
    prediction = clean_prediction(prediction)
    out = bench.score(doc, prediction) if bench.score is not None else {}
    if "offtarget" in bench.metric_names:
        verdict = offtarget.judge(prediction, output_language(doc))
        out["offtarget"] = float(verdict != offtarget.ON)  # undetermined outputs are off-target too
        if "undetermined" in bench.metric_names:
            out["undetermined"] = float(verdict == offtarget.UNDETERMINED)
    return out


# ---- aggregation -----------------------------------------------------------------------------

def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def spbleu(items: list[tuple[str, str]]) -> float:
    from sdrrl.metrics.bleu import corpus_bleu

    hyps, refs = zip(*items) if items else ((), ())
    return corpus_bleu(list(hyps), list(refs)).score


def spbleu_signature(items: list[tuple[str, str]]) -> str:
    from sdrrl.metrics.bleu import corpus_bleu

    hyps, refs = zip(*items) if items else ((), ())
    return corpus_bleu(list(hyps), list(refs)).signature


def comet_model() -> str | None:
    """The COMET model to use (``$SDRRL_COMET_MODEL``, default wmt22-comet-da); None when turned off."""
    from sdrrl.metrics.comet import DEFAULT_MODEL

    value = os.environ.get(ENV_COMET_MODEL, DEFAULT_MODEL).strip()
    return None if value.lower() in COMET_OFF else value


def comet_record(model: str | None) -> str:
    """The ``comet_model`` value a FLORES result records beside ``comet`` (as ``spbleu_signature``
    beside ``spbleu``): ``<hub id or local path>|sha256:<sha256 of the checkpoint file>``, or
    ``off`` when COMET is turned off (``model`` None)."""
    if model is None:
        return COMET_RECORD_OFF
    from pathlib import Path

    from sdrrl.metrics.comet import checkpoint_sha256

    _, digest = checkpoint_sha256(model)
    local = Path(model).expanduser()
    return f"{local.resolve() if local.exists() else model}|sha256:{digest}"


def comet(items: list[tuple[str, str, str]], model: str | None = None, batch_size: int | None = None) -> float:
    """Corpus COMET; ``batch_size`` None: ``$SDRRL_COMET_BATCH_SIZE`` (what the lm-eval tasks use), else 16."""
    from sdrrl.metrics.comet import corpus_score

    model = model or comet_model()
    if model is None:
        log.warning("COMET is turned off (%s=none): reporting NaN; re-score the logged samples "
                    "later with `sdrrl score`.", ENV_COMET_MODEL)
        return float("nan")
    srcs, hyps, refs = zip(*items) if items else ((), (), ())
    batch = batch_size if batch_size is not None else int(os.environ.get(ENV_COMET_BATCH, "16"))
    return corpus_score(list(srcs), list(hyps), list(refs), model=model, batch_size=batch).score


# How each Metric.aggregation turns per-sample values into the task's value (COMET: see aggregate).
AGGREGATIONS = {"mean": mean, "spbleu": spbleu, "spbleu_signature": spbleu_signature, "comet": comet,
                "comet_model": lambda items: comet_record(comet_model())}


def check_ready(benchmark: str, lang: str, tgt: str | None = None) -> None:
    """Fail before any generation when a metric could not be computed afterwards."""
    bench = catalog.benchmark(benchmark)
    aggregations = {m.aggregation for m in bench.metrics}
    if aggregations & {"spbleu", "spbleu_signature"}:
        from sdrrl.metrics.bleu import check_tokenizer

        check_tokenizer()
    if "comet" in aggregations:
        from sdrrl.metrics.comet import load

        model = comet_model()
        if model is not None:
            try:  # load, not only find: the encoder may be missing too (cached for the aggregation)
                load(model)
            except SdrrlError as err:
                raise SdrrlError(err.problem, f"{err.fix} Or set {ENV_COMET_MODEL}=none to skip COMET "
                                 "now and run `sdrrl score` on the --log_samples output later.") from None
    if bench.check is not None:
        bench.check(lang)


def aggregate(benchmark: str, samples: list[dict[str, Any]], comet_model_name: str | None = None,
              with_comet: bool = True, comet_batch_size: int | None = None) -> dict[str, Any]:
    """Task metrics from per-sample values (as ``sample_metrics`` returns them; a multiple-choice
    benchmark's as lm-eval logged them), each by its metric's aggregation."""
    out: dict[str, Any] = {}
    for metric in catalog.benchmark(benchmark).metrics:
        values = [s[metric.name] for s in samples]
        if metric.aggregation == "comet":
            out[metric.name] = (comet(values, comet_model_name, comet_batch_size) if with_comet
                                else float("nan"))
        elif metric.aggregation == "comet_model":
            out[metric.name] = comet_record((comet_model_name or comet_model()) if with_comet else None)
        else:
            out[metric.name] = AGGREGATIONS[metric.aggregation](values)
    return out


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
