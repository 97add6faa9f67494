"""The sdrrl_* tasks' names, languages and per-sample scoring, shared by the lm-eval hooks
(eval_tasks/utils.py) and ``sdrrl score`` (which re-scores logged samples offline).

Per-sample values are what lm-eval's ``process_results`` returns; ``aggregate`` turns a list of them
into the task's metrics. Corpus metrics (spBLEU, COMET) carry the texts they need per sample.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any, Iterable

from sdrrl.errors import SdrrlError
from sdrrl.languages import LANGUAGES, TARGETS, get as get_language

log = logging.getLogger("sdrrl.metrics")

BENCHMARKS = ("belebele", "flores", "xlsum", "mkqa")
TASK_PREFIX = "sdrrl_"
# Selections: lm-eval *tags* (they do not own their tasks, so any of them combine in one run with
# each other and with single tasks); names must not match the glob sdrrl_*.
GROUP_PREFIX = "sdrrlgroup_"
# Averages: lm-eval *groups*, one per benchmark (FLORES per direction), reporting the unweighted
# mean over their languages (the paper's "Avg." columns). A group owns its tasks, so lm-eval
# refuses it beside a selection holding one of them ("Duplicate task").
AVG_PREFIX = "sdrrlavg_"
ENV_COMET_MODEL = "SDRRL_COMET_MODEL"
ENV_COMET_BATCH = "SDRRL_COMET_BATCH_SIZE"
COMET_OFF = ("none", "off", "skip", "0", "false")

# Metrics each benchmark reports (lm-eval metric names).
METRICS: dict[str, tuple[str, ...]] = {
    "belebele": ("acc",),
    "flores": ("spbleu", "spbleu_signature", "comet", "offtarget"),
    "xlsum": ("rouge1", "rougeL", "offtarget"),
    "mkqa": ("f1", "offtarget"),
}
# Which of them a group averages (a signature string is not averaged).
GROUP_METRICS: dict[str, tuple[str, ...]] = {
    "belebele": ("acc",), "flores": ("spbleu", "comet", "offtarget"),
    "xlsum": ("rouge1", "rougeL", "offtarget"), "mkqa": ("f1", "offtarget"),
}


def languages(benchmark: str) -> list[str]:
    """The ISO 639-3 codes a benchmark's tasks cover: the paper's targets it has, then English."""
    field = {"belebele": "belebele", "flores": "nllb", "xlsum": "xlsum", "mkqa": "mkqa"}[benchmark]
    covered = [iso for iso in TARGETS if getattr(LANGUAGES[iso], field)]
    return covered if benchmark == "flores" else covered + ["eng"]


def task_names(benchmark: str) -> list[str]:
    if benchmark == "flores":
        return [f"{TASK_PREFIX}flores_{a}-{b}" for iso in languages("flores")
                for a, b in ((iso, "eng"), ("eng", iso))]
    return [f"{TASK_PREFIX}{benchmark}_{iso}" for iso in languages(benchmark)]


_TASK_RE = re.compile(r"^sdrrl_(belebele|xlsum|mkqa)_([a-z]{3})$|^sdrrl_flores_([a-z]{3})-([a-z]{3})$")


def parse_task(name: str) -> tuple[str, str, str | None]:
    """``sdrrl_flores_ces-eng`` -> ("flores", "ces", "eng"); ``sdrrl_mkqa_dan`` -> ("mkqa", "dan", None)."""
    m = _TASK_RE.match(name)
    if not m:
        raise SdrrlError(f"{name!r} is not an sdrrl task name.",
                         "expected sdrrl_belebele_<iso>, sdrrl_flores_<iso>-<iso>, sdrrl_xlsum_<iso> or sdrrl_mkqa_<iso>.")
    if m.group(1):
        get_language(m.group(2))
        return m.group(1), m.group(2), None
    get_language(m.group(3)), get_language(m.group(4))
    return "flores", m.group(3), m.group(4)


def benchmark_key(task: str) -> str:
    """The benchmark part a task is averaged under: ``belebele``, ``flores_x-eng``, ``flores_eng-x``..."""
    benchmark, _, tgt = parse_task(task)
    if benchmark == "flores":
        return f"flores_{'x-eng' if tgt == 'eng' else 'eng-x'}"
    return benchmark


def benchmark_group(task: str) -> str:
    """The averaging group a task belongs to (FLORES: one per direction): ``sdrrlavg_<key>``."""
    return AVG_PREFIX + benchmark_key(task)


def task_tags(task: str) -> list[str]:
    """The selections (lm-eval tags) a task is in: its benchmark (FLORES: also per direction) and
    every language it involves (FLORES: both sides, so ``sdrrlgroup_eng`` holds every pair)."""
    benchmark, lang, tgt = parse_task(task)
    tags = [GROUP_PREFIX + benchmark]
    if benchmark == "flores":
        tags.append(GROUP_PREFIX + benchmark_key(task))
    tags += [GROUP_PREFIX + iso for iso in (lang, tgt) if iso]
    return tags


def coverage(iso: str) -> list[str]:
    """The benchmarks with an sdrrl_* task for language ``iso`` (FLORES: paired with English)."""
    return [b for b in BENCHMARKS if iso in languages(b) or (b == "flores" and iso == "eng")]


def output_language(doc: dict) -> str:
    """The language a generation task's output should be in."""
    return doc.get("tgt_lang") or doc["lang"]


# ---- per sample ------------------------------------------------------------------------------

def clean_prediction(text: Any) -> str:
    if isinstance(text, (list, tuple)):
        text = text[0] if text else ""
    return (text or "").strip()


def sample_metrics(benchmark: str, doc: dict, prediction: str) -> dict[str, Any]:
    """Per-sample metric values for a generation benchmark (``prediction``: the model's output)."""
    from sdrrl.metrics import offtarget

    prediction = clean_prediction(prediction)
    off = float(offtarget.is_off_target(prediction, output_language(doc)))
    if benchmark == "flores":
        return {"spbleu": (prediction, doc["reference"]), "spbleu_signature": (prediction, doc["reference"]),
                "comet": (doc["source"], prediction, doc["reference"]), "offtarget": off}
    if benchmark == "xlsum":
        from sdrrl.metrics import rouge

        r = rouge.score(prediction, doc["summary"], doc["lang"])
        return {"rouge1": r.rouge1, "rougeL": r.rougeL, "offtarget": off}
    if benchmark == "mkqa":
        from sdrrl.metrics import mkqa

        return {"f1": mkqa.f1(prediction, doc["answers"], doc["lang"]), "offtarget": off}
    raise SdrrlError(f"No generation metrics for {benchmark!r}.", "use one of flores, xlsum, mkqa.")


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


def comet(items: list[tuple[str, str, str]], model: str | None = None) -> float:
    from sdrrl.metrics.comet import corpus_score

    model = model or comet_model()
    if model is None:
        log.warning("COMET is turned off (%s=none): reporting NaN; re-score the logged samples "
                    "later with `sdrrl score`.", ENV_COMET_MODEL)
        return float("nan")
    srcs, hyps, refs = zip(*items) if items else ((), (), ())
    batch = int(os.environ.get(ENV_COMET_BATCH, "16"))
    return corpus_score(list(srcs), list(hyps), list(refs), model=model, batch_size=batch).score


def check_ready(benchmark: str, lang: str, tgt: str | None = None) -> None:
    """Fail before any generation when a metric could not be computed afterwards."""
    if benchmark == "flores":
        from sdrrl.metrics.bleu import check_tokenizer
        from sdrrl.metrics.comet import load

        check_tokenizer()
        model = comet_model()
        if model is not None:
            try:  # load, not only find: the encoder may be missing too (cached for the aggregation)
                load(model)
            except SdrrlError as err:
                raise SdrrlError(err.problem, f"{err.fix} Or set {ENV_COMET_MODEL}=none to skip COMET "
                                 "now and run `sdrrl score` on the --log_samples output later.") from None
    elif benchmark == "xlsum":
        from sdrrl.metrics import rouge

        rouge._scorer(rouge.scorer_language(lang))


def aggregate(benchmark: str, samples: list[dict[str, Any]], comet_model_name: str | None = None,
              with_comet: bool = True) -> dict[str, Any]:
    """Task metrics from per-sample values (as ``sample_metrics`` returns them)."""
    out: dict[str, Any] = {}
    if benchmark == "belebele":
        return {"acc": mean(s["acc"] for s in samples)}
    for name in METRICS[benchmark]:
        values = [s[name] for s in samples]
        if name == "spbleu":
            out[name] = spbleu(values)
        elif name == "spbleu_signature":
            out[name] = spbleu_signature(values)
        elif name == "comet":
            out[name] = comet(values, comet_model_name) if with_comet else float("nan")
        else:
            out[name] = mean(values)
    return out


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
