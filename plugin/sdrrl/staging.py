"""Replace a whole folder in one atomic step; run worker processes that never outlive their parent.

``replace_dir(DIR)`` is how ``sdrrl export`` writes a registry as a transaction:

1. It takes an exclusive lock on ``DIR`` itself (a :class:`sdrrl.pipeline.lock.DirLock`: an ``flock``
   the kernel drops when the holder dies, so a killed export is never an obstacle); a second export
   into the same folder waits for the first.
2. It removes what a killed export left next to ``DIR`` (``.DIR.sdrrl-stage-*`` folders).
3. It makes the stage ``PARENT/.DIR.sdrrl-stage-XXXX`` on the same file system and fills it with
   hard links to every file of ``DIR`` (sub-folders and symlinks are recreated; a file that cannot
   be linked is copied). Nothing is written into ``DIR`` while the caller works: the caller writes
   the new files into the stage, each with ``atomic_open`` (a new inode), so the hard-linked old
   files, which are shared with the live folder, are never modified in place.
4. On success it swaps the stage and ``DIR`` with ``renameat2(RENAME_EXCHANGE)``: one system call,
   after which ``DIR`` is the new folder; then it deletes the old one (now at the stage's path).
   On an error, ``KeyboardInterrupt`` or ``kill -9`` before the swap, ``DIR`` was never touched;
   the stage is removed (or, after a kill, by the next export).

Readers (LLaMA-Factory, ``sdrrl train``) therefore see the old folder or the new one, never a mix,
and the layout inside ``DIR`` is unchanged (``DIR/dataset_info.json``, ``DIR/{name}.jsonl``,
``DIR/manifest.json``, regular files). Where the file system lacks ``RENAME_EXCHANGE`` (NFS,
non-Linux), the swap is two renames (``DIR`` -> ``.DIR.sdrrl-old-PID``, stage -> ``DIR``); a kill
in the microseconds between them leaves ``DIR`` absent or empty and the next export puts the old
folder back before it starts. The stage needs write access to ``DIR``'s parent folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

from sdrrl.errors import SdrrlError
from sdrrl.pipeline.lock import DirLock

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_PR_SET_PDEATHSIG = 1
STAGE_TAG = "sdrrl-stage-"
T = TypeVar("T")
R = TypeVar("R")
OLD_TAG = "sdrrl-old-"


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Pool initializer: the kernel sends this process ``sig`` (SIGKILL) when its parent dies.

    Without it, ``kill -9`` of the parent re-parents the workers to init and they keep working.
    Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes, libc = _libc()
        libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def fork_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for every item in forked child processes, at most ``workers`` at a time, one child
    per item; yields the results in ``items``' order as they come.

    ``fn`` and everything it reaches are inherited through ``fork`` (copy-on-write), never pickled:
    large shared inputs cost nothing to hand over, and no module global carries them. Only results
    travel back (pickled). A child dies with its parent (:func:`die_with_parent`); an exception in a
    child is raised here; a child that dies without a result (killed) is an error naming its item."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    parent = os.getpid()

    def child(conn, item) -> None:
        die_with_parent(parent)
        try:
            outcome = ("ok", fn(item))
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent
            outcome = ("error", err)
        try:
            conn.send(outcome)
        except Exception as err:  # noqa: BLE001 - an unpicklable result or exception: say what it was
            conn.send(("error", RuntimeError(f"{type(outcome[1]).__name__} in a worker: {outcome[1]} ({err})")))
        conn.close()

    todo = list(enumerate(items))
    todo.reverse()
    running: dict[int, tuple] = {}
    done: dict[int, tuple] = {}
    next_out = 0
    try:
        while next_out < len(items):
            while todo and len(running) < max(1, workers):
                i, item = todo.pop()
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=child, args=(send, item), daemon=True)
                proc.start()
                send.close()
                running[i] = (proc, receive)
            ready = wait([receive for _, receive in running.values()])
            for i, (proc, receive) in list(running.items()):
                if receive not in ready:
                    continue
                try:
                    done[i] = receive.recv()
                except EOFError:
                    proc.join()
                    done[i] = ("error", RuntimeError(f"a worker process died (exit code {proc.exitcode}) "
                                                     f"working on {items[i]!r}"))
                proc.join()
                receive.close()
                del running[i]
            while next_out in done:
                status, value = done.pop(next_out)
                next_out += 1
                if status == "error":
                    raise value
                yield value
    finally:
        for proc, receive in running.values():
            proc.kill()
            proc.join()
            receive.close()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system does not support it; raises other errors."""
    try:
        ctypes, libc = _libc()
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _siblings(target: Path, tag: str) -> list[Path]:
    prefix = f".{target.name}.{tag}"
    try:
        return sorted(target.parent / n for n in os.listdir(target.parent) if n.startswith(prefix))
    except OSError:
        return []


def _restore_interrupted_swap(target: Path, log: Callable[[str], None]) -> bool:
    """After a kill between the two renames of the fallback swap, put the old folder back."""
    olds = _siblings(target, OLD_TAG)
    if not olds:
        return False
    try:
        empty = not any(target.iterdir())
    except FileNotFoundError:
        empty = True
    if not empty:
        return False
    os.rename(olds[-1], target)  # replaces the empty folder atomically
    log(f"restored {target} from {olds[-1].name}, left by an export killed while switching")
    return True


def _lock(target: Path, log: Callable[[str], None]) -> DirLock:
    """An exclusive lock on the registry folder itself (a :class:`DirLock` follows the folder when it
    is swapped), taken after any swap a killed export left half done is undone."""
    while True:
        if target.exists() and not target.is_dir():
            raise SdrrlError(f"{str(target)!r} is a file, not a registry folder.", "choose a folder for --out.")
        with contextlib.suppress(FileExistsError):
            target.mkdir()
        held = DirLock(target, f"registry folder {target}", say=log,
                       waiting=f"waiting for another sdrrl export into {target} to finish")
        held.acquire(wait=None, say_every_s=float("inf"))
        if not _restore_interrupted_swap(target, log):
            return held
        held.release()  # the restored folder is another inode: lock that one


def _link_tree(src: Path, dst: Path) -> None:
    """Give ``dst`` (an empty folder) the content of ``src``: hard links, copies where links fail."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        out = dst / rel
        for d in dirs:
            s = Path(root) / d
            if s.is_symlink():
                os.symlink(os.readlink(s), out / d)
            else:
                (out / d).mkdir()
                os.chmod(out / d, stat.S_IMODE(s.stat().st_mode))
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        for f in files:
            s = Path(root) / f
            if s.is_symlink():
                os.symlink(os.readlink(s), out / f)
                continue
            try:
                os.link(s, out / f)
            except OSError:
                shutil.copy2(s, out / f)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, _files in os.walk(path):
        _fsync_dir(Path(root))


def _swap(stage: Path, target: Path) -> None:
    if exchange(stage, target):
        return
    old = target.with_name(f".{target.name}.{OLD_TAG}{os.getpid()}")
    os.rename(target, old)
    os.rename(stage, target)
    os.rename(old, stage)  # the caller deletes the old folder at the stage's path


def resolve(target: str | os.PathLike) -> Path:
    """The real path of a registry folder (a symlinked folder is replaced where it really lives)."""
    return Path(os.path.realpath(os.path.abspath(target)))


@contextlib.contextmanager
def replace_dir(target: str | os.PathLike, *, log: Callable[[str], None] = lambda s: None) -> Iterator[Path]:
    """Yield a stage holding a copy of ``target``; on clean exit, make it ``target`` in one step.

    An exception inside the block leaves ``target`` exactly as it was (the stage is removed).
    """
    target = resolve(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        held = _lock(target, log)
    except OSError as err:
        raise SdrrlError(f"Cannot open the registry folder {str(target)!r}: {err.strerror or err}.",
                         "choose a writable output folder, or fix its permissions.") from None
    try:
        for left in _siblings(target, STAGE_TAG) + _siblings(target, OLD_TAG):  # OLD: a switch that completed
            shutil.rmtree(left, ignore_errors=True)
            log(f"removed {left}, left by an interrupted export")
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.{STAGE_TAG}", dir=parent))
        except OSError as err:
            raise SdrrlError(
                f"Cannot create the staging folder next to {str(target)!r}: {err.strerror or err}; "
                f"{str(target)!r} was left as it was.",
                f"the export writes the new registry beside the old one and swaps them in one step, so it "
                f"needs write access to {str(parent)!r}: fix its permissions, or export to another folder.") from None
        try:
            os.chmod(stage, stat.S_IMODE(os.stat(target).st_mode))
            _link_tree(target, stage)
            yield stage
            _fsync_tree(stage)
            try:
                cwd = os.getcwd()
            except OSError:
                cwd = ""
            _swap(stage, target)
            log(f"switched {target} to the new content in one step; removing the old one")
            if cwd == str(target) or cwd.startswith(str(target) + os.sep):
                with contextlib.suppress(OSError):
                    os.chdir(cwd)  # stay in the (new) folder of that name, not the old one
                log(f"note: the current directory was inside {target}, which is now a new folder: "
                    f"a shell started there still sees the old (deleted) one; `cd \"$PWD\"` shows the new one")
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _fsync_dir(parent)
        shutil.rmtree(stage, ignore_errors=True)  # the old folder; a kill here: the next export removes it
    finally:
        held.release()
