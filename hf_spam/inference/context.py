"""Texts cut to the model's context before they are tokenized, with the ids of a full tokenization.

A tokenizer asked to truncate still tokenizes the whole text first and then drops the tail, so a
50 MB text costs gigabytes and a minute to keep its first 1024 tokens. `context_prefix` hands the
tokenizer a prefix instead, one whose first `max_length` ids are the whole text's, so what an
inference path reads never depends on how long the text is:

* **the bound by characters**: a token stands for at most as many characters as its longest
  vocabulary entry has (a byte-level BPE entry is one character per byte; a character is at
  least one byte), so the first `max_length` tokens lie in the first `max_length * longest`
  characters (for GPT-2, 128 * 1024 = 131,072 characters), plus a margin;
* **checked by tokens**: the prefix is tokenized and kept only if the word (pre-token) that holds
  token `max_length` is followed by another word starting at least `margin` characters before the
  cut. Pre-tokenizers look only a few characters ahead (GPT-2's pattern at most three, past a
  contraction's apostrophe) and BPE merges within a word, so every word ending that far before
  the cut is the same word, with the same ids, in the whole text. Otherwise (a single word longer
  than the cut) the cut doubles, up to the whole text: a text is never cut where it could lose or
  change a token.

Training truncates the same way (`tokenizer(..., truncation=True, max_length=...)`: the first
tokens, right side), so the ids are the ones training would give. A tokenizer that truncates on
the left, or has no maximum length, gets the whole text.
"""

from __future__ import annotations

import weakref
from typing import Any

from transformers import TextClassificationPipeline

__all__ = ["ContextPipeline", "context_prefix", "context_prefixes"]

#: Characters kept past the word that holds the last token: covers any pre-tokenizer's
#: look-ahead (GPT-2's regex reads at most three characters past a match).
LOOKAHEAD_MARGIN = 16
#: A `model_max_length` at or above this means "no maximum" (transformers' VERY_LARGE_INTEGER).
NO_MAXIMUM = int(1e20)

_bounds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _token_bounds(tokenizer: Any) -> tuple[int, int]:
    """(the longest vocabulary entry, the look-ahead margin past the last kept word), both in
    characters; worked out once per tokenizer (the vocabulary has tens of thousands of entries).
    An added token is matched whole before pre-tokenization: the margin covers the longest."""
    try:
        return _bounds[tokenizer]
    except (KeyError, TypeError):
        pass
    longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
    matched = [  # a special token in the text stays text with `split_special_tokens`
        token.content
        for token in tokenizer.added_tokens_decoder.values()
        if not (token.special and tokenizer.split_special_tokens)
    ]
    added = max(map(len, matched), default=0)
    found = (max(longest, 1), LOOKAHEAD_MARGIN + added)
    try:
        _bounds[tokenizer] = found
    except TypeError:  # not weakly referable: worked out each time
        pass
    return found


def _characters_per_token(tokenizer: Any) -> int:
    """The most characters one token stands for (its longest vocabulary entry)."""
    return _token_bounds(tokenizer)[0]


def _keeps_first_tokens(tokenizer: Any, prefix: str, max_length: int, margin: int) -> bool:
    """Whether `prefix`'s first `max_length` ids are those of any text that starts with it: the
    word holding the last of them is followed by a word that starts `margin` characters or more
    before the end (that word's start bounds the earlier word's end, however offsets are trimmed)."""
    encoding = tokenizer(prefix, add_special_tokens=False, verbose=False)
    words = encoding.word_ids()
    if len(words) <= max_length or words[max_length - 1] is None:
        return False
    last_word = words[max_length - 1]
    for index in range(max_length, len(words)):
        if words[index] is None or words[index] != last_word:
            span = encoding.token_to_chars(index)
            return span is not None and span.start <= len(prefix) - margin
    return False


def context_prefix(tokenizer: Any, text: str, max_length: int | None = None) -> str:
    """A prefix of `text` whose first `max_length` tokens (default: the tokenizer's
    `model_max_length`) are the whole text's, about `max_length` times the longest token long:
    tokenizing it with `truncation=True` gives the ids of tokenizing `text` and cutting them."""
    if not isinstance(text, str):
        return text
    limit = max_length or tokenizer.model_max_length
    if tokenizer.truncation_side != "right" or not limit or limit >= NO_MAXIMUM:
        return text
    margin = _token_bounds(tokenizer)[1]
    cut = limit * _characters_per_token(tokenizer) + margin
    while cut < len(text):
        prefix = text[:cut]
        if _keeps_first_tokens(tokenizer, prefix, limit, margin):
            return prefix
        cut *= 2
    return text


def context_prefixes(tokenizer: Any, texts: list[Any], max_length: int | None = None) -> list[Any]:
    """`context_prefix` of every text (texts that are not strings are passed through)."""
    return [context_prefix(tokenizer, text, max_length) for text in texts]


class ContextPipeline(TextClassificationPipeline):
    """transformers' text-classification pipeline, with each text cut to the context before its
    tokenizer runs when truncation is asked for (same ids, memory independent of the length)."""

    def preprocess(self, inputs, **tokenizer_kwargs):
        truncation = tokenizer_kwargs.get("truncation")
        truncation = getattr(truncation, "value", truncation)  # a TruncationStrategy, or as given
        if isinstance(inputs, str) and truncation in (True, "longest_first", "only_first"):
            inputs = context_prefix(self.tokenizer, inputs, tokenizer_kwargs.get("max_length"))
        return super().preprocess(inputs, **tokenizer_kwargs)
