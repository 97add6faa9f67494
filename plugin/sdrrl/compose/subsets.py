"""The four transfer-set subsets D_LL, D_TL, D_LT, D_TT (paper section 3.2.2).

A subset is named by the language of its question (L = source, T = target) and of its answer.
``responses`` picks the answers: "synth" follows D_synth (gold y for rows drawn from D, the
model's own ŷ for rows drawn from G), "gold" always uses y (the original D, as in the baselines
and the "D_synth replaced by D" ablation). A row whose needed translation was rejected by the
filters is left out of that subset only, and counted with its reason.
"""

from __future__ import annotations

import json
import json.encoder
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from sdrrl import layout

# What json.dumps(..., ensure_ascii=False) calls for every string (the C version where built).
_encode = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring

TRANSFER_SUBSETS = ("ll", "tl", "lt", "tt")
PARALLEL_SUBSETS = ("mt", "comp")
ALL_SUBSETS = TRANSFER_SUBSETS + PARALLEL_SUBSETS


@dataclass(frozen=True)
class SubsetSpec:
    kind: str                   # ll | tl | lt | tt | mt | comp
    responses: str = "synth"    # synth | gold (transfer subsets only)
    code_switch: bool = False   # switch the question tokens (transfer subsets only)
    template: str = "plain"     # plain | cit: how the question is wrapped

    @property
    def question_translated(self) -> bool:
        return self.kind in ("tl", "tt")

    @property
    def answer_translated(self) -> bool:
        return self.kind in ("lt", "tt")

    @property
    def pair_independent(self) -> bool:
        """D_LL without code-switching or a language-naming template is the same for every target."""
        return self.kind == "ll" and not self.code_switch and self.template == "plain"

    def key(self) -> tuple:
        if self.kind in PARALLEL_SUBSETS:
            return (self.kind,)
        return (self.kind, self.responses, self.code_switch, self.template)

    def describe(self) -> dict:
        if self.kind in PARALLEL_SUBSETS:
            return {"subset": self.kind}
        return {"subset": self.kind, "responses": self.responses, "code_switch": self.code_switch,
                "template": self.template}


def answer_field(spec: SubsetSpec, drawn_from: str) -> str:
    """Which column holds this row's answer for this subset."""
    base = "y_hat" if spec.responses == "synth" and drawn_from == "G" else "y"
    return layout.mt(base) if spec.answer_translated else base


def json_string(text: object) -> str | None:
    """``text`` encoded as a JSON string exactly as ``json.dumps(..., ensure_ascii=False)`` does
    inside a row; None for a missing or blank text (such a row cannot be trained on)."""
    if not isinstance(text, str) or not text.strip():
        return None
    return _encode(text)


def line(instruction: str, answer: str) -> str:
    """One alpaca row from JSON-encoded strings, byte for byte what ``registry.write_dataset``
    writes for ``{"instruction": ..., "input": "", "output": ...}``."""
    return '{"instruction": ' + instruction + ', "input": "", "output": ' + answer + "}\n"


def transfer_lines(spec: SubsetSpec, rows: Sequence[dict], questions: Sequence[str | None],
                   answers: Callable[[str], Sequence[str | None]], dropped: Counter,
                   rejection: Callable[[object, str], str]) -> list[str]:
    """JSON Lines of one transfer subset.

    ``questions[i]`` is row i's question, JSON-encoded, already code-switched and wrapped in its
    template when the spec asks for it (None when its translation is missing);
    ``answers(field)`` gives the JSON-encoded column ``field`` (each column encoded once and
    shared by every subset that uses it); ``rejection(id, field)`` names why a text is missing.
    """
    qfield = layout.mt("x") if spec.question_translated else "x"
    gold_field, gen_field = answer_field(spec, "D"), answer_field(spec, "G")
    gold = answers(gold_field)
    gen = answers(gen_field) if gen_field != gold_field else gold
    out: list[str] = []
    append = out.append
    for row, question, a_gold, a_gen in zip(rows, questions, gold, gen):
        if question is None:
            dropped[rejection(row["id"], qfield)] += 1
            continue
        generated = row.get("from") == "G"
        answer = a_gen if generated else a_gold
        if answer is None:
            dropped[rejection(row["id"], gen_field if generated else gold_field)] += 1
            continue
        append('{"instruction": ' + question + ', "input": "", "output": ' + answer + "}\n")
    return out
