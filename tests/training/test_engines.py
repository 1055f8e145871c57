"""Engines and precision: what `--fp16` means on CPU, the card's precision, DDP's default, and
FSDP1 with frozen layers, checked before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, parse, tiny_args
from safetensors.torch import load_file

from hf_spam.training.arguments import check_fsdp1_freezing, check_zero3_lora
from hf_spam.training.card import run_precision
from hf_spam.training.model_arguments import TrainingSetupError


def test_fp16_on_cpu_is_refused_with_the_way_out(tmp_path):
    with pytest.raises(TrainingSetupError) as info:
        parse(tiny_args(tmp_path / "d.csv", tmp_path / "out", "--fp16", "true"))
    assert str(info.value) == (
        "--fp16 needs a GPU: on CPU there is no fp16 mixed precision and the run would train in "
        "fp32; use --bf16 (CPU autocast) or leave it out"
    )


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({}, "fp32"),
        ({"bf16": True}, "bf16"),
        ({"fp16": True}, "fp16"),
        ({"bf16_full_eval": True}, "fp32 training, bf16 evaluation"),
        ({"bf16": True, "bf16_full_eval": True}, "bf16"),
        ({"fp16": True, "fp16_full_eval": True}, "fp16"),
    ],
)
def test_the_card_records_the_precision_of_training_and_evaluation(flags, expected):
    args = SimpleNamespace(**{"bf16": False, "fp16": False, **flags})
    assert run_precision(args) == expected


def test_ddp_does_not_search_for_unused_parameters_by_default(tmp_path):
    *_, training_args = parse(tiny_args(tmp_path / "d.csv", tmp_path / "out"))
    assert training_args.ddp_find_unused_parameters is False
    *_, asked = parse(
        tiny_args(tmp_path / "d.csv", tmp_path / "o", "--ddp_find_unused_parameters", "true")
    )
    assert asked.ddp_find_unused_parameters is True


def _args(tmp_path, *extra):
    model_args, _, training_args = parse(tiny_args(tmp_path / "d.csv", tmp_path / "out", *extra))
    return model_args, training_args


@pytest.mark.parametrize("policy", ["last_block", "lora"])
def test_fsdp1_without_orig_params_and_frozen_layers_is_refused(tmp_path, monkeypatch, policy):
    model_args, training_args = _args(tmp_path, "--trainable_layers", policy)
    training_args.fsdp, training_args.fsdp_config = (
        ["full_shard"],
        {"version": 1, "use_orig_params": False},
    )
    with pytest.raises(TrainingSetupError, match=f"--trainable_layers {policy} freezes layers"):
        check_fsdp1_freezing(model_args, training_args)
    training_args.fsdp_config = {"version": 1}  # transformers' default: use_orig_params true
    check_fsdp1_freezing(model_args, training_args)


def test_an_accelerate_fsdp1_configuration_gets_orig_params(tmp_path, monkeypatch, caplog):
    model_args, training_args = _args(tmp_path, "--trainable_layers", "last_block")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    monkeypatch.delenv("FSDP_USE_ORIG_PARAMS", raising=False)
    with caplog.at_level("INFO", logger="hf_spam.training.arguments"):
        check_fsdp1_freezing(model_args, training_args)
    assert "use_orig_params set" in caplog.text
    assert os.environ["FSDP_USE_ORIG_PARAMS"] == "true"
    monkeypatch.setenv("FSDP_USE_ORIG_PARAMS", "false")
    with pytest.raises(TrainingSetupError, match="set fsdp_use_orig_params: true"):
        check_fsdp1_freezing(model_args, training_args)
    everything, _ = _args(tmp_path, "--trainable_layers", "all")
    check_fsdp1_freezing(everything, training_args)  # nothing frozen: nothing to say


WORKER = Path(__file__).parents[1] / "helpers" / "sharded_worker.py"


@pytest.mark.slow  # three fresh interpreters: one process, then two under torchrun
@pytest.mark.parametrize("policy", ["last_block", "lora"])
def test_fsdp2_on_two_processes_saves_the_weights_of_one(tmp_path, policy):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = [sys.executable, str(WORKER)]
    subprocess.run([*run, "none", policy, str(tmp_path)], env=env, check=True, timeout=300)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    subprocess.run([*torchrun, str(WORKER), "fsdp2", policy, str(tmp_path)], env=env,
                   check=True, timeout=300)  # fmt: skip
    alone, sharded = (load_file(tmp_path / f"{mode}.safetensors") for mode in ("none", "fsdp2"))
    assert sorted(sharded) == sorted(alone) and not any("lora" in k for k in sharded)
    for name, tensor in alone.items():
        torch.testing.assert_close(sharded[name], tensor, atol=1e-5, rtol=1e-5, msg=name)
    if policy == "lora":  # the adapters themselves, saved from the main process's copy
        adapters = [load_file(tmp_path / f"adapter-{m}" / "adapter_model.safetensors")
                    for m in ("none", "fsdp2")]  # fmt: skip
        assert adapters[0].keys() == adapters[1].keys() and any("lora_A" in k for k in adapters[0])
        for name, tensor in adapters[0].items():
            torch.testing.assert_close(adapters[1][name], tensor, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "examples" / "accelerate").glob("*.yaml"))
)
def test_example_accelerate_configurations_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "examples" / "accelerate" / name))
    assert str(config.distributed_type) in ("DistributedType.FSDP", "DistributedType.DEEPSPEED")
    if config.distributed_type == "FSDP" and config.fsdp_config.get("fsdp_version") == 1:
        assert config.fsdp_config["fsdp_use_orig_params"] is True  # frozen layers need it


def test_lora_under_zero3_is_refused(tmp_path, monkeypatch):
    model_args, training_args = _args(tmp_path, "--trainable_layers", "lora")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(TrainingSetupError, match="lora under DeepSpeed ZeRO-3"):
        check_zero3_lora(model_args, training_args)
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    check_zero3_lora(model_args, training_args)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    config = tmp_path / "ds.json"
    config.write_text('{"zero_optimization": {"stage": 3}}')
    training_args.deepspeed = str(config)
    with pytest.raises(TrainingSetupError, match="use ZeRO-2 or FSDP2"):
        check_zero3_lora(model_args, training_args)
    last_block, _ = _args(tmp_path, "--trainable_layers", "last_block")
    check_zero3_lora(last_block, training_args)  # no merge: nothing to refuse
