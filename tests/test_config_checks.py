"""Configs checked completely, and every model and file resolved, before any model work; a build that
keeps nothing of a language fails loudly (issue 10, part e).

Each config error is a real `sdrrl build`/`sdrrl export` process on a config whose models are the
tiny local ones, so without the check the build would run (and write WORK/generate/): the test
asserts the exit code, one stderr line per problem, and that no work directory was made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sdrrl import configfile, preflight
from sdrrl.errors import SdrrlError
from sdrrl.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CONFIG = REPO / "tests" / "fixtures" / "compose" / "config.yaml"
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
           TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"))


def sdrrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdrrl.cli", *args], env=ENV, capture_output=True, text=True,
                          timeout=600)


def build_config(tiny_models, tmp_path: Path, text: str = "", **sections) -> Path:
    """A build config over the tiny models (it would run) plus ``text`` (raw YAML, kept as written)."""
    data = {"work_dir": str(tmp_path / "work"), "target_langs": ["ind"], "max_rows": 3, "progress_every_s": 60,
            "generate": {"model": str(tiny_models.llama), "max_new_tokens": 4, "batch_size": 4, "device": "cpu"},
            "translate": {"model": str(tiny_models.nllb), "max_length": 16, "batch_size": 16, "device": "cpu"},
            "filter": {"qe_model": str(tiny_models.comet_qe), "heuristics_enabled": False}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False) + text, encoding="utf-8")
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# -- every config error of the issue: exit code, one line, no model work ---------------------------

@pytest.mark.parametrize("section, text, key", [
    ("filter", '  lid_enabled: "false"\n', "filter.lid_enabled = 'false' is a string, not a boolean"),
    ("filter", "  qe_threshold: high\n", "filter.qe_threshold = 'high' is a string, not a number"),
    ("filter", "  qe_threshold: 7\n", "filter.qe_threshold = 7 is not a score in [0, 1]"),
])
def test_build_config_errors_stop_before_any_work(tiny_models, tmp_path, section, text, key):
    cfg = build_config(tiny_models, tmp_path, text)  # the config's last block is filter: text extends it
    assert yaml.safe_load(cfg.read_text())[section][next(iter(yaml.safe_load(text)))] is not None
    r = sdrrl("build", "--config", str(cfg))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert key in lines[0] and "Fix:" in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "work").exists()  # not even the work directory: no generate output


@pytest.mark.parametrize("text, key", [
    ('parallel:\n  allow_fewer: "false"\n', "parallel.allow_fewer = 'false' is a string, not a boolean"),
    ("parallel:\n  pairs: lots\n", "parallel.pairs = 'lots' is a string, not an integer"),
    ('code_switch:\n  p: "0.9"\n', "code_switch.p = '0.9' is a string, not a number. Fix: write 0.9 without quotes"),
])
def test_export_config_errors_stop_before_any_work(tmp_path, text, key):
    base = yaml.safe_load(FIXTURE_CONFIG.read_text())
    section = text.split(":")[0]
    base.pop(section)
    fixture_dir = FIXTURE_CONFIG.parent
    base["work_dir"] = str(fixture_dir / "work")
    cfg = tmp_path / "export.yaml"
    cfg.write_text(yaml.safe_dump(base) + text, encoding="utf-8")
    out = tmp_path / "registry"
    r = sdrrl("export", "--config", str(cfg), "--out", str(out))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert key in lines[0] and "Fix:" in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()


def test_every_problem_is_reported_at_once_one_line_each(tiny_models, tmp_path):
    cfg = build_config(tiny_models, tmp_path, "sample:\n  p_generated: 1e-3\n  seed: 1.5\n",
                       filter={"lid_enabled": "no", "qe_threshold": -0.1}, translate={"beam_size": "4"},
                       target_langs=["ind", "xyz"])
    r = sdrrl("build", "--config", str(cfg))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 6, r.stderr
    assert all(line.startswith(f"sdrrl build: error: {cfg}: ") and "Fix:" in line for line in lines)
    text = "\n".join(lines)
    for expected in ("filter.lid_enabled = 'no' is a string, not a boolean",
                     "filter.qe_threshold = -0.1 is not a score in [0, 1]",
                     "translate.beam_size = '4' is a string, not an integer. Fix: write 4 without quotes",
                     "sample.p_generated = '1e-3' is a string, not a number. Fix: write it as 0.001",
                     "sample.seed = 1.5 is a number, not an integer",
                     "Unknown language code 'xyz'"):
        assert expected in text
    assert not (tmp_path / "work").exists()


def test_check_type_is_strict_and_converts_only_int_to_float():
    assert configfile.check_type("k", 3, float) == (3.0, None)
    assert configfile.check_type("k", True, bool) == (True, None)
    assert configfile.check_type("k", None, int | None) == (None, None)
    assert configfile.check_type("k", ["a"], tuple[str, ...]) == (["a"], None)
    for value, hint, message in ((True, int, "is a boolean, not an integer"),
                                 ("0.5", float, "is a string, not a number"),
                                 ("true", bool, "is a string, not a boolean"),
                                 (1, bool, "is an integer, not a boolean"),
                                 (4.0, int, "not an integer. Fix: write 4."),
                                 (7, str, "is an integer, not a string"),
                                 ("ind", list[str], "is a string, not a list"),
                                 ([1], list[str], "k[0] = 1 is an integer, not a string")):
        _, err = configfile.check_type("k", value, hint)
        assert err is not None and message in str(err), (value, hint, str(err))
    assert configfile.check_range("p", 1.5, configfile.PROBABILITY) is not None
    assert configfile.check_range("p", 1.0, configfile.PROBABILITY) is None
    assert "positive integer" in str(configfile.check_range("n", 0, configfile.AT_LEAST_ONE))


def test_library_users_get_every_problem_in_one_error():
    from sdrrl.compose import config as compose_config
    from sdrrl.pipeline import config

    with pytest.raises(configfile.ConfigError) as err:
        config.from_dict({"max_rows": "10", "filter": {"max_repeats": 1, "min_length_ratio": 6.0}})
    assert len(err.value.problems) == 3 and "\n" not in str(err.value)
    with pytest.raises(configfile.ConfigError) as err:
        compose_config.from_mapping({"workers": -1, "code_switch": {"max_malformed_fraction": 2},
                                     "methods": ["nope"]})
    assert [p.problem.split(" ")[0] for p in err.value.problems] == ["workers", "code_switch.max_malformed_fraction",
                                                                      "Unknown"]
    # a config built in Python (not read from a mapping) gets its ranges checked by validate()
    with pytest.raises(configfile.ConfigError, match=r"filter.qe_threshold = 7 is not a score in \[0, 1\]"):
        config.PipelineConfig(filter=config.FilterConfig(qe_threshold=7)).validate()
    with pytest.raises(configfile.ConfigError, match="parallel.pairs = 0 is not a positive integer"):
        compose_config.ComposeConfig(parallel=compose_config.ParallelConfig(pairs=0)).validate()


# -- preflight: models and files before any model work ----------------------------------------------

def test_missing_local_translator_is_reported_before_generation(tiny_models, tmp_path):
    missing = tmp_path / "models" / "nllb-200-3.3B"
    cfg = build_config(tiny_models, tmp_path, translate={"model": str(missing)})
    r = sdrrl("build", "--config", str(cfg))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert f"translate.model: translation model path '{missing}' does not exist" in lines[0]
    assert "hub" not in lines[0].lower() and "download" not in lines[0].lower()
    assert not (tmp_path / "work").exists()  # nothing generated
    # the single-stage command of an earlier stage checks the later stages' models too
    r = sdrrl("generate", "--config", str(cfg))
    assert r.returncode == 2 and "translate.model" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "work" / "generate").exists()
    # a missing input and a missing QE checkpoint are reported in the same run
    cfg = build_config(tiny_models, tmp_path, input=str(tmp_path / "alpaca_data.jsonl"),
                       filter={"qe_model": str(tmp_path / "kiwi" / "checkpoints" / "model.ckpt")})
    r = sdrrl("build", "--config", str(cfg))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 2, r.stderr
    assert "input: instruction set path" in lines[0] and "filter.qe_model: QE model path" in lines[1]


def test_model_resolution_says_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    err = preflight.hf_model_problem("facebook/nllb-200-3.3B", "translate.model")
    assert "is not in the local Hugging Face cache" in str(err) and "HF_HUB_OFFLINE" in str(err)
    err = preflight.hf_model_problem("./models/nllb", "translate.model")
    assert "path './models/nllb' does not exist" in str(err)
    (tmp_path / "empty").mkdir()
    err = preflight.hf_model_problem(str(tmp_path / "empty"), "generate.model")
    assert "not a Hugging Face model folder (no config.json" in str(err)
    err = preflight.comet_model_problem(str(tmp_path / "empty"), "filter.qe_model")
    assert "has no checkpoints/model.ckpt" in str(err)
    assert isinstance(err, SdrrlError)


def test_preflight_accepts_the_tiny_models_and_checks_a_comet_encoder(tiny_models, tmp_path):
    assert preflight.hf_model_problem(str(tiny_models.llama), "generate.model") is None
    assert preflight.comet_model_problem(str(tiny_models.comet_qe), "filter.qe_model") is None
    # a copy of the QE checkpoint whose hparams.yaml names an encoder that is not here
    folder = tmp_path / "kiwi"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "model.ckpt").write_bytes(b"")
    (folder / "hparams.yaml").write_text(f"pretrained_model: {tmp_path / 'gone' / 'xlmr'}\n")
    err = preflight.comet_model_problem(str(folder), "filter.qe_model")
    assert err is not None and "encoder path" in str(err) and "does not exist" in str(err)


# -- loud emptiness: the per-language table, the warning, the failure --------------------------------

def test_build_fails_when_a_language_keeps_nothing_and_warns_under_half(tiny_models, tmp_path):
    """QE only (language ID and heuristics off), so the threshold alone decides: 1.0 rejects every
    translation of the random tiny models; then a threshold between the cached scores keeps a few."""
    cfg = build_config(tiny_models, tmp_path, filter={"qe_threshold": 1.0, "lid_enabled": False})
    r = sdrrl("build", "--config", str(cfg))
    assert r.returncode == 2, r.stderr[-3000:]
    work = tmp_path / "work"
    summary = json.loads((work / "filter" / "eng-ind.summary.json").read_text())
    n = summary["rejected"]
    assert summary["kept"] == 0 and n >= 6  # outputs are written: nothing finished is lost
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"qe_threshold 1.0 rejected all {n} translations of ind (3 rows)" in errors[0]
    assert "lang  rows  translated  kept  kept %" in r.stderr and f"qe_threshold 1.0: {n}" in r.stderr

    # the scores are cached: a threshold that keeps fewer than half costs no model work
    scores = sorted((e["score"] for e in read_jsonl(work / "filter" / "eng-ind.excluded.jsonl")), reverse=True)
    kept = max(1, (len(scores) - 1) // 2 - 1)
    while kept > 1 and scores[kept - 1] == scores[kept]:
        kept -= 1
    threshold = (scores[kept - 1] + scores[kept]) / 2  # between two (rounded) scores: no rounding surprise
    assert 0.0 <= threshold <= 1.0
    cfg = build_config(tiny_models, tmp_path, filter={"qe_threshold": threshold, "lid_enabled": False})
    r = sdrrl("build", "--config", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    expected = sum(s > threshold for s in scores)
    assert 0 < expected < len(scores) / 2
    assert f"warning: ind kept only {expected} of {len(scores)} translations" in r.stderr
    assert f"qe_threshold {threshold} rejected {len(scores) - expected}" in r.stderr


def test_export_preflight_names_every_missing_input_before_writing(tmp_path):
    base = yaml.safe_load(FIXTURE_CONFIG.read_text())
    base.update(work_dir=str(FIXTURE_CONFIG.parent / "work"), targets=["ind", "ces"], methods=["sdrrl", "sft"],
                code_switch={"dictionaries": str(tmp_path / "muse")},
                parallel={"corpus": str(tmp_path / "opus" / "{src}-{tgt}.tsv"), "pairs": 10})
    cfg = tmp_path / "export.yaml"
    cfg.write_text(yaml.safe_dump(base), encoding="utf-8")
    out = tmp_path / "registry"
    r = sdrrl("export", "--config", str(cfg), "--out", str(out))
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 4, r.stderr
    assert all(line.startswith("sdrrl export: error: preflight: ") and "Fix:" in line for line in lines)
    expected = ["filter/eng-ces.jsonl' does not exist",  # fixture work dir: ind only
                f"code_switch.dictionaries: path '{tmp_path / 'muse'}' does not exist",  # once for both pairs
                "opus/eng-ind.tsv' (for eng-ind) does not exist", "opus/eng-ces.tsv' (for eng-ces) does not exist"]
    assert sorted(next(i for i, line in enumerate(lines) if e in line) for e in expected) == [0, 1, 2, 3]
    assert not out.exists()
    (tmp_path / "muse").mkdir()
    r = sdrrl("export", "--config", str(cfg), "--out", str(out))
    assert "no bilingual dictionary en-id.txt (or id-en.txt) for eng-ind" in r.stderr
    assert "no bilingual dictionary en-cs.txt (or cs-en.txt) for eng-ces" in r.stderr and not out.exists()


def test_online_hub_answers_become_clear_problems(monkeypatch):
    """With the hub on, an uncached id is asked about (metadata only); the hub's answer is faked here
    (no network in tests), the wording around it is what is tested."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    repo = "sdrrl-test/not-a-model-anywhere"
    asked = []
    for error, expected in ((GatedRepoError("gated"), "is gated and this machine may not download it"),
                            (RepositoryNotFoundError("404"), "does not exist on the Hugging Face hub"),
                            (ConnectionError("down"), "cannot reach the Hugging Face hub")):
        def fake_auth_check(repo_id, error=error, **kw):
            asked.append(repo_id)
            raise error
        monkeypatch.setattr(huggingface_hub, "auth_check", fake_auth_check)
        err = preflight.hf_model_problem(repo, "generate.model")
        assert err is not None and expected in str(err) and "generate.model" in str(err)
    monkeypatch.setattr(huggingface_hub, "auth_check", lambda repo_id, **kw: asked.append(repo_id))
    assert preflight.hf_model_problem(repo, "generate.model") is None
    assert asked == [repo] * 4
