"""OpenAI GPT-2 checkpoints -> the book's GPT (chapter 5, "Loading pretrained weights from OpenAI").

GPT-2 checkpoints on the Hub come in two key layouts: bare (`h.0.attn.c_attn.weight`, as in the
`openai-community/gpt2*` repos) and `transformer.`-prefixed (what `GPT2LMHeadModel.save_pretrained`
and `GPT2ForSequenceClassification.save_pretrained` write; the latter adds its head,
`score.weight`, which becomes the classifier's `out_head` when the labels agree). Both store
linear layers as `Conv1D` (weights transposed against `nn.Linear`) and the query, key and value
projections fused in one `c_attn`. This module renames, transposes and splits
them into the names of `modeling.py`, and refuses anything it cannot account for: a missing key,
a leftover key or a shape mismatch is an error that names the key, never a silent partial load.
Only safetensors are read; pickled checkpoints are refused.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterator
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
from .modeling import GPTForSequenceClassification, GPTPreTrainedModel

logger = logging.getLogger(__name__)

# Buffers of transformers' GPT-2 attention (the causal mask), not weights.
IGNORED_KEY = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")
# GPT-2's `config.json` fields -> GPTConfig fields.
GPT2_CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "n_positions": "context_length",
    "n_embd": "emb_dim",
    "n_head": "n_heads",
    "n_layer": "n_layers",
    "layer_norm_epsilon": "layer_norm_eps",
}
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


def strip_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bare GPT-2 keys from either layout; drops the tied `lm_head` and the mask buffers."""
    out = {}
    for key, tensor in state_dict.items():
        bare = key.removeprefix("transformer.")
        if bare == "lm_head.weight" or IGNORED_KEY.match(bare):
            continue
        out[bare] = tensor
    return out


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


#: GPT-2's keys outside the blocks -> the book's `GPTModel` keys.
GPT2_TOP_KEYS = {
    "wte.weight": "tok_emb.weight",
    "wpe.weight": "pos_emb.weight",
    "ln_f.weight": "final_norm.scale",
    "ln_f.bias": "final_norm.shift",
}
#: A block's layer norms, GPT-2 -> the book; their `weight` / `bias` are its `scale` / `shift`.
GPT2_BLOCK_NORMS = {"ln_1": "norm1", "ln_2": "norm2"}
GPT2_NORM_PARAMS = {"weight": "scale", "bias": "shift"}
#: A block's `Conv1D` layers, GPT-2 -> the book's `nn.Linear` (weights transposed).
GPT2_BLOCK_LINEARS = {
    "attn.c_proj": "att.out_proj",
    "mlp.c_fc": "ff.layers.0",
    "mlp.c_proj": "ff.layers.2",
}
#: GPT-2's fused query/key/value `Conv1D`, and the book's three projections cut from it, in order.
GPT2_FUSED_QKV = "attn.c_attn"
BOOK_QKV = ("W_query", "W_key", "W_value")
#: GPT-2's block key prefix, and the book's.
GPT2_BLOCK, BOOK_BLOCK = re.compile(r"h\.(\d+)\.(.+)$"), re.compile(r"trf_blocks\.(\d+)\.(.+)$")


def _gpt2_to_gpt(key: str, tensor: torch.Tensor, cfg: GPTConfig) -> Iterator[tuple[str, Any]]:
    """Our key(s) and tensor(s) for one GPT-2 key, as (new key, tensor) pairs."""
    if key in GPT2_TOP_KEYS:
        yield GPT2_TOP_KEYS[key], tensor
        return
    m = GPT2_BLOCK.match(key)
    if m is None:
        raise CheckpointError(f"unexpected key {key!r} in the GPT-2 checkpoint")
    block, rest = f"trf_blocks.{m.group(1)}", m.group(2)
    module, _, param = rest.rpartition(".")
    if module in GPT2_BLOCK_NORMS and param in GPT2_NORM_PARAMS:
        yield f"{block}.{GPT2_BLOCK_NORMS[module]}.{GPT2_NORM_PARAMS[param]}", tensor
    elif module in GPT2_BLOCK_LINEARS:
        # Conv1D stores (in, out); nn.Linear wants (out, in).
        yield (
            f"{block}.{GPT2_BLOCK_LINEARS[module]}.{param}",
            tensor.T if param == "weight" else tensor,
        )
    elif module == GPT2_FUSED_QKV:
        # One fused projection -> W_query, W_key, W_value (book, listing 5.5).
        split_dim = -1
        if param == "weight" and tensor.shape[-1] % 3 != 0:
            raise CheckpointError(
                f"key {key!r}: shape {tuple(tensor.shape)} cannot be split into query, key and "
                f"value (expected ({cfg.emb_dim}, {3 * cfg.emb_dim}))"
            )
        for name, part in zip(BOOK_QKV, tensor.chunk(3, dim=split_dim), strict=True):
            yield f"{block}.att.{name}.{param}", part.T if param == "weight" else part
    else:
        raise CheckpointError(f"unexpected key {key!r} in the GPT-2 checkpoint")


def convert_gpt2_state_dict(
    state_dict: dict[str, torch.Tensor], config: GPTConfig
) -> dict[str, torch.Tensor]:
    """A GPT-2 state dict (either layout) as a `GPTModel` state dict, checked key by key.

    Raises `CheckpointError` naming the GPT-2 key for leftover keys, missing keys and shape
    mismatches (with both shapes).
    """
    from .modeling import GPTModel

    with torch.device("meta"):  # shapes only, no memory
        expected = GPTModel(config).state_dict()
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, tensor in strip_prefix(state_dict).items():
        for new_key, new_tensor in _gpt2_to_gpt(key, tensor, config):
            if new_key not in expected:
                raise CheckpointError(
                    f"unexpected key {key!r} in the GPT-2 checkpoint (no {new_key!r} in a model "
                    f"with n_layers={config.n_layers})"
                )
            want = tuple(expected[new_key].shape)
            got = tuple(new_tensor.shape)
            if got != want:
                raise CheckpointError(
                    f"shape mismatch for {key!r} -> {new_key!r}: checkpoint has {got}, model "
                    f"expects {want} (emb_dim={config.emb_dim}, context_length="
                    f"{config.context_length}, vocab_size={config.vocab_size})"
                )
            converted[new_key] = new_tensor.contiguous()
            origin[new_key] = key
    missing = [k for k in expected if k not in converted]
    if missing:
        raise CheckpointError(
            f"the GPT-2 checkpoint lacks {len(missing)} weight(s) the model needs, first "
            f"{missing[0]!r} (GPT-2 name {gpt2_key(missing[0])!r})"
        )
    return converted


def gpt2_key(key: str) -> str:
    """GPT-2's key for one of the book's `GPTModel` keys (a query, key or value projection: the
    fused `c_attn` it is cut from); a key of neither model comes back as it is."""
    top = {ours: theirs for theirs, ours in GPT2_TOP_KEYS.items()}
    if key in top:
        return top[key]
    m = BOOK_BLOCK.match(key)
    if m is None:
        return key
    module, _, param = m.group(2).rpartition(".")
    norms = {ours: theirs for theirs, ours in GPT2_BLOCK_NORMS.items()}
    linears = {ours: theirs for theirs, ours in GPT2_BLOCK_LINEARS.items()}
    params = {ours: theirs for theirs, ours in GPT2_NORM_PARAMS.items()}
    if module in norms and param in params:
        return f"h.{m.group(1)}.{norms[module]}.{params[param]}"
    if module in linears:
        return f"h.{m.group(1)}.{linears[module]}.{param}"
    if module.removeprefix("att.") in BOOK_QKV:
        return f"h.{m.group(1)}.{GPT2_FUSED_QKV}.{param}"
    return key


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
    "BOOK_QKV",
    "GPT2_BLOCK_LINEARS",
    "GPT2_BLOCK_NORMS",
    "GPT2_CONFIG_FIELDS",
    "GPT2_FUSED_QKV",
    "GPT2_NORM_PARAMS",
    "GPT2_TOP_KEYS",
    "SCORE_KEY",
    "CheckpointError",
    "checkpoint_folder",
    "checkpoint_label_names",
    "config_from_checkpoint",
    "convert_gpt2_state_dict",
    "gpt2_key",
    "has_classification_head",
    "load_openai_gpt2",
    "resolve_checkpoint",
    "score_head_rows",
]
