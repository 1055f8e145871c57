"""The book's batch order (hf_spam.training.sampling), against the book's loop run with real DataLoaders."""

from __future__ import annotations

import datasets
import pytest
import torch
from helpers import bare_run_args, book_check
from torch.utils.data import DataLoader

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.training.sampling import BookOrderSampler, book_epoch_order
from hf_spam.training.trainer import SpamTrainer


def book_loop_orders(
    num_examples: int, batch_size: int, epochs: int, seed: int, eval_freq: int
) -> list[list[int]]:
    """What the book's `train_classifier_simple` draws, step for step: `torch.manual_seed(seed)`,
    then per epoch one pass over the shuffled training loader (drop_last); after every
    `eval_freq`-th step (counted from 0 across epochs) a loss check reads a few batches of the
    training and of the validation loader, and after each epoch an accuracy check does too."""
    train_loader = DataLoader(range(num_examples), batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(range(7), batch_size)
    torch.manual_seed(seed)
    orders, step = [], -1
    for _ in range(epochs):
        seen = []
        for batch in train_loader:
            seen += batch.tolist()
            step += 1
            if step % eval_freq == 0:
                book_check(train_loader, val_loader)
        book_check(train_loader, val_loader)
        orders.append(seen)
    return orders


@pytest.mark.parametrize(
    ("num_examples", "batch_size", "epochs", "seed", "eval_freq"),
    [(1045, 8, 5, 123, 50), (45, 4, 4, 7, 5), (30, 1, 3, 123, 4)],
)
def test_epoch_orders_are_the_books(num_examples, batch_size, epochs, seed, eval_freq):
    book = book_loop_orders(num_examples, batch_size, epochs, seed, eval_freq)
    batches = num_examples // batch_size
    for epoch, seen in enumerate(book):
        ours = book_epoch_order(num_examples, batches, epoch, seed, eval_freq)
        assert ours[: len(seen)] == seen, f"epoch {epoch}"
        assert sorted(ours) == list(range(num_examples))


def test_sampler_leaves_torchs_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    list(BookOrderSampler(20, 4, drop_last=True))
    assert torch.equal(torch.rand(2), expected)


class RecordingCollator:
    """Batches of fixed-length rows; remembers the training examples in the order they come."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, features):
        self.seen += [int(f["example_id"]) for f in features]
        return {
            "input_ids": torch.tensor([f["input_ids"] for f in features]),
            "attention_mask": torch.ones(len(features), 3, dtype=torch.long),
            "labels": torch.tensor([f["labels"] for f in features]),
        }


def test_trainer_trains_in_the_books_order(tmp_path):
    n, batch_size, epochs = 21, 4, 3
    rows = datasets.Dataset.from_dict(
        {
            "input_ids": [[i % 50 + 1, 2, 3] for i in range(n)],
            "labels": [i % 2 for i in range(n)],
            "example_id": list(range(n)),
        }
    )
    model = GPTForSequenceClassification(
        GPTConfig(vocab_size=60, context_length=8, emb_dim=8, n_heads=2, n_layers=1)
    )
    args = bare_run_args(
        tmp_path, per_device_train_batch_size=batch_size, num_train_epochs=epochs, seed=9
    )
    collator = RecordingCollator()
    SpamTrainer(model=model, args=args, train_dataset=rows, data_collator=collator).train()
    batches = n // batch_size
    expected = [
        i
        for epoch in range(epochs)
        for i in book_epoch_order(n, batches, epoch, seed=9)[: batches * batch_size]
    ]
    assert collator.seen == expected
