"""The plan of an export: which registry entries a config asks for.

A method is a catalog entry (``sdrrl.catalog``: SDRRL, the section 4.1 baselines, the Table 6
ablations), whose subsets are a function of the config; nothing here builds rows. Registry names
follow docs/CONTRACTS.md: ``{method}_{src}-{tgt}_{subset}``, and ``sft_{src}`` for English-only SFT
(``Method.entry_name``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdrrl import catalog, languages
from sdrrl.compose.config import ComposeConfig
from sdrrl.compose.subsets import SubsetSpec


def method_subsets(method: str, cfg: ComposeConfig) -> list[SubsetSpec]:
    """The subsets a method trains on, for one source/target pair (without D_mt when
    ``parallel.mt`` is false)."""
    specs = catalog.method(method).subsets(cfg)
    return specs if cfg.parallel.mt else [s for s in specs if s.kind != "mt"]


@dataclass(frozen=True)
class PlannedEntry:
    name: str
    method: str
    source: str
    target: str | None  # None for a source-only method (sft)
    spec: SubsetSpec | None  # None for a source-only method (sft)

    @property
    def source_only(self) -> bool:
        """The single dataset of a source-only method (catalog ``Method.source_only``: SFT)."""
        return self.spec is None


def plan(cfg: ComposeConfig) -> list[PlannedEntry]:
    """Every registry entry the config asks for, in a stable order."""
    entries: list[PlannedEntry] = []
    for name in cfg.methods:
        method = catalog.method(name)
        if method.source_only:
            entries.append(PlannedEntry(method.entry_name(cfg.source), name, cfg.source, None, None))
            continue
        for tgt in cfg.targets:
            for spec in method_subsets(name, cfg):
                entries.append(PlannedEntry(method.entry_name(cfg.source, tgt, spec.kind), name,
                                            cfg.source, tgt, spec))
    return entries


def dataset_names(method: str, src: str, tgt: str | None = None, cfg: ComposeConfig | None = None) -> list[str]:
    """The registry names one method trains on for one pair (default configuration unless ``cfg``):
    what a recipe's ``dataset`` lists, so recipes and exports cannot drift apart."""
    m = catalog.method(method)
    if m.source_only:
        return [m.entry_name(src)]
    return [m.entry_name(src, tgt, spec.kind) for spec in method_subsets(method, cfg or ComposeConfig())]


def shipped_registry(source: str = "eng") -> dict[str, dict]:
    """The entries of the repository's dataset_info/dataset_info.json (written by
    scripts/generate_dataset_info.py): every method for every target language of the table, with
    the default configuration. `sdrrl export --out dataset_info` fills in the data files they name."""
    from sdrrl.registry import Entry

    cfg = ComposeConfig(source=source, targets=languages.TARGETS, methods=catalog.method_names())
    return {e.name: Entry(e.name, f"{e.name}.jsonl").to_json() for e in plan(cfg)}
