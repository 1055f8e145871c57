"""What the machine can do: CPU flags and whether bf16 pays off on it."""

from __future__ import annotations

import pytest

from hf_spam.hardware import cpu_flags, cpu_has_fast_bf16

CPUINFO = "processor\t: 0\nmodel name\t: {name}\nflags\t\t: fpu sse2 avx2 {extra}\n\n"


@pytest.mark.parametrize(
    ("name", "extra", "fast"),
    [
        ("AMD EPYC (Zen 3)", "", False),  # bf16 emulated through fp32
        ("AMD EPYC (Zen 4)", "avx512f avx512_bf16", False),  # converted around every op
        ("Intel Xeon Platinum 8380", "avx512f avx512_bf16", False),  # no AMX
        ("Intel Xeon Platinum 8480+", "avx512f avx512_bf16 amx_bf16 amx_tile", True),
    ],
)
def test_bf16_pays_off_only_with_amx(tmp_path, name, extra, fast):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(name=name, extra=extra))
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", *extra.split()}
    assert cpu_has_fast_bf16(cpuinfo) is fast


def test_without_x86_flags_torch_decides(tmp_path):
    import torch

    expected = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    for cpuinfo in (tmp_path / "missing", arm):
        assert cpu_flags(cpuinfo) is None
        assert cpu_has_fast_bf16(cpuinfo) is expected
