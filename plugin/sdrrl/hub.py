"""The Hugging Face hub, decided once for every component: are we offline, is a name a local path or
a hub id, and which file is a COMET checkpoint.

**Offline** is what the libraries that load the models read, so sdrrl never disagrees with them:
huggingface_hub (and transformers, which takes huggingface_hub's value) is offline when
``HF_HUB_OFFLINE`` -- or, where that is unset or empty, ``TRANSFORMERS_OFFLINE`` -- is ``1``, ``on``,
``yes`` or ``true`` (any case); every other value (``0``, ``no``, ``false``, ``off``, ...) is online.
``datasets`` reads ``HF_DATASETS_OFFLINE`` the same way where it is set (even empty), else the hub's
value. (huggingface_hub.constants and datasets.config read these at import; we read them per call.)

**A local path or a hub id**: a name that exists on disk is a path. So is a name that cannot be a hub
id: one starting with ``.``, ``/`` or ``~``, one not shaped like ``org/name`` or a legacy bare ``name``
(more than one ``/``, a backslash, a space), or one ending in a file suffix (``.ckpt``, ``.json``, ...).
Anything else is a hub id; ``hf:ID`` says so explicitly (input data sets). A missing path is a path
problem, never a hub problem.

**A COMET checkpoint** is ``DIR/checkpoints/model.ckpt`` with ``DIR/hparams.yaml``, named by that
file, by ``DIR``, or by a hub id (from the local cache first; downloaded only online).

Light imports only: huggingface_hub and comet are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

# huggingface_hub.constants.ENV_VARS_TRUE_VALUES (compared upper-cased, not stripped)
TRUE_VALUES = ("1", "ON", "YES", "TRUE")
HUB_PREFIX = "hf:"
# the shape of a hub repo id (huggingface_hub.utils.validate_repo_id): "org/name" or a bare "name"
_REPO_ID = re.compile(r"[\w][\w.-]*(/[\w][\w.-]*)?")
FILE_SUFFIXES = (".ckpt", ".bin", ".safetensors", ".pt", ".model", ".yaml", ".yml", ".json", ".jsonl",
                 ".parquet", ".csv", ".tsv", ".txt", ".gz", ".arrow")
COMET_CHECKPOINT = Path("checkpoints") / "model.ckpt"


def _is_true(value: str | None) -> bool:
    return value is not None and value.upper() in TRUE_VALUES


def _hub_setting() -> tuple[str, str | None]:
    """The variable huggingface_hub reads and its value: HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE where
    HF_HUB_OFFLINE is unset or empty."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value:
        return "HF_HUB_OFFLINE", value
    return "TRANSFORMERS_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE")


def offline() -> bool:
    """Whether the model hub is off (huggingface_hub's own reading of the environment)."""
    return _is_true(_hub_setting()[1])


def offline_setting() -> str:
    """The setting that decides :func:`offline`, for messages: ``HF_HUB_OFFLINE=1``."""
    name, value = _hub_setting()
    return f"{name}={value or ''}"


def datasets_offline() -> bool:
    """Whether ``datasets`` is offline (``HF_DATASETS_OFFLINE`` where set, else :func:`offline`)."""
    value = os.environ.get("HF_DATASETS_OFFLINE")
    return offline() if value is None else _is_true(value)


def datasets_offline_setting() -> str:
    value = os.environ.get("HF_DATASETS_OFFLINE")
    return offline_setting() if value is None else f"HF_DATASETS_OFFLINE={value}"


# -- local path or hub id ----------------------------------------------------------------------------

def looks_local(name: str) -> bool:
    """A name that cannot be a hub id, so it is a path whether or not it exists."""
    name = str(name)
    if name.startswith(HUB_PREFIX):
        return False
    return (name.startswith((".", "/", "~")) or not _REPO_ID.fullmatch(name)
            or name.lower().endswith(FILE_SUFFIXES))


def is_local(name: str) -> bool:
    """A local path (it exists, or it cannot be a hub id); otherwise a hub id."""
    name = str(name)
    if name.startswith(HUB_PREFIX):
        return False
    return looks_local(name) or Path(name).expanduser().exists()


def hub_id(name: str) -> str:
    """The hub id a name stands for (``hf:`` removed)."""
    name = str(name)
    return name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else name


def unavailable_fix(name: str, key: str, what: str = "model folder") -> str:
    """The fix for a model ``name`` (set in ``key``) that could not be loaded: a local path is never told
    to download itself; a hub id is."""
    if is_local(name):
        return (f"{name!r} is a local path: make it a complete {what} (the files transformers reads: config.json, "
                f"the tokenizer files, the weights), or set {key} to one.")
    return (f"download it where the hub is reachable (`huggingface-cli download {name} --local-dir DIR`), copy DIR "
            f"here and set {key} to DIR.")


def cached(repo: str, filename: str) -> Path | None:
    """``filename`` of hub repo ``repo`` in the local Hugging Face cache, or None (also for an invalid id)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except Exception:  # noqa: BLE001 - an invalid repo id cannot be in the cache either
        return None
    return Path(found) if isinstance(found, str) else None


# -- COMET checkpoints -------------------------------------------------------------------------------

def comet_checkpoint_file(path: Path) -> Path:
    """The checkpoint file a local COMET name means: the file itself, or ``DIR/checkpoints/model.ckpt``."""
    return path if path.is_file() else path / COMET_CHECKPOINT


def comet_hparams(ckpt: Path) -> Path:
    """COMET reads ``hparams.yaml`` two folders above the checkpoint file."""
    return ckpt.parent.parent / "hparams.yaml"


def comet_encoder(ckpt: Path) -> str | None:
    """The encoder a COMET checkpoint builds on (``pretrained_model`` in its hparams.yaml), if readable."""
    import yaml

    try:
        encoder = (yaml.safe_load(comet_hparams(ckpt).read_text(encoding="utf-8")) or {}).get("pretrained_model")
    except Exception:  # noqa: BLE001 - unreadable: COMET reports it when it loads
        return None
    return encoder if isinstance(encoder, str) and encoder else None


def comet_checkpoint(name: str, missing: Callable[[str], Exception]) -> Path:
    """The ``model.ckpt`` of the COMET model ``name`` (a checkpoint file, its model folder, or a hub id:
    the local cache first, a download only online). Where there is none, raises ``missing(detail)``:
    each caller words its own error and fix around ``detail``."""
    path = Path(name).expanduser()
    if path.exists():
        ckpt = comet_checkpoint_file(path)
        if not ckpt.is_file():
            raise missing(f"no checkpoint file at {ckpt}")
        return ckpt
    if looks_local(name):
        raise missing("path not found")
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache: every hub error means the same here
        if offline():
            raise missing(f"not in the local Hugging Face cache, and {offline_setting()} turns the hub off") from None
        try:
            snapshot = Path(snapshot_download(repo_id=name))
        except Exception as err:  # noqa: BLE001 - gated, not found, network: the fix is the same
            raise missing(f"download failed: {type(err).__name__}") from None
    ckpt = snapshot / COMET_CHECKPOINT
    if not ckpt.is_file():
        raise missing(f"the snapshot at {snapshot} has no {COMET_CHECKPOINT}")
    return ckpt


def load_comet(name: str, missing: Callable[[str], Exception]):
    """The COMET model ``name`` loaded (:func:`comet_checkpoint`; its encoder from the local cache when
    offline). A load that fails raises ``missing(detail)``, naming the encoder where there is one."""
    import logging

    ckpt = comet_checkpoint(name, missing)
    from comet import load_from_checkpoint

    for logger in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "comet"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    try:
        return load_from_checkpoint(str(ckpt), local_files_only=offline())
    except Exception as err:  # noqa: BLE001 - an encoder not cached (AttributeError offline), a bad file, ...
        first_line = (str(err).splitlines() or [""])[0][:300]
        encoder = comet_encoder(ckpt)
        raise missing(f"loading {ckpt} failed: {type(err).__name__}: {first_line}"
                      + (f"; is its encoder {encoder!r} (pretrained_model in hparams.yaml) in the local cache?"
                         if encoder else "")) from None
