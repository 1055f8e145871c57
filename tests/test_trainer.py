"""The trainer pieces (one policy table, LoRA as the book computes it) and complete checkpoints
(hf_spam.outputs)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from safetensors.torch import save_file

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.errors import UsageError
from hf_spam.outputs import checkpoint_problems, resolve_checkpoint
from hf_spam.trainer import (
    TRAINABLE_POLICIES,
    TrainablePolicy,
    apply_trainable_layers,
    first_trainable_block,
    frozen_trunk_start,
    peft_lora_alpha,
    trainable_parameters,
)
from hf_spam.training import ModelArguments

N_LAYERS = 4


def tiny_model(seed: int = 0) -> GPTForSequenceClassification:
    torch.manual_seed(seed)
    config = GPTConfig(
        vocab_size=100, context_length=16, emb_dim=32, n_heads=4, n_layers=N_LAYERS, num_labels=2
    )
    return GPTForSequenceClassification(config).eval()


def trained_parts(names: list[str]) -> tuple[set[int], bool, bool]:
    blocks = {int(n.split(".")[2]) for n in names if n.startswith("gpt.trf_blocks.")}
    return blocks, any("final_norm" in n for n in names), any("tok_emb" in n for n in names)


@pytest.mark.parametrize("name", [n for n, p in TRAINABLE_POLICIES.items() if not p.adapters])
def test_policy_table_drives_freezing_and_the_cache(name):
    rule = TRAINABLE_POLICIES[name]
    model = apply_trainable_layers(tiny_model(), ModelArguments(trainable_layers=name))
    _, _, names = trainable_parameters(model)
    blocks, final_norm, embeddings = trained_parts(names)
    top = N_LAYERS if rule.top_blocks is None else rule.top_blocks
    assert blocks == set(range(N_LAYERS - top, N_LAYERS))
    assert (final_norm, embeddings) == (rule.final_norm, rule.embeddings)
    assert {"out_head.weight", "out_head.bias"} <= set(names)
    start = first_trainable_block(model, name)
    assert start == (None if rule.embeddings else N_LAYERS - top)
    assert frozen_trunk_start(model, ModelArguments(trainable_layers=name)) == start
    assert rule.description


def test_a_new_table_row_is_all_it_takes(monkeypatch):
    row = TrainablePolicy(3, True, False, "the last three blocks")
    monkeypatch.setitem(TRAINABLE_POLICIES, "last_three_blocks", row)
    args = ModelArguments(trainable_layers="last_three_blocks")
    model = apply_trainable_layers(tiny_model(), args)
    assert trained_parts(trainable_parameters(model)[2]) == ({1, 2, 3}, True, False)
    assert frozen_trunk_start(model, args) == 1


def test_last_layer_is_the_books_name_for_head():
    head = apply_trainable_layers(tiny_model(), ModelArguments(trainable_layers="head"))
    last = apply_trainable_layers(tiny_model(), ModelArguments(trainable_layers="last_layer"))
    assert trainable_parameters(head) == trainable_parameters(last)
    assert trainable_parameters(last)[2] == ["out_head.weight", "out_head.bias"]
    assert first_trainable_block(last, "last_layer") == N_LAYERS  # the whole trunk is cached


# ------------------------------------------------------------------------------------------------
# LoRA
# ------------------------------------------------------------------------------------------------


class BookLinearWithLoRA(torch.nn.Module):
    """The book's `LinearWithLoRA` (ch06 additional_experiments.py): linear(x) + alpha*(x@A@B)."""

    def __init__(self, linear: torch.nn.Linear, A: torch.Tensor, B: torch.Tensor, alpha: float):
        super().__init__()
        self.linear, self.A, self.B, self.alpha = linear, A, B, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.alpha * (x @ self.A @ self.B)


def book_lora_copy(
    base: torch.nn.Module, adapted: torch.nn.Module, scale: float
) -> torch.nn.Module:
    """`base` with every linear layer of its blocks wrapped as the book does, holding the
    adapter matrices peft trained (peft stores A as (rank, in) and B as (out, rank))."""
    book = copy.deepcopy(base)
    adapters = {
        name.removeprefix("base_model.model."): module
        for name, module in adapted.named_modules()
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})
    }
    linears = [
        n for n, m in book.named_modules() if isinstance(m, torch.nn.Linear) and "trf_blocks" in n
    ]
    assert sorted(adapters) == sorted(linears)  # every linear layer of every block, as the book
    for name in linears:
        parent_name, _, child = name.rpartition(".")
        parent = book.get_submodule(parent_name)
        lora = adapters[name]
        A, B = lora.lora_A["default"].weight.T, lora.lora_B["default"].weight.T
        setattr(parent, child, BookLinearWithLoRA(getattr(parent, child), A, B, scale))
    return book


@pytest.mark.parametrize(
    ("convention", "rank", "alpha", "book_alpha"),
    [("book", 4, 16.0, 16.0), ("peft", 4, 16.0, 4.0)],
)
def test_lora_forward_is_the_books_formulation(convention, rank, alpha, book_alpha):
    pytest.importorskip("peft")
    base = tiny_model()
    args = ModelArguments(
        trainable_layers="lora",
        lora_rank=rank,
        lora_alpha=alpha,
        lora_alpha_convention=convention,
    )
    adapted = apply_trainable_layers(copy.deepcopy(base), args)
    torch.manual_seed(1)
    with torch.no_grad():  # B starts at 0 (no change); give it values so the adapters count
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    book = book_lora_copy(base, adapted, book_alpha)
    input_ids = torch.randint(0, 100, (3, 9))
    attention_mask = torch.ones_like(input_ids)  # padding with a small vocabulary: issue 12
    ours = adapted(input_ids=input_ids, attention_mask=attention_mask).logits
    theirs = book(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, base(input_ids=input_ids, attention_mask=attention_mask).logits)
    merged = adapted.merge_and_unload()  # what the saved folder holds
    torch.testing.assert_close(
        merged(input_ids=input_ids, attention_mask=attention_mask).logits, theirs, atol=1e-5, rtol=0
    )


def test_lora_book_convention_scales_and_initialises_as_the_book():
    pytest.importorskip("peft")
    assert peft_lora_alpha(16, 16.0, "book") == 256.0  # the book's row 11 in peft's terms
    assert peft_lora_alpha(16, 16.0, "peft") == 16.0
    rank = 4
    args = ModelArguments(trainable_layers="lora", lora_rank=rank, lora_alpha_convention="book")
    adapted = apply_trainable_layers(tiny_model(), args)
    a_values = torch.cat(
        [p.flatten() for n, p in adapted.named_parameters() if "lora_A" in n and "ff.layers.0" in n]
    )
    # kaiming_uniform_(a=sqrt(5)) of the book's (in, rank) tensor: uniform in +-1/sqrt(rank);
    # peft's (rank, in) layout would stay inside +-1/sqrt(32).
    assert a_values.abs().max() <= 1 / math.sqrt(rank)
    assert a_values.abs().max() > 1.5 / math.sqrt(32)
    names = trainable_parameters(adapted)[2]
    assert any("out_head" in n and "weight" in n for n in names)  # the new head trains in full


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
    with caplog.at_level("WARNING", logger="hf_spam.outputs"):
        assert resolve_checkpoint("last", tmp_path) == str(tmp_path / "checkpoint-10")
    assert "Skipping incomplete checkpoint" in caplog.text
    assert f"{tmp_path / 'checkpoint-30'}: missing or unreadable model weights" in caplog.text
    assert f"{tmp_path / 'checkpoint-20'}: missing or unreadable optimizer.pt" in caplog.text
    assert "checkpoint-5" not in caplog.text  # an older complete one was never looked at


def test_checkpoint_problems_name_every_missing_file(tmp_path):
    folder = write_checkpoint(tmp_path / "c", skip="rng_state.pth", truncate="scheduler.pt")
    assert checkpoint_problems(folder) == "missing or unreadable scheduler.pt, rng_state.pth"
    assert checkpoint_problems(write_checkpoint(tmp_path / "ok")) == ""


def test_resume_last_without_a_complete_checkpoint_is_one_line(tmp_path):
    write_checkpoint(tmp_path / "checkpoint-3", skip="trainer_state.json")
    with pytest.raises(UsageError, match=r"--resume_from_checkpoint last: no complete checkpoint"):
        resolve_checkpoint("last", tmp_path)
    assert resolve_checkpoint(None, tmp_path) is None
