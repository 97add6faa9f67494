"""Helpers shared by the evaluation tests and benchmarks/bench_eval.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eval"


def train_stand_in_spm(path: Path) -> None:
    """A small SentencePiece model trained on the FLORES fixtures: a stand-in for sacrebleu's
    flores200 model (which needs a download), never the real one."""
    import sentencepiece as spm

    texts = [json.loads(line)["text"] for f in sorted((FIXTURES / "flores").rglob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines()]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts * 5), model_writer=buf, vocab_size=120,
                                   character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
