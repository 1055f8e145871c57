"""The GPT of *Build a Large Language Model (From Scratch)*, chapters 3-6, as a transformers model.

Read top to bottom it is the book's architecture with the book's names (`tok_emb`, `pos_emb`,
`trf_blocks`, `final_norm`, `W_query`, `out_head`), plus what a `PreTrainedModel` needs to work
with `Trainer`, `pipeline()`, `generate()` and the Hub:

* attention goes through `torch.nn.functional.scaled_dot_product_attention`, honours an
  `attention_mask`, and reads position ids from that mask, so left- and right-padded batches give
  the same numbers;
* the classification head reads the *last real token*, found from the mask: GPT-2 pads with its
  end-of-text token, which may also occur inside a text, so the pad id cannot tell; the book's
  other readings (`trainable_token_pos` `last` / `first`, `average_embeddings`) and its
  `disable_causal_mask` are configuration fields, so a saved model reads as it was trained;
* `GPTForCausalLM` keeps a key/value cache so `generate()` is incremental;
* transformers' output conventions: `return_dict=False` (or `config.return_dict`) gives tuples,
  `output_hidden_states` / `output_attentions` (arguments or configuration) add every block's
  states and attention weights, and each block can be recomputed in the backward pass
  (`gradient_checkpointing_enable()`, `--gradient_checkpointing`).

This file imports only torch, transformers and `.configuration`: it is the code that travels to
the Hub for `trust_remote_code=True`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg

from .configuration import GPTConfig

# transformers 5.24 renamed the key/value cache from `past_key_values` to `cache`, in model
# outputs and in what `generate()` passes to `forward`; this file speaks whichever is installed.
CACHE_FIELD = (
    "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"
)


def _cache_argument(cache: Cache | None, kwargs: dict[str, Any]) -> Cache | None:
    """The key/value cache, whether the caller called it `cache` or `past_key_values`."""
    legacy = kwargs.pop("past_key_values", None)
    return cache if cache is not None else legacy


def _renamed_cache_argument(forward):
    """transformers' own deprecation of `past_key_values=` (a warning, then renamed to `cache`),
    where `cache` is the name; older versions pass `past_key_values` and get no warning."""
    if CACHE_FIELD != "cache":
        return forward
    return deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")(forward)


def is_exporting() -> bool:
    """Whether this call is being compiled, exported or traced rather than run.

    A graph cannot keep a Python decision taken on tensor values (the length of the longest
    row, whether a batch is padded), so the models then take their exportable path: one padded
    pass, masks as tensors (see `GPTPreTrainedModel.exportable_forward`)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


class LayerNorm(nn.Module):
    """Layer normalisation with the book's trainable `scale` and `shift`."""

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same maths as the book's mean/var formula, in one fused kernel.
        return F.layer_norm(x, x.shape[-1:], self.scale, self.shift, self.eps)


class GELU(nn.Module):
    """GELU with the tanh approximation GPT-2 was trained with.

    In 16-bit formats the exact (erf) GELU is used instead: the two differ by at most 5e-4,
    below what bf16/fp16 can resolve at those magnitudes, and PyTorch's CPU kernel for the
    exact form is the faster one in those formats.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh" if x.element_size() >= 4 else "none")


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def book_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool = False,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's attention (chapter 3): scaled dot products, masked, softmax, dropout.

    transformers' calling convention for an attention function (`AttentionInterface`), so that
    `attn_implementation="eager"` is this one and `"sdpa"` (or any registered kernel) replaces it
    at run time. Returns the context `(b, queries, heads, head_dim)` and the weights.
    """
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = (query @ key.transpose(2, 3)) * scaling
    if is_causal:
        attention_mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device)
        attention_mask = attention_mask.tril()
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, -torch.inf)
    # Softmax in fp32, as transformers' eager attention: exp and sum lose precision in 16 bits.
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, dropout, module.training)
    return (weights @ value).transpose(1, 2).contiguous(), weights


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention (chapter 3), by the function `attn_implementation` names.

    The attention function comes from transformers' `AttentionInterface`: `sdpa` (the default,
    `torch.nn.functional.scaled_dot_product_attention`), `eager` (the book's own formulation,
    `book_attention`) or any other registered one, so `model.set_attn_implementation(...)`
    switches it at run time. The book's formulation also runs when the caller asks for the
    attention weights, which SDPA does not return. With `disable_causal_mask` (the book's bonus
    experiment) every token sees every other one.
    """

    def __init__(self, cfg: GPTConfig, layer_idx: int = 0):
        super().__init__()
        self.config = cfg
        d_out = cfg.emb_dim
        self.num_heads = cfg.n_heads
        self.head_dim = d_out // cfg.n_heads
        self.layer_idx = layer_idx
        self.W_query = nn.Linear(cfg.emb_dim, d_out, bias=cfg.qkv_bias)
        self.W_key = nn.Linear(cfg.emb_dim, d_out, bias=cfg.qkv_bias)
        self.W_value = nn.Linear(cfg.emb_dim, d_out, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = cfg.drop_rate
        self.causal = not cfg.disable_causal_mask
        self.is_causal = self.causal  # what transformers' attention functions read

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        query_index: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention of `x`, and the attention weights `(b, heads, queries, keys)` if asked.

        With `query_index` (one position per row) only that position asks, which is all a
        classifier needs from the last block."""
        b, num_tokens, _ = x.shape

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            # (b, tokens, d_out) -> (b, num_heads, tokens, head_dim)
            return t.view(b, t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        x_query = x if query_index is None else x[torch.arange(b), query_index].unsqueeze(1)
        queries = split_heads(self.W_query(x_query))
        keys = split_heads(self.W_key(x))
        values = split_heads(self.W_value(x))
        if cache is not None:
            keys, values = cache.update(keys, values, self.layer_idx)

        # No explicit mask (no padding, no cache): the causal triangle, SDPA's fastest kernel.
        is_causal = self.causal and attn_mask is None and queries.shape[2] > 1
        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, book_attention)
        context, weights = attention(
            self,
            queries,
            keys,
            values,
            attn_mask,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.head_dim**-0.5,
            is_causal=is_causal,
        )
        context = context.reshape(b, queries.shape[2], -1)
        return self.out_proj(context), weights if output_attentions else None


class TransformerBlock(GradientCheckpointingLayer):
    """Pre-norm block: x + att(norm1(x)), then x + ff(norm2(x)) (chapter 4).

    A `GradientCheckpointingLayer`: once checkpointing is enabled, training keeps only the
    block's inputs and recomputes the rest in the backward pass. Hidden states go in positionally
    (reentrant checkpointing needs it), the cache by keyword: the layer drops it while
    checkpointing, as a recomputation would write it twice.
    """

    def __init__(self, cfg: GPTConfig, layer_idx: int = 0):
        super().__init__()
        self.att = MultiHeadAttention(cfg, layer_idx)
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim, cfg.layer_norm_eps)
        self.norm2 = LayerNorm(cfg.emb_dim, cfg.layer_norm_eps)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        query_index: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's output at every position, or only at `query_index` (shape (b, 1, emb)),
        and its attention weights if asked."""
        shortcut = x if query_index is None else x[torch.arange(x.shape[0]), query_index]
        if query_index is not None:
            shortcut = shortcut.unsqueeze(1)
        attended, weights = self.att(
            self.norm1(x), attn_mask, cache, query_index, output_attentions
        )
        x = shortcut + self.drop_shortcut(attended)
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x, weights


def _is_checkpointing(blocks: nn.ModuleList) -> bool:
    """Whether the first of `blocks`, run now, will be recomputed in the backward pass (the
    test `GradientCheckpointingLayer` applies)."""
    return (
        len(blocks) > 0
        and blocks[0].gradient_checkpointing
        and blocks[0].training
        and torch.is_grad_enabled()
    )


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of each token among the real tokens of its row (padding counts no positions).

    Left padding then shifts nothing: the first real token is at position 0 either way.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def right_padding(attention_mask: torch.Tensor) -> torch.Tensor:
    """Whether every row is its real tokens followed by padding only, as a 0-d bool tensor."""
    mask = attention_mask.bool()
    # Compared with the first `count` positions of each row, not with shifted copies of the
    # mask: the shifted copies' lengths (n - 1) would pin an exported graph's sequence length.
    positions = torch.arange(mask.shape[-1], device=mask.device)
    return (mask == (positions < mask.sum(-1, keepdim=True))).all()


def is_right_padded(attention_mask: torch.Tensor) -> bool:
    """`right_padding` as a Python bool (a host synchronisation)."""
    return bool(right_padding(attention_mask))


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row, for left or right padding."""
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask.bool()).argmax(-1)


def build_attention_mask(
    attention_mask: torch.Tensor, query_length: int, causal: bool = True
) -> torch.Tensor:
    """Boolean SDPA mask `(b, 1, queries, keys)` from a 2-D padding mask over cached + new tokens.

    A query sees a key when the key is a real token and, if `causal`, not in its future. Each
    query also sees itself, so rows of padding queries never turn into NaNs (their outputs are
    ignored).
    Boolean, so it suits any compute dtype (fp32, bf16 autocast).
    """
    key_length = attention_mask.shape[-1]
    device = attention_mask.device
    query_pos = torch.arange(key_length - query_length, key_length, device=device)[:, None]
    key_pos = torch.arange(key_length, device=device)[None, :]
    allowed = attention_mask.bool()[:, None, None, :]
    if causal:
        allowed = allowed & (key_pos <= query_pos)
    return allowed | (key_pos == query_pos)


def full_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A caller's 4-D mask `(b, 1 or heads, queries, keys)` as this model's boolean one.

    transformers builds them (`generate()` with a static cache, bidirectional masks): boolean
    (True attends) or additive floats (0 attends). A query that may see no key at all (padding
    in front of a text) sees every key instead, so neither attention function turns it into NaNs
    (its output is ignored)."""
    allowed = attention_mask if attention_mask.dtype == torch.bool else attention_mask == 0
    return allowed | ~allowed.any(-1, keepdim=True)


def padding_as_tensors(
    attention_mask: torch.Tensor, query_length: int, causal: bool, from_start: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask and position ids of any 2-D padding mask, by tensor operations alone.

    A right-padded row read causally from the start (`from_start`) needs no padding mask: it
    is read as the causal triangle over positions 0..n-1, padding positions included, as when
    the whole batch is right-padded (`GPTModel` then passes no mask at all). Each row is read
    on its own that way, so a row's outputs, at padding positions too, do not depend on the
    other rows of its batch.
    """
    mask = build_attention_mask(attention_mask, query_length, causal)
    positions = position_ids_from_attention_mask(attention_mask)[:, -query_length:]
    if causal and from_start:
        real = attention_mask.bool()
        in_order = torch.arange(real.shape[-1], device=real.device)
        right = (real == (in_order < real.sum(-1, keepdim=True))).all(-1)  # per row
        triangle = build_attention_mask(torch.ones_like(attention_mask), query_length, causal)
        row = right[:, None, None, None]
        mask = (triangle & row) | (mask & ~row)  # onnxruntime has no boolean `Where`
        positions = torch.where(right[:, None], in_order, positions)  # queries = keys here
    return mask, positions


def pad_right_to(
    inputs: torch.Tensor, attention_mask: torch.Tensor, length: int, fill: int
) -> torch.Tensor:
    """Each row's real tokens first, cut or padded with `fill` to `length` (the book's rows).

    A scatter to each real token's rank among its row's real tokens: shapes follow `length`, not
    the data, so it suits an exported graph too. Tokens past `length` go to columns of their
    own beyond it, which are cut."""
    real = attention_mask.bool()
    rank = real.long().cumsum(-1) - 1
    beyond = length + torch.arange(inputs.shape[1], device=inputs.device)
    target = torch.where(real & (rank < length), rank, beyond)
    rows = inputs.new_full((inputs.shape[0], length + inputs.shape[1]), fill)
    return rows.scatter(1, target, inputs)[:, :length]


def pack_right(
    inputs: torch.Tensor, attention_mask: torch.Tensor, max_length: int, fill: int | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real tokens to the front, keep at most `max_length` of them.

    Works for token ids `(b, t)` and hidden states `(b, t, emb)`; left and right padding give
    the same packed batch. Truncation keeps the first tokens, as the data pipeline does.
    """
    real = attention_mask.bool()
    # Stable sort puts real positions first, in their original order.
    order = torch.sort((~real).to(torch.int8), dim=1, stable=True).indices[:, :max_length]
    lengths = real.sum(-1).clamp(max=max_length)
    width = max(int(lengths.max()), 1) if lengths.numel() else 1
    order = order[:, :width]
    mask = torch.arange(width, device=order.device)[None, :] < lengths[:, None]
    index = order if inputs.dim() == 2 else order[..., None].expand(-1, -1, inputs.shape[-1])
    packed = torch.gather(inputs, 1, index)
    if inputs.dim() == 2:
        packed = packed.masked_fill(~mask, fill)
    return packed, mask.long()


def length_buckets(
    lengths: list[int], max_waste: float = 0.25, max_tokens: int = 8192
) -> list[list[int]]:
    """Rows grouped by length so that padding adds at most ~`max_waste` of the real tokens.

    A batch of texts of mixed lengths then costs about what its real tokens cost: each group is
    run padded only to its own longest row. Groups stay under `max_tokens` padded tokens, which
    bounds memory and is still large enough for efficient matrix products.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    buckets: list[list[int]] = []
    current: list[int] = []
    real = 0
    for row in order:
        width = max(lengths[row], 1)
        padded = (len(current) + 1) * width
        if current and (padded > max_tokens or padded > (1 + max_waste) * (real + width)):
            buckets.append(current)
            current, real = [], 0
        current.append(row)
        real += width
    if current:
        buckets.append(current)
    return buckets


class GPTPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the hooks transformers needs; see the heads below."""

    config_class = GPTConfig
    config: GPTConfig
    base_model_prefix = "gpt"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerBlock"]
    _supports_sdpa = True
    _skip_keys_device_placement = [CACHE_FIELD]
    # Losses are means over the batch; `Trainer` must not rescale them as token sums.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # transformers' `init` functions skip tensors already loaded from a checkpoint.
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, LayerNorm):
            init.ones_(module.scale)
            init.zeros_(module.shift)
        if isinstance(module, (MultiHeadAttention, FeedForward)):
            # GPT-2's scaled init of the projections that feed the residual stream.
            out = module.out_proj if isinstance(module, MultiHeadAttention) else module.layers[2]
            init.normal_(out.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layers))

    def save_pretrained(self, save_directory: str | Any, *args: Any, **kwargs: Any) -> None:
        """transformers' save; `auto_map` also names `GPTModel` for `AutoModel` (transformers
        names only the saved class's own Auto class), so the trunk of any saved head loads with
        `AutoModel.from_pretrained(folder, trust_remote_code=True)`."""
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            auto_map = getattr(self.config, "auto_map", None) or {}
            self.config.auto_map = {**auto_map, "AutoModel": f"{module}.GPTModel"}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def output_flags(
        self, output_attentions: bool | None, output_hidden_states: bool | None
    ) -> tuple[bool, bool]:
        """What to return besides the result: the caller's choice, else the configuration's."""
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return bool(output_attentions), bool(output_hidden_states)

    def exportable_forward(self) -> bool:
        """Whether to run the exportable path: one padded pass over the batch as given, its
        masks and the head's positions as tensors, no host synchronisation and no shape that
        depends on the data. The same logits; the default path instead skips the work on
        padding, which needs the lengths on the host. Taken when compiled, exported or traced
        (`is_exporting`), or always with `config.exportable`."""
        return bool(getattr(self.config, "exportable", False)) or is_exporting()


class GPTModel(GPTPreTrainedModel):
    """Embeddings, transformer blocks and the final norm: hidden states for any head."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.tok_emb = nn.Embedding(config.vocab_size, config.emb_dim)
        self.pos_emb = nn.Embedding(config.context_length, config.emb_dim)
        self.drop_emb = nn.Dropout(config.drop_rate)
        self.trf_blocks = nn.ModuleList(
            [TransformerBlock(config, layer_idx=i) for i in range(config.n_layers)]
        )
        self.final_norm = LayerNorm(config.emb_dim, config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.tok_emb

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.tok_emb = value

    @can_return_tuple
    @_renamed_cache_argument
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        block_inputs: torch.Tensor | None = None,
        start_block: int = 0,
        stop_block: int | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        r"""
        output_hidden_states: as GPT-2's: the embeddings' output, then each block's output, the
            last one after `final_norm` (= `last_hidden_state`).
        output_attentions: each block's attention weights `(batch, heads, queries, keys)`.
        block_inputs (`torch.Tensor` of shape `(batch, num_tokens, emb_dim)`, *optional*):
            Hidden states entering block `start_block`, computed earlier (e.g. the output of a
            frozen trunk, cached across epochs); replaces `input_ids` and the embeddings.
        start_block / stop_block (`int`, *optional*):
            Run only blocks `start_block .. stop_block - 1`. With `stop_block` set, the result is
            the raw input of block `stop_block` (no final norm): the value to cache.
        """
        output_attentions, output_hidden_states = self.output_flags(
            output_attentions, output_hidden_states
        )
        cache = _cache_argument(cache, kwargs)
        given = [t for t in (input_ids, inputs_embeds, block_inputs) if t is not None]
        if len(given) != 1:
            raise ValueError("Pass exactly one of input_ids, inputs_embeds or block_inputs")
        batch_size, num_tokens = given[0].shape[:2]
        device = given[0].device
        past_length = cache.get_seq_length() if cache is not None else 0
        total_length = past_length + num_tokens
        if total_length > self.config.context_length:
            raise ValueError(
                f"Sequence of {total_length} tokens is longer than the model's context_length "
                f"({self.config.context_length}); truncate the input"
            )
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        attn_mask, mask_positions = self.attention_inputs(
            attention_mask, batch_size, num_tokens, past_length, device
        )
        if block_inputs is not None:
            x = block_inputs
            if _is_checkpointing(self.trf_blocks[start_block:]) and not x.requires_grad:
                # Reentrant checkpointing back-propagates into a block only through an input
                # that requires grad. These states stand in for the embeddings, whose output
                # `enable_input_require_grads()` makes require grad for that reason; the block
                # reading them may also be run by the head (`_state_at`).
                x = x.detach().requires_grad_()
        else:
            if position_ids is None:
                position_ids = mask_positions
            if position_ids is None:
                position_ids = torch.arange(past_length, total_length, device=device)
                position_ids = position_ids.unsqueeze(0)
            tok_embeds = self.tok_emb(input_ids) if inputs_embeds is None else inputs_embeds
            x = self.drop_emb(tok_embeds + self.pos_emb(position_ids))

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for block in self.trf_blocks[start_block:stop_block]:
            if output_hidden_states:
                all_hidden_states += (x,)
            x, weights = block(
                x,
                attn_mask,
                cache=cache if use_cache else None,
                output_attentions=output_attentions,
            )
            if output_attentions:
                all_attentions += (weights,)
        if stop_block is None:
            x = self.final_norm(x)
        if output_hidden_states:
            all_hidden_states += (x,)

        return BaseModelOutputWithPast(
            last_hidden_state=x,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            **{CACHE_FIELD: cache if use_cache else None},
        )

    def attention_inputs(
        self,
        attention_mask: torch.Tensor | None,
        batch_size: int,
        num_tokens: int,
        past_length: int,
        device: torch.device,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The blocks' attention mask (None: the causal triangle or nothing hidden) and the
        position ids the padding implies (None: 0..n-1 after the cached tokens)."""
        causal = not self.config.disable_causal_mask
        total_length = past_length + num_tokens
        if attention_mask is not None and attention_mask.dim() == 4:
            return full_attention_mask(attention_mask), None
        if self.exportable_forward():
            if attention_mask is None:
                attention_mask = torch.ones(batch_size, total_length, device=device)
            return padding_as_tensors(attention_mask, num_tokens, causal, past_length == 0)
        padded = attention_mask is not None and not bool(attention_mask.bool().all())
        if padded and causal and past_length == 0 and is_right_padded(attention_mask):
            # Real tokens never look right, so the causal mask alone hides right padding:
            # SDPA's fused causal kernel, and positions 0..n-1 are the real tokens' positions.
            padded = False
        if padded:
            return padding_as_tensors(attention_mask, num_tokens, causal, past_length == 0)
        attn_mask = None
        if causal and past_length > 0 and num_tokens > 1:
            if attention_mask is None:
                attention_mask = torch.ones(batch_size, total_length, device=device)
            attn_mask = build_attention_mask(attention_mask, num_tokens, causal)
        return attn_mask, None


class GPTForCausalLM(GPTPreTrainedModel, GenerationMixin):
    """The book's `GPTModel` with its `out_head` over the vocabulary, tied to `tok_emb`."""

    _tied_weights_keys = {"out_head.weight": "gpt.tok_emb.weight"}

    def __init__(self, config: GPTConfig):
        if config.disable_causal_mask:  # each position would see the token it has to predict
            raise ValueError("GPTForCausalLM needs the causal mask: disable_causal_mask=True")
        super().__init__(config)
        self.gpt = GPTModel(config)
        self.out_head = nn.Linear(config.emb_dim, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.out_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.out_head = value

    @can_return_tuple
    @_renamed_cache_argument
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        shift_labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        r"""
        labels: the tokens themselves; shifted here, position t predicts token t + 1 (chapter 5).
        shift_labels: targets already aligned with the logits (transformers' convention when a
            sequence is split across devices, where the shift must come first); replace `labels`.
        """
        outputs = self.gpt(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            cache=_cache_argument(cache, kwargs),
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.out_head(outputs.last_hidden_state)
        loss = None
        if labels is not None or shift_labels is not None:
            # transformers' causal-LM loss (fp32, -100 ignored), a mean over the targets.
            loss = self.loss_function(
                logits, labels, vocab_size=self.config.vocab_size, shift_labels=shift_labels
            )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
        )


class GPTForSequenceClassification(GPTPreTrainedModel):
    """The chapter 6 classifier: a fresh `out_head` over one position's final-norm state.

    Which state reaches the head is the configuration's `trainable_token_pos` (the names of the
    book's `additional_experiments.py`):

    * `flexible` (default): the last real token, found from the attention mask; padding is
      invisible, so left, right or no padding give the same logits. Only that token's state is
      needed, so the last block computes its output for that token alone, and a batch of mixed
      lengths runs as groups of similar length: padding costs almost nothing.
    * `last` / `first`: position -1 / 0 of each row as the book feeds it: no padding mask,
      positions 0..n-1 over the whole row, the padding read as ordinary tokens. With
      `padded_length` set each row is first rebuilt as the book's dataset builds it (its real
      tokens, then `pad_token_id` up to that length), so every caller gets the trained reading.

    `average_embeddings` reads the mean over positions instead (every position of the row for
    `last` / `first`, as the book; the real tokens for `flexible`). Inputs longer than the context
    are cut to their first `context_length` tokens, as the data pipeline does; an empty input
    reads as the single end-of-text token.
    """

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.gpt = GPTModel(config)
        self.out_head = nn.Linear(config.emb_dim, config.num_labels)
        # Last-token final block + length buckets; False runs every position (for comparison).
        self.skip_padding_work = True
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        block_inputs: torch.Tensor | None = None,
        start_block: int = 0,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        r"""
        block_inputs, start_block: resume from cached hidden states, see `GPTModel.forward`.
            For `last` / `first` they are the states of the rows `trunk_inputs` gives.
        output_attentions, output_hidden_states: as `GPTModel`'s, for the rows the trunk reads
            (`trunk_inputs`); asking for them runs every position.
        """
        output_attentions, output_hidden_states = self.output_flags(
            output_attentions, output_hidden_states
        )
        if input_ids is not None and input_ids.shape[1] == 0:
            input_ids = input_ids.new_full((input_ids.shape[0], 1), self._end_of_text_id())
            attention_mask = None
        if input_ids is not None:
            input_ids, attention_mask = self.trunk_inputs(input_ids, attention_mask)
        elif self.config.trainable_token_pos != "flexible":
            attention_mask = None  # the book passes no padding mask
        every_position = (
            position_ids is not None
            or inputs_embeds is not None
            or output_hidden_states
            or output_attentions
            or self.config.average_embeddings
            or not self.skip_padding_work
        )
        outputs = None
        if every_position:
            outputs = self.gpt(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                block_inputs=block_inputs,
                start_block=start_block,
                return_dict=True,
            )
            pooled = self.pool(outputs.last_hidden_state, attention_mask)
        elif self.config.trainable_token_pos == "flexible":
            pooled = self.pooled_states(input_ids, attention_mask, block_inputs, start_block)
        else:
            pooled = self.book_position_state(input_ids, block_inputs, start_block)
        logits = self.out_head(pooled)
        loss = None
        if labels is not None:
            # transformers' loss by `problem_type` (inferred from the labels if unset), in fp32.
            loss = self.loss_function(
                labels=labels, pooled_logits=logits.float(), config=self.config
            )
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states if outputs is not None else None,
            attentions=outputs.attentions if outputs is not None else None,
        )

    def trunk_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids and padding mask as this head's trunk sees them.

        `flexible`: unchanged. `last` / `first`: the book's rows and no mask; with
        `padded_length`, each row's real tokens cut to it and padded with `pad_token_id` on
        the right (the book's `SpamDataset`), else the rows as given, cut to the context.
        A cache of trunk states for `block_inputs` must be computed from these.
        """
        if self.config.trainable_token_pos == "flexible":
            return input_ids, attention_mask
        length = self.config.padded_length
        if length is None:
            return input_ids[:, : self.config.context_length], None
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return pad_right_to(input_ids, attention_mask, length, self.config.pad_token_id), None

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The state the head reads from final-norm states `(batch, tokens, emb)` at every
        position (`attention_mask` only for `flexible`)."""
        position = self.config.trainable_token_pos
        if position == "flexible" and attention_mask is not None:
            if self.config.average_embeddings:
                weights = attention_mask.to(hidden.dtype)[..., None]
                return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            return hidden[torch.arange(hidden.shape[0]), last_token_index(attention_mask)]
        if self.config.average_embeddings:
            # The book averages the head's logits over positions; the head is affine, so
            # averaging the states first is the same.
            return hidden.mean(1)
        return hidden[:, 0] if position == "first" else hidden[:, -1]

    def book_position_state(
        self, input_ids: torch.Tensor | None, block_inputs: torch.Tensor | None, start_block: int
    ) -> torch.Tensor:
        """Final-norm state at position -1 (`last`) or 0 (`first`) of each row as given."""
        x = input_ids if block_inputs is None else block_inputs
        if x is None:
            raise ValueError("Pass input_ids or block_inputs")
        first = self.config.trainable_token_pos == "first"
        if first and not self.config.disable_causal_mask:
            x = x[:, :1]  # under the causal mask position 0 sees only itself
        index = torch.full((x.shape[0],), 0 if first else x.shape[1] - 1, device=x.device)
        return self.gpt.final_norm(self._state_at(x, None, index, start_block))

    def pooled_states(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        block_inputs: torch.Tensor | None = None,
        start_block: int = 0,
    ) -> torch.Tensor:
        """Final-norm state of each row's last real token, `(batch, emb_dim)`."""
        x = input_ids if block_inputs is None else block_inputs
        if x is None:
            raise ValueError("Pass input_ids or block_inputs")
        if x.shape[1] == 0:  # empty texts: read the end-of-text token instead
            fill = 0.0 if x.is_floating_point() else self._end_of_text_id()
            x = x.new_full((x.shape[0], 1, *x.shape[2:]), fill)
            attention_mask = None
        if attention_mask is None:
            attention_mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        if self.exportable_forward():
            return self.padded_pass_state(x, attention_mask, start_block)
        # Packed padding is never attended to nor read, but it is embedded: 0 is in any vocabulary.
        x, mask = pack_right(x, attention_mask, self.config.context_length, 0)
        no_real_token = mask[:, 0] == 0
        if not x.is_floating_point() and bool(no_real_token.any()):
            x[no_real_token, 0] = self._end_of_text_id()
        mask[:, 0] = 1  # a row with no real token keeps its first (end-of-text) one
        lengths = mask.sum(-1)
        parts, rows_in_order = [], []
        for rows in length_buckets(lengths.tolist()):
            index = torch.tensor(rows, device=x.device)
            width = int(lengths[index].max())
            part_mask = mask[index, :width]
            last = part_mask.sum(-1) - 1
            parts.append(self._state_at(x[index, :width], part_mask, last, start_block))
            rows_in_order.append(index)
        inverse = torch.argsort(torch.cat(rows_in_order))
        return self.gpt.final_norm(torch.cat(parts)[inverse])

    def padded_pass_state(
        self, x: torch.Tensor, attention_mask: torch.Tensor, start_block: int
    ) -> torch.Tensor:
        """`pooled_states` as one pass over the batch as given, for a graph: no packing, no
        length groups, the last real token gathered by index. A row without a real token reads
        as the end-of-text token alone, as there; rows are cut to the context's first columns
        (the same tokens as there for right padding)."""
        x = x[:, : self.config.context_length]
        mask = attention_mask[:, : self.config.context_length].long()
        first = torch.arange(mask.shape[1], device=mask.device) == 0
        stand_in = first & (mask.sum(-1, keepdim=True) == 0)  # column 0 of rows with no token
        mask = mask.masked_fill(stand_in, 1)
        if not x.is_floating_point():
            x = x.masked_fill(stand_in, self._end_of_text_id())
        last = last_token_index(mask)
        return self.gpt.final_norm(self._state_at(x, mask, last, start_block))

    def _end_of_text_id(self) -> int:
        """The token an empty text reads as: end-of-text, or 0 if the vocabulary lacks it."""
        for token in (self.config.eos_token_id, self.config.pad_token_id):
            if isinstance(token, int) and 0 <= token < self.config.vocab_size:
                return token
        return 0

    def _state_at(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        index: torch.Tensor,
        start_block: int,
    ) -> torch.Tensor:
        """Run the rows (ids or block inputs); the last block only at position `index` of each
        row. `mask` (rows packed to the right) hides padding; None: every position is a token."""
        n_layers = self.config.n_layers
        if start_block >= n_layers:  # the cache already holds the blocks' output
            return x[torch.arange(x.shape[0]), index]
        padded = mask is not None and (self.exportable_forward() or not bool(mask.all()))
        inputs = {"block_inputs": x} if x.is_floating_point() else {"input_ids": x}
        hidden = self.gpt(
            **inputs,
            attention_mask=mask if padded else None,
            start_block=start_block,
            stop_block=n_layers - 1,
            return_dict=True,
        ).last_hidden_state
        # One query per row; keys are that row's tokens (its real ones when padded).
        key_mask = mask.bool()[:, None, None, :] if padded else None
        state, _ = self.gpt.trf_blocks[-1](hidden, key_mask, query_index=index)
        return state.squeeze(1)


__all__ = [
    "GPTForCausalLM",
    "GPTForSequenceClassification",
    "GPTModel",
    "GPTPreTrainedModel",
]
