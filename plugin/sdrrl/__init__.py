"""sdrrl: Self-Distillation from Resource-Rich Languages.

Builds SDRRL training data (and the paper's baselines) from an English instruction set, exports it
as a LLaMA-Factory registry, and ships lm-eval tasks. Importing this package imports no heavy
library: engines (torch, transformers, comet, ctranslate2, gcld3, llamafactory, lm_eval) are
imported inside the code that uses them.
"""

__version__ = "0.1.0"

from sdrrl.errors import SdrrlError  # noqa: E402

__all__ = ["SdrrlError", "__version__"]
