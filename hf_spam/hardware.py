"""What this machine can do: the CPU's name and whether it computes bf16 in hardware."""

from __future__ import annotations

from pathlib import Path

import torch


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


__all__ = ["cpu_has_native_bf16", "cpu_name"]
