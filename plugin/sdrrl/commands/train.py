"""``sdrrl train RECIPE [key=value ...]``: check a recipe's registry, then run llamafactory-cli train.

LLaMA-Factory finds a missing dataset only after loading the model, with a message that does not say
how to produce it. This preflight checks, before anything heavy starts, that every dataset the recipe
names is registered and its file exists with the declared columns, and says which command makes it.
It reads every data file through, line by line, and names the first bad line of each (invalid JSON,
a missing column, or a last line cut off without its newline). The recipe with its ``key=value``
overrides is read as ``llamafactory-cli`` reads it (OmegaConf), and every key must be one that
LLaMA-Factory's own train parser takes (a misspelled ``datset=`` stops here, not after the model loads).
Then it hands the unchanged arguments to the unmodified ``llamafactory-cli train``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a recipe YAML, e.g. recipes/sdrrl_llama2.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="LLaMA-Factory style overrides, e.g. dataset=... output_dir=...")
    p.add_argument("--check-only", action="store_true", help="only run the preflight checks")


def load_recipe(recipe: str | os.PathLike, overrides: list[str]) -> dict:
    """The recipe as llamafactory-cli sees it: the YAML with ``key=value`` overrides merged as
    LLaMA-Factory's ``read_args`` merges them (OmegaConf's command-line parsing)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from sdrrl.configfile import read_mapping
    from sdrrl.errors import SdrrlError

    args = read_mapping(recipe, what="Recipe")
    for item in overrides:
        if "=" not in item:
            raise SdrrlError(f"Override {item!r} is not key=value.", "write overrides like dataset=name1,name2.")
    try:
        return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(args), OmegaConf.from_cli(list(overrides))))
    except OmegaConfBaseException as err:
        raise SdrrlError(f"The overrides {' '.join(overrides)!r} cannot be read as llamafactory-cli reads them "
                         f"({type(err).__name__}: {str(err).splitlines()[0]}).",
                         "write overrides like dataset=name1,name2 output_dir=saves/x.") from None


def check_arguments(args: dict) -> None:
    """Every key of the recipe and its overrides is one LLaMA-Factory's train parser takes: the fields of
    the dataclasses its ``_parse_train_args`` gives ``HfArgumentParser`` (``parse_dict`` refuses any other
    key unless ``ALLOW_EXTRA_ARGS`` is set, as it reads it). Values are left to the real run: its checks
    of them (bf16 needs a GPU) depend on the machine it runs on."""
    import dataclasses
    import difflib

    from sdrrl.errors import SdrrlError

    try:
        from llamafactory.extras.misc import is_env_enabled
        from llamafactory.hparams.parser import _TRAIN_ARGS  # the list _parse_train_args parses (0.9.5, pinned)
    except ImportError as err:
        raise SdrrlError(f"LLaMA-Factory cannot be imported here ({err}).", "run `make setup` (or bash "
                         "scripts/bootstrap.sh) to install the stack.") from None
    if is_env_enabled("ALLOW_EXTRA_ARGS"):
        return
    known = {f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in args if k not in known]
    if unknown:
        named = [f"{k!r}" + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, known, 1)) else "")
                 for k in unknown]
        raise SdrrlError(f"LLaMA-Factory's train parser takes no argument {', '.join(named)}; `llamafactory-cli train` "
                         "would stop on it (\"Some keys are not used by the HfArgumentParser\").",
                         "fix the key in the recipe or the override (LLaMA-Factory's arguments: "
                         "llamafactory-cli train -h).")


def _dataset_names(value) -> list[str]:
    """Names as LLaMA-Factory reads ``dataset``: a comma-separated string, or a list (YAML or [a,b])."""
    items = value.split(",") if isinstance(value, str) else (value or [])
    return [str(n).strip() for n in items if str(n).strip()]


def preflight(args: dict) -> list[str]:
    """Return the dataset names checked; raise SdrrlError naming what is missing and how to make it."""
    from sdrrl import registry
    from sdrrl.errors import RegistryError, SdrrlError

    names = [n for key in ("dataset", "eval_dataset") for n in _dataset_names(args.get(key))]
    dataset_dir = Path(args.get("dataset_dir", "data"))
    if not names:
        raise SdrrlError("The recipe names no dataset.", "set dataset: name1,name2 in the recipe or as an override.")
    make = ("produce it with `sdrrl build --config CONFIG` then "
            f"`sdrrl export --config CONFIG --out {dataset_dir}` for that method and language pair "
            "(docs/exporting.md), and run from the directory the recipe's dataset_dir is relative to")
    try:
        info = registry.validate(dataset_dir, names, full=True)  # every line of every file, streamed
    except RegistryError as err:
        raise SdrrlError(f"Recipe cannot train yet: {err.problem}", make) from None
    check_export_hashes(dataset_dir, info, names)
    return names


def check_export_hashes(dataset_dir: Path, info: dict, names: list[str]) -> None:
    """Each data file ``sdrrl export`` wrote must still be the file its manifest.json describes
    (sha256): a registry that mixes two exports, or a file changed since, is named."""
    from sdrrl.compose.manifest import MANIFEST, Manifest
    from sdrrl.io import file_sha256
    from sdrrl.errors import SdrrlError

    manifest = Manifest.read(dataset_dir)
    if manifest is None:
        return  # not made by sdrrl export (or by a version before manifests)
    stale = {n: manifest.entries[n].stale for n in names if n in manifest.entries and manifest.entries[n].stale}
    if stale:
        first = next(iter(stale.values()))
        raise SdrrlError(
            f"Recipe cannot train yet: the registry {str(dataset_dir)!r} is mixed: {len(stale)} dataset(s) still hold "
            f"an earlier export's file because the export of {first['failed_at']} could not make them: "
            f"{', '.join(list(stale)[:5])}{' ...' if len(stale) > 5 else ''} (first error: {first['error']}).",
            f"fix what that error names and run `sdrrl export` into {dataset_dir} again (its manifest.json lists "
            "every error).")
    bad = []
    for name in names:
        entry = manifest.entries.get(name)
        if entry is None or entry.sha256 is None or entry.file != info[name].get("file_name"):
            continue  # registered by hand, or exported before hashes were recorded
        if file_sha256(dataset_dir / entry.file) != entry.sha256:
            bad.append(entry.file)
    if bad:
        raise SdrrlError(
            f"Recipe cannot train yet: {len(bad)} data file(s) in {str(dataset_dir)!r} are not the files the export "
            f"recorded in {MANIFEST} (sha256 differs): {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; the "
            "registry mixes two exports, or the files were changed since.",
            "run `sdrrl export` into that folder again (it replaces the folder in one step); if you changed a "
            f"file on purpose, remove its entry from {MANIFEST}.")


def check_model(args: dict) -> None:
    """A local model path must exist; a hub id must be cached when the hub is off (:mod:`sdrrl.hub`)."""
    from sdrrl import hub
    from sdrrl.errors import ModelNotFoundError

    model = str(args.get("model_name_or_path") or "")
    if not model:
        raise ModelNotFoundError("The recipe names no model_name_or_path.", "set it in the recipe or as an override.")
    if Path(os.path.expanduser(model)).exists():
        return
    if hub.looks_local(model):
        raise ModelNotFoundError(
            f"Model path {model!r} does not exist.",
            "build the tiny models with `sdrrl tiny-models --link demo_out/models`, or set "
            "model_name_or_path=<local folder or hub id>.")
    if hub.offline() and hub.cached(model, "config.json") is None:
        raise ModelNotFoundError(
            f"Model {model!r} is not in the local Hugging Face cache and {hub.offline_setting()} turns the hub off.",
            f"download it on a connected machine (huggingface-cli download {model}) and copy the cache, "
            "or set model_name_or_path=<local folder>.")


def run(args: argparse.Namespace) -> int:
    from sdrrl.errors import SdrrlError

    recipe = load_recipe(args.recipe, args.overrides)
    check_arguments(recipe)
    names = preflight(recipe)
    check_model(recipe)
    print(f"sdrrl train: registry ok ({len(names)} dataset(s) in {recipe.get('dataset_dir', 'data')}).")
    if args.check_only:
        return 0
    cli = shutil.which("llamafactory-cli") or str(Path(sys.executable).parent / "llamafactory-cli")
    if not Path(cli).exists():
        raise SdrrlError("llamafactory-cli is not installed in this environment.", "run `make setup`.")
    sys.stdout.flush()
    os.execv(cli, [cli, "train", args.recipe, *args.overrides])
    return 0  # not reached
