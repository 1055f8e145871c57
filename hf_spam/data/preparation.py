"""The whole pipeline: load, clean, split, tokenize, pad or not; and saving the result.

Every step is a `Dataset.map`/`select` on Arrow-backed data, so re-running with the same inputs
reuses the cached results. It knows nothing about the model but its context length.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from ..errors import UsageError
from ..files import atomic_output_dir, check_output_dir, writing
from .arguments import DataArguments
from .cleaning import arrow_column
from .report import DataReport
from .splits import cross_split_duplicates, load_splits
from .tokenization import count_tokens, get_tokenizer, tokenize


@dataclass
class PreparedData:
    """The tokenized splits plus what the model config and the collator need."""

    dataset: DatasetDict
    label2id: dict[str, int]
    id2label: dict[int, str]
    pad_token_id: int
    max_length: int
    padding: str  # "dynamic", or the --context_length every example is padded to
    report: DataReport
    #: What made the ids (saved with the model); None: GPT-2's (`get_tokenizer`).
    tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label2id)


def resolve_length(
    pad_to: str | int | None, context_length: int, max_length: int | None, longest_train: int
) -> int:
    """The length texts are truncated (and, with a fixed `pad_to`, padded) to."""
    cap = min(context_length, max_length or context_length)
    if pad_to == "longest_training_example":
        if min(longest_train, max_length or longest_train) > context_length:
            # The book's script asserts the same (additional_experiments.py) rather than cut.
            raise UsageError(
                f"--context_length longest_training_example: the longest training text has "
                f"{longest_train} tokens, more than the model's context length ({context_length}); "
                f"pass --context_length model_context_length (or --max_length {context_length}) "
                "to truncate texts to it"
            )
        return min(cap, longest_train)
    if isinstance(pad_to, int):
        if pad_to > context_length:
            raise UsageError(
                f"--context_length {pad_to}: longer than the model's context length "
                f"({context_length})"
            )
        return min(pad_to, cap)
    return cap  # dynamic padding or model_context_length


def _length_stats(lengths: np.ndarray) -> dict[str, float]:
    return {
        "min": int(lengths.min()),
        "median": float(np.median(lengths)),
        "max": int(lengths.max()),
    }


def _class_counts(dataset: Dataset, id2label: Mapping[int, str]) -> dict[str, int]:
    counts = np.bincount(arrow_column(dataset, "label").to_numpy(), minlength=len(id2label))
    return {id2label[i]: int(n) for i, n in enumerate(counts)}


def prepare_data(
    args: DataArguments,
    context_length: int = 1024,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PreparedData:
    """Load, clean, split (`load_splits`), then tokenize with the tokenizer saved with the model.

    `context_length` is the model's; texts are truncated to `min(context_length, --max_length)`,
    and with `--context_length` every text is padded to that length as the book does.
    `tokenizer`: the checkpoint's own (`load_tokenizer`); default GPT-2's.
    """
    if context_length < 1:
        raise UsageError(f"context_length must be at least 1, got {context_length}")
    dataset, info = load_splits(args)
    if tokenizer is None:
        tokenizer = get_tokenizer(context_length)
    raw_lengths = count_tokens(dataset, tokenizer)
    max_length = resolve_length(
        args.pad_to, context_length, args.max_length, int(raw_lengths["train"].max())
    )
    dataset = tokenize(dataset, tokenizer, max_length, pad=args.pad_to is not None)
    padding = "dynamic" if args.pad_to is None else str(args.pad_to)
    report = DataReport(
        source=info.source,
        label_names=list(info.label2id),
        rows_read=info.rows_read,
        empty_dropped=info.empty_dropped,
        duplicates_dropped=info.duplicates_dropped,
        balanced=info.balanced,
        class_counts={split: _class_counts(ds, info.id2label) for split, ds in dataset.items()},
        token_lengths={split: _length_stats(n) for split, n in raw_lengths.items()},
        truncated={split: int((n > max_length).sum()) for split, n in raw_lengths.items()},
        padding=padding,
        max_length=max_length,
        pad_token_id=tokenizer.pad_token_id,
        cross_split_duplicates=cross_split_duplicates(dataset),
        split=info.split,
    )
    return PreparedData(
        dataset=dataset,
        label2id=info.label2id,
        id2label=info.id2label,
        pad_token_id=tokenizer.pad_token_id,
        max_length=max_length,
        padding=padding,
        report=report,
        tokenizer=tokenizer,
    )


def check_save_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing non-empty `path` unless `overwrite` (call it before the slow work)."""
    return check_output_dir(path, overwrite, flag="--save_to_disk")


def save_dataset_to_disk(
    dataset: DatasetDict, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """`save_to_disk` into a folder beside `path`, moved into place when complete."""
    kept = f"--save_to_disk {path} is left as it was"
    with atomic_output_dir(path, overwrite, flag="--save_to_disk") as tmp:
        # datasets' write errors name no file: name the folder being written.
        writing(Path(path), lambda: dataset.save_to_disk(str(tmp)), kept)
    return Path(path).expanduser().resolve()


__all__ = [
    "PreparedData",
    "check_save_target",
    "prepare_data",
    "resolve_length",
    "save_dataset_to_disk",
]
