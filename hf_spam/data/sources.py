"""Sources of labelled texts: the SMS Spam Collection (UCI zip, a local file, the Hub copy),
CSV/TSV/JSON lines/Parquet files and Hub datasets, each loaded as `text`/`label` columns.

Bad input raises `DataError` naming the file (or Hub split), the 1-based line or row and what
was expected, before any reader gives a less helpful error. Rows are counted from 1 without a
CSV/TSV header; the SMS format counts lines.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
from datasets import ClassLabel, Dataset, Features, Value
from transformers.utils import logging

from ..constants import SMS_SPAM_HUB_ID
from ..errors import DataError
from ..files import json_object_line
from .arguments import DataArguments

logger = logging.get_logger(__name__)

SMS_SPAM_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
SMS_SPAM_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
SMS_SPAM_FILENAME = "SMSSpamCollection"
SMS_LABELS = ("ham", "spam")  # ham=0, spam=1, as in the book and on the Hub
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
class Split:
    """One split as loaded (columns `text`, `label`), with what error messages need to say."""

    dataset: Dataset
    origin: str  # file path, or Hub id and split
    unit: str  # "line" (SMS format) or "row"
    text_column: str
    label_column: str
    is_sms: bool = False


# ---------------------------------------------------------------------------------------------
# Checks before a reader runs
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


def _check_csv_fields(path: Path, sep: str) -> None:
    """A row with more fields than the header: pandas' message counts lines, not rows, and
    names no file; count rows (quoted newlines included) with the csv module instead."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader, [])
        for row, fields in enumerate(reader, start=1):
            if len(fields) > len(header):
                raise DataError(
                    f"{path}, row {row}: {len(fields)} fields, expected {len(header)} as in the "
                    f"header ({sep.join(header)!r}); quote texts that contain {sep!r}"
                )


def _check_json_lines(path: Path) -> None:
    """Every line a JSON object (Arrow's JSON reader names neither the file nor the line)."""
    with open(path, encoding="utf-8") as handle:
        first = handle.read(1024).lstrip()
    if first.startswith("["):
        return  # one JSON array, not JSON lines: the reader reports its own errors
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            json_object_line(line, path, number, " with the text and label")


def _check_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


# ---------------------------------------------------------------------------------------------
# SMS Spam Collection
# ---------------------------------------------------------------------------------------------


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


def _is_sms_format(path: Path) -> bool:
    return path.suffix.lower() not in TABULAR_FORMATS


def _load_file(path: Path, args: DataArguments) -> Split:
    """Load one file as one split; the format follows the suffix (no known suffix: SMS format)."""
    if path.is_dir() and (path / SMS_SPAM_FILENAME).is_file():
        path = path / SMS_SPAM_FILENAME
    if _is_sms_format(path):
        dataset = _load_sms_file(path, args.data_cache_dir)
        return Split(dataset, str(path), "line", "text", "label", is_sms=True)
    _check_file(path)
    builder = TABULAR_FORMATS[path.suffix.lower()]
    kwargs: dict[str, Any] = {}
    if builder != "parquet":
        _check_utf8(path)
        _check_has_rows(path, header=builder in ("csv", "tsv"))
    if builder == "json":
        _check_json_lines(path)
    elif builder == "parquet":
        _check_parquet(path)
    if builder in ("csv", "tsv"):
        _check_csv_fields(path, "\t" if builder == "tsv" else ",")
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
    return Split(dataset, str(path), "row", args.text_column, args.label_column)


def _load_hub(args: DataArguments) -> dict[str, Split]:
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
        splits[HUB_SPLIT_NAMES[name]] = Split(
            dataset, origin, "row", text_column, label_column, is_sms=is_sms
        )
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


def is_sms_source(args: DataArguments) -> bool:
    """Whether `args` name the SMS Spam Collection (UCI download, a file in its format, the Hub)."""
    if args.train_file:
        return False
    if args.dataset in ("sms_spam", SMS_SPAM_HUB_ID):
        return True
    path = Path(args.dataset).expanduser()
    if path.is_dir() and (path / SMS_SPAM_FILENAME).is_file():
        return True
    return _looks_like_path(args.dataset) and _is_sms_format(path)


def _looks_like_path(name: str) -> bool:
    return (
        Path(name).suffix.lower() in TABULAR_FORMATS
        or name.startswith((".", "/", "~"))
        or Path(name).name == SMS_SPAM_FILENAME
        or os.path.exists(name)
    )


def load_source(args: DataArguments) -> tuple[dict[str, Split], str]:
    """Every split the source provides, and a one-line description of where they came from."""
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    if args.train_file and args.dataset != DataArguments.dataset:
        raise DataError(f"give either --dataset ({args.dataset!r}) or --train_file, not both")
    if args.dataset == "sms_spam" and not args.train_file:
        files["train"] = str(download_sms_spam(args.data_cache_dir))
    elif not args.train_file and _looks_like_path(args.dataset):
        files["train"] = args.dataset
    files = {split: Path(path).expanduser() for split, path in files.items() if path}
    splits = {} if "train" in files else _load_hub(args)
    for split, path in files.items():
        splits[split] = _load_file(path, args)  # a given file replaces the source's split
    described = [f"{split} file {path}" for split, path in files.items()]
    if "train" not in files:
        described.insert(0, f"Hub dataset {args.dataset}")
    return splits, ", ".join(described)


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
