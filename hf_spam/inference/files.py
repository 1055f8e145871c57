"""Texts in, predictions out: `hf-spam predict`'s files, read lazily and written atomically.

Inputs: CSV/TSV (a column), JSON lines (a field), any other file or standard input (one text per
line). `read_texts` returns a list (through `datasets.load_dataset` for tables); `iter_texts`
yields texts one at a time in constant memory (the csv module, one JSON record per line), for the
bulk path. `write_predictions` streams records into a file beside the destination and renames it
into place when complete, so a failure half-way leaves no output.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..errors import DataError, HfSpamError
from ..files import atomic_file, csv_reader, full_disk_error, json_object_line

__all__ = [
    "PREDICTION_FORMATS",
    "TABLE_BUILDERS",
    "Prediction",
    "iter_texts",
    "read_texts",
    "write_predictions",
]

PREDICTION_FORMATS = (".jsonl", ".csv")
BOM = "\ufeff"  # the UTF-8 byte order mark, as decoded text


@dataclass
class Prediction:
    """One classified text: the winning label, its probability, and every class's probability."""

    text: str
    label: str
    score: float
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "score": self.score, "scores": self.scores}


#: --input suffixes read with `datasets.load_dataset` (the rules of hf_spam.data's files).
TABLE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}


def error_line(err: BaseException, line: int = 0) -> str:
    """One line of an exception's message (libraries' messages run over several lines)."""
    lines = [text for text in str(err).strip().splitlines() if text.strip()]
    return lines[line].strip() if lines else type(err).__name__


# --------------------------------------------------------------------------------------------
# Reading texts, writing predictions
# --------------------------------------------------------------------------------------------


def _lines(chunks: Iterable[str | bytes], where: str) -> Iterator[str]:
    """Lines as text, each checked to be UTF-8, so a binary file fails naming the line. A byte
    order mark opening the first line is dropped (utf-8-sig, as Excel writes CSV and as pandas
    reads it in training), so it cannot become part of a column name or a text."""
    for number, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
            line.encode("utf-8")  # text decoded with surrogateescape still holds raw bytes
        except UnicodeError:
            raise DataError(f"{where}, line {number}: not UTF-8 text (binary input?)") from None
        yield line.removeprefix(BOM) if number == 1 else line


def _read_lines(handle: TextIO | io.BufferedIOBase, where: str) -> list[str]:
    """One text per line; blank lines (e.g. a trailing newline) are not texts. No parser is
    needed for this, and standard input cannot be handed to `load_dataset`."""
    return [line for _, line in _numbered_lines(handle, where)]


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars or error logs from `load_dataset` while reading a small input file: a
    failure is reported once, as a `DataError` naming the file."""
    import datasets
    from datasets.utils import logging as ds_logging

    verbosity, bars_off = ds_logging.get_verbosity(), datasets.are_progress_bars_disabled()
    ds_logging.set_verbosity(ds_logging.CRITICAL + 1)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        ds_logging.set_verbosity(verbosity)
        if not bars_off:
            datasets.enable_progress_bars()


def _read_table(path: Path, text_column: str) -> list[str]:
    """The `text_column` of a CSV/TSV/JSON-lines file, read by `datasets.load_dataset` with the
    rules of hf_spam.data's files (empty cells are empty texts, not NaN)."""
    import datasets

    suffix = path.suffix.lower()
    builder = TABLE_BUILDERS[suffix]
    kwargs: dict[str, Any] = {}
    if builder == "csv":
        kwargs = {"sep": "\t" if suffix == ".tsv" else ",", "keep_default_na": False}
    # pyarrow's errors count rows from 0 and pandas' name no file: check the lines first.
    with open(path, "rb") as handle:
        for number, line in enumerate(_lines(handle, str(path)), start=1):
            if suffix == ".jsonl" and line.strip():
                json_object_line(line, path, number)
    with tempfile.TemporaryDirectory(prefix="hf_spam-predict-") as cache, _quiet_datasets():
        try:
            loaded = datasets.load_dataset(
                builder,
                data_files={"input": str(path)},
                cache_dir=cache,
                keep_in_memory=True,
                **kwargs,
            )["input"]
        except Exception as err:  # noqa: BLE001 - pyarrow/pandas errors without the file name
            failure = full_disk_error(err, cache)  # the temporary cache, not the input
            if failure is not None:
                raise failure from None
            reason = error_line(err.__cause__ or err, line=-1)
            raise DataError(f"{path}: cannot be read as {builder.upper()} ({reason})") from None
    if text_column not in loaded.column_names:
        _no_column(path, text_column, loaded.column_names)
    texts = loaded[text_column]
    return [_text_cell(text, path, row, text_column) for row, text in enumerate(texts, start=1)]


def _no_column(path: Path, text_column: str, found: list[str]) -> None:
    names = ", ".join(repr(name) for name in found) or "no columns"
    raise DataError(f"{path}: no column {text_column!r} (found {names}); set --text_column")


def _text_cell(text: Any, path: Path, row: int, text_column: str) -> str:
    """A cell as a text: empty for a missing value, an error naming the row for a non-text."""
    if text is not None and not isinstance(text, str):
        raise DataError(
            f"{path}, row {row}: column {text_column!r} holds {type(text).__name__}, not text"
        )
    return text or ""


def _input_file(path: str | os.PathLike) -> Path:
    """`path` as a file to read texts from; a folder or a missing file is named as such."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file of texts")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path


def read_texts(
    path: str | os.PathLike, *, text_column: str = "text", stdin: TextIO | None = None
) -> list[str]:
    """Texts from a file: CSV/TSV (column `text_column`), JSON lines (field `text_column`), or
    any other file (and `-`, standard input) as one text per line."""
    if str(path) == "-":
        return _read_lines(stdin or sys.stdin, "stdin")
    path = _input_file(path)
    if path.suffix.lower() in TABLE_BUILDERS:
        return _read_table(path, text_column)
    with open(path, "rb") as handle:
        return _read_lines(handle, str(path))


def write_predictions(
    predictions: Iterable[Prediction],
    path: str | os.PathLike,
    *,
    references: Iterable[str] | None = None,
    flag: str | None = None,
) -> Path:
    """Write predictions as JSON lines (`.jsonl`) or CSV (`.csv`, one `score_<label>` column per
    class), streamed record by record into a file renamed into place when complete; `references`
    (true labels, in evaluation) add a `reference` field. `flag` names the output in messages and
    locks it while it is written (None: a file inside a folder already being written)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_FORMATS:
        raise ValueError(
            f"{path}: unknown output format; use one of {', '.join(PREDICTION_FORMATS)}"
        )
    records = (p.to_dict() for p in predictions)
    if references is not None:
        records = ({**r, "reference": ref} for r, ref in zip(records, references, strict=True))
    try:
        with atomic_file(path, flag) as handle:
            if suffix == ".jsonl":
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                _write_csv(handle, records, with_reference=references is not None)
    except HfSpamError:  # raised by the predictions themselves (a model check): as it is
        raise
    except OSError as err:  # a full disk or a file-size limit: name the file the user asked for
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    return path


def _write_csv(handle: TextIO, records: Iterable[dict[str, Any]], with_reference: bool) -> None:
    """The header takes its class names from the first record (none when there is no record)."""
    writer = csv.writer(handle, lineterminator="\n")
    columns = ["text", "label", "score"] + (["reference"] if with_reference else [])
    records = iter(records)
    first = next(records, None)
    labels = list(first["scores"]) if first else []
    writer.writerow([*columns, *(f"score_{label}" for label in labels)])
    for record in itertools.chain([first] if first else [], records):
        scores = record["scores"]
        writer.writerow([*(record[c] for c in columns), *(scores[label] for label in labels)])


# --------------------------------------------------------------------------------------------
# Reading texts lazily
# --------------------------------------------------------------------------------------------


def _numbered_lines(handle: Any, where: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a handle, each checked to be UTF-8 (bytes
    where there are, to name a bad line), so errors name the input's own line."""
    source = getattr(handle, "buffer", handle)
    for number, line in enumerate(_lines(source, where), start=1):
        if line.strip():
            yield number, line.rstrip("\r\n")


def _file_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as handle:
        yield from _numbered_lines(handle, str(path))


def _jsonl_texts(path: Path, text_column: str) -> Iterator[str]:
    """The `text_column` field of each record; the first record must have it (as a table must
    have the column), later ones without it are empty texts (as `load_dataset` reads them)."""
    for row, (number, line) in enumerate(_file_lines(path), start=1):
        record = json_object_line(line, path, number)
        if row == 1 and text_column not in record:
            _no_column(path, text_column, list(record))
        yield _text_cell(record.get(text_column), path, row, text_column)


def _csv_texts(path: Path, text_column: str) -> Iterator[str]:
    """The `text_column` of a CSV/TSV file, row by row; the header is checked before the first
    text is asked for, so a wrong --text_column fails before any model work. Lines are decoded
    one by one (`_lines`), so a non-UTF-8 line is named exactly."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    reader = csv_reader(_lines(handle, str(path)), delimiter="\t" if path.suffix == ".tsv" else ",")
    try:
        header = next(reader, [])
        if text_column not in header:
            _no_column(path, text_column, header)
    except BaseException:
        handle.close()
        raise

    def rows() -> Iterator[str]:
        column = header.index(text_column)
        with handle:
            for row in reader:
                if len(row) > len(header):  # pandas refuses these; a short row is padded
                    raise DataError(
                        f"{path}: cannot be read as CSV (line {reader.line_num}: expected "
                        f"{len(header)} fields, saw {len(row)})"
                    )
                if row:  # blank lines are not rows (as pandas reads them)
                    yield row[column] if column < len(row) else ""

    return rows()


def iter_texts(
    path: str | os.PathLike, *, text_column: str = "text", stdin: TextIO | None = None
) -> Iterator[str]:
    """Texts from a file, read lazily (constant memory): CSV/TSV by the csv module (column
    `text_column`), JSON lines one record at a time, any other file (and `-`, standard input) one
    text per line. A `.json` document cannot be streamed and is read whole by `read_texts`."""
    if str(path) == "-":
        return (line for _, line in _numbered_lines(stdin or sys.stdin, "stdin"))
    path = _input_file(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _csv_texts(path, text_column)
    if suffix == ".jsonl":
        return _jsonl_texts(path, text_column)
    if suffix in TABLE_BUILDERS:
        return iter(read_texts(path, text_column=text_column))
    return (line for _, line in _file_lines(path))
