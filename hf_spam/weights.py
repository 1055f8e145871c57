"""OpenAI GPT-2 checkpoints -> the book's GPT (chapter 5, "Loading pretrained weights from OpenAI").

GPT-2 checkpoints on the Hub come in two key layouts: bare (`h.0.attn.c_attn.weight`, as in the
`openai-community/gpt2*` repos) and `transformer.`-prefixed (what `GPT2LMHeadModel.save_pretrained`
writes). Both store linear layers as `Conv1D` (weights transposed against `nn.Linear`) and the
query, key and value projections fused in one `c_attn`. This module renames, transposes and splits
them into the names of `modeling.py`, and refuses anything it cannot account for: a missing key,
a leftover key or a shape mismatch is an error that names the key, never a silent partial load.
Only safetensors are read; pickled checkpoints are refused.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from .configuration import GPT2_PRESETS, GPTConfig
from .constants import CONFIG_NAME, SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME
from .errors import CheckpointError, ModelLoadError
from .files import read_json
from .modeling import GPTPreTrainedModel

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


def resolve_checkpoint(name_or_path: str | os.PathLike) -> tuple[list[Path], Path | None]:
    """Local safetensors files (and `config.json`, if any) for a file, a folder or a Hub id."""
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
            + [CONFIG_NAME],
        )
    except LocalEntryNotFoundError as err:
        raise ModelLoadError(
            f"{repo_id!r} is not a local path and the Hugging Face Hub cannot be reached "
            "(offline, and not in the local cache); pass a local path"
        ) from err
    except (HfHubHTTPError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"{repo_id!r} is neither a local path nor a Hub repo ({reason})"
        ) from err
    return _files_in_folder(Path(folder))


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


def config_from_checkpoint(
    state_dict: dict[str, torch.Tensor], config_file: Path | None, **overrides: Any
) -> GPTConfig:
    """Sizes from the checkpoint's `config.json`, else from tensor shapes; then `overrides`."""
    fields: dict[str, Any] = {}
    if config_file is not None:
        raw = read_json(config_file, "checkpoint configuration")
        if not isinstance(raw, dict):
            raise CheckpointError(f"{config_file}: expected a JSON object")
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


def _gpt2_to_gpt(key: str, tensor: torch.Tensor, cfg: GPTConfig) -> Iterator[tuple[str, Any]]:
    """Our key(s) and tensor(s) for one GPT-2 key, as (new key, tensor) pairs."""
    simple = {
        "wte.weight": "tok_emb.weight",
        "wpe.weight": "pos_emb.weight",
        "ln_f.weight": "final_norm.scale",
        "ln_f.bias": "final_norm.shift",
    }
    if key in simple:
        yield simple[key], tensor
        return
    m = re.match(r"h\.(\d+)\.(.+)$", key)
    if m is None:
        raise CheckpointError(f"unexpected key {key!r} in the GPT-2 checkpoint")
    block, rest = f"trf_blocks.{m.group(1)}", m.group(2)
    norms = {"ln_1": "norm1", "ln_2": "norm2"}
    linears = {
        "attn.c_proj": "att.out_proj",
        "mlp.c_fc": "ff.layers.0",
        "mlp.c_proj": "ff.layers.2",
    }
    module, _, param = rest.rpartition(".")
    if module in norms:
        yield f"{block}.{norms[module]}.{'scale' if param == 'weight' else 'shift'}", tensor
    elif module in linears:
        # Conv1D stores (in, out); nn.Linear wants (out, in).
        yield f"{block}.{linears[module]}.{param}", tensor.T if param == "weight" else tensor
    elif module == "attn.c_attn":
        # One fused projection -> W_query, W_key, W_value (book, listing 5.5).
        split_dim = -1
        if param == "weight" and tensor.shape[-1] % 3 != 0:
            raise CheckpointError(
                f"key {key!r}: shape {tuple(tensor.shape)} cannot be split into query, key and "
                f"value (expected ({cfg.emb_dim}, {3 * cfg.emb_dim}))"
            )
        for name, part in zip(
            ("W_query", "W_key", "W_value"), tensor.chunk(3, dim=split_dim), strict=True
        ):
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
            f"{missing[0]!r} (GPT-2 name {_gpt2_name(missing[0])!r})"
        )
    return converted


def _gpt2_name(key: str) -> str:
    """Best-effort GPT-2 key for one of ours, for error messages."""
    reverse = [
        (r"^tok_emb\.weight$", "wte.weight"),
        (r"^pos_emb\.weight$", "wpe.weight"),
        (r"^final_norm\.scale$", "ln_f.weight"),
        (r"^final_norm\.shift$", "ln_f.bias"),
        (r"^trf_blocks\.(\d+)\.norm1\.scale$", r"h.\1.ln_1.weight"),
        (r"^trf_blocks\.(\d+)\.norm1\.shift$", r"h.\1.ln_1.bias"),
        (r"^trf_blocks\.(\d+)\.norm2\.scale$", r"h.\1.ln_2.weight"),
        (r"^trf_blocks\.(\d+)\.norm2\.shift$", r"h.\1.ln_2.bias"),
        (r"^trf_blocks\.(\d+)\.att\.W_(query|key|value)\.(\w+)$", r"h.\1.attn.c_attn.\3"),
        (r"^trf_blocks\.(\d+)\.att\.out_proj\.(\w+)$", r"h.\1.attn.c_proj.\2"),
        (r"^trf_blocks\.(\d+)\.ff\.layers\.0\.(\w+)$", r"h.\1.mlp.c_fc.\2"),
        (r"^trf_blocks\.(\d+)\.ff\.layers\.2\.(\w+)$", r"h.\1.mlp.c_proj.\2"),
    ]
    for pattern, replacement in reverse:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return key


def load_openai_gpt2(
    model_cls: type[GPTPreTrainedModel],
    name_or_path: str | os.PathLike,
    config: GPTConfig | None = None,
    **config_overrides: Any,
) -> GPTPreTrainedModel:
    """`model_cls` (e.g. `GPTForSequenceClassification`) with GPT-2's weights in its trunk.

    Sizes come from the checkpoint (its `config.json`, else its tensor shapes) unless `config`
    is given; `config_overrides` set other fields, e.g. `num_labels=2`. Heads that GPT-2 lacks
    (the classifier's `out_head`) start fresh. Accepts a Hub id, a folder or a `.safetensors`
    file in either key layout.
    """
    files, config_file = resolve_checkpoint(name_or_path)
    state_dict = _read_tensors(files)
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
    return model.eval()


__all__ = [
    "CheckpointError",
    "config_from_checkpoint",
    "convert_gpt2_state_dict",
    "load_openai_gpt2",
    "resolve_checkpoint",
]
