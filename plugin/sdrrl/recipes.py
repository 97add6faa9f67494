"""The one source of truth for the training recipes in ``recipes/`` (written by recipes/generate.py).

A recipe is an ordered list of ``(key, value, comment)``; variants are the paper's base recipe with a
few keys replaced, so a hyperparameter is changed in one place. Comments say where each value comes
from: the paper (section 4.1, appendix A-C), LLaMA-Factory's README of December 2023 ("Hiyouga 2023",
which the paper names for "other hyperparameters"), or our choice where the paper is silent.
"""

from __future__ import annotations

import json
from typing import Any

from sdrrl import catalog
from sdrrl.compose.methods import dataset_names


def multi_dataset_names(method: str, sources, targets) -> list[str]:
    """Every registry name of one method over several sources and targets (source-major, then
    target, then subset): what one model trained on many languages reads (docs/beyond-the-paper.md,
    "Many languages in one model")."""
    return [n for src in sources for tgt in targets for n in dataset_names(method, src, tgt)]


Item = tuple[str, Any, str]

PAPER_BASE: list[Item] = [
    ("#", "model", ""),
    ("model_name_or_path", catalog.main_family().base_model, catalog.main_family().base_model_note),
    ("#", "method", ""),
    ("stage", "sft", "supervised fine-tuning"),
    ("do_train", True, ""),
    ("finetuning_type", "full", "paper 4.1: full fine-tuning (LLaMA-Factory defaults to lora)"),
    ("deepspeed", "recipes/deepspeed/ds_z2.json",
     "paper 4.1: DeepSpeed; ZeRO-2 as Hiyouga 2023's multi-GPU example (path relative to the repo root)"),
    ("#", "dataset", ""),
    ("dataset", None, "one model per language pair (paper 4.1); subsets as separate registry entries"),
    ("dataset_dir", "dataset_info", "filled by `sdrrl export --out dataset_info` (resolved against the CWD)"),
    ("template", "default", "Hiyouga 2023: `default` for base models; generation uses the same template"),
    ("cutoff_len", 1024, "Hiyouga 2023"),
    ("mix_strategy", "interleave_over",
     "our choice: equal examples per subset, realising the paper's sum of per-subset means (docs/training.md)"),
    ("overwrite_cache", True, ""),
    ("preprocessing_num_workers", 16, "machine setting"),
    ("#", "output", ""),
    ("output_dir", None, "where the checkpoint lands"),
    ("logging_steps", 10, "Hiyouga 2023"),
    ("save_strategy", "steps", "must equal eval_strategy for early stopping"),
    ("save_steps", 0.05, "= eval_steps (a fraction of the run's steps, as eval_steps)"),
    ("save_total_limit", 2, "keep the best and the latest checkpoint"),
    ("save_only_model", False, "DeepSpeed + load_best_model_at_end need full checkpoints"),
    ("plot_loss", True, "Hiyouga 2023"),
    ("overwrite_output_dir", False,
     "the same command after a crash resumes from the last checkpoint in output_dir (LLaMA-Factory)"),
    ("report_to", "none", ""),
    ("#", "train", ""),
    ("per_device_train_batch_size", 4, "Hiyouga 2023"),
    ("gradient_accumulation_steps", 4, "Hiyouga 2023; x 8 GPUs = 128 examples per step"),
    ("learning_rate", 2.0e-5,
     "paper: 'automatically calculated' (OpenChat); our choice: the value Alpaca's own 7B full fine-tune "
     "used at this batch size of 128 (Hiyouga 2023's 5e-5 was for its own 3-epoch example)"),
    ("num_train_epochs", 4.0, "paper 4.1: four epochs (with early stopping)"),
    ("lr_scheduler_type", "cosine", "Hiyouga 2023"),
    ("warmup_ratio", 0.0, "Hiyouga 2023's example used no warmup"),
    ("bf16", True, "A800s run bf16; Hiyouga 2023's example used fp16 (override: bf16=false fp16=true)"),
    ("ddp_timeout", 180000000, "long tokenisation on rank 0 must not time out the other ranks"),
    ("#", "eval: early stopping (paper 4.1)", ""),
    ("val_size", 0.01, "our choice: 1% of the mixed training set held out for early stopping"),
    ("per_device_eval_batch_size", 4, ""),
    ("eval_strategy", "steps", ""),
    ("eval_steps", 0.05,
     "our choice: every 5% of the run, 20 evaluations whatever the data size (~480 steps for SDRRL at "
     "paper scale; a fixed 500 never evaluated the 124-step only-mt-comp ablation)"),
    ("early_stopping_steps", 3, "our choice: stop after 3 evaluations without a lower eval_loss"),
    ("metric_for_best_model", "eval_loss", ""),
    ("greater_is_better", False, ""),
    ("load_best_model_at_end", True, "the saved model is the best one, not the last one"),
]


def _with(base: list[Item], **changes: Any) -> list[Item]:
    """Copy ``base`` replacing values (``key=value`` or ``key=(value, comment)``); new keys appended."""
    out: list[Item] = []
    seen = set()
    for key, value, comment in base:
        if key in changes:
            new = changes[key]
            value, comment = new if isinstance(new, tuple) else (new, comment)
            seen.add(key)
        if value is not _DROP:
            out.append((key, value, comment))
    for key, new in changes.items():
        if key not in seen:
            value, comment = new if isinstance(new, tuple) else (new, "")
            if value is not _DROP:
                out.append((key, value, comment))
    return out


_DROP = object()


def _paper(method: str, src: str = "eng", tgt: str | None = None, family: str | None = None,
           **changes: Any) -> list[Item]:
    """The paper's recipe for one method on one model family (default: the main one, LLaMA-2)."""
    fam = catalog.family(family) if family else catalog.main_family()
    tgt = tgt or fam.recipe_target
    pair = catalog.method(method).pair(src, tgt)
    defaults = {"dataset": ",".join(dataset_names(method, src, tgt)),
                "output_dir": f"saves/{fam.save_dir}/{method}/{pair}"}
    if not fam.main:
        defaults["model_name_or_path"] = (fam.base_model, fam.base_model_note)
    return _with(PAPER_BASE, **{**defaults, **changes})


LORA = dict(
    finetuning_type=("lora", "single 24-80 GB GPU: LoRA instead of full fine-tuning (not the paper's setting)"),
    deepspeed=_DROP,
    lora_target=("all", "LoRA on every linear layer"),
    lora_rank=(8, "LLaMA-Factory default"),
    learning_rate=(1.0e-4, "usual LoRA rate (10x full fine-tuning)"),
    gradient_accumulation_steps=(32, "4 x 32 = 128 examples per step on one GPU, as the paper's 8-GPU batch"),
    save_only_model=(True, "no DeepSpeed: model-only checkpoints are enough"),
    output_dir=("saves/llama2-7b/sdrrl-lora/eng-ind",
                "a LoRA adapter, apart from the full model: lm_eval peft=, or merge with llamafactory-cli export"),
)

TINY = dict(
    model_name_or_path=("demo_out/models/llama", "tiny random Llama: `sdrrl tiny-models --link demo_out/models` (make demo does it)"),
    deepspeed=_DROP,
    dataset_dir=("demo_out/dataset_info", "written by `make demo` (sdrrl demo)"),
    preprocessing_num_workers=(1, "2-core CI machine"),
    cutoff_len=(256, "tiny model"),
    output_dir=("demo_out/saves/tiny/sdrrl/eng-ind", ""),
    overwrite_output_dir=(True, "the demo retrains on freshly exported data every run"),
    logging_steps=(1, ""),
    save_steps=(2, "= eval_steps"),
    per_device_train_batch_size=(2, ""),
    gradient_accumulation_steps=(1, ""),
    learning_rate=(1.0e-3, "tiny model"),
    num_train_epochs=(1.0, ""),
    max_steps=(6, "a few steps on CPU"),
    bf16=(False, "CPU: fp32"),
    use_cpu=(True, "runs anywhere, no GPU"),
    val_size=(0.2, "enough validation rows on the tiny demo data"),
    per_device_eval_batch_size=(2, ""),
    eval_steps=(2, ""),
    dataloader_num_workers=(0, ""),
)

def build_recipes() -> dict[str, list[Item]]:
    """Every shipped recipe, from the catalog's methods and model families as they are now."""
    main = catalog.main_family()
    return {
        # the paper's runs on its main model (LLaMA-2-7B): one per method of the catalog (SDRRL, the
        # baselines, the Table 6 ablations), one target language per model (change it with key=value)
        **{f"{m.replace('-', '_')}_{main.name}": _paper(m) for m in catalog.method_names()},
        # appendix B, and any other model family: SDRRL on its base model (SeaLLM-7B: target tha)
        **{f"sdrrl_{f.name}": _paper("sdrrl", family=f.name) for f in catalog.FAMILIES.values() if not f.main},
        # appendix C: French as the resource-rich source (targets ind, jpn, kor)
        "sdrrl_llama2_fra": _paper("sdrrl", src="fra", tgt="ind"),
        # beyond the paper: one model for all 14 targets (6 subsets x 14 = 84 registry entries)
        "sdrrl_llama2_multi": _with(
            PAPER_BASE,
            dataset=(",".join(multi_dataset_names("sdrrl", ["eng"], main.paper_targets)),
                     "beyond the paper: every subset of the 14 targets (84 entries); add a second source's "
                     "entries (sdrrl_fra-*) with a dataset= override"),
            mix_strategy=("interleave_over",
                          "equal weight per language and subset: LLaMA-Factory round-robins the 84 datasets and "
                          "oversamples each to the largest one's size (measured: docs/beyond-the-paper.md)"),
            output_dir=f"saves/{main.save_dir}/sdrrl/eng-multi"),
        # one GPU
        "sdrrl_llama2_lora": _paper("sdrrl", **LORA),
        # the embedded default: tiny Llama on CPU, same structure as the paper recipe (early stopping included)
        "sdrrl_tiny_cpu": _paper("sdrrl", **TINY),
    }


RECIPES: dict[str, list[Item]] = build_recipes()


def as_dict(recipe: list[Item]) -> dict[str, Any]:
    return {k: v for k, v, _ in recipe if k != "#"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # PyYAML reads 2e-05 as a string: always write a dot before the exponent
        return f"{value:.1e}" if value and abs(value) < 1e-3 else repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value) if any(c in str(value) for c in ":#{}[],&*!|>'\"%@`") else str(value)


def render(recipe: list[Item]) -> str:
    lines = ["# Generated by recipes/generate.py from sdrrl/recipes.py: edit those, not this file.",
             "# Run: llamafactory-cli train recipes/<this file> [key=value ...]  (from the repo root)"]
    for key, value, comment in recipe:
        if key == "#":
            lines.append(f"\n### {value}")
            continue
        line = f"{key}: {_scalar(value)}"
        lines.append(f"{line}  # {comment}" if comment else line)
    return "\n".join(lines) + "\n"
