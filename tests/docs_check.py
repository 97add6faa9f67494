"""The docs test's machinery: every fenced block of the docs is classified by its mark, then run or checked.

The marks are defined here and described for writers in docs/CONTRACTS.md ("The docs test"). A fence's
info string is a language and words: ```` ```bash run ````, ```` ```bash gpu ````, ```` ```text output ````,
```` ```yaml config=build file=build.yaml ````. A block without a language, a language we do not know, a
missing or unknown word is a problem: nothing escapes the test.

- ``bash run`` / ``python run``: run, in the page's scratch directory (a copy of the checkout's shipped
  files, one per page, so a walkthrough builds on itself), offline, on the tiny models; the exit status
  must be 0 (or ``exit=N``). A ``text output`` / ``json output`` block right after it states output:
  each of its lines must appear, in order, among the lines printed (whitespace runs count as one space;
  ``...`` matches any text, a line of ``...`` only marks lines left out).
- ``bash gpu`` / ``bash hub`` / ``bash setup`` / ``bash long``: not run (they need a GPU, the model hub,
  change the environment, or take too long), but run *dry*: bash itself runs the block (loops and
  variables expand) with each checked tool replaced by a recorder and nothing else on the PATH but a
  few harmless utilities; then every recorded command is checked for syntax by its own parser
  (``CHECKERS``). A tool without a checker is a problem.
- ``yaml config=build|export|recipe``: loaded through our config parsers (``rejected``: must be refused);
  ``file=NAME`` also writes it into the scratch directory, where later blocks use it.
- ``example`` (text, json, yaml, python): an illustration, parsed where it has a syntax; a text example
  that holds a command line is a problem (commands go in checked blocks).

Numbers quoted from benchmarks are links whose text is the number and whose target is the file under
``benchmarks/results/`` that holds it: ``[42.3 s](../benchmarks/results/export.md)``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "benchmarks" / "results"

# Why a command block is not run by the test (the reader sees the word too).
DRY_MODES = {
    "gpu": "needs a GPU",
    "hub": "needs the model hub or another download",
    "setup": "installs into an environment",
    "long": "takes minutes to hours or gigabytes",
}
# language -> (the modes, one of which a block must have; the options it may add)
LANGS: dict[str, tuple[set[str], set[str]]] = {
    "bash": ({"run", *DRY_MODES}, {"exit"}),
    "python": ({"run", "example"}, set()),
    "yaml": ({"config", "example"}, {"file", "rejected"}),
    "json": ({"output", "example"}, set()),
    "text": ({"output", "example"}, set()),
}
CONFIG_KINDS = ("build", "export", "recipe")
# The pages the test reads: the README, the guides, and the pointer READMEs beside the code.
PAGE_GLOBS = ("README.md", "docs/**/*.md", "eval_tasks/*.md", "plugin/**/*.md")
# What a page's scratch directory holds: the checkout's shipped files (a user's working tree).
SHIPPED = ("Makefile", "pyproject.toml", "constraints.txt", "constraints-vllm.txt", "LICENSE", "README.md", "docs",
           "recipes", "eval_tasks", "plugin", "scripts", "benchmarks", "tests", "dataset_info/dataset_info.json")
# The project's environments (docs/installing.md): a dry block may call a checked tool by its path in
# one of them (`.venv-vllm/bin/lm_eval --model vllm ...`), and the same checker checks it.
ENVIRONMENTS = (".venv", ".venv-vllm")
# Tools a dry block may call without a checker: they only touch the scratch directory.
HARMLESS = ("cp", "mkdir", "ls", "cat", "wc", "head", "tail", "env", "sleep", "true", "mv", "ln", "touch")
# What a launcher sets for the commands it starts, as a dry run sees it: a Slurm array's first task of 4.
LAUNCHER_ENV = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}
COMMAND_LINE = re.compile(r"^\s*(\$\s+)?(sdrrl|lm_eval|lm-eval|llamafactory-cli|python3?|make|bash|pip3?|"
                          r"huggingface-cli|hf|torchrun|accelerate|deepspeed)(\s+[^\s:]+(\s|$)|\s*$)")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    words: tuple[str, ...]
    text: str
    end: int = 0  # the line of the closing fence

    @property
    def where(self) -> str:
        try:
            return f"{self.page.relative_to(REPO)}:{self.line}"
        except ValueError:
            return f"{self.page}:{self.line}"

    def option(self, key: str) -> str | None:
        for word in self.words:
            k, _, v = word.partition("=")
            if k == key:
                return v
        return None

    def has(self, key: str) -> bool:
        return any(w.partition("=")[0] == key for w in self.words)

    @property
    def mode(self) -> str | None:
        modes = LANGS.get(self.lang, (set(), set()))[0]
        found = [w.partition("=")[0] for w in self.words if w.partition("=")[0] in modes]
        return found[0] if len(found) == 1 else None


def pages(repo: Path = REPO) -> list[Path]:
    found = {p for pattern in PAGE_GLOBS for p in repo.glob(pattern)}
    return sorted(p for p in found if ".egg-info" not in str(p))


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with its info string split into language and words."""
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m["indent"]), m["fence"], m["info"].strip()
        body, j = [], i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence) \
                    and not close["info"].strip():
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        else:
            raise AssertionError(f"{page}:{i + 1}: a fence that is never closed")
        lang, *words = info.split() or [""]
        out.append(Block(page, i + 1, lang, tuple(words), "\n".join(body) + "\n", j + 1))
        i = j + 1
    return out


def mark_problems(block: Block) -> list[str]:
    """What is wrong with a block's mark (empty: it is classified)."""
    where = block.where
    if block.lang not in LANGS:
        return [f"{where}: fence language {block.lang!r} is not one the docs test knows "
                f"({', '.join(LANGS)}); mark every block (docs/CONTRACTS.md, 'The docs test')"]
    modes, options = LANGS[block.lang]
    keys = [w.partition("=")[0] for w in block.words]
    problems = [f"{where}: unknown word {k!r} in ```{block.lang} ...``` (modes: {', '.join(sorted(modes))}; "
                f"options: {', '.join(sorted(options)) or 'none'})" for k in keys if k not in modes | options]
    given = [k for k in keys if k in modes]
    if len(given) != 1:
        problems.append(f"{where}: ```{block.lang}``` needs exactly one of {', '.join(sorted(modes))}, has {given}")
    if block.lang == "yaml" and block.has("config") and block.option("config") not in CONFIG_KINDS:
        problems.append(f"{where}: config={block.option('config')} is not one of {', '.join(CONFIG_KINDS)}")
    if block.has("rejected") and not block.has("config"):
        problems.append(f"{where}: `rejected` needs config=KIND")
    if block.has("exit") and (block.mode != "run" or not (block.option("exit") or "").isdigit()):
        problems.append(f"{where}: exit=N goes on a run block, with a number")
    name = block.option("file")
    if block.has("file") and (not name or Path(name).is_absolute() or ".." in Path(name).parts):
        problems.append(f"{where}: file= needs a relative path inside the scratch directory")
    if block.mode == "example" and block.lang == "text":
        problems += [f"{where}: a text example holds a command line ({line.strip()!r}): put commands in a "
                     "checked block (bash run/gpu/hub/setup/long)"
                     for line in block.text.splitlines() if COMMAND_LINE.match(line)]
    if block.mode == "example" and block.lang in ("yaml", "json", "python"):
        problems += [f"{where}: {p}" for p in _syntax_problems(block.lang, block.text)]
    return problems


def _syntax_problems(lang: str, text: str) -> list[str]:
    try:
        if lang == "yaml":
            import yaml

            yaml.safe_load(text)
        elif lang == "json":
            json.loads(text)
        elif lang == "python":
            compile(text, "<docs>", "exec")
    except Exception as err:  # the parser's own error is the message
        return [f"not valid {lang}: {' '.join(str(err).split())}"]
    return []


# --- configs -------------------------------------------------------------------------------------

def config_problems(block: Block, base: Path) -> list[str]:
    """Load a ```yaml config=KIND``` block through our parsers (relative paths against ``base``)."""
    import yaml

    from sdrrl.errors import SdrrlError

    kind = block.option("config")
    try:
        data = yaml.safe_load(block.text) or {}
    except yaml.YAMLError as err:
        return [f"{block.where}: not valid YAML: {' '.join(str(err).split())}"]
    try:
        if kind == "build":
            from sdrrl.pipeline import config

            config.from_dict(data, block.where)
        elif kind == "export":
            from sdrrl.compose import config

            config.from_mapping(data, base, block.where)
        else:
            unknown = sorted(set(data) - llamafactory_keys())
            if unknown:
                raise SdrrlError(f"keys LLaMA-Factory's train arguments do not have: {unknown}", "")
    except SdrrlError as err:
        if block.has("rejected"):
            return []
        return [f"{block.where}: the {kind} config does not load: {err}"]
    if block.has("rejected"):
        return [f"{block.where}: marked `rejected`, but the {kind} config loads"]
    return []


@functools.lru_cache(maxsize=None)
def llamafactory_keys() -> frozenset[str]:
    """Every key ``llamafactory-cli train`` accepts (its own dataclasses), read in a child process."""
    code = ("import dataclasses, json; from llamafactory.hparams.parser import _TRAIN_ARGS; "
            "print(json.dumps(sorted({f.name for c in _TRAIN_ARGS for f in dataclasses.fields(c)})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=base_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return frozenset(json.loads(proc.stdout.strip().splitlines()[-1]))


# --- running a page --------------------------------------------------------------------------------

def base_env(**extra: str) -> dict[str, str]:
    """Offline, one thread per process (as the demo), this checkout's package first, the venv's tools."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(REPO / "plugin"),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


def scratch_checkout(dest: Path, repo: Path = REPO) -> Path:
    """A copy of the checkout's shipped files: what a user's working tree holds before a run."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in SHIPPED:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, dirs_exist_ok=True)
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@dataclass
class PageRun:
    """What running one page found: problems, and how many blocks ran or were checked dry."""

    problems: list[str] = field(default_factory=list)
    ran: int = 0
    dry: int = 0
    outputs: int = 0


def run_page(page: Path, scratch: Path, env: dict[str, str]) -> PageRun:
    """A page's blocks in order in one scratch directory: files written, run blocks run (and their
    stated output checked), dry blocks run dry and their commands checked."""
    result = PageRun()
    previous: tuple[Block, str] | None = None
    for block in blocks(page):
        if mark_problems(block):
            continue  # reported by the marks test
        if block.mode == "output":
            if previous is None:
                result.problems.append(f"{block.where}: an output block must follow a run block")
                continue
            result.outputs += 1
            miss = match_output(block.text, previous[1])
            if miss:
                result.problems.append(f"{block.where}: output of {previous[0].where} does not match: {miss}\n"
                                       f"--- printed (last lines) ---\n{_tail(previous[1])}")
            previous = None
            continue
        previous = None
        if block.has("file"):
            path = scratch / block.option("file")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
        if block.lang == "yaml" and block.has("config"):
            result.problems += config_problems(block, scratch)
        elif block.mode == "run":
            result.ran += 1
            output, problem = run_block(block, scratch, env)
            if problem:
                result.problems.append(problem)
            previous = (block, output)
        elif block.mode in DRY_MODES:
            result.dry += 1
            result.problems += dry_run(block, scratch, env)
    return result


def run_block(block: Block, scratch: Path, env: dict[str, str], timeout: int = 900) -> tuple[str, str | None]:
    """Run a ```bash run``` / ```python run``` block; return what it printed and a problem, if any."""
    cmd = (["bash", "-e", "-o", "pipefail", "-c", block.text] if block.lang == "bash"
           else [str(BIN / "python"), "-c", block.text])
    proc = subprocess.run(cmd, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    want = int(block.option("exit") or 0)
    if proc.returncode != want:
        return proc.stdout, (f"{block.where}: exited {proc.returncode}, the docs say {want}\n"
                             f"--- block ---\n{block.text}--- printed (last lines) ---\n{_tail(proc.stdout)}")
    return proc.stdout, None


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])


def _normal(line: str) -> str:
    return " ".join(line.split())


def match_output(expected: str, printed: str) -> str | None:
    """None when every stated line appears, in order, among the printed ones; else what is missing."""
    lines = [_normal(x) for x in printed.splitlines()]
    i = 0
    for want in map(_normal, expected.splitlines()):
        if not want or want == "...":
            continue
        pattern = re.compile(".*".join(re.escape(piece.strip()) for piece in want.split("...")))
        while i < len(lines) and not pattern.fullmatch(lines[i]):
            i += 1
        if i == len(lines):
            return f"no line (after the ones matched before it) reads {want!r}"
        i += 1
    return None


# --- dry runs ------------------------------------------------------------------------------------

@dataclass
class Call:
    tool: str
    argv: list[str]
    cwd: Path
    block: Block

    @property
    def shown(self) -> str:
        import shlex

        return f"{self.block.where}: `{shlex.join([self.tool, *self.argv])}`"


RECORDER = """#!{python}
import json, os, sys
with open(os.environ["SDRRL_DOCS_RECORD"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"tool": {tool!r}, "argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
"""


@functools.lru_cache(maxsize=None)
def dry_path(root: str) -> str:
    """A PATH of recorders for the checked tools and links to the harmless ones, nothing else."""
    d = Path(root)
    d.mkdir(parents=True, exist_ok=True)
    for tool in CHECKERS:
        (d / tool).write_text(RECORDER.format(python=sys.executable, tool=tool), encoding="utf-8")
        (d / tool).chmod(0o755)
    for tool in HARMLESS:
        real = shutil.which(tool)
        if real and not (d / tool).exists():
            os.symlink(real, d / tool)
    return str(d)


def dry_run(block: Block, scratch: Path, env: dict[str, str]) -> list[str]:
    """Run the block with recorders in place of the tools, then check every recorded command."""
    record = scratch / ".docs-record.jsonl"
    record.unlink(missing_ok=True)
    recorders = dry_path(str(scratch.parent / ".docs-dry-bin"))
    dry_env = {**env, **LAUNCHER_ENV, "PATH": recorders, "SDRRL_DOCS_RECORD": str(record)}
    made = [scratch / name for name in ENVIRONMENTS if not (scratch / name).exists()]
    try:
        for venv in made:  # the environments' bin folders, of recorders, for this block only
            (venv / "bin").mkdir(parents=True)
            for tool in CHECKERS:
                os.symlink(Path(recorders) / tool, venv / "bin" / tool)
        proc = subprocess.run([shutil.which("bash") or "/bin/bash", "-e", "-o", "pipefail", "-c", block.text],
                              cwd=scratch, env=dry_env, capture_output=True, text=True, timeout=120)
    finally:
        for venv in made:
            shutil.rmtree(venv, ignore_errors=True)
    if proc.returncode != 0:
        return [f"{block.where}: the block does not run even dry (exit {proc.returncode}; a tool without a "
                f"checker is 'command not found'): {proc.stderr.strip()[-800:]}"]
    calls = [Call(c["tool"], c["argv"], Path(c["cwd"]), block)
             for c in map(json.loads, record.read_text().splitlines())] if record.exists() else []
    if not calls:
        return [f"{block.where}: a {block.mode} block ({DRY_MODES[block.mode]}) with no command the test can check"]
    return [p for call in calls for p in CHECKERS[call.tool](call, env)]


def _argparse_problems(parser, argv: list[str]) -> tuple[object | None, str | None]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(argv), None
        except SystemExit as exc:
            if exc.code in (0, None):
                return None, None  # --help
            return None, " ".join(err.getvalue().split())[-600:]


PIPELINE_COMMANDS = ("build", "generate", "sample", "translate", "filter")


def check_sdrrl(call: Call, env: dict[str, str]) -> list[str]:
    """Our own parser, without running; a config or recipe the command names that exists is loaded too."""
    from sdrrl import cli
    from sdrrl.errors import SdrrlError

    command = next((a for a in call.argv if not a.startswith("-")), None)
    if command is not None and command not in cli.COMMANDS:
        return [f"{call.shown}: sdrrl has no command {command!r}"]
    args, problem = _argparse_problems(cli.build_parser(command), call.argv)
    if problem:
        return [f"{call.shown}: {problem}"]
    if args is None or command is None:
        return []
    try:
        config = getattr(args, "config", None)
        if config and (call.cwd / config).is_file():
            if command in PIPELINE_COMMANDS:
                from sdrrl.pipeline.config import load

                load(call.cwd / config)
            elif command == "export":
                from sdrrl.compose.config import load

                load(call.cwd / config)
        if command == "train":
            return recipe_problems(call, args.recipe, args.overrides)
    except SdrrlError as err:
        return [f"{call.shown}: {err}"]
    return []


def recipe_problems(call: Call, recipe: str, overrides: list[str]) -> list[str]:
    """A recipe and its key=value overrides as llamafactory-cli train reads them: every key one of
    LLaMA-Factory's train arguments, every dataset registered, the DeepSpeed file there."""
    from sdrrl.commands.train import _dataset_names, load_recipe
    from sdrrl.errors import SdrrlError

    path = call.cwd / recipe
    if not path.is_file():
        return [f"{call.shown}: no recipe {recipe}"]
    try:
        args = load_recipe(path, overrides)
    except SdrrlError as err:
        return [f"{call.shown}: {err}"]
    problems = []
    unknown = sorted(set(args) - llamafactory_keys())
    if unknown:
        problems.append(f"{call.shown}: LLaMA-Factory has no train argument {unknown}")
    info_file = call.cwd / str(args.get("dataset_dir", "data")) / "dataset_info.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
    missing = [n for key in ("dataset", "eval_dataset") for n in _dataset_names(args.get(key)) if n not in info]
    if missing:
        problems.append(f"{call.shown}: not registered in {args.get('dataset_dir', 'data')}/dataset_info.json: "
                        f"{missing}")
    if args.get("deepspeed") and not (call.cwd / str(args["deepspeed"])).is_file():
        problems.append(f"{call.shown}: no DeepSpeed config {args['deepspeed']}")
    return problems


@functools.lru_cache(maxsize=None)
def _task_names(include_path: str) -> frozenset[str]:
    from lm_eval.tasks import TaskManager

    return frozenset(TaskManager(include_path=include_path, include_defaults=False).all_tasks)


def check_lm_eval(call: Call, env: dict[str, str]) -> list[str]:
    """lm-eval's own parser; the model type in its registry; every --tasks item (name or glob) one of
    the tasks, groups or tags of the --include_path folder."""
    import lm_eval.api.registry as registry
    import lm_eval.models  # noqa: F401  (fills the model registry, lazily)
    from lm_eval._cli.harness import HarnessCLI

    cli = HarnessCLI()
    argv = list(call.argv)
    if argv and argv[0] not in cli._subparsers.choices:
        argv.insert(0, "run")  # what lm_eval does for the classic interface
    args, problem = _argparse_problems(cli._parser, argv)
    if problem:
        return [f"{call.shown}: {problem}"]
    if args is None or args.command != "run":
        return []
    problems = []
    if args.model not in registry.MODEL_REGISTRY:
        problems.append(f"{call.shown}: lm-eval has no model type {args.model!r}")
    if not args.include_path or not (call.cwd / args.include_path).is_dir():
        return problems + [f"{call.shown}: --include_path must name the task folder (eval_tasks)"]
    names = _task_names(str((call.cwd / args.include_path).resolve()))
    items = [t.strip() for x in (args.tasks if isinstance(args.tasks, list) else [args.tasks or ""])
             for t in x.split(",") if t.strip()]
    unknown = [t for t in items if not fnmatch.filter(names, t)]
    if unknown or not items:
        problems.append(f"{call.shown}: no task, group or tag in {args.include_path} is {unknown or '(none given)'}")
    return problems


def check_llamafactory(call: Call, env: dict[str, str]) -> list[str]:
    if call.argv[:1] != ["train"] or len(call.argv) < 2:
        return [f"{call.shown}: the docs test checks `llamafactory-cli train RECIPE [key=value ...]` only"]
    return recipe_problems(call, call.argv[1], call.argv[2:])


def check_python(call: Call, env: dict[str, str]) -> list[str]:
    """``-c CODE`` compiles; ``-m MODULE`` can be run; ``SCRIPT`` exists and its --help names each option."""
    argv = call.argv
    if argv[:1] == ["-c"] and len(argv) > 1:
        problems = _syntax_problems("python", argv[1])
        return [f"{call.shown}: {p}" for p in problems]
    if argv[:1] == ["-m"] and len(argv) > 1:
        return [f"{call.shown}: {p}" for p in module_problems(argv[1], env)]
    if not argv or argv[0].startswith("-"):
        return [f"{call.shown}: the docs test checks `python SCRIPT`, `python -m MODULE` and `python -c CODE`"]
    return _script_problems(call, [sys.executable, argv[0]], argv[1:], env)


def _script_problems(call: Call, cmd: list[str], args: list[str], env: dict[str, str]) -> list[str]:
    """The program answers --help, and its help names every --option the docs give it."""
    if cmd[-1].endswith((".py", ".sh")) and not (call.cwd / cmd[-1]).is_file():
        return [f"{call.shown}: no file {cmd[-1]}"]
    proc = subprocess.run([*cmd, "--help"], cwd=call.cwd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return [f"{call.shown}: `--help` failed: {(proc.stderr or proc.stdout).strip()[-600:]}"]
    options = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    return [f"{call.shown}: {opt} is not an option of it" for opt in options if opt not in proc.stdout]


@functools.lru_cache(maxsize=None)
def _module_runnable(module: str, pythonpath: str) -> str | None:
    code = ("import importlib.util, sys\nm = sys.argv[1]\ns = importlib.util.find_spec(m)\n"
            "ok = s is not None and (s.submodule_search_locations is None or "
            "importlib.util.find_spec(m + '.__main__') is not None)\nsys.exit(0 if ok else 3)")
    proc = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True,
                          env=base_env(PYTHONPATH=pythonpath))
    if proc.returncode == 0:
        return None
    return f"`python -m {module}` cannot run: " + ("no such module, or a package without __main__"
                                                  if proc.returncode == 3 else proc.stderr.strip()[-300:])


def module_problems(module: str, env: dict[str, str]) -> list[str]:
    problem = _module_runnable(module, env.get("PYTHONPATH", ""))
    return [problem] if problem else []


def check_make(call: Call, env: dict[str, str]) -> list[str]:
    """``make -n``: the targets exist and their recipes expand, nothing runs."""
    proc = subprocess.run(["make", "-n", *call.argv], cwd=call.cwd, env=env, capture_output=True, text=True)
    return [] if proc.returncode == 0 else [f"{call.shown}: make -n: {proc.stderr.strip()[-400:]}"]


def check_bash(call: Call, env: dict[str, str]) -> list[str]:
    """``bash -n SCRIPT``: the script is there and parses."""
    if not call.argv or not (call.cwd / call.argv[0]).is_file():
        return [f"{call.shown}: no script to check"]
    proc = subprocess.run(["bash", "-n", call.argv[0]], cwd=call.cwd, capture_output=True, text=True)
    return [] if proc.returncode == 0 else [f"{call.shown}: bash -n: {proc.stderr.strip()[-400:]}"]


def check_hf(call: Call, env: dict[str, str]) -> list[str]:
    """huggingface_hub's CLI: the subcommand answers --help and names every --option given."""
    if not call.argv:
        return [f"{call.shown}: no subcommand"]
    return _script_problems(call, [str(BIN / "huggingface-cli"), call.argv[0]], call.argv[1:], env)


CHECKERS = {
    "sdrrl": check_sdrrl,
    "lm_eval": check_lm_eval,
    "lm-eval": check_lm_eval,
    "llamafactory-cli": check_llamafactory,
    "python": check_python,
    "python3": check_python,
    "make": check_make,
    "bash": check_bash,
    "huggingface-cli": check_hf,
}


# --- prose: links, benchmark numbers, file and command names --------------------------------------

LINK = re.compile(r"(!?)\[([^\]]+)\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
REPO_PATH = re.compile(r"(?:docs|benchmarks|recipes|eval_tasks|plugin|scripts|tests|dataset_info)/[\w./-]+")


def holds_number(held: str, quoted: str) -> bool:
    """The quoted figure is in the text as a whole (whitespace runs as one space; 42.3 is not in 142.3
    or 42.35)."""
    pattern = r"(?<![\w.])" + re.escape(_normal(quoted)) + r"(?!\w|\.\d)"
    return re.search(pattern, _normal(held)) is not None


def prose(page: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks, numbered."""
    fenced = {n for b in blocks(page) for n in range(b.line, b.end + 1)}
    return [(n, line) for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
            if n not in fenced]


def prose_problems(page: Path, repo: Path = REPO) -> list[str]:
    """Relative links resolve; a number linked to benchmarks/results/ is in that file; a path of the
    repository named in code exists; `sdrrl X` names a command; `python -m X` can run."""
    from sdrrl import cli

    problems = []
    rel = page.relative_to(repo) if page.is_relative_to(repo) else page
    for n, line in prose(page):
        for _, text, target in LINK.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            dest = (page.parent / target.split("#")[0]).resolve()
            if not dest.exists():
                problems.append(f"{rel}:{n}: link to {target}, which does not exist")
            elif dest.is_relative_to(RESULTS):
                if not holds_number(dest.read_text(encoding="utf-8"), text.replace("`", "")):
                    problems.append(f"{rel}:{n}: {text!r} is not in {dest.relative_to(REPO)}")
        for span in CODE_SPAN.findall(line):
            span = span.strip()
            words = span.split()
            if words[:1] == ["sdrrl"] and len(words) > 1 and not words[1].startswith("-") \
                    and words[1] not in cli.COMMANDS:
                problems.append(f"{rel}:{n}: `{span}`: sdrrl has no command {words[1]!r}")
            if words[:2] in (["python", "-m"], ["python3", "-m"]) and len(words) > 2:
                problems += [f"{rel}:{n}: {p}" for p in module_problems(words[2], base_env())]
            if REPO_PATH.fullmatch(span) and not any(c in span for c in "*{}<>") \
                    and not (repo / span).exists():
                problems.append(f"{rel}:{n}: `{span}` does not exist in the repository")
    return problems
