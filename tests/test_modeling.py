"""The book's GPT as a transformers model: padding, batching, heads, saving and Auto classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel

TINY = dict(vocab_size=50257, context_length=64, emb_dim=32, n_heads=4, n_layers=2)


@pytest.fixture(scope="module")
def classifier() -> GPTForSequenceClassification:
    torch.manual_seed(0)
    config = GPTConfig(**TINY, num_labels=2, id2label={0: "ham", 1: "spam"})
    return GPTForSequenceClassification(config).eval()


def make_examples(n: int, seed: int = 0) -> list[list[int]]:
    """Token lists of varied lengths; some contain the pad/end-of-text id 50256 mid-text."""
    g = torch.Generator().manual_seed(seed)
    examples = []
    for i in range(n):
        length = int(torch.randint(1, 40, (1,), generator=g))
        ids = torch.randint(0, 50257, (length,), generator=g).tolist()
        if i % 5 == 0 and length > 2:
            ids[length // 2] = 50256
        examples.append(ids)
    return examples


def pad(examples: list[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), 50256)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        span = slice(0, len(e)) if side == "right" else slice(width - len(e), width)
        ids[row, span] = torch.tensor(e)
        mask[row, span] = 1
    return ids, mask


def logits_for(model, examples, batch_size: int, side: str) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            ids, mask = pad(examples[start : start + batch_size], side)
            out.append(model(input_ids=ids, attention_mask=mask).logits)
    return torch.cat(out)


def test_logits_independent_of_batching_padding_and_order(classifier):
    examples = make_examples(64)
    reference = logits_for(classifier, examples, 1, "right")
    for batch_size in (1, 7, 64):
        for side in ("right", "left"):
            got = logits_for(classifier, examples, batch_size, side)
            torch.testing.assert_close(got, reference, atol=1e-5, rtol=0)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(3)).tolist()
    shuffled = logits_for(classifier, [examples[i] for i in order], 64, "left")
    torch.testing.assert_close(shuffled, reference[order], atol=1e-5, rtol=0)


def test_head_reads_last_real_token_not_pad_id(classifier):
    """A text ending in 50256 keeps that token: the mask decides, not the pad id."""
    ids = torch.tensor([[11, 22, 50256, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    with torch.no_grad():
        padded = classifier(input_ids=ids, attention_mask=mask).logits
        unpadded = classifier(input_ids=ids[:, :3]).logits
        shorter = classifier(input_ids=ids[:, :2]).logits
    torch.testing.assert_close(padded, unpadded, atol=1e-6, rtol=0)
    assert not torch.allclose(padded, shorter)


@pytest.mark.parametrize(
    ("num_labels", "labels", "problem_type", "expected_loss"),
    [
        (2, torch.tensor([0, 1]), "single_label_classification", F.cross_entropy),
        (
            3,
            torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
            "multi_label_classification",
            F.binary_cross_entropy_with_logits,
        ),
        (1, torch.tensor([0.5, -1.0]), "regression", lambda x, y: F.mse_loss(x.squeeze(-1), y)),
    ],
)
def test_loss_follows_problem_type(num_labels, labels, problem_type, expected_loss):
    model = GPTForSequenceClassification(GPTConfig(**TINY, num_labels=num_labels))
    out = model(input_ids=torch.randint(0, 50257, (2, 5)), labels=labels)
    assert model.config.problem_type == problem_type
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss, expected_loss(out.logits, labels), atol=1e-6, rtol=0)
    assert out.logits.shape == (2, num_labels)
    out.loss.backward()
    assert model.out_head.weight.grad is not None


def test_config_aliases_and_presets():
    config = GPTConfig.from_preset("openai-community/gpt2-large")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        1280,
        36,
        20,
    )
    assert config.max_position_embeddings == 1024
    sizes = {name: GPTModel._from_config(GPTConfig.from_preset(name)) for name in ("gpt2",)}
    # The book's 124,412,160 (chapter 4) has no query/key/value biases; GPT-2 adds 12 * 3 * 768.
    assert sizes["gpt2"].num_parameters() == 124_439_808
    with pytest.raises(ValueError, match="Unknown GPT-2 preset 'gpt3'"):
        GPTConfig.from_preset("gpt3")
    with pytest.raises(ValueError, match="divisible by n_heads"):
        GPTConfig(emb_dim=10, n_heads=3)


def test_causal_lm_refuses_a_config_without_the_causal_mask():
    with pytest.raises(ValueError, match="disable_causal_mask=True"):
        GPTForCausalLM(GPTConfig(**TINY, disable_causal_mask=True))


def test_causal_lm_ties_head_and_generates_with_left_padding():
    torch.manual_seed(0)
    model = GPTForCausalLM(GPTConfig(**TINY)).eval()
    assert model.out_head.weight.data_ptr() == model.gpt.tok_emb.weight.data_ptr()
    prompts = make_examples(3, seed=5)
    ids, mask = pad(prompts, "left")
    batched = model.generate(
        ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=50256
    )
    for row, prompt in enumerate(prompts):
        alone = model.generate(
            torch.tensor([prompt]), max_new_tokens=8, do_sample=False, pad_token_id=50256
        )
        assert batched[row, -8:].tolist() == alone[0, -8:].tolist()


def test_context_length_enforced_by_trunk_and_truncated_by_classifier(classifier):
    long_ids = torch.randint(0, 50257, (2, 70))
    with pytest.raises(ValueError, match="longer than the model's context_length"):
        classifier.gpt(input_ids=long_ids)
    with torch.no_grad():
        cut = classifier(input_ids=long_ids).logits
        first_64 = classifier(input_ids=long_ids[:, :64]).logits
    torch.testing.assert_close(cut, first_64, atol=1e-6, rtol=0)


def test_empty_input_reads_as_end_of_text(classifier):
    with torch.no_grad():
        empty = classifier(input_ids=torch.zeros((1, 0), dtype=torch.long)).logits
        eot = classifier(input_ids=torch.tensor([[50256]])).logits
        ids, mask = pad([[], [5, 6, 7]], "right")
        batch = classifier(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(empty, eot, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch[0], eot[0], atol=1e-6, rtol=0)


def test_fast_path_equals_full_forward(classifier):
    """Last-token-only final block and length buckets change no logit."""
    ids, mask = pad(make_examples(20, seed=7), "left")
    with torch.no_grad():
        fast = classifier(input_ids=ids, attention_mask=mask).logits
        full = classifier(input_ids=ids, attention_mask=mask, output_hidden_states=True).logits
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=0)


def test_block_inputs_resume_where_the_trunk_stopped(classifier):
    ids, mask = pad(make_examples(9, seed=2), "right")
    with torch.no_grad():
        expected = classifier(input_ids=ids, attention_mask=mask).logits
        for start in (1, 2):  # 2 == n_layers: the cache holds every block's output
            states = classifier.gpt(input_ids=ids, attention_mask=mask, stop_block=start)
            got = classifier(
                block_inputs=states.last_hidden_state, attention_mask=mask, start_block=start
            ).logits
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_save_and_load_is_exact(classifier, tmp_path):
    classifier.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["id2label"] == {"0": "ham", "1": "spam"}
    assert config["auto_map"]["AutoModelForSequenceClassification"].endswith(
        "GPTForSequenceClassification"
    )
    assert (tmp_path / "modeling.py").is_file() and (tmp_path / "configuration.py").is_file()
    loaded = GPTForSequenceClassification.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(
        classifier.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    via_auto = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(via_auto) is GPTForSequenceClassification
    assert isinstance(AutoConfig.from_pretrained(tmp_path), GPTConfig)
    assert type(AutoModel.from_pretrained(tmp_path)) is GPTModel


def test_fresh_process_loads_with_trust_remote_code_only(classifier, tmp_path):
    classifier.save_pretrained(tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = classifier(input_ids=ids).logits[0].tolist()
    script = textwrap.dedent(
        f"""
        import json, sys, torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained(
            {str(tmp_path)!r}, trust_remote_code=True)
        assert not any(m == "hf_spam" or m.startswith("hf_spam.") for m in sys.modules), "imported"
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits[0].tolist()
        print(json.dumps({{"cls": type(model).__name__, "logits": logits,
                          "labels": model.config.id2label}}))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    # Run from an empty folder so `import hf_spam` could not find the source tree by accident.
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["cls"] == "GPTForSequenceClassification"
    assert out["labels"] == {"0": "ham", "1": "spam"} or out["labels"] == {0: "ham", 1: "spam"}
    assert out["logits"] == pytest.approx(expected, abs=1e-6)
