"""One writer per output: an OS lock beside each folder or file a command writes, and the
clean-up of what a dead writer left.

Two commands writing the same folder would delete or rename each other's files. A writer takes an
exclusive `flock` on `.<name>.lock` beside its output before it writes anything and keeps it until
it is done; a second writer is refused at once and told which process holds it (the holder writes
its process id, host and command into the lock file). The OS drops a `flock` when its holder dies,
however it dies (SIGKILL, out of memory, power loss), so a lock file left behind is stale by
definition and is taken over; and whatever temporary files lie beside an output whose lock is held
were left by a dead writer, so they are removed at the next start instead of hours later.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputBusyError

try:
    import fcntl
except ImportError:  # Windows: no flock; outputs are still written aside and moved into place
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: The locks this process holds: path -> [descriptor, depth]. A nested lock of the same output
#: (a command calling a helper that locks it too) is the same lock, not a conflict with itself.
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()

#: What `mkdtemp`/`mkstemp` append to a prefix: letters, digits and `_`, never a dot.
_RANDOM = re.compile(r"[A-Za-z0-9_]+")


def lock_file(path: str | os.PathLike) -> Path:
    """The lock of output `path`: `.<name>.lock` beside it, so it outlives the renames that put
    a new folder in place of the old one."""
    path = Path(path).expanduser().absolute()
    return path.parent / f".{path.name}.lock"


def _holder(lock: Path) -> dict[str, object]:
    """What the lock's holder wrote of itself ({} when unreadable: it is being written)."""
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _who(lock: Path) -> str:
    """The holder of `lock` as the messages name it: process id, host if not this one, command."""
    holder = _holder(lock)
    who = f"process {holder.get('pid', '?')}"
    if holder.get("host") and holder.get("host") != socket.gethostname():
        who += f" on {holder['host']}"
    if holder.get("command"):
        who += f" ({holder['command']})"
    return who


def _acquire(lock: Path, blocking: bool) -> int | None:
    """A descriptor holding `lock`, or None if another process holds it (`blocking` waits).

    A holder that finishes deletes the lock file while holding it; whoever opened that file in
    the meantime holds a lock on a deleted file, so the lock is taken again until the file
    locked is the one at the path.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def output_lock(
    path: str | os.PathLike, flag: str = "--output_dir", *, wait: bool = False
) -> Iterator[None]:
    """Hold the lock of output `path` for the block: one writer at a time.

    Another holder makes this raise `OutputBusyError` at once (naming `flag`, `path` and the
    holder's process id), or, with `wait` (a shared cache that the other process is filling),
    wait for it with a log line. A lock file whose holder died is taken over, with a log line.
    """
    path = Path(path).expanduser().absolute()
    if fcntl is None:
        yield
        return
    with _HELD_GUARD:
        held = _HELD.get(path)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    lock = lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock, blocking=False)
    if fd is None:
        if not wait:
            raise OutputBusyError(
                f"{flag} {path} is being written by {_who(lock)}; wait for it to finish or "
                f"choose another output (its lock: {lock})"
            )
        logger.warning("%s %s is being written by %s; waiting for it", flag, path, _who(lock))
        fd = _acquire(lock, blocking=True)
    stale = _holder(lock)
    if stale.get("pid"):
        logger.info("%s: taking over the lock left by process %s, no longer running", path,
                    stale["pid"])  # fmt: skip
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    with _HELD_GUARD:
        _HELD[path] = [fd, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            del _HELD[path]
        lock.unlink(missing_ok=True)  # while still held: see `_acquire`
        os.close(fd)


def holds_lock(path: str | os.PathLike) -> bool:
    """Whether this process holds the lock of output `path`."""
    return Path(path).expanduser().absolute() in _HELD


def _command() -> str:
    words = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    command = " ".join(words)
    return command if len(command) <= 120 else command[:117] + "..."


def remove_leftovers(path: str | os.PathLike, *prefixes: str) -> list[Path]:
    """Delete the temporary files and folders beside output `path` named `.<name><prefix><random>`
    (what `mkdtemp`/`mkstemp` made for a writer of `path`). Call it holding `path`'s lock: then
    no live writer owns them, they were left by a dead one. Returns what was removed."""
    path = Path(path).expanduser().absolute()
    if not holds_lock(path) or not path.parent.is_dir():
        return []
    removed = []
    for prefix in prefixes:
        start = f".{path.name}{prefix}"
        for leftover in path.parent.glob(glob.escape(start) + "*"):
            rest = leftover.name[len(start) :].removesuffix(".tmp")
            if not _RANDOM.fullmatch(rest):
                continue  # another output's temporary (`out.x` has `.out.x.tmp-*`)
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if removed:
        logger.info("%s: removed %s, left by a writer that was stopped", path,
                    ", ".join(p.name for p in removed))  # fmt: skip
    return removed


__all__ = ["holds_lock", "lock_file", "output_lock", "remove_leftovers"]
