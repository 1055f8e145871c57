"""What this machine can do: the CPU's name, whether bf16 pays off on it, how fast it
multiplies fp32 matrices, and how much memory it has."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags as Linux lists them on x86 (`avx512_bf16`, `amx_bf16`, ...); None
    where there is no such file or line (ARM lists `Features` instead)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_has_fast_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether bf16 matrix products beat fp32 on this CPU, which takes AMX tiles.

    Without AVX512-BF16 oneDNN emulates bf16 through fp32 (several times slower); with
    AVX512-BF16 but no AMX it converts around every op, which may or may not pay (the speed
    benchmark measures both; docs/benchmarks.md). Without x86 flags (other systems, ARM),
    torch's test decides.
    """
    flags = cpu_flags(cpuinfo)
    if flags is not None:
        return "amx_bf16" in flags
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


def machine_memory() -> int | None:
    """Bytes of memory this machine has: its RAM plus the largest GPU's (a model on a GPU
    still passes through memory the host maps), or None where the OS does not say."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    gpu = 0
    if torch.cuda.is_available():
        gpu = max(torch.cuda.get_device_properties(i).total_memory
                  for i in range(torch.cuda.device_count()))  # fmt: skip
    return ram + gpu


def matmul_gflops(rows: int = 2048, width: int = 768, seconds: float = 2.0) -> float:
    """fp32 GFLOP/s of this machine's matrix products at a transformer layer's shape
    (`rows` tokens x `width` @ `width` x 4 `width`, GPT-2's feed-forward), best of ~`seconds`.

    A model's forward cannot run faster than its multiply-adds at this rate: the bound that
    benchmark tables compare their rows with.
    """
    import time

    a, b = torch.randn(rows, width), torch.randn(width, 4 * width)
    flops = 2 * rows * width * 4 * width
    best = float("inf")
    deadline = time.perf_counter() + seconds
    a @ b  # warm-up
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


__all__ = ["cpu_flags", "cpu_has_fast_bf16", "cpu_name", "matmul_gflops"]
