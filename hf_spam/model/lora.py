"""LoRA as the book's `replace_linear_with_lora` builds it, on peft's adapters.

The book (appendix E; ch06 `additional_experiments.py`) wraps every `nn.Linear` of the model in
`LinearWithLoRA`: `linear(x) + alpha * (x @ A @ B)`, A of shape (in, rank) drawn by
`kaiming_uniform_(a=sqrt(5))`, B zero. It does so after it made the new head, which is created
after the freeze and so trains in full *and* carries an adapter. Two things differ from peft:
peft scales by `lora_alpha / r` (the book by `alpha`), and peft will not put an adapter on a module
it trains in full. `--lora_alpha_convention book` (the default) gives the book's meaning: alpha
mapped to peft's scale, A drawn as the book draws it, in the book's order from the run's seed, and
the head wrapped in `BookLoRALinear`; `peft` gives peft's usual LoRA with a fully trained head.

Either way the trained adapters can also leave as a standard peft adapter folder (`save_adapter`):
the book's head adapter is folded into the head, which travels in full as `modules_to_save`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..files import atomic_output_dir, writing

LORA_ALPHA_CONVENTIONS = ("book", "peft")
#: Every linear layer of a transformer block, as the book's `replace_linear_with_lora` wraps them.
BOOK_LORA_TARGETS = "W_query,W_key,W_value,out_proj,layers.0,layers.2"
HEAD = "out_head"
#: Where `--save_adapter` puts the peft adapter folder, inside --output_dir.
ADAPTER_DIR = "adapter"


class BookLoRALinear(nn.Module):
    """The book's `LinearWithLoRA` for the new head: `linear(x) + alpha * (x @ A @ B)`, with the
    linear layer trained as well (peft cannot adapt a fully trained module, so this one is ours)."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.linear = linear
        weight = linear.weight
        self.A = nn.Parameter(torch.empty(linear.in_features, rank, dtype=weight.dtype))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(rank, linear.out_features, dtype=weight.dtype))
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.alpha * (x @ self.A @ self.B)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """One `nn.Linear` computing the same (the saved folder needs no adapter code)."""
        self.linear.weight += self.alpha * (self.A @ self.B).T
        return self.linear


def peft_lora_alpha(rank: int, alpha: float, convention: str) -> float:
    """peft's `lora_alpha` for an adapter scaled as `convention` means `alpha`.

    The book's `LoRALayer` computes `alpha * (x @ A @ B)`; peft scales by `lora_alpha / r`. So
    the book's alpha is peft's `alpha * rank` (book rank 16, alpha 16 = peft lora_alpha 256).
    """
    if convention not in LORA_ALPHA_CONVENTIONS:
        raise ValueError(f"unknown LoRA alpha convention {convention!r}")
    return alpha * rank if convention == "book" else alpha


def check_lora_targets(model: nn.Module, targets: list[str]) -> None:
    """Each `--lora_target_modules` name must match a linear layer of the blocks the way peft
    matches a list (the whole name or its last dotted parts): peft skips a name that matches
    nothing when another one matches, and otherwise fails naming neither the flag nor the names."""
    linear = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and HEAD not in name.split(".")
    ]
    unknown = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in linear)]
    if unknown:
        raise UsageError(
            f"--lora_target_modules {','.join(targets)}: no linear layer of the blocks is named "
            f"{', '.join(map(repr, unknown))}; choose from {BOOK_LORA_TARGETS.replace(',', ', ')}"
        )


def add_lora_adapters(model: nn.Module, model_args: Any, seed: int, fresh_head: bool = True) -> Any:
    """LoRA adapters on the named linear layers and a fully trained head (peft); with the book's
    convention also the head's own adapter, and every A drawn as the book draws it from `seed`
    (`fresh_head` False: the head came with the weights and keeps them)."""
    from peft import LoraConfig, get_peft_model

    rank, alpha = model_args.lora_rank, model_args.lora_alpha
    convention = model_args.lora_alpha_convention
    book = convention == "book"
    targets = [m.strip() for m in model_args.lora_target_modules.split(",")]
    check_lora_targets(model, targets)
    if book:
        model.out_head = BookLoRALinear(model.out_head, rank, alpha)
    config = LoraConfig(
        r=rank,
        lora_alpha=peft_lora_alpha(rank, alpha, convention),
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        modules_to_save=[HEAD],  # the new head trains in full, as in the book
    )
    peft_model = get_peft_model(model, config)
    if book:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            book_lora_init(peft_model, fresh_head)
    return peft_model


@torch.no_grad()
def book_lora_init(model: nn.Module, fresh_head: bool = True) -> None:
    """The book's draws after `torch.manual_seed`: the new head (`nn.Linear`'s own init), then
    every adapter's A in module order (blocks, then the head) as its `LoRALayer` draws it,
    `kaiming_uniform_(a=sqrt(5))` of an (in, rank) tensor: uniform in +-1/sqrt(rank) (peft's
    (rank, in) layout would give +-1/sqrt(in)). B stays 0, so the model's output is unchanged.
    A head that came with the weights (`fresh_head` False) is kept; its draws are still made,
    so the adapters get the same numbers either way."""
    head = model.get_submodule(f"base_model.model.{HEAD}.modules_to_save.default")
    if fresh_head:
        head.linear.reset_parameters()
    else:
        nn.Linear(head.linear.in_features, head.linear.out_features)  # the book's draws, unused
    for name, module in model.named_modules():
        if name.endswith("lora_A.default") and isinstance(module, nn.Linear):
            A = torch.empty(module.in_features, module.out_features, dtype=module.weight.dtype)
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
            module.weight.copy_(A.T)
    nn.init.kaiming_uniform_(head.A, a=math.sqrt(5))


def fold_head_adapter(model: Any) -> None:
    """The book's head adapter (`BookLoRALinear`) folded into the trained head, in place: the
    same outputs from a plain `nn.Linear`, which peft's `modules_to_save` saves and loads."""
    wrapper = model.base_model.model.get_submodule(HEAD)
    head = wrapper.modules_to_save["default"]
    if isinstance(head, BookLoRALinear):
        wrapper.modules_to_save["default"] = head.merged()


def merge_lora(model: Any) -> nn.Module:
    """The trained adapters folded into the weights: a plain `GPTForSequenceClassification`."""
    fold_head_adapter(model)
    return model.merge_and_unload()


def save_adapter(model: Any, folder: str | Path, base_model_name_or_path: str) -> Path:
    """The trained LoRA model as a peft adapter folder: `adapter_config.json` (task `SEQ_CLS`,
    `base_model_name_or_path`) and `adapter_model.safetensors`, which
    `PeftModel.from_pretrained(base, folder)` loads onto the base classifier (the book's GPT with
    the starting weights and the run's labels) to give the trained model's logits.

    The head trains in full, so it travels in full (`modules_to_save`); the book's head adapter
    is folded into it first (in place; the outputs do not change). Written beside `folder` and
    moved into place when complete.
    """
    folder = Path(folder)
    fold_head_adapter(model)
    trained = model.peft_config["default"]
    model.peft_config["default"] = copy.copy(trained)  # the run's own config stays as it was
    model.peft_config["default"].task_type = "SEQ_CLS"
    model.peft_config["default"].base_model_name_or_path = base_model_name_or_path
    try:
        with atomic_output_dir(folder, overwrite=True, flag="--save_adapter") as tmp:
            # A run never resizes the embeddings, so the base's stay as they are; peft's "auto"
            # would read the base's config.json (or ask the Hub) to find that out.
            writing(
                folder / "adapter_model.safetensors",
                lambda: model.save_pretrained(tmp, save_embedding_layers=False),
            )
    finally:
        model.peft_config["default"] = trained
    return folder


__all__ = [
    "ADAPTER_DIR",
    "BOOK_LORA_TARGETS",
    "LORA_ALPHA_CONVENTIONS",
    "BookLoRALinear",
    "add_lora_adapters",
    "book_lora_init",
    "fold_head_adapter",
    "check_lora_targets",
    "merge_lora",
    "peft_lora_alpha",
    "save_adapter",
]
