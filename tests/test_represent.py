"""`sdrrl represent`: the representation analysis of Figure 2 on the tiny Llama (real transformers,
LLaMA-Factory template, scikit-learn t-SNE, matplotlib)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I drink a cup of coffee every morning.",
    "The library opens at nine o'clock.",
    "Rain is expected tomorrow in the mountains.",
    "She wrote a long letter to her grandmother.",
    "Our train leaves from platform four.",
]


def _tsv(path, pairs, header=("eng", "ind")):
    lines = ["\t".join(header)] + [f"{s}\t{t}" for s, t in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(argv):
    from sdrrl.cli import main

    return main(["represent", *map(str, argv)])


def test_identical_inputs_are_retrieved_and_derangements_are_not(tmp_path, tiny_models, capsys):
    same = _tsv(tmp_path / "same.tsv", [(s, s) for s in SENTENCES])
    shifted = _tsv(tmp_path / "shifted.tsv", [(s, SENTENCES[(i + 1) % len(SENTENCES)]) for i, s in enumerate(SENTENCES)])
    assert _run(["--model", tiny_models.llama, "--name", "base", "--src", "eng", "--tgt", "ind",
                 "--parallel", same, "--batch-size", "4", "--out", tmp_path / "same"]) == 0
    assert _run(["--model", tiny_models.llama, "--tgt", "ind", "--parallel", shifted, "--batch-size", "4",
                 "--out", tmp_path / "shifted"]) == 0
    out = capsys.readouterr().out
    assert "top-1 retrieval 1.0000" in out and "wrote" in out

    same_r = json.loads((tmp_path / "same" / "representation.json").read_text())
    assert set(same_r) >= {"models", "src", "tgt", "plot"} and same_r["plot"] == "representation.png"
    assert (same_r["src"], same_r["tgt"]) == ("eng", "ind")
    (m,) = same_r["models"]
    assert set(m) == {"name", "path", "mean_cos_parallel", "mean_cos_random", "retrieval_top1", "n"}
    assert m["name"] == "base" and m["n"] == len(SENTENCES)
    assert m["retrieval_top1"] == 1.0
    assert m["mean_cos_parallel"] == pytest.approx(1.0, abs=1e-4)
    assert m["mean_cos_random"] < m["mean_cos_parallel"] - 1e-3

    (d,) = json.loads((tmp_path / "shifted" / "representation.json").read_text())["models"]
    # every source sentence's nearest target is itself, one row away: its partner is never first
    assert d["retrieval_top1"] == 0.0
    assert d["mean_cos_parallel"] < m["mean_cos_parallel"] - 1e-3
    png = (tmp_path / "same" / "representation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not [p for p in (tmp_path / "same").iterdir() if p.name.startswith(".")]  # no temp files left


def test_numbers_are_those_of_the_unpadded_last_token_states(tmp_path, tiny_models):
    """Batched, left-padded states equal one-at-a-time forward passes; the numbers follow from them."""
    import torch
    from sdrrl.pipeline.generate import render_prompts
    from sdrrl.representation import analyse
    from transformers import AutoModelForCausalLM

    pairs = [(s, " ".join(reversed(s.split()))) for s in SENTENCES]  # same words, another order
    result = analyse([str(tiny_models.llama)], "eng", "ind", tmp_path / "out", n=5,
                     parallel=_tsv(tmp_path / "p.tsv", pairs), batch_size=3, log=lambda *_: None)
    (m,) = result["models"]
    assert m["n"] == 5

    prompts, _ = render_prompts(str(tiny_models.llama), "default", [s for s, _ in pairs[:5]] + [t for _, t in pairs[:5]])
    model = AutoModelForCausalLM.from_pretrained(tiny_models.llama).eval()
    with torch.inference_mode():
        vecs = np.stack([model(input_ids=torch.tensor([p]), output_hidden_states=True).hidden_states[-1][0, -1].numpy()
                         for p in prompts]).astype(np.float64)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs[:5] @ vecs[5:].T
    assert m["mean_cos_parallel"] == pytest.approx(np.diag(sims).mean(), abs=1e-4)
    assert m["mean_cos_random"] == pytest.approx(sims[~np.eye(5, dtype=bool)].mean(), abs=1e-4)
    assert m["retrieval_top1"] == pytest.approx(np.mean(sims.argmax(1) == np.arange(5)))
    assert 0.0 < m["mean_cos_parallel"] < 0.9999  # reordered words are not the same input


def test_default_sentences_are_flores_dev_and_bad_input_is_one_line(tmp_path, tiny_models, monkeypatch, capsys):
    monkeypatch.setenv("SDRRL_EVAL_DATA", str(resources.files("sdrrl").joinpath("data/eval_mini")))
    assert _run(["--model", tiny_models.llama, "--model", tiny_models.llama, "--tgt", "ind", "-n", "3",
                 "--out", tmp_path / "flores"]) == 0
    result = json.loads((tmp_path / "flores" / "representation.json").read_text())
    assert [m["n"] for m in result["models"]] == [3, 3] and "FLORES dev" in result["data"]
    assert len({m["name"] for m in result["models"]}) == 2  # two panels, two names
    capsys.readouterr()

    assert _run(["--model", tiny_models.llama, "--tgt", "ind", "--parallel", tmp_path / "nope.tsv",
                 "--out", tmp_path / "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Parallel file not found" in err and "Fix:" in err
    assert _run(["--model", tmp_path / "no-model", "--tgt", "ind", "-n", "2", "--parallel",
                 _tsv(tmp_path / "two.tsv", [("a b", "c d"), ("e f", "g h")]), "--out", tmp_path / "y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no-model" in err
    assert not (tmp_path / "y" / "representation.json").exists()
