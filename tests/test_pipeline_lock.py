"""One writer per work directory, sharded `sdrrl build`, and stale temporary files (issue 10, part d).

Real `sdrrl build` processes on the tiny local models and the shipped sample data. A holder is
frozen with SIGSTOP (not timed by sleeps) while the test tries a second build, so the tests do not
depend on how fast the machine is."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdrrl import layout
from sdrrl.errors import SdrrlError
from sdrrl.io import read_jsonl
from sdrrl.pipeline import lock, workdir

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
           OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "plugin"))
OUTPUTS = ("source.jsonl", "generate/responses.jsonl", "sample/synth.jsonl", "translate/eng-ces.jsonl",
           "filter/eng-ces.jsonl", "filter/eng-ces.excluded.jsonl", "filter/eng-ces.summary.json")


def _config(tiny_models, path: Path) -> Path:
    """Thresholds for these runs: QE and language ID off (the tiny models' translations are noise,
    which they would reject entirely); the heuristic filters stay on and reject some, so the
    exclusion files are not empty."""
    cfg = {"target_langs": ["ces"], "progress_every_s": 0.2,
           "generate": {"model": str(tiny_models.llama), "max_new_tokens": 8, "batch_size": 4, "device": "cpu"},
           "translate": {"model": str(tiny_models.nllb), "backend": "ctranslate2", "max_length": 24,
                         "batch_size": 8, "device": "cpu"},
           "filter": {"qe_enabled": False, "lid_enabled": False}}
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def _build(cfg: Path, work: Path, *extra: str, **kw) -> subprocess.Popen:
    """Start `sdrrl build`; its stderr goes to a file beside the work directory, never to a pipe: a
    shard that waits prints a line every progress interval, and a pipe nobody drains fills up and
    blocks it while the other shards wait for it (that deadlock once hung CI for an hour)."""
    log = work.parent / f"{work.name}.{next(_LOGS)}.stderr"
    work.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "sdrrl.cli", "build", "--config", str(cfg), "--work-dir",
                                 str(work), *extra], env=ENV, stdout=subprocess.DEVNULL, stderr=fh, text=True,
                                **kw)
    proc.log = log
    return proc


_LOGS = itertools.count()


def _err(proc: subprocess.Popen) -> str:
    """What ``proc`` has written to stderr so far."""
    return proc.log.read_text(encoding="utf-8", errors="replace")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for ``proc`` to exit 0 and return its stderr."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{proc.args} still running after {timeout} s:\n{_err(proc)[-3000:]}") from None
    err = _err(proc)
    assert rc == 0, err[-3000:]
    return err


def _first_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _err(proc)
        if "\n" in text:
            return text.split("\n", 1)[0] + "\n"
        assert proc.poll() is None, text[-2000:]
        time.sleep(0.05)
    raise AssertionError(f"{proc.args} wrote no line within {timeout} s")


def _wait_for_holder(work: Path, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """The lock record once ``proc`` holds the work directory."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = lock.read_holder(work / lock.WORK_LOCK)
        if info.get("pid") == proc.pid:
            return info
        assert proc.poll() is None, _err(proc)[-2000:]
        time.sleep(0.05)
    raise AssertionError(f"{proc.args} never took the lock on {work}")


def _rows(path: Path) -> int:
    return sum(1 for _ in read_jsonl(path))


def test_second_build_on_a_work_dir_is_refused_naming_the_first_or_waits_for_it(tiny_models, tmp_path):
    cfg = _config(tiny_models, tmp_path / "cfg.yaml")
    work = tmp_path / "work"
    first = _build(cfg, work, "--max-rows", "6")
    info = _wait_for_holder(work, first)
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock, mid-build, for as long as the test needs
    try:
        t0 = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "sdrrl.cli", "build", "--config", str(cfg), "--work-dir",
                                 str(work), "--max-rows", "3"], env=ENV, capture_output=True, text=True, timeout=120)
        refused_in = time.monotonic() - t0
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr[-2000:]
    message = second.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert f"work directory {work} is in use by pid {first.pid}" in message
    assert "sdrrl build --config" in message and "--max-rows 6" in message and info["since"] in message
    assert "--wait" in message
    assert refused_in < 60  # at once: no model work (the first's 6-row build is frozen, not finished)
    first_err = _finish(first)
    # the first build's outputs are its own: 6 rows everywhere, as it reported
    assert "filter eng-ces: 6 rows" in first_err
    for name in OUTPUTS[:5]:
        assert _rows(work / name) == 6, name
    assert json.loads((work / "filter/eng-ces.summary.json").read_text())["rows"] == 6

    # --wait: the second starts when the first ends. The holder is the first's build with one row more:
    # that row's model work keeps the lock held for seconds (a rerun all from the cache can end between
    # two looks at the lock)
    again = _build(cfg, work, "--max-rows", "7")
    _wait_for_holder(work, again)
    os.kill(again.pid, signal.SIGSTOP)
    try:
        waiter = _build(cfg, work, "--max-rows", "3", "--wait")
        line = _first_line(waiter)  # the waiter's first words: whom it waits for
        assert line.startswith(f"waiting for the work directory {work}, held by pid {again.pid}"), line
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting while the holder is frozen
    finally:
        os.kill(again.pid, signal.SIGCONT)
    _finish(again)
    rest = _finish(waiter)
    assert "filter eng-ces: 3 rows" in rest
    assert _rows(work / "filter/eng-ces.jsonl") == 3


def test_killed_holder_is_no_obstacle_and_its_temp_files_are_removed(tiny_models, tmp_path):
    """A `sdrrl build` holding the work directory is killed with SIGKILL; then a process holding it
    is killed in the middle of an atomic write (sdrrl.io.atomic_open): each lock dies with its
    holder, the temporary file stays; the next build runs and removes the temporary file."""
    cfg = _config(tiny_models, tmp_path / "cfg.yaml")
    work = tmp_path / "work"
    killed = _build(cfg, work, "--max-rows", "4")
    _wait_for_holder(work, killed)
    killed.kill()
    killed.wait()
    assert lock.read_holder(work / lock.WORK_LOCK)["pid"] == killed.pid  # its record stays, its lock does not
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sdrrl.io import atomic_open\n"
        "from sdrrl.pipeline import lock\n"
        "work = Path(sys.argv[1])\n"
        "with lock.hold_work(work):\n"
        "    with atomic_open(work / 'filter' / 'eng-ces.jsonl') as fh:\n"
        "        fh.write('{\"id\": \"half a ro')\n"
        "        fh.flush()\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(work)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "writing"
    assert lock.is_locked(work / lock.WORK_LOCK)
    holder.kill()  # SIGKILL: no cleanup, no atexit
    holder.wait()
    holder.stdout.close()
    temps = list((work / "filter").glob(".eng-ces.jsonl.*.tmp"))
    assert len(temps) == 1 and lock.read_holder(work / lock.WORK_LOCK)["pid"] == holder.pid

    build = _build(cfg, work, "--max-rows", "4")  # no --wait: the dead holder must not be in the way
    err = _finish(build)
    assert "removed 1 temporary file(s) a killed run left" in err and str(temps[0]) in err
    assert not temps[0].exists()
    assert not list(work.rglob("*.tmp"))
    assert _rows(work / "filter/eng-ces.jsonl") == 4


def test_a_shard_removes_only_its_own_temp_files(tmp_path):
    """Shards run side by side: shard 0 of 2 must not delete shard 1's (perhaps live) temporary files,
    nor merged-file temporaries (only a holder of the shared-work lock removes those)."""
    work = tmp_path / "work"
    (work / "generate").mkdir(parents=True)
    names = {"mine": ".responses.shard-0-of-2.jsonl.abcd1234.tmp",
             "mine_marker": ".responses.shard-0-of-2.jsonl.done.k2j4h5g6.tmp",
             "other": ".responses.shard-1-of-2.jsonl.zzzz9999.tmp",
             "twenty": ".responses.shard-0-of-20.jsonl.qqqq1111.tmp",
             "merged": ".responses.jsonl.mmmm0000.tmp"}
    for name in names.values():
        (work / "generate" / name).write_text("partial")
    with lock.hold_work(work, num_shards=2, shard_index=0):
        left = {p.name for p in (work / "generate").iterdir() if p.suffix == ".tmp"}
        assert left == {names["other"], names["twenty"], names["merged"]}
        with lock.shared_work(work / "generate"):
            left = {p.name for p in (work / "generate").iterdir() if p.suffix == ".tmp"}
            assert left == {names["other"], names["twenty"]}
    conversion = work / "ct2" / ".0123456789abcdef.converting-ab12cd_9"  # a killed CTranslate2 conversion
    conversion.mkdir(parents=True)
    (conversion / "model.bin").write_bytes(b"half")
    with lock.hold_work(work, num_shards=2, shard_index=1):
        assert conversion.exists()  # another shard may be converting right now
    with lock.hold_work(work):  # the whole work directory: every leftover goes
        assert not list(work.rglob("*.tmp")) and not conversion.exists()


def test_a_shard_and_an_unsharded_run_exclude_each_other_but_shards_do_not(tmp_path):
    work = tmp_path / "work"
    with lock.hold_work(work, num_shards=2, shard_index=0):
        script = ("import sys\nfrom pathlib import Path\n"
                  "from sdrrl.pipeline import lock\n"
                  "try:\n    lock.hold_work(Path(sys.argv[1])).__enter__()\n"
                  "except Exception as e:\n    print(e)\n"
                  "with lock.hold_work(Path(sys.argv[1]), 2, 1):\n    print('shard 1 runs')\n"
                  "try:\n    lock.hold_work(Path(sys.argv[1]), 2, 0).__enter__()\n"
                  "except Exception as e:\n    print(e)\n"
                  "try:\n    lock.hold_work(Path(sys.argv[1]), 3, 2).__enter__()\n"
                  "except Exception as e:\n    print(e)\n")
        holder = subprocess.run([sys.executable, "-c", script, str(work)], env=ENV, capture_output=True, text=True,
                                timeout=60)
        lines = holder.stdout.splitlines()
        assert len(lines) == 4, holder.stdout + holder.stderr
        assert lines[0].startswith(f"The work directory {work} is in use by pid {os.getpid()}")
        assert lines[1] == "shard 1 runs"
        assert lines[2].startswith(f"The shard 0 of 2 of work directory {work} is in use by pid {os.getpid()}")
        assert lines[3].startswith(f"The work directory {work} is in use by a run with --num-shards 2, not 3: "
                                   f"pid {os.getpid()}")
    # the refused 3-shard process let go of its lock: a later 3-shard run is not in the way of anyone
    with lock.hold_work(work, num_shards=3, shard_index=2):
        pass


def test_shards_started_with_different_configs_are_stopped(tiny_models, tmp_path):
    """Shard 0 (another process, still running) prepared D with --max-rows 4; shard 1 comes with 3."""
    from sdrrl.pipeline import config
    from sdrrl.pipeline.build import run_build

    work = tmp_path / "work"
    data = dict(json.loads(_config(tiny_models, tmp_path / "cfg.yaml").read_text()), work_dir=str(work))
    script = ("import json, sys, time\nfrom sdrrl.pipeline import build, config, lock\n"
              "cfg = config.from_dict(json.loads(sys.argv[1]))\n"
              "with lock.hold_work(cfg.work, 2, 0):\n"
              "    build._prepare_once(cfg, cfg.work, 'build shard 0/2', 0, 2)\n"
              "    print('prepared', flush=True)\n    time.sleep(600)\n")
    shard0 = subprocess.Popen([sys.executable, "-c", script, json.dumps(dict(data, max_rows=4))], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert shard0.stdout.readline().strip() == "prepared"
        with pytest.raises(SdrrlError) as err:
            run_build(config.from_dict(dict(data, max_rows=3)), num_shards=2, shard_index=1)
        assert f"shard 0 of 2, still running (pid {shard0.pid}" in str(err.value)
        assert "same config" in str(err.value)
        assert _rows(work / "source.jsonl") == 4  # shard 0's D untouched
        assert not (work / "generate").exists()  # no model work
    finally:
        shard0.kill()
        shard0.wait()
        shard0.stdout.close()
    # shard 0 gone: its marker is just old, and the next run prepares D anew
    from sdrrl.pipeline.build import _prepare_once

    with lock.hold_work(work, 2, 1):
        rows, _ = _prepare_once(config.from_dict(dict(data, max_rows=3)), work, "build shard 1/2", 1, 2)
    assert len(rows) == 3 and _rows(work / "source.jsonl") == 3


def _outputs(work: Path) -> dict[str, bytes]:
    return {name: (work / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def unsharded(tiny_models, tmp_path_factory) -> tuple[Path, Path]:
    """The reference: the same build, unsharded (config file, work directory)."""
    tmp = tmp_path_factory.mktemp("unsharded")
    cfg = _config(tiny_models, tmp / "cfg.yaml")
    ref = _build(cfg, tmp / "whole", "--max-rows", "7")
    _finish(ref)
    return cfg, tmp / "whole"


@pytest.mark.parametrize("num_shards", [2, 3])
def test_sharded_build_started_concurrently_equals_the_unsharded_build(unsharded, tmp_path, num_shards):
    cfg, whole = unsharded
    expected = _outputs(whole)

    work = tmp_path / "sharded"
    procs = [_build(cfg, work, "--max-rows", "7", "--num-shards", str(num_shards), "--shard-index", str(i),
                    "--shard-timeout", "600") for i in range(num_shards)]
    try:
        errs = [_finish(p, timeout=600) for p in procs]
    finally:  # a failed shard must not leave the others waiting for it
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert _outputs(work) == expected
    log = "\n".join(errs)
    # exactly one process did each piece of shared work; each shard generated only its rows
    assert log.count("prepare: D = ") == 1 and log.count("D already prepared by shard") == num_shards - 1
    assert log.count("sample: D_synth has 7 rows") == 1
    assert log.count("D_synth already sampled by another shard") == num_shards - 1
    for i in range(num_shards):  # 7 questions in batches of 4 and 3 (generate.batch_size 4): whole batches
        n = sum([4, 3][i::num_shards])
        assert (f"generate shard {i}/{num_shards}: 7 rows, 7 unique questions ({n} in this shard's batches): "
                f"0 from the cache, {n} generated") in log
    assert sum("every shard is done" in e for e in errs) >= 1
    config = {k: v for k, v in json.loads((work / "build.config.json").read_text()).items() if k != "work_dir"}
    assert config == {k: v for k, v in json.loads((whole / "build.config.json").read_text()).items()
                      if k != "work_dir"}


def test_a_shard_waits_visibly_for_the_others_and_gives_up_after_the_timeout(tiny_models, tmp_path, capsys):
    from sdrrl.pipeline import config
    from sdrrl.pipeline.build import run_build

    data = json.loads(_config(tiny_models, tmp_path / "cfg.yaml").read_text())
    cfg = config.from_dict(dict(data, work_dir=str(tmp_path / "work"), max_rows=4, progress_every_s=0.2))
    with pytest.raises(SdrrlError) as err:
        run_build(cfg, num_shards=2, shard_index=1, shard_timeout_s=1.0)
    message = str(err.value)
    assert "build shard 1/2: generate shard(s) 0 of 2 did not finish within 1 s" in message
    assert "--shard-index I" in message and "\n" not in message and "failed" not in message
    assert "build shard 1/2: waiting for generate shard(s) 0 of 2 to finish" in capsys.readouterr().err
    work = cfg.work
    generated = layout.batch_outputs_path(layout.responses_path(work))
    assert workdir.done_marker(workdir.shard_path(generated, 2, 1)).exists()
    assert not layout.synth_path(work).exists()  # sampling needs every shard
    assert not lock.is_locked(work / lock.WORK_LOCK)  # the failed shard let go of the work directory
    # shard 1 stopped on that error: its record says so, and shard 0, waiting for it, names it at once
    failure = lock.shard_failure(cfg.work, 2, 1)
    assert failure["pid"] == os.getpid() and "did not finish within 1 s" in failure["error"]

    with pytest.raises(SdrrlError) as err:  # shard 0 now: generate and sample, then it waits for shard 1's translations
        run_build(cfg, num_shards=2, shard_index=0, shard_timeout_s=1.5)
    err_text = capsys.readouterr().err
    told = [line for line in err_text.splitlines() if "shard 1 of 2 failed" in line]
    assert len(told) == 1, err_text[-2000:]  # once, not with every progress line
    assert told[0].startswith(f"build shard 0/2: shard 1 of 2 failed (pid {os.getpid()}")
    assert "SdrrlError: build shard 1/2: generate shard(s) 0 of 2 did not finish" in told[0]
    assert "--shard-index 1`" in told[0] and "this shard waits for it" in told[0]
    assert "Shard 1 failed: SdrrlError" in str(err.value)
    # started again, a shard's old failure is gone (and a live shard is never reported as failed)
    with lock.hold_work(cfg.work, 2, 1):
        assert not lock.shard_failure_path(cfg.work, 2, 1).exists()
        assert lock.shard_failure(cfg.work, 2, 1) == {}
    assert lock.shard_failure(cfg.work, 2, 0)["error"].startswith("SdrrlError: build shard 0/2: translate")
    capsys.readouterr()


def test_one_dirlock_for_files_and_folders_per_thread_and_following_a_replaced_path(tmp_path):
    """The lock every lock of the project is (work directory, export registry folder, tiny models)."""
    import fcntl
    import threading

    folder = tmp_path / "registry"
    folder.mkdir()
    first = lock.DirLock(folder, "registry folder")
    first.acquire()
    assert lock.is_locked(folder) and not (folder / lock.WORK_LOCK).exists()  # the folder itself, no file in it
    refused: list[str] = []

    def other_thread() -> None:
        try:
            lock.DirLock(folder, "registry folder").acquire(wait=0)
        except SdrrlError as err:
            refused.append(str(err))
    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert len(refused) == 1 and "registry folder is in use" in refused[0]  # a thread is another writer

    # a waiter whose folder is swapped away meanwhile (what an export does) locks the folder now there
    said: list[str] = []
    waiter = lock.DirLock(folder, "registry folder", say=said.append, waiting="waiting for the registry")
    holding, done = threading.Event(), threading.Event()

    def wait_then_hold() -> None:
        with lock.acquired(waiter, wait=None):
            holding.set()
            done.wait(30)
    worker = threading.Thread(target=wait_then_hold)
    worker.start()
    while not said:
        time.sleep(0.01)
    folder.rename(tmp_path / "old")
    folder.mkdir()
    first.release()
    assert holding.wait(30) and said == ["waiting for the registry"]
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the new folder is held
    finally:
        os.close(fd)
    fd = os.open(tmp_path / "old", os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the old one is free
    os.close(fd)
    done.set()
    worker.join(30)
    assert not lock.is_locked(folder)
