"""vLLM in a process of its own, driven over a pipe: how every sdrrl stage runs vLLM.

vLLM cannot share an environment with unbabel-comet and LLaMA-Factory (it pins its own torch and
transformers 5), so it lives in a second environment (``.venv-vllm``, made by
``scripts/bootstrap.sh --vllm``). The stage that generates stays where it is, in the main
environment: it renders the prompts with LLaMA-Factory, reads and writes the cache, decodes the
token ids with the model's tokenizer, and sends only prompt token ids and sampling settings to a
worker, ``python -m sdrrl.pipeline.vllm_engine``, started with the vLLM environment's Python. The
worker holds one ``vllm.LLM`` and answers with token ids, one JSON line per batch.

Why a process even where vLLM is importable: vLLM starts its engine core in a child process, which
outlives a ``kill -9`` of the process that made it (measured: the engine core and its worker keep
running, holding gigabytes). Here the worker is the only process that makes vLLM children; it
leaves when its stdin closes or its parent dies (``PR_SET_PDEATHSIG``), and vLLM's own shutdown then
stops the engine core. The worker is also a ``__main__`` module, which vLLM's spawned processes need.

Which Python hosts vLLM: ``$SDRRL_VLLM_PYTHON`` when set; else this interpreter when it can import
vllm; else the checkout's ``.venv-vllm/bin/python``. Anything else is an error naming the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from sdrrl.errors import SdrrlError

PYTHON_VAR = "SDRRL_VLLM_PYTHON"
_PLUGIN = Path(__file__).resolve().parents[2]  # plugin/ in a checkout (site-packages when installed)
_IN_CHECKOUT = (_PLUGIN.parent / "pyproject.toml").is_file() and _PLUGIN.name == "plugin"
# the checkout's vLLM environment (scripts/bootstrap.sh --vllm), beside the main .venv
CHECKOUT_ENV = _PLUGIN.parent / ".venv-vllm"
_FIX = ("make the vLLM environment (`bash scripts/bootstrap.sh --vllm`, or `make test`, which makes it), "
        f"or point {PYTHON_VAR} at the python of an environment with vllm installed.")


def _has_vllm(python: str) -> bool:
    """Whether ``python`` can find the vllm package (without importing it: ~0.1 s)."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):  # not resolved: a venv's python is a link
        import importlib.util

        return importlib.util.find_spec("vllm") is not None
    try:
        run = subprocess.run([python, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)"],
                             capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def vllm_python() -> str:
    """The Python that hosts vLLM (see the module doc), or an SdrrlError saying how to get one."""
    named = os.environ.get(PYTHON_VAR)
    if named:
        if not Path(named).is_file():
            raise SdrrlError(f"{PYTHON_VAR}={named} does not exist.", _FIX)
        if not _has_vllm(named):
            raise SdrrlError(f"{PYTHON_VAR}={named} cannot import vllm.", _FIX)
        return named
    if _has_vllm(sys.executable):
        return sys.executable
    checkout = CHECKOUT_ENV / "bin" / "python"
    if _IN_CHECKOUT and checkout.is_file() and _has_vllm(str(checkout)):
        return str(checkout)
    where = (f" and {checkout} " + ("cannot import vllm" if checkout.is_file() else "does not exist")) if _IN_CHECKOUT else ""
    raise SdrrlError(f"vLLM is not installed here, and there is no vLLM environment ({PYTHON_VAR} is unset{where}).",
                     _FIX)


def python_problem() -> SdrrlError | None:
    """For preflight: None when a Python that hosts vLLM is found."""
    try:
        vllm_python()
    except SdrrlError as err:
        return err
    return None


class VllmProcess:
    """One ``vllm.LLM`` in a worker process. ``generate`` sends prompt token ids and SamplingParams
    keywords (per prompt) and returns, per prompt, ``{"token_ids", "finish_reason", "stop_reason"}``."""

    def __init__(self, model: str, dtype: str = "auto", tensor_parallel_size: int = 1, seed: int = 0):
        self.model, self.dtype, self.tensor_parallel_size, self.seed = model, dtype, tensor_parallel_size, seed
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None

    def start(self) -> dict:
        """Start the worker and wait until its engine has generated one token (errors: one line)."""
        if self._proc is not None:
            return self.info
        from sdrrl.pipeline.progress import say

        python = vllm_python()
        cmd = [python, "-m", "sdrrl.pipeline.vllm_engine", "--model", self.model, "--dtype", self.dtype,
               "--tensor-parallel-size", str(self.tensor_parallel_size), "--seed", str(self.seed),
               "--parent-pid", str(os.getpid())]
        env = dict(os.environ)
        env.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its INFO and WARNING lines drown the stage's own
        if _IN_CHECKOUT:  # the worker runs this checkout's sdrrl, whichever environment hosts it
            env["PYTHONPATH"] = os.pathsep.join([str(_PLUGIN)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        say(f"vllm: starting an engine for {self.model} with {python} (about half a minute on CPU)")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.info = self._receive()
        say(f"vllm: engine ready (vLLM {self.info['vllm']}, {self.info['device']}, {self.info['dtype']})")
        return self.info

    def generate(self, prompts: Sequence[Sequence[int]], params: Sequence[dict[str, Any]]) -> list[dict]:
        """``params``: SamplingParams keywords per prompt."""
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps({"prompts": [list(p) for p in prompts], "params": params}) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died: _receive says why
        return self._receive()["outputs"]

    def _receive(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait()
            self._proc = None
            raise SdrrlError(f"The vLLM worker for {self.model} stopped (exit code {code}) before answering; "
                             "its own messages are above.",
                             "read vLLM's error above; on CPU, set VLLM_CPU_KVCACHE_SPACE (GiB) if it ran out "
                             "of memory, or use generate.backend: transformers.")
        msg = json.loads(line)
        if "error" in msg:
            self.close()
            raise SdrrlError(f"vLLM cannot run {self.model}: {msg['error'].rstrip('.')}.",
                             "use generate.backend: transformers (translate.llm_engine: transformers) for this "
                             "model, or vLLM's CUDA build on a GPU (docs/scaling.md, 'vLLM').")
        return msg

    def close(self) -> None:
        """Stop the worker: its stdin closes, vLLM shuts its engine down, the worker exits."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# -- the worker: runs in the vLLM environment ------------------------------------------------------

def _error_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:500]


def _check_cpu_head_size(model: str) -> None:
    """The model's head size against vLLM's CPU attention's own list (a clear line in seconds,
    instead of the engine core dying at its first step with the reason in its log only)."""
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend
    except ImportError:  # another vLLM layout: the warm-up step below still finds it
        return
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model)
    head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    sizes = CPUAttentionBackend.get_supported_head_sizes()
    if head not in sizes:
        raise ValueError(f"its attention head size is {head} (hidden_size / num_attention_heads), and vLLM's CPU "
                         f"attention runs head sizes {', '.join(map(str, sizes))} only")


def _engine(args):
    import vllm
    from vllm.platforms import current_platform

    from sdrrl.pipeline.generate import auto_dtype

    cpu = current_platform.is_cpu()
    if cpu:  # vLLM's CPU attention refuses some head sizes only at the first step, in its engine core
        _check_cpu_head_size(args.model)
    dtype = auto_dtype("cpu" if cpu else "cuda") if args.dtype == "auto" else args.dtype
    # eager on CPU: torch.compile would cost minutes on a few cores; CUDA graphs on a GPU
    llm = vllm.LLM(model=args.model, dtype=dtype, tensor_parallel_size=args.tensor_parallel_size,
                   seed=args.seed, enforce_eager=cpu)
    # an engine that starts can still refuse the model at its first step (CPU attention and head
    # sizes, for one): one token now, so that a run fails before any work, not at its first batch
    llm.generate([{"prompt_token_ids": [0]}], vllm.SamplingParams(max_tokens=1, temperature=0.0), use_tqdm=False)
    return llm, {"vllm": vllm.__version__, "device": "cpu" if cpu else "cuda", "dtype": dtype}


def serve(argv: list[str] | None = None) -> int:
    """Worker main: one JSON line out when the engine is ready (or an error), then per JSON line in
    (``{"prompts", "params"}``) one line out (``{"outputs"}`` or ``{"error"}``), until stdin closes."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sdrrl.pipeline.vllm_engine")
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parent-pid", type=int, default=None)
    args = ap.parse_args(argv)
    # the parent died (kill -9 too): SIGTERM, which leaves through vLLM's shutdown (below)
    if args.parent_pid is not None:
        from sdrrl.staging import die_with_parent

        def leave(*_):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: vLLM's shutdown must not be cut short
            sys.exit(0)

        signal.signal(signal.SIGTERM, leave)
        die_with_parent(args.parent_pid, signal.SIGTERM)

    # the answers get stdout to themselves: vLLM (and its children) log to stdout by default
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(msg: dict) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    try:
        llm, info = _engine(args)
    except Exception as err:  # noqa: BLE001 - every engine failure is reported as one line
        reply({"error": _error_line(err)})
        return 1
    import vllm

    reply({"ready": True, **info})
    for line in sys.stdin:
        req = json.loads(line)
        try:
            params = [vllm.SamplingParams(**p) for p in req["params"]]
            results = llm.generate([{"prompt_token_ids": p} for p in req["prompts"]], params, use_tqdm=False)
        except Exception as err:  # noqa: BLE001
            reply({"error": _error_line(err)})
            return 1
        reply({"outputs": [{"token_ids": list(r.outputs[0].token_ids), "finish_reason": r.outputs[0].finish_reason,
                            "stop_reason": r.outputs[0].stop_reason} for r in results]})
    return 0


if __name__ == "__main__":
    sys.exit(serve())
