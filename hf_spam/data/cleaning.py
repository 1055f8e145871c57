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
from .formats import Split, cached_map
from .labels import case_clash, case_hint, label_name

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
    """Name of every raw label value by the rule of `labels.py`: its ClassLabel name, else the
    value itself, stripped of surrounding whitespace, integers by their digits."""
    if isinstance(feature, ClassLabel):
        names = feature.names
        return {
            v: label_name(names[v] if 0 <= v < len(names) else v) for v in values if v is not None
        }
    return {v: label_name(v) for v in values if v is not None}


def _split_label_names(split: Split) -> dict[Any, str]:
    return _raw_label_names(split.dataset.features["label"], split.dataset.unique("label"))


def _first_row(split: Split, value: Any) -> int:
    """The 1-based row (or line) of `split` where the raw label `value` first occurs."""
    labels = arrow_column(split.dataset, "label")
    return pc.index(labels, pa.scalar(value, type=labels.type)).as_py() + 1


def _is_numeric(split: Split) -> bool:
    feature = split.dataset.features["label"]
    return isinstance(feature, Value) and (
        pa.types.is_integer(feature.pa_type) or pa.types.is_floating(feature.pa_type)
    )


def check_label_spellings(splits: Mapping[str, Split]) -> None:
    """Refuse two labels that differ only by case, naming both spellings and a row of each;
    log what the rule read as one: labels with surrounding spaces, integers and their strings."""
    spelled: dict[str, tuple[Split, Any]] = {}
    padded: dict[str, list[str]] = {}
    for split in splits.values():
        for value, name in _split_label_names(split).items():
            spelled.setdefault(name, (split, value))
            if isinstance(value, str) and value != name:
                padded.setdefault(split.origin, []).append(repr(value))
    clash = case_clash(spelled)
    if clash:
        (first, first_value), (second, second_value) = spelled[clash[0]], spelled[clash[1]]
        raise DataError(
            f"labels {clash[0]!r} ({first.origin}, {first.unit} {_first_row(first, first_value)}) "
            f"and {clash[1]!r} ({second.origin}, {second.unit} "
            f"{_first_row(second, second_value)}) in column {second.label_column!r} differ only "
            "by case; spell each class one way"
        )
    for origin, values in padded.items():
        shown = ", ".join(values[:3]) + (", ..." if len(values) > 3 else "")
        logger.warning(f"{origin}: labels {shown} read without their surrounding spaces")
    numeric = [split.origin for split in splits.values() if _is_numeric(split)]
    if numeric and len(numeric) < len(splits):
        others = [split.origin for split in splits.values() if not _is_numeric(split)]
        logger.warning(
            f"labels: the numbers of {', '.join(numeric)} and the texts of {', '.join(others)} "
            f"read as the same classes ({', '.join(sorted(spelled))})"
        )


def _as_number(name: str) -> float | None:
    try:
        return float(name)
    except ValueError:
        return None


def _label_names(splits: Mapping[str, Split], fixed: tuple[str, ...] | None) -> tuple[str, ...]:
    """Deterministic class order: fixed names, else a format's own (the SMS format's), else the
    ClassLabel order, else sorted (by value when the labels are numbers)."""
    if fixed:
        return fixed
    for split in splits.values():
        if split.label_names:
            return split.label_names
    feature = splits["train"].dataset.features["label"]
    if isinstance(feature, ClassLabel):
        return tuple(dict.fromkeys(label_name(name) for name in feature.names))
    names = {name for split in splits.values() for name in _split_label_names(split).values()}
    numbers = {name: _as_number(name) for name in names}
    if any(map(_is_numeric, splits.values())) and None not in numbers.values():
        return tuple(sorted(names, key=numbers.__getitem__))
    return tuple(sorted(names))


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
    raw_names = _split_label_names(split)
    for value, name in raw_names.items():
        if name not in label2id:
            raise DataError(
                f"{split.origin}, {split.unit} {_first_row(split, value)}: unknown label "
                f"{name!r} in column {split.label_column!r}, expected one of "
                f"{', '.join(names)}{case_hint(name, names)}"
            )
    value_to_id = {value: label2id[name] for value, name in raw_names.items()}
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    return cached_map(
        dataset,
        _map_labels_batch,
        batched=True,
        fn_kwargs={"value_to_id": value_to_id},
        features=features,
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
    check_label_spellings(splits)
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


__all__ = [
    "LoadedSource",
    "arrow_column",
    "check_label_spellings",
    "clean_splits",
    "drop_empty_texts",
]
