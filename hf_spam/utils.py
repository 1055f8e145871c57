"""Small helpers shared by the library and the scripts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to write into a non-empty folder unless asked to, before any work starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {path} exists and is not empty; pass --overwrite_output_dir to replace it"
        )
    return path


@contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that replaces `path` only if the block succeeds.

    A failure half-way leaves no half-written output behind, and an existing `path` untouched.
    """
    path = check_output_dir(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


__all__ = ["atomic_output_dir", "check_output_dir"]
