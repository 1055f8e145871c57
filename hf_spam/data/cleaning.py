"""Cleaning any source: labels checked and stored as a `ClassLabel`, empty texts dropped or
refused, before balancing and splitting; and `LoadedSource`, the record of a source's texts
that the splits, the report and the model card read.

Every error names the file (or Hub split), the 1-based row or line and the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..constants import SPLITS
from ..errors import DataError
from .arguments import DataArguments
from .formats import Split

logger = logging.get_logger(__name__)


@dataclass
class LoadedSource:
    """A source's texts, cleaned and, after `load_splits`, split, with where they came from and
    what the report and the model card say about them."""

    dataset: DatasetDict
    label2id: dict[str, int]
    source: str  # one line: where the texts came from
    rows_read: dict[str, int]
    empty_dropped: dict[str, int]
    raw: dict[str, Split]  # each split as loaded, before cleaning (messages name its origin)
    split: str | None = None  # "book", "bonus" or "clean" once split
    duplicates_dropped: int = 0
    balanced: bool = False

    @property
    def id2label(self) -> dict[int, str]:
        return {i: name for name, i in self.label2id.items()}

    @property
    def origin(self) -> str:
        """Where the training texts came from (a file, a Hub split, an archive)."""
        return self.raw["train"].origin


def arrow_column(dataset: Dataset, name: str) -> pa.ChunkedArray:
    """A column as Arrow, honouring any indices mapping."""
    column = dataset.with_format("arrow")[name]
    return column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])


def _mask(array: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(array, True).to_numpy(zero_copy_only=False)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _raw_label_names(feature: Value | ClassLabel, values: Sequence[Any]) -> dict[Any, str]:
    """Name of every raw label value: its ClassLabel name, else the value as a string."""
    if isinstance(feature, ClassLabel):
        names = feature.names
        return {v: names[v] if v < len(names) else str(v) for v in values if v is not None}
    return {v: str(v) for v in values if v is not None}


def _label_names(splits: Mapping[str, Split], fixed: tuple[str, ...] | None) -> tuple[str, ...]:
    """Deterministic class order: fixed names, else a format's own (the SMS format's), else the
    ClassLabel order, else sorted."""
    if fixed:
        return fixed
    for split in splits.values():
        if split.label_names:
            return split.label_names
    feature = splits["train"].dataset.features["label"]
    if isinstance(feature, ClassLabel):
        return tuple(feature.names)
    values = {
        v for split in splits.values() for v in split.dataset.unique("label") if v is not None
    }
    numeric = all(isinstance(v, (int, float)) for v in values)
    return tuple(str(v) for v in sorted(values, key=lambda v: v if numeric else str(v)))


def _map_labels_batch(batch: dict[str, list], value_to_id: dict[Any, int]) -> dict[str, list]:
    return {"label": [value_to_id[value] for value in batch["label"]]}


def _encode_labels(split: Split, names: tuple[str, ...]) -> Dataset:
    """Check every label is present and one of `names`, then store ids as a `ClassLabel`."""
    dataset, feature = split.dataset, split.dataset.features["label"]
    labels = arrow_column(dataset, "label")
    if isinstance(feature, ClassLabel):
        missing = _mask(pc.less(labels, 0))  # -1: unlabelled (e.g. a Hub test split)
    elif pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type):
        missing = _mask(pc.equal(pc.utf8_trim_whitespace(labels), ""))
    elif pa.types.is_floating(labels.type):
        missing = _mask(pc.is_nan(labels))
    else:
        missing = _mask(pc.is_null(labels))
    if missing.any():
        raise DataError(
            f"{split.origin}, {split.unit} {_first(missing) + 1}: no label in column "
            f"{split.label_column!r}, expected one of {', '.join(names)}"
        )
    label2id = {name: i for i, name in enumerate(names)}
    raw_names = _raw_label_names(feature, dataset.unique("label"))
    for value, name in raw_names.items():
        if name not in label2id:
            row = pc.index(labels, pa.scalar(value, type=labels.type)).as_py() + 1
            raise DataError(
                f"{split.origin}, {split.unit} {row}: unknown label {name!r} in column "
                f"{split.label_column!r}, expected one of {', '.join(names)}"
            )
    value_to_id = {value: label2id[name] for value, name in raw_names.items()}
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    return dataset.map(
        _map_labels_batch, batched=True, fn_kwargs={"value_to_id": value_to_id}, features=features
    )


def drop_empty_texts(dataset: Dataset, split: Split, policy: str) -> tuple[Dataset, int]:
    """Missing or whitespace-only texts: drop them (returning how many) or refuse."""
    texts = arrow_column(dataset, "text")
    blank = _mask(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0))
    if not blank.any():
        return dataset, 0
    if policy == "error":
        raise DataError(
            f"{split.origin}, {split.unit} {_first(blank) + 1}: empty text in column "
            f"{split.text_column!r}, expected a non-empty text (or pass --empty_text drop)"
        )
    logger.warning(f"{split.origin}: dropped {int(blank.sum())} rows with an empty text")
    return dataset.select(np.flatnonzero(~blank)), int(blank.sum())


def clean_splits(splits: dict[str, Split], source: str, args: DataArguments) -> LoadedSource:
    """Check every label and drop (or refuse) empty texts of each split `source` gave."""
    names = _label_names(splits, args.label_names)
    cleaned, rows_read, empty_dropped = {}, {}, {}
    for name in (split for split in SPLITS if split in splits):
        rows_read[name] = len(splits[name].dataset)
        dataset = _encode_labels(splits[name], names)
        cleaned[name], empty_dropped[name] = drop_empty_texts(
            dataset, splits[name], args.empty_text
        )
    train = splits["train"]
    counts = np.bincount(arrow_column(cleaned["train"], "label").to_numpy(), minlength=len(names))
    present = [names[i] for i in np.flatnonzero(counts)]
    if len(present) < 2:
        found = f"only class {present[0]!r}" if present else "no rows"
        raise DataError(
            f"{train.origin}: {found} in column {train.label_column!r}, expected at least two classes"
        )
    return LoadedSource(
        dataset=DatasetDict(cleaned),
        label2id={name: i for i, name in enumerate(names)},
        source=source,
        rows_read=rows_read,
        empty_dropped=empty_dropped,
        raw=splits,
    )


__all__ = ["LoadedSource", "arrow_column", "clean_splits", "drop_empty_texts"]
