"""Small helpers shared by the library and the scripts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX).

    Without it oneDNN emulates bf16 through fp32 with conversions, so `--bf16` on such a CPU
    (AVX2-only machines, many AMD EPYC and older Intel parts) runs several times slower than fp32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def cpu_name() -> str:
    """The CPU's model name (for benchmark tables), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


__all__ = ["atomic_output_dir", "check_output_dir", "cpu_has_native_bf16", "cpu_name"]
