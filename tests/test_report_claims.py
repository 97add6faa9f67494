"""The paper's claims as data (plugin/sdrrl/data/paper_claims.csv) and the report's summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from test_report_like_for_like import P, llama_runs, report, write_run

REPO = Path(__file__).resolve().parents[1]


def test_the_papers_own_numbers_satisfy_every_claim_it_states():
    """Each claim, on the paper's per-language values (and Table 6's printed averages for the
    ablations, which have no others): every comparison holds."""
    from sdrrl.report import claims
    from sdrrl.report.compare import Results

    loaded = claims.load()
    assert {c.id for c in loaded} >= {"sdrrl-beats-sft", "sdrrl-keeps-english", "sdrrl-beats-baselines", "ablations-lose"}
    for verdict in claims.evaluate(Results([])):
        assert verdict.status == claims.NO_RUNS, verdict.claim.id
        assert verdict.outcomes and all(o.paper is not None for o in verdict.outcomes), verdict.claim.id
        assert verdict.paper_status == claims.HOLDS, [(o.comparison.label, o.paper) for o in verdict.outcomes]
    by_id = {c.id: c for c in loaded}
    # what each claim compares: SDRRL with SFT on each benchmark's target side (BELEBELE, FLORES
    # English→X spBLEU and COMET, XL-Sum ROUGE-1 and ROUGE-L, MKQA), with every other method of
    # Tables 2-5, and with every ablation of Table 6 on NLU and NLG, target and English
    assert len(by_id["sdrrl-beats-sft"].comparisons()) == 6
    assert by_id["sdrrl-beats-baselines"].versus == ("sft", "tsft", "cit", "xcot")
    assert len(by_id["ablations-lose"].comparisons()) == 5 * 4
    # a hand check of one comparison: Table 6's row 4 against row 1, NLU on English
    (nlu_eng,) = [o for o in claims.evaluate(Results([]), [by_id["ablations-lose"]])[0].outcomes
                  if o.comparison.versus == "sdrrl-no-mt-comp" and o.comparison.label.endswith("NLU (English, Table 6)")]
    assert nlu_eng.paper == pytest.approx(P[(6, "nlu", "score", "eng", "llama2", "sdrrl", "avg")]
                                          - P[(6, "nlu", "score", "eng", "llama2", "sdrrl-no-mt-comp", "avg")], abs=0.01)


@pytest.mark.parametrize("field, value, message", [
    ("side", "french", "side 'french' is unknown"), ("measure", "bleu", "measure 'bleu' is unknown"),
    ("versus", "rows:tables", "names no kind"), ("versus", "sdrrl-v2", "Unknown method"),
    ("relation", "<", "relation '<' is unknown"), ("margin", "a point", "is not a number"),
    ("model", "gpt", "Unknown model family"),
])
def test_a_claim_the_report_cannot_check_is_an_error(field, value, message):
    from sdrrl.errors import SdrrlError
    from sdrrl.report import claims

    text = (REPO / "plugin" / "sdrrl" / "data" / "paper_claims.csv").read_text(encoding="utf-8")
    header, first = text.splitlines()[:2]
    row = next(csv.DictReader(io.StringIO(header + "\n" + first)))
    row[field] = value
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=claims.FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    with pytest.raises(SdrrlError, match=message) as err:
        claims.parse(buf.getvalue())
    assert "Fix:" in str(err.value)


def test_claims_on_runs_hold_fail_or_lack_runs(tmp_path):
    """On the LLaMA-2 runs of test_report_like_for_like (SDRRL above SFT everywhere it has both), then
    with an SDRRL run below SFT on MKQA: the claim fails and names the comparison."""
    from sdrrl.report import claims
    from sdrrl.report.compare import Results
    from sdrrl.report.runs import load_runs

    folders = llama_runs(tmp_path / "res")
    verdicts = {v.claim.id: v for v in claims.evaluate(Results(load_runs([str(f) for f in folders])))}
    beats = verdicts["sdrrl-beats-sft"]
    assert beats.status == claims.HOLDS
    checked = {o.comparison.label: o for o in beats.checked}
    assert len(checked) == 5 and len(beats.outcomes) == 6   # no COMET in these runs
    mkqa = next(o for label, o in checked.items() if label.startswith("vs SFT, MKQA"))
    assert mkqa.ours == pytest.approx(35 - 30) and mkqa.n == 1
    assert mkqa.paper == pytest.approx(P[(5, "mkqa", "f1", "", "llama2", "sdrrl", "jpn")] - P[(5, "mkqa", "f1", "", "llama2", "sft", "jpn")])
    assert verdicts["seallm-sdrrl-beats-baselines"].status == claims.NO_RUNS
    ablation = verdicts["ablations-lose"]   # SDRRL eng-ind vs the ablation eng-ind, over Indonesian
    nlu = next(o for o in ablation.checked if o.comparison.label.endswith("NLU (target, Table 6)"))
    assert nlu.ours == pytest.approx(45 - 42) and nlu.paper is None

    worse = write_run(tmp_path / "res2", "jpn", "saves/llama2-7b/sdrrl/eng-jpn", {"sdrrl_mkqa_jpn": {"f1": 0.25}})
    md, data, _, _ = report(tmp_path, folders[0], worse)
    (claim,) = [c for c in data["summary"]["claims"] if c["claim"] == "sdrrl-beats-sft"]
    assert claim["status"] == "does not hold" and claim["paper_status"] == "holds"
    (mk,) = [c for c in claim["comparisons"] if c["ours"] is not None]
    assert mk["ours"] == pytest.approx(25 - 30) and mk["n"] == 1
    line = next(ln for ln in md.splitlines() if ln.startswith("| SDRRL beats SFT on the target-language"))
    assert "| **does not hold** | holds |" in line and "MKQA F1 (target, Table 5 Avg.): -5.00 over 1 lang" in line
    assert md.index("## Runs") < md.index("## Summary") < md.index("## Table 2:")


def test_summary_counts_cells_within_tolerance_and_lists_the_largest_divergences(tmp_path):
    from sdrrl.report import summary as summary_mod
    from sdrrl.report import tables
    from sdrrl.report.compare import Results
    from sdrrl.report.runs import load_runs

    folders = llama_runs(tmp_path / "res")
    md, data, _, _ = report(tmp_path, *folders)
    summary = data["summary"]
    assert {t["metric"]: t["tolerance"] for t in summary["tolerances"]} == {
        "accuracy": 2.0, "spBLEU": 1.0, "COMET": 1.0, "ROUGE-1": 1.0, "ROUGE-L": 1.0, "F1": 1.0}
    t2 = next(t for t in summary["tables"] if t["table"] == "2")
    # Table 2: SFT 3 target languages + Avg., 14 English columns + Avg.; SDRRL 2 + Avg. on each side
    assert t2["compared"] == (3 + 1) + (14 + 1) + 2 * (2 + 1) and t2["within"] == 0
    t4 = next(t for t in summary["tables"] if t["table"] == "4")
    within = [c for c in data["cells"] if c["table"] == "4" and c["diff"] is not None and abs(c["diff"]) <= 1.0]
    assert t4["within"] == len(within) > 0 and t4["rate"] == pytest.approx(len(within) / t4["compared"])
    assert ("eng", "rougeL", "sdrrl", "ind") in {(c["direction"], c["metric"], c["method"], c["column"]) for c in within}
    line = next(ln for ln in md.splitlines() if ln.startswith("| Table 4: XL-Sum"))
    assert line == f"| Table 4: XL-Sum ROUGE-1 / ROUGE-L F1 | {t4['compared']} | {t4['within']} | " \
                   f"{100 * t4['rate']:.0f}% | 0 |"
    top = summary["divergences"]
    assert len(top) == 10 and [abs(d["diff"]) for d in top] == sorted((abs(d["diff"]) for d in top), reverse=True)
    assert all("Avg." not in d["columns"] for d in top)   # per-language cells, not their averages
    first = top[0]   # SFT's FLORES English→Indonesian: 10 against the paper's 34.54
    assert (first["table"], first["row"], first["columns"], first["ours"], first["paper"]) == ("3", "SFT", ["IND"], 10.0, 34.54)
    assert "| 3 | spBLEU English→X | SFT | IND | 10.00 | 34.54 | -24.54 | ±1 |" in md
    # SFT's one English BELEBELE score (60 against 65.39 in all 14 columns) is one entry
    every = summary_mod.divergences(tables.build(Results(load_runs([str(f) for f in folders]))), top=1000)
    (eng,) = [d for d in every if d["section"] == "accuracy on English" and d["row"] == "SFT"]
    assert len(eng["columns"]) == 14 and eng["diff"] == pytest.approx(60 - 65.39)
    assert summary_mod._columns_text(eng["columns"]) == "CES, DAN, … (14 columns)"
    assert every[:10] == top
    assert json.dumps(summary)   # serialisable as written
