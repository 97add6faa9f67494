"""Every shipped recipe is accepted by LLaMA-Factory's own parser, and the DeepSpeed configs by DeepSpeed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdrrl import registry
from sdrrl.recipes import RECIPES, as_dict

REPO = Path(__file__).resolve().parents[1]
RECIPE_FILES = sorted((REPO / "recipes").glob("*.yaml"))
ROWS = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(4)]

PARSE = r"""
import json, sys, yaml
from llamafactory.hparams import get_train_args
out = {}
for path, args in json.loads(sys.argv[1]).items():
    model, data, training, finetuning, _ = get_train_args(args)
    ds = training.hf_deepspeed_config.config if training.deepspeed else None
    out[path] = {"dataset": data.dataset, "mix": data.mix_strategy, "type": finetuning.finetuning_type,
                 "epochs": training.num_train_epochs, "lr": training.learning_rate,
                 "early": finetuning.early_stopping_steps, "best": training.load_best_model_at_end,
                 "deepspeed": ds}
print("RESULT " + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_recipes_are_generated_from_the_single_source():
    proc = subprocess.run([sys.executable, str(REPO / "recipes" / "generate.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {p.stem for p in RECIPE_FILES} == set(RECIPES)
    for path in RECIPE_FILES:
        assert yaml.safe_load(path.read_text()) == as_dict(RECIPES[path.stem])


@pytest.mark.slow
def test_every_recipe_is_accepted_by_llamafactorys_parser(tmp_path, tiny_models):
    from lf_utils import offline_env

    data = tmp_path / "data"
    entries = []
    wanted = {}
    for path in RECIPE_FILES:
        args = yaml.safe_load(path.read_text())
        for name in args["dataset"].split(","):
            if name not in {e.name for e in entries}:
                entries.append(registry.write_dataset(data, name, ROWS)[0])
        # Swapped for this machine: the tiny model, the tiny export, no GPU (bf16 needs one).
        args.update(model_name_or_path=str(tiny_models.llama), dataset_dir=str(data),
                    output_dir=str(tmp_path / "out" / path.stem), bf16=False, fp16=False)
        if args.get("deepspeed"):
            args["deepspeed"] = str(REPO / args["deepspeed"])
        wanted[path.name] = args
    registry.update_dataset_info(data, entries)
    env = offline_env(WORLD_SIZE="1", RANK="0", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    proc = subprocess.run([sys.executable, "-c", PARSE, json.dumps(wanted)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert set(parsed) == {p.name for p in RECIPE_FILES}
    for name, got in parsed.items():
        assert got["dataset"] == wanted[name]["dataset"].split(","), name
        assert got["mix"] == "interleave_over" and got["early"] == 3 and got["best"] is True, name
    paper = parsed["sdrrl_llama2.yaml"]
    assert paper["type"] == "full" and paper["epochs"] == 4.0 and paper["deepspeed"]["zero_optimization"]["stage"] == 2
    assert parsed["sdrrl_llama2_lora.yaml"]["type"] == "lora" and parsed["sdrrl_llama2_lora.yaml"]["deepspeed"] is None
    assert [d.rsplit("_", 1)[1] for d in paper["dataset"]] == ["ll", "tl", "lt", "tt", "mt", "comp"]


@pytest.mark.parametrize("config", sorted((REPO / "recipes" / "deepspeed").glob("*.json")), ids=lambda p: p.name)
def test_deepspeed_configs_are_accepted_by_deepspeed(config):
    from deepspeed.runtime.config import DeepSpeedConfig

    raw = json.loads(config.read_text())
    # What HF's integration fills in for "auto" at launch (here one process: 1 x 4 x GA 4).
    fill = {"train_batch_size": 16, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 4,
            "gradient_clipping": 1.0}

    def resolve(obj, key=None):
        if isinstance(obj, dict):
            return {k: resolve(v, k) for k, v in obj.items()}
        if obj == "auto":
            return fill.get(key, False if key == "enabled" else 1_000_000)
        return obj

    cfg = DeepSpeedConfig(resolve(raw))
    assert cfg.zero_optimization_stage == raw["zero_optimization"]["stage"]
    assert cfg.gradient_accumulation_steps == 4


def test_train_preflight_names_the_command_that_makes_a_missing_dataset(tmp_path):
    sdrrl = str(Path(sys.executable).parent / "sdrrl")
    recipe = REPO / "recipes" / "sdrrl_llama2.yaml"
    proc = subprocess.run([sdrrl, "train", "--check-only", str(recipe), f"dataset_dir={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "sdrrl export --config CONFIG --out" in err and "dataset_info.json" in err
    entry, _ = registry.write_dataset(tmp_path, "sdrrl_eng-ind_ll", ROWS)
    registry.update_dataset_info(tmp_path, [entry])
    proc = subprocess.run([sdrrl, "train", "--check-only", str(recipe), f"dataset_dir={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "'sdrrl_eng-ind_tl' is not registered" in proc.stderr
    assert "sdrrl_eng-ind_ll" not in proc.stderr.split("is not registered")[0].split("registry")[-1]


def test_train_preflight_rejects_a_missing_model_before_training(tmp_path):
    sdrrl = str(Path(sys.executable).parent / "sdrrl")
    entries = [registry.write_dataset(tmp_path, f"sdrrl_eng-ind_{s}", ROWS)[0]
               for s in ("ll", "tl", "lt", "tt", "mt", "comp")]
    registry.update_dataset_info(tmp_path, entries)
    recipe = str(REPO / "recipes" / "sdrrl_tiny_cpu.yaml")
    base = [sdrrl, "train", "--check-only", recipe, f"dataset_dir={tmp_path}"]
    proc = subprocess.run(base + [f"model_name_or_path={tmp_path}/no_model"], capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "sdrrl tiny-models" in proc.stderr
    env = dict(__import__("os").environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    proc = subprocess.run(base + ["model_name_or_path=meta-llama/Llama-2-7b-hf"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "not in the local Hugging Face cache" in proc.stderr
    proc = subprocess.run(base + [f"model_name_or_path={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # an existing folder passes the preflight


@pytest.mark.slow
def test_tiny_recipe_trains_on_an_export_with_early_stopping_and_lm_eval_loads_it(tmp_path, tiny_models):
    from lf_utils import offline_env

    bindir = Path(sys.executable).parent
    reg = tmp_path / "registry"
    proc = subprocess.run([bindir / "sdrrl", "export", "--config", REPO / "tests/fixtures/compose/config.yaml",
                           "--out", reg], capture_output=True, text=True, env=offline_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "ckpt"
    proc = subprocess.run([bindir / "sdrrl", "train", "recipes/sdrrl_tiny_cpu.yaml",
                           f"model_name_or_path={tiny_models.llama}", f"dataset_dir={reg}", f"output_dir={out}"],
                          capture_output=True, text=True, env=offline_env(), cwd=REPO, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    evals = [h["eval_loss"] for h in state["log_history"] if "eval_loss" in h]
    assert len(evals) >= 2  # evaluated on the validation split every eval_steps, as the paper recipe
    assert state["best_model_checkpoint"] and state["best_metric"] == min(evals)  # load_best_model_at_end
    assert "EarlyStoppingCallback" in json.dumps(state.get("stateful_callbacks", {}))
    assert (out / "model.safetensors").exists()

    proc = subprocess.run([bindir / "lm_eval", "--model", "hf", "--model_args", f"pretrained={out},dtype=float32",
                           "--device", "cpu", "--include_path", REPO / "eval_tasks", "--tasks", "sdrrl_belebele_eng",
                           "--limit", "2", "--output_path", tmp_path / "eval"],
                          capture_output=True, text=True, timeout=600,
                          env=offline_env(SDRRL_EVAL_DATA=str(REPO / "tests/fixtures/eval")))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads(next((tmp_path / "eval").rglob("results_*.json")).read_text())
    assert 0.0 <= result["results"]["sdrrl_belebele_eng"]["acc,none"] <= 1.0
