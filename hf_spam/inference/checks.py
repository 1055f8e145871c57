"""Checking a model folder before anything is built from it: one check for every command.

A folder edited by hand, copied half-way or made by someone else fails deep inside transformers
(a bare `KeyError`, an `IndexError` in the embedding, a 200 GB allocation, a head silently
re-initialised) or, worse, loads and scores every text alike. `check_classifier_folder` reads
only headers and small JSON files and names the file and key at fault: files present, a model
type transformers knows, weights that parse as safetensors with the tensors the config's model
has, the config's sizes those of the weights, memory the machine has, labels numbered 0..n-1 and
matching the head, a tokenizer that fits the vocabulary and gives tokens.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..constants import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME
from ..errors import ModelLoadError
from ..files import check_model_folder, read_config, read_json
from ..hardware import machine_memory
from .files import error_line

#: The classification head's weight in a saved GPTForSequenceClassification: (num_labels, emb_dim).
HEAD_WEIGHT = "out_head.weight"
#: Bytes per element of the safetensors dtypes a model is saved in.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip


def _weights_headers(folder: Path) -> tuple[dict[str, list[int]], int]:
    """Tensor shapes and the bytes they take, from the weights' headers (no tensor is read),
    naming an unreadable file."""
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
    size = 0
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - a safe_open handle is not a dict
                    tensor = handle.get_slice(key)
                    shapes[key] = tensor.get_shape()
                    size += _DTYPE_BYTES.get(tensor.get_dtype(), 4) * math.prod(shapes[key])
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError: the file is unusable
            reason = error_line(err)
            raise ModelLoadError(
                f"{file}: not a readable safetensors file ({reason}); re-save or re-download it"
            ) from None
    return shapes, size


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


def _check_keys(folder: Path, config: dict[str, Any], shapes: dict[str, list[int]]) -> None:
    """The weights hold exactly the tensors of the model the config describes, with their
    shapes: transformers would initialise a missing tensor at random with a warning, and the
    model would load and answer nonsense. Checked for hf_spam's own model type, built on the
    meta device (no memory)."""
    if config.get("model_type") != "hf_spam_gpt":
        return
    import torch

    from ..model.configuration import GPTConfig
    from ..model.modeling import GPTForSequenceClassification

    try:
        with torch.device("meta"):
            model = GPTForSequenceClassification(GPTConfig.from_dict(config))
    except Exception as err:  # noqa: BLE001 - any config the model class itself refuses
        raise ModelLoadError(f"{folder / 'config.json'}: {error_line(err)}") from None
    expected = {key: list(value.shape) for key, value in model.state_dict().items()}
    weights = _weights_name(folder)
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [key for key in sorted(set(expected) & set(shapes)) if expected[key] != shapes[key]]
    for keys, problem in ((missing, "lacks"), (unexpected, "has")):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            what = "needs" if problem == "lacks" else "does not have"
            raise ModelLoadError(
                f"{weights}: {problem} tensor {keys[0]}{more}, which the model that config.json "
                f"describes {what}; the weights do not belong to this config"
            )
    if wrong:
        key = wrong[0]
        raise ModelLoadError(
            f"{weights}: tensor {key} has shape {tuple(shapes[key])} but the model that "
            f"config.json describes needs {tuple(expected[key])}; the weights do not belong to "
            "this config"
        )


def _weights_name(folder: Path) -> Path:
    index = folder / SAFETENSORS_INDEX_NAME
    return index if index.is_file() else folder / SAFETENSORS_NAME


def _check_memory(folder: Path, shapes: dict[str, list[int]], size: int) -> None:
    """The weights must fit in this machine's memory: a model larger than all of it cannot
    load, and trying would take the machine down (or be killed) instead of saying so."""
    memory = machine_memory()
    if memory and size > memory:
        parameters = sum(math.prod(shape) for shape in shapes.values())
        raise ModelLoadError(
            f"{_weights_name(folder)}: the model needs {size / 2**30:.1f} GiB of memory for "
            f"its {parameters:,} parameters and this machine has {memory / 2**30:.1f} GiB"
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
    the weights, labels numbered 0..n-1 and matching the head, the weights' tensors those of
    the config's model, memory enough for them, a tokenizer that fits the vocabulary and gives
    tokens. Every command that takes a model folder calls it first.

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
    shapes, size = _weights_headers(folder)
    _check_sizes(folder, config, shapes)
    _check_label_ids(folder, config.get("id2label") or {})
    head = shapes.get(HEAD_WEIGHT)
    id2label = config.get("id2label") or {}
    num_labels = len(id2label) if id2label else config.get("num_labels")
    if head is not None and num_labels is not None and head[0] != num_labels:
        raise ModelLoadError(
            f"{folder / 'config.json'}: {num_labels} labels ({', '.join(map(str, id2label.values()))})"
            f" but the weights' {HEAD_WEIGHT} has {head[0]} rows (shape {tuple(head)}); the "
            "config does not belong to these weights"
        )
    _check_keys(folder, config, shapes)
    _check_memory(folder, shapes, size)
    _check_tokenizer(folder, config)
    return folder


__all__ = ["HEAD_WEIGHT", "check_classifier_folder"]
