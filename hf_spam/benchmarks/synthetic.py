"""The scale table's data: synthetic token rows of IMDb-like lengths, split as the book's IMDb.

Lengths are log-normal (mean ~`mean_tokens`, clipped to [20, 1024]), the split 70/10/20 as the
book's IMDb split (35k/5k/10k), and the label is learnable from the first token. The data is
written once and memory-mapped by every run, as a cached dataset is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

VOCAB = 50257
SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}  # the book's IMDb 35k/5k/10k
LENGTH_SIGMA = 0.8  # log-normal spread: IMDb reviews' median is well below their mean
MIN_TOKENS, MAX_TOKENS = 20, 1024


def synthetic_lengths(n: int, mean_tokens: int, seed: int = 123) -> np.ndarray:
    """Log-normal lengths with mean ~`mean_tokens`, clipped to [20, 1024] (IMDb-like)."""
    rng = np.random.default_rng(seed)
    mu = np.log(mean_tokens) - LENGTH_SIGMA**2 / 2  # E[lognormal] = exp(mu + sigma^2 / 2)
    lengths = rng.lognormal(mu, LENGTH_SIGMA, n).round().astype(np.int64)
    return lengths.clip(min(MIN_TOKENS, mean_tokens), MAX_TOKENS)


def synthetic_dataset(n: int, mean_tokens: int, seed: int = 123) -> Any:
    """A `DatasetDict` of random token rows (70/10/20), labels learnable from the first token."""
    from datasets import Dataset, DatasetDict

    rng = np.random.default_rng(seed + 1)
    lengths = synthetic_lengths(n, mean_tokens, seed)
    bounds = np.cumsum([0] + [round(n * f) for f in SPLIT_FRACTIONS.values()])
    bounds[-1] = n
    splits = {}
    for split, first, last in zip(SPLIT_FRACTIONS, bounds[:-1], bounds[1:], strict=True):

        def rows(first=first, last=last):
            for length in lengths[first:last]:
                ids = rng.integers(0, VOCAB - 1, int(length))
                yield {"input_ids": ids.tolist(), "attention_mask": [1] * int(length),
                       "label": int(ids[0] % 2)}  # fmt: skip

        splits[split] = Dataset.from_generator(rows, keep_in_memory=True)
    return DatasetDict(splits)


def save_synthetic(folder: Path, n: int, mean_tokens: int, train_multiple: int = 1) -> Path:
    """Write the data once; every run memory-maps it (`load_from_disk`), as a cached dataset.
    `train_multiple`: cut the training split to whole batches of that size."""
    import datasets

    datasets.disable_progress_bars()
    data = synthetic_dataset(n, mean_tokens)
    data["train"] = data["train"].select(
        range(len(data["train"]) // train_multiple * train_multiple)
    )
    data.save_to_disk(str(folder))
    return folder


def prepared_data(folder: str | os.PathLike) -> Any:
    """`PreparedData` over the saved synthetic splits, as `prepare_data` would describe them."""
    from datasets import load_from_disk

    from ..data import PreparedData
    from ..data.report import DataReport
    from ..data.tokenization import GPT2_PAD_TOKEN_ID

    dataset = load_from_disk(str(folder))
    labels = {"negative": 0, "positive": 1}
    lengths = {s: np.array([len(r) for r in d["input_ids"]]) for s, d in dataset.items()}
    report = DataReport(
        source=f"synthetic ({folder})", label_names=list(labels),
        rows_read={s: len(d) for s, d in dataset.items()},
        empty_dropped={s: 0 for s in dataset}, duplicates_dropped=0, balanced=False,
        class_counts={s: {} for s in dataset},
        token_lengths={s: {"min": int(n.min()), "median": float(np.median(n)), "max": int(n.max())}
                       for s, n in lengths.items()},
        truncated={s: 0 for s in dataset}, padding="dynamic", max_length=MAX_TOKENS,
        pad_token_id=GPT2_PAD_TOKEN_ID, cross_split_duplicates={},
    )  # fmt: skip
    return PreparedData(dataset, labels, {v: k for k, v in labels.items()}, GPT2_PAD_TOKEN_ID,
                        MAX_TOKENS, "dynamic", report)  # fmt: skip


__all__ = ["prepared_data", "save_synthetic", "synthetic_dataset", "synthetic_lengths"]
