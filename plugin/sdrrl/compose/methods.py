"""Methods as configurations of one composer: SDRRL, the section 4.1 baselines, the Table 6 ablations.

A method is a list of subset specifications; nothing here builds rows. Registry names follow
docs/CONTRACTS.md: ``{method}_{src}-{tgt}_{subset}``, and ``sft_{src}`` for English-only SFT.

| method              | subsets (answers; code-switched questions?)                      |
|---------------------|-------------------------------------------------------------------|
| sft                 | D as is (source language only)                                    |
| tsft                | ll (gold) if baselines.tsft_include_source, tt (gold); no switching |
| cit                 | baselines.cit_subsets (gold), question + "Answer in <language>."  |
| xcot                | baselines.xcot_subsets (gold), code-switched questions           |
| sdrrl               | ll tl lt tt (D_synth, switched) + mt comp                         |
| sdrrl-no-tl-lt      | ll tt + mt comp            (Table 6 row 2)                        |
| sdrrl-no-synth      | ll tl lt tt with gold answers (D instead of D_synth) + mt comp (row 3) |
| sdrrl-no-mt-comp    | ll tl lt tt                (row 4)                                |
| sdrrl-no-cs         | ll tl lt tt without switching + mt comp (row 5)                   |
| sdrrl-only-mt-comp  | mt comp                    (row 6)                                |
"""

from __future__ import annotations

from dataclasses import dataclass

from sdrrl import languages
from sdrrl.compose.config import ComposeConfig
from sdrrl.compose.subsets import TRANSFER_SUBSETS, SubsetSpec

MT, COMP = SubsetSpec("mt"), SubsetSpec("comp")


def _transfer(kinds, responses: str, code_switch: bool, template: str = "plain") -> list[SubsetSpec]:
    return [SubsetSpec(k, responses, code_switch, template) for k in kinds]


def method_subsets(method: str, cfg: ComposeConfig) -> list[SubsetSpec]:
    """The subsets a method trains on, for one source/target pair (without D_mt when
    ``parallel.mt`` is false)."""
    specs = _method_subsets(method, cfg)
    return specs if cfg.parallel.mt else [s for s in specs if s.kind != "mt"]


def _method_subsets(method: str, cfg: ComposeConfig) -> list[SubsetSpec]:
    b = cfg.baselines
    if method == "sdrrl":
        return _transfer(TRANSFER_SUBSETS, "synth", True) + [MT, COMP]
    if method == "sdrrl-no-tl-lt":
        return _transfer(("ll", "tt"), "synth", True) + [MT, COMP]
    if method == "sdrrl-no-synth":
        return _transfer(TRANSFER_SUBSETS, "gold", True) + [MT, COMP]
    if method == "sdrrl-no-mt-comp":
        return _transfer(TRANSFER_SUBSETS, "synth", True)
    if method == "sdrrl-no-cs":
        return _transfer(TRANSFER_SUBSETS, "synth", False) + [MT, COMP]
    if method == "sdrrl-only-mt-comp":
        return [MT, COMP]
    if method == "tsft":
        return _transfer(("ll", "tt") if b.tsft_include_source else ("tt",), "gold", False)
    if method == "cit":
        return _transfer(b.cit_subsets, "gold", False, "cit")
    if method == "xcot":
        return _transfer(b.xcot_subsets, "gold", True)
    raise KeyError(method)


@dataclass(frozen=True)
class PlannedEntry:
    name: str
    method: str
    source: str
    target: str | None  # None for sft (source language only)
    spec: SubsetSpec | None  # None for sft


def entry_name(method: str, src: str, tgt: str | None = None, subset: str | None = None) -> str:
    if method == "sft":
        return f"sft_{src}"
    return f"{method}_{src}-{tgt}_{subset}"


def plan(cfg: ComposeConfig) -> list[PlannedEntry]:
    """Every registry entry the config asks for, in a stable order."""
    entries: list[PlannedEntry] = []
    for method in cfg.methods:
        if method == "sft":
            entries.append(PlannedEntry(entry_name("sft", cfg.source), "sft", cfg.source, None, None))
            continue
        for tgt in cfg.targets:
            for spec in method_subsets(method, cfg):
                entries.append(PlannedEntry(entry_name(method, cfg.source, tgt, spec.kind), method,
                                            cfg.source, tgt, spec))
    return entries


def shipped_registry(source: str = "eng") -> dict[str, dict]:
    """The entries of the repository's dataset_info/dataset_info.json: every method for every
    target language of the table, with the default configuration. `sdrrl export --out
    dataset_info` fills in the data files they name."""
    from sdrrl.compose.config import ALL_METHODS
    from sdrrl.registry import Entry

    cfg = ComposeConfig(source=source, targets=languages.TARGETS, methods=ALL_METHODS)
    return {e.name: Entry(e.name, f"{e.name}.jsonl").to_json() for e in plan(cfg)}
