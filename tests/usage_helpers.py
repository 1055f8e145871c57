"""Shared by the pipeline, evaluation, prediction and sharing tests: one tiny trained model per
session, and running Python in a fresh process that has never imported hf_spam."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.data import get_tokenizer

TINY = dict(vocab_size=50257, context_length=64, emb_dim=32, n_heads=4, n_layers=2)


def trained_model(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A tiny model trained on the synthetic spam CSV (a few seconds), shared by every module
    that asks in this session. Tests must not modify it: copy it first."""
    from test_training import parse, tiny_args

    from hf_spam.training import train

    out = tmp_path_factory.getbasetemp() / "usage-tiny-model"
    if not (out / "README.md").is_file():  # the last file train() writes
        fast = ("--save_strategy", "no", "--eval_on_train", "false", "--report_to", "none")
        train(*parse(tiny_args(data, out, *fast)))
    return out


def random_model(folder: Path, id2label: dict[int, str] | None = None, seed: int = 0) -> Path:
    """An untrained tiny classifier with its tokenizer, saved as training saves one."""
    import torch

    torch.manual_seed(seed)
    id2label = id2label or {0: "ham", 1: "spam"}
    config = GPTConfig(**TINY, num_labels=len(id2label), id2label=id2label)
    GPTForSequenceClassification(config).save_pretrained(folder)
    get_tokenizer(config.context_length).save_pretrained(folder)
    return folder


def run_fresh_python(script: str, cwd: Path) -> dict:
    """Run `script` in a new interpreter, offline, from `cwd` (so `import hf_spam` cannot find
    the checkout), with its own remote-code cache; return the JSON its last line prints."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(cwd / "modules")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
