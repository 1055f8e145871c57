"""SpamTrainer (the book's optimizer and loop) and complete checkpoints (hf_spam.training.outputs)."""

from __future__ import annotations

import copy
import json

import datasets
import pytest
import torch
import torch.distributed.checkpoint
from helpers import bare_run_args, book_check, tiny_classifier
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.errors import UsageError
from hf_spam.model.initialization import book_random_init
from hf_spam.training.outputs import checkpoint_problems, resolve_checkpoint
from hf_spam.training.policies import (
    apply_trainable_layers,
)
from hf_spam.training.run import ModelArguments, SpamTrainingArguments
from hf_spam.training.trainer import SpamTrainer

# ------------------------------------------------------------------------------------------------
# Optimizer
# ------------------------------------------------------------------------------------------------


def test_optimizer_steps_as_the_books_adamw(tmp_path):
    """The book: `torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)`, which
    decays every parameter (Trainer's default spares biases and norms). A large rate and decay
    make one step show any difference."""
    model = tiny_classifier()
    book_random_init(model, 123)  # biases and norms away from 0 and 1: their decay shows
    model = apply_trainable_layers(model, ModelArguments(trainable_layers="last_block"))
    book = copy.deepcopy(model)
    args = SpamTrainingArguments(
        output_dir=str(tmp_path),
        learning_rate=1e-2,
        weight_decay=0.5,
        eval_strategy="no",
        report_to="none",
    )
    optimizer = SpamTrainer(model=model, args=args).create_optimizer()
    book_optimizer = torch.optim.AdamW(book.parameters(), lr=1e-2, weight_decay=0.5)
    input_ids, labels = torch.randint(0, 100, (3, 9)), torch.tensor([0, 1, 1])
    for net, opt in ((model, optimizer), (book, book_optimizer)):
        net(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels
        ).loss.backward()
        opt.step()
    for (name, ours), theirs in zip(model.named_parameters(), book.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7, msg=name)
    assert not torch.equal(model.out_head.bias, tiny_classifier().out_head.bias)


def book_train(
    model: torch.nn.Module,
    rows: datasets.Dataset,
    batch_size: int,
    accumulation_steps: int,
    epochs: int,
    seed: int,
    lr: float,
) -> None:
    """The book's `train_classifier_simple` (ch. 6 and its bonus script): its shuffled
    `drop_last` loader, `torch.manual_seed` before AdamW(lr, weight_decay=0.1), every loss divided
    by the accumulation steps, an update after each full group and at the epoch's last batch, a
    loss check every 50 steps and an accuracy check after each epoch (both read the loaders)."""
    data = TensorDataset(torch.tensor(rows["input_ids"]), torch.tensor(rows["labels"]))
    train_loader = DataLoader(data, batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(data, batch_size)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    step = -1
    for _ in range(epochs):
        for batch_idx, (input_ids, labels) in enumerate(train_loader):
            logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
            (torch.nn.functional.cross_entropy(logits, labels) / accumulation_steps).backward()
            if (batch_idx + 1) % accumulation_steps == 0 or batch_idx + 1 == len(train_loader):
                optimizer.step()
                optimizer.zero_grad()
            step += 1
            if step % 50 == 0:
                book_check(train_loader, val_loader)
        book_check(train_loader, val_loader)


@pytest.mark.parametrize(("batch_size", "accumulation_steps"), [(4, 1), (1, 4)])
def test_book_strategy_trains_as_the_books_loop(tmp_path, batch_size, accumulation_steps):
    """Order, loss, accumulation (a short last group too: 21 = 5 x 4 + 1), optimizer: after three
    epochs `SpamTrainer` holds the weights of the book's loop run on a copy of the model."""
    n, epochs, seed, lr = 21, 3, 5, 1e-3
    rows = datasets.Dataset.from_dict(
        {
            "input_ids": [[(7 * i) % 90 + 1, (3 * i) % 90 + 1, 5] for i in range(n)],
            "attention_mask": [[1, 1, 1]] * n,
            "labels": [int(i % 3 == 0) for i in range(n)],
        }
    )
    config = GPTConfig(
        vocab_size=100, context_length=8, emb_dim=16, n_heads=2, n_layers=2, qkv_bias=False
    )
    model = GPTForSequenceClassification(config)
    book_random_init(model, 1)
    book = copy.deepcopy(model)
    args = bare_run_args(
        tmp_path,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation_steps,
        num_train_epochs=epochs,
        learning_rate=lr,
        seed=seed,
    )
    SpamTrainer(model=model, args=args, train_dataset=rows).train()
    book_train(book, rows, batch_size, accumulation_steps, epochs, seed, lr)
    for (name, ours), theirs in zip(model.named_parameters(), book.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------


def write_checkpoint(folder, skip: str | None = None, truncate: str | None = None):
    """A checkpoint with the files `Trainer` writes, in their real formats."""
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(4)}, str(folder / "model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": torch.ones(64)}, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    if skip:
        (folder / skip).unlink()
    if truncate:
        data = (folder / truncate).read_bytes()
        (folder / truncate).write_bytes(data[: len(data) // 2])
    return folder


def test_resume_last_skips_partial_checkpoints(tmp_path, caplog):
    write_checkpoint(tmp_path / "checkpoint-10")
    write_checkpoint(tmp_path / "checkpoint-20", skip="optimizer.pt")
    write_checkpoint(tmp_path / "checkpoint-30", truncate="model.safetensors")
    write_checkpoint(tmp_path / "checkpoint-5")
    with caplog.at_level("WARNING", logger="hf_spam.training.outputs"):
        assert resolve_checkpoint("last", tmp_path) == str(tmp_path / "checkpoint-10")
    assert "Skipping incomplete checkpoint" in caplog.text
    assert f"{tmp_path / 'checkpoint-30'}: missing or unreadable model weights" in caplog.text
    assert f"{tmp_path / 'checkpoint-20'}: missing or unreadable optimizer.pt" in caplog.text
    assert "checkpoint-5" not in caplog.text  # an older complete one was never looked at


def _engine_checkpoint(folder, files: dict[str, object]):
    """A checkpoint laid out as an engine writes it; `files` maps a relative path to a state
    (torch.save), to bytes (written as is) or to "dcp" (torch.distributed.checkpoint's folder)."""
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "dcp":  # a distributed checkpoint folder, as FSDP's sharded state dict
            torch.distributed.checkpoint.save({"state": STATE}, checkpoint_id=path.parent)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    torch.save({"rng": 1}, folder / "rng_state_0.pth")
    return folder


STATE = {"state": torch.ones(8)}
# accelerate's save_fsdp_model/save_fsdp_optimizer and DeepSpeed's save_checkpoint file names.
ENGINE_LAYOUTS = {
    "fsdp-full": {"pytorch_model_fsdp.bin": STATE, "optimizer.bin": STATE, "scheduler.pt": STATE},
    "fsdp-sharded": {"pytorch_model_fsdp_0/.metadata": "dcp", "optimizer_0/.metadata": "dcp",
                     "scheduler.pt": STATE},
    "fsdp-per-rank": {"pytorch_model_fsdp_0_rank0.bin": STATE, "optimizer_0_rank0.bin": STATE,
                      "scheduler.pt": STATE},
    "deepspeed-zero2": {"latest": b"global_step4", "global_step4/mp_rank_00_model_states.pt": STATE,
                        "global_step4/bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt": STATE},
    "deepspeed-zero3": {"latest": b"global_step4",
                        "global_step4/zero_pp_rank_0_mp_rank_00_model_states.pt": STATE,
                        "global_step4/zero_pp_rank_0_mp_rank_00_optim_states.pt": STATE,
                        "scheduler.pt": STATE},
}  # fmt: skip


@pytest.mark.parametrize("layout", ENGINE_LAYOUTS)
def test_engine_checkpoints_are_complete_checkpoints(tmp_path, layout):
    folder = _engine_checkpoint(tmp_path / "checkpoint-4", ENGINE_LAYOUTS[layout])
    assert checkpoint_problems(folder) == ""
    assert resolve_checkpoint("last", tmp_path) == str(folder)


@pytest.mark.parametrize(
    "layout, damaged, problem",
    [
        ("fsdp-full", "optimizer.bin", "optimizer state"),
        ("fsdp-sharded", "pytorch_model_fsdp_0/.metadata", "model weights"),
        ("fsdp-full", "scheduler.pt", "scheduler.pt"),
        ("deepspeed-zero2", "global_step4/mp_rank_00_model_states.pt", "model weights"),
        ("deepspeed-zero3", "global_step4/zero_pp_rank_0_mp_rank_00_optim_states.pt",
         "optimizer state"),
        ("deepspeed-zero3", "scheduler.pt", "scheduler.pt"),
    ],
)  # fmt: skip
def test_a_damaged_engine_checkpoint_is_named(tmp_path, layout, damaged, problem):
    folder = _engine_checkpoint(tmp_path / "checkpoint-4", ENGINE_LAYOUTS[layout])
    data = (folder / damaged).read_bytes()
    (folder / damaged).write_bytes(data[: len(data) // 2])  # a kill mid-write
    assert checkpoint_problems(folder) == f"missing or unreadable {problem}"


def test_checkpoint_problems_name_every_missing_file(tmp_path):
    folder = write_checkpoint(tmp_path / "c", skip="rng_state.pth", truncate="scheduler.pt")
    assert checkpoint_problems(folder) == "missing or unreadable scheduler.pt, rng_state.pth"
    assert checkpoint_problems(write_checkpoint(tmp_path / "ok")) == ""


def test_resume_last_without_a_complete_checkpoint_is_one_line(tmp_path):
    write_checkpoint(tmp_path / "checkpoint-3", skip="trainer_state.json")
    with pytest.raises(UsageError, match=r"--resume_from_checkpoint last: no complete checkpoint"):
        resolve_checkpoint("last", tmp_path)
    assert resolve_checkpoint(None, tmp_path) is None
