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

from ..constants import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME
from ..errors import DataError, ModelLoadError, UsageError
from ..files import check_model_folder, read_config, read_json
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
#: The classification head's weight in a saved GPTForSequenceClassification: (num_labels, emb_dim).
HEAD_WEIGHT = "out_head.weight"


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
            reason = error_line(err)
            raise ModelLoadError(
                f"{file}: not a readable safetensors file ({reason}); re-save or re-download it"
            ) from None
    return shapes


#: Per model type: (embedding weight, block key prefix, config keys of vocabulary, width and
#: depth), so a config's sizes are checked against the weights' headers before anything is built.
_SIZE_KEYS = {
    "hf_spam_gpt": ("gpt.tok_emb.weight", "gpt.trf_blocks.", "vocab_size", "emb_dim", "n_layers"),
    "gpt2": ("transformer.wte.weight", "transformer.h.", "vocab_size", "n_embd", "n_layer"),
}
#: Ordinary text every usable tokenizer turns into tokens.
_TOKENIZER_PROBE = "Hello, this is a short message."


def _check_sizes(folder: Path, config: dict[str, Any], shapes: dict[str, list[int]]) -> None:
    """The config's vocabulary, width and depth against the weights' shapes: a config that
    does not belong to its weights (say `n_layers: 100000`) would otherwise build the model it
    describes, however large, before the weights are compared."""
    keys = _SIZE_KEYS.get(str(config.get("model_type")))
    if keys is None or keys[0] not in shapes:
        return
    embedding, block_prefix, vocab_key, width_key, depth_key = keys
    blocks = {
        key[len(block_prefix) :].split(".")[0] for key in shapes if key.startswith(block_prefix)
    }
    found = {
        vocab_key: shapes[embedding][0],
        width_key: shapes[embedding][1],
        depth_key: len(blocks),
    }
    for key, value in found.items():
        if key in config and config[key] != value:
            raise ModelLoadError(
                f"{folder / 'config.json'}: {key} is {config[key]!r} but the weights have {value}; "
                "the config does not belong to these weights"
            )


def _check_label_ids(folder: Path, id2label: dict[str, Any]) -> None:
    """`id2label` must number the classes 0..n-1: the head's rows are read by those ids."""
    try:
        ids = sorted(int(key) for key in id2label)
    except ValueError:
        ids = None
    if ids is not None and ids == list(range(len(ids))):
        return
    raise ModelLoadError(
        f"{folder / 'config.json'}: id2label must number the labels 0 to {len(id2label) - 1}, "
        f"got ids {', '.join(map(str, id2label))}"
    )


def _check_tokenizer(folder: Path, config: dict[str, Any]) -> None:
    """A `tokenizer.json` must fit the model's vocabulary and turn ordinary text into tokens:
    one with larger ids fails inside the embedding, and one that gives no tokens would score
    every text alike."""
    path = folder / "tokenizer.json"
    vocab_size = config.get("vocab_size")
    if not path.is_file():
        return
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # noqa: BLE001 - the tokenizers library raises a bare Exception
        raise ModelLoadError(f"{path}: not a usable tokenizer ({error_line(err)})") from None
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if isinstance(vocab_size, int) and size > vocab_size:
        raise ModelLoadError(
            f"{path}: {size} tokens, more than the model's vocabulary of {vocab_size} "
            "(config.json vocab_size); the tokenizer does not belong to this model"
        )
    if not tokenizer.encode(_TOKENIZER_PROBE).ids:
        raise ModelLoadError(
            f"{path}: turns ordinary text into no tokens ({_TOKENIZER_PROBE!r}); its vocabulary "
            "is empty or damaged"
        )


def check_classifier_folder(folder: str | os.PathLike, *, trust_remote_code: bool = False) -> Path:
    """Check a saved classifier before it loads: files present, `config.json` and the tokenizer
    valid JSON, a model type transformers knows, weights readable, the config's sizes those of
    the weights, labels numbered 0..n-1 and matching the head, a tokenizer that fits the
    vocabulary and gives tokens.

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
    shapes = _safetensors_shapes(folder)
    _check_sizes(folder, config, shapes)
    _check_label_ids(folder, config.get("id2label") or {})
    _check_tokenizer(folder, config)
    head = shapes.get(HEAD_WEIGHT)
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
