"""Helpers for runs and models (fixtures live in conftest.py): tiny training arguments,
one tiny trained model per session, a random model, a tokenizer of its own, the book's loader
checks, a fresh interpreter, a fake Hub API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from transformers import HfArgumentParser

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.data import DataArguments, get_tokenizer
from hf_spam.training.run import ModelArguments, SpamTrainingArguments

TINY_CONFIG = dict(vocab_size=50257, context_length=64, emb_dim=32, n_heads=4, n_layers=2)


TINY = "emb_dim=32,n_layers=2,n_heads=4,context_length=64"
# For exact-weights comparisons of two runs: the key bias's true gradient is exactly zero (softmax
# ignores a constant shift), so Adam turns two code paths' different float rounding (~1e-9) of
# that zero into learning-rate-sized steps. Without it the runs must agree to float precision.
TINY_NO_KEY_BIAS = TINY + ",qkv_bias=false"


def tiny_args(data: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset", str(data), "--init", "random", "--config_overrides", TINY,
        "--output_dir", str(output_dir), "--learning_rate", "2e-3",
        "--num_train_epochs", "3", "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip


def parse(argv: list[str]):
    parser = HfArgumentParser((ModelArguments, DataArguments, SpamTrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)


def trained_model(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A tiny model trained on the synthetic spam CSV, shared by every module
    that asks in this session. Tests must not modify it: copy it first."""
    from hf_spam.training.run import train

    out = tmp_path_factory.getbasetemp() / "usage-tiny-model"
    if not (out / "README.md").is_file():  # the last file train() writes
        fast = ("--save_strategy", "no", "--eval_on_train", "false", "--report_to", "none")
        train(*parse(tiny_args(data, out, *fast)))
    return out


def random_model(
    folder: Path,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
    head_bias: float = 0.0,
    **config_fields: Any,
) -> Path:
    """An untrained tiny classifier with its tokenizer, saved as training saves one.

    `head_bias`: the spread of a random head bias (a fresh head's is 0, a trained one's is not);
    `config_fields` set other `GPTConfig` fields (the book's head settings)."""
    import torch

    torch.manual_seed(seed)
    id2label = id2label or {0: "ham", 1: "spam"}
    config = GPTConfig(
        **{**TINY_CONFIG, **config_fields}, num_labels=len(id2label), id2label=id2label
    )
    model = GPTForSequenceClassification(config)
    if head_bias:
        with torch.no_grad():
            model.out_head.bias.normal_(0.0, head_bias)
    model.save_pretrained(folder)
    get_tokenizer(config.context_length).save_pretrained(folder)
    return folder


def save_small_bpe(folder: Path, vocab_size: int = 400) -> Any:
    """A byte-level BPE of its own (not GPT-2's: a few hundred tokens, '<|endoftext|>' = 0),
    trained on the synthetic spam words and saved as `folder/tokenizer.json`, as a checkpoint
    with its own tokenizer carries it. Returns the `tokenizers.Tokenizer`, the reference."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from .data import HAM_WORDS, SPAM_WORDS

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([" ".join(SPAM_WORDS + HAM_WORDS)] * 10, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer


def bare_run_args(output_dir: Path, **overrides: Any) -> SpamTrainingArguments:
    """Arguments for a bare `SpamTrainer(...).train()` in the book's batch order: no evaluation,
    no checkpoints, no reports."""
    return SpamTrainingArguments(
        output_dir=str(output_dir),
        train_sampling_strategy="book",
        dataloader_drop_last=True,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **overrides,
    )


def label_info(max_length: int = 64) -> SimpleNamespace:
    """What `build_model` reads of prepared data: the ham/spam labels and the padding (no
    tokenizer: GPT-2's special tokens)."""
    return SimpleNamespace(
        num_labels=2,
        id2label={0: "ham", 1: "spam"},
        label2id={"ham": 0, "spam": 1},
        padding="dynamic",
        max_length=max_length,
        tokenizer=None,
    )


def book_check(*loaders: Iterable) -> None:
    """One of the book's loss or accuracy checks (`calc_loss_loader` / `calc_accuracy_loader`
    with `num_batches=eval_iter=5`): a few batches of each loader; every pass over a DataLoader
    draws from torch's global RNG, which is what the book's batch order depends on."""
    for loader in loaders:
        for i, _ in enumerate(loader):
            if i >= 5:
                break


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


class FakeHfApi:
    """Records what would reach the Hub and keeps each repo's files (path -> bytes) in `repos`.

    `upload_folder` applies `allow_patterns`/`ignore_patterns`/`delete_patterns` with
    huggingface_hub's own `filter_repo_objects` and rules (`.git` ignored, `.gitattributes`
    never deleted, a file re-added is not deleted), reading the folder while it still exists.
    """

    calls: list[tuple[str, dict]] = []
    fail_upload: bool = False
    repos: dict[str, dict[str, bytes]] = {}

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        self.repos.setdefault(repo_id, {".gitattributes": b"*.safetensors filter=lfs\n"})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(
        self, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None,
        delete_patterns=None, **kwargs,
    ):  # fmt: skip
        from huggingface_hub.utils import filter_repo_objects
        from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

        if self.fail_upload:
            raise ConnectionError("Connection refused")
        if repo_id not in self.repos:
            raise OSError(f"404 Client Error: Repository Not Found for {repo_id}")
        folder = Path(folder_path)
        local = sorted(p.relative_to(folder).as_posix() for p in folder.glob("**/*") if p.is_file())
        ignore = [*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS]
        added = list(
            filter_repo_objects(local, allow_patterns=allow_patterns, ignore_patterns=ignore)
        )
        files = self.repos[repo_id]
        deleted = [
            path
            for path in filter_repo_objects(list(files), allow_patterns=delete_patterns)
            if path != ".gitattributes" and path not in added
        ] if delete_patterns else []  # fmt: skip
        for path in deleted:
            del files[path]
        for path in added:
            files[path] = (folder / path).read_bytes()
        self.calls.append(
            ("upload_folder", {"repo_id": repo_id, "files": added, "deleted": deleted, **kwargs})
        )

        class Commit:
            commit_url = f"https://huggingface.co/{repo_id}/commit/abc123"

        return Commit()


def tiny_classifier(seed: int = 0, n_layers: int = 4) -> GPTForSequenceClassification:
    """A tiny random `GPTForSequenceClassification` (100-token vocabulary), in eval mode."""
    import torch

    torch.manual_seed(seed)
    config = GPTConfig(
        vocab_size=100, context_length=16, emb_dim=32, n_heads=4, n_layers=n_layers, num_labels=2
    )
    return GPTForSequenceClassification(config).eval()


def pad(
    rows: list[list[int]], width: int | None = None, side: str = "right", fill: int = 50256
) -> tuple[Any, Any]:
    """Token rows padded with `fill` to `width` (default: the longest row) on `side`, and their
    attention mask, as tensors."""
    import torch

    width = max(map(len, rows)) if width is None else width
    ids = torch.full((len(rows), width), fill)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, span] = torch.tensor(row)
        mask[i, span] = 1
    return ids, mask
