"""Use a trained classifier: load it by folder or Hub id, classify texts, read and write them.

Everything goes through transformers' `pipeline("text-classification")`, so a saved folder behaves
here as it does for anyone who downloads it. Around it: checks that name the file at fault before
anything loads, every class's score per text, a progress bar, and `hf-spam predict`'s files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from transformers import Pipeline, pipeline

from .constants import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME
from .errors import DataError, ModelLoadError, UsageError
from .files import check_model_folder, read_config, read_json, write_text

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "InferenceArguments",
    "PREDICTION_FORMATS",
    "Prediction",
    "available_devices",
    "check_batch_size",
    "check_classifier_folder",
    "check_device",
    "check_model_source",
    "classify",
    "label_names",
    "load_classifier",
    "one_line",
    "predictions_from_outputs",
    "read_texts",
    "write_predictions",
]

DEFAULT_BATCH_SIZE = 16
#: Inputs longer than this many texts get a progress bar.
PROGRESS_THRESHOLD = 64
PREDICTION_FORMATS = (".jsonl", ".csv")
#: The classification head's weight in a saved GPTForSequenceClassification: (num_labels, emb_dim).
HEAD_WEIGHT = "out_head.weight"
#: --input suffixes read with `datasets.load_dataset` (the rules of hf_spam.data's files).
TABLE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}


@dataclass
class InferenceArguments:
    """How a classifier runs (parsed by `HfArgumentParser`); the keyword arguments of
    `load_classifier`, shared by `hf-spam predict` and `hf-spam evaluate`. Checked when parsed,
    so a bad value stops the command before any model loads."""

    batch_size: int = field(default=DEFAULT_BATCH_SIZE, metadata={"help": "Texts per batch."})
    device: str | None = field(
        default=None,
        metadata={
            "help": "cpu, cuda, cuda:1, mps, ... (default: the first accelerator, else cpu)."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run model code from a Hub repo (not needed for hf_spam models: importing "
            "hf_spam registers them)."
        },
    )

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)
        check_device(self.device)


def _reason(err: BaseException, line: int = 0) -> str:
    """One line of an exception's message (libraries' messages run over several lines)."""
    lines = [text for text in str(err).strip().splitlines() if text.strip()]
    return lines[line].strip() if lines else type(err).__name__


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"--batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def available_devices() -> list[str]:
    """The devices torch can use here, as `--device` spells them."""
    import torch

    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: int | str | None) -> int | str | None:
    """`device` if torch has it here, else a `UsageError` naming --device and what exists."""
    import torch

    if device is None:
        return device
    try:
        parsed = torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    except (RuntimeError, TypeError):
        parsed = None
    available = available_devices()  # "cuda" means "cuda:0", as in torch
    if parsed is None or not any(str(parsed) in (name, name.split(":")[0]) for name in available):
        raise UsageError(
            f"--device {device!r} is not available here; devices: {', '.join(available)}"
        )
    return device


def _safetensors_shapes(folder: Path) -> dict[str, list[int]]:
    """Tensor shapes from the weights' headers (no tensor is read), naming an unreadable file."""
    from safetensors import safe_open

    index = folder / SAFETENSORS_INDEX_NAME
    if index.is_file():
        weight_map = read_json(index, "safetensors index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelLoadError(f"{index}: no 'weight_map' object; not a safetensors index")
        files = sorted({folder / name for name in weight_map.values()})
    else:
        files = [folder / SAFETENSORS_NAME]
    shapes: dict[str, list[int]] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                shapes.update({key: handle.get_slice(key).get_shape() for key in handle.keys()})  # noqa: SIM118
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError: the file is unusable
            reason = _reason(err)
            raise ModelLoadError(
                f"{file}: not a readable safetensors file ({reason}); re-save or re-download it"
            ) from None
    return shapes


def check_classifier_folder(folder: str | os.PathLike, *, trust_remote_code: bool = False) -> Path:
    """Check a saved classifier before it loads: files present, `config.json` and the tokenizer
    valid JSON, a model type transformers knows, weights readable, labels matching the head.

    transformers would raise a bare JSONDecodeError or re-initialise a head whose size does not
    match `id2label` with only a warning; here each is one line naming the file.
    """
    from transformers import CONFIG_MAPPING  # hf_spam_gpt is in it: hf_spam registered it

    folder = check_model_folder(folder)
    config = read_config(folder)
    model_type = config.get("model_type")
    remote = trust_remote_code and "auto_map" in config
    if model_type not in CONFIG_MAPPING and not remote:
        raise ModelLoadError(
            f"{folder / 'config.json'}: unknown model_type {model_type!r}; expected one "
            "transformers knows (hf_spam_gpt for hf_spam models)"
        )
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            read_json(folder / name, "tokenizer file")
    head = _safetensors_shapes(folder).get(HEAD_WEIGHT)
    id2label = config.get("id2label") or {}
    num_labels = len(id2label) if id2label else config.get("num_labels")
    if head is not None and num_labels is not None and head[0] != num_labels:
        raise ModelLoadError(
            f"{folder / 'config.json'}: {num_labels} labels ({', '.join(map(str, id2label.values()))})"
            f" but the weights' {HEAD_WEIGHT} has {head[0]} rows (shape {tuple(head)}); the "
            "config does not belong to these weights"
        )
    return folder


def check_model_source(model: str | os.PathLike, *, trust_remote_code: bool = False) -> str:
    """A checked local model folder, or `model` as a Hub repo id; a path that does not exist
    (absolute, `./...`, `~/...`, or nested deeper than USER/NAME) is an error, not a repo id."""
    name = str(model)
    local = Path(name).expanduser()
    if local.exists():
        return str(check_classifier_folder(local, trust_remote_code=trust_remote_code))
    if local.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"{local}: no such model folder")
    return name


def load_classifier(
    model: str | os.PathLike,
    *,
    device: int | str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    trust_remote_code: bool = False,
) -> Pipeline:
    """`pipeline("text-classification")` for a model folder or Hub repo id, with clear errors.

    A local folder is checked first (`check_classifier_folder`); anything else is taken as a Hub
    repo id, and a failure to fetch it says it is neither a local folder nor reachable on the
    Hub. `device` defaults to the pipeline's choice (the first accelerator, else the CPU).
    """
    check_batch_size(batch_size)
    check_device(device)
    name = check_model_source(model, trust_remote_code=trust_remote_code)
    local = Path(name)
    try:
        return pipeline(
            "text-classification",
            model=name,
            device=device,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as err:
        reason = _reason(err)
        if local.exists():
            raise ModelLoadError(f"{name}: cannot load the model ({reason})") from err
        raise ModelLoadError(
            f"{name!r} is neither a local model folder nor a model reachable on the Hugging Face "
            f"Hub (offline or unknown); pass a local path ({reason})"
        ) from err


def label_names(config: Any) -> list[str]:
    """Class names in id order, from a config's `id2label` (JSON configs give string keys)."""
    id2label: Mapping[Any, str] = config.id2label
    return [id2label[key] for key in sorted(id2label, key=int)]


@dataclass
class Prediction:
    """One classified text: the winning label, its probability, and every class's probability."""

    text: str
    label: str
    score: float
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "score": self.score, "scores": self.scores}


def predictions_from_outputs(
    texts: Iterable[str], outputs: Iterable[Sequence[Mapping[str, Any]]], labels: Sequence[str]
) -> list[Prediction]:
    """Pipeline outputs of `top_k=None` (every class, best first) as `Prediction`s.

    `scores` keep the model's class order, whatever order the pipeline sorted them in.
    """
    predictions = []
    for text, output in zip(texts, outputs, strict=True):
        by_label = {item["label"]: float(item["score"]) for item in output}
        best = output[0]
        predictions.append(
            Prediction(
                text=text,
                label=best["label"],
                score=float(best["score"]),
                scores={name: by_label[name] for name in labels},
            )
        )
    return predictions


def _checked_texts(texts: Iterable[Any]) -> list[str]:
    texts = list(texts)
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise DataError(f"text {number}: expected a string, got {type(text).__name__}")
    return texts


def classify(
    classifier: Pipeline,
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> list[Prediction]:
    """Classify `texts` in batches; texts longer than the model's context are truncated.

    The texts stream through the pipeline as a generator, which it batches and answers one by
    one, so the progress bar (shown when there are more than `PROGRESS_THRESHOLD` texts, or as
    `progress` says) follows the real work.
    """
    from tqdm.auto import tqdm

    check_batch_size(batch_size)
    texts = _checked_texts(texts)
    show = len(texts) > PROGRESS_THRESHOLD if progress is None else progress
    stream = classifier(
        (text for text in texts), batch_size=batch_size, top_k=None, truncation=True
    )
    outputs = list(
        tqdm(stream, total=len(texts), desc="Classifying", unit="text", disable=not show)
    )
    return predictions_from_outputs(texts, outputs, label_names(classifier.model.config))


# --------------------------------------------------------------------------------------------
# Reading texts, writing predictions
# --------------------------------------------------------------------------------------------


def _lines(chunks: Iterable[str | bytes], where: str) -> Iterator[str]:
    """Lines as text, each checked to be UTF-8, so a binary file fails naming the line."""
    for number, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
            line.encode("utf-8")  # text decoded with surrogateescape still holds raw bytes
        except UnicodeError:
            raise DataError(f"{where}, line {number}: not UTF-8 text (binary input?)") from None
        yield line


def _read_lines(handle: TextIO | io.BufferedIOBase, where: str) -> list[str]:
    """One text per line; blank lines (e.g. a trailing newline) are not texts. No parser is
    needed for this, and standard input cannot be handed to `load_dataset`."""
    source = getattr(handle, "buffer", handle)  # bytes where there are, to name a bad line
    lines = _lines(source, where)
    return [line.rstrip("\r\n") for line in lines if line.strip()]


def _check_json_line(line: str, path: Path, number: int) -> None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise DataError(
            f"{path}, line {number}: expected a JSON object, got {type(record).__name__}"
        )


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
    import tempfile

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
                _check_json_line(line, path, number)
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
            reason = _reason(err.__cause__ or err, line=-1)
            raise DataError(f"{path}: cannot be read as {builder.upper()} ({reason})") from None
    if text_column not in loaded.column_names:
        found = ", ".join(repr(name) for name in loaded.column_names) or "no columns"
        raise DataError(f"{path}: no column {text_column!r} (found {found}); set --text_column")
    texts = loaded[text_column]
    for number, text in enumerate(texts, start=1):
        if text is not None and not isinstance(text, str):
            raise DataError(
                f"{path}, row {number}: column {text_column!r} holds {type(text).__name__}, "
                "not text"
            )
    return [text or "" for text in texts]


def read_texts(
    path: str | os.PathLike, *, text_column: str = "text", stdin: TextIO | None = None
) -> list[str]:
    """Texts from a file: CSV/TSV (column `text_column`), JSON lines (field `text_column`), or
    any other file (and `-`, standard input) as one text per line."""
    if str(path) == "-":
        return _read_lines(stdin or sys.stdin, "stdin")
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() in TABLE_BUILDERS:
        return _read_table(path, text_column)
    with open(path, "rb") as handle:
        return _read_lines(handle, str(path))


def write_predictions(
    predictions: Sequence[Prediction],
    path: str | os.PathLike,
    *,
    references: Sequence[str] | None = None,
) -> Path:
    """Write predictions as JSON lines (`.jsonl`) or CSV (`.csv`, one `score_<label>` column per
    class), atomically; `references` (true labels, in evaluation) add a `reference` field."""
    path = Path(path)
    records = [p.to_dict() for p in predictions]
    if references is not None:
        for record, reference in zip(records, references, strict=True):
            record["reference"] = reference
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    elif suffix == ".csv":
        labels = list(records[0]["scores"]) if records else []
        columns = ["text", "label", "score"] + (["reference"] if references is not None else [])
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*columns, *(f"score_{label}" for label in labels)])
        for record in records:
            scores = record["scores"]
            writer.writerow([*(record[c] for c in columns), *(scores[label] for label in labels)])
        text = buffer.getvalue()
    else:
        raise ValueError(
            f"{path}: unknown output format; use one of {', '.join(PREDICTION_FORMATS)}"
        )
    try:
        return write_text(path, text)
    except OSError as err:  # a full disk or a file-size limit: name the file the user asked for
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


def one_line(text: str, width: int = 70) -> str:
    """`text` on one line (newlines and tabs would break a table), cut to `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
