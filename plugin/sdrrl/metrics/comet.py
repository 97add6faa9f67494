"""Corpus COMET (Unbabel/wmt22-comet-da by default): needs sources, hypotheses and references.

The model is named by a checkpoint path (``.../checkpoints/model.ckpt`` or the folder above
``checkpoints/``) or a hub id, resolved by :func:`sdrrl.hub.comet_checkpoint` (the local Hugging Face
cache first); without hub access a missing model stops with a message that says what to place
where, never a network stack trace.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

from sdrrl import hub
from sdrrl.errors import ModelNotFoundError, SdrrlError

DEFAULT_MODEL = "Unbabel/wmt22-comet-da"


class CometResult(NamedTuple):
    score: float                # system score: the mean of the segment scores
    scores: list[float]         # one score per segment, in input order
    model: str                  # the checkpoint that produced them


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
    return hub.comet_checkpoint(model, lambda detail: _missing(model, detail))


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
    return hub.load_comet(model, lambda detail: _missing(model, detail))


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
