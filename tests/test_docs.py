"""Docs that cannot lie: every fenced block of the README and the guides is marked, and run or checked.

The marks and what each one makes the test do: tests/docs_check.py and docs/CONTRACTS.md ("The docs
test"). Each page runs in its own scratch copy of the checkout, offline, on the tiny models.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import docs_check as dc
from sdrrl import cli

REPO = dc.REPO
PAGES = dc.pages()
README_BUDGET = 150  # lines: the README is a front door, the guides hold the rest


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_page(page, tmp_path, tiny_models, tiny_cache_dir):
    """Marks, then links and names in the prose, then the blocks in order: run, checked dry, loaded."""
    problems = [p for b in dc.blocks(page) for p in dc.mark_problems(b)]
    problems += dc.prose_problems(page)
    env = dc.base_env(SDRRL_CACHE=str(tiny_cache_dir))
    run = dc.run_page(page, dc.scratch_checkout(tmp_path / "work"), env)
    assert not problems + run.problems, "\n\n".join(problems + run.problems)


def test_sdrrl_help_names_every_guide_and_each_command_its_own():
    proc = subprocess.run([str(dc.BIN / "sdrrl"), "--help"], capture_output=True, text=True, check=True)
    for guide in cli.GUIDES:
        assert guide in proc.stdout, guide
        assert (REPO / guide).is_file(), f"{guide} is named by sdrrl --help but does not exist"
    on_disk = {str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")}
    assert on_disk == set(cli.GUIDES), "every page in docs/ is a guide of cli.GUIDES, and only those"
    for name, (_, _, guide) in cli.COMMANDS.items():
        assert guide in cli.GUIDES, (name, guide)
        sub = cli.build_parser(name)._subparsers._group_actions[0].choices[name]
        assert sub.format_help().rstrip().endswith(f"guide: {guide}"), name


def test_readme_is_a_front_door_that_links_every_guide():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_BUDGET
    linked = {target for _, _, target in dc.LINK.findall(text)}
    assert set(cli.GUIDES) <= linked, sorted(set(cli.GUIDES) - linked)
    # the two commands, exactly as they have always been (and .ci/run runs the second)
    assert ("make demo   # the whole job on tiny local models and shipped sample data (no GPU, no model hub)\n"
            "make test   # the test suite (what CI runs: .ci/run), vLLM included\n") in text
    assert "exec make test" in (REPO / ".ci" / "run").read_text()


def test_config_reference_is_generated_from_the_dataclasses():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "generate_config_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- the checker itself catches what the docs could get wrong ----------------------------------------

def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return page


def _problems(tmp_path: Path, text: str, env=None) -> list[str]:
    page = _page(tmp_path, text)
    problems = [p for b in dc.blocks(page) for p in dc.mark_problems(b)] + dc.prose_problems(page, tmp_path)
    run = dc.run_page(page, dc.scratch_checkout(tmp_path / "work"), env or dc.base_env())
    return problems + run.problems


def test_an_unmarked_block_or_a_command_hidden_in_an_example_fails(tmp_path):
    problems = _problems(tmp_path, "```\nsdrrl build\n```\n\n```bash\nls\n```\n\n"
                                   "```text example\nsdrrl build --config x.yaml\n```\n\n```bash run gpu\nls\n```\n")
    assert len(problems) == 4, problems
    assert "fence language ''" in problems[0] and "needs exactly one of" in problems[1]
    assert "holds a command line" in problems[2] and "needs exactly one of" in problems[3]


def test_a_wrong_count_fails_and_the_right_one_passes(tmp_path):
    sample = "plugin/sdrrl/data/sample/monolingual/ind.txt"
    block = f"```bash run\nwc -l < {sample}\n```\n\n```text output\n{{}}\n```\n"
    wrong = _problems(tmp_path / "a", block.format(20))
    assert len(wrong) == 1 and "no line (after the ones matched before it) reads '20'" in wrong[0], wrong
    right = _problems(tmp_path / "b", block.format(len((REPO / sample).read_text().splitlines())))
    assert right == []


def test_exit_status_and_ordered_output(tmp_path):
    ok = "```bash run exit=3\necho one; echo two   three; exit 3\n```\n\n```text output\none\n...\ntwo ... three\n```\n"
    assert _problems(tmp_path / "a", ok) == []
    order = ok.replace("one\n...\ntwo ... three", "two three\none")
    assert "reads 'one'" in _problems(tmp_path / "b", order)[0]
    status = ok.replace("exit=3", "")
    assert "exited 3, the docs say 0" in _problems(tmp_path / "c", status)[0]


def test_dry_blocks_check_each_command_by_its_own_parser(tmp_path):
    cases = {
        "sdrrl build --config build.yaml --bogus": "unrecognized arguments: --bogus",
        "sdrrl frobnicate": "sdrrl has no command 'frobnicate'",
        "python -m sdrrl.no_such_module": "cannot run",
        "lm_eval --model hf --include_path eval_tasks --tasks sdrrl_xlsum_ces": "sdrrl_xlsum_ces",
        "lm_eval --model nonesuch --include_path eval_tasks --tasks sdrrl_belebele_ind": "no model type",
        "lm_eval --model hf --tasks sdrrl_belebele_ind": "--include_path",
        ".venv-vllm/bin/lm_eval --model vllm --include_path eval_tasks --tasks sdrrl_offtarget_dan":
            "sdrrl_offtarget_dan",
        ".venv/bin/sdrrl frobnicate": "sdrrl has no command 'frobnicate'",
        "python benchmarks/bench_export.py --no-such-option": "--no-such-option is not an option",
        "make frobnicate": "make -n",
        "nvidia-smi": "command not found",
        "cp plugin/sdrrl/pipeline/paper.yaml b.yaml && echo 'filter: {qe_threshold: 7}' >> b.yaml && "
        "sdrrl build --config b.yaml": "qe_threshold",
    }
    for i, (command, expected) in enumerate(cases.items()):
        problems = _problems(tmp_path / str(i), f"```bash gpu\n{command}\n```\n")
        assert len(problems) == 1 and expected in problems[0], (command, problems)
    fine = ("T=dan; sdrrl build --config plugin/sdrrl/pipeline/paper.yaml --tgt $T\n"
            "lm_eval --model hf --model_args pretrained=x --include_path eval_tasks \\\n"
            "  --tasks 'sdrrlgroup_*,sdrrl_mkqa_jpn'\n"
            "python -c 'print(1)'\nmake -j1 test\n"
            ".venv-vllm/bin/lm_eval --model vllm --model_args pretrained=x --include_path eval_tasks "
            "--tasks 'sdrrlavg_llama2_*,sdrrl_offtarget_ind'\n")
    assert _problems(tmp_path / "fine", f"```bash hub\n{fine}```\n") == []


@pytest.mark.slow
def test_a_recipe_override_is_checked_against_llamafactory_and_the_registry(tmp_path):
    good = "llamafactory-cli train recipes/sdrrl_llama2.yaml output_dir=saves/x dataset=sdrrl_eng-dan_ll\n"
    assert _problems(tmp_path / "a", f"```bash gpu\n{good}```\n") == []
    bad = {"dataset=sdrrl_eng-xyz_ll": "not registered", "learning_rat=1": "no train argument"}
    for i, (override, expected) in enumerate(bad.items()):
        command = f"llamafactory-cli train recipes/sdrrl_llama2.yaml {override}"
        problems = _problems(tmp_path / str(i), f"```bash gpu\n{command}\n```\n")
        assert len(problems) == 1 and expected in problems[0], problems


def test_configs_load_through_our_parsers(tmp_path):
    assert _problems(tmp_path / "a", "```yaml config=build\nfilter: {qe_threshold: 0.5}\n```\n") == []
    bad = _problems(tmp_path / "b", "```yaml config=build\nfilter: {qe_treshold: 0.5}\n```\n")
    assert len(bad) == 1 and "qe_treshold" in bad[0]
    assert _problems(tmp_path / "c", "```yaml config=export rejected\nmethods: [nonesuch]\n```\n") == []
    loads = _problems(tmp_path / "d", "```yaml config=export rejected\nmethods: [sdrrl]\n```\n")
    assert len(loads) == 1 and "marked `rejected`, but" in loads[0]


def test_a_benchmark_number_must_be_in_the_file_it_links(tmp_path):
    results = REPO / "benchmarks" / "results" / "export.md"
    ok = f"It takes [42.3 s]({results}) here.\n"
    assert dc.prose_problems(_page(tmp_path, ok), tmp_path) == []
    wrong = dc.prose_problems(_page(tmp_path, ok.replace("42.3", "24.3")), tmp_path)
    assert len(wrong) == 1 and "'24.3 s' is not in benchmarks/results/export.md" in wrong[0]


def test_names_in_prose_are_checked(tmp_path):
    page = _page(tmp_path, "Run `python -m sdrrl.no_such_module`, `sdrrl frobnicate --x`, see "
                           "[the guide](missing.md) and `recipes/no_such_recipe.yaml`; `sdrrl build` is fine.\n")
    problems = dc.prose_problems(page, REPO)
    assert len(problems) == 4, problems
