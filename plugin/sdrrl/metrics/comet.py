"""Corpus COMET (Unbabel/wmt22-comet-da by default): needs sources, hypotheses and references.

The model is named by a checkpoint path (``.../checkpoints/model.ckpt`` or the folder above
``checkpoints/``) or a hub id. A hub id is looked up in the local Hugging Face cache first; without
hub access a missing model stops with a message that says what to place where, never a network
stack trace.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

from sdrrl.errors import ModelNotFoundError, SdrrlError

DEFAULT_MODEL = "Unbabel/wmt22-comet-da"


class CometResult(NamedTuple):
    score: float                # system score: the mean of the segment scores
    scores: list[float]         # one score per segment, in input order
    model: str                  # the checkpoint that produced them


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _missing(model: str, detail: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"COMET model {model!r} is not available here ({detail}).",
        f"on a machine with hub access run `huggingface-cli download {model}` and copy its "
        "~/.cache/huggingface/hub/models--... folder into this machine's Hugging Face cache, or place "
        "the checkpoint anywhere and name it by path (.../checkpoints/model.ckpt with hparams.yaml one "
        "level above checkpoints/; its encoder, named by `pretrained_model` in hparams.yaml, must be "
        "in the local cache too: xlm-roberta-large for wmt22-comet-da), e.g. SDRRL_COMET_MODEL=/path/model.ckpt.",
    )


def resolve_checkpoint(model: str = DEFAULT_MODEL) -> Path:
    """The ``model.ckpt`` for a checkpoint path or hub id: local files first, a download only online."""
    path = Path(model).expanduser()
    if path.exists():
        ckpt = path if path.is_file() else path / "checkpoints" / "model.ckpt"
        if not ckpt.is_file():
            raise _missing(model, f"no checkpoint file at {ckpt}")
        return ckpt
    if model.startswith((".", "/", "~")) or model.endswith(".ckpt"):
        raise _missing(model, "no such file")
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id=model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache: any hub error means the same here
        if _offline():
            raise _missing(model, "not in the local Hugging Face cache, and HF_HUB_OFFLINE is set") from None
        try:
            snapshot = Path(snapshot_download(repo_id=model))
        except Exception as err:  # noqa: BLE001
            raise _missing(model, f"download failed: {type(err).__name__}") from None
    ckpt = snapshot / "checkpoints" / "model.ckpt"
    if not ckpt.is_file():
        raise _missing(model, f"the snapshot at {snapshot} has no checkpoints/model.ckpt")
    return ckpt


def checkpoint_sha256(model: str = DEFAULT_MODEL) -> tuple[Path, str]:
    """The checkpoint file ``model`` resolves to and its sha256 (hashed once per file version)."""
    ckpt = resolve_checkpoint(model).resolve()
    stat = ckpt.stat()
    return ckpt, _file_sha256(str(ckpt), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    from sdrrl.io import file_sha256

    return file_sha256(path)


@lru_cache(maxsize=2)
def load(model: str = DEFAULT_MODEL):
    """Load (once per process) the COMET model named by ``model``."""
    ckpt = resolve_checkpoint(model)
    import comet

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "comet"):
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        return comet.load_from_checkpoint(str(ckpt), local_files_only=_offline())
    except (OSError, ValueError, AttributeError) as err:
        # AttributeError: transformers' answer, offline, to an encoder tokenizer that is not cached
        first_line = (str(err).splitlines() or [""])[0][:300]
        encoder = _encoder_name(ckpt)
        raise _missing(model, f"loading {ckpt} failed: {type(err).__name__}: {first_line}"
                       + (f"; is its encoder {encoder!r} in the local cache?" if encoder else "")) from None


def _encoder_name(ckpt: Path) -> str | None:
    """The encoder a COMET checkpoint names (``pretrained_model`` in hparams.yaml), if readable."""
    try:
        import yaml

        return yaml.safe_load((ckpt.parents[1] / "hparams.yaml").read_text())["pretrained_model"]
    except Exception:  # noqa: BLE001 - only used to word an error message
        return None


def corpus_score(sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[str],
                 model: str = DEFAULT_MODEL, batch_size: int = 16, gpus: int | None = None) -> CometResult:
    """COMET of each (source, hypothesis, reference) triple and their mean (the system score)."""
    if not (len(sources) == len(hypotheses) == len(references)):
        raise SdrrlError(
            f"COMET got {len(sources)} sources, {len(hypotheses)} hypotheses, {len(references)} references.",
            "pass one source and one reference per hypothesis, in the same order.")
    if not hypotheses:
        return CometResult(float("nan"), [], model)
    scorer = load(model)
    if gpus is None:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    samples = [{"src": s or "", "mt": h or "", "ref": r or ""}
               for s, h, r in zip(sources, hypotheses, references)]
    output = scorer.predict(samples, batch_size=batch_size, gpus=gpus, progress_bar=False,
                            num_workers=0)
    scores = [float(x) for x in output.scores]
    return CometResult(sum(scores) / len(scores), scores, str(resolve_checkpoint(model)))
