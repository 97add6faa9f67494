"""The exported registry trains the tiny LLaMA through the real, unmodified `llamafactory-cli train`."""

from __future__ import annotations

import json
import re

import pytest

from fixtures.compose import helpers
from lf_utils import train_tiny
from sdrrl.compose.export import export


@pytest.mark.slow
def test_exported_sdrrl_subsets_train_the_tiny_llama(tmp_path, tiny_cache_dir):
    from sdrrl.tiny import tiny_llama

    model = tiny_llama(tiny_cache_dir / "tiny-models")  # the same cache as the tiny_models fixture
    out = tmp_path / "registry"
    manifest = export(helpers.config(tmp_path, methods=["sdrrl"], parallel={"pairs": 12}), out)
    names = [n for n in manifest.entries if n.startswith("sdrrl_eng-ind_")]
    assert sorted(s.rsplit("_", 1)[1] for s in names) == ["comp", "ll", "lt", "mt", "tl", "tt"]
    total = sum(manifest.entries[n].rows for n in names)
    proc, run_dir = train_tiny(tmp_path, model, out, names, max_steps=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    seen = re.search(r"Num examples = ([\d,]+)", log)
    assert seen and int(seen.group(1).replace(",", "")) == total  # every row of every subset reached the trainer
    losses = [json.loads(line).get("loss") for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    assert losses and all(isinstance(x, float) and x > 0 for x in losses if x is not None)
