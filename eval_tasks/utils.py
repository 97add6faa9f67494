"""Thin lm-eval hooks for the sdrrl_* tasks: load data, score samples, aggregate.

Everything real lives in the ``sdrrl`` package (sdrrl.metrics.*), so the metrics are usable (and
tested) without lm-eval, and ``sdrrl score`` re-scores logged samples with the same code.
"""

from __future__ import annotations

from sdrrl.languages import get as get_language
from sdrrl.metrics import benchmark_data, benchmarks


def _dataset(splits: dict[str, list[dict]]):
    import datasets

    out = {}
    for split, rows in splits.items():
        if not rows:
            from sdrrl.errors import SdrrlError

            raise SdrrlError(f"No evaluation rows in split {split!r}.",
                             "check the data directory or the dataset on the hub.")
        out[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(out)


# ---- custom_dataset hooks: lm-eval calls them with the task's metadata and dataset_kwargs -------

def load_belebele(sdrrl_lang: str, **options):
    return _dataset({"test": benchmark_data.belebele(sdrrl_lang, options)})


def load_flores(sdrrl_lang: str, sdrrl_tgt: str, **options):
    benchmarks.check_ready("flores", sdrrl_lang, sdrrl_tgt)
    names = {"src_name": get_language(sdrrl_lang).name, "tgt_name": get_language(sdrrl_tgt).name}
    return _dataset({split: [{**row, **names} for row in
                             benchmark_data.flores(sdrrl_lang, sdrrl_tgt, split, options)]
                     for split in ("devtest", "dev")})


def load_xlsum(sdrrl_lang: str, **options):
    benchmarks.check_ready("xlsum", sdrrl_lang)
    name = get_language(sdrrl_lang).name
    return _dataset({"test": [{**row, "lang_name": name}
                              for row in benchmark_data.xlsum(sdrrl_lang, "test", options)]})


def load_mkqa(sdrrl_lang: str, **options):
    name = get_language(sdrrl_lang).name
    return _dataset({"train": [{**row, "lang_name": name}
                               for row in benchmark_data.mkqa(sdrrl_lang, options)]})


def load_offtarget(sdrrl_lang: str, **options):
    return _dataset({"train": benchmark_data.offtarget(sdrrl_lang, options)})


# ---- process_results hooks --------------------------------------------------------------------

def process_flores(doc, results):
    return benchmarks.sample_metrics("flores", doc, results[0])


def process_xlsum(doc, results):
    return benchmarks.sample_metrics("xlsum", doc, results[0])


def process_mkqa(doc, results):
    return benchmarks.sample_metrics("mkqa", doc, results[0])


def process_offtarget(doc, results):
    return benchmarks.sample_metrics("offtarget", doc, results[0])


# ---- corpus aggregations ----------------------------------------------------------------------

def agg_spbleu(items):
    return benchmarks.spbleu(items)


def agg_spbleu_signature(items):
    return benchmarks.spbleu_signature(items)


def agg_comet(items):
    return benchmarks.comet(items)


def agg_comet_model(items):
    return benchmarks.AGGREGATIONS["comet_model"](items)
