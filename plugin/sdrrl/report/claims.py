"""The paper's claims as data (``sdrrl/data/paper_claims.csv``), checked on our runs.

One row per claim, columns ``claim,model,method,versus,side,measure,relation,margin,where,statement``:

- ``model``: the catalog model family whose runs it is about; ``method``: the catalog method it is
  about; ``versus``: a catalog method, or ``rows:<kind>`` for every method with a row in the paper's
  tables of that kind (``rows:benchmarks``: Tables 2-5 / 8-11, SFT and the baselines;
  ``rows:ablations``: Table 6), the claim's own method excepted.
- ``side``: ``target``, ``english`` or ``both``.
- ``measure`` (several, space-separated): ``benchmarks`` = the Avg. of every section of the
  family's per-benchmark tables on that side (each metric; FLORES in the side's direction);
  ``nlu`` / ``nlg`` = Table 6's averages; ``all`` = Table 7's Avg.
- ``relation`` and ``margin``: the claim is ``method - versus > margin`` (or ``>=``).
- ``where`` and ``statement``: where the paper says it, in our words; shown in the report.

Each comparison is like for like (``sdrrl.report.compare.change``): over the cells both methods'
runs have, the paper's difference over the same cells. A claim **holds** on our runs when every
comparison they allow holds, **does not hold** when one fails, and there are **not enough runs**
when they allow none. ``tests/test_report_claims.py`` checks the paper's own numbers satisfy every claim.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from sdrrl import catalog
from sdrrl.errors import SdrrlError
from sdrrl.report import paper
from sdrrl.report.compare import (AVERAGES_TABLE, BENCHMARK_AVERAGES_TABLE, Results, Spec, all_spec, average_spec,
                                  change, family_benchmarks, row_spec)

FIELDS = ("claim", "model", "method", "versus", "side", "measure", "relation", "margin", "where", "statement")
SIDES = {"target": ("",), "english": ("eng",), "both": ("", "eng")}
MEASURES = ("benchmarks", "nlu", "nlg", "all")
RELATIONS = (">", ">=")
ROWS_PREFIX = "rows:"
HOLDS, FAILS, NO_RUNS = "holds", "does not hold", "not enough runs"
SIDE_LABELS = {"": "target", "eng": "English"}


@dataclass(frozen=True)
class Comparison:
    versus: str
    label: str
    spec: Spec


@dataclass(frozen=True)
class Claim:
    id: str
    model: str
    method: str
    versus: tuple[str, ...]
    sides: tuple[str, ...]
    measures: tuple[str, ...]
    relation: str
    margin: float
    where: str
    statement: str

    def satisfied(self, difference: float) -> bool:
        return difference > self.margin if self.relation == ">" else difference >= self.margin - 1e-9

    def comparisons(self) -> list[Comparison]:
        family = catalog.family(self.model)
        out = []
        for versus in self.versus:
            for side in self.sides:
                for spec_label, spec in _specs(self.measures, side, family):
                    out.append(Comparison(versus, f"vs {catalog.label(versus)}, {spec_label}", spec))
        return out


def _specs(measures: tuple[str, ...], side: str, family: catalog.ModelFamily) -> list[tuple[str, Spec]]:
    model, out = family.name, []
    for measure in measures:
        if measure == "benchmarks":
            for bench in family_benchmarks(family):
                table = bench.table(model)
                for b, m, d in paper.sections(table):
                    if d == bench.direction(side):
                        label = f"{bench.label} {bench.metric(m).label} ({SIDE_LABELS[side]}, Table {table} Avg.)"
                        out.append((label, row_spec(table, b, m, d)))
        elif measure in ("nlu", "nlg"):
            out.append((f"{measure.upper()} ({SIDE_LABELS[side]}, Table {AVERAGES_TABLE})",
                        average_spec(measure, side, family)))
        else:
            out.append((f"Avg. of all benchmarks ({SIDE_LABELS[side]}, Table {BENCHMARK_AVERAGES_TABLE})",
                        all_spec(side, family)))
    return out


def _versus(raw: str, method: str, where: str) -> tuple[str, ...]:
    out: list[str] = []
    kinds = (catalog.BENCHMARK_ROWS, catalog.ABLATION_ROWS)
    for token in raw.split():
        if token.startswith(ROWS_PREFIX):
            kind = token[len(ROWS_PREFIX):]
            if kind not in kinds:
                raise SdrrlError(f"{where}: versus {token!r} names no kind of the paper's rows.",
                                 f"write {', '.join(ROWS_PREFIX + k for k in kinds)} or a method name.")
            out += [m for m in catalog.paper_methods(kind) if m != method]
        else:
            catalog.method(token)
            out.append(token)
    if not out:
        raise SdrrlError(f"{where}: versus is empty.", "name a method, or rows:benchmarks / rows:ablations.")
    return tuple(dict.fromkeys(out))


def parse(text: str, source: str = "paper_claims.csv") -> list[Claim]:
    """Claims from the CSV text; any row the report could not check is an error naming it."""
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != FIELDS:
        raise SdrrlError(f"{source}: columns are {reader.fieldnames}, not {', '.join(FIELDS)}.",
                         "keep the header of the shipped file.")
    claims = []
    for i, rec in enumerate(reader, start=2):
        where = f"{source} line {i}"
        catalog.family(rec["model"])
        catalog.method(rec["method"])
        if rec["side"] not in SIDES:
            raise SdrrlError(f"{where}: side {rec['side']!r} is unknown.", f"write one of {', '.join(SIDES)}.")
        measures = tuple(rec["measure"].split())
        if not measures or any(m not in MEASURES for m in measures):
            raise SdrrlError(f"{where}: measure {rec['measure']!r} is unknown.",
                             f"write one or more of {', '.join(MEASURES)} (space-separated).")
        if rec["relation"] not in RELATIONS:
            raise SdrrlError(f"{where}: relation {rec['relation']!r} is unknown.",
                             f"write one of {', '.join(RELATIONS)}.")
        try:
            margin = float(rec["margin"])
        except ValueError:
            raise SdrrlError(f"{where}: margin {rec['margin']!r} is not a number.", "write e.g. 0 or -1.") from None
        claims.append(Claim(rec["claim"], rec["model"], rec["method"], _versus(rec["versus"], rec["method"], where),
                            SIDES[rec["side"]], measures, rec["relation"], margin, rec["where"], rec["statement"]))
    return claims


def load() -> tuple[Claim, ...]:
    """The shipped claims (read each time: their ``rows:`` sets follow the catalog as it is now)."""
    text = resources.files("sdrrl").joinpath("data/paper_claims.csv").read_text(encoding="utf-8")
    return tuple(parse(text))


@dataclass
class Outcome:
    comparison: Comparison
    ours: float | None      # method - versus over the cells both our runs have
    paper: float | None     # the paper's difference over the same cells (all its cells without ours)
    n: int | None           # languages behind it


@dataclass
class Verdict:
    claim: Claim
    outcomes: list[Outcome]

    def _status(self, differences) -> str:
        known = [d for d in differences if d is not None]
        if not known:
            return NO_RUNS
        return HOLDS if all(self.claim.satisfied(d) for d in known) else FAILS

    @property
    def status(self) -> str:
        """The claim on our runs."""
        return self._status(o.ours for o in self.outcomes)

    @property
    def paper_status(self) -> str:
        """The claim on the paper's own numbers over the same cells as ours (all its cells without ours)."""
        return self._status(o.paper for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ours is not None and not self.claim.satisfied(o.ours)]

    @property
    def checked(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ours is not None]


def evaluate(res: Results, claims=None) -> list[Verdict]:
    out = []
    for claim in claims if claims is not None else load():
        outcomes = []
        for comp in claim.comparisons():
            ch = change(res, claim.method, comp.versus, claim.model, comp.spec)
            outcomes.append(Outcome(comp, ch.ours, ch.paper, ch.n))
        out.append(Verdict(claim, outcomes))
    return out
