"""Local files of labelled texts, one reader per format: the SMS Spam Collection's
`label<TAB>text` lines, CSV, TSV, JSON lines (or one JSON array) and Parquet.

The format follows the suffix (`TABULAR_FORMATS`); a file without a known suffix is read in
the SMS format. Bad input raises `DataError` naming the file, the 1-based line or row and what
was expected, before any reader gives a less helpful error. Rows are counted from 1 without a
CSV/TSV header; the SMS format counts lines.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, Features, Value

from ..errors import DataError
from ..files import csv_reader, full_disk_error, json_object_line
from .arguments import DataArguments
from .bundled import SMS_SPAM_FILENAME
from .downloads import file_sha256
from .labels import case_hint, label_name

SMS_LABELS = ("ham", "spam")  # ham=0, spam=1, as in the book and on the Hub
TABULAR_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
}


@dataclass
class Split:
    """One split as loaded (columns `text`, `label`), with what error messages need to say."""

    dataset: Dataset
    origin: str  # file path, or Hub id and split
    unit: str  # "line" (SMS format) or "row"
    text_column: str
    label_column: str
    #: The class names in id order that the format itself fixes (the SMS format's ham, spam).
    label_names: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------------------------
# Checks before a reader runs
# ---------------------------------------------------------------------------------------------


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
        reader = csv_reader(handle, delimiter=sep)
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
# The SMS Spam Collection's format
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
        raw, tab, text = line.removesuffix("\r").partition("\t")
        if not tab:
            raise DataError(
                f"{path}, line {number}: no tab found, expected 'label<TAB>text' with label ham or spam"
            )
        label = label_name(raw)  # the rule of every source: surrounding spaces do not count
        if label not in SMS_LABELS:
            raise DataError(
                f"{path}, line {number}: unknown label {label!r}, expected one of "
                f"{', '.join(SMS_LABELS)}{case_hint(label, SMS_LABELS)}"
            )
        texts.append(text)
        labels.append(label)
    return texts, labels


def _sms_rows(path: str, sha256: str):
    """Generator for `Dataset.from_generator`; `sha256` only keys the Arrow cache to the content."""
    for text, label in zip(*read_sms_spam_file(path), strict=True):
        yield {"text": text, "label": label}


def build_in_cache(builder: Any, split: str = "train") -> Dataset:
    """`builder`'s split, written to its Arrow cache first, as `load_dataset` and
    `Dataset.from_generator` do, but a refused write (full disk, file-size limit) is an OSError
    naming the cache file being written: datasets reports it as a failure to generate the data
    set, which would blame the input."""
    try:
        builder.download_and_prepare()
    except Exception as exc:
        written = Path(builder.cache_dir) / f"{builder.dataset_name}-{split}.arrow"
        failure = full_disk_error(exc, written)
        if failure is not None:
            raise failure from exc
        raise
    return builder.as_dataset(split=split)


def cached_map(dataset: Dataset, function, **kwargs: Any) -> Dataset:
    """`dataset.map(function, **kwargs)`, with a refused write of its cache file named: the
    file datasets writes, `cache-<new_fingerprint>.arrow` beside the data's own cache files,
    or their folder when no fingerprint is given (pyarrow's error names no file)."""
    try:
        return dataset.map(function, **kwargs)
    except Exception as exc:
        folder = Path(dataset.cache_files[0]["filename"]).parent if dataset.cache_files else None
        fingerprint = kwargs.get("new_fingerprint")
        written = folder / f"cache-{fingerprint}.arrow" if folder and fingerprint else folder
        failure = full_disk_error(exc, written or "the datasets cache")
        if failure is not None:
            raise failure from exc
        raise


def generated_dataset(generator, features: Features, gen_kwargs: dict, cache_dir: str | None):
    """`Dataset.from_generator(...)`, through `build_in_cache` (a full cache names its file)."""
    from datasets.io.generator import GeneratorDatasetInputStream

    stream = GeneratorDatasetInputStream(
        generator=generator, features=features, gen_kwargs=gen_kwargs, cache_dir=cache_dir
    )
    return build_in_cache(stream.builder, stream.builder.config.split)


def _load_sms_file(path: Path, cache_dir: str | None) -> Dataset:
    read_sms_spam_file(path)  # validate before anything is written to the cache
    return generated_dataset(
        _sms_rows,
        Features({"text": Value("string"), "label": Value("string")}),
        {"path": str(path.resolve()), "sha256": file_sha256(path)},
        cache_dir,
    )


# ---------------------------------------------------------------------------------------------
# One file as one split
# ---------------------------------------------------------------------------------------------


def looks_like_path(name: str) -> bool:
    """Whether a --dataset value names a local file or folder rather than a Hub dataset id."""
    return (
        Path(name).suffix.lower() in TABULAR_FORMATS
        or name.startswith((".", "/", "~"))
        or Path(name).name == SMS_SPAM_FILENAME
        or os.path.exists(name)
    )


def is_sms_format(path: Path) -> bool:
    """Whether `path` is read in the SMS format: it has none of the tabular suffixes."""
    return path.suffix.lower() not in TABULAR_FORMATS


def load_file(path: Path, args: DataArguments) -> Split:
    """Load one file as one split; the format follows the suffix (no known suffix: SMS format)."""
    if path.is_dir() and (path / SMS_SPAM_FILENAME).is_file():
        path = path / SMS_SPAM_FILENAME
    if is_sms_format(path):
        dataset = _load_sms_file(path, args.data_cache_dir)
        return Split(dataset, str(path), "line", "text", "label", SMS_LABELS)
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
    reader = datasets.load_dataset_builder(
        builder, data_files={"train": str(path)}, cache_dir=args.data_cache_dir, **kwargs
    )
    try:
        loaded = build_in_cache(reader, "train")
    except datasets.exceptions.DatasetGenerationError as exc:
        reason = exc.__cause__ or exc
        raise DataError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({reason})") from exc
    dataset = select_columns(loaded, str(path), args.text_column, args.label_column)
    return Split(dataset, str(path), "row", args.text_column, args.label_column)


def select_columns(dataset: Dataset, origin: str, text_column: str, label_column: str) -> Dataset:
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


__all__ = [
    "SMS_LABELS",
    "TABULAR_FORMATS",
    "Split",
    "build_in_cache",
    "cached_map",
    "generated_dataset",
    "is_sms_format",
    "load_file",
    "looks_like_path",
    "read_sms_spam_file",
    "select_columns",
]
