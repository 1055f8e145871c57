"""The SMS Spam Collection as a source: the bundled file (`--dataset sms_spam`), a file in its
format (or a folder holding `SMSSpamCollection`), or the Hub's copy (`ucirvine/sms_spam`); and
the book's two splits of it.

`book` (ch06 `gpt_class_finetune.py`): pandas' default-quoting parse, `ham` undersampled with
`sample(n_spam, random_state=123)`, `concat([ham, spam])`, shuffled with `sample(frac=1,
random_state=123)`, then cut 70/10/20 with `int()`.
`bonus` (ch06/02 `additional_experiments.py`, the 19-row table): the same steps, but its
`random_split` shuffles the balanced frame once more with `sample(frac=1, random_state=123)`
before cutting, so its train/validation/test hold different texts from the chapter's (725/22/66
in common).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..constants import SMS_SPAM_HUB_ID, SPLITS
from ..errors import DataError
from .arguments import DataArguments
from .bundled import SMS_SPAM_FILENAME, bundled_file
from .cleaning import LoadedSource, arrow_column, drop_empty_texts
from .formats import SMS_LABELS, Split, is_sms_format, load_file, looks_like_path
from .hub import load_hub_dataset
from .partition import cut, pandas_sample

logger = logging.get_logger(__name__)

#: The --dataset value of the bundled copy (the default).
SMS_SPAM_NAME = "sms_spam"
BOOK_PARSE_NOTE = (
    "--split book: the book's pandas parsing merges some quoted SMS messages (5572 rows instead "
    "of 5574); --split clean gives the faithful 5574-row parse"
)


def is_sms_spam_path(args: DataArguments) -> bool:
    """Whether --dataset is a file in the collection's format or a folder holding one (a
    --train_file is a plain file, whatever its format)."""
    if args.train_file:
        return False
    path = Path(args.dataset).expanduser()
    if path.is_dir() and (path / SMS_SPAM_FILENAME).is_file():
        return True
    return looks_like_path(args.dataset) and is_sms_format(path)


def _strip_newline_batch(batch: dict[str, list]) -> dict[str, list]:
    return {"text": [text.removesuffix("\n") for text in batch["text"]]}


def load_sms_spam(args: DataArguments) -> tuple[dict[str, Split], list[str]]:
    """The collection's one split, `train`, and where it came from."""
    if args.dataset == SMS_SPAM_HUB_ID:
        # The Hub copy keeps each line's newline; strip it so texts equal the file's.
        splits = load_hub_dataset(args, "sms", "label", SMS_LABELS, _strip_newline_batch)
        return splits, [f"Hub dataset {args.dataset}"]
    if args.dataset == SMS_SPAM_NAME:
        path = bundled_file(SMS_SPAM_FILENAME)
    else:
        path = Path(args.dataset).expanduser()
    return {"train": load_file(path, args)}, [f"train file {path}"]


def read_book_sms_frame(split: Split) -> pd.DataFrame:
    """The SMS Spam Collection as the book reads it: `pd.read_csv(sep="\\t")` with pandas'
    default quoting, which merges a few quoted messages (5572 rows, not 5574).

    A Hub copy is first written back as the file's `label<TAB>text` lines, so it parses the same.
    """
    if split.unit == "line":
        source: Any = split.origin
    else:
        names = split.dataset.features["label"].names
        table = split.dataset.with_format("python")
        lines = (
            f"{names[label]}\t{text}\n"
            for text, label in zip(table["text"], table["label"], strict=True)
        )
        source = io.StringIO("".join(lines))
    return pd.read_csv(source, sep="\t", header=None, names=["Label", "Text"])


def _book_order(loaded: LoadedSource, args: DataArguments, shuffles: int) -> LoadedSource:
    """The book's pandas steps on its own parse, the balanced frame shuffled `shuffles` times."""
    logger.warning(BOOK_PARSE_NOTE)
    frame = read_book_sms_frame(loaded.raw["train"])
    origin = loaded.origin
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
    pool, _ = drop_empty_texts(pool, Split(pool, origin, "row", "Text", "Label"), args.empty_text)
    labels = np.array([names[i] for i in arrow_column(pool, "label").to_numpy()])
    ham, spam = np.flatnonzero(labels == "ham"), np.flatnonzero(labels == "spam")
    order = np.concatenate([ham[pandas_sample(len(ham), len(spam), args.split_seed)], spam])
    for _ in range(shuffles):
        order = order[pandas_sample(len(order), len(order), args.split_seed)]
    return dataclasses.replace(
        loaded,
        dataset=DatasetDict(cut(pool, order, args, SPLITS, origin)),
        rows_read={"train": len(frame)},
    )


def book_split(loaded: LoadedSource, args: DataArguments) -> LoadedSource:
    """`--split book`: the chapter's split, exactly."""
    return _book_order(loaded, args, shuffles=1)


def bonus_split(loaded: LoadedSource, args: DataArguments) -> LoadedSource:
    """`--split bonus`: the bonus experiments' split (one more shuffle before cutting)."""
    return _book_order(loaded, args, shuffles=2)


__all__ = [
    "BOOK_PARSE_NOTE",
    "SMS_SPAM_NAME",
    "bonus_split",
    "book_split",
    "is_sms_spam_path",
    "load_sms_spam",
    "read_book_sms_frame",
]
