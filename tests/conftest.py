"""The tests' fixtures; what they are built from lives in `helpers` (imported first: it makes
the tests offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    SMS_FILE,
    save_gpt2_checkpoint,
    tiktoken_cache_dir,
    write_spam_fixture,
)


@pytest.fixture(scope="session")
def sms_file() -> Path:
    """The real UCI SMS Spam Collection file: the copy bundled with the package."""
    return SMS_FILE


@pytest.fixture(scope="session")
def tiktoken_available(tmp_path_factory) -> None:
    """tiktoken's own GPT-2 encoding, loaded once from a cache laid out from the bundled BPE
    files (the reference of `encoding`); later `tiktoken.get_encoding("gpt2")` calls reuse it."""
    import tiktoken

    with tiktoken_cache_dir(tmp_path_factory.mktemp("tiktoken-cache")):
        tiktoken.get_encoding("gpt2")


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
    """tiktoken's GPT-2 encoding: the independent reference for token ids (its loader, its
    pattern and special tokens, the files checked against its own sha256)."""
    import tiktoken

    return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="session")
def tokenizer(tiktoken_available: None):
    from hf_spam.data import get_tokenizer

    return get_tokenizer()


# transformers' vendored common tests are a library for `model/test_modeling_common_tests.py`,
# not tests of their own.
collect_ignore = ["model/transformers_5_25_0"]
