"""Reading what a command is given: JSON and config files, and whether a folder holds a model,
each failure one line naming the file (and line)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..constants import CONFIG_NAME, TOKENIZER_FILES, WEIGHTS_FILES
from ..errors import DataError, ModelLoadError

#: The staging folder of a run's final files inside its output folder (`training/outputs.py`):
#: `.final-outputs-<random>.tmp`, one per run. While one holds files the folder is being written
#: (or its writer was stopped), and is not a model yet.
FINAL_STAGING = ".final-outputs"
FINAL_STAGING_GLOB = f"{FINAL_STAGING}*.tmp"


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """A JSON file, or a `ModelLoadError` naming the file and the line of the syntax error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as err:
        raise ModelLoadError(f"{path}: {what} is not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise ModelLoadError(
            f"{path}, line {err.lineno}, column {err.colno}: {what} is not valid JSON ({err.msg})"
        ) from None


def json_object_line(line: str, path: str | os.PathLike, number: int, expected: str = "") -> dict:
    """One line of a JSON-lines file as a dict, or a `DataError` naming the file and the line
    (Arrow's and pandas' JSON readers name neither)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise DataError(
            f"{path}, line {number}: expected a JSON object{expected}, got {type(record).__name__}"
        )
    return record


#: The csv module refuses a field over 128 KiB unless told otherwise; a text may be of any size
#: (pandas, which `load_dataset` reads CSV with, has no limit). 2**31 - 1 fits a C long everywhere.
LARGEST_CSV_FIELD = 2**31 - 1


def csv_reader(lines: Iterable[str], delimiter: str = ",") -> Iterator[list[str]]:
    """`csv.reader` over `lines` that reads a field of any size (a long text is one field)."""
    csv.field_size_limit(LARGEST_CSV_FIELD)
    return csv.reader(lines, delimiter=delimiter)


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """A model folder's `config.json` as a dict (the one place it is read without transformers)."""
    config = read_json(Path(folder) / CONFIG_NAME, "model configuration")
    if not isinstance(config, dict):
        raise ModelLoadError(f"{Path(folder) / CONFIG_NAME}: expected a JSON object")
    return config


def check_model_folder(path: str | os.PathLike, *, tokenizer: bool = True) -> Path:
    """Check that `path` holds a loadable model (and tokenizer) before anything slow starts.

    transformers' own errors for an incomplete folder talk about repo ids or `pytorch_model.bin`;
    this says which of the files a saved classifier needs is missing.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a folder; expected a saved model folder")
    if any(p.is_dir() and any(p.iterdir()) for p in path.glob(FINAL_STAGING_GLOB)):
        raise ModelLoadError(
            f"{path} is not a complete model folder: its run was stopped while saving it (files "
            f"left in {FINAL_STAGING_GLOB}); train again with --resume_from_checkpoint last"
        )
    missing = []
    if not (path / CONFIG_NAME).is_file():
        missing.append(f"{CONFIG_NAME} (the model configuration)")
    if not any((path / name).is_file() for name in WEIGHTS_FILES):
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = f" ({', '.join(pickled)} is pickled and not read)" if pickled else ""
        missing.append(f"model.safetensors (the weights){hint}")
    if tokenizer and not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer.json / tokenizer_config.json (the tokenizer)")
    if missing:
        raise ModelLoadError(
            f"{path} is not a complete model folder: missing {'; '.join(missing)}. "
            "Folders written by `hf-spam train`, or by model.save_pretrained() plus "
            "tokenizer.save_pretrained(), have them."
        )
    return path


__all__ = [
    "FINAL_STAGING",
    "FINAL_STAGING_GLOB",
    "LARGEST_CSV_FIELD",
    "check_model_folder",
    "csv_reader",
    "json_object_line",
    "read_config",
    "read_json",
]
