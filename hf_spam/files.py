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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .constants import CONFIG_NAME, TOKENIZER_FILES, WEIGHTS_FILES
from .errors import HfSpamError, ModelLoadError, OutputExistsError

#: The staging folder of a run's final files inside its output folder (`outputs.py`): while it
#: holds files the folder is being written (or the writer was killed), and is not a model yet.
FINAL_STAGING = ".final-outputs.tmp"


class OutputWriteError(HfSpamError, OSError):
    """An output could not be written; its destination was left as it was."""


def check_output_dir(
    path: str | os.PathLike,
    overwrite: bool,
    flag: str = "--output_dir",
    overwrite_flag: str = "--overwrite_output_dir",
) -> Path:
    """Refuse to write into a non-empty folder unless asked to (`overwrite_flag`), before any
    work starts."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{flag} {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{flag} {path} exists and is not empty; pass {overwrite_flag} to replace it"
        )
    return path


@contextmanager
def atomic_output_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    flag: str = "--output_dir",
    overwrite_flag: str = "--overwrite_output_dir",
) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that replaces `path` only if the block succeeds.

    A failure half-way leaves no half-written output behind, and an existing `path` untouched.
    """
    path = check_output_dir(path, overwrite, flag, overwrite_flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.filename:  # name the file at its destination
            err.filename, err.filename2 = (
                _moved(f, tmp, path) for f in (err.filename, err.filename2)
            )
        raise
    replace_dir(tmp, path)


def _moved(filename: Any, tmp: Path, path: Path) -> Any:
    """`filename` under `path` if it lies under `tmp` (else unchanged)."""
    if not filename:
        return filename
    try:
        return str(path / Path(filename).relative_to(tmp))
    except ValueError:
        return filename


def write_failure(err: BaseException) -> str | None:
    """The reason if `err` is a failed write (full disk, file-size limit, permissions), else None.

    safetensors reports its I/O errors as `SafetensorError("Error while serializing: I/O error:
    ...")`, without errno or file name, so its message is read.
    """
    if isinstance(err, OSError) and not isinstance(err, HfSpamError):
        return err.strerror or (str(err).strip().splitlines() or [type(err).__name__])[0]
    if type(err).__name__ == "SafetensorError" and "I/O error" in str(err):
        return str(err).split("I/O error:", 1)[1].strip()
    return None


def writing(target: str | os.PathLike, write: Callable[[], Any], keeps: str | None = None) -> Any:
    """Run `write`; any failure becomes one `OutputWriteError` line naming `target` (the file or
    folder being written), whatever library did the writing. `keeps`: what is left as it was
    (default: `target`'s folder keeps its previous outputs)."""
    try:
        return write()
    except HfSpamError:
        raise
    except Exception as err:
        reason = write_failure(err) or (str(err).strip().splitlines() or [""])[0]
        reason = reason or type(err).__name__
        target = Path(target)
        kept = keeps or f"{target.parent} keeps its previous outputs"
        raise OutputWriteError(f"{target}: could not be written ({reason}); {kept}") from err


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
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:  # the last flush happens at close: a full disk can fail there too
            handle.write(text)
        os.replace(handle.name, path)
    except BaseException as err:
        with suppress(OSError):
            os.unlink(handle.name)
        if isinstance(err, OSError) and err.filename in (None, handle.name):
            err.filename = str(path)  # the file the user asked for, not the temporary one
        raise
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
    if any((path / FINAL_STAGING).glob("*")):
        raise ModelLoadError(
            f"{path} is not a complete model folder: its run was stopped while saving it (files "
            f"left in {FINAL_STAGING}); train again with --resume_from_checkpoint last"
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
    "OutputWriteError",
    "atomic_output_dir",
    "check_model_folder",
    "check_output_dir",
    "json_object_line",
    "read_config",
    "read_json",
    "replace_dir",
    "write_failure",
    "write_json",
    "write_text",
    "writing",
]
