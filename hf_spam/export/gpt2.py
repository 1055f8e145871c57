"""A trained hf_spam classifier as transformers' own `GPT2ForSequenceClassification`.

The book's GPT is GPT-2 with other names, so its weights map back onto GPT-2's keys (the tables
of `model/weights.py`, read the other way: `nn.Linear` transposed to `Conv1D`, the three
query/key/value projections fused in `c_attn`). Two things differ and are reconciled exactly:

* GPT-2's `score` has no bias, the book's `out_head` has one. With `W` the head's weight and `b`
  its bias, adding `d = pinv(W) @ b` to the final norm's shift gives `W (h + d) = W h + b`
  whenever `W` has full row rank (`W pinv(W) = I`); a `temperature` divides `W` and `b` alike.
* GPT-2's head reads the last token that is not `pad_token_id`, the book's the last real token
  of the attention mask: they agree when the pad id is one the tokenizer never gives for text.

What GPT-2's head cannot express is refused: reading a fixed row position (`last` / `first`),
the mean over positions, attention without the causal mask, a pad id that text can produce, a
decision threshold. The exported model is compared with the original on padded probe batches
before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..files import atomic_output_dir, writing
from ..model.gpt2_keys import (
    BOOK_QKV,
    GPT2_BLOCK_LINEARS,
    GPT2_CONFIG_FIELDS,
    GPT2_FUSED_QKV,
    gpt2_key,
)
from ..model.modeling import position_ids_from_attention_mask
from ..model.weights import SCORE_KEY
from .source import ExportError, load_source, padded, probe_rows, worst_difference, write_card_note

#: The largest difference of logits (relative to 1 + their size) the export may add.
TOLERANCE = 1e-4
#: A literal end-of-text in user text: the tokenizer must keep it as text.
END_OF_TEXT_PROBE = "call now <|endoftext|>"
GPT2_USAGE = """
from transformers import pipeline

classifier = pipeline("text-classification", model="{folder}")  # no remote code
classifier("WIN a free prize, call now", top_k=None)
"""


def refusal(config: Any) -> str | None:
    """Why GPT-2's head cannot read as this model does, naming the setting; None if it can."""
    position = config.trainable_token_pos
    if position != "flexible":
        return (
            f"trainable_token_pos={position}: the model reads row position "
            f"{'-1' if position == 'last' else '0'} with the padding as tokens; GPT-2's head reads "
            "each row's last token that is not padding"
        )
    if config.average_embeddings:
        return "average_embeddings=true: the model reads the mean over positions; GPT-2's head reads one token"
    if config.disable_causal_mask:
        return "disable_causal_mask=true: GPT-2's attention is always causal"
    threshold = getattr(config, "decision_threshold", None)
    if threshold is not None:
        return (
            f"decision_threshold={threshold}: pipeline() predicts GPT-2's best-scoring class, "
            "with no threshold"
        )
    return None


def check_pad_id(tokenizer: Any, path: Path) -> int:
    """The pad id GPT-2's head skips: the tokenizer's, refused if text can produce it (a literal
    '<|endoftext|>' read as the end-of-text token would look like padding to GPT-2's head, where
    the model reads it)."""
    pad_id = tokenizer.pad_token_id
    ids = tokenizer(END_OF_TEXT_PROBE)["input_ids"]
    if pad_id in ids:
        token = tokenizer.convert_ids_to_tokens(pad_id)
        raise UsageError(
            f"{path / 'tokenizer_config.json'}: the text {END_OF_TEXT_PROBE!r} ends in token "
            f"{pad_id} ({token}), the pad id: GPT-2's head would skip it as padding where "
            "this model reads it (save the tokenizer with split_special_tokens=True)"
        )
    return pad_id


def gpt2_config(config: Any, pad_id: int) -> Any:
    """transformers' `GPT2Config` of the same shape, labels and problem type."""
    from transformers import GPT2Config

    sizes = {theirs: getattr(config, ours) for theirs, ours in GPT2_CONFIG_FIELDS.items()}
    dropout = {name: config.drop_rate for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    return GPT2Config(
        **sizes,
        **dropout,
        activation_function="gelu_new",  # the tanh GELU of the book and of GPT-2
        initializer_range=config.initializer_range,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=pad_id,
        id2label=dict(config.id2label),
        label2id=dict(config.label2id),
        problem_type=config.problem_type,
        architectures=["GPT2ForSequenceClassification"],
    )


def folded_head(model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """`score.weight`, and the shift to add to the final norm so that `score` without a bias
    gives the head's logits: `pinv(W) @ b`, refused unless `W` has full row rank."""
    temperature = float(getattr(model.config, "temperature", 1.0) or 1.0)
    weight = model.out_head.weight.detach().double() / temperature
    bias = model.out_head.bias.detach().double() / temperature
    # Rank at the precision the weights were stored in: fp32 rounding must not count as rank.
    rtol = max(weight.shape) * torch.finfo(torch.float32).eps
    rank = int(torch.linalg.matrix_rank(weight, rtol=rtol))
    if rank < weight.shape[0]:
        raise UsageError(
            f"out_head.weight has rank {rank} < {weight.shape[0]} classes: its bias cannot be "
            "folded into ln_f.bias (GPT-2's score layer has no bias)"
        )
    shift = torch.linalg.pinv(weight) @ bias
    residual = float((weight @ shift - bias).abs().max())
    if residual > TOLERANCE * (1 + float(bias.abs().max())):
        raise UsageError(
            f"out_head: its bias folded into ln_f.bias is off by {residual:.2e} "
            "(out_head.weight is too close to rank-deficient); GPT-2's score layer has no bias"
        )
    return weight.float(), shift.float()


def gpt2_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The classifier's weights under GPT-2's keys (`transformer.`-prefixed, `score.weight`)."""
    linears = set(GPT2_BLOCK_LINEARS) | {GPT2_FUSED_QKV}
    state: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in model.gpt.state_dict().items():
        theirs = gpt2_key(key)
        module, _, param = theirs.rpartition(".")
        if re.sub(r"^h\.\d+\.", "", module) == GPT2_FUSED_QKV:
            projection = key.split(".")[-2]  # W_query, W_key or W_value
            qkv.setdefault(theirs, {})[projection] = tensor
            continue
        linear = re.sub(r"^h\.\d+\.", "", module) in linears
        state[theirs] = tensor.T if linear and param == "weight" else tensor
    for theirs, parts in qkv.items():
        fused = torch.cat([parts[name] for name in BOOK_QKV], dim=0)
        state[theirs] = fused.T if theirs.endswith(".weight") else fused
    if not model.config.qkv_bias:  # GPT-2's c_attn always has one
        for block in range(model.config.n_layers):
            state[f"h.{block}.{GPT2_FUSED_QKV}.bias"] = torch.zeros(3 * model.config.emb_dim)
    weight, shift = folded_head(model)
    state["ln_f.bias"] = state["ln_f.bias"] + shift
    state = {f"transformer.{key}": value.contiguous() for key, value in state.items()}
    state[SCORE_KEY] = weight.contiguous()
    return state


def to_gpt2(model: Any, tokenizer: Any, path: Path) -> Any:
    """`GPT2ForSequenceClassification` with the classifier's weights (eval mode), refused with
    one line when GPT-2's head cannot read as the model does."""
    from transformers import GPT2ForSequenceClassification

    why = refusal(model.config)
    if why is not None:
        raise UsageError(f"--format gpt2 cannot export {path}: {why}")
    pad_id = check_pad_id(tokenizer, path)
    native = GPT2ForSequenceClassification(gpt2_config(model.config, pad_id)).eval()
    missing, unexpected = native.load_state_dict(gpt2_state_dict(model), strict=False)
    buffers = [key for key in missing if key.endswith((".attn.bias", ".attn.masked_bias"))]
    if sorted(set(missing) - set(buffers)) or unexpected:  # a mapping gap is a bug here
        raise RuntimeError(f"GPT-2 keys left unmapped: {missing or unexpected}")
    check_same_logits(model, native, tokenizer)
    return native


@torch.no_grad()
def check_same_logits(model: Any, native: Any, tokenizer: Any) -> None:
    """The native model's logits against the classifier's on probe batches padded on the right
    and on the left (where GPT-2 is given position ids from the mask, as its positions count
    padding); a difference above `TOLERANCE` is refused."""
    temperature = float(getattr(model.config, "temperature", 1.0) or 1.0)
    rows = probe_rows(model.config, avoid=tokenizer.pad_token_id)
    for side in ("right", "left"):
        batch = padded(tokenizer, rows, side)
        expected = model(**batch).logits / temperature
        positions = position_ids_from_attention_mask(batch["attention_mask"])
        got = native(**batch, position_ids=positions).logits
        difference = worst_difference(expected, got)
        if difference > TOLERANCE:
            raise ExportError(
                f"--format gpt2: the GPT-2 model's logits differ from the model's by "
                f"{difference:.2e} on {side}-padded probes (tolerance {TOLERANCE}); not exported"
            )


def export_gpt2(folder: str, output: str, overwrite: bool = False) -> Path:
    """Write the native GPT-2 folder of the classifier in `folder` to `output` (written aside,
    moved into place when complete); returns `output`."""
    model, tokenizer, path = load_source(folder)
    native = to_gpt2(model, tokenizer, path)
    out = Path(output)
    kept = f"{out} is left as it was"
    with atomic_output_dir(out, overwrite, flag="--output", overwrite_flag="--overwrite") as tmp:
        writing(out / "model.safetensors", lambda: native.save_pretrained(tmp), kept)
        tokenizer.model_max_length = model.config.context_length
        writing(out / "tokenizer.json", lambda: tokenizer.save_pretrained(tmp), kept)
        notes = [
            "The book's head bias is folded into `ln_f.bias` (`pinv(W) @ b`); the logits are "
            "the original's.",
            f"`pad_token_id` is {native.config.pad_token_id}, which the tokenizer never gives "
            "for text; pad on the right (GPT-2 counts positions from the row's start).",
        ]
        usage = GPT2_USAGE.format(folder=out.name)
        write_card_note(
            tmp,
            path,
            model.config,
            "native GPT-2",
            usage,
            notes,
            ["gpt2", "hf_spam"],
            "transformers",
        )
    return out
