"""What trains: the `--trainable_layers` policies, one table that every check reads, and where
the frozen trunk (whose output the feature store keeps) ends.

Freezing, the frozen-trunk cache's start, LoRA's adapters, the argument checks and the model
card's wording all read `TRAINABLE_POLICIES`, so a new policy is one row (LoRA's layers:
`hf_spam.model.lora`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..model.lora import add_lora_adapters
from ..model.modeling import GPTForSequenceClassification

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainablePolicy:
    """One `--trainable_layers` choice: what trains besides the new classification head.

    `top_blocks`: how many of the last transformer blocks train in full (None: all of them and
    the embeddings). `final_norm`: the final LayerNorm trains. `adapters`: LoRA adapters in every
    block's linear layers (the blocks themselves stay frozen). `description`: the model card's
    words.
    """

    top_blocks: int | None
    final_norm: bool
    adapters: bool
    description: str

    @property
    def embeddings(self) -> bool:
        """The token and position embeddings train (then nothing below the blocks is frozen)."""
        return self.top_blocks is None

    @property
    def frozen_trunk(self) -> bool:
        """Some blocks from the bottom up stay frozen and unadapted: their output can be cached."""
        return not (self.embeddings or self.adapters)

    def first_trained_block(self, n_layers: int) -> int:
        """Index of the first block whose weights train in full (`n_layers` when none does)."""
        return 0 if self.top_blocks is None else n_layers - self.top_blocks

    def trains(self, name: str, n_layers: int) -> bool:
        """Whether the parameter `name` of a `GPTForSequenceClassification` trains."""
        if self.embeddings or name.startswith("out_head."):
            return True
        if name.startswith("gpt.final_norm."):
            return self.final_norm
        if name.startswith("gpt.trf_blocks."):
            return int(name.split(".")[2]) >= self.first_trained_block(n_layers)
        return False


TRAINABLE_POLICIES: dict[str, TrainablePolicy] = {
    "head": TrainablePolicy(0, False, False, "the new classification head only"),
    # The book's name for "head" (additional_experiments.py --trainable_layers last_layer).
    "last_layer": TrainablePolicy(0, False, False, "the new classification head only"),
    "last_block": TrainablePolicy(
        1, True, False, "the last transformer block, the final norm and the new head (the book)"
    ),
    "last_two_blocks": TrainablePolicy(
        2, True, False, "the last two transformer blocks, the final norm and the new head"
    ),
    "all": TrainablePolicy(None, True, False, "all parameters"),
    "lora": TrainablePolicy(
        0, False, True, "LoRA adapters (merged into the weights) and the new head"
    ),
}


def frozen_trunk_start(model: GPTForSequenceClassification, model_args: Any) -> int | None:
    """Where the cache can start, or None when it must stay off, saying why: in a warning when
    --frozen_trunk_cache true asked for it, in the log otherwise."""
    if model_args.frozen_trunk_cache is False:
        return None
    say = logger.warning if model_args.frozen_trunk_cache else logger.info
    if not model_args.policy.frozen_trunk:
        say(
            "Frozen-trunk cache off: --trainable_layers %s trains inside every block or the "
            "embeddings, so no part of the model stays frozen",
            model_args.trainable_layers,
        )
        return None
    if model.config.drop_rate > 0:
        logger.warning(
            "Frozen-trunk cache off: drop_rate=%s makes the frozen blocks random in training",
            model.config.drop_rate,
        )
        return None
    return model_args.policy.first_trained_block(model.config.n_layers)


def apply_trainable_layers(
    model: GPTForSequenceClassification, model_args: Any, seed: int = 123, fresh_head: bool = True
) -> Any:
    """Freeze everything `--trainable_layers` does not name; returns the model to train (a
    `PeftModel` for LoRA, its adapters drawn from `seed`; `fresh_head`: see `add_lora_adapters`)."""
    rule = model_args.policy
    if not rule.adapters:
        for name, param in model.named_parameters():
            param.requires_grad = rule.trains(name, model.config.n_layers)
        return model
    return add_lora_adapters(model, model_args, seed, fresh_head)


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int, list[str]]:
    """(trainable count, total count, names of trainable tensors)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()), names


__all__ = [
    "TRAINABLE_POLICIES",
    "TrainablePolicy",
    "apply_trainable_layers",
    "frozen_trunk_start",
    "trainable_parameters",
]
