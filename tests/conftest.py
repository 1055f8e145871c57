"""Shared test fixtures: offline data paths and tiny GPT-2 checkpoints."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HF_SPAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
SMS_FILE = Path(os.environ.get("HF_SPAM_SMS_FILE", SHARED_DATA / "SMSSpamCollection"))
GPT2_BPE = Path(os.environ.get("HF_SPAM_GPT2_BPE_DIR", SHARED_DATA / "gpt2-bpe"))
# tiktoken's cache names each file by the sha1 of its download URL.
TIKTOKEN_GPT2_FILES = {
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
}


def _offline_tiktoken_cache() -> None:
    """Point tiktoken at a cache built from the shared GPT-2 BPE files, so it never downloads.

    The shared `tiktoken-cache/` folder cannot be relied on (its links arrive as plain files), so
    the cache is laid out here from `gpt2-bpe/` unless TIKTOKEN_CACHE_DIR is already set.
    """
    if "TIKTOKEN_CACHE_DIR" in os.environ or not GPT2_BPE.is_dir():
        return
    cache = Path(tempfile.gettempdir()) / "hf_spam-tiktoken-cache"
    cache.mkdir(exist_ok=True)
    for name, url in TIKTOKEN_GPT2_FILES.items():
        link = cache / hashlib.sha1(url.encode()).hexdigest()
        if not link.exists():
            link.symlink_to(GPT2_BPE / name)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


_offline_tiktoken_cache()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def sms_file() -> Path:
    """The real UCI SMS Spam Collection file, or skip when it is not beside the checkout."""
    if not SMS_FILE.is_file():
        pytest.skip(f"SMS Spam Collection not found at {SMS_FILE} (set HF_SPAM_SMS_FILE)")
    return SMS_FILE


@pytest.fixture(scope="session")
def tiktoken_available() -> None:
    """Skip unless tiktoken's GPT-2 encoding loads offline."""
    try:
        import tiktoken

        tiktoken.get_encoding("gpt2")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        pytest.skip(f"tiktoken gpt2 encoding not available offline ({exc}); set TIKTOKEN_CACHE_DIR")


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


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict:
    """{layout: (folder, reference GPT2LMHeadModel)} for a tiny GPT-2, both layouts."""
    root = tmp_path_factory.mktemp("tiny_gpt2")
    return {
        layout: (root / layout, save_gpt2_checkpoint(root / layout, layout))
        for layout in ("bare", "prefixed")
    }


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_checkpoints) -> Path:
    """Folder of a tiny random GPT-2 in the openai-community (bare key) layout."""
    return tiny_checkpoints["bare"][0]


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


SPAM_WORDS = ["WIN", "free", "prize", "call", "now", "txt", "claim", "cash", "urgent", "offer"]
HAM_WORDS = ["see", "you", "at", "home", "later", "mum", "dinner", "ok", "thanks", "tomorrow"]


def write_spam_fixture(path: Path, rows: int = 160, seed: int = 0) -> Path:
    """A small CSV of synthetic ham/spam texts (columns text,label) that a tiny model can learn."""
    import csv
    import random

    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = "spam" if i % 2 else "ham"
            words = SPAM_WORDS if label == "spam" else HAM_WORDS
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            writer.writerow([text, label])
    return path


@pytest.fixture(scope="session")
def spam_csv(tmp_path_factory, tiktoken_available) -> Path:
    return write_spam_fixture(tmp_path_factory.mktemp("fixture") / "spam.csv")


# Data-pipeline fixtures (tests/test_data_*.py).


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """A fresh datasets cache for one test, so nothing leaks between tests."""
    return str(tmp_path / "hf-cache")


@pytest.fixture(scope="session")
def sms_rows(sms_file: Path) -> list[tuple[str, str]]:
    """The real file's (label, text) rows, parsed independently of the module under test."""
    lines = sms_file.read_text(encoding="utf-8").split("\n")
    return [tuple(line.split("\t", 1)) for line in lines if line]


@pytest.fixture(scope="session")
def encoding(tiktoken_available: None):
    """tiktoken's GPT-2 encoding: the independent reference for token ids."""
    import tiktoken

    return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="session")
def tokenizer(tiktoken_available: None):
    from hf_spam.data import get_tokenizer

    return get_tokenizer()
