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


def test_train_preflight_accepts_what_llamafactory_accepts(tmp_path):
    """A dataset list (YAML list or [a,b] override) and a hub id without an organisation are valid."""
    sdrrl = str(Path(sys.executable).parent / "sdrrl")
    names = [f"sdrrl_eng-ind_{s}" for s in ("ll", "tl")]
    registry.update_dataset_info(tmp_path, [registry.write_dataset(tmp_path, n, ROWS)[0] for n in names])
    recipe = tmp_path / "list.yaml"
    recipe.write_text(yaml.safe_dump({**as_dict(RECIPES["sdrrl_tiny_cpu"]), "dataset": names,
                                      "dataset_dir": str(tmp_path), "model_name_or_path": str(tmp_path)}))
    for extra in ([], [f"dataset=[{names[1]}]"]):
        proc = subprocess.run([sdrrl, "train", "--check-only", str(recipe), *extra], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    env = dict(__import__("os").environ, HF_HUB_OFFLINE="0")
    proc = subprocess.run([sdrrl, "train", "--check-only", str(recipe), "model_name_or_path=gpt2"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr  # a legacy hub id such as gpt2 has no slash
    proc = subprocess.run([sdrrl, "train", "--check-only", str(recipe), "dataset=[sdrrl_eng-ind_xx]"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "'sdrrl_eng-ind_xx' is not registered" in proc.stderr


# Rows per registry entry at the paper's scale (README): Alpaca's 52,002 per transfer subset (an
# upper bound: filtering only lowers it), 1,000 OPUS-100 pairs both ways, 1,000 completion rows.
PAPER_ROWS = {"mt": 2000, "comp": 1000}


@pytest.mark.parametrize("name", sorted(n for n in RECIPES if n != "sdrrl_tiny_cpu"))
def test_early_stopping_can_act_at_paper_scale(name):
    """Enough evaluations in the run for patience to stop it: a fixed eval_steps of 500 gave the
    only-mt-comp ablation (124 steps) no evaluation at all and SFT (1,609 steps) three."""
    import math

    args = as_dict(RECIPES[name])
    subsets = args["dataset"].split(",")
    rows = len(subsets) * max(PAPER_ROWS.get(d.rsplit("_", 1)[-1], 52002) for d in subsets)  # interleave_over
    gpus = 8 if args.get("deepspeed") else 1
    per_step = args["per_device_train_batch_size"] * args["gradient_accumulation_steps"] * gpus
    total = math.ceil(rows * (1 - args["val_size"]) / per_step) * int(args["num_train_epochs"])
    every = args["eval_steps"]
    every = math.ceil(total * every) if every < 1 else every
    assert args["save_steps"] == args["eval_steps"] and args["save_strategy"] == args["eval_strategy"] == "steps"
    assert total // every >= args["early_stopping_steps"] + 1, (total, every)


@pytest.mark.parametrize("name", sorted(n for n in RECIPES if n != "sdrrl_tiny_cpu"))
def test_a_rerun_after_a_crash_resumes_instead_of_starting_over(name):
    """With overwrite_output_dir LLaMA-Factory ignores the checkpoints already in output_dir: the same
    command after a crash hours into an 8-GPU run would start from step 0. Without it, it resumes
    from the last checkpoint, which must then be a full one where DeepSpeed is used."""
    args = as_dict(RECIPES[name])
    assert args.get("overwrite_output_dir", False) is False
    assert args["save_strategy"] == "steps" and (not args.get("deepspeed") or args["save_only_model"] is False)


def test_every_recipe_writes_to_its_own_output_dir():
    """Two recipes sharing output_dir would overwrite (or mix a LoRA adapter into) each other's model."""
    outs = {name: as_dict(recipe)["output_dir"] for name, recipe in RECIPES.items()}
    assert len(set(outs.values())) == len(outs), outs


def _export_fixture(tmp_path) -> Path:
    """`sdrrl export` of the compose fixture work directory (every method, target ind)."""
    from lf_utils import offline_env

    reg = tmp_path / "registry"
    proc = subprocess.run([Path(sys.executable).parent / "sdrrl", "export", "--config",
                           REPO / "tests/fixtures/compose/config.yaml", "--out", reg],
                          capture_output=True, text=True, env=offline_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return reg


@pytest.mark.slow
def test_tiny_recipe_trains_on_an_export_with_early_stopping_and_lm_eval_loads_it(tmp_path, tiny_models):
    from lf_utils import offline_env

    bindir = Path(sys.executable).parent
    reg = _export_fixture(tmp_path)
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


@pytest.mark.slow
def test_paper_recipe_deepspeed_checkpoints_load_the_best_and_resume(tmp_path, tiny_models):
    """The paper recipe itself (DeepSpeed ZeRO-2, save_only_model false, load_best_model_at_end, eval and
    save as a fraction of the run, no overwrite_output_dir) through torchrun on CPU: the best checkpoint is
    loaded at the end, and the same command again resumes from the last DeepSpeed checkpoint."""
    from lf_utils import offline_env

    bindir = Path(sys.executable).parent
    reg = _export_fixture(tmp_path)
    out = tmp_path / "ckpt"
    env = offline_env(FORCE_TORCHRUN="1", NPROC_PER_NODE="1", MASTER_PORT=str(_free_port()),
                      PATH=f"{bindir}:{__import__('os').environ['PATH']}")

    def train(steps):
        # swapped for this machine: the tiny model and export, CPU fp32, a few steps
        cmd = [bindir / "sdrrl", "train", "recipes/sdrrl_llama2.yaml", f"model_name_or_path={tiny_models.llama}",
               f"dataset_dir={reg}", f"output_dir={out}", "bf16=false", "use_cpu=true", f"max_steps={steps}",
               "per_device_train_batch_size=2", "gradient_accumulation_steps=1", "per_device_eval_batch_size=2",
               "cutoff_len=256", "preprocessing_num_workers=1", "val_size=0.2", "eval_steps=0.25",
               "save_steps=0.25", "learning_rate=1.0e-3"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-4000:]
        return log

    log = train(4)
    assert "Loading best model from" in log and (out / "model.safetensors").exists()
    assert list(out.glob("checkpoint-*/global_step*"))  # full DeepSpeed checkpoints (save_only_model: false)
    log = train(6)
    assert f"Resuming training from {out}/checkpoint-4" in log, log[-3000:]
    assert (out / "checkpoint-6").is_dir()
