"""Composing every method from a fixture work directory and exporting the registry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.compose import helpers
from sdrrl.compose import methods
from sdrrl.compose.export import export
from sdrrl.errors import RegistryError, SdrrlError
from sdrrl.registry import validate

# What each method must hold for one pair: the paper's section 4.1 and Table 6, written out.
EXPECTED = {
    "tsft": {"ll", "tt"},
    "cit": {"lt"},  # the paper's direction: source question, target answer
    "xcot": {"ll", "tl", "tt"},
    "sdrrl": {"ll", "tl", "lt", "tt", "mt", "comp"},
    "sdrrl-no-tl-lt": {"ll", "tt", "mt", "comp"},
    "sdrrl-no-synth": {"ll", "tl", "lt", "tt", "mt", "comp"},
    "sdrrl-no-mt-comp": {"ll", "tl", "lt", "tt"},
    "sdrrl-no-cs": {"ll", "tl", "lt", "tt", "mt", "comp"},
    "sdrrl-only-mt-comp": {"mt", "comp"},
}
# question side, answer side for each transfer subset
SIDES = {"ll": ("eng", "eng"), "tl": ("ind", "eng"), "lt": ("eng", "ind"), "tt": ("ind", "ind")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    manifest = export(helpers.config(tmp), tmp / "out")
    return tmp / "out", manifest


def test_every_method_holds_exactly_its_subsets(exported):
    out, manifest = exported
    info = json.loads((out / "dataset_info.json").read_text())
    got: dict[str, set] = {}
    for name in info:
        if name == "sft_eng":
            continue
        method, pair, subset = name.split("_")
        assert pair == "eng-ind"
        got.setdefault(method, set()).add(subset)
    assert got == EXPECTED
    assert "sft_eng" in info and set(manifest.entries) == set(info)
    validate(out)  # LLaMA-Factory would read every entry and every row


def test_each_side_is_in_its_language_by_gcld3(exported):
    out, _ = exported
    checked = 0
    for method, subsets in EXPECTED.items():
        switched = method in ("xcot", "sdrrl", "sdrrl-no-tl-lt", "sdrrl-no-synth", "sdrrl-no-mt-comp")
        for kind in subsets & set(SIDES):
            data = helpers.rows(out / f"{method}_eng-ind_{kind}.jsonl")
            q_lang, a_lang = SIDES[kind]
            q_ok = 0
            for r in data:
                question = r["instruction"].split("\n\nAnswer in ")[0]  # CIT scaffolding aside
                q_ok += helpers.lang(question) in helpers.ACCEPT[q_lang]
                assert helpers.lang(r["output"]) in helpers.ACCEPT[a_lang], (method, kind, r["output"])
                checked += 1
            # a code-switched question mixes in the other language: most, not all, stay identifiable
            assert q_ok >= (0.7 * len(data) if switched else len(data)), (method, kind, q_ok, len(data))
    assert checked > 150
    sft = helpers.rows(out / "sft_eng.jsonl")
    assert len(sft) == 10 and all(helpers.lang(r["instruction"] + " " + r["output"]) == "en" for r in sft)


def test_answers_follow_d_synth_or_gold_and_rejected_translations_drop_rows(exported):
    out, manifest = exported
    filt = {r["id"]: r for r in helpers.rows(helpers.WORK / "filter" / "eng-ind.jsonl")}
    def answers(name):
        return [r["output"] for r in helpers.rows(out / f"{name}.jsonl")]
    synth_ll = [r["y"] if r["from"] == "D" else r["y_hat"] for r in filt.values()]
    assert answers("sdrrl-no-cs_eng-ind_ll") == synth_ll
    assert answers("sdrrl-no-synth_eng-ind_ll") == [r["y"] for r in filt.values()]
    assert answers("sdrrl_eng-ind_tt") == [r["y_mt"] if r["from"] == "D" else r["y_hat_mt"]
                                           for i, r in filt.items() if i not in (3, 5)]
    assert answers("tsft_eng-ind_tt") == [r["y_mt"] for i, r in filt.items() if i not in (3, 7)]
    e = manifest.entries
    assert e["sdrrl_eng-ind_tt"].dropped == {"x_mt rejected at qe: qe_below_threshold": 1, "y_hat_mt rejected at lid: off_target:en": 1}
    assert e["tsft_eng-ind_tt"].dropped == {"x_mt rejected at qe: qe_below_threshold": 1, "y_mt not translated": 1}
    assert e["sdrrl_eng-ind_ll"].dropped == {} and e["sdrrl_eng-ind_ll"].rows == 10


def test_code_switching_touches_questions_only_and_never_scaffolding(exported):
    out, _ = exported
    for kind in SIDES:
        cs = helpers.rows(out / f"sdrrl_eng-ind_{kind}.jsonl")
        plain = helpers.rows(out / f"sdrrl-no-cs_eng-ind_{kind}.jsonl")
        assert [r["output"] for r in cs] == [r["output"] for r in plain]
        assert len(cs) == len(plain)
    switched = sum(a["instruction"] != b["instruction"] for kind in SIDES
                   for a, b in zip(helpers.rows(out / f"sdrrl_eng-ind_{kind}.jsonl"),
                                   helpers.rows(out / f"sdrrl-no-cs_eng-ind_{kind}.jsonl")))
    assert switched >= 10
    for name in ("tsft_eng-ind_ll", "tsft_eng-ind_tt", "cit_eng-ind_lt"):
        src = helpers.rows(helpers.WORK / "filter" / "eng-ind.jsonl")
        field = "x_mt" if name.endswith(("_tl", "_tt")) else "x"
        questions = {r[field] for r in src}
        for r in helpers.rows(out / f"{name}.jsonl"):
            assert r["instruction"].split("\n\nAnswer in ")[0] in questions  # no switching in baselines
    cit = helpers.rows(out / "cit_eng-ind_lt.jsonl")  # English question, Indonesian answer asked for
    assert len(cit) == 9 and all(r["instruction"].endswith("\n\nAnswer in Indonesian.") for r in cit)
    assert not (out / "cit_eng-ind_tl.jsonl").exists()


def test_cit_reverse_direction_is_an_option(tmp_path):
    """baselines.cit_subsets [lt, tl] adds the opposite direction: target question, English answer."""
    cfg = helpers.config(tmp_path, methods=["cit"], baselines={"cit_subsets": ["lt", "tl"]})
    export(cfg, tmp_path / "out")
    tl = helpers.rows(tmp_path / "out" / "cit_eng-ind_tl.jsonl")
    questions = {r["x_mt"] for r in helpers.rows(helpers.WORK / "filter" / "eng-ind.jsonl")}
    assert tl and all(r["instruction"].endswith("\n\nAnswer in English.") for r in tl)
    assert all(r["instruction"].split("\n\nAnswer in ")[0] in questions for r in tl)
    assert all(helpers.lang(r["output"]) in helpers.ACCEPT["eng"] for r in tl)
    assert (tmp_path / "out" / "cit_eng-ind_lt.jsonl").exists()


def test_manifest_records_counts_config_and_input_hashes(exported):
    out, manifest = exported
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["config"]["code_switch"]["p"] == 0.15 and saved["config"]["parallel"]["pairs"] == 40
    for name, entry in saved["entries"].items():
        lines = (out / entry["file"]).read_text(encoding="utf-8").count("\n")
        assert entry["rows"] == lines, name
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest(), name
        assert entry["method"] == name.split("_")[0] and entry["source"] == "eng"
        for src in entry["inputs"]:
            path = Path(src.get("path") or src.get("corpus"))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == src["sha256"], (name, path)
        assert isinstance(entry["dropped"], dict)
    tt = saved["entries"]["sdrrl_eng-ind_tt"]
    assert tt["config"]["code_switch_p"] == 0.15 and tt["config"]["responses"] == "synth"
    assert saved["entries"]["sdrrl-no-cs_eng-ind_tt"]["config"]["code_switch_p"] is None
    # identical datasets are one file under two names
    same = saved["entries"]["sdrrl-no-mt-comp_eng-ind_ll"]
    assert same["same_content_as"] == "sdrrl_eng-ind_ll"
    assert os.path.samefile(out / same["file"], out / "sdrrl_eng-ind_ll.jsonl")


def test_export_is_reproducible_and_parallel_workers_give_the_same_bytes(tmp_path):
    work = helpers.copy_work(tmp_path / "work")
    (work / "filter" / "eng-ces.jsonl").write_bytes((work / "filter" / "eng-ind.jsonl").read_bytes())
    dicts = tmp_path / "dicts"
    dicts.mkdir()
    for f in ("en-id.txt", "en-cs.txt"):
        (dicts / f).write_bytes((helpers.DICTS / f).read_bytes())
    common = dict(targets=["ind", "ces"], methods=["sdrrl", "tsft"], code_switch={"dictionaries": str(dicts)},
                  duplicates="copy", parallel={"pairs": 30})
    export(helpers.config(tmp_path, work, workers=1, **common), tmp_path / "a")
    export(helpers.config(tmp_path, work, workers=2, **common), tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").glob("*.jsonl"))
    assert len(files) == 16
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # D_LL without switching is the same for every target: composed once
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["entries"]["tsft_eng-ces_ll"]["same_content_as"] == "tsft_eng-ind_ll"
    # different targets switch with different dictionaries
    assert (tmp_path / "a" / "sdrrl_eng-ind_ll.jsonl").read_bytes() != (tmp_path / "a" / "sdrrl_eng-ces_ll.jsonl").read_bytes()


def test_a_pair_with_no_translations_left_is_named_and_the_rest_is_kept(tmp_path):
    work = helpers.copy_work(tmp_path / "work")
    path = work / "filter" / "eng-ind.jsonl"
    rows = [dict(r, x_mt=None) for r in helpers.rows(path)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = helpers.config(tmp_path, work, methods=["sdrrl"])
    with pytest.raises(SdrrlError, match=r"sdrrl_eng-ind_tl would be empty: all 10 rows .*x_mt not translated: 9, x_mt rejected at qe: qe_below_threshold: 1"):
        export(cfg, tmp_path / "out")
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert set(info) == {"sdrrl_eng-ind_ll", "sdrrl_eng-ind_lt", "sdrrl_eng-ind_mt", "sdrrl_eng-ind_comp"}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["errors"]) == 2 and not (tmp_path / "out" / "sdrrl_eng-ind_tt.jsonl").exists()


def test_malformed_dictionary_lines_are_counted_in_the_manifest(tmp_path):
    dicts = tmp_path / "dicts"
    dicts.mkdir()
    good = (helpers.DICTS / "en-id.txt").read_text(encoding="utf-8")
    (dicts / "en-id.txt").write_text(good + "a line with four words\nlonely\n", encoding="utf-8")
    cfg = helpers.config(tmp_path, methods=["sdrrl-no-mt-comp"], code_switch={"dictionaries": str(dicts)})
    manifest = export(cfg, tmp_path / "out")
    assert any("skipped 2 malformed line(s)" in n for n in manifest.notes)
    lines = len(good.splitlines())
    assert any(f"line {lines + 1}, {lines + 2}" in n for n in manifest.notes)
    used = [src for src in manifest.entries["sdrrl-no-mt-comp_eng-ind_ll"].inputs
            if src["path"].endswith("en-id.txt")]
    assert used and used[0]["malformed_lines"] == 2 and used[0]["lines"] == lines + 2
    assert used[0]["malformed_examples"] == [lines + 1, lines + 2]
    bad = helpers.config(tmp_path, methods=["sdrrl-no-mt-comp"],
                         code_switch={"dictionaries": str(dicts), "max_malformed_fraction": 0.001})
    with pytest.raises(SdrrlError, match="2 of .* lines are malformed"):
        export(bad, tmp_path / "out2")


def test_registry_merges_with_an_existing_one_and_never_overwrites_silently(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.jsonl"},
                                                       "sft_eng": {"file_name": "other.jsonl"}}))
    cfg = helpers.config(tmp_path, methods=["sft", "sdrrl-only-mt-comp"])
    with pytest.raises(RegistryError, match="already has a different entry 'sft_eng'"):
        export(cfg, out)
    export(cfg, out, overwrite=True)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["mine"] == {"file_name": "mine.jsonl"} and info["sft_eng"]["file_name"] == "sft_eng.jsonl"
    export(helpers.config(tmp_path, methods=["tsft"]), out)  # a second export adds to the manifest
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"sft_eng", "sdrrl-only-mt-comp_eng-ind_mt", "tsft_eng-ind_tt"} <= set(manifest["entries"])


def test_config_errors_name_the_fix(tmp_path):
    with pytest.raises(SdrrlError, match="Unknown method"):
        helpers.config(tmp_path, methods=["sdrl"])
    with pytest.raises(SdrrlError, match=r"Unknown config key\(s\) code_swich"):
        helpers.config(tmp_path, code_swich={"p": 0.1})
    with pytest.raises(SdrrlError, match="not a probability"):
        helpers.config(tmp_path, code_switch={"p": 1.5})
    with pytest.raises(SdrrlError, match="use 'ind'"):
        helpers.config(tmp_path, targets=["id"])
    cfg = helpers.config(tmp_path, methods=["xcot"], code_switch={"dictionaries": None})
    with pytest.raises(SdrrlError, match="code_switch.dictionaries is not set"):
        export(cfg, tmp_path / "out")


def test_shipped_registry_names_every_method_and_language():
    shipped = json.loads((helpers.HERE.parents[2] / "dataset_info" / "dataset_info.json").read_text())
    assert shipped == methods.shipped_registry()
    assert "sft_eng" in shipped and "sdrrl_eng-ces_comp" in shipped and "xcot_eng-pol_tl" in shipped
    assert all(spec["file_name"] == f"{name}.jsonl" for name, spec in shipped.items())


def test_shipped_registry_is_generated_by_its_script(tmp_path, monkeypatch):
    """dataset_info/dataset_info.json is what scripts/generate_dataset_info.py writes; --check fails
    on a stale or missing file and the script (re)writes it."""
    script = helpers.HERE.parents[2] / "scripts" / "generate_dataset_info.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_dataset_info", script)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    target = tmp_path / "dataset_info" / "dataset_info.json"
    monkeypatch.setattr(generator, "PATH", target)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    assert generator.main(["--check"]) == 1  # missing
    assert generator.main([]) == 0 and generator.main(["--check"]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == methods.shipped_registry()
    target.write_text(target.read_text(encoding="utf-8").replace('"sft_eng"', '"sft_fra"'), encoding="utf-8")
    assert generator.main(["--check"]) == 1  # stale


def test_cli_export_writes_the_registry(tmp_path):
    cfg = tmp_path / "compose.yaml"
    cfg.write_text(f"work_dir: {helpers.WORK}\ntargets: [ind]\nmethods: [sft, sdrrl-no-cs]\n"
                   f"parallel: {{corpus: '{helpers.PARALLEL}', pairs: 20}}\n")
    sdrrl = Path(sys.executable).parent / "sdrrl"
    done = subprocess.run([str(sdrrl), "export", "--config", str(cfg), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "exported 7 dataset(s)" in done.stdout
    validate(tmp_path / "out")
    bad = subprocess.run([str(sdrrl), "export", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Config file not found" in bad.stderr


def test_fast_lines_are_byte_identical_to_registry_write_dataset(tmp_path):
    from collections import Counter

    from sdrrl.compose.subsets import SubsetSpec, json_string, line, transfer_lines
    from sdrrl.registry import write_dataset

    texts = ['He said "hi"\n\tand left \\ back', "Ünïcödé ✓ 日本語 ไทย", "emoji 🦊 and \u2028 sep \x07",
             "  leading and trailing  ", "</script> & <b>"]
    pairs = [(q, a) for q in texts for a in reversed(texts)]
    write_dataset(tmp_path, "ref", [{"instruction": q, "input": "", "output": a} for q, a in pairs])
    rows = [{"id": i, "from": "D", "y": a, "y_hat": None} for i, (_, a) in enumerate(pairs)]
    fast = transfer_lines(SubsetSpec("ll", "synth"), rows, [json_string(q) for q, _ in pairs],
                          lambda f: [json_string(r[f]) for r in rows], Counter(), lambda i, f: "?")
    assert (tmp_path / "ref.jsonl").read_text(encoding="utf-8") == "".join(fast)
    assert fast[0] == line(json_string(pairs[0][0]), json_string(pairs[0][1]))
    assert json_string("   ") is None and json_string(None) is None


def test_export_fills_the_shipped_registry_without_conflicts(tmp_path):
    from sdrrl.compose.config import sample_config

    out = tmp_path / "dataset_info"
    out.mkdir()
    shipped = helpers.HERE.parents[2] / "dataset_info" / "dataset_info.json"
    (out / "dataset_info.json").write_bytes(shipped.read_bytes())
    work = helpers.copy_work(tmp_path / "work")
    (work / "filter" / "eng-ces.jsonl").write_bytes((work / "filter" / "eng-ind.jsonl").read_bytes())
    manifest = export(sample_config(work, targets=["ind", "ces"], methods=["sft", "sdrrl"], workers=1), out)
    assert len(manifest.last_export) == 13
    after = json.loads((out / "dataset_info.json").read_text())
    assert after == json.loads(shipped.read_text())  # every exported name was already registered
    validate(out, names=manifest.last_export)


def test_sample_config_uses_the_shipped_dictionaries_and_corpora():
    from sdrrl.compose.config import sample_config

    cfg = sample_config(helpers.WORK)
    assert cfg.code_switch.p == 0.15 and cfg.seed == 42
    assert cfg.path(cfg.code_switch.dictionaries) == helpers.DICTS
    for tgt in ("ind", "ces"):
        assert Path(cfg.parallel.corpus.format(src="eng", tgt=tgt)).is_file()
        assert len(Path(cfg.parallel.corpus.format(src="eng", tgt=tgt)).read_text().splitlines()) > cfg.parallel.pairs


def test_shipped_paper_config_loads_and_holds_the_papers_values():
    from pathlib import Path

    from sdrrl import catalog
    from sdrrl.compose import config as cc

    path = Path(cc.__file__).with_name("paper.yaml")
    cfg = cc.load(path)
    default = cc.from_mapping({})
    for section in ("parallel", "completion", "templates", "baselines"):
        assert getattr(cfg, section) == getattr(default, section), section
    assert cfg.code_switch.p == 0.15 and cfg.parallel.pairs == 1000 and cfg.seed == default.seed
    assert cfg.methods == catalog.method_names()
    assert list(cfg.targets) == "ces dan ukr bul fin hun nob ind jpn kor por slv vie pol".split()


@pytest.mark.parametrize("change", ["from", "x"])
def test_a_filter_file_made_from_another_d_synth_is_refused(tmp_path, change):
    """Re-sampling D_synth (another seed) or a changed D, then rebuilding only some targets, leaves
    a stale filter file: its rows would pair a new question with an old translated answer, or follow
    other D/G draws than D_LL. The export names the pair and the fix instead of mixing them."""
    work = helpers.copy_work(tmp_path / "work")
    path = work / "sample" / "synth.jsonl"
    rows = helpers.rows(path)
    if change == "from":
        rows[4]["from"] = "G" if rows[4]["from"] == "D" else "D"
    else:
        rows[4]["x"] = "Name a river in Europe."
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = helpers.config(tmp_path, work, methods=["sdrrl"])
    with pytest.raises(SdrrlError, match=r"eng-ind\.jsonl.*1 row\(s\).*another D_synth.*sdrrl translate --tgt ind"):
        export(cfg, tmp_path / "out")
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert set(info) == {"sdrrl_eng-ind_ll", "sdrrl_eng-ind_mt", "sdrrl_eng-ind_comp"}  # the rest is kept


def test_two_exports_at_once_in_one_process_keep_their_own_worker_state(tmp_path):
    """The per-pair workers get their state through fork, not a module global: two exports running in
    two threads of one process (with worker processes each) write exactly what each writes alone."""
    import threading

    work = helpers.copy_work(tmp_path / "work")
    (work / "filter" / "eng-ces.jsonl").write_bytes((work / "filter" / "eng-ind.jsonl").read_bytes())
    configs = {name: helpers.config(tmp_path, work, targets=["ind", "ces"], methods=methods, workers=2, seed=seed,
                                    parallel={"pairs": 20})
               for name, methods, seed in (("a", ["sdrrl"], 42), ("b", ["cit", "xcot"], 7))}
    for name, cfg in configs.items():
        export(cfg, tmp_path / f"alone-{name}")
    failures = []

    def run(name):
        try:
            export(configs[name], tmp_path / f"together-{name}")
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            failures.append(err)
    threads = [threading.Thread(target=run, args=(name,)) for name in configs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    for name in configs:
        alone = {p.name: p.read_bytes() for p in (tmp_path / f"alone-{name}").glob("*.jsonl")}
        together = {p.name: p.read_bytes() for p in (tmp_path / f"together-{name}").glob("*.jsonl")}
        assert len(alone) >= 8 and together == alone


def test_a_manifest_entry_is_read_by_attribute_and_a_stranger_field_is_an_error(tmp_path, exported):
    from sdrrl.compose.manifest import Manifest

    out, manifest = exported
    again = Manifest.read(out)
    assert again.entries == manifest.entries and again.to_json() == json.loads((out / "manifest.json").read_text())
    sft = again.entries["sft_eng"]
    assert (sft.method, sft.subset, sft.target, sft.source) == ("sft", None, None, "eng")
    data = again.to_json()
    data["entries"]["sft_eng"]["colour"] = "blue"
    with pytest.raises(SdrrlError, match=r"entry 'sft_eng' has fields this sdrrl version does not know: \['colour'\]"):
        Manifest.from_json(data, "manifest.json")
    del data["entries"]["sft_eng"]["colour"], data["entries"]["sft_eng"]["rows"]
    with pytest.raises(SdrrlError, match=r"entry 'sft_eng' lacks \['rows'\]"):
        Manifest.from_json(data, "manifest.json")
