"""Preflight checks: does every model, file and folder a run names exist, before any model loads?

A model is named by a local path or a hub id, as :mod:`sdrrl.hub` decides: a local path that is
missing is the problem "path does not exist", never a hub problem. A hub id must be in the local
Hugging Face cache when the hub is off (:func:`sdrrl.hub.offline`); otherwise a copy in the cache is
enough, and the hub is asked (metadata only, nothing is downloaded) whether it exists and whether
this machine may download it (gated models).

Each check returns a :class:`SdrrlError` (the problem and the fix) or ``None``, so a caller can report
every problem of a run at once. Light imports only: ``huggingface_hub`` is imported inside.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def hf_model_problem(name: str, key: str, what: str = "model") -> SdrrlError | None:
    """A transformers model (folder with config.json, or hub id)."""
    fix = f"set {key} to a local model folder (one with config.json)."
    if not isinstance(name, str) or not name:
        return SdrrlError(f"{key} is empty.", fix)
    p = Path(os.path.expanduser(name))
    if p.exists():
        if not (p / "config.json").is_file():
            return ModelNotFoundError(f"{key}: {what} path {name!r} is not a Hugging Face model folder "
                                      "(no config.json in it).", fix)
        return None
    if hub.looks_local(name):
        return ModelNotFoundError(f"{key}: {what} path {name!r} does not exist.", f"check the path, or {fix}")
    return _hub_problem(name, "config.json", key, what, fix)


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
    return hf_model_problem(encoder, f"{key} (encoder {encoder!r} named in {hub.comet_hparams(ckpt)})", "encoder")
