"""Many languages in one model (beyond the paper): one registry holding two sources' (eng, fra) and
two targets' (ind, ces) SDRRL subsets, mixed by the multi recipe's settings through LLaMA-Factory's
own loading (counted per subset) and trained through the real `llamafactory-cli train`.

The French work directory and the ces / fra rows are the English/Indonesian fixture rows tagged
with their pair (a tag in every text): this test is about mixing and training, not translation
quality, and the tags make every example traceable to the one subset it came from.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fixtures.compose import helpers
from lf_utils import offline_env, tiny_train_args, train_tiny
from sdrrl import recipes
from sdrrl.compose.export import export
from sdrrl.registry import validate

SOURCES, TARGETS = ("eng", "fra"), ("ind", "ces")
HERE = Path(__file__).resolve().parent


def _tag(text, tag):
    return f"{text} [{tag}]" if isinstance(text, str) else text


def _work(tmp: Path, src: str) -> Path:
    """A work directory for ``src`` with filter files for both targets (eng-ind: the real fixture)."""
    work = tmp / f"work_{src}"
    shutil.copytree(helpers.WORK, work)
    (work / "filter" / "eng-ind.excluded.jsonl").unlink()  # rejections by id: kept out of the copies
    synth = helpers.rows(helpers.WORK / "sample" / "synth.jsonl")
    if src != "eng":
        synth = [{**r, **{k: _tag(r[k], src) for k in ("x", "y", "y_hat")}} for r in synth]
        (work / "filter" / "eng-ind.jsonl").unlink()
    (work / "sample" / "synth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synth), encoding="utf-8")
    by_id = {r["id"]: r for r in synth}
    for tgt in TARGETS:
        if (src, tgt) == ("eng", "ind"):
            continue
        rows = []
        for r in helpers.rows(helpers.WORK / "filter" / "eng-ind.jsonl"):
            s = by_id[r["id"]]
            rows.append({**r, "x": s["x"], "y": s["y"], "y_hat": s["y_hat"],
                         **{k: _tag(r[k], f"{src}-{tgt}") for k in ("x_mt", "y_mt", "y_hat_mt")}})
        (work / "filter" / f"{src}-{tgt}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return work


def _resources(tmp: Path) -> tuple[Path, Path]:
    dicts, par = tmp / "dicts", tmp / "parallel"
    shutil.copytree(helpers.DICTS, dicts)
    (dicts / "fr-id.txt").write_text((helpers.DICTS / "en-id.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (dicts / "fr-cs.txt").write_text((helpers.DICTS / "en-cs.txt").read_text(encoding="utf-8"), encoding="utf-8")
    par.mkdir()
    for src in SOURCES:
        for tgt in TARGETS:
            lines = (helpers.SAMPLE / "parallel" / f"eng-{tgt}.tsv").read_text(encoding="utf-8").splitlines()
            body = [ln for ln in lines if ln.split("\t") != ["eng", tgt]]
            if src != "eng":
                body = [f"{a} [{src}]\t{b} [{src}]" for a, b in (ln.split("\t") for ln in body)]
            (par / f"{src}-{tgt}.tsv").write_text("\n".join(body) + "\n", encoding="utf-8")
    return dicts, par


@pytest.fixture(scope="module")
def multi_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    dicts, par = _resources(tmp)
    out = tmp / "registry"
    for src in SOURCES:  # one registry: the second export adds its entries beside the first's
        # the "French" data are the English fixtures, tagged: no language check would pass them as French
        cfg = helpers.config(tmp, work=_work(tmp, src), source=src, targets=list(TARGETS), methods=["sdrrl"],
                             code_switch={"p": 1.0, "dictionaries": str(dicts)},
                             parallel={"corpus": str(par / "{src}-{tgt}.tsv"), "pairs": 12},
                             language_check={"enabled": False})
        export(cfg, out)
    return tmp, out


def _subset_rows(out: Path, names: list[str]) -> dict[tuple[str, str], set[str]]:
    where: dict[tuple[str, str], set[str]] = {}
    for name in names:
        for r in helpers.rows(out / f"{name}.jsonl"):
            prompt = r["instruction"] + ("\n" + r["input"] if r["input"] else "")
            where.setdefault((prompt, r["output"]), set()).add(name)
    return where


def test_one_registry_holds_every_source_and_target(multi_export):
    _, out = multi_export
    info = json.loads((out / "dataset_info.json").read_text())
    names = recipes.multi_dataset_names("sdrrl", SOURCES, TARGETS)
    assert len(names) == 24 and set(names) == set(info)
    validate(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {(e["source"], e["target"]) for e in manifest["entries"].values()} == {
        (s, t) for s in SOURCES for t in TARGETS}


def test_recipe_mix_is_equal_per_language_and_subset(multi_export, tiny_models):
    """The multi recipe's mixing settings, through LLaMA-Factory's own dataset loading: every
    example traced back to its subset; interleave_over gives each subset the same count (the
    largest subset's size), the smaller ones oversampled."""
    tmp, out = multi_export
    names = recipes.multi_dataset_names("sdrrl", SOURCES, TARGETS)
    recipe = recipes.as_dict(recipes.RECIPES["sdrrl_llama2_multi"])
    args = tiny_train_args(tiny_models.llama, out, names, tmp / "mix_out", mix_strategy=recipe["mix_strategy"])
    assert recipe["mix_strategy"] == "interleave_over" and "interleave_probs" not in recipe
    (tmp / "mix_args.json").write_text(json.dumps(args))
    proc = subprocess.run([sys.executable, str(HERE / "lf_mix.py"), str(tmp / "mix_args.json"), str(tmp / "mix.json")],
                          env=offline_env(), capture_output=True, text=True, timeout=600, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    examples = json.loads((tmp / "mix.json").read_text())
    where = _subset_rows(out, names)
    counts: Counter = Counter()
    for prompt, response in examples:
        home = where.get((prompt, response))
        assert home is not None and len(home) == 1, (prompt[:80], home)  # traced to exactly one subset
        counts[next(iter(home))] += 1
    sizes = {n: sum(1 for _ in open(out / f"{n}.jsonl", encoding="utf-8")) for n in names}
    assert len(set(sizes.values())) > 1  # subsets of different sizes ...
    assert set(counts) == set(names)
    assert set(counts.values()) == {max(sizes.values())}  # ... each contributes equally
    per_lang = Counter()
    for n, c in counts.items():
        per_lang[n.split("_")[1]] += c
    assert len(set(per_lang.values())) == 1 and len(per_lang) == 4


@pytest.mark.slow
def test_tiny_model_trains_on_the_two_source_two_target_export(multi_export, tiny_models):
    tmp, out = multi_export
    names = recipes.multi_dataset_names("sdrrl", SOURCES, TARGETS)
    run = tmp / "train"
    run.mkdir()
    proc, run_dir = train_tiny(run, tiny_models.llama, out, names, max_steps=3, mix_strategy="interleave_over")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sizes = [sum(1 for _ in open(out / f"{n}.jsonl", encoding="utf-8")) for n in names]
    seen = re.search(r"Num examples = ([\d,]+)", proc.stdout + proc.stderr)
    assert seen and int(seen.group(1).replace(",", "")) == len(names) * max(sizes)
    losses = [json.loads(line).get("loss") for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    assert losses and all(isinstance(x, float) and x > 0 for x in losses if x is not None)
