"""The book's random starting points, drawn as the book draws them.

The book makes its new classification head with `torch.manual_seed(123)` followed by
`nn.Linear(emb_dim, 2)`, and its random-weight model (the table's row 10) with
`torch.manual_seed(123)` followed by `GPTModel(BASE_CONFIG)`: every layer keeps PyTorch's own
initialisation (embeddings N(0, 1), linear layers uniform in +-1/sqrt(fan_in), norms 1 and 0),
drawn in the order the modules are built. transformers' `_init_weights` (GPT-2's N(0, 0.02)
scheme, what `from_config` gives) is another model, so these helpers replay the book's draws
instead: same seed, same calls, same order, the same numbers as the book's run.
"""

from __future__ import annotations

import torch
from torch import nn

from .modeling import GPTForSequenceClassification, LayerNorm


@torch.no_grad()
def book_head_init(model: GPTForSequenceClassification, seed: int) -> None:
    """The new head as `torch.manual_seed(seed); nn.Linear(emb_dim, num_labels)` makes it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.out_head.reset_parameters()


@torch.no_grad()
def book_random_init(model: GPTForSequenceClassification, seed: int) -> None:
    """The trunk as `torch.manual_seed(seed); GPTModel(cfg)` leaves it, then the book's head.

    `modeling.py` builds its modules in the book's order (`tok_emb`, `pos_emb`, then per block
    `W_query`, `W_key`, `W_value`, `out_proj`, `ff.layers`, then `final_norm`), so resetting the
    layers in module order repeats the book's draws. The book's `GPTModel` then builds its
    vocabulary head, which the classifier replaces; drawing it too keeps later draws in step.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.gpt.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.reset_parameters()
            elif isinstance(module, LayerNorm):
                module.scale.fill_(1.0)
                module.shift.zero_()
        config = model.config
        nn.Linear(config.emb_dim, config.vocab_size, bias=False)  # the book's vocabulary head
    book_head_init(model, seed)


__all__ = ["book_head_init", "book_random_init"]
