"""Build benchmarks/data/alpaca_lengths.json, the length table bench_gpu.py draws its inputs from.

Source: LLaMA-Factory's ``data/alpaca_en_demo.json`` (github.com/hiyouga/LLaMA-Factory, commit
a0d44c650a9a38c1ec6c8fc48a7daeacca9900a9, 999 rows, sha256 bcc37c64...5628318). Its instructions
and inputs are Stanford Alpaca's; its answers are Alpaca-GPT4's (GPT-4 answers to the same
instructions), which run longer than the original text-davinci-003 answers, so the answer
lengths here are on the long side for y (and a plausible stand-in for a 7B model's own answers,
y_hat). The full 52,002-row alpaca_data.json could not be obtained offline when this table was made.

Token counts are estimates without any tokenizer: ``sdrrl.pipeline.segment.approx_tokens``
(1.3 tokens per word + 1), the estimate the project already uses. Segments are those of
``sdrrl.pipeline.segment.split`` with the translate stage's default ``max_segment_tokens`` (200).

Usage: python benchmarks/make_alpaca_lengths.py PATH/alpaca_en_demo.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugin"))

from sdrrl.pipeline import segment  # noqa: E402

OUT = REPO / "benchmarks" / "data" / "alpaca_lengths.json"


def main(path: str) -> None:
    raw = Path(path).read_bytes()
    rows = json.loads(raw)
    table = []
    seen: dict[str, int] = {}
    for r in rows:
        x = r["instruction"] + ("\n" + r["input"] if r.get("input") else "")
        y = r["output"]
        xs = [segment.approx_tokens(s) for s in segment.split(x, 200, segment.approx_tokens).segments]
        ys = [segment.approx_tokens(s) for s in segment.split(y, 200, segment.approx_tokens).segments]
        table.append([segment.approx_tokens(x), segment.approx_tokens(y), xs, ys])
        for text in (x, y):
            for s in segment.split(text, 200, segment.approx_tokens).segments:
                seen[s] = seen.get(s, 0) + 1
    doc = {
        "source": "hiyouga/LLaMA-Factory data/alpaca_en_demo.json @ a0d44c650a9a38c1ec6c8fc48a7daeacca9900a9 "
                  "(Alpaca instructions/inputs, Alpaca-GPT4 answers)",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "token_estimate": "sdrrl.pipeline.segment.approx_tokens: int(1.3 * words) + 1",
        "segmenter": "sdrrl.pipeline.segment.split(text, max_tokens=200, approx_tokens)",
        "columns": ["x_tokens", "y_tokens", "x_segment_tokens", "y_segment_tokens"],
        # what the cache saves within one target: a segment text met again is not translated again
        "segments_total": sum(seen.values()),
        "segments_unique": len(seen),
        "rows": table,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(table)} rows -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
