"""The book's random starting points (hf_spam.model.initialization), against the book's own procedure
written with plain PyTorch layers: seed, build the layers in the book's order, seed, new head."""

from __future__ import annotations

import torch
from helpers import label_info
from torch import nn

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.model.initialization import book_head_init, book_random_init
from hf_spam.training.run import ModelArguments, build_model

CONFIG = dict(vocab_size=300, context_length=16, emb_dim=8, n_heads=2, n_layers=2)
LABELS = label_info(max_length=16)


def book_reference(cfg: GPTConfig, seed: int) -> tuple[nn.Module, nn.Linear]:
    """`torch.manual_seed(seed); GPTModel(cfg)` as the book's chapter 4 builds it, layer by layer
    (embeddings, then per block the attention's query/key/value/output projections and the
    feed-forward pair, then the vocabulary head), and the chapter 6 head:
    `torch.manual_seed(seed); nn.Linear(emb_dim, 2)`. Every layer keeps PyTorch's own init."""
    emb = cfg.emb_dim
    torch.manual_seed(seed)
    trunk = nn.Module()
    trunk.tok_emb = nn.Embedding(cfg.vocab_size, emb)
    trunk.pos_emb = nn.Embedding(cfg.context_length, emb)
    trunk.trf_blocks = nn.ModuleList()
    for _ in range(cfg.n_layers):
        block = nn.Module()
        block.att = nn.Module()
        block.att.W_query = nn.Linear(emb, emb, bias=cfg.qkv_bias)
        block.att.W_key = nn.Linear(emb, emb, bias=cfg.qkv_bias)
        block.att.W_value = nn.Linear(emb, emb, bias=cfg.qkv_bias)
        block.att.out_proj = nn.Linear(emb, emb)
        block.ff = nn.Module()
        block.ff.layers = nn.Sequential(nn.Linear(emb, 4 * emb), nn.GELU(), nn.Linear(4 * emb, emb))
        trunk.trf_blocks.append(block)
    nn.Linear(emb, cfg.vocab_size, bias=False)  # GPTModel's out_head, replaced in chapter 6
    torch.manual_seed(seed)
    return trunk, nn.Linear(emb, cfg.num_labels)


def assert_books_numbers(model: GPTForSequenceClassification, seed: int) -> None:
    trunk, head = book_reference(model.config, seed)
    ours = dict(model.named_parameters())
    for name, value in trunk.named_parameters():
        torch.testing.assert_close(ours[f"gpt.{name}"], value, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(model.out_head.weight, head.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.out_head.bias, head.bias, rtol=0, atol=0)
    for name, value in ours.items():
        if name.endswith(".scale") or name.endswith(".shift"):
            assert torch.equal(value, torch.full_like(value, float(name.endswith(".scale"))))


def test_head_is_torchs_linear_from_the_seed():
    model = GPTForSequenceClassification(GPTConfig(**CONFIG))
    book_head_init(model, 123)
    torch.manual_seed(123)
    head = nn.Linear(CONFIG["emb_dim"], 2)
    assert torch.equal(model.out_head.weight, head.weight)
    assert torch.equal(model.out_head.bias, head.bias)


def test_random_init_is_the_books_model_draw_for_draw():
    model = GPTForSequenceClassification(GPTConfig(**CONFIG))
    book_random_init(model, 123)
    assert_books_numbers(model, 123)
    # transformers' own init (GPT-2's N(0, 0.02)) is another model: the embeddings show it.
    assert GPTForSequenceClassification(GPTConfig(**CONFIG)).gpt.tok_emb.weight.std() < 0.1
    assert model.gpt.tok_emb.weight.std() > 0.8


def test_random_init_leaves_torchs_rng_alone():
    model = GPTForSequenceClassification(GPTConfig(**CONFIG))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    book_random_init(model, 123)
    assert torch.equal(torch.rand(3), expected)


def test_build_model_with_init_random_starts_from_the_books_numbers():
    overrides = ",".join(f"{key}={value}" for key, value in CONFIG.items())
    args = ModelArguments(init="random", config_overrides=overrides)
    assert_books_numbers(build_model(args, LABELS, seed=7), 7)


def test_build_model_from_gpt2_weights_gets_the_books_head(tiny_checkpoint):
    model = build_model(ModelArguments(model_name_or_path=str(tiny_checkpoint)), LABELS, seed=123)
    torch.manual_seed(123)
    head = nn.Linear(model.config.emb_dim, 2)
    assert torch.equal(model.out_head.weight, head.weight)
    assert torch.equal(model.out_head.bias, head.bias)
