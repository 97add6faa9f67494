"""A new user's bad inputs through the real CLI: does each get a clean error?

Runs about a hundred bad inputs (malformed rows, unknown languages, missing models and files, models of
the wrong kind, bad config values, stale or mixed work directories, mislabelled corpora, bad recipes
and registries, ...) through the real `sdrrl` commands on the tiny local models and the shipped sample
data, and classifies each outcome:

- clean: exit code 2, at least one `error:` line, every `error:` line naming a fix (`Fix:`), no traceback;
- traceback: a Python traceback, or an exit code other than 0 and 2;
- silent: exit code 0, the bad input accepted;
- unclear: exit code 2 without an `error:` line that names a fix.

The target is every case clean. `--fast` runs the cases that load no model library (config values,
languages, export inputs and corpora: about a minute); a test runs them. The full battery also
builds a small work directory once (about a minute on 2 cores) for the stale-work-directory cases.

    python benchmarks/bad_inputs.py                      # writes benchmarks/results/bad_inputs.md
    python benchmarks/bad_inputs.py --fast --out /tmp/r.md --json /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugin"))
SAMPLE = REPO / "plugin" / "sdrrl" / "data" / "sample"
FIXTURE_WORK = REPO / "tests" / "fixtures" / "compose" / "work"
TINY_RECIPE = REPO / "recipes" / "sdrrl_tiny_cpu.yaml"


@dataclass
class Run:
    """One command: its arguments (after `sdrrl`), extra environment, working directory."""

    args: list
    env: dict = field(default_factory=dict)
    cwd: Path | None = None


@dataclass
class Case:
    name: str
    area: str
    fast: bool
    make: Callable[["Context"], Run]


CASES: list[Case] = []


def case(area: str, name: str, fast: bool = False):
    def register(make):
        CASES.append(Case(name, area, fast, make))
        return make
    return register


class Context:
    """What the cases build on: a scratch folder, the tiny models, a finished work directory."""

    def __init__(self, root: Path, models, built: Path | None):
        self.root, self.models, self._built = root, models, built
        self._n = 0

    def dir(self, name: str) -> Path:
        self._n += 1
        d = self.root / f"{self._n:03d}-{name}"
        d.mkdir(parents=True)
        return d

    def write(self, path: Path, text: str | bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    # -- pipeline configs ---------------------------------------------------------------------------
    def pipeline(self, d: Path, **sections) -> dict:
        cfg = {"work_dir": str(d / "w"), "target_langs": ["ind"],
               "generate": {"model": str(self.models.llama), "max_new_tokens": 6, "batch_size": 4, "device": "cpu"},
               "translate": {"model": str(self.models.nllb), "max_length": 12, "batch_size": 8, "device": "cpu"},
               "filter": {"qe_model": str(self.models.comet_qe), "qe_threshold": 0.0, "lid_enabled": False,
                          "heuristics_enabled": False}}
        for key, value in sections.items():
            cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
        return cfg

    def pipeline_file(self, d: Path, text: str | None = None, **sections) -> Path:
        return self.write(d / "build.yaml", text if text is not None else json.dumps(self.pipeline(d, **sections)))

    def build(self, d: Path, *extra, text: str | None = None, **sections) -> Run:
        return Run(["build", "--config", self.pipeline_file(d, text, **sections), *extra], cwd=d)

    def prompts(self, d: Path, data: str | bytes | Path, *extra, **sections) -> Run:
        """`sdrrl generate --prompts-only` on an input: what reads and checks D."""
        path = data if isinstance(data, Path) else self.write(d / "input.jsonl", data)
        return Run(["generate", "--config", self.pipeline_file(d, **sections), "--input", path, "--prompts-only",
                    "--preflight", "stage", *extra], cwd=d)

    # -- export configs -----------------------------------------------------------------------------
    def work(self, d: Path, built: bool = False) -> Path:
        """A copy of the fixture work directory (or of the built one)."""
        return Path(shutil.copytree(self.built if built else FIXTURE_WORK, d / "w"))

    @property
    def built(self) -> Path:
        if self._built is None:
            raise RuntimeError("this case needs the built work directory (run without --fast)")
        return self._built

    def export(self, d: Path, work: Path | None = None, out: Path | None = None, text: str | None = None,
               extra: tuple = (), **overrides) -> Run:
        cfg = {"work_dir": str(work or self.work(d)), "targets": ["ind"], "methods": ["sft", "sdrrl"], "workers": 1,
               "code_switch": {"dictionaries": str(SAMPLE / "dictionaries")},
               "parallel": {"corpus": str(SAMPLE / "parallel" / "{src}-{tgt}.tsv"), "pairs": 30}}
        for key, value in overrides.items():
            cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
        path = self.write(d / "export.yaml", text if text is not None else json.dumps(cfg))
        return Run(["export", "--config", path, "--out", out or d / "reg", *extra], cwd=d)

    def corpus(self, d: Path, text: str | bytes, name: str = "eng-ind.tsv", **overrides) -> Run:
        folder = d / "corpora"
        self.write(folder / name, text)
        return self.export(d, methods=["sdrrl-only-mt-comp"],
                           parallel={"corpus": str(folder / ("{src}-{tgt}" + Path(name).suffix))}, **overrides)

    def dictionaries(self, d: Path, name: str, text: str | bytes) -> Run:
        folder = Path(shutil.copytree(SAMPLE / "dictionaries", d / "dicts"))
        self.write(folder / name, text)
        return self.export(d, methods=["sdrrl"], code_switch={"dictionaries": str(folder)})

    def recipe(self, d: Path, *overrides: str, registry: Path | None = None, recipe: Path = TINY_RECIPE) -> Run:
        return Run(["train", "--check-only", recipe, f"model_name_or_path={self.models.llama}",
                    *([f"dataset_dir={registry}"] if registry else []), *overrides], cwd=d)

    def registry(self, d: Path) -> Path:
        """A registry exported from the fixture work directory (every dataset the tiny recipe names)."""
        reg = d / "reg"
        run = self.export(d, methods=["sdrrl"])
        proc = invoke(run)
        if proc.returncode:
            raise RuntimeError(f"setting up a registry failed: {proc.stderr[-2000:]}")
        return reg


def invoke(run: Run, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"), **run.env)
    try:
        return subprocess.run([sys.executable, "-m", "sdrrl.cli", *map(str, run.args)], env=env, cwd=run.cwd,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(err.cmd, -9, "", f"timed out after {timeout} s (a hang)")


def classify(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr or ""
    if "Traceback (most recent call last)" in err or proc.returncode not in (0, 2):
        return "traceback"
    if proc.returncode == 0:
        return "silent"
    lines = [line for line in err.splitlines() if ": error: " in line]
    return "clean" if lines and all("Fix:" in line for line in lines) else "unclear"


ROW = '{"instruction": "Name a colour.", "input": "", "output": "Blue."}\n'
GOOD_ROWS = ROW + '{"instruction": "Name a fruit.", "input": "", "output": "An apple."}\n'


# -- pipeline config values (fail while the config is read) ------------------------------------------------

@case("pipeline config", "config file missing", fast=True)
def _(c): d = c.dir("cfg"); return Run(["build", "--config", d / "nope.yaml"], cwd=d)


@case("pipeline config", "YAML syntax error", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, text="generate: {model: x\n  batch_size: [\n")


@case("pipeline config", "config is a list, not a mapping", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, text="- work_dir: w\n")


@case("pipeline config", "unknown top-level key", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, target_language=["ind"])


@case("pipeline config", "misspelled nested key filter.qe_treshold", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, filter={"qe_treshold": 0.8})


@case("pipeline config", "boolean given as a string (lid_enabled: 'false')", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, filter={"lid_enabled": "false"})


@case("pipeline config", "qe_threshold: high", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, filter={"qe_threshold": "high"})


@case("pipeline config", "qe_threshold out of [0, 1]", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, filter={"qe_threshold": 7})


@case("pipeline config", "p_generated 1.5", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, sample={"p_generated": 1.5})


@case("pipeline config", "p_generated as a string", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, sample={"p_generated": "0.5"})


@case("pipeline config", "max_new_tokens 0", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, generate={"max_new_tokens": 0})


@case("pipeline config", "negative batch size", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, translate={"batch_size": -1})


@case("pipeline config", "PyYAML's string 1e-3 for a number", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, text=f"work_dir: {d / 'w'}\ngenerate:\n  temperature: 1e-3\n")


@case("pipeline config", "min_length_ratio above max_length_ratio", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, filter={"min_length_ratio": 6.0, "max_length_ratio": 5.0})


@case("pipeline config", "unknown target language xyz", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, target_langs=["xyz"])


@case("pipeline config", "target language in another code system (id)", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, target_langs=["id"])


@case("pipeline config", "source language that is no source (deu)", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, source_lang="deu")


@case("pipeline config", "no target language", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, target_langs=[])


@case("pipeline config", "target equals the source", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, target_langs=["eng"])


@case("pipeline config", "unknown generate.backend", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, generate={"backend": "tensorrt"})


@case("pipeline config", "unknown translate.backend", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, translate={"backend": "marian"})


@case("pipeline config", "unknown on_bad_row", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, on_bad_row="ignore")


@case("pipeline config", "--max-rows 0", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, "--max-rows", "0")


@case("pipeline config", "--shard-timeout -1", fast=True)
def _(c): d = c.dir("cfg"); return c.build(d, "--shard-timeout", "-1")


# -- D, the instruction set (read after the preflight of the generate stage) -------------------------------

@case("input", "input file missing")
def _(c): d = c.dir("in"); return c.prompts(d, d / "missing.jsonl")


@case("input", "input file empty")
def _(c): d = c.dir("in"); return c.prompts(d, "")


@case("input", "a line that is not JSON")
def _(c): d = c.dir("in"); return c.prompts(d, ROW + "{not json\n" + ROW)


@case("input", "a row without output")
def _(c): d = c.dir("in"); return c.prompts(d, ROW + '{"instruction": "Missing output."}\n')


@case("input", "a line that is not UTF-8 (Latin-1)")
def _(c): d = c.dir("in"); return c.prompts(d, ROW.encode() + b'{"instruction": "Caf\xe9?", "output": "Oui."}\n')


@case("input", "every row bad, with --on-bad-row skip")
def _(c): d = c.dir("in"); return c.prompts(d, b'{"instruction": 1}\n\xff\xfe\n', "--on-bad-row", "skip")


@case("input", "a JSON array cut short")
def _(c): d = c.dir("in"); return c.prompts(d, c.write(d / "a.json", '[{"instruction": "q", "output": "a"}, {"instr'))


@case("input", "a JSON array that is not UTF-8")
def _(c): d = c.dir("in"); return c.prompts(d, c.write(d / "a.json", b'[{"instruction": "Caf\xe9", "output": "a"}]'))


@case("input", "a JSON array of strings")
def _(c): d = c.dir("in"); return c.prompts(d, c.write(d / "a.json", '["q", "a"]'))


@case("input", "a Parquet file that is not one")
def _(c): d = c.dir("in"); return c.prompts(d, c.write(d / "d.parquet", "not parquet"))


@case("input", "a hub dataset id not in the offline cache")
def _(c): d = c.dir("in"); r = c.prompts(d, d / "x"); r.args[r.args.index("--input") + 1] = "nobody/no-such-set"; return r


@case("input", "duplicate ids")
def _(c): d = c.dir("in"); return c.prompts(d, '{"id": 1, "instruction": "a", "output": "b"}\n' * 2)


@case("input", "instruction is a number")
def _(c): d = c.dir("in"); return c.prompts(d, '{"instruction": 42, "output": "b"}\n')


@case("input", "an unpaired surrogate (a broken emoji)")
def _(c): d = c.dir("in"); return c.prompts(d, '{"instruction": "Hi \\ud83d!", "output": "b"}\n')


@case("input", "a folder that is no dataset")
def _(c):
    d = c.dir("in")
    c.write(d / "data" / "notes.bin", b"\x00\x01")
    return c.prompts(d, d / "data")


@case("input", "an unknown LLaMA-Factory template")
def _(c): d = c.dir("in"); return c.prompts(d, GOOD_ROWS, generate={"template": "no_such_template"})


# -- models (the preflight reads them before any loads) ----------------------------------------------------

def _without_weights(c, d: Path, model: Path) -> Path:
    return Path(shutil.copytree(model, d / "bare", ignore=shutil.ignore_patterns("*.safetensors", "*.bin")))


@case("models", "generate.model: a path that does not exist")
def _(c): d = c.dir("m"); return c.build(d, generate={"model": str(d / "no_model")})


@case("models", "generate.model: the NLLB folder")
def _(c): d = c.dir("m"); return c.build(d, generate={"model": str(c.models.nllb)})


@case("models", "generate.model: a folder without config.json")
def _(c): d = c.dir("m"); (d / "empty").mkdir(); return c.build(d, generate={"model": str(d / "empty")})


@case("models", "generate.model: a folder without weight files")
def _(c): d = c.dir("m"); return c.build(d, generate={"model": str(_without_weights(c, d, c.models.llama))})


@case("models", "generate.model: a sharded index missing a shard")
def _(c):
    d = c.dir("m")
    bare = _without_weights(c, d, c.models.llama)
    c.write(bare / "model.safetensors.index.json", json.dumps({"weight_map": {"w": "model-00001-of-00002.safetensors"}}))
    return c.build(d, generate={"model": str(bare)})


@case("models", "generate.model: config.json not JSON")
def _(c):
    d = c.dir("m")
    bare = Path(shutil.copytree(c.models.llama, d / "m"))
    c.write(bare / "config.json", "{broken")
    return c.build(d, generate={"model": str(bare)})


@case("models", "generate.model: a hub id not in the offline cache")
def _(c): d = c.dir("m"); r = c.build(d, generate={"model": "nobody/no-such-model"}); r.env["HF_HOME"] = str(d / "hf"); return r


@case("models", "translate.model: the Llama folder")
def _(c): d = c.dir("m"); return c.build(d, translate={"model": str(c.models.llama)})


@case("models", "translate.model: a path that does not exist")
def _(c): d = c.dir("m"); return c.build(d, translate={"model": str(d / "nllb")})


@case("models", "translate.model: a folder without weight files")
def _(c): d = c.dir("m"); return c.build(d, translate={"model": str(_without_weights(c, d, c.models.nllb))})


@case("models", "translate.ct2_model_dir: missing")
def _(c): d = c.dir("m"); return c.build(d, translate={"backend": "ctranslate2", "ct2_model_dir": str(d / "ct2")})


@case("models", "translate.ct2_model_dir: a folder that is no CTranslate2 model")
def _(c): d = c.dir("m"); return c.build(d, translate={"backend": "ctranslate2", "ct2_model_dir": str(c.models.nllb)})


@case("models", "translate --backend llm --llm-model the NLLB folder")
def _(c):
    d = c.dir("m")
    return Run(["translate", "--config", c.pipeline_file(d), "--tgt", "ind", "--backend", "llm", "--llm-model",
                c.models.nllb, "--preflight", "stage"], cwd=d)


@case("models", "filter.qe_model: a path that does not exist")
def _(c): d = c.dir("m"); return c.build(d, filter={"qe_model": str(d / "comet" / "model.ckpt")})


@case("models", "filter.qe_model: a Hugging Face folder, not a COMET checkpoint")
def _(c): d = c.dir("m"); return c.build(d, filter={"qe_model": str(c.models.xlmr)})


@case("models", "filter.qe_model: a checkpoint without hparams.yaml")
def _(c):
    d = c.dir("m")
    ckpt = d / "comet" / "checkpoints" / "model.ckpt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(c.models.comet_qe, ckpt)
    return c.build(d, filter={"qe_model": str(ckpt)})


@case("models", "filter.qe_model: the default CometKiwi offline, not cached")
def _(c): d = c.dir("m"); r = c.build(d, filter={"qe_model": "Unbabel/wmt22-cometkiwi-da"}); r.env["HF_HOME"] = str(d / "hf"); return r


@case("models", "sdrrl translate --backend llm offline: a later stage's CometKiwi")
def _(c):
    d = c.dir("m")
    cfg = c.write(d / "c.yaml", json.dumps({"work_dir": str(d / "w"), "generate": {"model": str(c.models.llama)}}))
    return Run(["translate", "--config", cfg, "--tgt", "ind", "--backend", "llm", "--llm-model", c.models.llama],
               env={"HF_HOME": str(d / "hf")}, cwd=d)


@case("models", "cache: names a folder")
def _(c): d = c.dir("m"); (d / "cachedir").mkdir(); return c.build(d, cache=str(d / "cachedir"))


@case("models", "--num-shards 2 --shard-index 2")
def _(c): d = c.dir("m"); return c.build(d, "--num-shards", "2", "--shard-index", "2")


# -- stale or mixed work directories ---------------------------------------------------------------------

def _prepare_other(work: Path, max_rows: int) -> None:
    """What a build with another --max-rows leaves when it is killed right after "prepare"."""
    from sdrrl.pipeline import workdir

    workdir.prepare_source(work, None, max_rows=max_rows)


@case("work directory", "export after a rerun with other --max-rows killed after prepare")
def _(c): d = c.dir("wd"); w = c.work(d, built=True); _prepare_other(w, 2); return c.export(d, w)


@case("work directory", "sample after a rerun with other --max-rows killed after prepare")
def _(c):
    d = c.dir("wd"); w = c.work(d, built=True); _prepare_other(w, 2)
    return Run(["sample", "--work-dir", w, "--preflight", "stage"], cwd=d)


@case("work directory", "export of a filter file edited by hand")
def _(c):
    from sdrrl import layout

    d = c.dir("wd"); w = c.work(d, built=True)
    path = layout.filtered_path(w, "eng", "ind")
    path.write_text(path.read_text(encoding="utf-8").replace('"D"', '"G"', 1), encoding="utf-8")
    return c.export(d, w)


@case("work directory", "export of a work directory without records (an older sdrrl)")
def _(c):
    d = c.dir("wd"); w = c.work(d, built=True)
    for record in w.rglob("*.jsonl.done"):
        record.unlink()
    return c.export(d, w)


@case("work directory", "export after translate was rerun on another D_synth but filter was not")
def _(c):
    from sdrrl import layout

    d = c.dir("wd"); w = c.work(d, built=True)
    path = layout.translations_path(w, "eng", "ind")
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(rows[:-1]), encoding="utf-8")
    layout.record(path, json.loads(layout.record_path(path).read_text())["depends"])
    return c.export(d, w)


@case("work directory", "export of a target that was never built")
def _(c): d = c.dir("wd"); w = c.work(d, built=True); return c.export(d, w, targets=["ind", "ces"])


@case("work directory", "export of a work directory that does not exist")
def _(c): d = c.dir("wd"); return c.export(d, d / "no_work")


@case("work directory", "filter before translate")
def _(c):
    from sdrrl import layout

    d = c.dir("wd"); w = c.work(d, built=True)
    layout.translations_path(w, "eng", "ind").unlink()
    return Run(["filter", "--work-dir", w, "--tgt", "ind", "--no-qe", "--no-lid"], cwd=d)


@case("work directory", "sample before generate")
def _(c):
    from sdrrl import layout

    d = c.dir("wd"); w = c.work(d, built=True)
    layout.responses_path(w).unlink()
    return Run(["sample", "--work-dir", w, "--preflight", "stage"], cwd=d)


def _held(c, command: str, num_shards: int, shard_index: int) -> Run:
    """``command`` (export or build) on the built work directory while this process holds it as a writer
    (shard I of N)."""
    d = c.dir("wd"); w = c.work(d, built=True)
    run = c.export(d, w) if command == "export" else c.build(d)  # the build's work_dir is w too
    run.hold = (w, num_shards, shard_index)
    return run


@case("work directory", "export while a build is writing the work directory")
def _(c): return _held(c, "export", 1, 0)


@case("work directory", "export while a shard of a sharded build is writing")
def _(c): return _held(c, "export", 2, 1)


@case("work directory", "a second build while one is running")
def _(c): return _held(c, "build", 1, 0)


# -- export config and inputs (fixture work directory) ------------------------------------------------------

@case("export config", "export config file missing", fast=True)
def _(c): d = c.dir("ex"); return Run(["export", "--config", d / "nope.yaml", "--out", d / "reg"], cwd=d)


@case("export config", "unknown method", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, methods=["sdrl"])


@case("export config", "unknown target language", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, targets=["xyz"])


@case("export config", "target equals the source", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, targets=["eng"])


@case("export config", "code_switch.p 2", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, code_switch={"p": 2})


@case("export config", "parallel.pairs 0", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, parallel={"pairs": 0})


@case("export config", "duplicates: symlink", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, duplicates="symlink")


@case("export config", "--workers -1", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, workers=-1)


@case("export config", "language_check.min_share 2", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, language_check={"min_share": 2})


@case("export config", "unknown key (parallel.corpora)", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, parallel={"corpora": "opus100"})


@case("export config", "SOURCE_DATE_EPOCH not a number", fast=True)
def _(c): d = c.dir("ex"); r = c.export(d); r.env["SOURCE_DATE_EPOCH"] = "yesterday"; return r


@case("export config", "--out names a file", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, out=c.write(d / "reg.txt", "x"))


@case("export config", "an existing registry whose manifest.json is not JSON", fast=True)
def _(c): d = c.dir("ex"); c.write(d / "reg" / "manifest.json", "{broken"); return c.export(d)


@case("export config", "an existing registry whose dataset_info.json is not JSON", fast=True)
def _(c): d = c.dir("ex"); c.write(d / "reg" / "dataset_info.json", "{broken"); return c.export(d)


@case("export config", "methods all, code_switch.dictionaries unset", fast=True)
def _(c): d = c.dir("ex"); return c.export(d, methods="all", code_switch={"dictionaries": None})


@case("corpora", "one parallel corpus for two targets (no {tgt})", fast=True)
def _(c):
    d = c.dir("co")
    return c.export(d, targets=["ind", "ces"], methods=["sdrrl-only-mt-comp"],  # needs no ces filter output
                    parallel={"corpus": str(SAMPLE / "parallel" / "eng-ind.tsv")})


@case("corpora", "one monolingual corpus for two targets (no {tgt})", fast=True)
def _(c):
    d = c.dir("co")
    return c.export(d, targets=["ind", "ces"], methods=["sdrrl-only-mt-comp"],
                    completion={"corpus": str(SAMPLE / "monolingual" / "ind.txt")})


@case("corpora", "parallel.corpus with an unknown placeholder {lang}", fast=True)
def _(c): d = c.dir("co"); return c.export(d, parallel={"corpus": str(d / "{lang}.tsv")})


@case("corpora", "parallel corpus missing", fast=True)
def _(c): d = c.dir("co"); return c.export(d, parallel={"corpus": str(d / "{src}-{tgt}.tsv")})


@case("corpora", "eng-ces pairs (with their header) under the eng-ind name", fast=True)
def _(c): d = c.dir("co"); return c.corpus(d, (SAMPLE / "parallel" / "eng-ces.tsv").read_text(encoding="utf-8"))


@case("corpora", "eng-ces pairs without a header under the eng-ind name", fast=True)
def _(c):
    d = c.dir("co")
    return c.corpus(d, "".join((SAMPLE / "parallel" / "eng-ces.tsv").read_text(encoding="utf-8").splitlines(True)[1:]))


@case("corpora", "columns swapped (header ind, eng)", fast=True)
def _(c):
    d = c.dir("co")
    lines = (SAMPLE / "parallel" / "eng-ind.tsv").read_text(encoding="utf-8").splitlines()
    return c.corpus(d, "\n".join("\t".join(reversed(line.split("\t"))) for line in lines) + "\n")


@case("corpora", "columns swapped, no header", fast=True)
def _(c):
    d = c.dir("co")
    lines = (SAMPLE / "parallel" / "eng-ind.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return c.corpus(d, "\n".join("\t".join(reversed(line.split("\t"))) for line in lines) + "\n")


@case("corpora", "parallel corpus not UTF-8", fast=True)
def _(c): d = c.dir("co"); return c.corpus(d, b"eng\tind\nCaf\xe9 please.\tKopi.\n")


@case("corpora", "parallel JSONL corpus with a line that is not JSON", fast=True)
def _(c): d = c.dir("co"); return c.corpus(d, '{"eng": "Hi there.", "ind": "Halo."}\n{oops\n', name="eng-ind.jsonl")


@case("corpora", "parallel JSONL corpus keyed by other languages", fast=True)
def _(c): d = c.dir("co"); return c.corpus(d, '{"eng": "Good morning.", "ces": "Dobré ráno."}\n' * 3,
                                           name="eng-ind.jsonl")


@case("corpora", "parallel corpus without a tab", fast=True)
def _(c): d = c.dir("co"); return c.corpus(d, "one sentence per line\nand no translation\n")


@case("corpora", "OPUS-100 offline, not cached", fast=True)
def _(c): d = c.dir("co"); r = c.export(d, methods=["sdrrl-only-mt-comp"], parallel={"corpus": "opus100"}); \
    r.env["HF_HOME"] = str(d / "hf"); return r


@case("corpora", "completion.corpus missing", fast=True)
def _(c): d = c.dir("co"); return c.export(d, methods=["sdrrl"], completion={"corpus": str(d / "mono_{tgt}.txt")})


@case("corpora", "completion.corpus in another language", fast=True)
def _(c):
    d = c.dir("co")
    ces = [line.split("\t")[1] for line in (SAMPLE / "parallel" / "eng-ces.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    c.write(d / "mono" / "ind.txt", "\n".join(ces) + "\n")
    return c.export(d, methods=["sdrrl"], completion={"corpus": str(d / "mono" / "{tgt}.txt")})


@case("corpora", "completion.corpus not UTF-8", fast=True)
def _(c):
    d = c.dir("co")
    c.write(d / "mono" / "ind.txt", b"Saya minum kopi setiap pagi di kafe.\nCaf\xe9 itu ramai sekali pada hari Minggu.\n")
    return c.export(d, methods=["sdrrl"], completion={"corpus": str(d / "mono" / "{tgt}.txt")})


@case("corpora", "completion .jsonl without the text column", fast=True)
def _(c):
    d = c.dir("co")
    c.write(d / "mono" / "ind.jsonl", '{"body": "Saya minum kopi setiap pagi."}\n')
    return c.export(d, methods=["sdrrl"], completion={"corpus": str(d / "mono" / "{tgt}.jsonl")})


@case("corpora", "code_switch.dictionaries names a file", fast=True)
def _(c): d = c.dir("co"); return c.export(d, code_switch={"dictionaries": str(SAMPLE / "dictionaries" / "en-id.txt")})


@case("corpora", "code_switch.dictionaries missing", fast=True)
def _(c): d = c.dir("co"); return c.export(d, code_switch={"dictionaries": str(d / "muse")})


@case("corpora", "no dictionary for the pair", fast=True)
def _(c): d = c.dir("co"); (d / "muse").mkdir(); return c.export(d, code_switch={"dictionaries": str(d / "muse")})


@case("corpora", "dictionary mostly malformed lines", fast=True)
def _(c): d = c.dir("co"); return c.dictionaries(d, "en-id.txt", "the sang\n" + "three words here\n" * 20)


@case("corpora", "Czech words in en-id.txt", fast=True)
def _(c): d = c.dir("co"); return c.dictionaries(d, "en-id.txt", (SAMPLE / "dictionaries" / "en-cs.txt").read_text(encoding="utf-8"))


@case("corpora", "dictionary not UTF-8", fast=True)
def _(c): d = c.dir("co"); return c.dictionaries(d, "en-id.txt", b"coffee kop\xed\n")


@case("corpora", "dictionary columns swapped (id-en content in en-id.txt)", fast=True)
def _(c):
    d = c.dir("co")
    text = (SAMPLE / "dictionaries" / "en-id.txt").read_text(encoding="utf-8").splitlines()
    return c.dictionaries(d, "en-id.txt", "\n".join(" ".join(reversed(line.split())) for line in text) + "\n")


# -- recipes and registries ------------------------------------------------------------------------------

@case("train", "recipe file missing")
def _(c): d = c.dir("tr"); return c.recipe(d, recipe=d / "nope.yaml")


@case("train", "recipe YAML broken")
def _(c): d = c.dir("tr"); return c.recipe(d, recipe=c.write(d / "r.yaml", "dataset: [a,\n"))


@case("train", "override that is not key=value")
def _(c): d = c.dir("tr"); return c.recipe(d, "dataset")


@case("train", "misspelled override datset=x")
def _(c): d = c.dir("tr"); return c.recipe(d, "datset=x", registry=c.registry(d))


@case("train", "a dataset not registered")
def _(c): d = c.dir("tr"); return c.recipe(d, "dataset=sdrrl_eng-xyz_ll", registry=c.registry(d))


@case("train", "a data file cut mid-line")
def _(c):
    d = c.dir("tr"); reg = c.registry(d)
    path = reg / "sdrrl_eng-ind_tt.jsonl"
    path.write_bytes(path.read_bytes()[:-7])
    return c.recipe(d, registry=reg)


@case("train", "a data file changed since the export")
def _(c):
    d = c.dir("tr"); reg = c.registry(d)
    path = reg / "sdrrl_eng-ind_ll.jsonl"
    data = path.read_bytes()
    path.unlink()  # a new file: the others share its inode (hard links)
    path.write_bytes(data.replace(b"a", b"e", 1))
    return c.recipe(d, registry=reg)


@case("train", "a registry one export left partly stale")
def _(c):
    d = c.dir("tr"); reg = c.registry(d)
    folder = Path(shutil.copytree(SAMPLE / "dictionaries", d / "dicts"))
    c.write(folder / "en-id.txt", "the sang\n" + "three words here\n" * 20)
    invoke(c.export(d, d / "w", methods=["sdrrl"], code_switch={"dictionaries": str(folder)}))
    return c.recipe(d, registry=reg)


@case("train", "model path missing")
def _(c): d = c.dir("tr"); return c.recipe(d, f"model_name_or_path={d / 'no_model'}", registry=c.registry(d))


@case("train", "no dataset_info.json in dataset_dir")
def _(c): d = c.dir("tr"); return c.recipe(d, registry=d)


def run_case(ctx: Context, c: Case) -> dict:
    start = time.monotonic()
    try:
        run = c.make(ctx)
    except Exception as err:  # noqa: BLE001 - a case that cannot be set up is reported, not hidden
        return {"area": c.area, "case": c.name, "outcome": "setup failed", "exit": None,
                "error": f"{type(err).__name__}: {err}", "seconds": 0.0}
    hold = getattr(run, "hold", None)
    if hold is not None:
        from sdrrl.pipeline import lock

        work, n, i = hold
        with lock.hold_work(work, n, i):
            proc = invoke(run)
    else:
        proc = invoke(run)
    outcome = classify(proc)
    lines = [line for line in proc.stderr.splitlines() if ": error: " in line]
    shown = lines[0] if lines else (proc.stderr.strip().splitlines() or [""])[-1]
    return {"area": c.area, "case": c.name, "outcome": outcome, "exit": proc.returncode, "error": shown,
            "seconds": round(time.monotonic() - start, 1)}


def build_work(models, root: Path) -> Path:
    """A finished 6-row build for one target (QE and language ID off: the tiny models translate into noise)."""
    d = root / "built"
    d.mkdir()
    ctx = Context(root, models, None)
    cfg = ctx.pipeline(d, filter={"qe_enabled": False})
    cfg["work_dir"] = str(d / "w")
    proc = invoke(Run(["build", "--config", ctx.write(d / "build.yaml", json.dumps(cfg)), "--max-rows", "6"], cwd=d))
    if proc.returncode:
        raise SystemExit(f"building the work directory failed:\n{proc.stderr[-3000:]}")
    return d / "w"


def markdown(results: list[dict], counts: dict, seconds: float, fast: bool) -> str:
    head = ["# Bad inputs through the real CLI", "",
            f"`python benchmarks/bad_inputs.py{' --fast' if fast else ''}` ({time.strftime('%Y-%m-%d')}, "
            f"{len(results)} cases, {seconds:.0f} s on {os.cpu_count()} cores; tiny local models, shipped sample data, "
            "offline).", "",
            "Each case runs one `sdrrl` command on a bad input. **clean**: exit 2 and every `error:` line names the "
            "problem and a fix, no traceback; **traceback**: a Python traceback or another exit code; **silent**: "
            "exit 0, the bad input accepted; **unclear**: exit 2 without an error line naming a fix.", "",
            "| outcome | cases |", "|---|---|"]
    head += [f"| {k} | {v} |" for k, v in counts.items()]
    head += ["", "| # | area | bad input | outcome | exit | first error line (shortened) |", "|---|---|---|---|---|---|"]
    for n, r in enumerate(results, 1):
        text = r["error"].replace("|", "\\|")
        text = text if len(text) <= 220 else text[:217] + "..."
        head.append(f"| {n} | {r['area']} | {r['case']} | {r['outcome']} | {r['exit']} | {text} |")
    return "\n".join(head) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true", help="only the cases that load no model library")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bad_inputs.md"))
    ap.add_argument("--json", default=None, help="also write the results as JSON")
    ap.add_argument("--cache", default=None, help="tiny-model cache folder (default: the repository's .cache)")
    ap.add_argument("-k", default=None, help="only cases whose name contains this")
    args = ap.parse_args(argv)

    from sdrrl.tiny import build_all

    models = build_all(Path(args.cache) if args.cache else REPO / ".cache" / "tiny-models")
    cases = [c for c in CASES if (c.fast or not args.fast) and (not args.k or args.k in c.name)]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sdrrl-bad-inputs-") as tmp:
        root = Path(tmp)
        needs_work = any(c.area in ("work directory",) for c in cases)
        ctx = Context(root / "cases", models, build_work(models, root) if needs_work else None)
        results = []
        for c in cases:
            results.append(run_case(ctx, c))
            r = results[-1]
            print(f"{len(results):3d} {r['outcome']:9s} {r['seconds']:5.1f}s  {c.area}: {c.name}", flush=True)
    seconds = time.monotonic() - start
    counts = {k: sum(r["outcome"] == k for r in results)
              for k in ("clean", "traceback", "silent", "unclear", "setup failed")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown(results, counts, seconds, args.fast), encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps({"cases": len(results), "counts": counts, "results": results},
                                              indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"{counts['clean']} of {len(results)} clean; {json.dumps(counts)}; {seconds:.0f} s; written to {args.out}")
    return 0 if counts["clean"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
