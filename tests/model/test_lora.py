"""LoRA as the book builds it (hf_spam.model.lora), against the book's `LinearWithLoRA` formulation and
its initialisation procedure written out here; the saved adapter against peft's own loader."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch
from helpers import TINY_NO_KEY_BIAS, parse, tiny_args
from safetensors.torch import load_file
from torch import nn

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.errors import UsageError
from hf_spam.model.lora import BookLoRALinear, check_lora_targets, merge_lora, peft_lora_alpha
from hf_spam.training.policies import apply_trainable_layers, trainable_parameters
from hf_spam.training.run import ModelArguments, train

pytest.importorskip("peft")

EMB, N_LAYERS = 32, 2


def tiny_model() -> GPTForSequenceClassification:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=100, context_length=16, emb_dim=EMB, n_heads=4, n_layers=N_LAYERS)
    return GPTForSequenceClassification(config).eval()


def lora_args(convention: str = "book", rank: int = 4, alpha: float = 16.0) -> ModelArguments:
    return ModelArguments(
        trainable_layers="lora", lora_rank=rank, lora_alpha=alpha, lora_alpha_convention=convention
    )


class BookLinearWithLoRA(nn.Module):
    """The book's `LinearWithLoRA` (ch06 additional_experiments.py): linear(x) + alpha*(x@A@B)."""

    def __init__(self, linear: nn.Linear, A: torch.Tensor, B: torch.Tensor, alpha: float):
        super().__init__()
        self.linear, self.A, self.B, self.alpha = linear, A, B, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.alpha * (x @ self.A @ self.B)


def block_linears(model: nn.Module) -> list[str]:
    """Every linear layer of the blocks, in the order the book's `replace_linear_with_lora`
    walks them (`named_children`, depth first)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and "trf_blocks" in n]


def peft_adapters(adapted: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Block layer name -> the book's (A, B) (peft stores A as (rank, in), B as (out, rank))."""
    return {
        name.removeprefix("base_model.model."): (
            module.lora_A["default"].weight.T,
            module.lora_B["default"].weight.T,
        )
        for name, module in adapted.named_modules()
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})
    }


def trained_head(adapted: nn.Module) -> nn.Module:
    return adapted.get_submodule("base_model.model.out_head.modules_to_save.default")


def book_copy(base: nn.Module, adapted: nn.Module, alpha: float, head_adapter: bool) -> nn.Module:
    """`base` with every block's linear layers wrapped as the book does, holding the adapter
    matrices of `adapted`, and `adapted`'s trained head (wrapped too when `head_adapter`)."""
    book = copy.deepcopy(base)
    adapters = peft_adapters(adapted)
    assert sorted(adapters) == sorted(block_linears(book))  # every linear of every block
    for name in block_linears(book):
        parent_name, _, child = name.rpartition(".")
        parent = book.get_submodule(parent_name)
        setattr(parent, child, BookLinearWithLoRA(getattr(parent, child), *adapters[name], alpha))
    head = trained_head(adapted)
    if head_adapter:
        book.out_head = BookLinearWithLoRA(copy.deepcopy(head.linear), head.A, head.B, alpha)
    else:
        book.out_head = copy.deepcopy(head)
    return book


@pytest.mark.parametrize(
    ("convention", "rank", "alpha", "book_alpha"),
    [("book", 4, 16.0, 16.0), ("peft", 4, 16.0, 4.0)],
)
def test_forward_is_the_books_formulation(convention, rank, alpha, book_alpha):
    base = tiny_model()
    adapted = apply_trainable_layers(copy.deepcopy(base), lora_args(convention, rank, alpha))
    torch.manual_seed(1)
    with torch.no_grad():  # B starts at 0 (no change); give it values so the adapters count
        for name, param in adapted.named_parameters():
            if "lora_B" in name or name.endswith(".B"):
                param.normal_(0, 0.1)
    book = book_copy(base, adapted, book_alpha, head_adapter=convention == "book")
    input_ids = torch.randint(0, 100, (3, 9))
    attention_mask = torch.ones_like(input_ids)  # padding with a small vocabulary
    ours = adapted(input_ids=input_ids, attention_mask=attention_mask).logits
    theirs = book(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, base(input_ids=input_ids, attention_mask=attention_mask).logits)
    merged = merge_lora(adapted)  # what the saved folder holds: plain layers only
    assert type(merged) is GPTForSequenceClassification
    assert type(merged.out_head) is nn.Linear
    torch.testing.assert_close(
        merged(input_ids=input_ids, attention_mask=attention_mask).logits, theirs, atol=1e-5, rtol=0
    )


def test_book_convention_draws_as_the_book_does():
    """The book: `torch.manual_seed(seed)`, the new head `nn.Linear(emb, 2)`, then
    `replace_linear_with_lora` walks the model and each `LoRALayer` draws its A of shape
    (in, rank) by `kaiming_uniform_(a=sqrt(5))`: the blocks' layers first, the head's last."""
    rank, seed = 4, 11
    assert peft_lora_alpha(16, 16.0, "book") == 256.0  # the book's row 11 in peft's terms
    assert peft_lora_alpha(16, 16.0, "peft") == 16.0
    adapted = apply_trainable_layers(tiny_model(), lora_args(rank=rank), seed=seed)

    model = tiny_model()
    layers = {name: model.get_submodule(name) for name in [*block_linears(model), "out_head"]}
    torch.manual_seed(seed)
    head = nn.Linear(EMB, 2)
    expected = {}
    for name, layer in layers.items():
        A = torch.empty(layer.in_features, rank)
        nn.init.kaiming_uniform_(A, a=math.sqrt(5))
        expected[name] = A

    ours = {name: A for name, (A, _) in peft_adapters(adapted).items()}
    ours["out_head"] = trained_head(adapted).A
    assert list(ours) == list(expected)
    for name, A in expected.items():
        assert torch.equal(ours[name], A), name
    assert A.abs().max() <= 1 / math.sqrt(rank)  # the book's bound; peft's: 1/sqrt(in)
    assert torch.equal(trained_head(adapted).linear.weight, head.weight)
    assert torch.equal(trained_head(adapted).linear.bias, head.bias)
    assert all(not B.any() for _, B in peft_adapters(adapted).values())
    assert not trained_head(adapted).B.any()


@pytest.mark.parametrize("convention", ["book", "peft"])
def test_what_trains(convention):
    adapted = apply_trainable_layers(tiny_model(), lora_args(convention, rank=16))
    trainable, _, names = trainable_parameters(adapted)
    assert all("lora_" in n or "out_head.modules_to_save" in n for n in names)
    # r=16 A/B pairs on 6 linear layers per block (e->e four times, e->4e, 4e->e) + the head
    blocks = N_LAYERS * 16 * (4 * (EMB + EMB) + (EMB + 4 * EMB) + (4 * EMB + EMB))
    head = 2 * EMB + 2 + (16 * (EMB + 2) if convention == "book" else 0)
    assert trainable == blocks + head


def test_book_draws_keep_a_head_that_came_with_the_weights():
    """A head loaded with the weights (a `GPT2ForSequenceClassification`'s score, a saved
    folder's) is not drawn again; the book's draws are still made, so every adapter's A is the
    one a fresh head's run gets."""
    fresh = apply_trainable_layers(tiny_model(), lora_args(), seed=5)
    model = tiny_model()
    with torch.no_grad():
        model.out_head.weight.fill_(0.5)
    kept = apply_trainable_layers(model, lora_args(), seed=5, fresh_head=False)
    assert bool((trained_head(kept).linear.weight == 0.5).all())
    assert not (trained_head(fresh).linear.weight == 0.5).any()
    fresh_adapters, kept_adapters = peft_adapters(fresh), peft_adapters(kept)
    assert list(fresh_adapters) == list(kept_adapters)
    for name, (A, _) in fresh_adapters.items():
        assert torch.equal(kept_adapters[name][0], A), name
    assert torch.equal(trained_head(kept).A, trained_head(fresh).A)


def test_head_adapter_merges_into_one_linear():
    linear = nn.Linear(6, 2)
    wrapped = BookLoRALinear(copy.deepcopy(linear), rank=3, alpha=2.0)
    with torch.no_grad():
        wrapped.B.normal_()
    x = torch.randn(4, 6)
    expected = linear(x) + 2.0 * (x @ wrapped.A @ wrapped.B)
    torch.testing.assert_close(wrapped(x), expected)
    torch.testing.assert_close(wrapped.merged()(x), expected, atol=1e-6, rtol=1e-6)


def test_lora_run_resumes_exactly_and_saves_a_plain_model(spam_csv, tmp_path):
    """The head's adapter lives in peft's checkpoints (modules_to_save) and the book's order is a
    function of the epoch: a run resumed mid-epoch ends with the uninterrupted run's weights."""

    def args(out, *extra):
        return tiny_args(
            spam_csv, out, "--trainable_layers", "lora", "--lora_rank", "2",
            "--train_sampling_strategy", "book", "--num_train_epochs", "2",
            "--config_overrides", TINY_NO_KEY_BIAS, "--eval_on_train", "false",
            "--save_strategy", "steps", "--save_steps", "10", "--save_total_limit", "10",
            "--report_to", "none", *extra,
        )  # fmt: skip

    full = tmp_path / "full"
    train(*parse(args(full)))
    assert not (full / "adapter").exists()  # the book's convention: no adapter unless asked
    checkpoint = full / "checkpoint-10"
    saved = load_file(checkpoint / "adapter_model.safetensors")
    assert any(key.endswith("out_head.A") for key in saved), sorted(saved)
    resumed = tmp_path / "resumed"
    train(*parse(args(resumed, "--resume_from_checkpoint", str(checkpoint))))
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    plain = GPTForSequenceClassification(GPTConfig(**dict(vocab_size=100))).state_dict()
    assert {k.split(".")[-1] for k in a} <= {k.split(".")[-1] for k in plain}  # no adapters
    assert "out_head.weight" in a
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


@pytest.mark.parametrize(("convention", "flags"), [("peft", ()), ("book", ("--save_adapter",))])
def test_saved_adapter_loads_with_peft_onto_a_fresh_base(
    spam_csv, tiny_checkpoint, tmp_path, convention, flags
):
    """`--save_adapter` (the default with peft's convention) writes a peft adapter folder that
    peft's own loader puts on a freshly built base (the starting checkpoint converted by
    `hf-spam convert`) to give the trained model's logits: the blocks' adapters and the trained
    head (`modules_to_save`; with the book's convention its own adapter folded in)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_spam.cli import main

    out = tmp_path / "run"
    train(
        *parse(
            [
                "--dataset", str(spam_csv), "--model_name_or_path", str(tiny_checkpoint),
                "--output_dir", str(out), "--trainable_layers", "lora", "--lora_rank", "2",
                "--lora_alpha_convention", convention, "--learning_rate", "2e-3",
                "--num_train_epochs", "1", "--save_strategy", "no", "--eval_on_train", "false",
                "--report_to", "none", "--disable_tqdm", "true", *flags,
            ]
        )
    )  # fmt: skip
    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"]) == ("LORA", "SEQ_CLS")
    assert config["base_model_name_or_path"] == str(tiny_checkpoint)
    assert config["modules_to_save"] == ["out_head"]
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".adapter")]  # moved in place

    base_dir = tmp_path / "base"
    convert = ["convert", "--source", str(tiny_checkpoint), "--output_dir", str(base_dir)]
    assert main([*convert, "--head", "classification", "--with_tokenizer", "false"]) == 0
    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    loaded = PeftModel.from_pretrained(base, adapter).eval()
    assert any(p.any() for name, p in loaded.named_parameters() if "lora_B" in name)  # trained
    trained = AutoModelForSequenceClassification.from_pretrained(out).eval()  # merged weights
    texts = ["WIN a free prize, call now", "see you at home later", "ok", "urgent cash offer txt"]
    batch = AutoTokenizer.from_pretrained(out)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = trained(**batch).logits
        torch.testing.assert_close(loaded(**batch).logits, expected, atol=1e-5, rtol=0)


NAMES = "W_query, W_key, W_value, out_proj, layers.0, layers.2"


@pytest.mark.parametrize(
    ("targets", "unknown"),
    [("bogus", "'bogus'"), ("W_query,bogus,att", "'bogus', 'att'"), ("out_head", "'out_head'")],
)
def test_unknown_target_modules_name_the_flag_and_the_names(targets, unknown):
    """peft skips a name matching nothing beside one that matches, and otherwise fails naming
    neither the flag nor the choices; ours names both, before the model is touched."""
    model = tiny_model()
    args = lora_args()
    args.lora_target_modules = targets
    message = (
        f"--lora_target_modules {targets}: no linear layer of the blocks is named {unknown}; "
        f"choose from {NAMES}"
    )
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        apply_trainable_layers(model, args)
    assert type(model.out_head) is nn.Linear  # no head adapter put on before the refusal


@pytest.mark.parametrize(
    "target",
    ["W_query", "att.W_value", "layers.2", "ff.layers.0", "gpt.trf_blocks.1.att.out_proj",
     "bogus", "att", "ff.layers", "out_head", "uery"],
)  # fmt: skip
def test_target_names_are_accepted_as_peft_matches_them(target):
    """A single name passes our check exactly when peft itself adapts some layer for it."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=2, target_modules=[target], modules_to_save=["out_head"])
    try:
        get_peft_model(tiny_model(), config)
        peft_adapts = True
    except ValueError:  # peft's "no modules were targeted" / "not supported"
        peft_adapts = False
    try:
        check_lora_targets(tiny_model(), [target])
        ours = True
    except UsageError:
        ours = False
    assert ours == peft_adapts
