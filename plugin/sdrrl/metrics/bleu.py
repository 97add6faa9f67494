"""Corpus spBLEU for FLORES: sacrebleu with ``tokenize="flores200"``, reported with its signature.

sacrebleu downloads the flores200 SentencePiece model on first use into ``$SACREBLEU/models/``. On a
machine without internet that download fails with a URLError deep inside sacrebleu, so we look for
the file first and, when it is missing, say which file to put where. We never fall back to another
tokenizer: a different tokenizer gives a different, incomparable score.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

from sdrrl.errors import SdrrlError

DEFAULT_TOKENIZE = "flores200"


class BleuResult(NamedTuple):
    score: float      # corpus BLEU in [0, 100]
    signature: str    # sacrebleu's signature, e.g. "nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:2.6.0"


def spm_model_path(tokenize: str = DEFAULT_TOKENIZE) -> Path | None:
    """Where sacrebleu looks for the SentencePiece model of ``tokenize`` (None: not an SPM tokenizer)."""
    from sacrebleu.tokenizers import tokenizer_spm

    spec = tokenizer_spm.SPM_MODELS.get(tokenize)
    if spec is None:
        return None
    return Path(tokenizer_spm.SACREBLEU_DIR) / "models" / os.path.basename(spec["url"])


def check_tokenizer(tokenize: str = DEFAULT_TOKENIZE) -> None:
    """Fail with a clear message if ``tokenize`` needs a SentencePiece model that is not on disk."""
    path = spm_model_path(tokenize)
    if path is None or path.is_file():
        return
    from sacrebleu.tokenizers import tokenizer_spm

    url = tokenizer_spm.SPM_MODELS[tokenize]["url"]
    raise SdrrlError(
        f"spBLEU (sacrebleu tokenize='{tokenize}') needs its SentencePiece model at {path}, and it is "
        "not there (sacrebleu would try to download it, and this machine may have no internet).",
        f"download {url} on a machine with internet (or run sacrebleu once there with "
        f"tokenize='{tokenize}': it saves the file in ~/.sacrebleu/models/) and copy it to {path}; "
        "or set $SACREBLEU to a directory whose models/ folder holds it.",
    )


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str],
                tokenize: str = DEFAULT_TOKENIZE) -> BleuResult:
    """Corpus BLEU of ``hypotheses`` against one reference each; spBLEU (flores200) by default."""
    if len(hypotheses) != len(references):
        raise SdrrlError(f"spBLEU got {len(hypotheses)} hypotheses but {len(references)} references.",
                         "pass one reference per hypothesis, in the same order.")
    check_tokenizer(tokenize)
    from sacrebleu.metrics import BLEU

    try:
        metric = BLEU(tokenize=tokenize)
    except OSError as err:  # a corrupt or partial model file
        raise SdrrlError(f"sacrebleu could not load the '{tokenize}' tokenizer model: {err}.",
                         f"replace the file at {spm_model_path(tokenize)} with a complete copy.") from None
    result = metric.corpus_score([h or "" for h in hypotheses], [[r or "" for r in references]])
    return BleuResult(float(result.score), str(metric.get_signature()))
