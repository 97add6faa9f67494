"""lm-eval result files -> runs.

lm-eval writes ``OUTPUT_PATH/<model_sanitized>/results_<timestamp>.json``; the ``results`` dict
holds every task that ran, also those run through a tag (``sdrrlgroup_*``) or an averaging group
(``sdrrlavg_*``, whose own averages sit in ``groups``). One folder of results files is one model
(several files from several lm_eval calls on that model are merged, the newest winning per task).

A run's method, language pair and model family come from the model path lm-eval recorded in
``config.model_args`` (``pretrained=`` or, for a LoRA adapter, ``peft=`` / vLLM's ``lora_local_path=``), laid out as the recipes'
``output_dir``: ``saves/<model>/<method>/<src>-<tgt>`` (SFT: ``saves/<model>/sft/<src>``), also with
a ``checkpoint-N`` folder below. ``<method>-lora`` counts as ``<method>``; ``<model>`` is a model
family's ``save_dir`` (``llama2-7b``, ``seallm-7b``). A family's base model is recognised by its hub
id (``meta-llama/Llama-2-7b-hf``). Methods and families are the catalog's (``sdrrl.catalog``).
Any other path is an error that names the fix: ``--run METHOD[/SRC-TGT][@FAMILY]=PATH`` names the
run (``base`` for a base model; ``@llama2`` compares another model with the paper's LLaMA-2).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrrl import catalog
from sdrrl.errors import SdrrlError

_RESULTS_RE = re.compile(r"^results_.*\.json$")
_SPEC_RE = re.compile(r"^(?P<method>[a-z0-9-]+)(?:/(?P<src>[a-z]{3})(?:-(?P<tgt>[a-z]{3}))?)?(?:@(?P<model>[a-z0-9]+))?$")

@dataclass
class Run:
    name: str                      # shown in messages: the folder or the --run name
    files: list[Path]
    model_path: str                # as lm-eval recorded it
    method: str                    # a catalog method, or catalog.BASE
    src: str | None
    tgt: str | None
    model: str                     # a catalog model family
    recognised: bool = True        # the family was read from the path (False: named by --run @FAMILY)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)   # task -> metric -> value
    samples: dict[str, int] = field(default_factory=dict)               # task -> samples scored (sample_len)
    data_versions: dict[str, str] = field(default_factory=dict)          # task -> version text
    lm_eval_version: str | None = None
    limit: Any = None

    def value(self, task: str, metric: str) -> float | None:
        """The metric's value, or None when the run lacks it (or it is NaN / not a number)."""
        v = self.metrics.get(task, {}).get(metric)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            return None
        return float(v)

    def setting(self, task: str, metric: str) -> str | None:
        """How the run computed ``metric`` on ``task``, as the task recorded it beside the metric
        (``spbleu_signature``, ``comet_model``: sdrrl.report.paper.SETTINGS); None when not recorded."""
        from sdrrl.report.paper import SETTINGS

        v = self.metrics.get(task, {}).get(SETTINGS.get(metric, ""))
        return v if isinstance(v, str) and v else None

    @property
    def label(self) -> str:
        pair = f"{self.src}-{self.tgt}" if self.tgt else (self.src or "")
        return f"{self.method} {pair}".strip() + ("" if catalog.family(self.model).main else f" ({self.model})")


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


_RUN_FIX = ("name the run: --run METHOD/SRC-TGT=PATH (e.g. --run sdrrl/eng-ind=PATH, --run sft/eng=PATH), or "
            "--run base=PATH for a base model, with @FAMILY after the name where the path does not say the model "
            "family (e.g. --run base@llama2=PATH: @llama2 compares any model with the paper's LLaMA-2 numbers).")


def _family_error(path: str, where: str) -> SdrrlError:
    return SdrrlError(f"The model family of {path!r} cannot be read from {where} (known: "
                      f"{catalog.families_text()}).", _RUN_FIX)


def infer(path: str) -> tuple[str, str | None, str | None, str]:
    """(method, src, tgt, family) from a model path laid out as saves/<model>/<method>/<src>-<tgt>,
    or (base, None, None, family) for a family's base model; anything else is an error naming the fix."""
    from sdrrl.languages import LANGUAGES

    parts = [p for p in re.split(r"[/\\]+", path) if p]
    for i in range(len(parts) - 1, 0, -1):
        method = parts[i - 1].lower()
        method = method[:-5] if method.endswith("-lora") else method
        if method not in catalog.METHODS:
            continue
        source_only = catalog.method(method).source_only
        pair = parts[i].lower()
        m = re.fullmatch(r"([a-z]{3})-([a-z]{3})", pair)
        if m and m.group(1) in LANGUAGES and m.group(2) in LANGUAGES and not source_only:
            src, tgt = m.group(1), m.group(2)
        elif source_only and pair in LANGUAGES:
            src, tgt = pair, None
        else:
            continue
        family = catalog.family_of_save_dir(parts[i - 2]) if i >= 2 else None
        if family is None:
            raise _family_error(path, f"its folder above {method}/ (saves/<model>/{method}/{pair})")
        return method, src, tgt, family.name
    family = catalog.family_of_base_model(path)
    if family is not None:
        return catalog.BASE, None, None, family.name
    raise SdrrlError(f"Cannot tell which run the model {path!r} is: the path is neither laid out as "
                     "saves/<model>/<method>/<src>-<tgt> (SFT: saves/<model>/sft/<src>; methods: "
                     f"{', '.join(catalog.METHODS)}) nor a known base model "
                     f"({', '.join(f.base_model for f in catalog.FAMILIES.values())}).", _RUN_FIX)


def parse_spec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """``--run`` name ``METHOD[/SRC[-TGT]][@MODEL]`` -> (method, src, tgt, family or None)."""
    from sdrrl.languages import LANGUAGES

    m = _SPEC_RE.match(spec.strip().lower())
    fix = ("write --run METHOD[/SRC-TGT][@MODEL]=PATH, e.g. sdrrl/eng-ind=out/sdrrl, sft/eng=out/sft, "
           f"base=out/base, sdrrl/eng-tha@seallm=out/x; methods: {catalog.BASE}, {', '.join(catalog.METHODS)}; "
           f"models: {', '.join(catalog.FAMILIES)}.")
    if not m:
        raise SdrrlError(f"--run name {spec!r} is not METHOD[/SRC-TGT][@MODEL].", fix)
    method, src, tgt, family = m.group("method"), m.group("src"), m.group("tgt"), m.group("model")
    if method != catalog.BASE and method not in catalog.METHODS:
        raise SdrrlError(f"--run name {spec!r}: unknown method {method!r}.", fix)
    for code in (src, tgt):
        if code is not None and code not in LANGUAGES:
            raise SdrrlError(f"--run name {spec!r}: unknown language {code!r}.",
                             "use ISO 639-3 codes from `sdrrl languages`.")
    if family is not None and family not in catalog.FAMILIES:
        raise SdrrlError(f"--run name {spec!r}: unknown model family {family!r}.", fix)
    source_only = method != catalog.BASE and catalog.method(method).source_only
    if source_only and tgt is not None:
        raise SdrrlError(f"--run name {spec!r}: {method} is trained on the source language only.",
                         f"write {method}/SRC (e.g. {method}/eng).")
    if method != catalog.BASE and not source_only and tgt is None:
        raise SdrrlError(f"--run name {spec!r}: {method} needs a language pair.", "write e.g. "
                         f"{method}/eng-ind.")
    if source_only and src is None:
        src = "eng"
    return method, src, tgt, family


def recognised_family(path: str) -> str | None:
    """The model family ``infer`` reads from a path, or None where it reads none."""
    try:
        return infer(path)[3]
    except SdrrlError:
        return None


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


def load_run(folder: Path, files: list[Path], name: str | None = None,
             spec: str | None = None) -> Run:
    from sdrrl.catalog import TASK_PREFIX, parse_task

    datas = [_load(f) for f in files]
    recorded = model_path(datas[-1])
    if spec is None:
        method, src, tgt, family = infer(recorded)
        recognised = True
    else:
        method, src, tgt, named = parse_spec(spec)
        found = recognised_family(recorded)
        family = named or found
        if family is None:
            raise _family_error(recorded, f"the path (--run {spec})")
        recognised = found == family
    run = Run(name=name or str(folder), files=list(files), model_path=recorded, method=method, src=src,
              tgt=tgt, model=family, recognised=recognised)
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
            if isinstance(values.get("sample_len"), int):
                run.samples[task] = values["sample_len"]
            version = data_version((data.get("configs") or {}).get(task, {}))
            if version:
                run.data_versions[task] = version
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
