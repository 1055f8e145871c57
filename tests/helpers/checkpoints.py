"""GPT-2 checkpoints with random weights in the Hub's key layouts, and the scripts as modules."""

from __future__ import annotations

from pathlib import Path

from .paths import ROOT

# GPT-2 configs for checkpoints with random weights: tiny for most tests, the real 124M shape
# where size matters (parity, generation).
TINY_GPT2 = dict(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4)
GPT2_124M = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)


def save_gpt2_checkpoint(folder: Path, layout: str = "bare", seed: int = 0, **config_kwargs):
    """Save a random-weight `GPT2LMHeadModel` as safetensors in one of the Hub's key layouts.

    `bare`: keys as in the openai-community repos (`wte.weight`, `h.0.attn.c_attn.weight`) plus
    their `config.json`; `prefixed`: what `save_pretrained` writes (`transformer.` keys);
    `classifier`: a `GPT2ForSequenceClassification` as `save_pretrained` writes it (`transformer.`
    keys and `score.weight`; `config_kwargs` may set `id2label`, `pad_token_id`).
    Returns the reference model (eager attention, fp32, eval mode).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(**{**TINY_GPT2, **config_kwargs}, attn_implementation="eager")
    model_cls = GPT2ForSequenceClassification if layout == "classifier" else GPT2LMHeadModel
    model = model_cls(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    if layout in ("prefixed", "classifier"):
        model.save_pretrained(folder)
    elif layout == "bare":
        state = {
            k.removeprefix("transformer."): v.contiguous()
            for k, v in model.state_dict().items()
            if k != "lm_head.weight"
        }
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        config.to_json_file(folder / "config.json")
    else:
        raise ValueError(layout)
    return model


def load_script(name: str):
    """Import `scripts/<name>.py` as a module, so tests call its `main(argv)` in-process."""
    import importlib.util
    import sys

    module_name = f"hf_spam_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module
