"""lm-eval result files -> runs.

lm-eval writes ``OUTPUT_PATH/<model_sanitized>/results_<timestamp>.json``; the ``results`` dict
holds every task that ran, also those run through a tag (``sdrrlgroup_*``) or an averaging group
(``sdrrlavg_*``, whose own averages sit in ``groups``). One folder of results files is one model
(several files from several lm_eval calls on that model are merged, the newest winning per task).

A run's method, language pair and model family come from the model path lm-eval recorded in
``config.model_args`` (``pretrained=`` or, for a LoRA adapter, ``peft=`` / vLLM's ``lora_local_path=``),
laid out as the recipes' ``output_dir``: ``saves/<model>/<method>/<src>-<tgt>`` (SFT: ``saves/<model>/sft/<src>``), also with
a ``checkpoint-N`` folder below. ``<method>-lora`` counts as ``<method>``. A path without that
layout is a base-model run. The model family is ``seallm`` when the path names SeaLLM, else
``llama2`` (the paper's main model, the one to compare a tiny or other model with).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrrl.errors import SdrrlError

METHODS = ("sft", "tsft", "cit", "xcot", "sdrrl", "sdrrl-no-tl-lt", "sdrrl-no-synth", "sdrrl-no-mt-comp",
           "sdrrl-no-cs", "sdrrl-only-mt-comp")
FAMILIES = ("llama2", "seallm")
_RESULTS_RE = re.compile(r"^results_.*\.json$")
_SPEC_RE = re.compile(r"^(?P<method>[a-z0-9-]+)(?:/(?P<src>[a-z]{3})(?:-(?P<tgt>[a-z]{3}))?)?(?:@(?P<model>[a-z0-9]+))?$")

@dataclass
class Run:
    name: str                      # shown in messages: the folder or the --run name
    files: list[Path]
    model_path: str                # as lm-eval recorded it
    method: str                    # one of METHODS, or "base"
    src: str | None
    tgt: str | None
    model: str                     # "llama2" or "seallm"
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)   # task -> metric -> value
    data_versions: dict[str, str] = field(default_factory=dict)          # task -> version text
    comet_models: set[str] = field(default_factory=set)
    lm_eval_version: str | None = None
    limit: Any = None

    def value(self, task: str, metric: str) -> float | None:
        """The metric's value, or None when the run lacks it (or it is NaN / not a number)."""
        v = self.metrics.get(task, {}).get(metric)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            return None
        return float(v)

    @property
    def label(self) -> str:
        pair = f"{self.src}-{self.tgt}" if self.tgt else (self.src or "")
        return f"{self.method} {pair}".strip() + ("" if self.model == "llama2" else f" ({self.model})")


def _results_files(path: Path) -> dict[Path, list[Path]]:
    """folder -> its results files (oldest first). A file stands for its own folder."""
    if not path.exists():
        raise SdrrlError(f"No such file or directory: {str(path)!r}.",
                         "pass lm_eval's --output_path folders or their results_*.json files.")
    if path.is_file():
        if not path.name.endswith(".json"):
            raise SdrrlError(f"{str(path)!r} is not an lm-eval results file (results_*.json).",
                             "pass lm_eval's --output_path folder or a results_*.json file in it.")
        return {path.parent: [path]}
    groups: dict[Path, list[Path]] = {}
    for f in sorted(path.rglob("results_*.json")):
        if _RESULTS_RE.match(f.name):
            groups.setdefault(f.parent, []).append(f)
    if not groups:
        raise SdrrlError(f"{str(path)!r} holds no results_*.json file.",
                         "pass the folder given to lm_eval --output_path after the run finished.")
    return {k: sorted(v, key=lambda p: p.name) for k, v in groups.items()}


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SdrrlError(f"Cannot read {str(path)!r} as JSON ({err}).",
                         "pass results files written by lm_eval (results_*.json).") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise SdrrlError(f"{str(path)!r} is not an lm-eval results file (no 'results' object).",
                         "pass results files written by lm_eval (results_*.json).")
    return data


def model_path(data: dict) -> str:
    """The model path or id lm-eval recorded (a LoRA adapter first, as the trained model: ``peft=``
    for ``--model hf``, ``lora_local_path=`` for ``--model vllm``, which records its args as a dict)."""
    cfg = data.get("config") or {}
    args = cfg.get("model_args")
    if isinstance(args, str):
        parsed = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    elif isinstance(args, dict):
        parsed = {k: str(v) for k, v in args.items()}
    else:
        parsed = {}
    for key in ("peft", "lora_local_path", "pretrained", "model", "path"):
        if parsed.get(key):
            return parsed[key]
    return str(data.get("model_name") or "")


def infer(path: str) -> tuple[str, str | None, str | None, str]:
    """(method, src, tgt, family) from a model path laid out as saves/<model>/<method>/<src>-<tgt>."""
    from sdrrl.languages import LANGUAGES

    parts = [p for p in re.split(r"[/\\]+", path) if p]
    family = "seallm" if "seallm" in path.lower() else "llama2"
    for i in range(len(parts) - 1, 0, -1):
        method = parts[i - 1].lower()
        method = method[:-5] if method.endswith("-lora") else method
        if method not in METHODS:
            continue
        pair = parts[i].lower()
        m = re.fullmatch(r"([a-z]{3})-([a-z]{3})", pair)
        if m and m.group(1) in LANGUAGES and m.group(2) in LANGUAGES and method != "sft":
            return method, m.group(1), m.group(2), family
        if method == "sft" and pair in LANGUAGES:
            return method, pair, None, family
    return "base", None, None, family


def parse_spec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """``--run`` name ``METHOD[/SRC[-TGT]][@MODEL]`` -> (method, src, tgt, family or None)."""
    from sdrrl.languages import LANGUAGES

    m = _SPEC_RE.match(spec.strip().lower())
    fix = ("write --run METHOD[/SRC-TGT][@MODEL]=PATH, e.g. sdrrl/eng-ind=out/sdrrl, sft/eng=out/sft, "
           f"base=out/base, sdrrl/eng-tha@seallm=out/x; methods: base, {', '.join(METHODS)}; "
           f"models: {', '.join(FAMILIES)}.")
    if not m:
        raise SdrrlError(f"--run name {spec!r} is not METHOD[/SRC-TGT][@MODEL].", fix)
    method, src, tgt, family = m.group("method"), m.group("src"), m.group("tgt"), m.group("model")
    if method not in (*METHODS, "base"):
        raise SdrrlError(f"--run name {spec!r}: unknown method {method!r}.", fix)
    for code in (src, tgt):
        if code is not None and code not in LANGUAGES:
            raise SdrrlError(f"--run name {spec!r}: unknown language {code!r}.",
                             "use ISO 639-3 codes from `sdrrl languages`.")
    if family is not None and family not in FAMILIES:
        raise SdrrlError(f"--run name {spec!r}: unknown model family {family!r}.", fix)
    if method == "sft" and tgt is not None:
        raise SdrrlError(f"--run name {spec!r}: SFT is trained on the source language only.",
                         "write sft/SRC (e.g. sft/eng).")
    if method not in ("sft", "base") and tgt is None:
        raise SdrrlError(f"--run name {spec!r}: {method} needs a language pair.", "write e.g. "
                         f"{method}/eng-ind.")
    if method == "sft" and src is None:
        src = "eng"
    return method, src, tgt, family


def _source_text(entry: dict[str, Any]) -> str:
    """One line for one record of what a task loaded (see sdrrl.metrics.benchmark_data._record)."""
    where = entry.get("source", "?")
    if where == "hub":
        rev = entry.get("revision") or "main"
        commit = entry.get("commit")
        rev = f"{rev} (commit {commit})" if commit and commit != rev else rev
        return f"hub {entry.get('dataset')}@{rev}"
    if where == "release":
        return f"release {entry.get('url')} sha256:{str(entry.get('sha256'))[:12]}"
    if where == "local":
        files = entry.get("files") or {}
        return "local " + ", ".join(f"{name} sha256:{str(h)[:12]}" for name, h in sorted(files.items()))
    return json.dumps(entry, sort_keys=True, ensure_ascii=False)


def data_version(config: dict[str, Any]) -> str | None:
    """What lm-eval recorded for a task: ``configs.<task>.metadata.sdrrl_source.loaded``."""
    from sdrrl.metrics.benchmark_data import METADATA_SOURCE

    source = ((config or {}).get("metadata") or {}).get(METADATA_SOURCE) or {}
    loaded = source.get("loaded") if isinstance(source, dict) else None
    if not loaded:
        return None
    return "; ".join(dict.fromkeys(_source_text(e) if isinstance(e, dict) else str(e) for e in loaded))


def _comet(obj: Any, out: set[str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "comet_model" in str(k).lower() and isinstance(v, str) and v:
                out.add(v)
            else:
                _comet(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _comet(v, out)


def load_run(folder: Path, files: list[Path], name: str | None = None,
             spec: str | None = None) -> Run:
    from sdrrl.metrics.benchmarks import TASK_PREFIX, parse_task

    datas = [_load(f) for f in files]
    recorded = model_path(datas[-1])
    method, src, tgt, family = infer(recorded)
    if spec is not None:
        method, src, tgt, fam = parse_spec(spec)
        family = fam or family
    run = Run(name=name or str(folder), files=list(files), model_path=recorded, method=method, src=src,
              tgt=tgt, model=family)
    for f, data in zip(files, datas):
        run.lm_eval_version = data.get("lm_eval_version") or run.lm_eval_version
        run.limit = (data.get("config") or {}).get("limit", run.limit)
        for task, values in data["results"].items():
            if not task.startswith(TASK_PREFIX):
                continue
            try:
                parse_task(task)
            except SdrrlError:
                continue
            run.metrics[task] = {k.split(",", 1)[0]: v for k, v in values.items()
                                 if "," in k and "_stderr" not in k.split(",", 1)[0]}
            version = data_version((data.get("configs") or {}).get(task, {}))
            if version:
                run.data_versions[task] = version
        _comet(data.get("configs") or {}, run.comet_models)
        _comet(data.get("results") or {}, run.comet_models)
    if not run.metrics:
        raise SdrrlError(f"{str(files[-1])!r} holds no sdrrl_* task results.",
                         "evaluate with lm_eval --include_path eval_tasks --tasks 'sdrrl_*' (or the "
                         "sdrrlgroup_* tags) and pass its --output_path.")
    return run


def _by_model(found: dict[Path, list[Path]]) -> dict[tuple[Path, str], list[Path]]:
    """Split each folder's files by the model lm-eval recorded (files copied into one folder)."""
    out: dict[tuple[Path, str], list[Path]] = {}
    for folder, files in found.items():
        for f in files:
            out.setdefault((folder, model_path(_load(f))), []).append(f)
    return out


def load_runs(paths: list[str], named: list[str] | None = None) -> list[Run]:
    """Runs from positional paths (inferred) and ``--run SPEC=PATH`` (explicit); one per model."""
    runs: list[Run] = []
    explicit: list[tuple[str, str, Path, list[Path]]] = []
    for item in named or []:
        if "=" not in item:
            raise SdrrlError(f"--run {item!r} has no '='.",
                             "write --run METHOD[/SRC-TGT][@MODEL]=PATH, e.g. --run sdrrl/eng-ind=out/sdrrl.")
        spec, raw = item.split("=", 1)
        found = _by_model(_results_files(Path(raw)))
        if len(found) > 1:
            raise SdrrlError(f"--run {item!r}: {raw!r} holds the results of {len(found)} models "
                             f"({', '.join(sorted(m for _, m in found))}).",
                             "name one model's folder (or results file) per --run.")
        [((folder, _), files)] = found.items()
        explicit.append((spec, raw, folder, files))
    named_files = {f.resolve() for _, _, _, files in explicit for f in files}
    for raw in paths:  # a model also named by --run is taken as --run names it
        for (folder, _), files in _by_model(_results_files(Path(raw))).items():
            if not any(f.resolve() in named_files for f in files):
                runs.append(load_run(folder, files))
    for spec, raw, folder, files in explicit:
        runs.append(load_run(folder, files, name=spec, spec=spec))
    seen: dict[tuple, Run] = {}
    for run in runs:
        key = (run.method, run.src, run.tgt, run.model)
        if key in seen:
            raise SdrrlError(f"Two runs are both {run.label}: {seen[key].name!r} and {run.name!r}.",
                             "pass one of them, or name each with --run METHOD/SRC-TGT=PATH.")
        seen[key] = run
    return runs
