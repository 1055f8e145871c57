"""The data collator: transformers' `DataCollatorWithPadding` (right padding, pad id 50256)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from .tokenization import get_tokenizer

if TYPE_CHECKING:
    from .preparation import PreparedData

#: What the model takes; `DataCollatorWithPadding` turns `label` into `labels`.
MODEL_COLUMNS = ("input_ids", "attention_mask", "label", "labels")


class ClassificationCollator(DataCollatorWithPadding):
    """`DataCollatorWithPadding` over the model's columns only.

    Trainer runs with `remove_unused_columns=False` (the trainer reads `example_id`), so features
    also carry `text`, `length`, ...; the stock collator would try to make tensors of them.
    """

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        kept = [{key: f[key] for key in MODEL_COLUMNS if key in f} for f in features]
        return super().__call__(kept)


def get_data_collator(
    prepared_or_tokenizer: PreparedData | PreTrainedTokenizerBase | None = None,
    pad_to_multiple_of: int | None = None,
) -> ClassificationCollator:
    """The collator for `Trainer`: pads each batch on the right to its longest example.

    With a fixed `--context_length` the examples already share one length and it only stacks them.
    """
    if isinstance(prepared_or_tokenizer, PreTrainedTokenizerBase):
        tokenizer = prepared_or_tokenizer
    elif prepared_or_tokenizer is not None and prepared_or_tokenizer.tokenizer is not None:
        tokenizer = prepared_or_tokenizer.tokenizer  # the one that made the ids
    else:
        tokenizer = get_tokenizer()
    return ClassificationCollator(
        tokenizer, padding="longest", pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )


__all__ = ["MODEL_COLUMNS", "ClassificationCollator", "get_data_collator"]
