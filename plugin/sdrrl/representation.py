"""The representation analysis of the paper's section 4.4 (Figure 2).

For each checkpoint, N semantically equivalent instructions in the source and the target language
are rendered with the LLaMA-Factory chat template the recipes train with (the same rendering as the
generate stage, :func:`sdrrl.pipeline.generate.render_prompts`), run through the model, and the
last layer's hidden state of the last prompt token is the sentence's vector (the paper, following
Li et al. 2023c). t-SNE (scikit-learn) reduces the vectors to 2-D for the scatter plot; numbers
that say the same thing, and that a test can check, come from the full vectors:

- ``mean_cos_parallel``: mean cosine similarity of each source sentence with its translation;
- ``mean_cos_random``: mean cosine similarity of each source sentence with every *other* target
  sentence (all non-parallel pairs: deterministic, no sampling);
- ``retrieval_top1``: the share of source sentences whose most similar target sentence (cosine) is
  their own translation.

Choices where the paper is silent: the sentences are FLORES ``dev`` (the first N, in file order),
the template is the recipes' (``default``), "last layer" is the model's final hidden state as
transformers returns it (after the final norm), t-SNE runs per model (perplexity ``min(30, (2N-1)/3)``,
PCA initialisation, seed 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sdrrl.errors import ModelNotFoundError, SdrrlError

PLOT_NAME = "representation.png"
JSON_NAME = "representation.json"
SRC_COLOUR = "tab:blue"
TGT_COLOUR = "tab:red"


@dataclass
class Parallel:
    pairs: list[tuple[str, str]]
    source: str  # where the sentences came from, for the JSON and the plot


def load_pairs(src: str, tgt: str, n: int, parallel: str | os.PathLike | None = None,
               options: dict[str, Any] | None = None) -> Parallel:
    """The first ``n`` sentence pairs of ``parallel`` (.tsv/.jsonl, as ``sdrrl export`` reads them),
    else of FLORES dev (hub, or ``$SDRRL_EVAL_DATA`` / the lm-eval metadata directory)."""
    if n < 2:
        raise SdrrlError(f"-n {n}: the analysis needs at least 2 sentence pairs (random pairs, retrieval).",
                         "use -n 2 or more (the default is 100).")
    if parallel is not None:
        from collections import Counter

        from sdrrl.compose.parallel import _read_local

        path = Path(parallel)
        if not path.is_file():
            raise SdrrlError(f"Parallel file not found: {str(path)!r}.",
                             "give a .tsv (source<TAB>target per line) or .jsonl ({\"SRC\": ..., \"TGT\": ...}) file.")
        dropped: Counter = Counter()
        rows, _header = _read_local(path, src, tgt, dropped)
        pairs = [(s.strip(), t.strip()) for s, t in rows if s and s.strip() and t and t.strip()]
        where = str(path)
    else:
        from sdrrl.metrics import benchmark_data

        rows = benchmark_data.flores(src, tgt, "dev", options)
        pairs = [(r["source"].strip(), r["reference"].strip()) for r in rows]
        root = benchmark_data.data_dir(options)
        where = f"FLORES dev ({root})" if root else "FLORES dev (openlanguagedata/flores_plus)"
    if len(pairs) < 2:
        raise SdrrlError(f"{where} has {len(pairs)} usable {src}-{tgt} sentence pair(s); the analysis needs 2 or more.",
                         "give a parallel file with more lines (--parallel FILE).")
    return Parallel(pairs[:n], where)


def _model_error(model_path: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Cannot load the model {model_path!r} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).",
        "give a local model directory (a training output_dir, or huggingface-cli download ID --local-dir DIR).")


def last_token_states(model_path: str, texts: Sequence[str], template: str = "default", batch_size: int = 16,
                      device: str = "auto", dtype: str = "auto"):
    """Last layer's hidden state at the last prompt token of each text, as a float32 numpy array."""
    import torch

    from sdrrl.pipeline.generate import load_causal_lm, render_prompts

    prompts, _ = render_prompts(model_path, template, list(texts))
    tokenizer, model, device = load_causal_lm(model_path, device, dtype, on_error=_model_error)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # longest first: batches of similar length, little padding
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[Any] = [None] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(prompts[i]) for i in idx)
            # left padding: the last prompt token is at position -1 of every row; explicit position
            # ids so a padded row sees the same positions as it would alone
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + list(prompts[i]) for i in idx], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx], device=device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            result = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True)
            last = result.hidden_states[-1][:, -1, :].float().cpu()
            for row, i in enumerate(idx):
                out[i] = last[row]
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return torch.stack(out).numpy()


def similarity_numbers(src_vecs, tgt_vecs) -> dict[str, float]:
    """Parallel vs non-parallel mean cosine, and top-1 retrieval of the translation (source -> target)."""
    import numpy as np

    def unit(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm == 0, 1.0, norm)

    sims = unit(np.asarray(src_vecs, dtype=np.float64)) @ unit(np.asarray(tgt_vecs, dtype=np.float64)).T
    n = sims.shape[0]
    diag = np.diag(sims)
    off = sims[~np.eye(n, dtype=bool)]
    # a tie with the partner counts as found only if the partner is the first maximum: say nothing kinder
    top1 = float(np.mean(np.argmax(sims, axis=1) == np.arange(n)))
    return {"mean_cos_parallel": float(diag.mean()), "mean_cos_random": float(off.mean()), "retrieval_top1": top1}


def tsne_2d(vectors, seed: int = 0):
    """t-SNE of the stacked source and target vectors to 2-D (scikit-learn)."""
    import numpy as np
    from sklearn.manifold import TSNE

    vectors = np.asarray(vectors, dtype=np.float64)
    perplexity = min(30.0, (len(vectors) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)


def plot(panels: list[dict], src: str, tgt: str, path: Path) -> None:
    """One scatter panel per model: source points in blue, target points in red (the paper's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdrrl import languages

    src_name, tgt_name = languages.get(src).name, languages.get(tgt).name
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        xy, n = panel["xy"], panel["n"]
        ax.scatter(xy[:n, 0], xy[:n, 1], s=14, c=SRC_COLOUR, label=src_name, alpha=0.8)
        ax.scatter(xy[n:, 0], xy[n:, 1], s=14, c=TGT_COLOUR, label=tgt_name, alpha=0.8)
        ax.set_title(f"{panel['name']}\ncos par {panel['mean_cos_parallel']:.2f} / rand "
                     f"{panel['mean_cos_random']:.2f}, top-1 {panel['retrieval_top1']:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"t-SNE of last-token representations, {src_name} vs {tgt_name} (N={panels[0]['n']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_name(path: str, taken: set[str]) -> str:
    """A short panel name: the checkpoint's layout ``<model>/<method>/<pair>`` where it has one."""
    parts = Path(os.path.abspath(path)).parts
    name = "/".join(parts[-3:]) if len(parts) >= 3 and "saves" in parts[:-3] else Path(path).name
    base, k = name, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    taken.add(name)
    return name


def analyse(models: Sequence[str], src: str, tgt: str, out: str | os.PathLike, n: int = 100,
            parallel: str | os.PathLike | None = None, names: Sequence[str] | None = None,
            template: str = "default", batch_size: int = 16, device: str = "auto", dtype: str = "auto",
            seed: int = 0, log=print) -> dict:
    """Run the analysis, write ``OUT/representation.png`` and ``OUT/representation.json`` together."""
    from sdrrl import languages
    from sdrrl.io import atomic_open, ensure_writable_dir

    src, tgt = languages.get(src).iso, languages.get(tgt).iso
    data = load_pairs(src, tgt, n, parallel)
    out_dir = ensure_writable_dir(out)
    texts_src = [s for s, _ in data.pairs]
    texts_tgt = [t for _, t in data.pairs]
    taken: set[str] = set()
    panels, entries = [], []
    for i, path in enumerate(models):
        name = names[i] if names and i < len(names) and names[i] else model_name(str(path), taken)
        log(f"sdrrl represent: {name}: {len(data.pairs)} {src}/{tgt} pairs through {path}")
        vecs = last_token_states(str(path), texts_src + texts_tgt, template, batch_size, device, dtype)
        k = len(data.pairs)
        numbers = similarity_numbers(vecs[:k], vecs[k:])
        entries.append({"name": name, "path": os.path.abspath(path),
                        **{key: round(v, 6) for key, v in numbers.items()}, "n": k})
        panels.append({"name": name, "xy": tsne_2d(vecs, seed), "n": k, **numbers})
        log(f"  mean cosine parallel {numbers['mean_cos_parallel']:.4f}, random {numbers['mean_cos_random']:.4f}, "
            f"top-1 retrieval {numbers['retrieval_top1']:.4f}")
    result = {"models": entries, "src": src, "tgt": tgt, "plot": PLOT_NAME,
              "data": data.source, "template": template}
    # both files or neither: write them under temporary names, then rename (the JSON, which
    # names the plot, last)
    png_tmp = out_dir / f".{PLOT_NAME}.{os.getpid()}.tmp.png"
    try:
        plot(panels, src, tgt, png_tmp)
        with atomic_open(out_dir / JSON_NAME) as fh:
            fh.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            os.replace(png_tmp, out_dir / PLOT_NAME)  # then the JSON's rename, on leaving the block
    finally:
        png_tmp.unlink(missing_ok=True)
    return result
