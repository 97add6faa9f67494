"""``sdrrl report``: our lm-eval results beside the paper's Tables 2-12, with plots.

- ``paper``: the paper's numbers (``sdrrl/data/paper_results.csv``) and the tables' layouts.
- ``runs``: lm-eval result files -> runs (method, language pair, model family, metric values).
- ``tables``: the paper's tables filled with our values, the paper's and the differences.
- ``figure3``: the paper's Figure 3 (off-target rate per target language) and its table.
- ``render``: REPORT.md, CSV/JSON beside it and the PNG plots, written as one transaction.
"""

from __future__ import annotations
