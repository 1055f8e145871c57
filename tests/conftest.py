"""Shared test fixtures: offline data paths and tiny GPT-2 checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HF_SPAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
SMS_FILE = Path(os.environ.get("HF_SPAM_SMS_FILE", SHARED_DATA / "SMSSpamCollection"))
TIKTOKEN_CACHE = Path(os.environ.get("TIKTOKEN_CACHE_DIR", SHARED_DATA / "tiktoken-cache"))

# tiktoken downloads its BPE files unless they are cached; point it at the shared copy.
if TIKTOKEN_CACHE.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(TIKTOKEN_CACHE)
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
