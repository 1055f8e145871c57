"""Use a trained classifier: load it by folder or Hub id, classify texts, read and write them.

Single texts go through transformers' `pipeline("text-classification")`, so a saved folder behaves
here as it does for anyone who downloads it. Around it: checks that name the file at fault before
anything loads, every class's score per text, a progress bar. Many texts take the bulk path
(`hf_spam.inference.bulk`); files are read and written by `hf_spam.inference.files`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import Pipeline, pipeline

from ..errors import DataError, ModelLoadError, UsageError
from .checks import check_classifier_folder
from .context import ContextPipeline
from .decision import OperatingPoint
from .files import (
    PREDICTION_FORMATS,
    Prediction,
    error_line,
    read_texts,
    write_predictions,
)

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


@dataclass
class InferenceArguments:
    """How the classifier runs: batch size, device, remote code.

    Parsed by `HfArgumentParser` (its own section of --help); the keyword arguments of
    `load_classifier`, shared by `hf-spam predict` and `hf-spam evaluate`. Checked when parsed,
    so a bad value stops the command before any model loads."""

    _argument_group_name = "inference"

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
            pipeline_class=ContextPipeline,  # long texts cut before tokenizing, same ids
            device=device,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as err:
        reason = error_line(err)
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
    `progress` says) follows the real work. The config's temperature and decision threshold
    apply to the pipeline's probabilities (`OperatingPoint`), as on the bulk path.
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
    labels = label_names(classifier.model.config)
    point = OperatingPoint.from_config(classifier.model.config)
    if not point.is_default:
        outputs = [point.decide_output(output, labels) for output in outputs]
    return predictions_from_outputs(texts, outputs, labels)


def one_line(text: str, width: int = 70) -> str:
    """`text` on one line (newlines and tabs would break a table), cut to `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
