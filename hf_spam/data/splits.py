"""Balancing and splitting: a source's own book splits (`--split book|bonus`, as `SOURCES`
lists them) or the clean one (`clean`), which every source has.

`book` gives exactly the rows, in the order, of the book's own code: the SMS Spam Collection's
(ch06 `gpt_class_finetune.py`) and `bonus` split in `sms.py`, IMDb's (ch06/03
`download_prepare_dataset.py`) in `imdb.py`.

`clean` reads every row faithfully, optionally drops duplicates, undersamples every class to the
smallest with numpy's `default_rng(split_seed)` and cuts by `--split_fractions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from datasets import Dataset, DatasetDict
from transformers.utils import logging

from ..constants import SPLITS
from ..errors import DataError, UsageError
from .arguments import BOOK_FRACTIONS, SPLIT_METHODS, DataArguments
from .cleaning import LoadedSource, arrow_column
from .partition import cut
from .sources import Source, clean_source, find_source, sources_defining

logger = logging.get_logger(__name__)


def _undefined(method: str, source: Source, args: DataArguments) -> UsageError:
    """`--split method` for a source that does not define it: which sources do, what to use."""
    defined = sources_defining(method)
    others = [
        name for name in SPLIT_METHODS if name != method and name in (*source.splits, "clean")
    ]
    return UsageError(
        f"--split {method}: defined for {defined} only, not {args.train_file or args.dataset}; "
        f"use --split {' or '.join(others)}"
    )


def _resolve(source: Source, args: DataArguments) -> str:
    if args.split == "clean":
        return "clean"
    if args.split is not None and args.split not in source.splits:
        raise _undefined(args.split, source, args)
    if not source.splits:
        return "clean"
    conflicts = []
    if args.dedupe:
        conflicts.append("--dedupe")
    if source.book_balances and not args.balance:
        conflicts.append("--no_balance")
    if args.fractions != BOOK_FRACTIONS:
        conflicts.append(f"--split_fractions {args.split_fractions}")
    if args.validation_file or args.test_file:
        conflicts.append("--validation_file/--test_file")
    if conflicts and args.split is not None:
        raise UsageError(
            f"--split {args.split} conflicts with {', '.join(conflicts)}: the book's split is "
            "balanced, 0.7,0.1,0.2 and not deduplicated; use --split clean"
        )
    if conflicts:
        logger.warning(f"{', '.join(conflicts)} given: using --split clean, not the book's split")
        return "clean"
    return args.split or next(iter(source.splits))


def resolve_split(args: DataArguments) -> str:
    """'book', 'bonus' or 'clean' for `args`: the source's book split wherever it has one,
    else clean.

    An explicit `--split book|bonus` that cannot apply is a `UsageError` naming the conflicting
    flag (or the sources that define it); the default falls back to `clean` with a log line
    saying why.
    """
    return _resolve(find_source(args), args)


def _dedupe(pool: Dataset, kept: Sequence[Dataset]) -> tuple[Dataset, int]:
    """Drop repeated texts (keeping the first) and texts already in a kept validation/test split."""
    texts = arrow_column(pool, "text").to_pandas()
    elsewhere = {text for other in kept for text in arrow_column(other, "text").to_pylist()}
    drop = (texts.duplicated() | texts.isin(elsewhere)).to_numpy()
    return pool.select(np.flatnonzero(~drop)), int(drop.sum())


def _clean_split(loaded: LoadedSource, args: DataArguments) -> LoadedSource:
    """Undersample each class to the smallest (optional), shuffle with the seed, cut by fractions."""
    pool = loaded.dataset["train"]
    given = {split: loaded.dataset[split] for split in SPLITS[1:] if split in loaded.dataset}
    dropped = 0
    if args.dedupe:
        pool, dropped = _dedupe(pool, list(given.values()))
    rng = np.random.default_rng(args.split_seed)
    labels = arrow_column(pool, "label").to_numpy()
    if args.balance:
        counts = np.bincount(labels, minlength=len(loaded.label2id))
        if counts.min() == 0:
            empty = [name for name, i in loaded.label2id.items() if counts[i] == 0]
            raise DataError(
                f"{loaded.origin}: no rows of class {', '.join(map(repr, empty))}; "
                "cannot balance (pass --no_balance, or fix --labels)"
            )
        picked = [
            rng.permutation(np.flatnonzero(labels == i))[: counts.min()] for i in range(len(counts))
        ]
        order = rng.permutation(np.concatenate(picked))
    else:
        order = rng.permutation(len(pool))
    missing = [split for split in SPLITS if split not in given]
    splits = cut(pool, order, args, missing, loaded.origin)
    splits.update(given)
    dataset = DatasetDict({split: splits[split] for split in SPLITS})
    return dataclasses.replace(loaded, dataset=dataset, duplicates_dropped=dropped)


def _first_rows(dataset: Dataset, limit: int | None) -> Dataset:
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def load_splits(args: DataArguments) -> tuple[DatasetDict, LoadedSource]:
    """The train/validation/test splits (`text`, `label` as a ClassLabel), not tokenized, and
    the record of how they were made (`LoadedSource`: what the report and the card say).

    `--max_train_samples`/`--max_eval_samples` keep the first N rows after splitting (the
    convention of transformers' example scripts), so a smaller run sees a prefix of the same split.
    """
    source = find_source(args)
    method = _resolve(source, args)
    loaded = clean_source(args)
    if method == "clean":
        loaded, balanced = _clean_split(loaded, args), args.balance
    else:
        loaded, balanced = source.splits[method](loaded, args), source.book_balances
    dataset = loaded.dataset
    dataset["train"] = _first_rows(dataset["train"], args.max_train_samples)
    for split in SPLITS[1:]:
        dataset[split] = _first_rows(dataset[split], args.max_eval_samples)
    return dataset, dataclasses.replace(loaded, split=method, balanced=balanced)


def cross_split_duplicates(dataset: DatasetDict) -> dict[str, int]:
    """How many texts of a later split also occur in an earlier one (possible leakage)."""
    result = {}
    for later, earlier in (("validation", "train"), ("test", "train"), ("test", "validation")):
        seen = set(arrow_column(dataset[earlier], "text").to_pylist())
        result[f"{later} in {earlier}"] = int(
            arrow_column(dataset[later], "text").to_pandas().isin(seen).sum()
        )
    return result


__all__ = ["cross_split_duplicates", "load_splits", "resolve_split"]
