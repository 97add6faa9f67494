"""Run the real, unmodified ``llamafactory-cli train`` on CPU, offline, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def offline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true", "DISABLE_VERSION_CHECK": "0",
        "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2",
    })
    env.update(extra)
    return env


def tiny_train_args(model_dir, dataset_dir, datasets, output_dir, **overrides) -> dict:
    """A few-step full fine-tune of the tiny Llama on CPU (fp32)."""
    args = {
        "model_name_or_path": str(model_dir),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": ",".join(datasets) if not isinstance(datasets, str) else datasets,
        "dataset_dir": str(dataset_dir),
        "template": "default",
        "cutoff_len": 256,
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "output_dir": str(output_dir),
        "overwrite_output_dir": True,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1.0e-3,
        "num_train_epochs": 1,
        "max_steps": 3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "seed": 42,
    }
    args.update(overrides)
    return args


def train_tiny(tmp_path, model_dir, dataset_dir, datasets, timeout=600, **overrides):
    """Write a recipe and run ``llamafactory-cli train recipe.yaml``; return (process, output_dir)."""
    out = Path(tmp_path) / "lf_out"
    recipe = Path(tmp_path) / "tiny_recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_train_args(model_dir, dataset_dir, datasets, out, **overrides)))
    proc = subprocess.run(
        [str(BIN / "llamafactory-cli"), "train", str(recipe)],
        cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=timeout,
    )
    return proc, out
