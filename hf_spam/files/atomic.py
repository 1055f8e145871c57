"""Writing outputs: refuse to clobber, write aside and move into place, name what failed.

Every output hf_spam writes (a trained model, a converted checkpoint, reports, a dry-run upload,
a saved data set, predictions) goes through `atomic_output_dir`, `atomic_file` or
`write_text`/`write_json`: it is written beside its destination and renamed into place only when
complete, so a crash, a full disk or a kill leaves the destination as it was. A user's output
(named by a flag) is also locked while it is written (`locks.py`): one writer at a time.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, TextIO

from ..errors import HfSpamError, OutputExistsError
from .locks import output_lock, remove_leftovers

#: How every temporary beside an output `name` starts: `.<name>` + one of these + random letters.
TEMPORARY_PREFIXES = (".tmp-", ".old-")


class OutputWriteError(HfSpamError, OSError):
    """An output could not be written; its destination was left as it was."""


def check_output_dir(
    path: str | os.PathLike,
    overwrite: bool,
    flag: str = "--output_dir",
    overwrite_flag: str = "--overwrite_output_dir",
) -> Path:
    """Refuse to write into a non-empty folder unless asked to (`overwrite_flag`), before any
    work starts."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{flag} {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{flag} {path} exists and is not empty; pass {overwrite_flag} to replace it"
        )
    return path


@contextmanager
def atomic_output_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    flag: str = "--output_dir",
    overwrite_flag: str = "--overwrite_output_dir",
) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that replaces `path` only if the block succeeds.

    A failure half-way leaves no half-written output behind, and an existing `path` untouched.
    The folder is locked for the block (a second writer is refused, naming `flag`), and what a
    stopped writer left beside it is removed first.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path, flag):
        path = check_output_dir(path, overwrite, flag, overwrite_flag)
        remove_leftovers(path, *TEMPORARY_PREFIXES)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            yield tmp
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(err, OSError) and err.filename:  # name the file at its destination
                err.filename, err.filename2 = (
                    _moved(f, tmp, path) for f in (err.filename, err.filename2)
                )
            raise
        replace_dir(tmp, path)


def _moved(filename: Any, tmp: Path, path: Path) -> Any:
    """`filename` under `path` if it lies under `tmp` (else unchanged)."""
    if not filename:
        return filename
    try:
        return str(path / Path(filename).relative_to(tmp))
    except ValueError:
        return filename


def write_failure(err: BaseException) -> str | None:
    """The reason if `err` is a failed write (full disk, file-size limit, permissions), else None.

    safetensors reports its I/O errors as `SafetensorError("Error while serializing: I/O error:
    ...")`, without errno or file name, so its message is read.
    """
    if isinstance(err, OSError) and not isinstance(err, HfSpamError):
        return err.strerror or (str(err).strip().splitlines() or [type(err).__name__])[0]
    if type(err).__name__ == "SafetensorError" and "I/O error" in str(err):
        return str(err).split("I/O error:", 1)[1].strip()
    return None


#: errno values that mean the disk refused a write (full, over a file-size limit or a quota,
#: read-only): whatever was being read, the fault is the file being written.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


def full_disk_error(err: BaseException, written: str | os.PathLike) -> OSError | None:
    """An OSError naming `written` (the file being written) if a refused write is behind `err`,
    else None. datasets wraps its Arrow writer's errors as "cannot generate the dataset", and
    pyarrow's name no file, so a full cache would otherwise read as unreadable input."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in WRITE_ERRNOS:
            return OSError(seen.errno, seen.strerror, str(seen.filename or written))
        seen = seen.__cause__ or seen.__context__
    return None


def writing(target: str | os.PathLike, write: Callable[[], Any], keeps: str | None = None) -> Any:
    """Run `write`; any failure becomes one `OutputWriteError` line naming `target` (the file or
    folder being written), whatever library did the writing. `keeps`: what is left as it was
    (default: `target`'s folder keeps its previous outputs)."""
    try:
        return write()
    except HfSpamError:
        raise
    except Exception as err:
        reason = write_failure(err) or (str(err).strip().splitlines() or [""])[0]
        reason = reason or type(err).__name__
        target = Path(target)
        kept = keeps or f"{target.parent} keeps its previous outputs"
        raise OutputWriteError(f"{target}: could not be written ({reason}); {kept}") from err


def replace_dir(source: Path, target: Path) -> None:
    """Move the finished folder `source` to `target`, replacing what is there in one rename.

    The old folder is moved aside first and deleted only after the new one is in place.
    """
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    """Serialise numpy scalars/arrays, tensors and paths, which metric dicts routinely contain."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


@contextmanager
def _temporary_beside(path: Path, flag: str | None) -> Iterator[Path]:
    """A temporary file's path beside `path` (`.NAME.tmp-*.tmp`), renamed onto `path` when the
    block completes, removed if it fails; an `OSError` names `path`, not the temporary file.
    `flag`: the output is the user's (the flag naming it): locked for the block, and what a
    stopped writer left beside it removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path, flag) if flag else nullcontext():
        if flag:
            remove_leftovers(path, *TEMPORARY_PREFIXES)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        except BaseException as err:
            with suppress(OSError):
                os.unlink(tmp)
            if (
                isinstance(err, OSError)
                and not isinstance(err, HfSpamError)
                and err.filename
                in (
                    None,
                    tmp,
                )
            ):
                err.filename = str(path)  # the file the user asked for, not the temporary one
            raise


@contextmanager
def atomic_file(path: str | os.PathLike, flag: str | None = None) -> Iterator[TextIO]:
    """A text file beside `path`, renamed onto it only when the block completes (for outputs
    that stream, record by record). A failure leaves no file and `path` as it was. `flag`: see
    `_temporary_beside`."""
    with _temporary_beside(Path(path), flag) as tmp:
        # newline="": CSV writers end their own lines; the last flush happens at close, so a
        # full disk can fail there too
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            yield handle


def write_file(
    path: str | os.PathLike, write: Callable[[Path], Any], flag: str | None = None
) -> Path:
    """`write(tmp)` into a temporary file beside `path`, then renamed: readers see the old
    file or the new one, and a failure (a full disk) names `path`, leaving no partial file.
    For writers that take a path (a plot's `savefig`; the temporary name ends in `.tmp`, so a
    writer that picks the format by the suffix must be told it). Libraries' write errors
    (Pillow's, pyarrow's) name no file; the one the user asked for is put in."""
    with _temporary_beside(Path(path), flag) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, flag: str | None = None) -> Path:
    """Write a text file beside the target, then rename: readers see the old or the new file
    (`atomic_file`, whose `flag` locks a user's output)."""
    with atomic_file(path, flag) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, flag: str | None = None) -> Path:
    """`obj` as indented JSON, written atomically (see `write_text`)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    return write_text(path, text, flag)


__all__ = [
    "TEMPORARY_PREFIXES",
    "WRITE_ERRNOS",
    "OutputWriteError",
    "atomic_file",
    "atomic_output_dir",
    "check_output_dir",
    "full_disk_error",
    "replace_dir",
    "write_failure",
    "write_file",
    "write_json",
    "write_text",
    "writing",
]
