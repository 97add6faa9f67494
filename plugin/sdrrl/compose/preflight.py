"""Preflight of ``sdrrl export``: every input the config names exists, reported all at once before
anything is composed or written: the pipeline outputs each method reads, the bilingual dictionary
of each code-switched pair, a local parallel corpus for each pair that needs D_mt/D_comp, and a
local monolingual corpus (``completion.corpus``) for each pair's D_comp. Then, holding the work
directory as a reader, :func:`check_generation`: every pipeline output it reads, and the chain before
it, comes from one build (:func:`sdrrl.layout.generation_problems`).

(``parallel.corpus: opus100`` is loaded through ``datasets``, which reports a missing offline copy
itself; its cache layout is not checked here.)
"""

from __future__ import annotations

import importlib.util

from sdrrl import configfile, hub, languages, layout
from sdrrl.compose.config import ComposeConfig
from sdrrl.errors import SdrrlError

PARALLEL = ("mt", "comp")


def problems(cfg: ComposeConfig) -> list[SdrrlError]:
    from sdrrl.compose.methods import plan

    entries = plan(cfg)
    found: list[SdrrlError] = []
    work = cfg.path(cfg.work_dir)
    run = "run `sdrrl build` (or the stage that writes it) on that work directory, or fix work_dir in the config."
    if not work.is_dir():
        return [SdrrlError(f"work_dir: path {str(work)!r} does not exist.", run)]

    def need(path, what: str) -> None:
        if not path.is_file():
            found.append(SdrrlError(f"{what} {str(path)!r} does not exist (the export reads it).", run))

    pairs = [e for e in entries if not e.source_only]
    if any(e.source_only for e in entries):
        need(layout.source_path(work), "pipeline output")
    if any(e.spec.kind not in PARALLEL for e in pairs):
        need(layout.synth_path(work), "pipeline output")
    for tgt in dict.fromkeys(e.target for e in pairs):
        mine = [e for e in pairs if e.target == tgt]
        if any(e.spec.kind in ("tl", "lt", "tt") for e in mine):
            need(layout.filtered_path(work, cfg.source, tgt), "pipeline output")
        if any(e.spec.code_switch for e in mine):
            found.extend(_dictionary_problems(cfg, tgt))
        if any(e.spec.kind == "comp" for e in mine) and cfg.completion.corpus:
            found.extend(_completion_problems(cfg, tgt))
        if any(e.spec.kind in PARALLEL for e in mine) and cfg.parallel.corpus != "opus100":
            path = cfg.path(cfg.parallel.corpus.format(src=cfg.source, tgt=tgt))
            if not path.is_file():
                found.append(SdrrlError(f"parallel.corpus: path {str(path)!r} (for {cfg.source}-{tgt}) does not exist.",
                                        "set parallel.corpus to 'opus100' or to an existing .tsv/.jsonl file "
                                        "(it may contain {src} and {tgt})."))
    checked = any(e.spec.code_switch or e.spec.kind in PARALLEL for e in pairs)
    if cfg.language_check.enabled and checked and importlib.util.find_spec("gcld3") is None:
        found.append(SdrrlError("language_check: the language-ID library gcld3 is not installed here.",
                                "run `bash scripts/bootstrap.sh` (it builds gcld3), or set language_check.enabled: "
                                "false (corpora and dictionaries are then used unchecked)."))
    return list({str(p): p for p in found}.values())  # one line per problem, however many pairs share it


def work_outputs(cfg: ComposeConfig) -> list[layout.StageOutput]:
    """The pipeline outputs the export reads: D for SFT, D_synth for D_LL, each target's filter output."""
    from sdrrl.compose.methods import plan

    work = cfg.path(cfg.work_dir)
    entries = plan(cfg)
    pairs = [e for e in entries if not e.source_only]
    out = []
    if any(e.source_only for e in entries):
        out.append(layout.stage_output(work, "prepare"))
    if any(e.spec.kind not in PARALLEL for e in pairs):
        out.append(layout.stage_output(work, "sample"))
    for tgt in dict.fromkeys(e.target for e in pairs if e.spec.kind in ("tl", "lt", "tt")):
        out.append(layout.stage_output(work, "filter", cfg.source, tgt))
    return out


def check_generation(cfg: ComposeConfig) -> None:
    """Refuse a work directory whose outputs do not all come from one build (hold it as a reader:
    :func:`sdrrl.pipeline.lock.hold_work_reading`)."""
    configfile.raise_problems(layout.generation_problems(work_outputs(cfg)))


def _completion_problems(cfg: ComposeConfig, tgt: str) -> list[SdrrlError]:
    """A local monolingual corpus must exist; a dataset id is left to its loader (:mod:`sdrrl.hub`)."""
    from sdrrl.compose.monolingual import NOT_FOUND_FIX, corpus_name

    name = corpus_name(cfg.completion.corpus, tgt)
    path = cfg.path(name)
    if path.exists() or not hub.looks_local(name):
        return []
    return [SdrrlError(f"completion.corpus: path {str(path)!r} (for {tgt}) does not exist.", NOT_FOUND_FIX)]


def _dictionary_problems(cfg: ComposeConfig, tgt: str) -> list[SdrrlError]:
    cs = cfg.code_switch
    if not cs.dictionaries:
        return [SdrrlError("code_switch.dictionaries is not set, and code-switching needs bilingual dictionaries.",
                           "set it to a folder of MUSE files (en-id.txt, ...), or choose methods without "
                           "code-switching (e.g. sdrrl-no-cs).")]
    folder = cfg.path(cs.dictionaries)
    if folder.is_file():  # one file would serve every target: the folder holds one file per pair, by name
        return [SdrrlError(f"code_switch.dictionaries: {str(folder)!r} is a file, not a folder; it names the folder "
                           "of MUSE files, one per language pair, chosen by name (en-id.txt for eng-ind).",
                           f"set it to the folder holding {folder.name} and the other pairs' files.")]
    if not folder.is_dir():
        return [SdrrlError(f"code_switch.dictionaries: path {str(folder)!r} does not exist.",
                           "set it to the folder holding the MUSE files (en-id.txt, ...).")]
    a, b = languages.get(cfg.source).dictionary, languages.get(tgt).dictionary
    if not ((folder / f"{a}-{b}.txt").is_file() or (folder / f"{b}-{a}.txt").is_file()):
        return [SdrrlError(f"code_switch.dictionaries: no bilingual dictionary {a}-{b}.txt (or {b}-{a}.txt) for "
                           f"{cfg.source}-{tgt} in {str(folder)!r}.", f"add the MUSE file {a}-{b}.txt there.")]
    return []


def check(cfg: ComposeConfig) -> None:
    configfile.raise_problems(problems(cfg), "preflight")
