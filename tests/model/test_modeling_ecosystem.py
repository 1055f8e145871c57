"""The conventions other tools rely on: `auto_map` for every Auto class a folder can serve,
generation with a static cache, the deprecated cache name, attention switched at run time
through transformers' `AttentionInterface`, and peft's standard classification setup."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicCache

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification
from hf_spam.model import modeling

TINY = dict(vocab_size=300, context_length=64, emb_dim=32, n_heads=4, n_layers=2)
EOT = 299


def tiny(cls, **overrides):
    torch.manual_seed(0)
    config = GPTConfig(**TINY, pad_token_id=EOT, eos_token_id=EOT, bos_token_id=EOT, **overrides)
    return cls(config).eval()


def padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of 3, 7 and 5 tokens, left-padded (as `generate()` wants)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, EOT, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[2, :2] = 0
    return ids.masked_fill(mask == 0, EOT), mask


HIDDEN = """
import sys
sys.modules["hf_spam"] = None  # `import hf_spam` now fails: the folder's own code must do
"""


def run_hidden(script: str, tmp_path) -> dict:
    """`script` in a fresh interpreter where hf_spam cannot be imported; its last line's JSON."""
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", HIDDEN + textwrap.dedent(script)],
        cwd=tmp_path,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("cls", "head_auto_class"),
    [
        (GPTForSequenceClassification, "AutoModelForSequenceClassification"),
        (GPTForCausalLM, "AutoModelForCausalLM"),
    ],
)
def test_saved_folder_serves_automodel_without_the_package(cls, head_auto_class, tmp_path):
    model = tiny(cls)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", head_auto_class}
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = model.gpt(input_ids=ids, attention_mask=mask).last_hidden_state
    out = run_hidden(
        f"""
        import json, torch
        import transformers
        trunk = transformers.AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True)
        head = getattr(transformers, {head_auto_class!r}).from_pretrained(
            {str(folder)!r}, trust_remote_code=True)
        ids = torch.tensor({ids.tolist()}); mask = torch.tensor({mask.tolist()})
        with torch.no_grad():
            states = trunk(input_ids=ids, attention_mask=mask).last_hidden_state
        print(json.dumps({{"trunk": type(trunk).__name__, "head": type(head).__name__,
                          "states": states.tolist()}}))
        """,
        tmp_path,
    )
    assert (out["trunk"], out["head"]) == ("GPTModel", cls.__name__)
    torch.testing.assert_close(torch.tensor(out["states"]), expected, atol=1e-5, rtol=0)


def test_static_cache_generation_matches_the_dynamic_cache():
    """`generate(cache_implementation="static")` hands the model transformers' 4-D masks over
    a cache of fixed length; greedy decoding must pick the same tokens as the dynamic cache."""
    model = tiny(GPTForCausalLM)
    for seed in range(3):
        ids, mask = padded_batch(seed)
        kwargs = dict(input_ids=ids, attention_mask=mask, max_new_tokens=10, do_sample=False)
        dynamic = model.generate(**kwargs)
        static = model.generate(**kwargs, cache_implementation="static")
        assert torch.equal(static, dynamic)
        # and both are the greedy continuation without any cache
        tokens, attention = ids, mask
        for _ in range(10):
            with torch.no_grad():
                logits = model(input_ids=tokens, attention_mask=attention, use_cache=False).logits
            tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        assert torch.equal(dynamic, tokens)


def test_the_old_cache_name_warns_and_still_works():
    if modeling.CACHE_FIELD != "cache":
        pytest.skip("this transformers still names the cache past_key_values")
    model = tiny(GPTForCausalLM)
    ids, mask = padded_batch()
    with torch.no_grad():
        new = model(
            input_ids=ids,
            attention_mask=mask,
            cache=DynamicCache(config=model.config),
            use_cache=True,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            old = model(
                input_ids=ids,
                attention_mask=mask,
                past_key_values=DynamicCache(config=model.config),
                use_cache=True,
            )
    assert any("`past_key_values` is deprecated" in str(w.message) for w in caught)
    torch.testing.assert_close(old.logits, new.logits, atol=0, rtol=0)
    assert old.cache.get_seq_length() == ids.shape[1]


def test_set_attn_implementation_switches_the_attention_at_run_time(monkeypatch):
    model = tiny(GPTForSequenceClassification, num_labels=2)
    ids, mask = padded_batch()
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return book_attention(*args, **kwargs)

    book_attention = modeling.book_attention
    monkeypatch.setattr(modeling, "book_attention", counted)
    with torch.no_grad():
        sdpa = model(input_ids=ids, attention_mask=mask).logits
        assert not calls
        model.set_attn_implementation("eager")
        assert model.gpt.trf_blocks[0].att.config._attn_implementation == "eager"
        eager = model(input_ids=ids, attention_mask=mask).logits
        assert len(calls) >= TINY["n_layers"]  # every block, the last one per length group
        torch.testing.assert_close(eager, sdpa, atol=1e-5, rtol=0)

        # Any function registered with transformers' interface, by its name.
        seen = []

        def registered(module, query, key, value, attention_mask, **kwargs):
            seen.append(query.shape)
            return book_attention(module, query, key, value, attention_mask, **kwargs)

        AttentionInterface.register("hf_spam_test_attention", registered)
        model.set_attn_implementation("hf_spam_test_attention")
        torch.testing.assert_close(
            model(input_ids=ids, attention_mask=mask).logits, sdpa, atol=1e-5, rtol=0
        )
        assert len(seen) >= TINY["n_layers"]
        model.set_attn_implementation("sdpa")
        calls.clear()
        torch.testing.assert_close(
            model(input_ids=ids, attention_mask=mask).logits, sdpa, atol=0, rtol=0
        )
        assert not calls
