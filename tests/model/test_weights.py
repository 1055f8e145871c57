"""OpenAI GPT-2 weights mapped into the book's GPT: parity with transformers' GPT-2 (its LM and
its `GPT2ForSequenceClassification`, head included), and errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from helpers import GPT2_124M, save_gpt2_checkpoint
from safetensors.torch import save_file

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel
from hf_spam.model.weights import CheckpointError, load_openai_gpt2

LAYOUTS = ("bare", "prefixed")


def random_batch(vocab_size: int, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, length), generator=g)


def padded_mask(batch: int, length: int, side: str, seed: int = 1) -> torch.Tensor:
    """Attention mask with a random number of real tokens per row (at least 1), on `side`."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length  # one full row, so the batch really is as long as `length`
    positions = torch.arange(length)
    mask = positions[None, :] < lengths[:, None]
    return (mask.flip(-1) if side == "left" else mask).long()


def assert_parity(ours: GPTForCausalLM, ref, input_ids, attention_mask=None, atol=1e-4):
    """Hidden states, attention weights and LM logits of `ours` equal transformers' GPT-2 (eager
    attention) at every real token."""
    kwargs = {}
    if attention_mask is not None:
        # transformers' GPT-2 numbers positions 0..n-1 whatever the mask; ours counts only real
        # tokens. Give it the same positions so left padding is comparable too.
        kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        kwargs["attention_mask"] = attention_mask
    with torch.no_grad():
        flags = dict(output_hidden_states=True, output_attentions=True)
        a = ours(input_ids, attention_mask=attention_mask, **flags)
        b = ref(input_ids, **flags, **kwargs)
    real = (
        attention_mask.bool()
        if attention_mask is not None
        else torch.ones(input_ids.shape, dtype=torch.bool)
    )
    assert len(a.hidden_states) == len(b.hidden_states)
    for i, (ha, hb) in enumerate(zip(a.hidden_states, b.hidden_states, strict=True)):
        diff = (ha[real] - hb[real]).abs().max().item()
        assert diff < atol, f"hidden state {i} differs by {diff}"
    assert len(a.attentions) == len(b.attentions) == ours.config.n_layers
    for i, (wa, wb) in enumerate(zip(a.attentions, b.attentions, strict=True)):
        # (batch, heads, queries, keys): compare the rows of real queries.
        diff = (wa.transpose(1, 2)[real] - wb.transpose(1, 2)[real]).abs().max().item()
        assert diff < atol, f"attention weights of block {i} differ by {diff}"
    diff = (a.logits[real] - b.logits[real]).abs().max().item()
    assert diff < atol, f"logits differ by {diff}"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padding", [None, "right", "left"])
def test_tiny_parity(tiny_checkpoints, layout, padding):
    folder, ref = tiny_checkpoints[layout]
    ours = load_openai_gpt2(GPTForCausalLM, folder)
    ids = random_batch(ours.config.vocab_size, 5, 40)
    mask = padded_mask(5, 40, padding) if padding else None
    assert_parity(ours, ref, ids, mask)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tiny_generate_matches_transformers(tiny_checkpoints, layout):
    folder, ref = tiny_checkpoints[layout]
    ours = load_openai_gpt2(GPTForCausalLM, folder)
    prompt = random_batch(ours.config.vocab_size, 1, 6)
    kwargs = dict(max_new_tokens=20, do_sample=False, pad_token_id=50256)
    assert torch.equal(ours.generate(prompt, **kwargs), ref.generate(prompt, **kwargs))


@pytest.fixture(scope="module")
def gpt2_124m(tmp_path_factory):
    """A random GPT-2 in the full 124M shape, saved in both layouts (one model)."""
    root = tmp_path_factory.mktemp("gpt2_124m")
    ref = save_gpt2_checkpoint(root / "bare", "bare", **GPT2_124M)
    ref.save_pretrained(root / "prefixed")
    return root, ref


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_124m_parity_and_generate(gpt2_124m, layout):
    root, ref = gpt2_124m
    ours = load_openai_gpt2(GPTForCausalLM, root / layout)
    assert ours.config.emb_dim == 768 and ours.config.n_layers == 12
    assert ours.num_parameters() == ref.num_parameters()
    ids = random_batch(50257, 3, 48)
    assert_parity(ours, ref, ids)
    assert_parity(ours, ref, ids, padded_mask(3, 48, "right"))
    kwargs = dict(max_new_tokens=20, do_sample=False, pad_token_id=50256)
    assert torch.equal(ours.generate(ids[:1, :8], **kwargs), ref.generate(ids[:1, :8], **kwargs))


def test_single_file_and_shape_inference(tiny_checkpoints):
    """A lone .safetensors file with no config.json: sizes come from tensor shapes."""
    folder, ref = tiny_checkpoints["bare"]
    ours = load_openai_gpt2(GPTModel, folder / "model.safetensors", n_heads=4)
    assert (ours.config.emb_dim, ours.config.n_layers, ours.config.context_length) == (32, 2, 64)
    ids = random_batch(50257, 2, 10)
    with torch.no_grad():
        diff = (ours(ids).last_hidden_state - ref.transformer(ids).last_hidden_state).abs().max()
    assert diff < 1e-4


def test_classifier_gets_trunk_and_fresh_head(tiny_checkpoints):
    folder, ref = tiny_checkpoints["prefixed"]
    model = load_openai_gpt2(
        GPTForSequenceClassification, folder, num_labels=2, id2label={0: "ham", 1: "spam"}
    )
    assert model.config.id2label == {0: "ham", 1: "spam"}
    assert model.out_head.weight.shape == (2, 32)
    torch.testing.assert_close(model.gpt.tok_emb.weight, ref.transformer.wte.weight)
    # The fused c_attn is split in query, key, value order and transposed.
    c_attn = ref.transformer.h[1].attn.c_attn.weight
    torch.testing.assert_close(model.gpt.trf_blocks[1].att.W_value.weight, c_attn[:, 64:].T)


CLASSES = {0: "ham", 1: "spam"}


@pytest.fixture(scope="module")
def gpt2_classifier(tmp_path_factory):
    """A tiny random `GPT2ForSequenceClassification` (ham/spam, pad 50256): folder, reference."""
    folder = tmp_path_factory.mktemp("gpt2_classifier")
    ref = save_gpt2_checkpoint(folder, "classifier", id2label=CLASSES, pad_token_id=50256)
    return folder, ref


def right_padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded GPT-2 ids with 50256 as padding only: transformers' classifier finds the last
    real token from the pad id, ours from the mask; with the pad id only in the padding they
    agree."""
    mask = padded_mask(4, 12, "right")
    return random_batch(50256, 4, 12).masked_fill(mask == 0, 50256), mask


def classifier_logits(model, input_ids, attention_mask) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits


def weights_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hf_spam.model.weights"]


def test_gpt2_classifier_head_gives_transformers_logits(gpt2_classifier):
    folder, ref = gpt2_classifier
    ours, info = load_openai_gpt2(GPTForSequenceClassification, folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": []}
    assert ours.config.id2label == CLASSES  # the checkpoint's labels, from its config.json
    assert not ours.out_head.bias.any()  # GPT-2's score has no bias
    ids, mask = right_padded_batch()
    torch.testing.assert_close(
        classifier_logits(ours, ids, mask), classifier_logits(ref, ids, mask), atol=1e-5, rtol=0
    )


def test_gpt2_classifier_head_rows_follow_the_label_names(gpt2_classifier):
    folder, ref = gpt2_classifier
    ours = load_openai_gpt2(GPTForSequenceClassification, folder, id2label={0: "spam", 1: "ham"})
    ids, mask = right_padded_batch()
    torch.testing.assert_close(
        classifier_logits(ours, ids, mask),
        classifier_logits(ref, ids, mask).flip(-1),
        atol=1e-5,
        rtol=0,
    )


def test_unnamed_classes_are_taken_in_order(tmp_path):
    ref = save_gpt2_checkpoint(tmp_path, "classifier", pad_token_id=50256)  # LABEL_0, LABEL_1
    ours = load_openai_gpt2(GPTForSequenceClassification, tmp_path, id2label=CLASSES)
    ids, mask = right_padded_batch()
    torch.testing.assert_close(
        classifier_logits(ours, ids, mask), classifier_logits(ref, ids, mask), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({0: "ham", 1: "spam", 2: "phish"}, "it scores 2 classes, the model has 3"),
        ({0: "neg", 1: "pos"}, "its classes (ham, spam) are not the model's (neg, pos)"),
    ],
)
def test_gpt2_classifier_head_left_out_says_why(gpt2_classifier, caplog, labels, why):
    folder, ref = gpt2_classifier
    with caplog.at_level(logging.WARNING, logger="hf_spam.model.weights"):
        ours, info = load_openai_gpt2(
            GPTForSequenceClassification, folder, output_loading_info=True, id2label=labels
        )
    assert weights_log(caplog) == [f"{folder}: score.weight left out: {why}; out_head starts fresh"]
    assert info == {
        "missing_keys": ["out_head.weight", "out_head.bias"],
        "unexpected_keys": ["score.weight"],
    }
    assert ours.config.id2label == labels
    torch.testing.assert_close(ours.gpt.tok_emb.weight, ref.transformer.wte.weight)


def test_trunk_of_a_gpt2_classifier(gpt2_classifier, caplog):
    folder, ref = gpt2_classifier
    with caplog.at_level(logging.WARNING, logger="hf_spam.model.weights"):
        ours = load_openai_gpt2(GPTModel, folder)
    assert weights_log(caplog) == [
        f"{folder}: score.weight left out: GPTModel has no classification head"
    ]
    ids = random_batch(50257, 2, 10)
    with torch.no_grad():
        diff = (ours(ids).last_hidden_state - ref.transformer(ids).last_hidden_state).abs().max()
    assert diff < 1e-4


def test_config_overrides_apply(tiny_checkpoint):
    model = load_openai_gpt2(GPTForSequenceClassification, tiny_checkpoint, drop_rate=0.1)
    assert model.config.drop_rate == 0.1 and model.config.emb_dim == 32


def _medium_shaped_checkpoint(path: Path) -> None:
    """gpt2-medium's exact keys and shapes, zero-filled (values don't matter for shape checks)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        shapes = GPT2LMHeadModel(GPT2Config(n_embd=1024, n_layer=24, n_head=16)).state_dict()
    tensors = {k: torch.zeros(v.shape) for k, v in shapes.items() if k != "lm_head.weight"}
    save_file(tensors, str(path))


def test_medium_checkpoint_into_124m_config_names_key_and_shapes(tmp_path):
    file = tmp_path / "model.safetensors"
    _medium_shaped_checkpoint(file)
    with pytest.raises(CheckpointError) as err:
        load_openai_gpt2(GPTForSequenceClassification, file, config=GPTConfig.from_preset("gpt2"))
    message = str(err.value)
    assert "shape mismatch" in message
    assert "(1024" in message and "768" in message
    assert "transformer.h." in message or "wte.weight" in message or "'h." in message


def test_truncated_file(tiny_checkpoint, tmp_path):
    data = (tiny_checkpoint / "model.safetensors").read_bytes()
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors"):
        load_openai_gpt2(GPTModel, broken, n_heads=4)


def test_missing_key(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file

    state = load_file(tiny_checkpoint / "model.safetensors")
    del state["h.1.mlp.c_fc.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"h\.1\.mlp\.c_fc\.weight"):
        load_openai_gpt2(GPTModel, tmp_path)


def test_leftover_key(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file

    state = load_file(tiny_checkpoint / "model.safetensors")
    state["h.0.attn.rotary.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"unexpected key 'h\.0\.attn\.rotary\.weight'"):
        load_openai_gpt2(GPTModel, tmp_path)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_openai_gpt2(GPTModel, missing)


def test_folder_without_safetensors_lists_contents(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors.*pytorch_model\.bin"):
        load_openai_gpt2(GPTModel, tmp_path)


def test_pickle_file_refused(tmp_path):
    pickled = tmp_path / "pytorch_model.bin"
    pickled.write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_openai_gpt2(GPTModel, pickled)


def test_unreachable_hub_id_is_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not a local path"):
        load_openai_gpt2(GPTModel, "no-such-user/no-such-gpt2")


def _hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        import huggingface_hub

        huggingface_hub.model_info("openai-community/gpt2", timeout=5)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@pytest.mark.hub
def test_real_gpt2_continues_like_the_book(tiktoken_available):
    if not _hub_reachable():
        pytest.skip("the Hugging Face Hub is not reachable (offline or HF_HUB_OFFLINE=1)")
    import tiktoken

    enc = tiktoken.get_encoding("gpt2")
    model = load_openai_gpt2(GPTForCausalLM, "openai-community/gpt2")
    prompt = torch.tensor([enc.encode("Every effort moves you")])
    out = model.generate(prompt, max_new_tokens=15, do_sample=False, pad_token_id=50256)
    assert enc.decode(out[0].tolist()) == (
        "Every effort moves you forward.\n\n"
        "The first step is to understand the importance of your work"
    )
