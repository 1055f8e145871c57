"""The book's GPT as a transformers model: padding, batching, heads, saving and Auto classes."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import pad
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel
from hf_spam.model.weights import load_openai_gpt2

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


def logits_for(model, examples, batch_size: int, side: str) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            ids, mask = pad(examples[start : start + batch_size], side=side)
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
    ids, mask = pad(prompts, side="left")
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
        ids, mask = pad([[], [5, 6, 7]], side="right")
        batch = classifier(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(empty, eot, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch[0], eot[0], atol=1e-6, rtol=0)


def test_fast_path_equals_full_forward(classifier):
    """Last-token-only final block and length buckets change no logit."""
    ids, mask = pad(make_examples(20, seed=7), side="left")
    with torch.no_grad():
        fast = classifier(input_ids=ids, attention_mask=mask).logits
        full = classifier(input_ids=ids, attention_mask=mask, output_hidden_states=True).logits
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=0)


def test_saved_folders_name_the_code_by_its_file_alone(classifier, tmp_path):
    """`auto_map` names `configuration.py` / `modeling.py` as files in the folder, not by their
    place in the package: folders saved before the package was regrouped load as they did."""
    classifier.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration.GPTConfig",
        "AutoModel": "modeling.GPTModel",
        "AutoModelForSequenceClassification": "modeling.GPTForSequenceClassification",
    }
    code = (tmp_path / "modeling.py").read_text()
    assert "from .configuration import" in code and "hf_spam" not in code.split('"""', 2)[2]


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


# transformers' output conventions, against transformers' GPT-2 with the same weights (eager
# attention, so it returns its attention weights).


def gpt2_pair(tiny_checkpoints, model_class=GPTForCausalLM, **config_overrides):
    """Ours with the tiny GPT-2 checkpoint's weights, and transformers' GPT2LMHeadModel."""
    folder, ref = tiny_checkpoints["bare"]
    torch.manual_seed(1)  # a classifier's fresh out_head
    return load_openai_gpt2(model_class, folder, **config_overrides), ref


def token_batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 50257, (3, 12), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_hidden_states_and_attentions_are_gpt2s(tiny_checkpoints, implementation):
    """GPT-2's layout: the embeddings' output, each block's output, the last after the final norm;
    attention weights per block. SDPA returns no weights, so asking for them runs the book's
    formulation, the one `attn_implementation="eager"` always runs."""
    ours, ref = gpt2_pair(tiny_checkpoints, attn_implementation=implementation)
    assert ours.config._attn_implementation == implementation
    ids = token_batch()
    flags = dict(labels=ids, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        mine, theirs = ours(ids, **flags), ref(ids, **flags)
        last = ours.gpt(input_ids=ids).last_hidden_state
    assert len(mine.hidden_states) == 3 and len(mine.attentions) == 2
    assert mine.attentions[0].shape == (3, 4, 12, 12)
    torch.testing.assert_close(mine.hidden_states, theirs.hidden_states, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.attentions, theirs.attentions, atol=1e-6, rtol=0)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.hidden_states[-1], last, atol=1e-6, rtol=0)
    assert ours(ids).hidden_states is None and ours(ids).attentions is None


@pytest.mark.parametrize("via", ["argument", "config"])
def test_return_dict_false_gives_gpt2s_tuples(tiny_checkpoints, via):
    """`return_dict=False` or `config.return_dict = False`: the output's fields that are set, in
    transformers' order (loss, logits, hidden_states, attentions). transformers 5.24's own GPT-2
    heads fail with `config.return_dict = False`, so the reference is asked by argument."""
    ours, ref = gpt2_pair(tiny_checkpoints)
    ids = token_batch()
    flags = dict(output_hidden_states=True, output_attentions=True)
    switch = {"return_dict": False} if via == "argument" else {}
    if via == "config":
        ours.config.return_dict = False
    with torch.no_grad():
        mine = ours(ids, labels=ids, **flags, **switch)
        theirs = ref(ids, labels=ids, use_cache=False, return_dict=False, **flags)
        trunk = ours.gpt(input_ids=ids, **flags, **switch)
        ref_trunk = ref.transformer(ids, use_cache=False, return_dict=False, **flags)
    assert type(mine) is tuple and len(mine) == 4  # GPT-2 adds its (empty) cross-attentions
    torch.testing.assert_close(mine, theirs[:4], atol=1e-5, rtol=0)
    assert type(trunk) is tuple and len(trunk) == 3  # last_hidden_state, hidden_states, attentions
    torch.testing.assert_close(trunk, ref_trunk[:3], atol=1e-5, rtol=0)


def test_configuration_sets_the_output_defaults(tiny_checkpoints):
    """`output_hidden_states`, `output_attentions` and `return_dict` in the configuration are the
    defaults of every head; arguments override them."""
    config = dict(output_hidden_states=True, output_attentions=True, return_dict=False)
    classifier, ref = gpt2_pair(tiny_checkpoints, GPTForSequenceClassification, **config)
    ids = token_batch()
    with torch.no_grad():
        logits, hidden_states, attentions = classifier(ids)
        theirs = ref(ids, output_hidden_states=True, output_attentions=True)
        plain = classifier(ids, output_hidden_states=False, output_attentions=False)
        as_dict = classifier(ids, return_dict=True)
    torch.testing.assert_close(hidden_states, theirs.hidden_states, atol=1e-5, rtol=0)
    torch.testing.assert_close(attentions, theirs.attentions, atol=1e-6, rtol=0)
    # The head reads the same state on the full path as on the last-token path.
    assert type(plain) is tuple and len(plain) == 1
    torch.testing.assert_close(plain[0], logits, atol=1e-5, rtol=0)
    assert as_dict.logits.shape == (3, 2) and len(as_dict.hidden_states) == 3


def test_shift_labels_replace_labels_as_in_gpt2(tiny_checkpoints):
    """`shift_labels` (targets already aligned with the logits, transformers' convention for
    sequences split across devices) replace `labels`; -100 is ignored."""
    ours, ref = gpt2_pair(tiny_checkpoints)
    ids = token_batch()
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 50257, ids.shape, generator=g)
    shift_labels = torch.randint(0, 50257, ids.shape, generator=g)
    shift_labels[:, -1] = -100
    with torch.no_grad():
        logits = ours(ids).logits
        loss = ours(ids, labels=labels, shift_labels=shift_labels).loss
        alone = ours(ids, shift_labels=shift_labels).loss
        shifted_here = ours(ids, labels=labels).loss
        theirs = ref(ids, labels=labels, shift_labels=shift_labels).loss
        theirs_shifted_here = ref(ids, labels=labels).loss
    expected = F.cross_entropy(logits[:, :-1].flatten(0, 1), shift_labels[:, :-1].flatten())
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, loss, atol=0, rtol=0)
    torch.testing.assert_close(shifted_here, theirs_shifted_here, atol=1e-5, rtol=0)


# Gradient checkpointing: the same gradients, with the blocks really recomputed.


def checkpointed_gradients(model, use_reentrant: bool | None, **inputs):
    """Loss, gradients and how many block runs began, after one forward and backward (with
    gradient checkpointing unless `use_reentrant` is None)."""
    model = copy.deepcopy(model).train()
    if use_reentrant is not None:
        model.gradient_checkpointing_enable({"use_reentrant": use_reentrant})
    runs = []
    for block in model.gpt.trf_blocks:
        # norm1 opens a block; a recomputation may stop once it has what backward needs.
        block.norm1.register_forward_hook(lambda *_: runs.append(1))
    torch.manual_seed(5)  # the same dropout draws; checkpointing replays them
    out = model(**inputs)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return out.loss, grads, len(runs)


def checkpointing_case(case: str):
    """(tiny model, inputs, blocks each forward runs) for one training step of `case`."""
    torch.manual_seed(0)
    ids = torch.randint(0, 50257, (4, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.tensor([0, 1, 1, 0])
    cached = case == "frozen_trunk_from_cached_states"
    # Dropout on (checkpointing must replay its draws), except in a cached, so fixed, trunk.
    config = GPTConfig(**TINY | {"n_layers": 3}, drop_rate=0.0 if cached else 0.1, num_labels=2)
    if case == "causal_lm":
        return GPTForCausalLM(config), dict(input_ids=ids, labels=ids), 3
    model = GPTForSequenceClassification(config)
    if not cached:
        return model, dict(input_ids=ids, attention_mask=mask, labels=labels), 3
    # `--trainable_layers last_block` with the trunk cache: the states entering block 2 are given.
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(("gpt.trf_blocks.2.", "gpt.final_norm", "out_"))
    with torch.no_grad():
        states = model.gpt(input_ids=ids, attention_mask=mask, stop_block=2).last_hidden_state
    return model, dict(block_inputs=states, attention_mask=mask, start_block=2, labels=labels), 1


# transformers 5.24 renamed it `activation_checkpointing_enable`; the old name works in every 5.x.
@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("case", ["causal_lm", "classifier", "frozen_trunk_from_cached_states"])
def test_gradient_checkpointing_gives_the_same_gradients(case, use_reentrant):
    """Identical loss and gradients, dropout included, in both of torch's checkpointing modes;
    also when training from cached frozen-trunk states (`block_inputs`), where a reentrant
    checkpoint would leave the top block without gradients unless its input requires grad."""
    model, inputs, blocks_run = checkpointing_case(case)
    loss, grads, runs = checkpointed_gradients(model, None, **inputs)
    loss_c, grads_c, runs_c = checkpointed_gradients(model, use_reentrant, **inputs)
    assert (runs, runs_c) == (blocks_run, 2 * blocks_run)  # each block recomputed once
    torch.testing.assert_close(loss_c, loss, atol=0, rtol=0)
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    assert grads_c.keys() == grads.keys() == trainable
    torch.testing.assert_close(grads_c, grads, atol=0, rtol=0)


def test_a_rows_states_do_not_depend_on_its_batch():
    """Every position of a row, padding included, reads the same alone or beside rows padded
    otherwise (a right-padded row is read by the causal triangle either way), on both paths."""
    torch.manual_seed(0)
    model = GPTModel(GPTConfig(**TINY)).eval()
    ids = torch.randint(0, 50257, (3, 7))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 1, 0], [0, 0, 1, 1, 1, 1, 1]])
    for exportable in (False, True):
        model.config.exportable = exportable
        with torch.no_grad():
            batched = model(input_ids=ids, attention_mask=mask).last_hidden_state
            for row in range(3):
                alone = model(input_ids=ids[row : row + 1], attention_mask=mask[row : row + 1])
                torch.testing.assert_close(
                    alone.last_hidden_state[0], batched[row], atol=1e-5, rtol=0
                )
    model.config.exportable = False
