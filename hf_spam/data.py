"""Data pipeline: labelled texts -> balanced, split, GPT-2-tokenized `datasets.DatasetDict`.

This reproduces the dataset preparation of chapter 6 of *Build a Large Language Model (From
Scratch)* (undersample to the smallest class, 70/10/20 split with seed 123, pad to the longest
training text) as a cached `datasets` pipeline, and accepts any labelled text besides the SMS Spam
Collection: CSV/TSV/JSON lines/Parquet files or a Hub dataset.

Every step is a `Dataset.map`/`select` on Arrow-backed data, so re-running with the same inputs
reuses the cached results. The module knows nothing about the model: it only needs the model's
context length to truncate, and produces `input_ids`/`attention_mask`/`label`/`length` columns.

Bad input raises `DataError` naming the file (or Hub split), the 1-based line or row, the column
and what was expected. Rows are counted from 1 without a CSV/TSV header; the SMS format counts
lines. Texts that are missing or contain only whitespace are dropped and counted in the report by
default (`empty_text="drop"`), or refused with `empty_text="error"`.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tiktoken
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.utils import logging

from .constants import SPLITS
from .errors import DataError

logger = logging.get_logger(__name__)

SMS_SPAM_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
SMS_SPAM_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
SMS_SPAM_FILENAME = "SMSSpamCollection"
SMS_SPAM_HUB_ID = "ucirvine/sms_spam"
SMS_LABELS = ("ham", "spam")  # ham=0, spam=1, as in the book and on the Hub

GPT2_ENCODING = "gpt2"
GPT2_EOS_TOKEN = "<|endoftext|>"
GPT2_PAD_TOKEN_ID = 50256  # the book pads with <|endoftext|>

PADDING_STRATEGIES = ("longest_train", "dynamic")
EMPTY_TEXT_POLICIES = ("drop", "error")
TABULAR_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
}
HUB_SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}


@dataclass
class DataArguments:
    """Where the labelled texts come from and how to prepare them (parsed by `HfArgumentParser`).

    Field names avoid those of `TrainingArguments` so both parse side by side (hence `split_seed`,
    not `seed`, and `data_cache_dir`).
    """

    dataset: str = field(
        default="sms_spam",
        metadata={
            "help": "'sms_spam' (download the UCI SMS Spam Collection), a path to a SMSSpamCollection "
            "file, a CSV/TSV/JSONL/Parquet file, or a Hub dataset id (e.g. 'ucirvine/sms_spam')."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration name of a Hub dataset."}
    )
    train_file: str | None = field(
        default=None,
        metadata={"help": "Training file (CSV/TSV/JSONL/Parquet); replaces --dataset."},
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation file, kept as is instead of split off."}
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file, kept as is instead of split off."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the texts."})
    label_column: str = field(default="label", metadata={"help": "Column holding the labels."})
    labels: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated class names in id order (e.g. 'ham,spam'). Fixes the label set: "
            "any other label is an error. Default: the source's names, else the sorted labels found."
        },
    )
    balance: bool = field(
        default=True,
        metadata={
            "help": "Undersample every class to the smallest one before splitting (the book)."
        },
    )
    split_fractions: str = field(
        default="0.7,0.1,0.2",
        metadata={
            "help": "train,validation,test fractions summing to 1. Splits given as files are kept "
            "and the remaining fractions are renormalized."
        },
    )
    dedupe: bool = field(
        default=False,
        metadata={
            "help": "Drop exact duplicate texts before splitting (keeping the first), and texts that "
            "occur in a given validation/test file."
        },
    )
    split_seed: int = field(default=123, metadata={"help": "Seed for balancing and splitting."})
    padding: str = field(
        default="dynamic",
        metadata={
            "help": "'longest_train': pad every example to the longest training text (the book); "
            "'dynamic': pad each batch to its longest example in the data collator.",
            "choices": list(PADDING_STRATEGIES),
        },
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Truncate texts to this many tokens (never more than the context length)."
        },
    )
    empty_text: str = field(
        default="drop",
        metadata={
            "help": "Missing or whitespace-only texts: 'drop' them (counted in the report) or 'error'.",
            "choices": list(EMPTY_TEXT_POLICIES),
        },
    )
    data_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Cache directory for downloads and Arrow files (default: HF_DATASETS_CACHE)."
        },
    )

    def __post_init__(self) -> None:
        if self.padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding must be one of {PADDING_STRATEGIES}, got {self.padding!r}")
        if self.empty_text not in EMPTY_TEXT_POLICIES:
            raise ValueError(
                f"empty_text must be one of {EMPTY_TEXT_POLICIES}, got {self.empty_text!r}"
            )
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        if self.text_column == self.label_column:
            raise ValueError(f"text_column and label_column are both {self.text_column!r}")
        _parse_fractions(self.split_fractions)
        _parse_labels(self.labels)

    @property
    def seed(self) -> int:
        """Alias of `split_seed` (a `seed` field would clash with `TrainingArguments.seed`)."""
        return self.split_seed


def _parse_fractions(text: str) -> dict[str, Fraction]:
    """Exact fractions, so split sizes never depend on float rounding (0.7 * 1494 = 1045.8)."""
    try:
        values = [Fraction(part.strip()) for part in text.split(",")]
    except (ValueError, ZeroDivisionError):
        values = []
    if len(values) != 3 or any(v <= 0 for v in values) or sum(values) != 1:
        raise ValueError(
            "split_fractions must be three positive numbers summing to 1 (train,validation,test), "
            f"got {text!r}"
        )
    return dict(zip(SPLITS, values, strict=True))


def _parse_labels(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"labels must name two or more distinct classes, got {text!r}")
    return names


@dataclass
class DataReport:
    """What the summary table is built from; every count is in rows (texts)."""

    source: str
    label_names: list[str]
    rows_read: dict[str, int]
    empty_dropped: dict[str, int]
    duplicates_dropped: int
    balanced: bool
    class_counts: dict[str, dict[str, int]]  # split -> label -> rows
    token_lengths: dict[str, dict[str, float]]  # split -> min/median/max, before truncation
    truncated: dict[str, int]  # split -> texts longer than max_length
    padding: str
    max_length: int
    pad_token_id: int
    cross_split_duplicates: dict[str, int]  # "test in train" -> test texts that also occur in train


@dataclass
class PreparedData:
    """The tokenized splits plus what the model config and the collator need."""

    dataset: DatasetDict
    label2id: dict[str, int]
    id2label: dict[int, str]
    pad_token_id: int
    max_length: int
    padding: str
    report: DataReport

    @property
    def num_labels(self) -> int:
        return len(self.label2id)


@dataclass
class _Loaded:
    """Cleaned splits as the source gives them, and where each came from (for messages)."""

    dataset: DatasetDict
    label2id: dict[str, int]
    origins: dict[str, str]
    rows_read: dict[str, int]
    empty_dropped: dict[str, int]
    description: str


# ---------------------------------------------------------------------------------------------
# SMS Spam Collection
# ---------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path) -> None:
    """A readable, non-empty file, checked before any reader gives a less helpful error."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty, expected labelled texts")


def _check_utf8(path: Path) -> None:
    """Fail on non-UTF-8 bytes naming the line (pandas and Arrow readers name neither)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            pending = decoder.getstate()[0]  # bytes of a character cut by the previous block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                data = pending + block
                line += data.count(b"\n", 0, exc.start)
                bad = data[exc.start : exc.end]
                raise DataError(f"{path}, line {line}: bytes {bad!r} are not valid UTF-8") from None
            line += block.count(b"\n")
        if decoder.getstate()[0]:
            raise DataError(f"{path}, line {line}: file ends inside a UTF-8 character")


def _check_has_rows(path: Path, header: bool) -> None:
    """`load_dataset` fails obscurely on a file without data rows; say what is missing."""
    with open(path, encoding="utf-8") as handle:
        lines = (line for line in handle if line.strip())
        if next(lines, None) is None or (header and next(lines, None) is None):
            expected = "a header row and labelled texts" if header else "labelled texts"
            raise DataError(f"{path}: no data rows, expected {expected}")


def read_sms_spam_file(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Parse a `label<TAB>text` file (SMSSpamCollection format) into texts and labels.

    The file is read without any quoting rules: quotes are literal text, which is why all 5574
    rows survive (pandas' default quoting merges rows). Each line is split on its first tab; blank
    lines at the end and a trailing carriage return are ignored.
    """
    path = Path(path)
    _check_file(path)
    _check_utf8(path)
    lines = path.read_text(encoding="utf-8").removeprefix("\ufeff").split("\n")
    while lines and not lines[-1].strip("\r"):
        lines.pop()
    if not lines:
        raise DataError(f"{path}: file is empty, expected labelled texts")
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        label, tab, text = line.removesuffix("\r").partition("\t")
        if not tab:
            raise DataError(
                f"{path}, line {number}: no tab found, expected 'label<TAB>text' with label ham or spam"
            )
        if label not in SMS_LABELS:
            raise DataError(
                f"{path}, line {number}: unknown label {label!r}, expected one of {', '.join(SMS_LABELS)}"
            )
        texts.append(text)
        labels.append(label)
    return texts, labels


def _sms_rows(path: str, sha256: str):
    """Generator for `Dataset.from_generator`; `sha256` only keys the Arrow cache to the content."""
    for text, label in zip(*read_sms_spam_file(path), strict=True):
        yield {"text": text, "label": label}


def _load_sms_file(path: Path, cache_dir: str | None) -> Dataset:
    read_sms_spam_file(path)  # validate before anything is written to the cache
    return Dataset.from_generator(
        _sms_rows,
        features=Features({"text": Value("string"), "label": Value("string")}),
        gen_kwargs={"path": str(path.resolve()), "sha256": _sha256(path)},
        cache_dir=cache_dir,
    )


def _download(url: str, cache_dir: str | None) -> str:
    """Download `url` once into the Hugging Face datasets cache and return the local path."""
    download_dir = str(Path(cache_dir) / "downloads") if cache_dir else None
    config = datasets.DownloadConfig(cache_dir=download_dir)
    return datasets.DownloadManager(dataset_name="sms_spam", download_config=config).download(url)


def download_sms_spam(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the verified `SMSSpamCollection` file, downloading the UCI zip the first time.

    The extracted file is kept under `<cache>/hf_spam/sms_spam/` once its sha256 matches, so later
    calls need no network. A mismatch deletes the download and raises `DataError`.
    """
    root = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    target = root / "hf_spam" / "sms_spam" / SMS_SPAM_FILENAME
    if target.is_file() and _sha256(target) == SMS_SPAM_SHA256:
        return target
    try:
        archive = Path(_download(SMS_SPAM_URL, str(cache_dir) if cache_dir else None))
    except (ConnectionError, OSError) as exc:
        raise ConnectionError(
            f"could not download {SMS_SPAM_URL} ({exc}); download and unzip it yourself and pass "
            f"--dataset /path/to/{SMS_SPAM_FILENAME}"
        ) from exc
    try:
        with zipfile.ZipFile(archive) as zipped:
            content = zipped.read(SMS_SPAM_FILENAME)
    except (zipfile.BadZipFile, KeyError) as exc:
        archive.unlink(missing_ok=True)
        raise DataError(
            f"{archive} (from {SMS_SPAM_URL}): expected a zip holding {SMS_SPAM_FILENAME} ({exc}); "
            "deleted it, run again to download it afresh"
        ) from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != SMS_SPAM_SHA256:
        archive.unlink(missing_ok=True)
        raise DataError(
            f"{SMS_SPAM_FILENAME} in {archive} (from {SMS_SPAM_URL}): sha256 checksum mismatch, "
            f"expected {SMS_SPAM_SHA256}, got {digest}; deleted the download, run again to retry"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(content)
    os.replace(tmp.name, target)
    return target


def _strip_newline_batch(batch: dict[str, list]) -> dict[str, list]:
    return {"text": [text.removesuffix("\n") for text in batch["text"]]}


# ---------------------------------------------------------------------------------------------
# Loading and cleaning any source
# ---------------------------------------------------------------------------------------------


@dataclass
class _Split:
    """One split as loaded (columns `text`, `label`), with what error messages need to say."""

    dataset: Dataset
    origin: str  # file path, or Hub id and split
    unit: str  # "line" (SMS format) or "row"
    text_column: str
    label_column: str


def _is_sms_format(path: Path) -> bool:
    return path.suffix.lower() not in TABULAR_FORMATS


def _load_file(path: Path, args: DataArguments) -> _Split:
    """Load one file as one split; the format follows the suffix (no known suffix: SMS format)."""
    if path.is_dir() and (path / SMS_SPAM_FILENAME).is_file():
        path = path / SMS_SPAM_FILENAME
    if _is_sms_format(path):
        return _Split(_load_sms_file(path, args.data_cache_dir), str(path), "line", "text", "label")
    _check_file(path)
    builder = TABULAR_FORMATS[path.suffix.lower()]
    kwargs: dict[str, Any] = {}
    if builder != "parquet":
        _check_utf8(path)
        _check_has_rows(path, header=builder in ("csv", "tsv"))
    if builder in ("csv", "tsv"):
        # Keep texts such as "NA" or "null" as they are: an empty cell is an empty text.
        kwargs = {"sep": "\t" if builder == "tsv" else ",", "keep_default_na": False}
        builder = "csv"
    try:
        loaded = datasets.load_dataset(
            builder, data_files={"train": str(path)}, cache_dir=args.data_cache_dir, **kwargs
        )
    except datasets.exceptions.DatasetGenerationError as exc:
        reason = exc.__cause__ or exc
        raise DataError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({reason})") from exc
    dataset = _select_columns(loaded["train"], str(path), args.text_column, args.label_column)
    return _Split(dataset, str(path), "row", args.text_column, args.label_column)


def _load_hub(args: DataArguments) -> dict[str, _Split]:
    """Load a Hub dataset's train/validation/test splits (other splits are ignored)."""
    loaded = datasets.load_dataset(
        args.dataset, args.dataset_config_name, cache_dir=args.data_cache_dir
    )
    is_sms = args.dataset == SMS_SPAM_HUB_ID
    text_column, label_column = (
        ("sms", "label") if is_sms else (args.text_column, args.label_column)
    )
    splits = {}
    for name, dataset in loaded.items():
        if name not in HUB_SPLIT_NAMES:
            logger.info(f"Ignoring split {name!r} of {args.dataset}")
            continue
        origin = f"{args.dataset} (split {name!r})"
        dataset = _select_columns(dataset, origin, text_column, label_column)
        if is_sms:
            # The Hub copy keeps each line's newline; strip it so texts equal the UCI file's.
            dataset = dataset.map(_strip_newline_batch, batched=True)
        splits[HUB_SPLIT_NAMES[name]] = _Split(dataset, origin, "row", text_column, label_column)
    if "train" not in splits:
        raise DataError(f"{args.dataset}: no 'train' split, found {', '.join(loaded)}")
    return splits


def _select_columns(dataset: Dataset, origin: str, text_column: str, label_column: str) -> Dataset:
    """Keep the text and label columns, renamed `text` and `label`."""
    for column in (text_column, label_column):
        if column not in dataset.column_names:
            found = ", ".join(map(repr, dataset.column_names))
            raise DataError(
                f"{origin}: no column {column!r} (found {found}); set --text_column/--label_column"
            )
    dataset = dataset.select_columns([text_column, label_column])
    dataset = dataset.rename_columns({text_column: "__text", label_column: "__label"})
    dataset = dataset.rename_columns({"__text": "text", "__label": "label"})
    text_feature = dataset.features["text"]
    if not isinstance(text_feature, Value):
        raise DataError(f"{origin}: column {text_column!r} holds {text_feature}, expected text")
    if text_feature.dtype not in ("string", "large_string"):
        dataset = dataset.cast_column("text", Value("string"))  # e.g. a CSV column of numbers
    label_feature = dataset.features["label"]
    if not isinstance(label_feature, (ClassLabel, Value)):
        raise DataError(f"{origin}: column {label_column!r} holds {label_feature}, expected labels")
    return dataset


def _load_splits(args: DataArguments) -> tuple[dict[str, _Split], str]:
    """Every split the source provides, and a one-line description of where they came from."""
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    if args.train_file and args.dataset != DataArguments.dataset:
        raise DataError(f"give either --dataset ({args.dataset!r}) or --train_file, not both")
    if args.dataset == "sms_spam" and not args.train_file:
        files["train"] = str(download_sms_spam(args.data_cache_dir))
    elif not args.train_file and (
        Path(args.dataset).suffix.lower() in TABULAR_FORMATS
        or args.dataset.startswith((".", "/", "~"))
        or Path(args.dataset).name == SMS_SPAM_FILENAME
        or os.path.exists(args.dataset)
    ):
        files["train"] = args.dataset
    files = {split: Path(path).expanduser() for split, path in files.items() if path}
    splits = {} if "train" in files else _load_hub(args)
    for split, path in files.items():
        splits[split] = _load_file(path, args)  # a given file replaces the source's split
    described = [f"{split} file {path}" for split, path in files.items()]
    if "train" not in files:
        described.insert(0, f"Hub dataset {args.dataset}")
    return splits, ", ".join(described)


def _column(dataset: Dataset, name: str) -> pa.ChunkedArray:
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


def _label_names(splits: Mapping[str, _Split], fixed: tuple[str, ...] | None) -> tuple[str, ...]:
    """Deterministic class order: fixed names, else the SMS or ClassLabel order, else sorted."""
    if fixed:
        return fixed
    if any(split.unit == "line" for split in splits.values()):
        return SMS_LABELS
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


def _encode_labels(split: _Split, names: tuple[str, ...]) -> Dataset:
    """Check every label is present and one of `names`, then store ids as a `ClassLabel`."""
    dataset, feature = split.dataset, split.dataset.features["label"]
    labels = _column(dataset, "label")
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


def _drop_empty_texts(dataset: Dataset, split: _Split, policy: str) -> tuple[Dataset, int]:
    """Missing or whitespace-only texts: drop them (returning how many) or refuse."""
    texts = _column(dataset, "text")
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


def _load_clean(args: DataArguments) -> _Loaded:
    splits, description = _load_splits(args)
    names = _label_names(splits, _parse_labels(args.labels))
    cleaned, rows_read, empty_dropped = {}, {}, {}
    for name in (split for split in SPLITS if split in splits):
        rows_read[name] = len(splits[name].dataset)
        dataset = _encode_labels(splits[name], names)
        cleaned[name], empty_dropped[name] = _drop_empty_texts(
            dataset, splits[name], args.empty_text
        )
    train = splits["train"]
    counts = np.bincount(_column(cleaned["train"], "label").to_numpy(), minlength=len(names))
    present = [names[i] for i in np.flatnonzero(counts)]
    if len(present) < 2:
        found = f"only class {present[0]!r}" if present else "no rows"
        raise DataError(
            f"{train.origin}: {found} in column {train.label_column!r}, expected at least two classes"
        )
    return _Loaded(
        dataset=DatasetDict(cleaned),
        label2id={name: i for i, name in enumerate(names)},
        origins={name: split.origin for name, split in splits.items()},
        rows_read=rows_read,
        empty_dropped=empty_dropped,
        description=description,
    )


def load_raw_dataset(args: DataArguments) -> tuple[DatasetDict, dict[str, int]]:
    """Load and clean the labelled texts, before balancing and splitting.

    Returns the splits the source provides (always `train`, plus `validation`/`test` when given)
    with columns `text` and `label` (a `ClassLabel`), and `label2id`.
    """
    loaded = _load_clean(args)
    return loaded.dataset, loaded.label2id


# ---------------------------------------------------------------------------------------------
# Dedupe, balance, split
# ---------------------------------------------------------------------------------------------


def _dedupe(pool: Dataset, kept: Sequence[Dataset]) -> tuple[Dataset, int]:
    """Drop repeated texts (keeping the first) and texts already in a kept validation/test split."""
    texts = _column(pool, "text").to_pandas()
    elsewhere = {text for other in kept for text in _column(other, "text").to_pylist()}
    drop = (texts.duplicated() | texts.isin(elsewhere)).to_numpy()
    return pool.select(np.flatnonzero(~drop)), int(drop.sum())


def _balance_and_split(loaded: _Loaded, args: DataArguments) -> tuple[DatasetDict, int]:
    """Undersample each class to the smallest (optional), shuffle with the seed, cut by fractions."""
    pool = loaded.dataset["train"]
    given = {split: loaded.dataset[split] for split in SPLITS[1:] if split in loaded.dataset}
    dropped = 0
    if args.dedupe:
        pool, dropped = _dedupe(pool, list(given.values()))
    rng = np.random.default_rng(args.split_seed)
    labels = _column(pool, "label").to_numpy()
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
    fractions = _parse_fractions(args.split_fractions)
    total = sum(fractions[split] for split in missing)
    sizes = [int(len(order) * fractions[split] / total) for split in missing[:-1]]
    sizes.append(len(order) - sum(sizes))
    if min(sizes) == 0:
        empty = missing[sizes.index(0)]
        raise DataError(
            f"{loaded.origins['train']}: {len(order)} rows left after cleaning"
            f"{' and balancing' if args.balance else ''} are too few for split fractions "
            f"{args.split_fractions}: {empty!r} would be empty"
        )
    bounds = np.cumsum([0, *sizes])
    splits = {
        split: pool.select(order[a:b])
        for split, a, b in zip(missing, bounds[:-1], bounds[1:], strict=True)
    }
    splits.update(given)
    return DatasetDict({split: splits[split] for split in SPLITS}), dropped


def _cross_split_duplicates(dataset: DatasetDict) -> dict[str, int]:
    """How many texts of a later split also occur in an earlier one (possible leakage)."""
    result = {}
    for later, earlier in (("validation", "train"), ("test", "train"), ("test", "validation")):
        seen = set(_column(dataset[earlier], "text").to_pylist())
        result[f"{later} in {earlier}"] = int(
            _column(dataset[later], "text").to_pandas().isin(seen).sum()
        )
    return result


# ---------------------------------------------------------------------------------------------
# Tokenization
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _gpt2_encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(GPT2_ENCODING)


def _encode_batch(batch: dict[str, list]) -> dict[str, list]:
    """tiktoken `encode_ordinary`: a literal '<|endoftext|>' in user text stays plain text."""
    ids = _gpt2_encoding().encode_ordinary_batch(batch["text"])
    return {"input_ids": ids, "length": [len(x) for x in ids]}


def _truncate_and_pad_batch(
    batch: dict[str, list], max_length: int, pad_to: int | None, pad_token_id: int
) -> dict[str, list]:
    input_ids, attention_mask, lengths = [], [], []
    for ids in batch["input_ids"]:
        ids = ids[:max_length]
        pad = pad_to - len(ids) if pad_to else 0
        input_ids.append(ids + [pad_token_id] * pad)
        attention_mask.append([1] * len(ids) + [0] * pad)
        lengths.append(len(ids))
    return {"input_ids": input_ids, "attention_mask": attention_mask, "length": lengths}


def _length_stats(lengths: np.ndarray) -> dict[str, float]:
    return {
        "min": int(lengths.min()),
        "median": float(np.median(lengths)),
        "max": int(lengths.max()),
    }


def _tokenize(
    dataset: DatasetDict, cap: int, padding: str
) -> tuple[DatasetDict, int, dict[str, dict[str, float]], dict[str, int]]:
    """Tokenize, then truncate (and for `longest_train` pad) to the chosen length."""
    dataset = dataset.map(_encode_batch, batched=True, desc="Tokenizing")
    raw_lengths = {split: _column(ds, "length").to_numpy() for split, ds in dataset.items()}
    max_length = min(cap, int(raw_lengths["train"].max())) if padding == "longest_train" else cap
    truncated = {split: int((lengths > max_length).sum()) for split, lengths in raw_lengths.items()}
    dataset = dataset.map(
        _truncate_and_pad_batch,
        batched=True,
        fn_kwargs={
            "max_length": max_length,
            "pad_to": max_length if padding == "longest_train" else None,
            "pad_token_id": GPT2_PAD_TOKEN_ID,
        },
        desc="Truncating" if padding == "dynamic" else "Padding",
    )
    stats = {split: _length_stats(lengths) for split, lengths in raw_lengths.items()}
    return dataset, max_length, stats, truncated


def _class_counts(dataset: Dataset, id2label: Mapping[int, str]) -> dict[str, int]:
    counts = np.bincount(_column(dataset, "label").to_numpy(), minlength=len(id2label))
    return {id2label[i]: int(n) for i, n in enumerate(counts)}


def prepare_data(args: DataArguments, context_length: int = 1024) -> PreparedData:
    """The whole pipeline: load, clean, (dedupe,) balance, split, tokenize, pad or not.

    `context_length` is the model's; texts are truncated to `min(context_length, args.max_length)`
    and, with `padding="longest_train"`, everything is padded to the longest training text.
    """
    if context_length < 1:
        raise ValueError(f"context_length must be at least 1, got {context_length}")
    loaded = _load_clean(args)
    dataset, duplicates = _balance_and_split(loaded, args)
    cap = min(context_length, args.max_length or context_length)
    dataset, max_length, token_lengths, truncated = _tokenize(dataset, cap, args.padding)
    id2label = {i: name for name, i in loaded.label2id.items()}
    class_counts = {split: _class_counts(ds, id2label) for split, ds in dataset.items()}
    report = DataReport(
        source=loaded.description,
        label_names=list(loaded.label2id),
        rows_read=loaded.rows_read,
        empty_dropped=loaded.empty_dropped,
        duplicates_dropped=duplicates,
        balanced=args.balance,
        class_counts=class_counts,
        token_lengths=token_lengths,
        truncated=truncated,
        padding=args.padding,
        max_length=max_length,
        pad_token_id=GPT2_PAD_TOKEN_ID,
        cross_split_duplicates=_cross_split_duplicates(dataset),
    )
    return PreparedData(
        dataset=dataset,
        label2id=loaded.label2id,
        id2label=id2label,
        pad_token_id=GPT2_PAD_TOKEN_ID,
        max_length=max_length,
        padding=args.padding,
        report=report,
    )


@lru_cache(maxsize=1)
def _gpt2_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocab and merges rebuilt from tiktoken's own ranks (no Hub download needed).

    tiktoken merges any adjacent pair whose concatenation is a token, lowest rank first; listing
    every such split of every token, ordered by the token's rank, makes HF's BPE merge the same
    way (the approach of `transformers.convert_slow_tokenizer.TikTokenConverter`).
    """
    encoding = _gpt2_encoding()
    ranks: dict[bytes, int] = encoding._mergeable_ranks  # tiktoken exposes no public accessor
    byte_to_char = bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(byte_to_char[byte] for byte in token)

    merges = []
    for token in sorted(ranks, key=ranks.__getitem__):
        pairs = [(token[:i], token[i:]) for i in range(1, len(token))]
        pairs = [(a, b) for a, b in pairs if a in ranks and b in ranks]
        pairs.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges.extend((to_str(a), to_str(b)) for a, b in pairs)
    vocab = {to_str(token): rank for token, rank in ranks.items()}
    vocab[GPT2_EOS_TOKEN] = encoding.eot_token
    return vocab, merges


def get_tokenizer(model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A `GPT2TokenizerFast` giving exactly tiktoken's `encode_ordinary` ids for any text.

    It is saved with the model so `pipeline("text-classification")` tokenizes like training did.
    `split_special_tokens=True` keeps a literal '<|endoftext|>' in user text as plain text (never
    the control token, id 50256), which is also tiktoken's `encode_ordinary` behaviour. Pad = EOS.
    """
    vocab, merges = _gpt2_vocab_and_merges()
    return GPT2TokenizerFast(
        vocab=dict(vocab),
        merges=list(merges),
        pad_token=GPT2_EOS_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
        split_special_tokens=True,
    )


# ---------------------------------------------------------------------------------------------
# Collator, report, saving
# ---------------------------------------------------------------------------------------------


@dataclass
class ClassificationCollator:
    """Right-pads `input_ids` (with `pad_token_id`) and `attention_mask` (with 0) to the longest
    example of the batch and returns `labels`; other columns (e.g. `text`) are ignored, so it also
    works with `remove_unused_columns=False`."""

    pad_token_id: int = GPT2_PAD_TOKEN_ID
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            ids = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            input_ids[row, : len(ids)] = ids
            mask = feature.get("attention_mask")
            attention_mask[row, : len(ids)] = 1 if mask is None else torch.as_tensor(mask)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        key = "labels" if "labels" in features[0] else "label" if "label" in features[0] else None
        if key is not None:
            batch["labels"] = torch.as_tensor([int(feature[key]) for feature in features])
        return batch


def get_data_collator(
    prepared_or_tokenizer: PreparedData | PreTrainedTokenizerBase | None = None,
    pad_to_multiple_of: int | None = None,
) -> ClassificationCollator:
    """The collator for `Trainer`: pads each batch to its longest example with id 50256.

    With `padding="longest_train"` the examples already share one length and it only stacks them.
    """
    pad_token_id = GPT2_PAD_TOKEN_ID
    if isinstance(prepared_or_tokenizer, PreparedData):
        pad_token_id = prepared_or_tokenizer.pad_token_id
    elif prepared_or_tokenizer is not None and prepared_or_tokenizer.pad_token_id is not None:
        pad_token_id = prepared_or_tokenizer.pad_token_id
    return ClassificationCollator(pad_token_id=pad_token_id, pad_to_multiple_of=pad_to_multiple_of)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def format_report(report: DataReport) -> str:
    """The summary table: rows per class per split, token lengths, truncation, leakage."""
    read = sum(report.rows_read.values())
    empty = sum(report.empty_dropped.values())
    lines = [
        f"Source: {report.source}",
        f"Rows read: {read}; empty texts dropped: {empty}; duplicate texts dropped: "
        f"{report.duplicates_dropped}; balanced: {'yes' if report.balanced else 'no'}",
        "",
    ]
    header = ["split", *report.label_names, "total", "tokens min/median/max", "truncated"]
    rows = [header]
    for split, counts in report.class_counts.items():
        lengths = report.token_lengths[split]
        rows.append(
            [
                split,
                *(str(counts[name]) for name in report.label_names),
                str(sum(counts.values())),
                f"{lengths['min']:g} / {lengths['median']:g} / {lengths['max']:g}",
                str(report.truncated[split]),
            ]
        )
    lines += _table(rows)
    how = (
        "every example padded to"
        if report.padding == "longest_train"
        else "batches padded, truncated at"
    )
    lines += [
        "",
        f"Padding: {report.padding} ({how} {report.max_length} tokens, pad id {report.pad_token_id})",
        "Texts also in an earlier split: "
        + ", ".join(f"{key} {n}" for key, n in report.cross_split_duplicates.items()),
    ]
    return "\n".join(lines)


def check_save_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing non-empty `path` unless `overwrite` (call it before the slow work)."""
    target = Path(path).expanduser().resolve()
    if target.exists() and not overwrite and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not empty; pass --overwrite to replace it")
    return target


def save_dataset_to_disk(
    dataset: DatasetDict, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """`save_to_disk` into a temporary directory beside `path`, then rename: never half-written."""
    target = check_save_target(path, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        dataset.save_to_disk(str(tmp))
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target
