"""The memory part of the model-folder check: a model larger than the machine is named, with
its size and the machine's, before anything is allocated."""

from __future__ import annotations

import pytest
from helpers import random_model
from safetensors import safe_open

import hf_spam.inference.checks as checks
from hf_spam.errors import ModelLoadError
from hf_spam.hardware import machine_memory


def test_a_model_larger_than_the_machine_is_refused_naming_both_sizes(tmp_path, monkeypatch):
    folder = random_model(tmp_path / "model")
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        tensors = [handle.get_tensor(key) for key in handle.keys()]  # noqa: SIM118
    size = sum(t.numel() * t.element_size() for t in tensors)  # what the headers must add up to
    monkeypatch.setattr(checks, "machine_memory", lambda: size - 1)
    with pytest.raises(ModelLoadError) as info:
        checks.check_classifier_folder(folder)
    parameters = sum(t.numel() for t in tensors)
    assert str(info.value) == (
        f"{folder / 'model.safetensors'}: the model needs {size / 2**30:.1f} GiB of memory for "
        f"its {parameters:,} parameters and this machine has {(size - 1) / 2**30:.1f} GiB"
    )
    monkeypatch.setattr(checks, "machine_memory", lambda: size)
    assert checks.check_classifier_folder(folder) == folder


def test_the_machine_memory_is_what_the_os_reports():
    with open("/proc/meminfo", encoding="utf-8") as handle:
        total_kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
    assert machine_memory() >= total_kib * 1024  # RAM (plus a GPU's, where there is one)
