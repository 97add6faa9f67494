"""One writer per directory: advisory locks the kernel releases when their holder dies.

A lock is ``fcntl.flock`` on a small lock file. The kernel drops it when the holder's last file
descriptor closes, so a ``kill -9``'d holder leaves nothing to clean up: the file stays, the lock
does not. The holder writes who it is (pid, host, command line, since when) into the lock file, so a
refused process can name it. (flock works across machines on NFSv4 and Lustre with ``flock``
mounts; on a file system without it, every process on one machine still excludes the others.)

Three kinds of lock, used by every pipeline command (``sdrrl build`` and the stage commands):

* ``WORK/.sdrrl.lock``: the work directory. An unsharded run takes it exclusively; each shard of a
  sharded run takes it shared, so shards run side by side but never next to an unsharded run.
* ``WORK/.sdrrl.shard-I-of-N.lock``: shard I of N, exclusive: one process per shard.
* ``DIR/.sdrrl-shared.lock``: work that shards share (preparing D, sampling, merging shard files in
  DIR), exclusive and held only while doing it, so exactly one process does it.
* ``WORK/.sdrrl.readers.lock``: readers of the work directory (``sdrrl export``) hold it shared, beside
  ``WORK/.sdrrl.lock`` shared (:func:`hold_work_reading`). Readers run side by side, never beside a
  writer: an unsharded run's exclusive ``.sdrrl.lock`` excludes them; a shard, which holds
  ``.sdrrl.lock`` shared as they do, takes its shard lock and then checks (an exclusive probe of
  this file) that no reader holds it, while a reader takes this file and then checks that no shard
  lock is held: of a reader and a shard starting together, at least one sees the other.

A shard that stops on an error records it in ``WORK/.sdrrl.shard-I-of-N.failed`` (removed when the
shard starts again), so the shards waiting for it name the failure at once instead of waiting
silently for up to ``--shard-timeout``.

:class:`DirLock` is the one lock of the project, not tied to the pipeline: ``sdrrl export`` takes one on
its registry folder itself (:mod:`sdrrl.staging`), a tiny-model build one per model (:mod:`sdrrl.tiny`).
Locks are re-entrant within one thread (flock on a second descriptor would conflict with the first);
two threads exclude each other as two processes do.

Holding a lock also makes a process the owner of the temporary files (``.NAME.XXXX.tmp``, written by
:func:`sdrrl.io.atomic_open`) it covers, so it removes those a killed writer left (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import re
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from sdrrl import layout
from sdrrl.errors import SdrrlError
from sdrrl.io import read_json_object

WORK_LOCK = ".sdrrl.lock"
SHARED_LOCK = ".sdrrl-shared.lock"
READERS_LOCK = ".sdrrl.readers.lock"
READER = {"what": "a reader (`sdrrl export`; readers share the lock and leave no name)"}

# (thread, path) -> [fd, mode, depth] for the locks this process holds (re-entrancy). Per thread:
# two threads of one process exclude each other like two processes (each its own descriptor).
_held: dict[tuple[int, str], list] = {}


def _mine(key: str) -> tuple[int, str]:
    return threading.get_ident(), key


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def holder_record(**extra) -> dict:
    now = time.time()
    prog = Path(sys.argv[0])  # the sdrrl script, python -m sdrrl(.cli); not another package's __main__
    ours = prog.name == "sdrrl" or (prog.name in ("cli.py", "__main__.py") and prog.parent.name == "sdrrl")
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "command": shlex.join(["sdrrl", *sys.argv[1:]]) if ours else shlex.join(sys.argv),
            "since": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "since_epoch": now, **extra}


def read_holder(path: Path) -> dict:
    """What the lock file says about its holder ({} if nothing readable)."""
    return read_json_object(path)


def describe(info: dict) -> str:
    if not info.get("pid"):
        return info.get("what") or "another process (it has not written its name yet)"
    ago = ""
    if isinstance(info.get("since_epoch"), (int, float)):
        ago = f", {max(0, int(time.time() - info['since_epoch']))} s ago"
    host = f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    return f"pid {info['pid']}{host} (`{info.get('command', '?')}`), since {info.get('since', '?')}{ago}"


def is_locked(path: Path, shared_too: bool = False) -> bool:
    """Whether some process holds ``path`` exclusively now (``shared_too``: or shared; that probe is
    exclusive itself, for a moment). A probe; the answer may change at once."""
    key = str(Path(path).resolve())
    if any(held == key for _thread, held in _held):
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if shared_too else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


class DirLock:
    """An flock on ``path`` (a lock file, created if missing, or an existing folder itself); ``shared``
    for readers-side-by-side. Use as a context manager or ``acquire``/``release``. ``what`` names the
    locked thing in messages ("work directory W"); ``say`` prints the wait messages (stderr), and
    ``waiting`` replaces their text.

    The lock is on the file the path names when it is taken: a path removed or replaced meanwhile
    (a lock file pruned, a folder swapped by :func:`sdrrl.staging.replace_dir`) is locked again."""

    def __init__(self, path: str | os.PathLike, what: str, shared: bool = False, record: bool = True,
                 holders: Callable[[], list[dict]] | None = None, say: Callable[[str], None] | None = None,
                 waiting: str | None = None):
        self.path = Path(path)
        self.what = what
        self.shared = shared
        # a shared lock has several holders, and a folder holds no text: no single record
        self.record = record and not shared and not self.path.is_dir()
        self.holders = holders
        self.say = say or _say
        self.waiting = waiting
        self._key = str(self.path.resolve())

    def _describe_holders(self) -> str:
        infos = self.holders() if self.holders else []
        if not infos:
            infos = [read_holder(self.path)]
        return "; ".join(describe(i) for i in infos)

    def acquire(self, wait: float | None = 0.0, poll_s: float = 0.5, say_every_s: float = 60.0,
                quiet_s: float = 0.0) -> "DirLock":
        """Take the lock. ``wait`` 0: refuse at once if it is held; None: wait as long as it takes;
        a number: wait up to that many seconds. A wait longer than ``quiet_s`` prints who holds the lock."""
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if _mine(self._key) in _held:
            held = _held[_mine(self._key)]
            if held[1] == fcntl.LOCK_SH and mode == fcntl.LOCK_EX:
                raise RuntimeError(f"{self.path}: cannot upgrade a shared lock held by this process")
            held[2] += 1
            return self
        start = time.monotonic()
        last_say = None
        # "at once" still allows a moment: a probe (is_locked) may hold the file for microseconds
        limit = 0.3 if wait == 0 else wait
        fd = self._open()
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    if self._still_at_path(fd):
                        break
                    os.close(fd)  # locked a file that is no longer at the path: lock the one there now
                    fd = -1
                    fd = self._open()
                    continue
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                waited = time.monotonic() - start
                if limit is not None and waited >= limit:
                    if not wait:
                        raise SdrrlError(
                            f"The {self.what} is in use by {self._describe_holders()}; one writer at a time.",
                            "wait for it to finish, or run the same command with --wait to start when it does "
                            "(a killed holder releases the lock by itself).")
                    raise SdrrlError(f"Waited {waited:.0f} s for the {self.what}, still in use by "
                                     f"{self._describe_holders()}.",
                                     "wait longer (--wait with no number waits as long as it takes).")
                due = last_say is None or time.monotonic() - last_say >= say_every_s
                if wait != 0 and waited >= quiet_s and due:
                    last_say = time.monotonic()
                    self.say(self.waiting or f"waiting for the {self.what}, held by {self._describe_holders()} "
                             f"({waited:.0f} s so far{'' if wait is None else f' of at most {wait:.0f}'}).")
                time.sleep(min(poll_s, 0.1) if wait == 0 else poll_s)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        if self.record:
            data = json.dumps(holder_record()).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        _held[_mine(self._key)] = [fd, mode, 1]
        return self

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path.is_dir():
                return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise SdrrlError(f"Cannot open the lock file {str(self.path)!r}: {err.strerror or err}.",
                             "make the directory writable for this user.") from None

    def _still_at_path(self, fd: int) -> bool:
        held = os.fstat(fd)
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        held = _held.get(_mine(self._key))
        if held is None:
            return
        held[2] -= 1
        if held[2] > 0:
            return
        del _held[_mine(self._key)]
        if self.record:  # no stale name for the next holder's first moments (a killed holder cannot do this)
            with contextlib.suppress(OSError):
                os.ftruncate(held[0], 0)
        os.close(held[0])  # closing the descriptor drops the flock

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- temporary files -------------------------------------------------------------------------------

# sdrrl.io.atomic_open names them ".{dest.name}.{8 random}.tmp" (tempfile.mkstemp)
_TEMP = re.compile(r"^\.(?P<dest>.+)\.[A-Za-z0-9_]{8}\.tmp$")
_SHARD = re.compile(r"\.shard-\d+-of-\d+(\.|$)")


def remove_stale_temps(directory: Path, keep: Callable[[str], bool] = lambda dest: False,
                       recursive: bool = False) -> list[Path]:
    """Remove temporary files of :func:`sdrrl.io.atomic_open` whose destination name ``keep`` does not
    claim (for a live writer). Call only while holding the lock that covers those writers."""
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    walk = os.walk(directory) if recursive else [(str(directory), [], os.listdir(directory))]
    for root, _dirs, files in walk:
        for name in files:
            m = _TEMP.match(name)
            if not m or keep(m.group("dest")):
                continue
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


# sdrrl.pipeline.translate converts models into ".{name}.converting-{8 random}" (tempfile.mkdtemp)
_CONVERTING = re.compile(r"^\..+\.converting-[A-Za-z0-9_]{8}$")


def remove_stale_conversions(directory: Path) -> list[Path]:
    """Remove half-made CTranslate2 conversions in ``directory`` (call only holding its lock)."""
    import shutil

    removed = []
    if Path(directory).is_dir():
        for p in Path(directory).iterdir():
            if _CONVERTING.match(p.name) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def _report_removed(removed: list[Path], label: str) -> None:
    if removed:
        _say(f"{label}: removed {len(removed)} temporary file(s) a killed run left "
             f"({', '.join(str(p) for p in removed[:3])}{' ...' if len(removed) > 3 else ''}).")


# -- the pipeline's locks --------------------------------------------------------------------------

def shard_lock_path(work: Path, num_shards: int, shard_index: int) -> Path:
    return Path(work) / f".sdrrl.shard-{shard_index}-of-{num_shards}.lock"


def shard_failure_path(work: Path, num_shards: int, shard_index: int) -> Path:
    """Where shard I of N records why it stopped; removed when the shard starts again."""
    return Path(work) / f".sdrrl.shard-{shard_index}-of-{num_shards}.failed"


def _record_failure(path: Path, err: BaseException) -> None:
    from sdrrl.io import write_json

    text = str(err).strip() or type(err).__name__
    with contextlib.suppress(OSError):  # a full disk must not hide the error itself
        write_json(path, holder_record(error=f"{type(err).__name__}: {text}"[:1000]))


def shard_failure(work: Path, num_shards: int, shard_index: int) -> dict:
    """Shard I of N's failure record, if it failed and has not been started again ({} otherwise)."""
    path = shard_failure_path(work, num_shards, shard_index)
    info = read_holder(path)
    if not info or is_locked(shard_lock_path(work, num_shards, shard_index)):
        return {}
    return info


def _shard_locks(work: Path) -> list[tuple[Path, int]]:
    """The shard lock files in ``work`` with their shard counts."""
    out = []
    for p in sorted(Path(work).glob(".sdrrl.shard-*-of-*.lock")):
        m = re.match(r"\.sdrrl\.shard-\d+-of-(\d+)\.lock$", p.name)
        if m:
            out.append((p, int(m.group(1))))
    return out


def _live_shard_holders(work: Path) -> list[dict]:
    out = []
    for p, _n in _shard_locks(work):
        if is_locked(p):
            info = read_holder(p)
            out.append(info)
    return out


@contextlib.contextmanager
def hold_work(work: str | os.PathLike, num_shards: int = 1, shard_index: int = 0,
              wait: float | None = 0.0) -> Iterator[None]:
    """Hold the work directory for one pipeline command: exclusively when unsharded, or for shard I
    of N (shared with the other shards). Removes the temporary files this holder owns that a
    killed run left: all of them under WORK when unsharded, its own shard's when sharded."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if num_shards == 1:
        main = DirLock(work / WORK_LOCK, f"work directory {work}", holders=lambda: _holders(work))
        with acquired(main, wait):
            # the default cache root is WORK, so its converted models are in WORK/ct2 (a --cache elsewhere
            # may be shared with other work directories: not ours to clean)
            removed = remove_stale_temps(work, recursive=True) + remove_stale_conversions(layout.ct2_dir(work))
            _report_removed(removed, "work directory")
            yield
        return
    main = DirLock(work / WORK_LOCK, f"work directory {work} (for shard {shard_index} of {num_shards})",
                   shared=True, holders=lambda: [read_holder(work / WORK_LOCK)])
    shard = DirLock(shard_lock_path(work, num_shards, shard_index),
                    f"shard {shard_index} of {num_shards} of work directory {work}")
    tag = f".shard-{shard_index}-of-{num_shards}."  # the dot: shard-1-of-2 is not shard-1-of-20
    readers = DirLock(work / READERS_LOCK, f"work directory {work} (for shard {shard_index} of {num_shards})",
                      record=False, holders=lambda: [READER])
    with _shard_held(main, shard, readers, wait):
        others = [(p, n) for p, n in _shard_locks(work) if n != num_shards and is_locked(p)]
        if others:  # acquired first, checked second: of two runs starting together, neither slips through
            raise SdrrlError(
                f"The work directory {work} is in use by a run with --num-shards {others[0][1]}, not {num_shards}: "
                f"{describe(read_holder(others[0][0]))}.",
                "give every shard of a run the same --num-shards (and config), or wait for that run to end.")
        removed = remove_stale_temps(work, keep=lambda dest: tag not in dest, recursive=True)
        _report_removed(removed, f"shard {shard_index}/{num_shards}")
        failed = shard_failure_path(work, num_shards, shard_index)
        with contextlib.suppress(FileNotFoundError):
            failed.unlink()  # restarted: the last attempt's failure is history
        try:
            yield
        except BaseException as err:  # the other shards, waiting for this one, read it (wait_for_shards)
            if not isinstance(err, GeneratorExit) and not (isinstance(err, SystemExit) and not err.code):
                _record_failure(failed, err)
            raise


class _Patience:
    """Waiting for a holder to let go: refuse at once (``wait`` 0), give up after ``wait`` seconds, or
    wait as long as it takes (None), saying now and then whom it waits for."""

    def __init__(self, wait: float | None, poll_s: float = 0.5, say_every_s: float = 60.0):
        self.wait, self.poll_s, self.say_every_s = wait, poll_s, say_every_s
        self.start, self.last = time.monotonic(), None

    def tick(self, what: str, holders: str, refusal: SdrrlError) -> None:
        """One more round: raise ``refusal`` (wait 0) or a timeout, else say so (now and then) and sleep."""
        waited = time.monotonic() - self.start
        if self.wait is not None and waited >= self.wait:
            if not self.wait:
                raise refusal
            raise SdrrlError(f"Waited {waited:.0f} s for the {what}, still held by {holders}.",
                             "wait longer (--wait with no number waits as long as it takes).")
        if self.last is None or time.monotonic() - self.last >= self.say_every_s:
            self.last = time.monotonic()
            _say(f"waiting for the {what}, held by {holders} ({waited:.0f} s so far).")
        time.sleep(self.poll_s)


@contextlib.contextmanager
def _shard_held(main: DirLock, shard: DirLock, readers: DirLock, wait: float | None) -> Iterator[None]:
    """The work directory (shared) and the shard's lock, once no reader holds the work directory: the
    readers' lock is probed after the shard lock is taken, and a shard that finds a reader lets go of
    both while it waits (the reader may be waiting for this very shard lock to be free)."""
    patience = _Patience(wait)
    while True:
        with acquired(main, wait), acquired(shard, wait):
            try:
                readers.acquire(0.0)
            except SdrrlError as err:
                refused = err
            else:
                readers.release()
                yield
                return
        patience.tick(readers.what, describe(READER), refused)


def _holders(work: Path) -> list[dict]:
    """Who holds the work directory: its shards, else the exclusive holder's record, else readers."""
    held = _live_shard_holders(work) or [read_holder(work / WORK_LOCK)]
    if not held[0] and is_locked(work / READERS_LOCK, shared_too=True):
        return [READER]
    return held


@contextlib.contextmanager
def hold_work_reading(work: str | os.PathLike, wait: float | None = 0.0, poll_s: float = 0.5,
                      say_every_s: float = 60.0) -> Iterator[None]:
    """Hold the work directory as a reader (``sdrrl export``): beside other readers, never beside a
    writer (an unsharded pipeline run, or a shard of a sharded one). ``wait`` as :func:`hold_work`."""
    work = Path(work)
    main = DirLock(work / WORK_LOCK, f"work directory {work}", shared=True, holders=lambda: _holders(work))
    readers = DirLock(work / READERS_LOCK, f"work directory {work}", shared=True)
    with acquired(main, wait), acquired(readers, wait):
        patience = _Patience(wait, poll_s, say_every_s)
        while shards := _live_shard_holders(work):  # checked after taking the readers' lock (module docstring)
            names = "; ".join(describe(i) for i in shards)
            patience.tick(f"work directory {work}", names, SdrrlError(
                f"The work directory {work} is being written by {names}; its outputs are not complete until every "
                "shard is done.", "wait for the build to finish, or run the same command with --wait to start when it "
                "does."))
        yield


@contextlib.contextmanager
def acquired(lock: DirLock, wait: float | None, quiet_s: float = 0.0) -> Iterator[DirLock]:
    lock.acquire(wait, quiet_s=quiet_s)
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def shared_work(directory: str | os.PathLike, label: str = "shared work") -> Iterator[None]:
    """Hold ``DIR/.sdrrl-shared.lock`` while doing work that shards share in DIR (waits as long as
    another shard does it). Removes the unsharded temporary files in DIR a killed run left: only
    a holder of this lock (or of the whole work directory) writes them."""
    directory = Path(directory)
    lock = DirLock(directory / SHARED_LOCK, f"lock for the {label} in {directory}")
    first = _mine(lock._key) not in _held
    with acquired(lock, None, quiet_s=2.0):  # merges take a moment; say so only when it is long
        if first:
            removed = remove_stale_temps(directory, keep=lambda dest: bool(_SHARD.search(dest)))
            _report_removed(removed, label)
        yield
