"""A Hugging Face ``datasets`` copy of an exported registry: one folder per method and pair.

``DIR/{method}_{src}-{tgt}/`` (``DIR/sft_{src}/`` for SFT) holds one Parquet file per subset,
``data/{subset}.parquet``, and a ``README.md`` dataset card whose YAML header maps each subset to a
*config* (the hub's "subset") with one ``train`` split, the way the hub maps files. So
``datasets.load_dataset("DIR/sdrrl_eng-ind", "tt")`` works offline, and the folder can be pushed to
the hub as it is. SFT's single subset is the ``default`` config.

Config-free: everything comes from the registry folder and its manifest (``sdrrl export`` wrote
both). Each Parquet file records the sha256 of the JSON Lines file it was made from, so a re-run
rewrites only what changed; every file is written atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from sdrrl import catalog, languages
from sdrrl.compose.manifest import MANIFEST, Manifest, ManifestEntry
from sdrrl.compose.subsets import ALL_SUBSETS
from sdrrl.errors import SdrrlError
from sdrrl.io import atomic_open, ensure_writable_dir

SOURCE_SHA = b"sdrrl.source_sha256"
SFT_CONFIG = "default"

PAPER_CITATION = """@inproceedings{zhang-etal-2024-sdrrl,
  title = {Enhancing Multilingual Capabilities of Large Language Models through Self-Distillation from Resource-Rich Languages},
  author = {Zhang, Yuanchi and Wang, Yile and Liu, Zijun and Wang, Shuo and Wang, Xiaolong and Li, Peng and Sun, Maosong and Liu, Yang},
  booktitle = {Proceedings of the 62nd Annual Meeting of the Association for Computational Linguistics (ACL 2024)},
  year = {2024},
  eprint = {2402.12204},
  archivePrefix = {arXiv}
}"""

def _subset_text(entry: ManifestEntry, src: str, tgt: str | None) -> str:
    """One sentence saying what a subset holds, from its manifest entry."""
    cfg = entry.config
    kind = entry.subset
    if kind is None:
        return f"instructions and gold answers in {src}, as in the source data"
    if kind == "mt":
        return (f"sentence translation in both directions ({src} to {tgt} and back) from "
                f"{cfg.get('parallel_pairs', '?')} parallel pairs, with the template {cfg.get('template')!r}")
    if kind == "comp":
        return (f"{tgt} sentences of the parallel pairs cut at a random word boundary, the answer being the "
                f"whole sentence, with the template {cfg.get('template')!r}")
    q_lang = tgt if kind in ("tl", "tt") else src
    a_lang = tgt if kind in ("lt", "tt") else src
    text = f"question in {q_lang}, answer in {a_lang}"
    if kind in ("tl", "tt"):
        text += " (question machine-translated)"
    text += ("; answers from D_synth (the gold answer or the model's own response, drawn per row)"
             if cfg.get("responses") == "synth" else "; gold answers")
    if kind in ("lt", "tt"):
        text += " machine-translated"
    if cfg.get("code_switch"):
        text += f"; question words code-switched with probability {cfg.get('code_switch_p')}"
    if cfg.get("template") == "cit":
        text += "; the question asks for the answer in the other language"
    return text


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def _language_tags(codes: list[str]) -> list[str]:
    """ISO 639-1 (what the hub's language filter uses) then ISO 639-3 (exact, e.g. nob vs no)."""
    langs = [languages.get(c) for c in codes]
    return list(dict.fromkeys([lang.iso1 for lang in langs] + [lang.iso for lang in langs]))


def _card(folder: str, method: str, src: str, tgt: str | None, subsets: dict[str, tuple[str, ManifestEntry]],
          sdrrl_version: str | None) -> str:
    """The dataset card; ``subsets``: config -> (registry entry name, its manifest entry)."""
    import yaml

    src_l = languages.get(src)
    tgt_l = languages.get(tgt) if tgt else None
    total = sum(e.rows for _, e in subsets.values())
    header = {
        "pretty_name": f"SDRRL {method} {src}-{tgt}" if tgt else f"SDRRL {method} {src}",
        "language": _language_tags([src] + ([tgt] if tgt else [])),
        "license": "cc-by-nc-4.0",
        "multilinguality": "multilingual" if tgt else "monolingual",
        "size_categories": [_size_category(total)],
        "task_categories": ["text-generation"] + (["translation"] if "mt" in subsets else []),
        "tags": ["sdrrl", "instruction-tuning", "alpaca", "llama-factory"],
        "configs": [{"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}.parquet"}]}
                    for name in subsets],
    }
    src_name, tgt_name = src_l.name, tgt_l.name if tgt_l else None
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", "",
        f"# {folder}", "",
        catalog.method(method).description + " "
        + (f"Source (resource-rich) language: {src_name}; target language: {tgt_name}."
           if tgt else f"Language: {src_name}."),
        "",
        ("Made by `sdrrl export --hf-copy` from the LLaMA-Factory registry (JSON Lines in alpaca "
         "columns `instruction`, `input`, `output`); each subset below is one config with a `train` split, "
         "and one registry entry. Load one with:"), "",
        "```python",
        "from datasets import load_dataset",
        f"ds = load_dataset(\"path/to/{folder}\", \"{next(iter(subsets))}\", split=\"train\")",
        "```", "",
        "## Subsets", "",
        "| config | registry entry | rows | what it holds |", "|---|---|---|---|",
    ]
    for config, (name, e) in subsets.items():
        what = _subset_text(e, src_name, tgt_name).replace("|", "\\|")
        lines.append(f"| `{config}` | `{name}` | {e.rows:,} | {what} |")
    details = {}
    for config, (_, e) in subsets.items():
        inputs = [{"file": os.path.basename(str(i.get("path") or i.get("corpus") or "")), "sha256": i.get("sha256")}
                  for i in e.inputs if isinstance(i, dict)]
        details[config] = {"config": e.config, "dropped": e.dropped, "inputs": inputs}
        if e.same_content_as:
            details[config]["same_content_as"] = e.same_content_as
    synth = any(e.config.get("responses") == "synth" for _, e in subsets.values())
    parallel = any(e.subset in ("mt", "comp") for _, e in subsets.values())
    lines += ["", f"Total: {total:,} rows.", "",
              "## Configuration", "",
              ("Per subset, from the export manifest: the compose settings, the rows dropped and why, and "
               "the input files with their sha256."), "",
              "```yaml", yaml.safe_dump(details, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "```", "",
              "## License and provenance", "",
              "Released under CC BY-NC 4.0 (non-commercial), the licence of the paper's source data: the "
              "instructions and gold answers come from the source instruction set, Stanford Alpaca in the paper "
              "(CC BY-NC 4.0; generated with OpenAI's text-davinci-003, whose terms also apply; with other source "
              "data, its licence applies)."
              + (" Translations were made with NLLB-200 (facebook/nllb-200-3.3B, CC BY-NC 4.0) and filtered "
                 "with CLD3 language ID and CometKiwi quality estimation." if tgt else "")
              + (" Answers drawn from the model's own responses were generated by the base model (LLaMA-2-7B in "
                 "the paper), under that model's licence." if synth else "")
              + (" Translation and completion data come from the configured parallel corpus (OPUS-100 in the "
                 "paper), under its licence." if parallel else ""), "",
              ]
    lines += [
        "## Citation", "",
        "```bibtex", PAPER_CITATION, "```", "",
    ]
    if sdrrl_version:
        lines += [f"Written by sdrrl {sdrrl_version}.", ""]
    return "\n".join(lines)


def _read_registry_file(path: Path, name: str, expected_rows: int | None):
    """The rows of one registry file as an Arrow table, and the sha256 of its bytes."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not path.is_file():
        raise SdrrlError(f"Registry file {str(path)!r} of entry {name!r} (listed in manifest.json) is missing.",
                         "run `sdrrl export` again into that folder, or remove the entry from manifest.json.")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    schema = pa.schema([(c, pa.string()) for c in ("instruction", "input", "output")])
    if data.strip():
        try:
            table = pj.read_json(pa.BufferReader(data), parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False))
        except pa.ArrowInvalid as err:
            raise SdrrlError(f"{path}: not valid JSON Lines ({err}).", "run `sdrrl export` again.") from None
    else:
        table = schema.empty_table()
    if expected_rows is not None and table.num_rows != expected_rows:
        raise SdrrlError(f"{path} has {table.num_rows} rows but manifest.json says {expected_rows}: the file "
                         "changed after the export.", "run `sdrrl export` again to rewrite both.")
    return table, sha


def _write_parquet(path: Path, table, sha: str) -> bool:
    """Write ``table`` unless ``path`` already holds the copy of the same source; True if written."""
    import pyarrow.parquet as pq

    if path.is_file():
        try:
            old = (pq.read_schema(path).metadata or {}).get(SOURCE_SHA)
        except Exception:  # noqa: BLE001 - an unreadable old file (e.g. foreign) is simply replaced
            old = None
        if old == sha.encode():
            return False
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), SOURCE_SHA: sha.encode()})
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
    return True


def _write_text_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    with atomic_open(path) as fh:
        fh.write(text)
    return True


def folder_name(entry: ManifestEntry) -> str:
    method = catalog.method(entry.method)
    return f"{method.name}_{method.pair(entry.source, entry.target)}"


def write_hf_copy(registry_dir: str | os.PathLike, manifest: Manifest | None, out_dir: str | os.PathLike, *,
                  log: Callable[[str], None] = lambda s: None) -> dict[str, dict[str, int]]:
    """Write the Hugging Face copy of every manifest entry; returns {folder: {config: rows}}.

    ``manifest`` is what :func:`sdrrl.compose.export.export` returned (None: read
    ``registry_dir/manifest.json``). Parquet files are written before the card that names them.
    """
    reg = Path(registry_dir)
    if manifest is None:
        manifest = Manifest.read(reg)
        if manifest is None:
            raise SdrrlError(f"No {MANIFEST} in {str(reg)!r}.", "run `sdrrl export --out DIR` first.")
    if not manifest.entries:
        raise SdrrlError(f"The manifest of {str(reg)!r} lists no exported datasets.",
                         "run `sdrrl export` successfully first.")
    out = ensure_writable_dir(out_dir)

    groups: dict[str, dict[str, tuple[str, ManifestEntry]]] = {}
    for name, entry in manifest.entries.items():
        try:
            method = catalog.method(entry.method)
        except SdrrlError as err:
            raise SdrrlError(f"manifest.json entry {name!r}: {err.problem}", err.fix) from None
        if not method.source_only and not entry.target:
            raise SdrrlError(f"manifest.json entry {name!r} ({method.name}) lacks its target language.",
                             "export again with this sdrrl version.")
        groups.setdefault(folder_name(entry), {})[entry.subset or SFT_CONFIG] = (name, entry)

    summary: dict[str, dict[str, int]] = {}
    for folder, subsets in groups.items():
        order = {k: i for i, k in enumerate((SFT_CONFIG,) + ALL_SUBSETS)}
        subsets = dict(sorted(subsets.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
        _, first = next(iter(subsets.values()))
        written = 0
        for config, (name, entry) in subsets.items():
            table, sha = _read_registry_file(reg / entry.file, name, entry.rows)
            written += _write_parquet(out / folder / "data" / f"{config}.parquet", table, sha)
        card = _card(folder, first.method, first.source, first.target, subsets, manifest.sdrrl_version)
        written += _write_text_if_changed(out / folder / "README.md", card)
        summary[folder] = {config: e.rows for config, (_, e) in subsets.items()}
        log(f"hf copy {folder}: {len(subsets)} config(s), {sum(summary[folder].values())} rows"
            + ("" if written else " (unchanged)"))
    return summary
