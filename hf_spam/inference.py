"""Use a trained classifier: load it by folder or Hub id, classify texts, read and write them.

Everything goes through transformers' `pipeline("text-classification")`, so a folder written by
`hf_spam.training.train` behaves here exactly as it does for anyone who downloads it. What this
module adds is what a command-line tool needs around the pipeline: errors that say which file is
missing or that a repo id is unreachable, every class's score in one record, a progress bar on
long inputs, and the small file formats scripts/predict.py reads and writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from transformers import Pipeline, pipeline

from .errors import DataError, ModelLoadError
from .files import check_model_folder, write_text
from .reporting import format_table

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "InferenceArguments",
    "ModelLoadError",
    "Prediction",
    "check_model_folder",
    "classify",
    "format_predictions",
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


@dataclass
class InferenceArguments:
    """How a classifier runs (parsed by `HfArgumentParser`); the keyword arguments of
    `load_classifier`, shared by scripts/predict.py and scripts/evaluate.py."""

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


def load_classifier(
    model: str | os.PathLike,
    *,
    device: int | str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    trust_remote_code: bool = False,
) -> Pipeline:
    """`pipeline("text-classification")` for a model folder or Hub repo id, with clear errors.

    A local folder is checked file by file first; anything else is taken as a Hub repo id, and
    a failure to fetch it says it is neither a local folder nor reachable on the Hub. `device`
    defaults to the pipeline's choice (the first accelerator, else the CPU).
    """
    name = str(model)
    local = Path(name).expanduser()
    if local.exists():
        name = str(check_model_folder(local))
    try:
        return pipeline(
            "text-classification",
            model=name,
            device=device,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
        )
    except OSError as err:
        if local.exists():
            raise ModelLoadError(f"{name}: cannot load the model ({err})") from err
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"{name!r} is neither a local model folder nor a model reachable on the Hugging Face "
            f"Hub ({reason})"
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


def classify(
    classifier: Pipeline,
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> list[Prediction]:
    """Classify `texts` in batches; texts longer than the model's context are truncated.

    `progress=None` shows a progress bar when there are more than `PROGRESS_THRESHOLD` texts.
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    show = len(texts) > PROGRESS_THRESHOLD if progress is None else progress
    outputs: list[Any] = []
    with tqdm(total=len(texts), desc="Classifying", unit="text", disable=not show) as bar:
        # Chunks of a few batches: the bar moves, and the pipeline still batches inside each.
        step = 4 * batch_size
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step]
            outputs.extend(classifier(chunk, batch_size=batch_size, top_k=None, truncation=True))
            bar.update(len(chunk))
    return predictions_from_outputs(texts, outputs, label_names(classifier.model.config))


# --------------------------------------------------------------------------------------------
# Reading texts, writing predictions
# --------------------------------------------------------------------------------------------


def _read_lines(handle: TextIO) -> list[str]:
    """One text per line; blank lines (e.g. a trailing newline) are not texts."""
    return [line.rstrip("\r\n") for line in handle if line.strip()]


def _read_table(handle: TextIO, path: Path, text_column: str, delimiter: str) -> list[str]:
    reader = csv.DictReader(handle, delimiter=delimiter)
    if text_column not in (reader.fieldnames or []):
        found = ", ".join(repr(name) for name in reader.fieldnames or []) or "no header"
        raise DataError(f"{path}: no column {text_column!r} (found {found}); set --text_column")
    return [row[text_column] or "" for row in reader]


def _read_json_lines(handle: TextIO, path: Path, text_column: str) -> list[str]:
    texts = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {number}: not a JSON object ({err})") from None
        if not isinstance(record, dict) or text_column not in record:
            found = ", ".join(map(repr, record)) if isinstance(record, dict) else "not an object"
            raise DataError(
                f"{path}, line {number}: no field {text_column!r} (found {found}); "
                "set --text_column"
            )
        texts.append(str(record[text_column] or ""))
    return texts


def read_texts(
    path: str | os.PathLike, *, text_column: str = "text", stdin: TextIO | None = None
) -> list[str]:
    """Texts from a file: CSV/TSV (column `text_column`), JSON lines (field `text_column`), or
    any other file (and `-`, standard input) as one text per line."""
    if str(path) == "-":
        return _read_lines(stdin or sys.stdin)
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            if suffix in (".csv", ".tsv"):
                return _read_table(handle, path, text_column, "\t" if suffix == ".tsv" else ",")
            if suffix in (".jsonl", ".json"):
                return _read_json_lines(handle, path, text_column)
            return _read_lines(handle)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err})") from None


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
    return write_text(path, text)


def one_line(text: str, width: int = 70) -> str:
    """`text` on one line (newlines and tabs would break a table), cut to `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_predictions(predictions: Sequence[Prediction], *, width: int = 70) -> str:
    """A plain-text table: label, score, text (shortened to `width` characters)."""
    return format_table(
        [{"label": p.label, "score": p.score, "text": one_line(p.text, width)} for p in predictions]
    )
