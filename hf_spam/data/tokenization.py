"""The GPT-2 tokenizer, and tokenizing the splits with it through `Dataset.map`.

One tokenizer for training and inference: the `GPT2TokenizerFast` saved with the model produces
the training ids, truncates and pads them. It is built from GPT-2's BPE files bundled with the
package (no download, no tiktoken cache) and gives exactly GPT-2's BPE ids (tiktoken's
`encode_ordinary`) for any text, a literal '<|endoftext|>' included (kept as plain text). A
checkpoint that brings its own tokenizer files is tokenized with those (`load_tokenizer`).
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import tiktoken
from datasets import DatasetDict
from datasets.fingerprint import Hasher
from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode

from ..constants import BPE_FILES, TOKENIZER_FILES
from ..errors import CheckpointError, ModelLoadError
from .bundled import GPT2_MERGES_FILENAME, GPT2_VOCAB_FILENAME, bundled_file
from .formats import cached_map

logger = logging.getLogger(__name__)

GPT2_ENCODING = "gpt2"
GPT2_EOS_TOKEN = "<|endoftext|>"
GPT2_PAD_TOKEN_ID = 50256  # the book pads with <|endoftext|>
#: GPT-2's pre-tokenization pattern (the original release's, in tiktoken's faster spelling).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: A checkpoint's own tokenizer: transformers' one-file form, or GPT-2's two BPE files.
TOKENIZER_FILE = TOKENIZER_FILES[0]


@lru_cache(maxsize=1)
def gpt2_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocabulary (token -> id) and merges (in rank order), read from the bundled
    `encoder.json` and `vocab.bpe`; their first line, `#version: 0.2`, is no merge."""
    vocab = json.loads(bundled_file(GPT2_VOCAB_FILENAME).read_text(encoding="utf-8"))
    lines = bundled_file(GPT2_MERGES_FILENAME).read_text(encoding="utf-8").split("\n")[1:]
    merges = [(first, second) for first, second in (line.split() for line in lines if line)]
    return vocab, merges


@lru_cache(maxsize=1)
def gpt2_encoding() -> tiktoken.Encoding:
    """The book's `tiktoken.get_encoding("gpt2")`, built from the bundled BPE files.

    tiktoken's ranks are GPT-2's vocabulary read back to bytes (its `data_gym` loader would
    also copy the files into tiktoken's cache, which needs a writable folder).
    """
    vocab, _ = gpt2_vocab_and_merges()
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    ranks = {
        bytes(byte_of[char] for char in token): rank
        for token, rank in vocab.items()
        if token != GPT2_EOS_TOKEN
    }
    return tiktoken.Encoding(
        name=GPT2_ENCODING,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={GPT2_EOS_TOKEN: vocab[GPT2_EOS_TOKEN]},
        explicit_n_vocab=len(vocab),
    )


def get_tokenizer(model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A `GPT2TokenizerFast` from the bundled BPE files: tiktoken's `encode_ordinary` ids for
    any text.

    It is saved with the model so `pipeline("text-classification")` tokenizes like training did.
    `split_special_tokens=True` keeps a literal '<|endoftext|>' in user text as plain text (never
    the control token, id 50256), which is also tiktoken's `encode_ordinary` behaviour. Pad = EOS.
    """
    vocab, merges = gpt2_vocab_and_merges()
    return GPT2TokenizerFast(
        vocab=dict(vocab),
        merges=list(merges),
        pad_token=GPT2_EOS_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
        split_special_tokens=True,
    )


def load_tokenizer(
    folder: str | os.PathLike | None, model_max_length: int = 1024
) -> PreTrainedTokenizerFast:
    """The tokenizer saved in a checkpoint's `folder` (its `tokenizer.json`, or GPT-2's
    `vocab.json` + `merges.txt`), else GPT-2's from the bundled files (`get_tokenizer`).

    A checkpoint may come with a BPE of its own (another language, added tokens), and its
    weights only mean something on those ids. The package's settings apply either way: pad =
    end-of-text, right padding, `model_max_length`, and `split_special_tokens=True`, so a
    literal '<|endoftext|>' in a text stays text (HF's GPT-2 tokenizer would make it id 50256).
    """
    folder = Path(folder) if folder is not None else None
    own = folder is not None and (
        (folder / TOKENIZER_FILE).is_file() or all((folder / f).is_file() for f in BPE_FILES)
    )
    if not own:
        if folder is not None:
            logger.info("%s has no tokenizer files: GPT-2's tokenizer (bundled)", folder)
        return get_tokenizer(model_max_length)
    files = TOKENIZER_FILE if (folder / TOKENIZER_FILE).is_file() else " + ".join(BPE_FILES)
    try:
        tokenizer = GPT2TokenizerFast.from_pretrained(
            folder,
            model_max_length=model_max_length,
            padding_side="right",
            split_special_tokens=True,
        )
    except Exception as err:  # tokenizers' parse errors name neither the file nor the folder
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelLoadError(f"{folder / files}: not a readable tokenizer ({reason})") from err
    if tokenizer.eos_token_id is None:
        raise CheckpointError(f"{folder / files}: the tokenizer has no end-of-text token")
    if tokenizer.pad_token is None:  # GPT-2 has no pad token; the book pads with end-of-text
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("Tokenizer: %s", folder / files)
    return tokenizer


def check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase, vocab_size: int, source: str) -> None:
    """Refuse a tokenizer with ids the model has no embedding for (`source`: the model's)."""
    if len(tokenizer) > vocab_size:
        raise CheckpointError(
            f"{source}: the tokenizer has {len(tokenizer)} tokens, more than the model's "
            f"vocabulary ({vocab_size}); its ids would have no embedding (a tokenizer of other "
            "weights?)"
        )


def _count_tokens_batch(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase) -> dict:
    """Every text's length in tokens before truncation (the report, longest_training_example)."""
    ids = tokenizer(batch["text"], verbose=False)["input_ids"]
    return {"length": [len(x) for x in ids]}


def _encode_batch(
    batch: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int, pad: bool
) -> dict[str, list]:
    encoded = tokenizer(
        batch["text"],
        truncation=True,
        max_length=max_length,
        padding="max_length" if pad else False,
    )
    lengths = [sum(mask) for mask in encoded["attention_mask"]]
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "length": lengths,
    }


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A cheap, content-based key of a fast tokenizer.

    `datasets` would otherwise hash the whole tokenizer object for every `map`, a slow pickle.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    state = backend.to_str() if backend is not None else repr(tokenizer)
    return Hasher.hash((type(tokenizer).__name__, state, tokenizer.split_special_tokens))


def _map(
    dataset: DatasetDict, function, kwargs: dict, key: tuple, desc: str, **map_kwargs
) -> DatasetDict:
    """`Dataset.map` of each split with a fingerprint derived from the data and `key`."""
    return DatasetDict(
        {
            split: cached_map(
                ds,
                function,
                batched=True,
                fn_kwargs=kwargs,
                new_fingerprint=Hasher.hash((ds._fingerprint, function.__name__, *key)),
                desc=desc,
                **map_kwargs,
            )
            for split, ds in dataset.items()
        }
    )


def count_tokens(dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase) -> dict[str, np.ndarray]:
    """Each split's token counts, before truncation."""
    counted = _map(
        dataset,
        _count_tokens_batch,
        {"tokenizer": tokenizer},
        (tokenizer_fingerprint(tokenizer),),
        "Counting tokens",
        remove_columns=list(next(iter(dataset.values())).column_names),
    )
    return {split: np.asarray(ds.with_format("numpy")["length"]) for split, ds in counted.items()}


def tokenize(
    dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, pad: bool
) -> DatasetDict:
    """Add `input_ids`, `attention_mask` and `length` (real tokens), truncated to `max_length`
    and, with `pad`, padded to it on the right with the pad id (50256) as the book does."""
    kwargs = {"tokenizer": tokenizer, "max_length": max_length, "pad": pad}
    key = (tokenizer_fingerprint(tokenizer), max_length, pad)
    return _map(dataset, _encode_batch, kwargs, key, "Tokenizing")


__all__ = [
    "GPT2_EOS_TOKEN",
    "GPT2_ENCODING",
    "GPT2_PAD_TOKEN_ID",
    "check_tokenizer_fits",
    "count_tokens",
    "get_tokenizer",
    "gpt2_encoding",
    "gpt2_vocab_and_merges",
    "load_tokenizer",
    "tokenize",
]
