"""The paper's evaluation metrics as a library, usable without lm-eval.

- :mod:`sdrrl.metrics.mkqa`: MKQA token-overlap F1, as MKQA's official evaluation computes it.
- :mod:`sdrrl.metrics.rouge`: XL-Sum ROUGE-1 / ROUGE-L F1 with the XL-Sum authors' multilingual
  tokenisation (``multilingual-rouge``).
- :mod:`sdrrl.metrics.bleu`: corpus spBLEU (sacrebleu, ``tokenize="flores200"``) with its signature.
- :mod:`sdrrl.metrics.comet`: corpus COMET (Unbabel/wmt22-comet-da by default).
- :mod:`sdrrl.metrics.offtarget`: the share of outputs not in the expected language (gcld3).
- :mod:`sdrrl.metrics.benchmarks`: per-sample scoring shared by the lm-eval hooks and ``sdrrl score``.

Every module imports its engine inside the function that needs it, so importing this package is free.
All language arguments are the project's ISO 639-3 codes (``sdrrl.languages``).
"""
