"""Preflight of a pipeline run: every model, file and language the config names, checked before any
model loads, so a typo in the QE model's path fails in a second instead of after hours of generation.

``sdrrl build`` checks every stage; a single-stage command checks its own stage and every later one
(``--preflight stage``: its own only, for stages run in different environments or on different
machines; a later stage's problem says so). Languages, types and ranges were already checked when
the config was read. A model is read as far as it can be without loading it (:mod:`sdrrl.preflight`):
its kind must fit the stage and its weight files must be there.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from sdrrl import configfile, hub, preflight
from sdrrl.errors import SdrrlError

STAGES = ("generate", "sample", "translate", "filter")


def _stage_problems(cfg, stage: str) -> list[SdrrlError | None]:
    """The problems of one stage's models and files."""
    if stage == "generate":
        return [preflight.hf_model_problem(cfg.generate.model, "generate.model", "generator model", "causal")]
    if stage == "translate":
        t = cfg.translate
        if t.backend == "llm":  # self-translation: the LLM named, else the generator M_θ
            key = "translate.llm_model" if t.llm_model else "generate.model"
            return [preflight.hf_model_problem(cfg.translation_model, key, "self-translation LLM", "causal")]
        converted = t.backend == "ctranslate2" and bool(t.ct2_model_dir)  # then only the tokenizer is read
        found = [preflight.hf_model_problem(t.model, "translate.model", "translation model", "nllb",
                                            weights=not converted)]
        if converted:
            fix = "point it at a converted model folder, or set it to null to convert translate.model once."
            problem = preflight.path_problem(t.ct2_model_dir, "translate.ct2_model_dir", "CTranslate2 model", fix,
                                             folder=True)
            if problem is None and not (Path(os.path.expanduser(t.ct2_model_dir)) / "model.bin").is_file():
                problem = SdrrlError(f"translate.ct2_model_dir: {t.ct2_model_dir!r} is not a converted CTranslate2 "
                                     "model (no model.bin in it).", fix)
            found.append(problem)
        return found
    if stage == "filter":
        f = cfg.filter
        found = []
        if f.qe_enabled:
            found.append(preflight.comet_model_problem(f.qe_model, "filter.qe_model", "QE model"))
        if f.lid_enabled and f.lid_backend == "gcld3" and importlib.util.find_spec("gcld3") is None:
            found.append(SdrrlError("filter.lid_enabled: the language-ID library gcld3 is not installed here.",
                                    "run `bash scripts/bootstrap.sh` (it builds gcld3), or set "
                                    "filter.lid_enabled: false (not the paper's setup)."))
        return found
    return []


def problems(cfg, first: str = "generate", *, only: bool = False, needs_input: bool = False,
             build: bool = False) -> list[SdrrlError]:
    """Every problem of ``cfg`` (a PipelineConfig) for the stages from ``first`` on (only ``first``
    when ``only``); ``needs_input``: the run reads D from ``cfg.input``. Unless the command runs every
    stage itself (``build``), a later stage's problem says that ``--preflight stage`` leaves it to the
    run of that stage."""
    stages = (first,) if only else STAGES[STAGES.index(first):]
    found: list[SdrrlError | None] = []
    # a hub dataset id (sdrrl.hub.is_local): its loader reports on it
    if needs_input and cfg.input is not None and hub.is_local(cfg.input):
        found.append(preflight.path_problem(cfg.input, "input", "instruction set", "set input (or --input) to "
                                            "your alpaca instruction file, or leave it null for the shipped sample."))
    for stage in stages:
        for p in _stage_problems(cfg, stage):
            if p is not None and stage != first and not build:
                p = type(p)(f"{p.problem.rstrip('.')} (the later {stage} stage needs it: checked now, so that it "
                            "cannot fail after this stage's work).",
                            f"{p.fix[:-1] if p.fix else 'fix it'}; or, if `sdrrl {stage}` runs elsewhere (another "
                            "environment or machine), run this command with --preflight stage (this stage's models "
                            "only).")
            found.append(p)
    engines = {cfg.generate.backend} if "generate" in stages else set()
    if "translate" in stages and cfg.translate.backend == "llm":
        engines.add(cfg.translate.llm_engine or cfg.generate.backend)
    if "vllm" in engines:  # a Python that hosts vLLM: here, or the vLLM environment
        from sdrrl.pipeline.vllm_engine import python_problem

        found.append(python_problem())
    if cfg.cache and Path(cfg.cache).is_dir():
        found.append(SdrrlError(f"cache: {cfg.cache!r} is a folder.", "name an SQLite file, e.g. WORK/cache.sqlite."))
    return [p for p in found if p is not None]


def check(cfg, first: str = "generate", *, only: bool = False, needs_input: bool = False, build: bool = False) -> None:
    """Raise every problem at once (a ConfigError, one line each); nothing when all resolve."""
    configfile.raise_problems(problems(cfg, first, only=only, needs_input=needs_input, build=build), "preflight")
