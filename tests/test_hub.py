"""One answer to "are we offline?" and "local path or hub id?" (sdrrl.hub), shared by every component
and equal to the libraries' own reading of the environment.

The hub's network answers are faked here (no network in tests): what is tested is which way each
component decides, read from what it does (asks the hub or not, and what it says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sdrrl import hub, preflight
from sdrrl.errors import SdrrlError

ABSENT = "sdrrl-test/not-a-model-anywhere"
VALUES = ("1", "true", "yes", "no", "0", "")


def library_readings(value: str) -> dict:
    """huggingface_hub's and datasets' offline flags (read once, at import) for HF_HUB_OFFLINE=value."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_HUB_OFFLINE"] = value
    code = ("import json, huggingface_hub.constants as c, datasets.config as d\n"
            "print(json.dumps({'hub': c.HF_HUB_OFFLINE, 'datasets': d.HF_HUB_OFFLINE}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Record the hub calls the components make; nothing is cached, nothing exists on the hub."""
    import datasets
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    calls: list[str] = []
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))

    def auth_check(repo_id, **kw):
        calls.append("auth_check")
        raise RepositoryNotFoundError("404")

    def snapshot_download(repo_id, local_files_only=False, **kw):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        calls.append("download")
        raise RepositoryNotFoundError("404")

    def load_dataset(name, *a, **kw):
        calls.append("load_dataset")
        raise ConnectionError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "auth_check", auth_check)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def decisions(calls: list[str], tmp_path) -> dict[str, bool]:
    """Each component's answer to "offline?", read from what it does with an uncached hub id."""
    from sdrrl.commands import train
    from sdrrl.metrics import comet
    from sdrrl.pipeline import inputs
    from sdrrl.pipeline import preflight as pipeline_preflight
    from sdrrl.pipeline.config import from_dict
    from sdrrl.pipeline.filters import CometKiwiFilter

    out = {}

    def said_offline(run, hub_calls: bool = True) -> bool:
        calls.clear()
        try:
            run()
        except SdrrlError as err:
            text = str(err)
        else:
            text = ""
        offline = "turns the hub off" in text or "keeps datasets offline" in text
        if hub_calls:  # offline: never asks the hub; online: always does
            assert offline != bool(calls), (text, calls)
        else:  # datasets loads from its cache offline: the call is made either way, the message differs
            assert offline != ("could not be loaded from the hub" in text), text
        return offline

    def model_problem():
        problem = preflight.hf_model_problem(ABSENT, "generate.model")
        assert problem is not None
        raise problem

    out["preflight.py"] = said_offline(model_problem)
    cfg = from_dict({"generate": {"model": ABSENT}})

    def stage_problem():
        (problem,) = pipeline_preflight.problems(cfg, "generate", only=True)
        raise problem
    out["pipeline/preflight.py"] = said_offline(stage_problem)
    out["metrics/comet.py"] = said_offline(lambda: comet.resolve_checkpoint(ABSENT))
    out["pipeline/filters.py"] = said_offline(lambda: CometKiwiFilter(ABSENT).scores([("Hello.", "Halo.")]))
    out["pipeline/inputs.py"] = said_offline(lambda: list(inputs.rows(ABSENT)), hub_calls=False)

    def train_check():  # online, an uncached id is left to LLaMA-Factory: no hub call, no error
        train.check_model({"model_name_or_path": ABSENT})
        calls.append("left to LLaMA-Factory")
    out["commands/train.py"] = said_offline(train_check)
    return out


@pytest.mark.parametrize("value", VALUES)
def test_every_component_reads_hf_hub_offline_as_huggingface_hub_does(value, monkeypatch, fake_hub, tmp_path):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    libraries = library_readings(value)
    assert libraries["hub"] == libraries["datasets"] == hub.offline() == hub.datasets_offline()
    assert hub.offline() is (value in ("1", "true", "yes"))
    got = decisions(fake_hub, tmp_path)
    assert got == dict.fromkeys(got, libraries["hub"]), got


def test_transformers_offline_and_hf_datasets_offline_follow_the_libraries(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # empty: huggingface_hub reads TRANSFORMERS_OFFLINE instead
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert hub.offline() and hub.offline_setting() == "TRANSFORMERS_OFFLINE=1"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # set: TRANSFORMERS_OFFLINE is not read at all
    assert not hub.offline() and not hub.datasets_offline()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "ON")  # datasets' own switch wins where it is set
    assert hub.datasets_offline() and hub.datasets_offline_setting() == "HF_DATASETS_OFFLINE=ON"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "")  # set but empty: datasets is online
    assert hub.offline() and not hub.datasets_offline()


@pytest.mark.parametrize("value", ("1", "no"))
def test_comet_loads_with_local_files_only_exactly_when_offline(value, monkeypatch, tmp_path):
    """Both COMET users (the QE filter, the COMET metric) load through hub.load_comet."""
    import comet

    ckpt = tmp_path / "kiwi" / "checkpoints" / "model.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    seen = []
    monkeypatch.setattr(comet, "load_from_checkpoint", lambda path, local_files_only: seen.append(local_files_only))
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    hub.load_comet(str(ckpt.parents[1]), SdrrlError)
    assert seen == [value == "1"]


@pytest.mark.parametrize("name, local", [
    ("./models/llama", True), ("/abs/models/llama", True), ("~/models/llama", True), ("runs/a/checkpoint-500", True),
    ("kiwi/checkpoints/model.ckpt", True), ("alpaca_data.json", True), ("my model", True), ("C:\\models", True),
    ("meta-llama/Llama-2-7b-hf", False), ("gpt2", False), ("tatsu-lab/alpaca", False), ("hf:tatsu-lab/alpaca", False),
])
def test_local_path_or_hub_id_is_one_rule_for_models_recipes_and_inputs(name, local, monkeypatch, fake_hub, tmp_path):
    """A missing name that can only be a path is a path problem everywhere, never sent to the hub."""
    from sdrrl.commands import train
    from sdrrl.pipeline import inputs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    assert hub.is_local(name) is local and hub.looks_local(name) is local
    problem = preflight.hf_model_problem(name, "generate.model")
    assert ("does not exist" in str(problem)) is local and ("Hugging Face cache" in str(problem)) is not local
    with pytest.raises(SdrrlError) as err:
        train.check_model({"model_name_or_path": name})
    assert ("does not exist" in str(err.value)) is local
    with pytest.raises(SdrrlError) as err:
        list(inputs.rows(name))
    assert ("Input file not found" in str(err.value)) is local
    assert ("load_dataset" in fake_hub) is not local
    (tmp_path / "gpt2").mkdir()  # a folder that exists is a path, whatever its name
    assert hub.is_local("gpt2") and not hub.is_local("hf:gpt2")


def test_a_comet_checkpoint_is_resolved_once_for_the_filter_the_metric_and_preflight(tiny_models, tmp_path):
    from sdrrl.metrics import comet

    folder = tiny_models.comet_qe.parents[1]
    for name in (str(tiny_models.comet_qe), str(folder)):
        assert hub.comet_checkpoint(name, SdrrlError) == tiny_models.comet_qe
        assert comet.resolve_checkpoint(name) == tiny_models.comet_qe
        assert preflight.comet_model_problem(name, "filter.qe_model") is None
    assert hub.comet_encoder(tiny_models.comet_qe) == str(tiny_models.xlmr)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SdrrlError, match="no checkpoint file at .*checkpoints/model.ckpt"):
        hub.comet_checkpoint(str(tmp_path / "empty"), SdrrlError)
    with pytest.raises(SdrrlError, match="path not found"):
        hub.comet_checkpoint(str(tmp_path / "gone" / "model.ckpt"), SdrrlError)


def test_export_preflight_names_a_missing_local_monolingual_corpus_and_leaves_a_dataset_id_to_its_loader(tmp_path):
    from fixtures.compose import helpers
    from sdrrl.compose import preflight as compose_preflight

    def completion_problems(corpus: str) -> list[str]:
        cfg = helpers.config(tmp_path, methods=["sdrrl-only-mt-comp"], completion={"corpus": corpus})
        return [str(p) for p in compose_preflight.problems(cfg) if "completion.corpus" in str(p)]

    (missing,) = completion_problems("mono/{tgt}.txt")
    assert f"path {str(tmp_path / 'mono' / 'ind.txt')!r} (for ind) does not exist" in missing
    assert completion_problems("wikimedia/wikipedia") == []  # a hub id: datasets reports on it
    (tmp_path / "mono").mkdir()
    (tmp_path / "mono" / "ind.txt").write_text("Satu dua tiga.\n", encoding="utf-8")
    assert completion_problems("mono/{tgt}.txt") == []
