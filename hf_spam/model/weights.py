"""OpenAI GPT-2 checkpoints -> the book's GPT (chapter 5, "Loading pretrained weights from OpenAI").

GPT-2 checkpoints on the Hub come in two key layouts: bare (`h.0.attn.c_attn.weight`, as in the
`openai-community/gpt2*` repos) and `transformer.`-prefixed (what `GPT2LMHeadModel.save_pretrained`
and `GPT2ForSequenceClassification.save_pretrained` write; the latter adds its head,
`score.weight`, which becomes the classifier's `out_head` when the labels agree). Both store linear
layers as `Conv1D` (weights transposed against `nn.Linear`) and the query, key and value
projections fused in one `c_attn`. This module reads them and `gpt2_keys.py` renames, transposes
and splits them into the names of `modeling.py`; both refuse anything they cannot account for: a
missing key, a leftover key or a shape mismatch is an error that names the key, never a silent
partial load. Only safetensors are read; pickled checkpoints are refused.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from ..constants import (
    BPE_FILES,
    CONFIG_NAME,
    SAFETENSORS_INDEX_NAME,
    SAFETENSORS_NAME,
    TOKENIZER_FILES,
)
from ..errors import CheckpointError, ModelLoadError
from ..files import read_json
from .configuration import GPT2_PRESETS, GPTConfig
from .gpt2_keys import (
    GPT2_CONFIG_FIELDS,
    check_checkpoint_sizes,
    convert_gpt2_state_dict,
    strip_prefix,
)
from .modeling import GPTForSequenceClassification, GPTPreTrainedModel

logger = logging.getLogger(__name__)

#: The head of transformers' `GPT2ForSequenceClassification`: (num_labels, n_embd), no bias.
SCORE_KEY = "score.weight"
#: transformers' names for classes nobody named (`LABEL_0`, `LABEL_1`, ...).
UNNAMED_LABEL = re.compile(r"^LABEL_\d+$")
#: A checkpoint's own tokenizer files, fetched with its weights from the Hub.
TOKENIZER_PATTERNS = (*TOKENIZER_FILES, *BPE_FILES, "special_tokens_map.json", "added_tokens.json")


def resolve_checkpoint(name_or_path: str | os.PathLike) -> tuple[list[Path], Path | None]:
    """Local safetensors files (and `config.json`, if any) for a file, a folder or a Hub id.

    A Hub id's tokenizer files come down with its weights, into the same cached folder.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(
                f"{path}: only .safetensors checkpoints are read (pickled weights can run code)"
            )
        config = path.parent / CONFIG_NAME
        return [path], config if config.is_file() else None
    if path.is_dir():
        return _files_in_folder(path)
    if path.is_absolute() or str(name_or_path).startswith(".") or path.suffix:
        raise FileNotFoundError(f"GPT-2 checkpoint not found: {path} does not exist")
    return _files_from_hub(str(name_or_path))


def _files_in_folder(folder: Path) -> tuple[list[Path], Path | None]:
    config = folder / CONFIG_NAME
    config_path = config if config.is_file() else None
    index = folder / SAFETENSORS_INDEX_NAME
    if index.is_file():
        weight_map = read_json(index, "safetensors index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no 'weight_map' object; not a safetensors index")
        return [folder / name for name in sorted(set(weight_map.values()))], config_path
    if (folder / SAFETENSORS_NAME).is_file():
        return [folder / SAFETENSORS_NAME], config_path
    found = sorted(p.name for p in folder.iterdir())
    raise FileNotFoundError(
        f"{folder}: no {SAFETENSORS_NAME} or {SAFETENSORS_INDEX_NAME} (found: {', '.join(found)})"
    )


def _files_from_hub(repo_id: str) -> tuple[list[Path], Path | None]:
    """Download only the safetensors weights and config of a Hub repo (cached by huggingface_hub)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=[SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME, "model-*.safetensors"]
            + [CONFIG_NAME, *TOKENIZER_PATTERNS],
        )
    except LocalEntryNotFoundError as err:  # offline, or no network, and not in the cache
        raise ModelLoadError(
            f"could not fetch the GPT-2 weights {repo_id!r}: it is not a local path and the "
            "Hugging Face Hub cannot be reached (offline, and not in the local cache); pass a "
            "local path to GPT-2 weights (train: --model_name_or_path FOLDER, convert: --source "
            "FOLDER), or train from random weights with --init random"
        ) from err
    except (HfHubHTTPError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"{repo_id!r} is neither a local path nor a Hub repo ({reason})"
        ) from err
    return _files_in_folder(Path(folder))


def checkpoint_folder(name_or_path: str | os.PathLike) -> Path:
    """The local folder holding a checkpoint (a Hub id's cached snapshot): where its own
    tokenizer files are, if it has any."""
    files, _ = resolve_checkpoint(name_or_path)
    return files[0].parent


def _read_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    tensors[key] = f.get_tensor(key)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{file}: not a readable safetensors file ({err})") from err
    return tensors


def _read_config(config_file: Path | None) -> dict[str, Any]:
    """A checkpoint's `config.json` as a dict ({} without one)."""
    if config_file is None:
        return {}
    raw = read_json(config_file, "checkpoint configuration")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object")
    return raw


def config_from_checkpoint(
    state_dict: dict[str, torch.Tensor], config_file: Path | None, **overrides: Any
) -> GPTConfig:
    """Sizes from the checkpoint's `config.json`, else from tensor shapes; then `overrides`."""
    raw = _read_config(config_file)
    fields = {ours: raw[theirs] for theirs, ours in GPT2_CONFIG_FIELDS.items() if theirs in raw}
    if "wte.weight" in state_dict and "wpe.weight" in state_dict:
        fields.setdefault("vocab_size", state_dict["wte.weight"].shape[0])
        fields.setdefault("emb_dim", state_dict["wte.weight"].shape[1])
        fields.setdefault("context_length", state_dict["wpe.weight"].shape[0])
    if "n_layers" not in fields:
        layers = {int(m.group(1)) for k in state_dict if (m := re.match(r"h\.(\d+)\.", k))}
        fields["n_layers"] = max(layers) + 1 if layers else 0
    if "n_heads" not in fields and "n_heads" not in overrides:
        # Head count is not visible in any shape: take it from the GPT-2 size with this width.
        by_width = {p["emb_dim"]: p["n_heads"] for p in GPT2_PRESETS.values()}
        if fields.get("emb_dim") not in by_width:
            raise CheckpointError(
                f"cannot tell the number of attention heads of a checkpoint with emb_dim="
                f"{fields.get('emb_dim')} and no config.json; pass n_heads=..."
            )
        fields["n_heads"] = by_width[fields["emb_dim"]]
    return GPTConfig(**{**fields, **overrides})


def has_classification_head(name_or_path: str | os.PathLike) -> bool:
    """Whether a checkpoint carries `GPT2ForSequenceClassification`'s head (`score.weight`)."""
    for file in resolve_checkpoint(name_or_path)[0]:
        try:
            with safe_open(str(file), framework="pt") as f:
                if SCORE_KEY in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    return True
        except (SafetensorError, OSError):
            return False  # the load that follows names the unreadable file
    return False


def checkpoint_label_names(raw_config: dict[str, Any], num_labels: int) -> list[str] | None:
    """A classifier checkpoint's class names in id order, from its `config.json`; None when it
    names none (transformers' `LABEL_0`, ...) or its `id2label` does not cover its classes."""
    id2label = raw_config.get("id2label")
    if not isinstance(id2label, dict):
        return None
    try:
        by_id = {int(i): str(name) for i, name in id2label.items()}
    except ValueError:
        return None
    names = [by_id.get(i) for i in range(num_labels)]
    if any(name is None for name in names) or all(UNNAMED_LABEL.match(n) for n in names):
        return None
    return names


def score_head_rows(
    checkpoint_names: list[str] | None, num_rows: int, config: GPTConfig
) -> tuple[list[int] | None, str]:
    """The row of `score.weight` each of the model's classes takes, or None and why not.

    Rows follow the names: a checkpoint trained with `{0: spam, 1: ham}` gives the model's `ham`
    its row 1. When either side's classes are unnamed (`LABEL_0`, ...) they are taken in order.
    """
    if num_rows != config.num_labels:
        return None, f"it scores {num_rows} classes, the model has {config.num_labels}"
    ours = [str(config.id2label[i]) for i in range(config.num_labels)]
    if checkpoint_names is None or all(UNNAMED_LABEL.match(name) for name in ours):
        return list(range(num_rows)), ""
    if sorted(checkpoint_names) != sorted(ours):
        return None, (
            f"its classes ({', '.join(checkpoint_names)}) are not the model's ({', '.join(ours)})"
        )
    return [checkpoint_names.index(name) for name in ours], ""


@torch.no_grad()
def _load_score_head(
    model: GPTForSequenceClassification, score: torch.Tensor, rows: list[int]
) -> None:
    """`score.weight`'s rows as `out_head`, bias 0: GPT-2's score has no bias, so the logits are
    transformers' own."""
    want = (model.config.num_labels, model.config.emb_dim)
    if tuple(score.shape) != want:
        raise CheckpointError(
            f"shape mismatch for {SCORE_KEY!r} -> 'out_head.weight': checkpoint has "
            f"{tuple(score.shape)}, model expects {want}"
        )
    model.out_head.weight.copy_(score[rows])
    model.out_head.bias.zero_()


def load_openai_gpt2(
    model_cls: type[GPTPreTrainedModel],
    name_or_path: str | os.PathLike,
    config: GPTConfig | None = None,
    output_loading_info: bool = False,
    **config_overrides: Any,
) -> GPTPreTrainedModel | tuple[GPTPreTrainedModel, dict[str, list[str]]]:
    """`model_cls` (e.g. `GPTForSequenceClassification`) with GPT-2's weights in its trunk.

    Sizes come from the checkpoint (its `config.json`, else its tensor shapes) unless `config`
    is given; `config_overrides` set other fields, e.g. `num_labels=2`. Heads that GPT-2 lacks
    (the classifier's `out_head`) start fresh. Accepts a Hub id, a folder or a `.safetensors`
    file in either key layout.

    A `GPT2ForSequenceClassification` checkpoint's head (`score.weight`) becomes the classifier's
    `out_head` when its classes are the model's (matched by name; unnamed ones in order), with
    bias 0; otherwise it is left out, with a warning saying why. Unless `config` or the overrides
    set the labels, the classifier takes the checkpoint's. With `output_loading_info` the result
    is `(model, info)` as transformers' `from_pretrained` gives it: `info["missing_keys"]` are
    the model's keys that start fresh, `info["unexpected_keys"]` the checkpoint's left out.
    """
    files, config_file = resolve_checkpoint(name_or_path)
    state_dict = _read_tensors(files)
    score = state_dict.pop(SCORE_KEY, None)
    classifier = issubclass(model_cls, GPTForSequenceClassification)
    names = None
    if score is not None:
        names = checkpoint_label_names(_read_config(config_file), score.shape[0])
        labels_given = {"num_labels", "id2label", "label2id"} & config_overrides.keys()
        if classifier and config is None and not labels_given:
            labels = {"id2label": dict(enumerate(names))} if names else {"num_labels": len(score)}
            config_overrides = {**labels, **config_overrides}
    if config is None:
        config = config_from_checkpoint(strip_prefix(state_dict), config_file, **config_overrides)
        check_checkpoint_sizes(state_dict, config, config_file or name_or_path)
    elif config_overrides:
        config = copy.deepcopy(config)
        config.update(config_overrides)
    converted = convert_gpt2_state_dict(state_dict, config)
    config.name_or_path = str(name_or_path)
    model = model_cls(config)
    model.base_model.load_state_dict(converted, strict=True)
    model.tie_weights()
    head_loaded = False
    if score is not None:
        rows, why = (
            score_head_rows(names, score.shape[0], config)
            if classifier
            else (None, f"{model_cls.__name__} has no classification head")
        )
        if rows is None:
            fresh = "; out_head starts fresh" if classifier else ""
            logger.warning("%s: %s left out: %s%s", name_or_path, SCORE_KEY, why, fresh)
        else:
            _load_score_head(model, score, rows)
            head_loaded = True
    model.eval()
    if not output_loading_info:
        return model
    fresh_head = classifier and not head_loaded
    return model, {
        "missing_keys": ["out_head.weight", "out_head.bias"] if fresh_head else [],
        "unexpected_keys": [SCORE_KEY] if score is not None and not head_loaded else [],
    }


__all__ = [
    "GPT2_CONFIG_FIELDS",
    "SCORE_KEY",
    "CheckpointError",
    "check_checkpoint_sizes",
    "checkpoint_folder",
    "checkpoint_label_names",
    "config_from_checkpoint",
    "convert_gpt2_state_dict",
    "has_classification_head",
    "load_openai_gpt2",
    "resolve_checkpoint",
    "score_head_rows",
]
