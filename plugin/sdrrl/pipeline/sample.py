"""D_synth = Sample(D) u Sample(G) (eq. 4): each row takes the gold answer y or the generated
answer y_hat with equal probability, seeded so the same seed gives the same D_synth."""

from __future__ import annotations

import random
from pathlib import Path

from sdrrl import layout
from sdrrl.errors import SdrrlError
from sdrrl.io import read_jsonl
from sdrrl.layout import SynthRow
from sdrrl.pipeline import workdir
from sdrrl.pipeline.progress import say


def choose_sources(ids: list[str], seed: int, p_generated: float = 0.5) -> list[str]:
    """"G" or "D" for each row, one seeded draw per row in D's order."""
    rng = random.Random(seed)
    return ["G" if rng.random() < p_generated else "D" for _ in ids]


def dependencies(work: Path, seed: int, p_generated: float) -> layout.StageDeps:
    """What D_synth depends on: D, G, and the seeded draw (no model output of its own)."""
    return layout.stage_deps("sample", work, assembly={"seed": seed, "p_generated": p_generated})


def run_sample(work: Path, seed: int = 42, p_generated: float = 0.5) -> dict:
    source = list(read_jsonl(layout.source_path(work)))
    responses = {r["id"]: r.get("response") for r in workdir.read_output(layout.responses_path(work), "generate")}
    workdir.check_generation(work, "sample")
    missing = [r["id"] for r in source if not isinstance(responses.get(r["id"]), str)]
    if missing:
        raise SdrrlError(f"{len(missing)} row(s) of D have no generated response (first: {missing[:5]}).",
                         "run `sdrrl generate` on the same work directory first (it resumes).")
    froms = choose_sources([r["id"] for r in source], seed, p_generated)
    rows: list[SynthRow] = [{"id": r["id"], "from": f, "x": layout.question(r), "y": r["output"],
                             "y_hat": responses[r["id"]]} for r, f in zip(source, froms)]
    workdir.write_output(layout.synth_path(work), rows, deps=dependencies(work, seed, p_generated))
    n_g = froms.count("G")
    say(f"sample: D_synth has {len(rows)} rows, {n_g} with the generated answer (G) and {len(rows) - n_g} "
        f"with the gold answer (D), seed {seed}, p(G)={p_generated}; written to {layout.synth_path(work)}.")
    return {"rows": len(rows), "from_G": n_g, "from_D": len(rows) - n_g}
