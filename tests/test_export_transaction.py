"""`sdrrl export` as a transaction: a killed, failed or disk-full export leaves the registry exactly
as it was or exactly as the new export (byte for byte, every file), and no worker outlives it."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.compose import helpers
from sdrrl import staging
from sdrrl.compose.export import export
from sdrrl.errors import RegistryError, SdrrlError
from sdrrl.registry import validate

SDRRL = str(Path(sys.executable).parent / "sdrrl")
EPOCH = "1700000000"
MARK = "staging the new registry"
SWITCHED = "to the new content in one step"


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its kind and bytes (symlinks by target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir",)
        else:
            out[rel] = ("file", p.read_bytes())
    return out


def leftovers(reg: Path) -> list[str]:
    return sorted(n for n in os.listdir(reg.parent) if n.startswith(f".{reg.name}.sdrrl-"))


def live_members(pgid: int) -> list[str]:
    """Processes (not zombies) of a process group: the export and any worker it forked."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(f"{d.name} ({fields[0]})")
    return found


def write_config(path: Path, work: Path, seed: int, methods: list[str]) -> Path:
    cfg = {"work_dir": str(work), "source": "eng", "targets": ["ind", "ces"], "methods": methods, "seed": seed,
           "code_switch": {"p": 0.15, "dictionaries": str(helpers.DICTS)},
           "parallel": {"corpus": str(helpers.PARALLEL), "pairs": 30}, "workers": 2}
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A work dir with two pairs (so the export forks two workers, each busy for about a second),
    an old and a new config."""
    tmp = tmp_path_factory.mktemp("txn")
    work, _, _ = helpers.big_work(tmp / "work", 6000, targets=("ind", "ces"))
    old = write_config(tmp / "old.yaml", work, 42, ["sdrrl", "tsft"])
    new = write_config(tmp / "new.yaml", work, 43, ["sdrrl", "tsft", "cit"])
    return tmp, old, new


def run_export(cfg: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    return subprocess.run([SDRRL, "export", "--config", str(cfg), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env)


def test_kill_9_at_random_moments_leaves_old_or_new_and_no_worker(setup):
    tmp, old_cfg, new_cfg = setup
    pristine = tmp / "pristine"
    done = run_export(old_cfg, pristine)
    assert done.returncode == 0, done.stderr
    ref_new = tmp / "ref_new"
    shutil.copytree(pristine, ref_new)
    start = time.monotonic()
    proc = subprocess.Popen([SDRRL, "export", "--config", str(new_cfg), "--out", str(ref_new)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, SOURCE_DATE_EPOCH=EPOCH))
    marked = next((time.monotonic() for line in proc.stderr if MARK in line), None)
    assert proc.wait(timeout=120) == 0 and marked is not None
    proc.stderr.close()
    total, window = time.monotonic() - start, time.monotonic() - marked
    OLD, NEW = snapshot(pristine), snapshot(ref_new)
    assert OLD != NEW
    # the new export changes data files, dataset_info.json and manifest.json alike
    for name in ("dataset_info.json", "manifest.json", "sdrrl_eng-ind_tl.jsonl"):
        assert OLD[name] != NEW[name], name
    assert "cit_eng-ind_lt.jsonl" in NEW and "cit_eng-ind_lt.jsonl" not in OLD

    reg = tmp / "reg"
    rng = random.Random(1234)
    outcomes = {"old": 0, "new": 0}
    killed_while_running = 0
    for i in range(22):
        if reg.exists():
            shutil.rmtree(reg)
        shutil.copytree(pristine, reg)
        proc = subprocess.Popen([SDRRL, "export", "--config", str(new_cfg), "--out", str(reg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, SOURCE_DATE_EPOCH=EPOCH), start_new_session=True)
        if i % 5 == 0:  # now and then a moment during start-up (config, plan, lock)
            time.sleep(rng.uniform(0, total * 0.6))
        else:  # mostly while the stage is written, switched in and the old folder removed
            marks = [MARK, SWITCHED] if i % 5 == 4 else [MARK]  # some right after the switch
            for mark in marks:
                line = "-"
                while line and mark not in line:
                    line = proc.stderr.readline()
            time.sleep(rng.uniform(0, 0.05) if i % 5 == 4 else rng.uniform(0, window * 1.1))
        killed_while_running += proc.poll() is None
        proc.send_signal(signal.SIGKILL)  # a no-op when it already finished
        proc.wait(timeout=30)
        proc.stderr.close()
        deadline = time.monotonic() + 0.5  # the kernel kills them at once; left alone, they work on
        while live_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not live_members(proc.pid), f"kill {i}: workers outlived the export: {live_members(proc.pid)}"
        state = snapshot(reg)
        assert state in (OLD, NEW), (f"kill {i}: the registry is a mix: differs from the old in "
                                     f"{sorted(k for k in set(state) | set(OLD) if state.get(k) != OLD.get(k))[:6]}, "
                                     f"from the new in {sorted(k for k in set(state) | set(NEW) if state.get(k) != NEW.get(k))[:6]}")
        outcomes["old" if state == OLD else "new"] += 1
    print(f"kills: {killed_while_running} while running; registry old: {outcomes['old']}, new: {outcomes['new']}")
    assert killed_while_running >= 15, (killed_while_running, outcomes)
    assert outcomes["old"] >= 1 and outcomes["new"] >= 4, outcomes  # every 5th kill follows the switch
    # the next export removes what the killed ones left beside the registry and ends at the new one
    done = run_export(new_cfg, reg)
    assert done.returncode == 0, done.stderr
    assert snapshot(reg) == NEW and leftovers(reg) == []
    validate(reg)


def test_disk_full_leaves_the_registry_as_it_was_and_says_so(setup, monkeypatch):
    tmp, old_cfg, new_cfg = setup
    from sdrrl.compose import config as compose_config

    reg = tmp / "full"
    export(compose_config.load(old_cfg), reg)
    before = snapshot(reg)
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # the disk fills up after a few files of the new export were written
        calls.append(fd)
        if len(calls) > 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SdrrlError, match=r"Out of disk space .*while staging the new registry.* was left exactly "
                                         r"as it was \(nothing in it changed\)") as err:
        cfg = compose_config.load(new_cfg)
        cfg.workers = 1  # every write in this process, where the fault is injected
        export(cfg, reg)
    assert "nothing was replaced" not in str(err.value) and ".sdrrl-stage-" not in str(err.value)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert len(calls) > 6
    assert snapshot(reg) == before and leftovers(reg) == []


def test_a_failed_export_changes_nothing(setup):
    """A conflict found after every data file was written: before, the data files were already
    replaced in the registry while dataset_info.json and the manifest stayed old."""
    tmp, old_cfg, new_cfg = setup
    from sdrrl.compose import config as compose_config

    reg = tmp / "conflict"
    export(compose_config.load(old_cfg), reg)
    info = json.loads((reg / "dataset_info.json").read_text())
    info["sdrrl_eng-ind_tl"]["file_name"] = "mine.jsonl"
    (reg / "dataset_info.json").write_text(json.dumps(info))
    (reg / "mine.jsonl").write_bytes((reg / "sdrrl_eng-ind_tl.jsonl").read_bytes())
    before = snapshot(reg)
    with pytest.raises(RegistryError, match="already has a different entry 'sdrrl_eng-ind_tl'") as err:
        export(compose_config.load(new_cfg), reg)
    assert str(reg / "dataset_info.json") in str(err.value)  # names the registry, not the stage
    assert snapshot(reg) == before and leftovers(reg) == []


def test_without_rename_exchange_the_two_rename_switch_and_its_repair(setup, monkeypatch):
    tmp, old_cfg, new_cfg = setup
    from sdrrl.compose import config as compose_config

    monkeypatch.setattr(staging, "exchange", lambda a, b: False)  # as on NFS
    reg = tmp / "nfs"
    export(compose_config.load(old_cfg), reg)
    old = snapshot(reg)
    # a kill between the two renames: the registry moved aside, the new one not yet in place
    os.rename(reg, reg.with_name(f".{reg.name}.{staging.OLD_TAG}999"))
    logs: list[str] = []
    with pytest.raises(SdrrlError):  # an export that fails: the old registry is back, unchanged
        export(helpers.config(tmp, methods=["xcot"], code_switch={"dictionaries": None}), reg, log=logs.append)
    assert any("restored" in line for line in logs)
    assert snapshot(reg) == old and leftovers(reg) == []
    # a kill after both renames: the registry is new, the old folder still beside it
    (reg.with_name(f".{reg.name}.{staging.OLD_TAG}998") / "sub").mkdir(parents=True)
    export(compose_config.load(new_cfg), reg)
    assert "cit_eng-ind_lt.jsonl" in snapshot(reg) and leftovers(reg) == []


def test_a_second_export_into_the_same_registry_waits_for_the_first(setup):
    import fcntl
    import threading

    tmp, old_cfg, _ = setup
    from sdrrl.compose import config as compose_config

    reg = tmp / "locked"
    reg.mkdir()
    fd = os.open(reg, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export holds it
    logs: list[str] = []
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(m=export(compose_config.load(old_cfg), reg,
                                                                   log=logs.append)))
    worker.start()
    deadline = time.monotonic() + 30
    while not any("waiting for another sdrrl export" in line for line in logs) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert any("waiting for another sdrrl export" in line for line in logs) and "m" not in result
    assert not (reg / "dataset_info.json").exists() and leftovers(reg) == []  # nothing staged while waiting
    os.close(fd)
    worker.join(timeout=60)
    assert "m" in result and (reg / "dataset_info.json").is_file()


def test_fork_map_hands_state_over_by_fork_and_reports_what_goes_wrong():
    big = list(range(200_000))  # reached through the closure: inherited by fork, never pickled

    def work(i):
        if i == 3:
            raise SdrrlError(f"item {i} failed")
        if i == 5:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker killed mid-item
        time.sleep(0.05 * (i % 2))  # finish out of order
        return i, os.getpid(), sum(big)

    results = list(staging.fork_map(work, [0, 1, 2], workers=2))
    assert [r[0] for r in results] == [0, 1, 2] and all(r[2] == sum(big) for r in results)
    assert os.getpid() not in {r[1] for r in results}  # each item ran in a child process
    with pytest.raises(SdrrlError, match="item 3 failed"):
        list(staging.fork_map(work, [2, 3, 4], workers=2))
    with pytest.raises(RuntimeError, match=r"worker process died \(exit code -9\) working on 5"):
        list(staging.fork_map(work, [4, 5], workers=2))
