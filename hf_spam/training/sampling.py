"""The book's batch order: `--train_sampling_strategy book`.

The book trains with `DataLoader(train_dataset, batch_size=8, shuffle=True, drop_last=True)` and
calls `torch.manual_seed(123)` right before its loop (`train_classifier_simple`). Its order then
follows from torch's global RNG alone: every iteration of a DataLoader draws one number from it
(the workers' base seed), a shuffling one a second (the seed of that pass's permutation). The
loop iterates the training loader once per epoch, and again, with the validation loader, for
each loss check (after every `eval_freq`-th batch, counted across epochs from 0) and for each
epoch's accuracy check. Replaying those draws on a private generator gives every epoch's
permutation without touching torch's RNG, so `Trainer` sees exactly the book's batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

BOOK_SEED = 123
BOOK_EVAL_FREQ = 50  # train_classifier_simple(..., eval_freq=50, eval_iter=5)
#: Draws per check: the training loader (base seed + permutation seed) and the validation one.
DRAWS_PER_CHECK = 3


def _draw(generator: torch.Generator) -> int:
    """One draw as a DataLoader makes it: `torch.empty((), dtype=torch.int64).random_()`."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def book_epoch_order(
    num_examples: int,
    batches_per_epoch: int,
    epoch: int,
    seed: int = BOOK_SEED,
    eval_freq: int = BOOK_EVAL_FREQ,
) -> list[int]:
    """The example indices of the book's training loader in `epoch` (0-based)."""
    generator = torch.Generator().manual_seed(seed)
    for past in range(epoch):
        first, last = past * batches_per_epoch, (past + 1) * batches_per_epoch - 1
        checks = last // eval_freq - (first - 1) // eval_freq  # steps g with g % eval_freq == 0
        for _ in range(2 + DRAWS_PER_CHECK * (checks + 1)):  # the epoch, its checks, accuracy
            _draw(generator)
    _draw(generator)  # the training loader's base seed
    permutation_seed = _draw(generator)
    order = torch.randperm(num_examples, generator=torch.Generator().manual_seed(permutation_seed))
    return order.tolist()


def batches_per_epoch(num_examples: int, batch_size: int, drop_last: bool) -> int:
    """`len(DataLoader(...))`: the number of batches in one pass."""
    return num_examples // batch_size if drop_last else math.ceil(num_examples / batch_size)


class BookOrderSampler(Sampler[int]):
    """Yields `book_epoch_order` for the epoch `Trainer` sets (it calls `set_epoch` each epoch),
    so a resumed run skips into the same order."""

    def __init__(self, num_examples: int, batch_size: int, drop_last: bool, seed: int = BOOK_SEED):
        self.num_examples = num_examples
        self.batches_per_epoch = batches_per_epoch(num_examples, batch_size, drop_last)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_examples

    def __iter__(self) -> Iterator[int]:
        yield from book_epoch_order(
            self.num_examples, self.batches_per_epoch, self.epoch, self.seed
        )


__all__ = ["BOOK_EVAL_FREQ", "BOOK_SEED", "BookOrderSampler", "book_epoch_order"]
