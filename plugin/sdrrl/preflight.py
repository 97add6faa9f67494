"""Preflight checks: does every model, file and folder a run names exist, before any model loads?

A model is named by a local path or a hub id, as :mod:`sdrrl.hub` decides: a local path that is
missing is the problem "path does not exist", never a hub problem. A hub id must be in the local
Hugging Face cache when the hub is off (:func:`sdrrl.hub.offline`); otherwise a copy in the cache is
enough, and the hub is asked (metadata only, nothing is downloaded) whether it exists and whether
this machine may download it (gated models).

A model folder (or a hub id's cached files, offline) is read without loading the model: its
``config.json`` must name a model of the kind the stage runs (:data:`KINDS`: a causal LM for
generation and self-translation, an NLLB/M2M100 sequence-to-sequence model for translation, as
transformers' own auto classes map ``model_type``), and its weight files must be there (transformers'
file names; a sharded index's every shard). A local path's fix never says to download it.

Each check returns a :class:`SdrrlError` (the problem and the fix) or ``None``, so a caller can report
every problem of a run at once. Light imports only: ``huggingface_hub`` and transformers (for the
kind and weight-file names, only once a config.json is read) are imported inside.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from sdrrl import hub
from sdrrl.errors import ModelNotFoundError, SdrrlError


def path_problem(value: str, key: str, what: str, fix: str, *, folder: bool | None = None) -> SdrrlError | None:
    """``key``'s ``value`` must exist (as a folder when ``folder`` is True, a file when False)."""
    p = Path(os.path.expanduser(value))
    if not p.exists():
        return SdrrlError(f"{key}: {what} path {value!r} does not exist.", fix)
    if folder is True and not p.is_dir():
        return SdrrlError(f"{key}: {what} {value!r} is a file, not a folder.", fix)
    if folder is False and not p.is_file():
        return SdrrlError(f"{key}: {what} {value!r} is a folder, not a file.", fix)
    return None


def _hub_problem(repo: str, filename: str, key: str, what: str, fix: str) -> SdrrlError | None:
    """A hub id: in the local cache (offline), or existing and downloadable (online)."""
    if hub.cached(repo, filename) is not None:
        return None
    if hub.offline():
        return ModelNotFoundError(
            f"{key}: {what} {repo!r} is not in the local Hugging Face cache (no {filename}) and "
            f"{hub.offline_setting()} turns the hub off.",
            f"on a machine with hub access run `huggingface-cli download {repo}` and copy the cache folder "
            f"(models--{repo.replace('/', '--')}) into this machine's HF cache, or {fix}")
    try:  # online: metadata only
        from huggingface_hub import auth_check

        auth_check(repo)
    except Exception as err:  # noqa: BLE001 - GatedRepoError, RepositoryNotFoundError, network errors
        name = type(err).__name__
        if name == "GatedRepoError":
            return ModelNotFoundError(f"{key}: {what} {repo!r} is gated and this machine may not download it.",
                                      f"accept its licence on huggingface.co/{repo} and log in "
                                      f"(`huggingface-cli login`), or {fix}")
        if name == "RepositoryNotFoundError":
            return ModelNotFoundError(f"{key}: {what} {repo!r} does not exist on the Hugging Face hub "
                                      "(or is private).", f"check the spelling, or {fix}")
        return ModelNotFoundError(f"{key}: cannot reach the Hugging Face hub to check {what} {repo!r} ({name}).",
                                  f"check the network, or set HF_HUB_OFFLINE=1 with a cached copy, or {fix}")
    return None


# The model kinds a stage needs: what it is called, and whether a config.json ``model_type`` is one.
NLLB_MODEL_TYPES = ("m2m_100", "nllb-moe")


def _causal(model_type: str) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


KINDS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "causal": ("a causal language model (one AutoModelForCausalLM loads)", _causal),
    "nllb": ("an NLLB (M2M100) sequence-to-sequence translation model", NLLB_MODEL_TYPES.__contains__),
}
# Where a model of the other kind belongs, said beside the problem.
_BELONGS = {"causal": "a translation model belongs in translate.model",
            "nllb": "a causal LM translates with translate.backend: llm (self-translation, translate.llm_model)"}


def hf_model_problem(name: str, key: str, what: str = "model", kind: str | None = None,
                     weights: bool = True) -> SdrrlError | None:
    """A transformers model (folder with config.json, or hub id): of ``kind`` (:data:`KINDS`), with its
    weight files unless ``weights`` is False (only its config and tokenizer are read)."""
    fix = f"set {key} to a local model folder (one with config.json)."
    if not isinstance(name, str) or not name:
        return SdrrlError(f"{key} is empty.", fix)
    p = Path(os.path.expanduser(name))
    if p.exists():
        if not (p / "config.json").is_file():
            return ModelNotFoundError(f"{key}: {what} path {name!r} is not a Hugging Face model folder "
                                      "(no config.json in it).", fix)
        return _folder_problem(lambda f: p / f if (p / f).is_file() else None, name, key, what, kind, weights,
                               "copy the complete model folder here (config.json, the tokenizer files and the weights), "
                               f"or set {key} to a folder that has them.")
    if hub.looks_local(name):
        return ModelNotFoundError(f"{key}: {what} path {name!r} does not exist.", f"check the path, or {fix}")
    problem = _hub_problem(name, "config.json", key, what, fix)
    if problem is None and hub.cached(name, "config.json") is not None:  # what the cache holds can be read now
        return _folder_problem(lambda f: hub.cached(name, f), name, key, what, kind, weights and hub.offline(),
                               f"on a machine with hub access run `huggingface-cli download {name}` and copy the "
                               f"cache folder (models--{name.replace('/', '--')}) here, or {fix}")
    return problem


def _folder_problem(file: Callable[[str], Path | None], name: str, key: str, what: str, kind: str | None,
                    weights: bool, fix: str) -> SdrrlError | None:
    """A model's config.json (the kind) and weight files, read through ``file`` (a name -> its path or None)."""
    try:
        config = json.loads(file("config.json").read_text(encoding="utf-8"))
        model_type = config["model_type"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return SdrrlError(f"{key}: {what} {name!r} has a config.json transformers cannot read "
                          f"({type(err).__name__}: {err}).", fix)
    if kind is not None:
        wanted, fits = KINDS[kind]
        if not fits(model_type):
            archs = ", ".join(config.get("architectures") or []) or "no architectures listed"
            other = next((k for k, (_w, f) in KINDS.items() if k != kind and f(model_type)), None)
            return SdrrlError(f"{key}: {what} {name!r} is a {model_type!r} model ({archs}), not {wanted}"
                              + (f"; {_BELONGS[kind]}" if other else "") + ".",
                              f"set {key} to {wanted}.")
    if weights:
        from transformers.utils import (SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME,
                                        WEIGHTS_NAME)

        if not any(file(f) for f in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME)):
            index = next((file(f) for f in (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME) if file(f)), None)
            if index is None:
                return ModelNotFoundError(f"{key}: {what} {name!r} has no weight files ({SAFE_WEIGHTS_NAME}, "
                                          f"{WEIGHTS_NAME} or a sharded index of them).", fix)
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                return SdrrlError(f"{key}: {what} {name!r}: its {index.name} cannot be read ({err}).", fix)
            missing = [s for s in shards if not file(s)]
            if missing:
                return ModelNotFoundError(f"{key}: {what} {name!r} lacks {len(missing)} of the {len(shards)} weight "
                                          f"shards its {index.name} names (first: {missing[0]}).", fix)
    return None


def comet_model_problem(name: str, key: str, what: str = "COMET model") -> SdrrlError | None:
    """A COMET checkpoint (``.../checkpoints/model.ckpt`` with ``hparams.yaml`` two levels up, its model
    folder, or a hub id), and the encoder its ``hparams.yaml`` names."""
    fix = f"set {key} to a checkpoint file (DIR/checkpoints/model.ckpt, with DIR/hparams.yaml)."
    if not isinstance(name, str) or not name:
        return SdrrlError(f"{key} is empty.", fix)
    p = Path(os.path.expanduser(name))
    if p.exists():
        ckpt = hub.comet_checkpoint_file(p)
        if not ckpt.is_file():
            return ModelNotFoundError(f"{key}: {what} folder {name!r} has no {hub.COMET_CHECKPOINT}.", fix)
        hparams = hub.comet_hparams(ckpt)
        if not hparams.is_file():
            return ModelNotFoundError(f"{key}: {what} checkpoint {name!r} has no hparams.yaml two folders up "
                                      f"({hparams}).", fix)
        return _encoder_problem(ckpt, key, what)
    if hub.looks_local(name):
        return ModelNotFoundError(f"{key}: {what} path {name!r} does not exist.", f"check the path, or {fix}")
    problem = _hub_problem(name, str(hub.COMET_CHECKPOINT), key, what, fix)
    if problem is None and hub.offline():
        ckpt = hub.cached(name, str(hub.COMET_CHECKPOINT))
        if ckpt is not None and hub.comet_hparams(ckpt).is_file():
            return _encoder_problem(ckpt, key, what)
    return problem


def _encoder_problem(ckpt: Path, key: str, what: str) -> SdrrlError | None:
    """COMET builds its encoder from ``pretrained_model`` (config and tokenizer only): it must resolve too."""
    encoder = hub.comet_encoder(ckpt)  # None: an unreadable hparams.yaml is COMET's to report
    if encoder is None:
        return None
    return hf_model_problem(encoder, f"{key} (encoder {encoder!r} named in {hub.comet_hparams(ckpt)})", "encoder",
                            weights=False)
