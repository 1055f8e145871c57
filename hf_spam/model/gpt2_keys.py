"""GPT-2's key layout and the book's: the tables that name one in the other, and the mapping of
a GPT-2 state dict onto the book's `GPTModel` (renamed, `Conv1D` weights transposed, the fused
query/key/value projection split), checked key by key. `weights.py` reads checkpoints with it;
the native GPT-2 export maps back with `gpt2_key`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import CheckpointError
from .configuration import GPTConfig

#: Buffers of transformers' GPT-2 attention (the causal mask), not weights.
IGNORED_KEY = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")
#: GPT-2's `config.json` fields -> GPTConfig fields.
GPT2_CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "n_positions": "context_length",
    "n_embd": "emb_dim",
    "n_head": "n_heads",
    "n_layer": "n_layers",
    "layer_norm_epsilon": "layer_norm_eps",
}

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


def check_checkpoint_sizes(
    state_dict: dict[str, torch.Tensor], config: GPTConfig, where: str | os.PathLike
) -> None:
    """The config's vocabulary, width, context and depth must be the weights' (either key
    layout): a `config.json` that does not belong to its weights (say `n_layer: 100000`) would
    otherwise build the model it describes, however large, before the weights are compared."""
    bare = strip_prefix(state_dict)
    found: dict[str, int] = {}
    if "wte.weight" in bare:
        found["vocab_size"], found["emb_dim"] = bare["wte.weight"].shape
    if "wpe.weight" in bare:
        found["context_length"] = bare["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for key in bare if (m := re.match(r"h\.(\d+)\.", key))}
    if layers:
        found["n_layers"] = len(layers)
    theirs = {ours: name for name, ours in GPT2_CONFIG_FIELDS.items()}
    for key, value in found.items():
        if getattr(config, key) != value:
            raise CheckpointError(
                f"{where}: {theirs[key]} ({key}) is {getattr(config, key)!r} but the weights have "
                f"{value}; the config does not belong to these weights"
            )


def strip_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bare GPT-2 keys from either layout; drops the tied `lm_head` and the mask buffers."""
    out = {}
    for key, tensor in state_dict.items():
        bare = key.removeprefix("transformer.")
        if bare == "lm_head.weight" or IGNORED_KEY.match(bare):
            continue
        out[bare] = tensor
    return out


def _gpt2_to_book(key: str, tensor: torch.Tensor, cfg: GPTConfig) -> Iterator[tuple[str, Any]]:
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
        for new_key, new_tensor in _gpt2_to_book(key, tensor, config):
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


__all__ = [
    "BOOK_BLOCK",
    "BOOK_QKV",
    "GPT2_BLOCK",
    "GPT2_BLOCK_LINEARS",
    "GPT2_BLOCK_NORMS",
    "GPT2_CONFIG_FIELDS",
    "GPT2_FUSED_QKV",
    "GPT2_NORM_PARAMS",
    "GPT2_TOP_KEYS",
    "IGNORED_KEY",
    "check_checkpoint_sizes",
    "convert_gpt2_state_dict",
    "gpt2_key",
    "strip_prefix",
]
