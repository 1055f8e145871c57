"""Balancing and splitting: the book's splits (`--split book|bonus`) or the clean one (`clean`).

`book` gives exactly the rows, in the order, of the book's own code:
- SMS Spam Collection (ch06 `gpt_class_finetune.py`): pandas' default-quoting parse, `ham`
  undersampled with `sample(n_spam, random_state=123)`, `concat([ham, spam])`, shuffled with
  `sample(frac=1, random_state=123)`, then cut 70/10/20 with `int()`.
- IMDb (ch06/03 `download_prepare_dataset.py`): shuffled twice with `sample(frac=1,
  random_state=123)`, then cut 35,000/5,000/10,000 (70/10/20 of 50,000); not balanced further.

`bonus` is the split of the bonus experiments (ch06/02 `additional_experiments.py`, the 19-row
table), SMS only: the same steps, but its `random_split` shuffles the balanced frame once more
with `sample(frac=1, random_state=123)` before cutting, so its train/validation/test hold
different texts from the chapter's (725/22/66 in common).
pandas' `sample` draws with `RandomState(seed).choice(n, size, replace=False)`, which is
`RandomState(seed).permutation(n)[:size]`; the same draws are made here on Arrow-backed data.

`clean` reads every row faithfully, optionally drops duplicates, undersamples every class to the
smallest with numpy's `default_rng(split_seed)` and cuts by `--split_fractions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..constants import SPLITS
from ..errors import DataError, UsageError
from .arguments import BOOK_FRACTIONS, DataArguments
from .cleaning import LoadedSource, arrow_column, clean_source, drop_empty_texts
from .sources import SMS_LABELS, Split, is_sms_source, read_book_sms_frame

logger = logging.get_logger(__name__)

BOOK_PARSE_NOTE = (
    "--split book: the book's pandas parsing merges some quoted SMS messages (5572 rows instead "
    "of 5574); --split clean gives the faithful 5574-row parse"
)


@dataclass
class SplitInfo:
    """How the splits were made: what the report and the model card say about them."""

    source: str
    label2id: dict[str, int]
    rows_read: dict[str, int]
    empty_dropped: dict[str, int]
    duplicates_dropped: int
    balanced: bool
    split: str  # "book", "bonus" or "clean"

    @property
    def id2label(self) -> dict[int, str]:
        return {i: name for name, i in self.label2id.items()}


def resolve_split(args: DataArguments) -> str:
    """'book', 'bonus' or 'clean' for `args`: the book's split wherever it is defined, else clean.

    An explicit `--split book|bonus` that cannot apply is a `UsageError` naming the conflicting
    flag; the default falls back to `clean` with a log line saying why.
    """
    sms, imdb = is_sms_source(args), args.dataset == "imdb" and not args.train_file
    if args.split == "clean":
        return "clean"
    if args.split == "bonus" and not sms:
        raise UsageError(
            f"--split bonus: defined for the SMS Spam Collection only, not "
            f"{args.train_file or args.dataset}; use --split book or clean"
        )
    if not (sms or imdb):
        if args.split == "book":
            source = args.train_file or args.dataset
            raise UsageError(
                f"--split book: defined for the SMS Spam Collection and imdb only, not {source}; "
                "use --split clean"
            )
        return "clean"
    conflicts = []
    if args.dedupe:
        conflicts.append("--dedupe")
    if sms and not args.balance:
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
    return args.split or "book"


def _cut(pool: Dataset, order: np.ndarray, args: DataArguments, names: Sequence[str], origin: str):
    """Consecutive slices of `order`: `int(n * fraction)` rows each, the last split the rest."""
    total = sum(args.fractions[name] for name in names)
    sizes = [int(len(order) * args.fractions[name] / total) for name in names[:-1]]
    sizes.append(len(order) - sum(sizes))
    if min(sizes) == 0:
        raise DataError(
            f"{origin}: {len(order)} rows left after cleaning"
            f"{' and balancing' if args.balance else ''} are too few for split fractions "
            f"{args.split_fractions}: {names[sizes.index(0)]!r} would be empty"
        )
    bounds = np.cumsum([0, *sizes])
    return {
        name: pool.select(order[a:b])
        for name, a, b in zip(names, bounds[:-1], bounds[1:], strict=True)
    }


def _pandas_sample(n: int, size: int, seed: int) -> np.ndarray:
    """The positions `DataFrame.sample(size, random_state=seed)` picks, in its order."""
    return np.random.RandomState(seed).permutation(n)[:size]


def _book_sms(
    loaded: LoadedSource, args: DataArguments, *, bonus: bool = False
) -> tuple[DatasetDict, int]:
    logger.warning(BOOK_PARSE_NOTE)
    frame = read_book_sms_frame(loaded.splits["train"])
    origin = loaded.origins["train"]
    unknown = ~frame["Label"].isin(SMS_LABELS)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0]) + 1
        raise DataError(
            f"{origin}, row {row} of the book's parse: unknown label {frame['Label'][row - 1]!r}, "
            f"expected one of {', '.join(SMS_LABELS)}"
        )
    names = list(loaded.label2id)
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    pool = Dataset.from_dict(
        {
            "text": frame["Text"].fillna("").tolist(),
            "label": [loaded.label2id[label] for label in frame["Label"]],
        },
        features=features,
    )
    split = Split(pool, origin, "row", "Text", "Label")
    pool, _ = drop_empty_texts(pool, split, args.empty_text)
    labels = np.array([names[i] for i in arrow_column(pool, "label").to_numpy()])
    ham, spam = np.flatnonzero(labels == "ham"), np.flatnonzero(labels == "spam")
    balanced = np.concatenate([ham[_pandas_sample(len(ham), len(spam), args.split_seed)], spam])
    order = balanced[_pandas_sample(len(balanced), len(balanced), args.split_seed)]
    if bonus:  # additional_experiments.py's random_split shuffles once more before cutting
        order = order[_pandas_sample(len(order), len(order), args.split_seed)]
    loaded.rows_read["train"] = len(frame)
    return DatasetDict(_cut(pool, order, args, SPLITS, origin)), 0


def _book_imdb(loaded: LoadedSource, args: DataArguments) -> tuple[DatasetDict, int]:
    pool = loaded.dataset["train"]
    order = np.arange(len(pool))
    for _ in range(2):  # the book shuffles once when reading and once when partitioning
        order = order[_pandas_sample(len(order), len(order), args.split_seed)]
    return DatasetDict(_cut(pool, order, args, SPLITS, loaded.origins["train"])), 0


def _dedupe(pool: Dataset, kept: Sequence[Dataset]) -> tuple[Dataset, int]:
    """Drop repeated texts (keeping the first) and texts already in a kept validation/test split."""
    texts = arrow_column(pool, "text").to_pandas()
    elsewhere = {text for other in kept for text in arrow_column(other, "text").to_pylist()}
    drop = (texts.duplicated() | texts.isin(elsewhere)).to_numpy()
    return pool.select(np.flatnonzero(~drop)), int(drop.sum())


def _clean_split(loaded: LoadedSource, args: DataArguments) -> tuple[DatasetDict, int]:
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
                f"{loaded.origins['train']}: no rows of class {', '.join(map(repr, empty))}; "
                "cannot balance (pass --no_balance, or fix --labels)"
            )
        picked = [
            rng.permutation(np.flatnonzero(labels == i))[: counts.min()] for i in range(len(counts))
        ]
        order = rng.permutation(np.concatenate(picked))
    else:
        order = rng.permutation(len(pool))
    missing = [split for split in SPLITS if split not in given]
    splits = _cut(pool, order, args, missing, loaded.origins["train"])
    splits.update(given)
    return DatasetDict({split: splits[split] for split in SPLITS}), dropped


def _first_rows(dataset: Dataset, limit: int | None) -> Dataset:
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def load_splits(args: DataArguments) -> tuple[DatasetDict, SplitInfo]:
    """The train/validation/test splits (`text`, `label` as a ClassLabel), not tokenized.

    `--max_train_samples`/`--max_eval_samples` keep the first N rows after splitting (the
    convention of transformers' example scripts), so a smaller run sees a prefix of the same split.
    """
    method = resolve_split(args)
    loaded = clean_source(args)
    if method == "clean":
        dataset, duplicates = _clean_split(loaded, args)
    elif loaded.is_sms:
        dataset, duplicates = _book_sms(loaded, args, bonus=method == "bonus")
    else:
        dataset, duplicates = _book_imdb(loaded, args)
    dataset["train"] = _first_rows(dataset["train"], args.max_train_samples)
    for split in SPLITS[1:]:
        dataset[split] = _first_rows(dataset[split], args.max_eval_samples)
    info = SplitInfo(
        source=loaded.description,
        label2id=loaded.label2id,
        rows_read=loaded.rows_read,
        empty_dropped=loaded.empty_dropped,
        duplicates_dropped=duplicates,
        balanced=loaded.is_sms if method != "clean" else args.balance,
        split=method,
    )
    return dataset, info


def cross_split_duplicates(dataset: DatasetDict) -> dict[str, int]:
    """How many texts of a later split also occur in an earlier one (possible leakage)."""
    result = {}
    for later, earlier in (("validation", "train"), ("test", "train"), ("test", "validation")):
        seen = set(arrow_column(dataset[earlier], "text").to_pylist())
        result[f"{later} in {earlier}"] = int(
            arrow_column(dataset[later], "text").to_pandas().isin(seen).sum()
        )
    return result


__all__ = ["BOOK_PARSE_NOTE", "SplitInfo", "cross_split_duplicates", "load_splits", "resolve_split"]
