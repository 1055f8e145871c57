"""Files and folders on disk: refuse to clobber, write aside and move into place, read configs.

Every output hf_spam writes (a trained model, a converted checkpoint, reports, a dry-run upload,
a saved data set) goes through `atomic_output_dir` or `write_text`/`write_json`: it is written
beside its destination and renamed into place only when complete, so a crash, a full disk or a
kill leaves the destination as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .constants import CONFIG_NAME, TOKENIZER_FILES, WEIGHTS_FILES
from .errors import ModelLoadError, OutputExistsError


def check_output_dir(path: str | os.PathLike, overwrite: bool, flag: str = "--output_dir") -> Path:
    """Refuse to write into a non-empty folder unless asked to, before any work starts."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{flag} {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{flag} {path} exists and is not empty; pass --overwrite_output_dir to replace it"
        )
    return path


@contextmanager
def atomic_output_dir(
    path: str | os.PathLike, overwrite: bool = False, flag: str = "--output_dir"
) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that replaces `path` only if the block succeeds.

    A failure half-way leaves no half-written output behind, and an existing `path` untouched.
    """
    path = check_output_dir(path, overwrite, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, path)


def replace_dir(source: Path, target: Path) -> None:
    """Move the finished folder `source` to `target`, replacing what is there in one rename.

    The old folder is moved aside first and deleted only after the new one is in place.
    """
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    """Serialise numpy scalars/arrays, tensors and paths, which metric dicts routinely contain."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file beside the target, then rename: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        try:
            handle.write(text)
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """`obj` as indented JSON, written atomically (see `write_text`)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    return write_text(path, text)


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
    from .errors import DataError

    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise DataError(
            f"{path}, line {number}: expected a JSON object{expected}, got {type(record).__name__}"
        )
    return record


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
    "atomic_output_dir",
    "check_model_folder",
    "check_output_dir",
    "json_object_line",
    "read_config",
    "read_json",
    "replace_dir",
    "write_json",
    "write_text",
]
