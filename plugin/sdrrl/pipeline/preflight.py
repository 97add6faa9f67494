"""Preflight of a pipeline run: every model, file and language the config names, checked before any
model loads, so a typo in the QE model's path fails in a second instead of after hours of generation.

``sdrrl build`` checks every stage; a single-stage command checks its own stage and every later one
(``--preflight stage``: its own only, for stages run in different environments or on different
machines). Languages, types and ranges were already checked when the config was read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sdrrl import configfile, hub, preflight
from sdrrl.errors import SdrrlError

STAGES = ("generate", "sample", "translate", "filter")


def problems(cfg, first: str = "generate", *, only: bool = False, needs_input: bool = False) -> list[SdrrlError]:
    """Every problem of ``cfg`` (a PipelineConfig) for the stages from ``first`` on (only ``first``
    when ``only``); ``needs_input``: the run reads D from ``cfg.input``."""
    stages = (first,) if only else STAGES[STAGES.index(first):]
    found: list[SdrrlError | None] = []
    # a hub dataset id (sdrrl.hub.is_local): its loader reports on it
    if needs_input and cfg.input is not None and hub.is_local(cfg.input):
        found.append(preflight.path_problem(cfg.input, "input", "instruction set", "set input (or --input) to "
                                            "your alpaca instruction file, or leave it null for the shipped sample."))
    if "generate" in stages:
        found.append(preflight.hf_model_problem(cfg.generate.model, "generate.model", "generator model"))
    engines = {cfg.generate.backend} if "generate" in stages else set()
    if "translate" in stages and cfg.translate.backend == "llm":
        engines.add(cfg.translate.llm_engine or cfg.generate.backend)
    if "vllm" in engines:  # a Python that hosts vLLM: here, or the vLLM environment
        from sdrrl.pipeline.vllm_engine import python_problem

        found.append(python_problem())
    if "translate" in stages:
        t = cfg.translate
        if t.backend == "llm":  # self-translation: the LLM named, else the generator M_θ
            key = "translate.llm_model" if t.llm_model else "generate.model"
            found.append(preflight.hf_model_problem(cfg.translation_model, key, "self-translation LLM"))
        else:
            found.append(preflight.hf_model_problem(t.model, "translate.model", "translation model"))
        if t.backend == "ctranslate2" and t.ct2_model_dir:
            found.append(preflight.path_problem(t.ct2_model_dir, "translate.ct2_model_dir", "CTranslate2 model",
                                                "point it at a converted model folder, or set it to null to "
                                                "convert translate.model once.", folder=True))
    if "filter" in stages:
        f = cfg.filter
        if f.qe_enabled:
            found.append(preflight.comet_model_problem(f.qe_model, "filter.qe_model", "QE model"))
        if f.lid_enabled and f.lid_backend == "gcld3" and importlib.util.find_spec("gcld3") is None:
            found.append(SdrrlError("filter.lid_enabled: the language-ID library gcld3 is not installed here.",
                                    "run `bash scripts/bootstrap.sh` (it builds gcld3), or set "
                                    "filter.lid_enabled: false (not the paper's setup)."))
    if cfg.cache and Path(cfg.cache).is_dir():
        found.append(SdrrlError(f"cache: {cfg.cache!r} is a folder.", "name an SQLite file, e.g. WORK/cache.sqlite."))
    return [p for p in found if p is not None]


def check(cfg, first: str = "generate", *, only: bool = False, needs_input: bool = False) -> None:
    """Raise every problem at once (a ConfigError, one line each); nothing when all resolve."""
    configfile.raise_problems(problems(cfg, first, only=only, needs_input=needs_input), "preflight")
