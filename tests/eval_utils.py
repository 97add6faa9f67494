"""Helpers shared by the evaluation tests and benchmarks/bench_eval.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eval"
EVAL_MINI = Path(__file__).resolve().parents[1] / "plugin" / "sdrrl" / "data" / "eval_mini"  # the demo's sets


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


def full_eval_data(dst: Path) -> Path:
    """A data directory with rows for every sdrrl_* task: the fixture rows of one language copied
    under every other language's name (for runs that test task selection, not scores)."""
    import shutil

    from sdrrl.catalog import benchmark
    from sdrrl.languages import get

    shutil.copytree(FIXTURES, dst, dirs_exist_ok=True)
    for iso in benchmark("belebele").languages():
        out = dst / "belebele" / "data" / f"{get(iso).belebele}.jsonl"
        if not out.exists():
            shutil.copyfile(FIXTURES / "belebele" / "data" / "ces_Latn.jsonl", out)
    for split in ("dev", "devtest"):
        for iso in benchmark("flores").languages() + ["eng"]:
            out = dst / "flores" / split / f"{get(iso).nllb}.jsonl"
            if not out.exists():
                shutil.copyfile(FIXTURES / "flores" / split / "ces_Latn.jsonl", out)
    for iso in benchmark("xlsum").languages():
        out = dst / "xlsum" / get(iso).xlsum / "test" / "0000.jsonl"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FIXTURES / "xlsum" / "japanese" / "test" / "0000.jsonl", out)
    # the off-target tasks (Figure 3): the shipped mini sets' Dolly and Bactrian-X files
    shutil.copytree(EVAL_MINI / "dolly", dst / "dolly", dirs_exist_ok=True)
    for iso in benchmark("offtarget").languages():
        out = dst / "bactrian-x" / get(iso).bactrian_x / "train" / "0000.jsonl"
        if iso != "eng" and not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(EVAL_MINI / "bactrian-x" / "id" / "train" / "0000.jsonl", out)
    return dst
