"""The GPT-2 tokenizer, and tokenizing the splits with it through `Dataset.map`.

One tokenizer for training and inference: the `GPT2TokenizerFast` saved with the model produces
the training ids, truncates and pads them. It gives exactly GPT-2's BPE ids (tiktoken's
`encode_ordinary`) for any text, a literal '<|endoftext|>' included (kept as plain text). A
checkpoint that brings its own tokenizer files is tokenized with those (`load_tokenizer`).
"""

from __future__ import annotations

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

logger = logging.getLogger(__name__)

GPT2_ENCODING = "gpt2"
GPT2_EOS_TOKEN = "<|endoftext|>"
GPT2_PAD_TOKEN_ID = 50256  # the book pads with <|endoftext|>
#: A checkpoint's own tokenizer: transformers' one-file form, or GPT-2's two BPE files.
TOKENIZER_FILE = TOKENIZER_FILES[0]


@lru_cache(maxsize=1)
def _gpt2_encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(GPT2_ENCODING)


@lru_cache(maxsize=1)
def _gpt2_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocab and merges rebuilt from tiktoken's own ranks (no Hub download needed).

    tiktoken merges any adjacent pair whose concatenation is a token, lowest rank first; listing
    every such split of every token, ordered by the token's rank, makes HF's BPE merge the same
    way (the approach of `transformers.convert_slow_tokenizer.TikTokenConverter`).
    """
    encoding = _gpt2_encoding()
    ranks: dict[bytes, int] = encoding._mergeable_ranks  # tiktoken exposes no public accessor
    byte_to_char = bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(byte_to_char[byte] for byte in token)

    merges = []
    for token in sorted(ranks, key=ranks.__getitem__):
        pairs = [(token[:i], token[i:]) for i in range(1, len(token))]
        pairs = [(a, b) for a, b in pairs if a in ranks and b in ranks]
        pairs.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges.extend((to_str(a), to_str(b)) for a, b in pairs)
    vocab = {to_str(token): rank for token, rank in ranks.items()}
    vocab[GPT2_EOS_TOKEN] = encoding.eot_token
    return vocab, merges


def get_tokenizer(model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A `GPT2TokenizerFast` giving exactly tiktoken's `encode_ordinary` ids for any text.

    It is saved with the model so `pipeline("text-classification")` tokenizes like training did.
    `split_special_tokens=True` keeps a literal '<|endoftext|>' in user text as plain text (never
    the control token, id 50256), which is also tiktoken's `encode_ordinary` behaviour. Pad = EOS.
    """
    vocab, merges = _gpt2_vocab_and_merges()
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
    `vocab.json` + `merges.txt`), else GPT-2's built from tiktoken (`get_tokenizer`).

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
            logger.info("%s has no tokenizer files: GPT-2's tokenizer (tiktoken)", folder)
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

    `datasets` would otherwise hash the tokenizer object itself for every `map` (seconds each).
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
            split: ds.map(
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
    "load_tokenizer",
    "tokenize",
]
