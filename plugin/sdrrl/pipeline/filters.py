"""The filter stage: drop low-quality translations, keep every rejection with its stage and reason.

Three filters, cheapest first; a translation is judged by the first one that rejects it:

1. :class:`HeuristicFilter` (stage ``heuristic``), the "filter low-quality translations" rules the
   paper cites (Zeng et al., 2021), as we chose them:
   - ``empty``: the translation is empty or whitespace while the source is not;
   - ``copy_of_source``: the translation equals the source (whitespace-normalised, case-folded) and
     the source's prose (what was sent to NLLB: not code blocks) has at least ``copy_min_letters``
     letters: NLLB left it untranslated;
   - ``length_ratio``: characters(translation) / characters(source) outside
     [``min_length_ratio``, ``max_length_ratio``] for sources of at least ``ratio_min_source_chars``
     characters: dropped or hallucinated content (bounds are wide: Japanese runs ~0.3x English);
   - ``repetition``: a unit of 1-30 characters repeated ``max_repeats`` times in a row that the
     source does not repeat: an NMT decoding loop.
2. :class:`LanguageIdFilter` (stage ``lid``): CLD3 (gcld3, the paper's choice) on the translation
   with code blocks removed; ``off_target:<code>`` when its language is not the target's. Texts with
   fewer than ``lid_min_letters`` letters are not judged (CLD3 guesses on them).
3. :class:`CometKiwiFilter` (stage ``qe``): reference-free COMET QE (Unbabel/wmt22-cometkiwi-da),
   ``qe_below_threshold`` when the score < tau (0.8). Scores are cached like translations, and
   computed in chunks planned once over every pair of the stage (:mod:`sdrrl.pipeline.batches`): a
   score depends, in its last digits, on the pairs it is computed with.

Sharded, every shard runs the heuristics and language ID over all of D_synth (cheap) and scores its
share of the QE chunks; the last shard to finish writes the three files from every shard's scores.

Every rejected translation goes to ``{src}-{tgt}.excluded.jsonl``; the summary counts kept and
rejected translations per field and reason.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from sdrrl import hub, languages, layout
from sdrrl.errors import ModelNotFoundError, SdrrlError
from sdrrl.io import write_json, write_jsonl
from sdrrl.layout import ExcludedRow, FilteredRow, Summary
from sdrrl.pipeline import batches, segment, workdir
from sdrrl.pipeline.cache import Cache, ModelOutput
from sdrrl.pipeline.progress import Progress, say


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def _prose(text: str) -> str:
    """The translatable prose of a text: code blocks, list markers and layout removed."""
    return " ".join(segment.split(text, max_tokens=10**9).segments)


class HeuristicFilter:
    stage = "heuristic"

    def __init__(self, min_length_ratio: float = 0.2, max_length_ratio: float = 5.0,
                 ratio_min_source_chars: int = 20, max_repeats: int = 6, copy_min_letters: int = 12):
        self.min_ratio, self.max_ratio = min_length_ratio, max_length_ratio
        self.ratio_min_source_chars = ratio_min_source_chars
        self.copy_min_letters = copy_min_letters
        self._repeat = re.compile(r"(.{1,30}?)\1{%d,}" % (max_repeats - 1), re.DOTALL)

    def check(self, source: str, translation: str) -> tuple[str | None, float | None]:
        """(reason, score) for a rejected translation, (None, None) for a kept one."""
        src, mt = source.strip(), translation.strip()
        if not mt:
            return ("empty", None) if src else (None, None)
        if " ".join(mt.split()).casefold() == " ".join(src.split()).casefold() \
                and _letters(src) >= self.copy_min_letters \
                and _letters(_prose(src)) >= self.copy_min_letters:
            # judged on the prose sent to NLLB: code blocks and letterless lines are kept verbatim
            # by design, so a text of nothing else comes back equal without being a copy
            return "copy_of_source", None
        if len(src) >= self.ratio_min_source_chars:
            ratio = len(mt) / len(src)
            if not self.min_ratio <= ratio <= self.max_ratio:
                return "length_ratio", round(ratio, 4)
        if self._has_loop(mt) and not self._has_loop(src):
            return "repetition", None
        return None, None

    def _has_loop(self, text: str) -> bool:
        return any(m.group(1).strip() for m in self._repeat.finditer(text))


class LanguageIdFilter:
    """CLD3 language ID; ``calls`` counts texts judged."""

    stage = "lid"

    def __init__(self, target_iso: str, min_letters: int = 20):
        self.accepted = languages.get(target_iso).cld3_codes
        self.min_letters = min_letters
        self._detector = None
        self.calls = 0

    def identify(self, text: str) -> tuple[str, float]:
        if self._detector is None:
            import gcld3

            self._detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=2000)
        self.calls += 1
        result = self._detector.FindLanguage(text=text)
        return result.language, float(result.probability)

    def judge(self, text: str) -> tuple[str, float] | None:
        """CLD3's label and probability for ``text``'s prose; None when it has too few letters to judge."""
        prose = _prose(text)
        if _letters(prose) < self.min_letters:
            return None
        return self.identify(prose)

    def check(self, translation: str) -> tuple[str | None, float | None]:
        judged = self.judge(translation)
        if judged is None:
            return None, None
        lang, prob = judged
        if lang not in self.accepted:
            return f"off_target:{lang}", round(prob, 4)
        return None, None


def _qe_model_missing(model: str, detail: str) -> ModelNotFoundError:
    get = ("set filter.qe_model (or --qe-model) to a complete COMET checkpoint" if hub.is_local(model) else
           f"download it where the hub is reachable (it is gated: accept its license on huggingface.co, then "
           f"`huggingface-cli download {model} --local-dir DIR`), copy DIR here and set filter.qe_model "
           "(or --qe-model) to it")
    return ModelNotFoundError(
        f"Cannot load the QE model {model!r} ({detail}).",
        f"{get}: DIR/checkpoints/model.ckpt with DIR/hparams.yaml; its encoder (named in DIR/hparams.yaml, e.g. "
        "microsoft/infoxlm-large) must be in the local HF cache too. Or disable QE with "
        "filter.qe_enabled: false (not the paper's setup).")


class CometKiwiFilter:
    """Reference-free COMET QE with cached scores; ``calls`` counts model calls."""

    stage = "qe"

    def __init__(self, model: str = "Unbabel/wmt22-cometkiwi-da", threshold: float = 0.8,
                 batch_size: int = 16, gpus: int | None = None, cache: Cache | None = None):
        self.model, self.threshold, self.batch_size, self.gpus = model, threshold, batch_size, gpus
        self.outputs = ModelOutput("qe", model, {})  # a score depends on the model only, not on tau
        self.cache = cache
        self._comet = None
        self.calls = 0

    def _load(self):
        if self._comet is None:
            self._comet = hub.load_comet(self.model, lambda detail: _qe_model_missing(self.model, detail))
            if self.gpus is None:
                import torch

                self.gpus = 1 if torch.cuda.is_available() else 0
        return self._comet

    def key(self, source: str, translation: str) -> str:
        return self.outputs.key(src=source, mt=translation)

    def scores(self, pairs: Sequence[tuple[str, str]], progress: Progress | None = None) -> list[float]:
        """The score of each (source, translation) pair."""
        found = self.score_map(pairs, progress)
        return [found[self.key(s, t)] for s, t in pairs]

    def score_map(self, pairs: Sequence[tuple[str, str]], progress: Progress | None = None,
                  num_shards: int = 1, shard_index: int = 0) -> dict[str, float]:
        """Scores by :meth:`key` of the unique ``pairs`` (sharded: of this shard's chunks of them). A
        chunk is one COMET predict call (which batches by length inside it) and one cache commit."""
        by_key = {self.key(s, t): (s, t) for s, t in pairs}
        chunk = max(self.batch_size * 16, 64)

        def predict(keys: list[str]) -> list[float]:
            pred = self._load().predict([{"src": by_key[k][0], "mt": by_key[k][1]} for k in keys],
                                        batch_size=self.batch_size, gpus=self.gpus, progress_bar=False)
            self.calls += 1
            return [float(x) for x in pred.scores]

        return batches.run(list(by_key), {k: k for k in by_key}, self.outputs.kind, self.cache,
                           lambda keys: [len(by_key[k][0]) + len(by_key[k][1]) for k in keys], predict, chunk,
                           True, num_shards, shard_index, progress)


def summarize(src: str, tgt: str, rows: list[FilteredRow], excluded: list[ExcludedRow], settings: dict) -> Summary:
    """Kept and rejected translations per field and per stage/reason."""
    fields: dict[str, Any] = {}
    for f in layout.TEXT_FIELDS:
        rejected = Counter(f"{e['stage']}:{e['reason']}" for e in excluded if e["field"] == f)
        kept = sum(1 for r in rows if r.get(layout.mt(f)) is not None)
        fields[f] = {"translated": kept + sum(rejected.values()), "kept": kept,
                     "rejected": dict(sorted(rejected.items()))}
    total = Counter(f"{e['stage']}:{e['reason']}" for e in excluded)
    return {"src": src, "tgt": tgt, "rows": len(rows), "fields": fields,
            "kept": sum(v["kept"] for v in fields.values()),
            "rejected": sum(total.values()), "rejected_by_reason": dict(sorted(total.items())),
            "settings": settings}


def run_filter(work: Path, cfg, src: str, tgt: str, cache: Cache, qe: CometKiwiFilter | None = None,
               num_shards: int = 1, shard_index: int = 0) -> dict:
    """Filter the translations of D_synth into ``tgt`` (sharded: this shard's share of the QE
    chunks; the last shard writes the outputs); ``cfg`` is a PipelineConfig."""
    fcfg = cfg.filter
    languages.get(src), languages.get(tgt)
    workdir.check_shard(num_shards, shard_index)
    rows = workdir.read_output(layout.synth_path(work), "sample")
    translations = {r["id"]: r for r in workdir.read_output(layout.translations_path(work, src, tgt), "translate")}
    workdir.check_generation(work, "filter", src, tgt)
    missing = [r["id"] for r in rows if r["id"] not in translations]
    if missing:
        raise SdrrlError(f"{len(missing)} row(s) of D_synth have no {src}-{tgt} translation (first: {missing[:3]}).",
                         f"run `sdrrl translate --tgt {tgt}` on the same work directory first (it resumes).")
    from sdrrl.pipeline.translate import source_digest

    stale = [r["id"] for r in rows if translations[r["id"]].get("source_sha1", source_digest(r)) != source_digest(r)]
    if stale:
        raise SdrrlError(f"{len(stale)} {src}-{tgt} translation row(s) were made from other D_synth texts "
                         f"(first: {stale[:3]}): D_synth changed after `sdrrl translate` ran.",
                         f"run `sdrrl translate --tgt {tgt}` again (segments already translated come from the "
                         "cache), then filter.")
    heuristic = HeuristicFilter(fcfg.min_length_ratio, fcfg.max_length_ratio, fcfg.ratio_min_source_chars,
                                fcfg.max_repeats, fcfg.copy_min_letters)
    lid = LanguageIdFilter(tgt, fcfg.lid_min_letters)
    if qe is None and fcfg.qe_enabled:
        qe = CometKiwiFilter(fcfg.qe_model, fcfg.qe_threshold, fcfg.qe_batch_size, fcfg.qe_gpus, cache)
    if qe is not None and qe.cache is None:
        qe.cache = cache

    fields = layout.TEXT_FIELDS
    out_rows: list[FilteredRow] = [{"id": r["id"], "from": r["from"], "x": r["x"], "y": r["y"], "y_hat": r["y_hat"],
                                    **{layout.mt(f): translations[r["id"]].get(layout.mt(f)) for f in fields}}
                                   for r in rows]
    rejected: dict[tuple[int, str], ExcludedRow] = {}

    def reject(i: int, f: str, stage: str, reason: str, score: float | None) -> None:
        row = out_rows[i]
        rejected[i, f] = {"id": row["id"], "field": f, "stage": stage, "reason": reason, "text": row[f],
                          "translation": row[layout.mt(f)], "score": score}

    label = f"filter {src}-{tgt}" + (f" shard {shard_index}/{num_shards}" if num_shards > 1 else "")
    for i, row in enumerate(out_rows):
        for f in fields:
            mt = row[layout.mt(f)]
            if mt is None or not isinstance(row[f], str):
                continue
            if fcfg.heuristics_enabled:
                reason, score = heuristic.check(row[f], mt)
                if reason:
                    reject(i, f, heuristic.stage, reason, score)
                    continue
            if fcfg.lid_enabled:
                reason, score = lid.check(mt)
                if reason:
                    reject(i, f, lid.stage, reason, score)
    todo = [(i, f) for i, row in enumerate(out_rows) for f in fields
            if row[layout.mt(f)] is not None and (i, f) not in rejected] if fcfg.qe_enabled else []
    scores: dict[str, float] = {}
    qe_calls = 0
    if todo:
        progress = Progress(label + " QE", len(todo), unit="translations", every_s=cfg.progress_every_s)
        calls_before = qe.calls
        scores = qe.score_map([(out_rows[i][f], out_rows[i][layout.mt(f)]) for i, f in todo], progress,
                              num_shards, shard_index)
        qe_calls = qe.calls - calls_before
    settings = _settings(cfg)
    summaries: list[Summary] = []

    def assemble(found: dict[str, float]) -> list[FilteredRow]:
        """The three outputs from every QE score: the rows, their exclusions in row order, the summary."""
        out = {**rejected}
        for i, f in todo:
            score = found[qe.key(out_rows[i][f], out_rows[i][layout.mt(f)])]
            if score < qe.threshold:
                out[i, f] = {"id": out_rows[i]["id"], "field": f, "stage": qe.stage, "reason": "qe_below_threshold",
                             "text": out_rows[i][f], "translation": out_rows[i][layout.mt(f)],
                             "score": round(score, 6)}
        kept = [{**row, **{layout.mt(f): None for f in fields if (i, f) in out}} for i, row in enumerate(out_rows)]
        excluded = [out[k] for k in sorted(out, key=lambda k: (k[0], fields.index(k[1])))]
        write_jsonl(layout.excluded_path(work, src, tgt), excluded)
        summaries.append(summarize(src, tgt, kept, excluded, settings))
        write_json(layout.summary_path(work, src, tgt), summaries[-1])
        return kept

    deps = layout.stage_deps("filter", work, qe.outputs if fcfg.qe_enabled else None,
                             {**settings, "qe_batch_size": fcfg.qe_batch_size}, src, tgt)
    workdir.write_batch_output(layout.filtered_path(work, src, tgt), scores, assemble, num_shards, shard_index, deps,
                               merged_also=[layout.excluded_path(work, src, tgt), layout.summary_path(work, src, tgt)])
    qe_said = (f"tau={fcfg.qe_threshold} with {fcfg.qe_model}, {qe_calls} model call(s)" if fcfg.qe_enabled
               else "off")
    if not summaries:  # a shard that did not write the outputs: only its share of the QE scores is known
        say(f"{label}: {len(rows)} rows; QE scored {len(scores)} translations of this shard's chunks ({qe_said}); "
            f"the last shard to finish writes {layout.filtered_path(work, src, tgt)}.")
        return {"rows": len(rows), "kept": None, "rejected": None, "qe_scored": len(scores), "qe_calls": qe_calls}
    summary = summaries[-1]
    say(f"{label}: {summary['rows']} rows; kept {summary['kept']} and rejected {summary['rejected']} "
        f"translations ({_reasons(summary['rejected_by_reason'])}); QE {qe_said}; "
        f"LID {'on' if fcfg.lid_enabled else 'off'}; exclusions in {layout.excluded_path(work, src, tgt)}.")
    return dict(summary, qe_calls=qe_calls, qe_scored=len(scores))


def _reasons(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _settings(cfg) -> dict:
    f = cfg.filter
    return {"qe_enabled": f.qe_enabled, "qe_model": f.qe_model, "qe_threshold": f.qe_threshold,
            "lid_enabled": f.lid_enabled, "lid_backend": f.lid_backend, "lid_min_letters": f.lid_min_letters,
            "heuristics_enabled": f.heuristics_enabled, "min_length_ratio": f.min_length_ratio,
            "max_length_ratio": f.max_length_ratio, "ratio_min_source_chars": f.ratio_min_source_chars,
            "max_repeats": f.max_repeats, "copy_min_letters": f.copy_min_letters,
            "translation_model": cfg.translation_model}
